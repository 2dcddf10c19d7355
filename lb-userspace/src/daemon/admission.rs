//! How many clients the metrics listener and the control socket hold at
//! once. Every client costs a file descriptor, and the daemon's health
//! checks, scripts and GARP sockets need descriptors too: thousands of idle
//! connections (a scanner, a stuck scraper, a script opening sockets in a
//! loop) must not make the health checks fail.
//!
//! At most `cap` clients at once. A client that has not sent its request
//! yet is *waiting*; when the cap is reached the oldest waiting client is
//! closed to make room, so idle connections cannot lock an operator's
//! `lbd status` or a scrape out. Clients being answered are never closed;
//! when all of them are, the newcomer is refused.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::oneshot;

/// Clients per listener. Far below the descriptor limit lbd raises itself
/// to, far above what Prometheus and operators need.
pub const CLIENTS_PER_LISTENER: usize = 256;

#[derive(Clone, Debug)]
pub struct Admission {
    /// The listener, for the log: `metrics listener`.
    name: &'static str,
    cap: usize,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Oldest first; the sender closes that client.
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
    serving: usize,
    /// Clients closed or refused to make room, for the log.
    displaced: u64,
}

impl Admission {
    pub fn new(name: &'static str, cap: usize) -> Self {
        Self {
            name,
            cap: cap.max(1),
            state: Arc::default(),
        }
    }

    /// Admits a new client as waiting, closing the oldest waiting one if
    /// the cap is reached; `None` when every admitted client is being
    /// answered.
    pub fn admit(&self) -> Option<Waiting> {
        let mut state = self.lock();
        if state.waiting.len() + state.serving >= self.cap {
            state.displaced += 1;
            // The first time, then every thousandth: a flood logs a few lines.
            if state.displaced % 1000 == 1 {
                tracing::warn!(
                    listener = self.name,
                    displaced = state.displaced,
                    "{}: {} clients at once; closing the oldest idle one to make room",
                    self.name,
                    self.cap
                );
            }
            let (_, close) = state.waiting.pop_front()?;
            let _ = close.send(());
        }
        let id = state.next_id;
        state.next_id += 1;
        let (close, closed) = oneshot::channel();
        state.waiting.push_back((id, close));
        Some(Waiting {
            id,
            closed,
            admission: self.clone(),
        })
    }

    /// Clients closed or refused to make room since the start.
    pub fn displaced(&self) -> u64 {
        self.lock().displaced
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget(&self, id: u64) {
        self.lock().waiting.retain(|(waiting, _)| *waiting != id);
    }
}

/// A client that has not sent its request yet.
#[derive(Debug)]
pub struct Waiting {
    id: u64,
    closed: oneshot::Receiver<()>,
    admission: Admission,
}

impl Waiting {
    /// Runs `read` (reading the request) unless the client is closed to
    /// make room first; then the client is being answered until the
    /// returned guard drops.
    pub async fn read<T>(mut self, read: impl Future<Output = T>) -> Option<(T, Serving)> {
        let value = tokio::select! {
            value = read => value,
            _ = &mut self.closed => return None,
        };
        let admission = self.admission.clone();
        {
            let mut state = admission.lock();
            state.waiting.retain(|(waiting, _)| *waiting != self.id);
            state.serving += 1;
        }
        Some((value, Serving { admission }))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.admission.forget(self.id);
    }
}

/// A client being answered.
#[derive(Debug)]
pub struct Serving {
    admission: Admission,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        state.serving = state.serving.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use super::*;

    #[tokio::test]
    async fn the_oldest_idle_client_makes_room_for_a_new_one() {
        let admission = Admission::new("test", 2);
        let oldest = admission.admit().unwrap();
        let second = admission.admit().unwrap();
        let newest = admission.admit().unwrap();
        assert_eq!(admission.displaced(), 1);
        // The oldest was closed: its read never completes.
        assert!(oldest.read(pending::<()>()).await.is_none());
        // The newest reads its request and is answered.
        let (value, serving) = newest.read(async { 7 }).await.unwrap();
        assert_eq!(value, 7);
        // One serving, one waiting: the cap holds; the waiting one goes.
        let third = admission.admit().unwrap();
        assert!(second.read(pending::<()>()).await.is_none());
        drop(serving);
        drop(third);
        assert_eq!(admission.displaced(), 2);
    }

    #[tokio::test]
    async fn clients_being_answered_are_never_closed() {
        let admission = Admission::new("test", 2);
        let ((), a) = admission.admit().unwrap().read(async {}).await.unwrap();
        let ((), b) = admission.admit().unwrap().read(async {}).await.unwrap();
        assert!(admission.admit().is_none(), "both are being answered");
        drop(a);
        assert!(admission.admit().is_some(), "one finished: room again");
        drop(b);
    }

    #[tokio::test]
    async fn a_client_that_leaves_frees_its_place() {
        let admission = Admission::new("test", 1);
        let first = admission.admit().unwrap();
        drop(first);
        let second = admission.admit().unwrap();
        assert_eq!(admission.displaced(), 0);
        assert!(second.read(async {}).await.is_some());
    }
}
