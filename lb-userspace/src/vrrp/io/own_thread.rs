//! The VRRP runtime on a thread of its own, with its own event loop.
//!
//! The daemon's loop does work whose length grows with the traffic: a
//! data-plane update writes rings of 16,381 entries, `lbd status` and
//! `/metrics` walk the conntrack map, the flow sync installs a peer's
//! flows. On one thread with VRRP, any of these delays adverts and the
//! actions of a state change (a handover's priority-0 advert, removing the
//! VIP); at sub-second advert intervals the peer then takes over, or both
//! nodes hold the VIP for a moment. Here VRRP's sockets, timers, netlink
//! connection and scripts all live on the VRRP thread, so its timing does
//! not depend on anything else the daemon does.

use tokio::sync::oneshot;

use super::{InstanceStatus, RuntimeError, RuntimeOptions, VrrpHandle, prepare};
use crate::config::Config;

/// A runtime prepared on its thread, waiting for `start`.
#[derive(Debug)]
pub struct PreparedThread {
    initial: Vec<InstanceStatus>,
    go: oneshot::Sender<()>,
    handle: oneshot::Receiver<VrrpHandle>,
}

/// Prepares the runtime on a new thread (stale VIPs are removed there
/// before this returns); the instances begin at `start`. Dropping the
/// result instead ends the thread, undoing the preparation.
pub fn prepare_on_own_thread(
    config: &Config,
    options: &RuntimeOptions,
) -> Result<PreparedThread, RuntimeError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (go, go_rx) = oneshot::channel::<()>();
    let (handle_tx, handle) = oneshot::channel();
    let config = config.clone();
    let options = options.clone();
    std::thread::Builder::new()
        .name("lbd-vrrp".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = ready_tx.send(Err(RuntimeError::Thread(err)));
                    return;
                }
            };
            runtime.block_on(async move {
                let prepared = match prepare(&config, &options).await {
                    Ok(prepared) => prepared,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(prepared.initial_states()));
                if go_rx.await.is_err() {
                    return;
                }
                let handle = prepared.start();
                let finished = handle.finished_signal();
                if handle_tx.send(handle).is_err() {
                    return;
                }
                // The runtime ends once the loop has stopped (its handle
                // asked it to, or the daemon went away).
                finished.await;
            });
        })
        .map_err(RuntimeError::Thread)?;
    let initial = ready_rx
        .recv()
        .map_err(|_| RuntimeError::Thread(std::io::Error::other("the VRRP thread ended")))??;
    Ok(PreparedThread {
        initial,
        go,
        handle,
    })
}

impl PreparedThread {
    /// Every instance's status before start (all INIT).
    pub fn initial_states(&self) -> Vec<InstanceStatus> {
        self.initial.clone()
    }

    /// Starts the instances on their thread.
    pub async fn start(self) -> Result<VrrpHandle, RuntimeError> {
        let _ = self.go.send(());
        self.handle
            .await
            .map_err(|_| RuntimeError::Thread(std::io::Error::other("the VRRP thread ended")))
    }
}
