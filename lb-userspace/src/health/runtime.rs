//! The health checks running: one task per check (its schedule, its
//! probe) reporting to one task that keeps the [`Tracker`], logs its
//! events, runs the notify scripts, and publishes the [`Verdict`] (when it
//! changes) and the [`HealthSnapshot`] (after every run).

use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};
use tracing::{debug, info, warn};

use super::{
    events::Event,
    schedule::first_run_offset,
    setup::{Prepared, PreparedCheck, ServerScripts},
    snapshot::HealthSnapshot,
    tracker::{Report, Tracker},
    verdict::Verdict,
};
use crate::{defaults::NOTIFY_TIMEOUT, exec::Command};

/// The running checks; dropping it stops them.
pub struct HealthHandle {
    /// Which servers take new flows; changes only when that changes.
    pub verdict: watch::Receiver<Verdict>,
    /// Every server's health, after every run.
    pub snapshot: watch::Receiver<HealthSnapshot>,
    _tasks: JoinSet<()>,
}

impl Prepared {
    /// The decision before any check has run (only quorum can already
    /// differ from the configuration).
    pub fn initial_verdict(&self) -> Verdict {
        let mut tracker = self.tracker.clone();
        tracker.start();
        tracker.verdict()
    }

    /// Starts every check, their first runs spread over their intervals.
    /// Must be called inside a tokio runtime.
    pub fn start(self) -> HealthHandle {
        let Prepared {
            checks,
            mut tracker,
            notify,
            quorum,
        } = self;
        let scripts = Scripts { notify, quorum };
        for event in tracker.start() {
            scripts.handle(&event);
        }
        let (verdict_tx, verdict) = watch::channel(tracker.verdict());
        let (snapshot_tx, snapshot) = watch::channel(tracker.snapshot().clone());
        let (report_tx, reports) = mpsc::channel(1024);
        let mut tasks = JoinSet::new();
        let count = checks.len();
        for (index, check) in checks.into_iter().enumerate() {
            let offset = first_run_offset(index, count, check.interval);
            tasks.spawn(run_check(check, offset, report_tx.clone()));
        }
        drop(report_tx);
        tasks.spawn(keep_books(
            tracker,
            scripts,
            reports,
            verdict_tx,
            snapshot_tx,
        ));
        HealthHandle {
            verdict,
            snapshot,
            _tasks: tasks,
        }
    }
}

/// One check forever: run, judge with its schedule, report, wait.
async fn run_check(
    mut check: PreparedCheck,
    offset: std::time::Duration,
    reports: mpsc::Sender<Report>,
) {
    tokio::time::sleep(offset).await;
    loop {
        let result = check.probe.run().await;
        let step = check.schedule.record(result.is_ok());
        let error = result.as_ref().err().map(ToString::to_string);
        match (&error, step.changed) {
            (Some(error), true) => warn!(
                check = check.kind,
                "Check on service {} failed after {} retries: {error}", check.server, check.retry
            ),
            (None, true) => info!(
                check = check.kind,
                "Check on service {} succeeded", check.server
            ),
            (Some(error), false) => {
                debug!(check = check.kind, server = %check.server, "check failed: {error}");
            }
            (None, false) => {}
        }
        let report = Report {
            check: check.id,
            ok: result.is_ok(),
            up: step.up,
            weight: result.ok().and_then(|p| p.weight),
            error,
            at: std::time::SystemTime::now(),
        };
        if reports.send(report).await.is_err() {
            return;
        }
        tokio::time::sleep(step.next).await;
    }
}

async fn keep_books(
    mut tracker: Tracker,
    scripts: Scripts,
    mut reports: mpsc::Receiver<Report>,
    verdict: watch::Sender<Verdict>,
    snapshot: watch::Sender<HealthSnapshot>,
) {
    while let Some(report) = reports.recv().await {
        let events = tracker.record(&report);
        for event in &events {
            scripts.handle(event);
        }
        let service = report.check.server.service;
        let server = report.check.server.server;
        let now = tracker.snapshot();
        snapshot.send_modify(|s| {
            if events.is_empty() {
                s.services[service].servers[server]
                    .clone_from(&now.services[service].servers[server]);
            } else {
                s.services[service].clone_from(&now.services[service]);
            }
        });
        if !events.is_empty() {
            let new = tracker.verdict();
            verdict.send_if_modified(|v| {
                if *v == new {
                    false
                } else {
                    *v = new;
                    true
                }
            });
        }
    }
    // No checks (or all ended): the verdict stands; keep the channels
    // open so the daemon does not take their closing for a crash.
    std::future::pending::<()>().await;
}

/// The scripts events run, by server and service.
struct Scripts {
    notify: Vec<Vec<ServerScripts>>,
    quorum: Vec<ServerScripts>,
}

impl Scripts {
    /// Logs the event as keepalived does and starts its script, if any.
    fn handle(&self, event: &Event) {
        let script = match event {
            Event::ServerUp { id, .. } => {
                info!("{event}");
                self.notify[id.service][id.server].up.as_ref()
            }
            Event::ServerDown { id, .. } => {
                warn!("{event}");
                self.notify[id.service][id.server].down.as_ref()
            }
            Event::WeightChanged { .. } => {
                info!("{event}");
                None
            }
            Event::QuorumGained { service, .. } => {
                info!("{event}");
                self.quorum[*service].up.as_ref()
            }
            Event::QuorumLost { service, .. } => {
                warn!("{event}");
                self.quorum[*service].down.as_ref()
            }
        };
        if let Some(command) = script {
            spawn_script(command.clone());
        }
    }
}

/// Started and left to run (killed after [`NOTIFY_TIMEOUT`]), so a slow
/// script never holds the checks back.
fn spawn_script(command: Command) {
    tokio::spawn(async move {
        let outcome = command.run(&[], NOTIFY_TIMEOUT).await;
        if !outcome.ok() {
            warn!(what = %command.what, "script {outcome}");
        }
    });
}
