//! SSL_GET against a real TLS server (`openssl s_server -www`, with a
//! self-signed certificate, which keepalived's SSL_GET accepts too).

use std::{
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use lb_userspace::health::probe::{Probe, ProbeError, ProbeKind, UrlExpect, tls::TlsSettings};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl_server(dir: &std::path::Path, port: u16) -> Server {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=backend",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (Debian's openssl package)");
    assert!(status.success(), "openssl made a certificate");
    let child = Command::new("openssl")
        .args(["s_server", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child)
}

fn probe(target: SocketAddr, tls: Option<TlsSettings>) -> Probe {
    Probe {
        target,
        bind: None,
        timeout: Duration::from_secs(3),
        kind: ProbeKind::Http {
            tls,
            host: "backend".into(),
            urls: vec![UrlExpect {
                path: "/".into(),
                status: Some(200),
                digest: None,
            }],
        },
    }
}

#[tokio::test]
async fn ssl_get_passes_against_a_self_signed_server_and_plain_http_does_not() {
    let dir = std::env::temp_dir().join(format!("lbd-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let _server = openssl_server(&dir, port);
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    probe(target, Some(TlsSettings::unverified()))
        .run()
        .await
        .expect("SSL_GET of / answers 200 over TLS");
    let err = probe(target, None).run().await.unwrap_err();
    assert!(
        matches!(
            err,
            ProbeError::Malformed(_) | ProbeError::Timeout(_) | ProbeError::Io(_)
        ),
        "plain HTTP to a TLS port fails: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn ssl_get_to_a_server_that_speaks_no_tls_fails_the_handshake() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn.write_all(b"220 not TLS at all\r\n").await;
        }
    });
    let err = probe(target, Some(TlsSettings::unverified()))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Tls(_)), "{err}");
}
