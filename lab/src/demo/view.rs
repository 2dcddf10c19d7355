//! What the demo shows: a full screen for a terminal, or one status line
//! per second (and one line per event) when stdout is not a terminal.

use std::fmt::Write as _;

use super::{
    client::{CONNECT_TIMEOUT, GAP_MIN, RETRY_BUDGET},
    running::{Health, Running},
    topology::{self, BACKENDS, BALANCERS, SERVICE_PORT, VIP, balancer_addrs},
};

const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// How the client's counts and the health column are to be read.
pub(super) fn legend(checks: bool) -> Vec<String> {
    let mut lines = vec![format!(
        "retried: the connection could not be made (refused, or no SYN-ACK within {} ms), so \
         nothing was sent and the client tried a new connection, for up to {} s; \
         errors: requests that failed anyway",
        CONNECT_TIMEOUT.as_millis(),
        RETRY_BUDGET.as_secs()
    )];
    if checks {
        lines.push(
            "health: lbd's checks, as the MASTER logged them (\"Removing/Adding service\")".into(),
        );
    } else {
        lines.push(
            "health: n/a: the config has no health checks, so a stopped backend stays in \
             rotation and only the client's retries hide it"
                .into(),
        );
    }
    lines
}

fn paint(colour: &str, text: &str, width: usize) -> String {
    format!("{colour}{text:<width$}{RESET}")
}

/// The live view.
pub(super) fn screen(r: &Running, note: &str) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!(
        "{BOLD}lbd demo{RESET}: client {} -> VIP {VIP}:{SERVICE_PORT} (Maglev), {:.0} s   {note}",
        topology::CLIENT_IP,
        r.elapsed().as_secs_f64()
    ));
    out.push(String::new());
    out.push(format!(
        "{BOLD}balancers (VRRP pair, XDP on lb-front and lb-back){RESET}"
    ));
    for (i, name) in BALANCERS.iter().enumerate() {
        let state = r.state(i);
        let colour = match state {
            "MASTER" => GREEN,
            "BACKUP" => RESET,
            _ => RED,
        };
        out.push(format!(
            "  {name:<11} {:<12} {}",
            balancer_addrs(i).0,
            paint(colour, state, 10)
        ));
    }
    out.push(String::new());
    let (rates, total) = r.rates();
    let counts = r.stats.snapshot();
    out.push(format!(
        "{BOLD}  {:<11} {:<12} {:>8} {:>8}  {:<8} server{RESET}",
        "backend", "address", "req/s", "answers", "health"
    ));
    for (i, rate) in rates.iter().enumerate().take(BACKENDS) {
        let (name, addr) = topology::backend(i);
        let answers = counts.answers.get(&name).copied().unwrap_or(0);
        let health = match r.health(i) {
            Health::Up => paint(GREEN, "up", 8),
            Health::Down => paint(RED, "DOWN", 8),
            Health::Unknown => paint(YELLOW, "n/a", 8),
        };
        let server = if r.serving(i) {
            "serving".to_owned()
        } else {
            paint(RED, "stopped", 7)
        };
        out.push(format!(
            "  {name:<11} {addr:<12} {rate:>8.0} {answers:>8}  {health} {server}"
        ));
    }
    out.push(String::new());
    let errors = if counts.errors == 0 {
        paint(GREEN, "0", 1)
    } else {
        paint(RED, &counts.errors.to_string(), 1)
    };
    out.push(format!(
        "{BOLD}client{RESET}: {total:.0} req/s, {} answered, {} retried, {errors} errors",
        counts.ok, counts.retried
    ));
    if let Some((at, action)) = r.last_action {
        let longest = r.longest_gap_since(at).map_or_else(
            || format!("under {} ms", GAP_MIN.as_millis()),
            |g| format!("{} ms", g.as_millis()),
        );
        out.push(format!(
            "        since \"{action}\" at {:.1} s: longest time without an answer {longest}",
            at.as_secs_f64()
        ));
    }
    out.push(String::new());
    out.push(format!("{BOLD}events{RESET}"));
    let shown = r.events.len().saturating_sub(10);
    for (at, text) in &r.events[shown..] {
        out.push(format!("  {:>6.1} s  {text}", at.as_secs_f64()));
    }
    for _ in r.events.len() - shown..10 {
        out.push(String::new());
    }
    out.push(String::new());
    out.push(format!(
        "{BOLD}keys{RESET}: 1 2 3 stop/start a backend   m stop the MASTER / start it again   \
         q quit (Ctrl-C too)"
    ));
    out.extend(legend(r.checks));
    out
}

/// One line of the non-terminal output.
pub(super) fn status_line(r: &Running) -> String {
    let (rates, total) = r.rates();
    let counts = r.stats.snapshot();
    let master = r.master().map_or("none", |i| BALANCERS[i]);
    let mut line = format!("MASTER {master:<10} |");
    for (i, rate) in rates.iter().enumerate() {
        let health = match r.health(i) {
            Health::Up => "up",
            Health::Down => "DOWN",
            Health::Unknown => "n/a",
        };
        let server = if r.serving(i) { "" } else { ", stopped" };
        let _ = write!(
            line,
            " backend-{} {rate:>3.0}/s ({health}{server}) |",
            i + 1
        );
    }
    let _ = write!(
        line,
        " client {total:.0}/s: {} answered, {} retried, {} errors",
        counts.ok, counts.retried, counts.errors
    );
    if let Some((at, _)) = r.last_action
        && let Some(gap) = r.longest_gap_since(at)
    {
        let _ = write!(
            line,
            ", longest pause since the last action {} ms",
            gap.as_millis()
        );
    }
    line
}
