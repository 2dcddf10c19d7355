//! HTTP/1.0 GET as keepalived's HTTP_GET sends it, and the reply read
//! with bounds: headers within [`MAX_HEADER`], everything within
//! [`MAX_REPLY`], and the body only when a digest or pattern needs it.

use md5::{Digest as _, Md5};
use regex::bytes::Regex;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::{MAX_REPLY, ProbeError, UrlExpect};

/// Status line and headers must fit in this.
pub const MAX_HEADER: usize = 16 * 1024;

/// A reply: its status code and (when asked for) its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends `GET path` and reads the reply; without `need_body`, stops after
/// the headers.
pub async fn get<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    path: &str,
    host: &str,
    need_body: bool,
) -> Result<Reply, ProbeError> {
    let request = format!(
        "GET {path} HTTP/1.0\r\nUser-Agent: lbd/health-check\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ProbeError::Io)?;
    stream.flush().await.map_err(ProbeError::Io)?;
    read_reply(&mut stream, need_body).await
}

async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    need_body: bool,
) -> Result<Reply, ProbeError> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut head: Option<(usize, u16, Option<usize>)> = None;
    loop {
        if head.is_none() {
            head = parse_head(&buf)?;
            if head.is_none() && buf.len() > MAX_HEADER {
                return Err(ProbeError::Malformed("headers longer than 16 KiB"));
            }
        }
        if let Some((body_at, status, length)) = head {
            let body_len = buf.len() - body_at;
            if !need_body || length.is_some_and(|l| body_len >= l) {
                let mut body = buf.split_off(body_at);
                if let Some(l) = length {
                    body.truncate(l);
                }
                return Ok(Reply { status, body });
            }
        }
        let n = stream.read(&mut chunk).await.map_err(ProbeError::Io)?;
        if n == 0 {
            return match head {
                Some((body_at, status, _)) => Ok(Reply {
                    status,
                    body: buf.split_off(body_at),
                }),
                None if buf.is_empty() => {
                    Err(ProbeError::Malformed("connection closed without a reply"))
                }
                None => Err(ProbeError::Malformed(
                    "connection closed inside the headers",
                )),
            };
        }
        if buf.len() + n > MAX_REPLY {
            return Err(ProbeError::TooLarge { limit: MAX_REPLY });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Once the headers are complete: where the body starts, the status code
/// and the Content-Length.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, u16, Option<usize>)>, ProbeError> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| ProbeError::Malformed("headers are not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split(' ');
    let version = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(ProbeError::Malformed("no HTTP status line"));
    }
    let status = words
        .next()
        .and_then(|w| w.parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
        .ok_or(ProbeError::Malformed("no status code"))?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    Ok(Some((end + 4, status, length)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// keepalived's checks of one URL: the status (any 2xx when none is
/// configured) and the body's MD5.
pub fn expect(reply: &Reply, url: &UrlExpect) -> Result<(), ProbeError> {
    let status_ok = match url.status {
        Some(want) => reply.status == want,
        None => (200..300).contains(&reply.status),
    };
    if !status_ok {
        return Err(ProbeError::Status {
            path: url.path.clone(),
            got: reply.status,
        });
    }
    if let Some(want) = &url.digest {
        let got = md5_hex(&reply.body);
        if !got.eq_ignore_ascii_case(want) {
            return Err(ProbeError::Digest {
                path: url.path.clone(),
                got,
            });
        }
    }
    Ok(())
}

/// ldirectord's negotiate over HTTP: a successful reply whose body
/// matches `receive`.
pub fn expect_negotiated(
    reply: &Reply,
    path: &str,
    receive: Option<&Regex>,
) -> Result<(), ProbeError> {
    if !(200..400).contains(&reply.status) {
        return Err(ProbeError::Status {
            path: path.to_owned(),
            got: reply.status,
        });
    }
    match receive {
        Some(re) if !re.is_match(&reply.body) => Err(ProbeError::NoMatch {
            pattern: re.as_str().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// ldirectord's simpletcp negotiate: send `request`, read until the
/// reply matches `receive` (or, with no pattern, until anything arrives).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
    receive: Option<&Regex>,
) -> Result<(), ProbeError> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ProbeError::Io)?;
    stream.flush().await.map_err(ProbeError::Io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.map_err(ProbeError::Io)?;
        if n == 0 {
            return Err(ProbeError::NoMatch {
                pattern: receive
                    .map_or_else(|| "(any reply)".to_owned(), |r| r.as_str().to_owned()),
            });
        }
        if buf.len() + n > MAX_REPLY {
            return Err(ProbeError::TooLarge { limit: MAX_REPLY });
        }
        buf.extend_from_slice(&chunk[..n]);
        match receive {
            None => return Ok(()),
            Some(re) if re.is_match(&buf) => return Ok(()),
            Some(_) => {}
        }
    }
}

pub fn md5_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    Md5::digest(data)
        .iter()
        .fold(String::with_capacity(32), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reply_of(raw: &[u8], need_body: bool) -> Result<Reply, ProbeError> {
        let (mut server, client) = tokio::io::duplex(64 * 1024);
        let raw = raw.to_vec();
        let writer = tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = server.read(&mut request).await;
            for piece in raw.chunks(7) {
                if server.write_all(piece).await.is_err() {
                    return;
                }
            }
        });
        let reply = get(client, "/health", "10.0.0.2:80", need_body).await;
        writer.abort();
        reply
    }

    #[tokio::test]
    async fn status_and_body_are_read_in_pieces() {
        let reply = reply_of(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true)
            .await
            .unwrap();
        assert_eq!(
            reply,
            Reply {
                status: 200,
                body: b"hello".to_vec()
            }
        );
        let url = UrlExpect {
            path: "/".into(),
            status: None,
            digest: Some("5D41402ABC4B2A76B9719D911017C592".into()),
        };
        expect(&reply, &url).unwrap();
        let url = UrlExpect {
            digest: Some("00".into()),
            ..url
        };
        assert_eq!(
            expect(&reply, &url).unwrap_err().to_string(),
            "MD5 digest error on url[/], MD5SUM [5d41402abc4b2a76b9719d911017c592]"
        );
    }

    #[tokio::test]
    async fn wrong_status_and_garbage_fail_with_reasons() {
        let reply = reply_of(b"HTTP/1.0 503 Busy\r\n\r\n", false).await.unwrap();
        let url = UrlExpect {
            path: "/health".into(),
            status: None,
            digest: None,
        };
        assert_eq!(
            expect(&reply, &url).unwrap_err().to_string(),
            "HTTP status code error on url(/health), status_code [503]"
        );
        let url = UrlExpect {
            status: Some(503),
            ..url
        };
        expect(&reply, &url).unwrap();
        assert!(matches!(
            reply_of(b"SSH-2.0-OpenSSH\r\n\r\n", false).await,
            Err(ProbeError::Malformed(_))
        ));
        assert!(matches!(
            reply_of(b"", false).await,
            Err(ProbeError::Malformed("connection closed without a reply"))
        ));
    }

    #[tokio::test]
    async fn endless_headers_and_huge_bodies_are_cut_off() {
        let mut endless = b"HTTP/1.0 200 OK\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'x', 40 * 1024));
        assert!(matches!(
            reply_of(&endless, false).await,
            Err(ProbeError::Malformed(_))
        ));
        let (mut server, client) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = server.read(&mut request).await;
            let _ = server.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
            let junk = vec![b'x'; 64 * 1024];
            while server.write_all(&junk).await.is_ok() {}
        });
        let err = get(client, "/", "h", true).await.unwrap_err();
        writer.abort();
        assert!(matches!(err, ProbeError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn negotiate_needs_the_pattern_in_the_body() {
        let re = Regex::new("I am alive").unwrap();
        let ok = Reply {
            status: 200,
            body: b"<p>I am alive</p>".to_vec(),
        };
        expect_negotiated(&ok, "/", Some(&re)).unwrap();
        let gone = Reply {
            status: 200,
            body: b"<p>maintenance</p>".to_vec(),
        };
        assert_eq!(
            expect_negotiated(&gone, "/", Some(&re))
                .unwrap_err()
                .to_string(),
            "the reply does not match `I am alive`"
        );
    }
}
