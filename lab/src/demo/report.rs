//! What a demo run showed, for the summary after it and for the scripted
//! test's assertions: the client's counts between one action and the next.

use std::{collections::BTreeMap, fmt, time::Duration};

use super::{
    client::{ClientCounts, GAP_MIN},
    scenario::Action,
};

/// The client's counts from one action to the next (or to the end).
#[derive(Clone, Debug)]
pub struct Phase {
    pub action: Action,
    pub from: Duration,
    pub to: Duration,
    pub answered: u64,
    pub retried: u64,
    pub errors: u64,
    pub answers: BTreeMap<String, u64>,
    /// The longest time without an answer that overlaps the phase.
    pub longest_gap: Option<Duration>,
}

/// The first MASTER stop, as the client saw it.
#[derive(Clone, Debug)]
pub struct Failover {
    pub stopped_at: Duration,
    /// When the other balancer was seen MASTER (state files, polled every
    /// 100 ms), if it was.
    pub taken_over_at: Option<Duration>,
    /// The longest time without an answer from the stop until half a
    /// second after the takeover; `None`: never [`GAP_MIN`].
    pub outage: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub duration: Duration,
    pub phases: Vec<Phase>,
    pub answered: u64,
    pub retried: u64,
    pub errors: u64,
    pub answers: BTreeMap<String, u64>,
    /// Which balancer was MASTER, each time that changed.
    pub masters: Vec<String>,
    pub failover: Option<Failover>,
    pub events: Vec<(Duration, String)>,
    pub unexpected_exits: Vec<String>,
    /// Namespaces of the lab still present after cleanup.
    pub leftovers: Vec<String>,
    pub checks: bool,
}

impl Report {
    /// The first phase that began with `action`.
    pub fn phase(&self, action: Action) -> Option<&Phase> {
        self.phases.iter().find(|p| p.action == action)
    }
}

/// `b` minus `a`, per backend.
pub fn answers_between(a: &ClientCounts, b: &ClientCounts) -> BTreeMap<String, u64> {
    b.answers
        .iter()
        .map(|(k, v)| (k.clone(), v - a.answers.get(k).copied().unwrap_or(0)))
        .collect()
}

fn per_backend(answers: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = answers.iter().map(|(k, v)| format!("{k} {v}")).collect();
    parts.join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "summary of {:.1} s: {} answered ({}), {} retried, {} errors",
            self.duration.as_secs_f64(),
            self.answered,
            per_backend(&self.answers),
            self.retried,
            self.errors
        )?;
        for p in &self.phases {
            let gap = p.longest_gap.map_or_else(
                || format!("under {} ms", GAP_MIN.as_millis()),
                |g| format!("{} ms", g.as_millis()),
            );
            writeln!(
                f,
                "  {:>5.1}-{:<5.1} s after \"{}\": {} answered ({}), {} retried, {} errors, \
                 longest time without an answer {gap}",
                p.from.as_secs_f64(),
                p.to.as_secs_f64(),
                p.action,
                p.answered,
                per_backend(&p.answers),
                p.retried,
                p.errors
            )?;
        }
        if let Some(fo) = &self.failover {
            let takeover = fo.taken_over_at.map_or_else(
                || "no balancer took over".to_owned(),
                |t| format!("the other was MASTER at {:.1} s", t.as_secs_f64()),
            );
            let outage = fo.outage.map_or_else(
                || format!("never {} ms without an answer", GAP_MIN.as_millis()),
                |g| format!("{} ms without an answer", g.as_millis()),
            );
            writeln!(
                f,
                "failover: MASTER stopped at {:.1} s, {takeover}; the client's outage: {outage}",
                fo.stopped_at.as_secs_f64()
            )?;
        }
        writeln!(f, "MASTER over time: {}", self.masters.join(" -> "))?;
        for exit in &self.unexpected_exits {
            writeln!(f, "{exit}")?;
        }
        if self.leftovers.is_empty() {
            write!(f, "lab removed: no namespace, process or file left")
        } else {
            write!(f, "namespaces left behind: {:?}", self.leftovers)
        }
    }
}
