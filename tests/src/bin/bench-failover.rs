//! `cargo xtask bench failover`: how long a client loses the VIP when the
//! MASTER goes away, as the client sees it.
//!
//! Two `lbd run` nodes in the VRRP lab (v3, 0.2 s and 1 s adverts); a
//! client asks the VIP over UDP every 5 ms and notes which node answered.
//! The outage is the longest stretch without an answer around the event:
//! a clean stop (SIGTERM: priority-0 advert, so about Skew_Time) and the
//! loss of the node (lbd SIGKILLed and its link cut at once, so the backup
//! waits Master_Down_Interval). Figures, not a pass/fail.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use lb_tests::vrrp_lab::{IDENTITY_PORT, InstanceSpec, VIP, VrrpLab, node_config};

const ROUNDS: usize = 3;
const PROBE_EVERY: Duration = Duration::from_millis(5);

fn main() -> Result<()> {
    println!(
        "failover outage seen by a UDP client probing every {PROBE_EVERY:?} (median of {ROUNDS})"
    );
    for advert_int in ["0.2", "1"] {
        for (signal, name) in [
            (libc::SIGTERM, "stops (SIGTERM)"),
            (libc::SIGKILL, "is lost (SIGKILL, link cut)"),
        ] {
            let mut outages = Vec::new();
            for _ in 0..ROUNDS {
                outages.push(round(advert_int, signal)?);
            }
            outages.sort();
            let median = outages[ROUNDS / 2];
            println!(
                "  v3 advert_int {advert_int:>3} s, master {name:<27}: outage {:>7.1} ms (min {:.1}, max {:.1})",
                ms(median),
                ms(outages[0]),
                ms(outages[ROUNDS - 1])
            );
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One failover: a is MASTER, the client probes, a gets `signal`; returns
/// the longest gap between answers.
fn round(advert_int: &'static str, signal: i32) -> Result<Duration> {
    let mut lab = VrrpLab::new()?;
    let spec = |priority| InstanceSpec {
        advert_int,
        ..InstanceSpec::vi1(priority)
    };
    lab.a().start(&node_config(&[spec(150)], ""))?;
    lab.b().start(&node_config(&[spec(100)], ""))?;
    lab.wait_sole_holder(VIP, "a", Duration::from_secs(15))?;
    lab.reached_through(VIP, "a", Duration::from_secs(5))?;

    let target: SocketAddr = format!("{VIP}:{IDENTITY_PORT}").parse()?;
    let probe_for = Duration::from_secs_f64(advert_int.parse::<f64>()? * 4.0 + 2.0);
    let prober = lab.client.spawn(move || probe(target, probe_for))?;
    std::thread::sleep(Duration::from_millis(500));
    if signal == libc::SIGKILL {
        // A crashed lbd leaves its VIP; the node's kernel would still
        // answer. Losing the node means losing its link too.
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(lab.a().daemon().pid(), libc::SIGKILL) };
        lab.nodes[0].ns.ip(&["link", "set", "eth0", "down"])?;
    }
    lab.a().stop(signal)?;
    let answers = prober
        .join()
        .map_err(|_| anyhow::anyhow!("the prober panicked"))???;
    if answers.last().map(|(_, who)| who.as_str()) != Some("b") {
        bail!(
            "the client never reached b after the failover: {:?}",
            answers.last()
        );
    }
    Ok(answers
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default())
}

/// Asks `target` every [`PROBE_EVERY`] for `duration`; returns when each
/// answer came and from whom.
fn probe(target: SocketAddr, duration: Duration) -> Result<Vec<(Instant, String)>> {
    let socket = UdpSocket::bind("0.0.0.0:0").context("binding the prober")?;
    socket.set_read_timeout(Some(PROBE_EVERY))?;
    let start = Instant::now();
    let mut answers = Vec::new();
    let mut buf = [0u8; 64];
    while start.elapsed() < duration {
        // Unreachable errors while ARP is unresolved are part of the outage.
        let _ = socket.send_to(b"who?", target);
        let sent = Instant::now();
        while sent.elapsed() < PROBE_EVERY {
            match socket.recv_from(&mut buf) {
                Ok((n, _)) => {
                    answers.push((
                        Instant::now(),
                        String::from_utf8_lossy(&buf[..n]).into_owned(),
                    ));
                }
                Err(_) => break,
            }
        }
    }
    Ok(answers)
}
