//! The runtime's task: socket readers, script runners and link polls feed
//! one loop that owns every instance.

use std::time::{Duration, Instant};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

use crate::vrrp::io::{
    link::POLL_INTERVAL,
    scripts::{ScriptResult, TrackRunner},
    setup::Prepared,
    socket::Incoming,
    unit::Unit,
};

use super::{Command, VrrpHandle};

/// Packets handled per turn of the loop before timers and commands get
/// another look.
const PACKET_BATCH: usize = 64;

/// Starts the runtime: instances begin, script runners and socket readers
/// run on their own tasks.
pub fn start(prepared: Prepared) -> VrrpHandle {
    let Prepared {
        mut runtime,
        scripts,
        connection,
    } = prepared;

    let (state_tx, states) = watch::channel(runtime.statuses());
    let (commands, mut command_rx) = mpsc::channel::<Command>(16);
    let (packet_tx, mut packets) = mpsc::channel::<(usize, Incoming)>(1024);
    let (script_tx, mut script_results) = mpsc::channel::<ScriptResult>(64);

    let mut helpers: Vec<JoinHandle<()>> = Vec::new();
    for (i, socket) in runtime.sockets.iter().enumerate() {
        let socket = socket.clone();
        let tx = packet_tx.clone();
        helpers.push(tokio::spawn(async move {
            loop {
                match socket.recv().await {
                    Ok(incoming) => {
                        if tx.send((i, incoming)).await.is_err() {
                            return;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(
                            interface = socket.interface(),
                            "VRRP socket receive failed: {err}"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    // The first notify and advert carry the effective priority (keepalived
    // users read it in their notify scripts' state files): the instances
    // start once every track script has run once. Each run is killed at
    // its timeout, so this wait is bounded.
    let first_wait = scripts
        .iter()
        .map(TrackRunner::timeout)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(1);
    let mut first_runs = Vec::new();
    for script in scripts {
        let (ran_once, first_run) = oneshot::channel();
        first_runs.push(first_run);
        helpers.push(script.spawn(script_tx.clone(), ran_once));
    }

    let (done, finished) = watch::channel(false);
    tokio::spawn(async move {
        // Waited for inside the loop, so commands (status counters, stop)
        // are answered meanwhile.
        let first_deadline = tokio::time::Instant::now() + first_wait;
        let first_runs = async move {
            for first_run in first_runs {
                let _ = tokio::time::timeout_at(first_deadline, first_run).await;
            }
        };
        tokio::pin!(first_runs);
        let mut started = false;

        let mut link_poll = tokio::time::interval(POLL_INTERVAL);
        link_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = runtime.units.iter().filter_map(Unit::poll_timeout).min();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut first_runs, if !started => {
                    started = true;
                    let now = Instant::now();
                    // A result sent just before its first-run signal.
                    while let Ok(result) = script_results.try_recv() {
                        for unit in &mut runtime.units {
                            unit.track_script(&result.name, result.ok, now);
                        }
                    }
                    runtime.apply_links(now);
                    for unit in &mut runtime.units {
                        unit.start(now);
                    }
                    runtime.run_actions().await;
                }
                command = command_rx.recv() => match command {
                    Some(Command::Failover { instance, done }) => {
                        let now = Instant::now();
                        let unit = runtime.slots.iter().find(|s| s.name == instance).map(|s| s.unit);
                        let moved = unit.is_some_and(|u| runtime.units[u].failover(now));
                        runtime.run_actions().await;
                        let _ = done.send(moved);
                    }
                    Some(Command::Maintenance { instance, on, done }) => {
                        let result = runtime.maintenance(instance.as_deref(), on, Instant::now());
                        if let Ok(names) = &result {
                            tracing::info!(instances = ?names, on, "maintenance switched");
                        }
                        runtime.run_actions().await;
                        let _ = done.send(result);
                    }
                    Some(Command::Counters { done }) => {
                        let _ = done.send(runtime.counters());
                    }
                    Some(Command::Stop { done }) => {
                        runtime.shutdown().await;
                        state_tx.send_replace(runtime.statuses());
                        let _ = done.send(());
                        break;
                    }
                    None => {
                        runtime.shutdown().await;
                        break;
                    }
                },
                () = sleep => {
                    let now = Instant::now();
                    for unit in &mut runtime.units {
                        unit.handle_timeout(now);
                    }
                    runtime.run_actions().await;
                }
                Some((socket, incoming)) = packets.recv() => {
                    // A flood must not push the adverts back: take what
                    // has queued in one go (one status update, one round
                    // of actions), and look at the clock rather than wait
                    // for the timer to be polled when an advert is due.
                    runtime.handle_packet(socket, &incoming, Instant::now());
                    for _ in 1..PACKET_BATCH {
                        let Ok((socket, incoming)) = packets.try_recv() else {
                            break;
                        };
                        runtime.handle_packet(socket, &incoming, Instant::now());
                    }
                    let now = Instant::now();
                    if deadline.is_some_and(|d| d <= now) {
                        for unit in &mut runtime.units {
                            unit.handle_timeout(now);
                        }
                    }
                    runtime.run_actions().await;
                }
                Some(result) = script_results.recv() => {
                    let now = Instant::now();
                    for unit in &mut runtime.units {
                        unit.track_script(&result.name, result.ok, now);
                    }
                    runtime.run_actions().await;
                }
                _ = link_poll.tick() => {
                    runtime.poll_links().await;
                    runtime.run_actions().await;
                }
            }
            state_tx.send_if_modified(|current| {
                let now = runtime.statuses();
                let changed = *current != now;
                *current = now;
                changed
            });
        }
        for helper in helpers {
            helper.abort();
        }
        connection.abort();
        let _ = done.send(true);
    });
    VrrpHandle {
        states,
        commands,
        finished,
    }
}
