//! Reads the program's flow events and sends them to the peer in batches:
//! a datagram leaves when it is full or when its first flow has waited
//! `interval`, whichever comes first.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use aya::maps::{MapData, RingBuf};
use lb_common::maps::FlowEvent;
use tokio::{io::unix::AsyncFd, net::UdpSocket, time::Instant};
use tracing::warn;

use super::{Counters, wire};

/// How a batch is sent.
pub(super) struct Sending {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) destinations: Vec<SocketAddr>,
    pub(super) id: u8,
    pub(super) per_datagram: usize,
    pub(super) interval: Duration,
    pub(super) counters: Arc<Counters>,
}

/// One event from the ring's bytes (the program writes whole events; a
/// short record would be a program of another layout, and is skipped).
fn event(bytes: &[u8]) -> Option<FlowEvent> {
    if bytes.len() < size_of::<FlowEvent>() {
        return None;
    }
    // SAFETY: at least size_of::<FlowEvent>() bytes, read unaligned; every
    // bit pattern is a valid FlowEvent (plain integers and byte arrays).
    Some(unsafe { bytes.as_ptr().cast::<FlowEvent>().read_unaligned() })
}

/// Runs until the task is aborted.
pub(super) async fn run(ring: RingBuf<MapData>, sending: Sending) {
    // SAFETY: the ring owns its descriptor (a duplicate of the map's) and
    // keeps it open, unchanged, until the AsyncFd drops it.
    let registered =
        unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) };
    let mut ring = match registered {
        Ok(fd) => fd,
        Err(e) => {
            warn!("flow sync: cannot watch the XDP program's flow events: {e}");
            return;
        }
    };
    let mut batch: Vec<FlowEvent> = Vec::with_capacity(sending.per_datagram);
    let mut datagram = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            ready = ring.readable_mut() => {
                let Ok(mut guard) = ready else { return };
                while let Some(item) = guard.get_inner_mut().next() {
                    let Some(e) = event(&item) else { continue };
                    drop(item);
                    Counters::bump(&sending.counters.events_read);
                    batch.push(e);
                    if batch.len() >= sending.per_datagram {
                        send(&sending, &mut batch, &mut datagram).await;
                        deadline = None;
                    }
                }
                guard.clear_ready();
                if !batch.is_empty() && deadline.is_none() {
                    deadline = Some(Instant::now() + sending.interval);
                }
            }
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                send(&sending, &mut batch, &mut datagram).await;
                deadline = None;
            }
        }
    }
}

async fn send(sending: &Sending, batch: &mut Vec<FlowEvent>, datagram: &mut Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    wire::encode(sending.id, batch, datagram);
    for to in &sending.destinations {
        match sending.socket.send_to(datagram, to).await {
            Ok(_) => {
                Counters::bump(&sending.counters.datagrams_sent);
                Counters::add(&sending.counters.entries_sent, batch.len());
            }
            Err(_) => Counters::bump(&sending.counters.send_errors),
        }
    }
    batch.clear();
}
