//! What the flow sync did, for `lbd status` and the metrics. The sender and
//! receiver tasks bump these; the daemon reads a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use super::wire::DecodeError;

/// Live counters, shared by the tasks and the daemon.
#[derive(Debug, Default)]
pub struct Counters {
    pub events_read: AtomicU64,
    pub entries_sent: AtomicU64,
    pub datagrams_sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub datagrams_received: AtomicU64,
    pub entries_received: AtomicU64,
    pub bad_datagrams: AtomicU64,
    pub wrong_sync_id: AtomicU64,
    pub unknown_sender: AtomicU64,
    pub installed: AtomicU64,
    pub skipped_unknown_service: AtomicU64,
    pub skipped_unknown_real: AtomicU64,
    pub kept_local: AtomicU64,
    pub held_full: AtomicU64,
    pub install_errors: AtomicU64,
    /// Gauge: flows held for services not forwarding here yet.
    pub held: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    /// Counts a refused datagram by its reason.
    pub(crate) fn refused(&self, e: DecodeError) {
        match e {
            DecodeError::WrongId { .. } => Self::bump(&self.wrong_sync_id),
            _ => Self::bump(&self.bad_datagrams),
        }
    }

    pub fn snapshot(&self) -> FlowSyncView {
        let g = |c: &AtomicU64| c.load(Relaxed);
        FlowSyncView {
            events_read: g(&self.events_read),
            entries_sent: g(&self.entries_sent),
            datagrams_sent: g(&self.datagrams_sent),
            send_errors: g(&self.send_errors),
            datagrams_received: g(&self.datagrams_received),
            entries_received: g(&self.entries_received),
            bad_datagrams: g(&self.bad_datagrams),
            wrong_sync_id: g(&self.wrong_sync_id),
            unknown_sender: g(&self.unknown_sender),
            installed: g(&self.installed),
            skipped_unknown_service: g(&self.skipped_unknown_service),
            skipped_unknown_real: g(&self.skipped_unknown_real),
            kept_local: g(&self.kept_local),
            held_full: g(&self.held_full),
            install_errors: g(&self.install_errors),
            held: g(&self.held),
        }
    }
}

/// The flow sync's counters as `lbd status --json` shows them (the ring's
/// lost events are the XDP counter `flow_events_lost`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSyncView {
    /// Flow events read from the XDP program's ring.
    pub events_read: u64,
    pub entries_sent: u64,
    pub datagrams_sent: u64,
    /// Datagrams the socket refused to send (peer unreachable, ...).
    pub send_errors: u64,
    pub datagrams_received: u64,
    pub entries_received: u64,
    /// Datagrams refused: truncated, malformed, another version.
    pub bad_datagrams: u64,
    /// Datagrams of another sync id (another pair on the network).
    pub wrong_sync_id: u64,
    /// Datagrams from an address not listed in `peers`.
    pub unknown_sender: u64,
    /// Flows written to the conntrack table.
    pub installed: u64,
    /// Flows of a service not configured here.
    pub skipped_unknown_service: u64,
    /// Flows to a real server the service does not have here.
    pub skipped_unknown_real: u64,
    /// Flows this node already tracks to another real server: its own wins.
    pub kept_local: u64,
    /// Flows dropped because the table of held flows was full.
    pub held_full: u64,
    pub install_errors: u64,
    /// Flows held for services not forwarding here yet (a BACKUP's view of
    /// its peer's flows), installed on takeover.
    pub held: u64,
}

impl FlowSyncView {
    /// Every counter by a stable name, for the metrics (`held` is a gauge
    /// and not among them).
    pub fn counters(&self) -> [(&'static str, u64); 15] {
        [
            ("events_read", self.events_read),
            ("entries_sent", self.entries_sent),
            ("datagrams_sent", self.datagrams_sent),
            ("send_errors", self.send_errors),
            ("datagrams_received", self.datagrams_received),
            ("entries_received", self.entries_received),
            ("bad_datagrams", self.bad_datagrams),
            ("wrong_sync_id", self.wrong_sync_id),
            ("unknown_sender", self.unknown_sender),
            ("installed", self.installed),
            ("skipped_unknown_service", self.skipped_unknown_service),
            ("skipped_unknown_real", self.skipped_unknown_real),
            ("kept_local", self.kept_local),
            ("held_full", self.held_full),
            ("install_errors", self.install_errors),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::{super::wire, Counters};

    #[test]
    fn every_refused_datagram_is_counted_by_kind() {
        let c = Counters::default();
        for bytes in [
            &b"LB"[..],
            b"XXXX\x01\x00\x00\x00",
            b"LBFS\x09\x00\x00\x00",
            b"LBFS\x01\x00\x00\x01",
        ] {
            c.refused(wire::decode(0, bytes).unwrap_err());
        }
        c.refused(wire::decode(1, b"LBFS\x01\x00\x00\x00").unwrap_err());
        let v = c.snapshot();
        assert_eq!((v.bad_datagrams, v.wrong_sync_id), (4, 1));
    }
}
