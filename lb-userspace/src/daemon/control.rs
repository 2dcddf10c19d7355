//! The control socket: a Unix stream socket only root, or the members of
//! `global.control_group`, can connect to (mode 0600, or 0660 owned by the
//! group; connecting needs write permission on it). The run directory is
//! created root-owned mode 0755 when missing (systemd's
//! `RuntimeDirectory=lbd` does the same).
//!
//! The server hands each request to the daemon's loop with a channel for
//! the answer, so requests are served between events, never concurrently
//! with a reload or a VRRP change.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::fs::{
        DirBuilderExt as _, FileTypeExt as _, OpenOptionsExt as _, PermissionsExt as _,
    },
    path::{Path, PathBuf},
    time::Duration,
};

use thiserror::Error;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{
    admission::{Admission, CLIENTS_PER_LISTENER, Waiting},
    protocol::{Request, Response},
};

pub use crate::defaults::CONTROL_SOCKET as DEFAULT_SOCKET;
/// A request line longer than this is refused (they are tiny).
const MAX_REQUEST: usize = 64 * 1024;
/// A client that sends nothing for this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum ControlError {
    #[error("creating the run directory {path}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another lbd is already listening on {0}")]
    InUse(PathBuf),
    #[error(
        "{0} exists and is not a socket: lbd will not delete it (remove it, or give another --socket)"
    )]
    NotASocket(PathBuf),
    #[error("locking {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("binding the control socket {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control_group `{0}` does not exist")]
    NoGroup(String),
    #[error("setting the permissions of {path}")]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot connect to lbd's control socket {path} (is `lbd run` running, and may you use it?)"
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to lbd over {path}")]
    Exchange {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lbd's answer is not understood: {0}")]
    Answer(String),
}

/// One request from a client, with where its answer goes.
#[derive(Debug)]
pub struct ControlRequest {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// The daemon's answer: one response, or a stream of them that another
/// task produces (a flow listing), written to the client as they come.
#[derive(Debug)]
pub enum Reply {
    Once(Response),
    Stream(mpsc::Receiver<Response>),
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Reply::Once(response)
    }
}

/// The bound control socket, and the lock that makes it this daemon's.
#[derive(Debug)]
pub struct ControlListener {
    listener: UnixListener,
    /// `<socket>.lock`, held (flock) while the socket is served: two
    /// daemons starting at once cannot both find the socket dead and
    /// replace each other's.
    _lock: std::fs::File,
}

/// Binds the socket at `path` with its permissions. A socket file nobody
/// listens on (a crash) is replaced; a live one is an error, and so is a
/// file that is not a socket (never deleted).
pub fn bind(path: &Path, group: Option<&str>) -> Result<ControlListener, ControlError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|source| ControlError::Directory {
                path: dir.to_owned(),
                source,
            })?;
    }
    let lock = lock_beside(path)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ControlError::NotASocket(path.to_owned()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse(path.to_owned()));
        }
        let _ = std::fs::remove_file(path);
    }
    let gid = group
        .map(|g| crate::exec::lookup_group(g).ok_or_else(|| ControlError::NoGroup(g.to_owned())))
        .transpose()?;
    let listener = UnixListener::bind(path).map_err(|source| ControlError::Bind {
        path: path.to_owned(),
        source,
    })?;
    let permissions = |source| ControlError::Permissions {
        path: path.to_owned(),
        source,
    };
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(permissions)?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(permissions)?;
    }
    Ok(ControlListener {
        listener,
        _lock: lock,
    })
}

/// Takes `<path>.lock`; another daemon holding it is using the socket.
fn lock_beside(path: &Path) -> Result<std::fs::File, ControlError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let failed = |source| ControlError::Lock {
        path: lock_path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(failed)?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        let err = std::io::Error::last_os_error();
        return Err(if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            ControlError::InUse(path.to_owned())
        } else {
            failed(err)
        });
    }
    Ok(file)
}

