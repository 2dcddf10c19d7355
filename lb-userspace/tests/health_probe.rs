//! Probes against local sockets: `bindto` picks the source address, a
//! refused connect fails a TCP_CHECK, and a negotiate over plain TCP
//! (ldirectord's simpletcp) matches its pattern.

use std::{net::SocketAddr, time::Duration};

use lb_userspace::health::probe::{Probe, ProbeError, ProbeKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn tcp(target: SocketAddr, bind: Option<&str>) -> Probe {
    Probe {
        target,
        bind: bind.map(|b| b.parse().unwrap()),
        timeout: Duration::from_secs(2),
        kind: ProbeKind::Tcp,
    }
}

#[tokio::test]
async fn bindto_sets_the_source_address_of_the_check() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move { listener.accept().await.unwrap().1 });
    tcp(target, Some("127.0.0.2"))
        .run()
        .await
        .expect("connects");
    let peer = accepted.await.unwrap();
    assert_eq!(
        peer.ip().to_string(),
        "127.0.0.2",
        "the check came from bindto"
    );
}

#[tokio::test]
async fn a_refused_connect_fails_a_tcp_check_naming_the_target() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    drop(listener);
    let err = tcp(target, None).run().await.unwrap_err();
    assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&target.to_string()), "{err}");
}

#[tokio::test]
async fn simpletcp_negotiate_matches_the_reply() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let reply: &[u8] = if &buf[..n] == b"PING\r\n" {
                b"+PONG\r\n"
            } else {
                b"-ERR\r\n"
            };
            let _ = conn.write_all(reply).await;
        }
    });
    let negotiate = |request: &str| Probe {
        target,
        bind: None,
        timeout: Duration::from_secs(2),
        kind: ProbeKind::Negotiate {
            tls: None,
            http: false,
            host: String::new(),
            request: request.to_owned(),
            receive: Some(regex::bytes::Regex::new(r"^\+PONG").unwrap()),
        },
    };
    negotiate("PING\r\n")
        .run()
        .await
        .expect("the reply matches");
    let err = negotiate("HELLO\r\n").run().await.unwrap_err();
    assert!(matches!(err, ProbeError::NoMatch { .. }), "{err}");
}
