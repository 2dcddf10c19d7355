//! `lbd status --connections`: the data plane's flows, walked on a
//! blocking thread (a full XDP table is 262,144 entries) and handed to the
//! client in batches through a small channel. The daemon's loop only
//! starts the walk, so VRRP, health verdicts and other requests go on
//! while it runs; a slow client slows the walk (the channel is bounded),
//! never the daemon's memory, and a client that leaves stops it.
//!
//! Also the text layout, as `ipvsadm -Lnc` prints it.

use std::{fmt::Write as _, ops::ControlFlow};

use tokio::sync::mpsc;

use super::protocol::Response;
use crate::{
    dataplane::{FlowEntry, FlowLister, FlowQuery},
    error_text::error_chain,
};

/// Flows per response line.
pub const BATCH: usize = 1000;
/// Batches in flight between the walk and the client.
const IN_FLIGHT: usize = 4;

/// Starts walking `lister`'s table; the lines of the answer arrive on the
/// returned channel, the last being [`Response::FlowsEnd`] or an error.
pub fn stream(mut lister: Box<dyn FlowLister>, query: FlowQuery) -> mpsc::Receiver<Response> {
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let mut client_left = false;
        let result = lister.list(&query, &mut |flow| {
            batch.push(flow);
            if batch.len() == BATCH {
                let flows = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.blocking_send(Response::Flows { flows }).is_err() {
                    client_left = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if client_left {
            return;
        }
        let last = match result {
            Ok(scan) => {
                if !batch.is_empty() && tx.blocking_send(Response::Flows { flows: batch }).is_err()
                {
                    return;
                }
                Response::FlowsEnd(scan)
            }
            Err(err) => Response::Error {
                message: format!("listing the flows: {}", error_chain(&err)),
            },
        };
        let _ = tx.blocking_send(last);
    });
    rx
}

/// Width of the address columns (an IPv4 address and port fits; IPv6
/// lines run longer rather than every line being wide).
const ADDRESS: usize = 22;

/// `ipvsadm -Lnc`'s heading, over the columns of [`render_flow`].
pub fn heading() -> String {
    format!(
        "{:<3} {:<7}{:<11} {:<ADDRESS$} {:<ADDRESS$} {}\n",
        "pro", "expire", "state", "source", "virtual", "destination"
    )
}

/// One flow as `ipvsadm -Lnc` prints it: expiry as minutes:seconds.
pub fn render_flow(flow: &FlowEntry) -> String {
    let mut line = String::new();
    let real = flow
        .real_server
        .map_or_else(|| "- (gone)".to_owned(), |r| r.to_string());
    let _ = writeln!(
        line,
        "{:<3} {:02}:{:02}  {:<11} {:<ADDRESS$} {:<ADDRESS$} {real}",
        flow.protocol,
        flow.expires_in_s / 60,
        flow.expires_in_s % 60,
        flow.state,
        flow.client.to_string(),
        flow.virtual_address.to_string(),
    );
    line
}

#[cfg(test)]
mod tests {
    use std::{
        net::SocketAddr,
        sync::{
            Arc, Mutex,
            atomic::{AtomicBool, Ordering},
        },
        time::{Duration, Instant},
    };

    use super::*;
    use crate::dataplane::{DataplaneError, FlowScan};

    /// A table of `n` flows; records how far the walk got.
    struct Fake {
        n: u64,
        walked: Arc<Mutex<u64>>,
        finished: Arc<AtomicBool>,
    }

    impl FlowLister for Fake {
        fn list(
            &mut self,
            query: &FlowQuery,
            each: &mut dyn FnMut(FlowEntry) -> ControlFlow<()>,
        ) -> Result<FlowScan, DataplaneError> {
            let mut scan = FlowScan::default();
            for i in 0..self.n {
                scan.scanned += 1;
                *self.walked.lock().unwrap() = scan.scanned;
                let flow = FlowEntry {
                    protocol: "TCP".into(),
                    state: "ESTABLISHED".into(),
                    client: SocketAddr::new("10.0.0.2".parse().unwrap(), (i % 60_000) as u16),
                    virtual_address: "10.0.0.1:80".parse().unwrap(),
                    real_server: Some("10.0.1.2:8080".parse().unwrap()),
                    expires_in_s: 61,
                };
                if query.matches(&flow) {
                    scan.listed += 1;
                    if each(flow).is_break() {
                        break;
                    }
                }
            }
            self.finished.store(true, Ordering::SeqCst);
            Ok(scan)
        }
    }

    fn fake(n: u64) -> (Fake, Arc<Mutex<u64>>, Arc<AtomicBool>) {
        let walked = Arc::new(Mutex::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let fake = Fake {
            n,
            walked: walked.clone(),
            finished: finished.clone(),
        };
        (fake, walked, finished)
    }

    #[tokio::test]
    async fn flows_arrive_in_bounded_batches_then_the_end() {
        let (fake, _, _) = fake(2500);
        let mut rx = stream(Box::new(fake), FlowQuery::default());
        let mut sizes = Vec::new();
        let end = loop {
            match rx.recv().await.expect("an end line") {
                Response::Flows { flows } => sizes.push(flows.len()),
                Response::FlowsEnd(scan) => break scan,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!((end.scanned, end.listed), (2500, 2500));
    }

    #[tokio::test]
    async fn a_client_that_leaves_stops_the_walk() {
        let (fake, walked, finished) = fake(1_000_000);
        let mut rx = stream(Box::new(fake), FlowQuery::default());
        assert!(matches!(rx.recv().await, Some(Response::Flows { .. })));
        drop(rx);
        let start = Instant::now();
        while !finished.load(Ordering::SeqCst) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the walk never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let at = *walked.lock().unwrap();
        assert!(
            at <= ((IN_FLIGHT + 2) * BATCH) as u64,
            "the walk went on to {at} flows with nobody reading"
        );
    }

    #[test]
    fn flows_are_laid_out_like_ipvsadm_lnc() {
        let flow = FlowEntry {
            protocol: "TCP".into(),
            state: "ESTABLISHED".into(),
            client: "10.0.0.2:40000".parse().unwrap(),
            virtual_address: "10.0.0.1:80".parse().unwrap(),
            real_server: Some("10.0.1.2:8080".parse().unwrap()),
            expires_in_s: 899,
        };
        let line = render_flow(&flow);
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words,
            [
                "TCP",
                "14:59",
                "ESTABLISHED",
                "10.0.0.2:40000",
                "10.0.0.1:80",
                "10.0.1.2:8080"
            ]
        );
        let heading = heading();
        assert_eq!(line.find("14:59"), heading.find("expire"));
        assert_eq!(line.find("ESTABLISHED"), heading.find("state"));
        assert_eq!(line.find("10.0.0.2"), heading.find("source"));
        assert_eq!(line.find("10.0.0.1:80"), heading.find("virtual"));
        assert_eq!(line.find("10.0.1.2:8080"), heading.find("destination"));
    }
}