/// Serves clients: each request goes to `requests`, its answer back.
pub fn spawn(control: ControlListener, requests: mpsc::Sender<ControlRequest>) -> JoinHandle<()> {
    let admission = Admission::new("control socket", CLIENTS_PER_LISTENER);
    tokio::spawn(async move {
        // The lock lives as long as this task serves the socket.
        let ControlListener {
            listener,
            _lock: _held,
        } = control;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let Some(waiting) = admission.admit() else {
                        continue;
                    };
                    let requests = requests.clone();
                    tokio::spawn(async move {
                        if let Err(err) = serve_client(stream, waiting, &requests).await {
                            tracing::debug!("control client: {err}");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!("control socket accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

async fn serve_client(
    stream: UnixStream,
    waiting: Waiting,
    requests: &mpsc::Sender<ControlRequest>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read).take(MAX_REQUEST as u64);
    let mut line = String::new();
    let read_request = tokio::time::timeout(CLIENT_TIMEOUT, reader.read_line(&mut line));
    let Some((read, _serving)) = waiting.read(read_request).await else {
        return Ok(());
    };
    let reply = match read {
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(request) => ask_reply(requests, request).await,
            Err(err) => Reply::Once(Response::Error {
                message: format!("bad request: {err}"),
            }),
        },
        Ok(Err(err)) => return Err(err),
        Err(_) => return Ok(()),
    };
    match reply {
        Reply::Once(response) => write_line(&mut write, &response).await?,
        // A client that stops reading is dropped after CLIENT_TIMEOUT; the
        // producer sees the stream closed and stops walking.
        Reply::Stream(mut lines) => {
            while let Some(response) = lines.recv().await {
                tokio::time::timeout(CLIENT_TIMEOUT, write_line(&mut write, &response))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            }
        }
    }
    write.shutdown().await
}

async fn write_line(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    response: &Response,
) -> std::io::Result<()> {
    let mut text = serde_json::to_string(response).map_err(std::io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

/// Hands a request to the daemon's loop and waits for its answer.
pub async fn ask_reply(requests: &mpsc::Sender<ControlRequest>, request: Request) -> Reply {
    let stopping = || {
        Reply::Once(Response::Error {
            message: "lbd is stopping".into(),
        })
    };
    let (reply, answer) = oneshot::channel();
    if requests
        .send(ControlRequest { request, reply })
        .await
        .is_err()
    {
        return stopping();
    }
    answer.await.unwrap_or_else(|_| stopping())
}

/// Hands a request with a one-line answer to the daemon's loop.
pub async fn ask(requests: &mpsc::Sender<ControlRequest>, request: Request) -> Response {
    match ask_reply(requests, request).await {
        Reply::Once(response) => response,
        Reply::Stream(_) => Response::Error {
            message: "this request is answered as a stream".into(),
        },
    }
}

/// The client side: sends `request` to the daemon at `path` and returns
/// its answer (blocking; the CLI has no runtime).
pub fn request(path: &Path, request: &Request) -> Result<Response, ControlError> {
    let mut answer = None;
    request_stream(path, request, &mut |response| {
        answer = Some(response);
        false
    })?;
    answer.ok_or_else(|| ControlError::Answer("lbd closed the connection without answering".into()))
}

/// Like [`request`], for an answer of several lines: `each` gets every
/// line as it arrives and returns whether to read on.
pub fn request_stream(
    path: &Path,
    request: &Request,
    each: &mut dyn FnMut(Response) -> bool,
) -> Result<(), ControlError> {
    let mut stream =
        std::os::unix::net::UnixStream::connect(path).map_err(|source| ControlError::Connect {
            path: path.to_owned(),
            source,
        })?;
    let exchange = |source| ControlError::Exchange {
        path: path.to_owned(),
        source,
    };
    let mut line =
        serde_json::to_string(request).map_err(|e| ControlError::Answer(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(exchange)?;
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(exchange)?;
    for answer in BufReader::new(stream).lines() {
        let answer = answer.map_err(exchange)?;
        let response = serde_json::from_str(answer.trim())
            .map_err(|e| ControlError::Answer(format!("{e}: {answer}")))?;
        if !each(response) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};

    use super::*;

    /// The name and id of this process's effective group.
    fn own_group() -> (String, u32) {
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        let groups = std::fs::read_to_string("/etc/group").expect("/etc/group is readable");
        let name = groups
            .lines()
            .find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?.parse::<u32>().ok()?;
                (id == gid).then(|| name.to_owned())
            })
            .unwrap_or_else(|| panic!("gid {gid} has no name in /etc/group"));
        (name, gid)
    }

    fn temp_socket(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-control-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("run").join("lbd.sock")
    }

    #[tokio::test]
    async fn the_socket_is_for_its_owner_only_and_answers_requests() {
        let path = temp_socket("owner");
        let listener = bind(&path, None).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o600, "root (the owner) only");
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o755
        );

        // A second daemon on the same socket is refused.
        assert!(matches!(bind(&path, None), Err(ControlError::InUse(_))));

        let (tx, mut rx) = mpsc::channel(1);
        let server = spawn(listener, tx);
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                let ControlRequest { request, reply } = r;
                let _ = reply.send(Reply::Once(Response::Done {
                    message: format!("{request:?}"),
                }));
            }
        });
        let client_path = path.clone();
        let answer = tokio::task::spawn_blocking(move || request(&client_path, &Request::Reload))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            answer,
            Response::Done {
                message: "Reload".into()
            }
        );
        server.abort();
        let _ = server.await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_group_gets_0660() {
        let path = temp_socket("stale");
        drop(bind(&path, None).unwrap());
        // The file stays behind with nobody listening, as after a crash.
        assert!(path.exists());
        // This process's own group: any user may give a socket to it, so
        // the test runs as root and as a normal user alike.
        let (group, gid) = own_group();
        let _listener = bind(&path, Some(&group)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o660, "the group may connect");
        assert_eq!(meta.gid(), gid);
        assert!(matches!(
            bind(&temp_socket("nogroup"), Some("no-such-group-lbd")),
            Err(ControlError::NoGroup(_))
        ));
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_socket_is_never_deleted() {
        let path = temp_socket("regular");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "an operator's file").unwrap();
        let err = bind(&path, None).unwrap_err();
        assert!(matches!(err, ControlError::NotASocket(_)), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "an operator's file"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[tokio::test]
    async fn a_daemon_still_starting_holds_the_socket_against_a_second() {
        let path = temp_socket("race");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A stale socket from a crash: nobody listens.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        // The first daemon has found it stale and is about to replace it:
        // the second must not replace it under the first's feet.
        let first = lock_beside(&path).unwrap();
        assert!(matches!(bind(&path, None), Err(ControlError::InUse(_))));
        assert!(path.exists(), "the second removed the file");
        drop(first);
        assert!(
            bind(&path, None).is_ok(),
            "free again once the first is gone"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }
}
