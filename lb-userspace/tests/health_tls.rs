//! SSL_GET against a real TLS server (`openssl s_server -www`) whose
//! certificate a test CA signed: accepted unverified (keepalived's
//! SSL_GET), accepted with `tls_ca_file` naming that CA, refused with
//! another CA.

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

fn openssl(args: &[&str], dir: &std::path::Path) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (Debian's openssl package)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA (`ca.pem`), a server certificate it signed for `backend` and
/// 127.0.0.1, and an unrelated CA (`other-ca.pem`).
fn certificates(dir: &std::path::Path) {
    let ca = [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    ];
    openssl(
        &[
            &ca[..],
            &[
                "-subj",
                "/CN=test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
        dir,
    );
    openssl(
        &[
            &ca[..],
            &[
                "-subj",
                "/CN=other",
                "-keyout",
                "other.key",
                "-out",
                "other-ca.pem",
            ],
        ]
        .concat(),
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=backend",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:backend,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
        dir,
    );
}

fn openssl_server(dir: &std::path::Path, port: u16) -> Server {
    certificates(dir);
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
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
async fn ssl_get_verifies_only_when_asked_and_plain_http_fails() {
    let dir = std::env::temp_dir().join(format!("lbd-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let _server = openssl_server(&dir, port);
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    probe(target, Some(TlsSettings::unverified()))
        .run()
        .await
        .expect("SSL_GET of / answers 200 over TLS");
    probe(
        target,
        Some(TlsSettings::verified(&dir.join("ca.pem")).unwrap()),
    )
    .run()
    .await
    .expect("with tls_ca_file naming its CA, the certificate verifies");
    let err = probe(
        target,
        Some(TlsSettings::verified(&dir.join("other-ca.pem")).unwrap()),
    )
    .run()
    .await
    .unwrap_err();
    assert!(
        matches!(err, ProbeError::Tls(_)),
        "a certificate from another CA is refused: {err}"
    );
    assert!(
        TlsSettings::verified(&dir.join("ext.cnf"))
            .unwrap_err()
            .contains("no certificate"),
        "a CA file without certificates is refused"
    );
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
