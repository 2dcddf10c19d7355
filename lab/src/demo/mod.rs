//! The demo `cargo xtask run` shows and the scripted test replays: a
//! client, two balancers (a VRRP pair, each running `lbd` with XDP on both
//! sides) and three backends serving HTTP, in network namespaces. A live
//! view (or plain lines) shows which balancer is MASTER, answers per second
//! per backend, health, and events, while keys or a scenario stop and
//! start backends and the MASTER.

mod balancer;
pub mod client;
mod http;
pub mod report;
mod running;
pub mod scenario;
pub mod sources;
mod terminal;
pub mod topology;
mod view;

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

pub use report::Report;
use report::{Failover, Phase, answers_between};
use running::Running;
pub use scenario::{Action, Scenario};
pub use terminal::interactive;

use crate::demo::client::ClientCounts;

/// The configuration both balancers run unless `--config` says otherwise.
pub const DEFAULT_CONFIG: &str = include_str!("../../demo/default.yaml");

pub struct Options {
    /// The `lbd` binary.
    pub lbd: PathBuf,
    /// The configuration both balancers run.
    pub config: PathBuf,
    /// End after this long (from when the client starts).
    pub duration: Option<Duration>,
    /// Scripted actions; without `duration` the run ends with the script.
    pub scenario: Option<Scenario>,
    /// A live view with keys (a terminal), or plain lines.
    pub live: bool,
    /// Set (by a signal handler) to end the run.
    pub interrupted: &'static AtomicBool,
    /// Time between the client's requests.
    pub request_interval: Duration,
}

const TICK: Duration = Duration::from_millis(100);

/// Runs the demo until `q`, the interrupt flag, `duration` or the end of
/// the scenario; removes everything it created, also on errors.
pub fn run(options: &Options) -> Result<Report> {
    let dir = std::env::temp_dir().join(format!("lbd-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    let result = run_in(options, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(options: &Options, dir: &Path) -> Result<Report> {
    let mut running = Running::start(&options.lbd, &options.config, dir, options.request_interval)?;
    let names = running.lab.names();
    let mut marks: Vec<(Duration, Action, ClientCounts)> = Vec::new();
    let outcome = drive(options, &mut running, &mut marks);
    let end = running.elapsed();
    let last = running.stats.snapshot();
    let shutdown = running.shutdown();
    running.observe();

    let phases = phases(&running, &marks, end, &last);
    let report = Report {
        duration: end,
        phases,
        answered: last.ok,
        retried: last.retried,
        errors: last.errors,
        answers: last.answers.clone(),
        masters: running.masters.clone(),
        failover: failover(&running, &marks, &last),
        events: running.events.clone(),
        unexpected_exits: running.unexpected_exits.clone(),
        leftovers: Vec::new(),
        checks: running.checks,
    };
    drop(running);
    outcome?;
    shutdown?;
    let leftovers = names
        .into_iter()
        .filter(|n| Path::new("/run/netns").join(n).exists())
        .collect();
    Ok(Report {
        leftovers,
        ..report
    })
}

/// The main loop: keys or scenario steps, observations, drawing.
fn drive(
    options: &Options,
    running: &mut Running,
    marks: &mut Vec<(Duration, Action, ClientCounts)>,
) -> Result<()> {
    let terminal = if options.live {
        Some(terminal::Terminal::enter().context("while preparing the terminal")?)
    } else {
        for line in view::legend(running.checks) {
            println!("{line}");
        }
        None
    };
    let end = options
        .duration
        .or_else(|| options.scenario.as_ref().map(Scenario::end));
    let mut steps = options
        .scenario
        .clone()
        .map(|s| s.steps)
        .unwrap_or_default();
    steps.reverse();
    let note = match (&options.scenario, end) {
        (Some(_), Some(end)) => format!("scenario, ends at {:.0} s", end.as_secs_f64()),
        (None, Some(end)) => format!("ends at {:.0} s", end.as_secs_f64()),
        (_, None) => "until q or Ctrl-C".to_owned(),
    };
    let mut printed = 0;
    let mut next_status = Duration::from_secs(1);
    loop {
        let tick = Instant::now();
        if options.interrupted.load(Ordering::Relaxed)
            || end.is_some_and(|e| running.elapsed() >= e)
        {
            break;
        }
        let mut actions = Vec::new();
        if let Some(terminal) = &terminal {
            for key in terminal.keys() {
                match key {
                    'q' | 'Q' => return Ok(()),
                    '1'..='3' => {
                        let i = key as usize - '1' as usize;
                        actions.push((running.toggle_backend(i), "key"));
                    }
                    'm' | 'M' => actions.push((running.toggle_master(), "key")),
                    _ => {}
                }
            }
        }
        while steps.last().is_some_and(|(at, _)| running.elapsed() >= *at) {
            if let Some((_, action)) = steps.pop() {
                actions.push((action, "scenario"));
            }
        }
        for (action, why) in actions {
            marks.push((running.elapsed(), action, running.stats.snapshot()));
            running.act(action, why)?;
        }
        running.observe();
        if let Some(terminal) = &terminal {
            terminal.draw(&view::screen(running, &note));
        } else {
            for (at, text) in &running.events[printed..] {
                println!("[{:>5.1} s] {text}", at.as_secs_f64());
            }
            printed = running.events.len();
            if running.elapsed() >= next_status {
                println!(
                    "[{:>5.1} s] {}",
                    running.elapsed().as_secs_f64(),
                    view::status_line(running)
                );
                next_status += Duration::from_secs(1);
            }
        }
        std::thread::sleep(TICK.saturating_sub(tick.elapsed()));
    }
    Ok(())
}

/// The first MASTER stop: when the other took over, and the client's
/// longest time without an answer from the stop to just after that.
fn failover(
    running: &Running,
    marks: &[(Duration, Action, ClientCounts)],
    last: &ClientCounts,
) -> Option<Failover> {
    let stopped_at = marks
        .iter()
        .find(|(_, a, _)| *a == Action::StopMaster)
        .map(|(t, _, _)| *t)?;
    let taken_over_at = running
        .master_since
        .iter()
        .copied()
        .find(|t| *t >= stopped_at);
    // Without a takeover, the whole rest of the run counts.
    let until = taken_over_at.map_or(Duration::MAX, |t| t + Duration::from_millis(500));
    let outage = last
        .gaps
        .iter()
        .filter(|g| {
            g.to.saturating_duration_since(running.started) > stopped_at
                && g.from.saturating_duration_since(running.started) < until
        })
        .map(client::Gap::length)
        .max();
    Some(Failover {
        stopped_at,
        taken_over_at,
        outage,
    })
}

/// The client's counts between consecutive actions.
fn phases(
    running: &Running,
    marks: &[(Duration, Action, ClientCounts)],
    end: Duration,
    last: &ClientCounts,
) -> Vec<Phase> {
    let mut out = Vec::new();
    for (k, (from, action, start)) in marks.iter().enumerate() {
        let (to, stop) = marks.get(k + 1).map_or((end, last), |(t, _, c)| (*t, c));
        let longest_gap = last
            .gaps
            .iter()
            .filter(|g| {
                let g_from = g.from.saturating_duration_since(running.started);
                let g_to = g.to.saturating_duration_since(running.started);
                g_to > *from && g_from < to
            })
            .map(client::Gap::length)
            .max();
        out.push(Phase {
            action: *action,
            from: *from,
            to,
            answered: stop.ok - start.ok,
            retried: stop.retried - start.retried,
            errors: stop.errors - start.errors,
            answers: answers_between(start, stop),
            longest_gap,
        });
    }
    out
}
