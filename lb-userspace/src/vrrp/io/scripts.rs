//! `track_script` runners: each script runs every `interval`, a run that
//! overruns `timeout` is killed and counts as a failure, and its result
//! reaches the instances only once `rise` successes or `fall` failures in
//! a row have confirmed it (keepalived's vrrp_script).

use std::time::Duration;

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::exec::{Command, ExecError, Outcome, RunAs};
use crate::config::TrackScript;

/// A script's confirmed state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptResult {
    pub name: String,
    pub ok: bool,
}

/// One script, checked and ready to run.
#[derive(Clone, Debug)]
pub struct TrackRunner {
    name: String,
    command: Command,
    interval: Duration,
    timeout: Duration,
    rise: u32,
    fall: u32,
}

impl TrackRunner {
    /// Checks the script (program found, safe permissions, user exists);
    /// `default_user` applies when the script names none.
    pub fn prepare(script: &TrackScript, default_user: &RunAs) -> Result<Self, ExecError> {
        let run_as = match &script.user {
            Some(spec) => RunAs::parse(spec)?,
            None => default_user.clone(),
        };
        let what = format!("track script {}", script.name);
        let command = Command::prepare(&what, &script.script, run_as)?;
        Ok(Self {
            name: script.name.clone(),
            command,
            interval: script.interval,
            timeout: script.timeout.unwrap_or(script.interval),
            rise: script.rise.max(1),
            fall: script.fall.max(1),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long one run may take before it is killed.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs the script forever on its own task, sending each confirmed
    /// change, and `ran_once` after the first run (after its result, if
    /// it confirmed one). Ends when the receiver is gone.
    pub fn spawn(
        self,
        results: mpsc::Sender<ScriptResult>,
        ran_once: oneshot::Sender<()>,
    ) -> JoinHandle<()> {
        let mut ran_once = Some(ran_once);
        tokio::spawn(async move {
            let mut debounce = Debounce::new(self.rise, self.fall);
            let mut ticker = tokio::time::interval(self.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let outcome = self.command.run(&[], self.timeout).await;
                if let Some(ok) = debounce.record(outcome.ok()) {
                    if ok {
                        tracing::info!(script = %self.name, "track script now succeeding");
                    } else {
                        tracing::warn!(script = %self.name, "track script now failing: it {outcome}");
                    }
                    let result = ScriptResult {
                        name: self.name.clone(),
                        ok,
                    };
                    if results.send(result).await.is_err() {
                        return;
                    }
                } else if outcome == Outcome::TimedOut {
                    tracing::debug!(script = %self.name, "track script timed out");
                }
                if let Some(tx) = ran_once.take() {
                    let _ = tx.send(());
                }
            }
        })
    }
}

/// keepalived's rise/fall: a state is confirmed by enough equal results in
/// a row; before the first confirmation the state is unknown.
#[derive(Clone, Debug)]
pub struct Debounce {
    rise: u32,
    fall: u32,
    successes: u32,
    failures: u32,
    state: Option<bool>,
}

impl Debounce {
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise,
            fall,
            successes: 0,
            failures: 0,
            state: None,
        }
    }

    /// One run's result; `Some(new state)` when the confirmed state changes.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let confirmed = if self.successes >= self.rise {
            Some(true)
        } else if self.failures >= self.fall {
            Some(false)
        } else {
            None
        };
        match confirmed {
            Some(state) if self.state != Some(state) => {
                self.state = Some(state);
                Some(state)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_confirm_changes() {
        let mut d = Debounce::new(2, 3);
        assert_eq!(d.record(true), None);
        assert_eq!(d.record(true), Some(true));
        assert_eq!(d.record(true), None);
        assert_eq!(d.record(false), None);
        assert_eq!(d.record(false), None);
        assert_eq!(d.record(true), None, "a success resets the failures");
        assert_eq!(d.record(false), None);
        assert_eq!(d.record(false), None);
        assert_eq!(d.record(false), Some(false));
        assert_eq!(d.record(false), None);
        assert_eq!(d.record(true), None);
        assert_eq!(d.record(true), Some(true));
    }

    #[test]
    fn the_first_confirmation_is_reported_either_way() {
        let mut d = Debounce::new(1, 1);
        assert_eq!(d.record(false), Some(false));
        let mut d = Debounce::new(1, 1);
        assert_eq!(d.record(true), Some(true));
    }
}
