//! The handle the rest of the daemon holds on the runtime: published
//! statuses, and the commands it can send (failover, maintenance, counters,
//! stop).

use std::{net::IpAddr, time::Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::vrrp::{Counters, State};

/// One instance as the rest of the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub state: State,
    pub priority: u8,
    /// Every address the instance adds when master.
    pub vips: Vec<IpAddr>,
    /// The master as far as the instance knows (itself when master).
    pub master: Option<(IpAddr, u8)>,
    /// When the current state began.
    pub since: Instant,
    /// Held BACKUP by `VrrpHandle::maintenance` until released.
    pub maintenance: bool,
    /// Handed over by `VrrpHandle::failover`; accepts any master until
    /// elected again.
    pub handed_over: bool,
}

/// Every instance's protocol counters (they change with every advert, so
/// they are asked for rather than published with the states).
#[derive(Clone, Debug, Default)]
pub struct RuntimeCounters {
    /// Per instance, in configuration order.
    pub instances: Vec<(String, Counters)>,
    /// Packets no instance took: bad IPv4 header, unknown VRID.
    pub unmatched: u64,
}

/// Why a maintenance switch was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no VRRP instance is named {0}")]
    UnknownInstance(String),
    #[error("the VRRP runtime has stopped")]
    Stopped,
}

/// The running VRRP runtime.
#[derive(Debug)]
pub struct VrrpHandle {
    /// Every instance's status, in configuration order; changes with every
    /// state or priority change.
    pub states: watch::Receiver<Vec<InstanceStatus>>,
    pub(super) commands: mpsc::Sender<Command>,
    /// `true` (or closed) once the runtime's loop has ended.
    pub(super) finished: watch::Receiver<bool>,
}

#[derive(Debug)]
pub(super) enum Command {
    Failover {
        instance: String,
        done: oneshot::Sender<bool>,
    },
    Maintenance {
        /// `None`: every instance.
        instance: Option<String>,
        on: bool,
        done: oneshot::Sender<Result<Vec<String>, CommandError>>,
    },
    Counters {
        done: oneshot::Sender<RuntimeCounters>,
    },
    Stop {
        done: oneshot::Sender<()>,
    },
}

impl VrrpHandle {
    /// Manual failover of `instance` (its whole sync group, if in one):
    /// a master hands over and then accepts any master. `false` when it
    /// was not master or does not exist.
    pub async fn failover(&self, instance: &str) -> bool {
        let (done, answer) = oneshot::channel();
        let command = Command::Failover {
            instance: instance.to_owned(),
            done,
        };
        if self.commands.send(command).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// Maintenance on or off for `instance` (its whole sync group, if in
    /// one) or, with `None`, for every instance. On, a master hands over
    /// (priority-0 advert, addresses removed) and the instance stays
    /// BACKUP, never taking over, until switched off. Returns the names of
    /// the instances switched.
    pub async fn maintenance(
        &self,
        instance: Option<&str>,
        on: bool,
    ) -> Result<Vec<String>, CommandError> {
        let (done, answer) = oneshot::channel();
        let command = Command::Maintenance {
            instance: instance.map(str::to_owned),
            on,
            done,
        };
        if self.commands.send(command).await.is_err() {
            return Err(CommandError::Stopped);
        }
        answer.await.unwrap_or(Err(CommandError::Stopped))
    }

    /// The instances' protocol counters now.
    pub async fn counters(&self) -> RuntimeCounters {
        let (done, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Counters { done })
            .await
            .is_err()
        {
            return RuntimeCounters::default();
        }
        answer.await.unwrap_or_default()
    }

    /// Stops every instance: masters send a priority-0 advert and remove
    /// their addresses; then every address lbd marked is removed, and the
    /// STOP notifications get a moment to run.
    pub async fn stop(self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Stop { done }).await.is_ok() {
            let _ = stopped.await;
        }
        self.finished_signal().await;
    }

    /// Resolves once the runtime's loop has ended, however it ended.
    pub fn finished_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut finished = self.finished.clone();
        async move {
            let _ = finished.wait_for(|done| *done).await;
        }
    }
}
