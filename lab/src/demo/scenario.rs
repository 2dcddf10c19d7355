//! What the demo does to the lab, by key or by script.

use std::{fmt, time::Duration};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop backend N's HTTP server (0-based): new connections are refused.
    StopBackend(usize),
    StartBackend(usize),
    /// SIGTERM to the balancer that is MASTER: a clean handover.
    StopMaster,
    /// Start the balancers that are stopped again.
    StartBalancers,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StopBackend(i) => write!(f, "stop backend-{}", i + 1),
            Self::StartBackend(i) => write!(f, "start backend-{}", i + 1),
            Self::StopMaster => f.write_str("stop the MASTER balancer"),
            Self::StartBalancers => f.write_str("start the stopped balancer"),
        }
    }
}

/// Actions at times after the client started.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub steps: Vec<(Duration, Action)>,
    /// How long after the last step the run ends (unless `--duration`).
    pub tail: Duration,
}

impl Scenario {
    /// `cargo xtask run --scenario`: backend 2 down and up, the MASTER
    /// down and up, each long enough to watch.
    pub fn standard() -> Self {
        Self::scaled(1.0)
    }

    /// The same steps, quicker: the scripted test's run.
    pub fn short() -> Self {
        Self::scaled(0.5)
    }

    fn scaled(k: f64) -> Self {
        let at = |s: f64| Duration::from_secs_f64(s * k);
        Self {
            steps: vec![
                (at(4.0), Action::StopBackend(1)),
                (at(12.0), Action::StartBackend(1)),
                (at(18.0), Action::StopMaster),
                (at(26.0), Action::StartBalancers),
            ],
            tail: at(5.0),
        }
    }

    /// When the scenario is over.
    pub fn end(&self) -> Duration {
        self.steps.last().map_or(Duration::ZERO, |(t, _)| *t) + self.tail
    }
}
