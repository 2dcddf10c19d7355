//! Health-check state as status and metrics show it: the single place it
//! enters. Until health checks run, [`HealthBoard`] knows nothing and every
//! real server's `health` is `None` ("not checked"); the health-check
//! module fills the board (e.g. from its checkers' results) and status and
//! metrics pick it up through [`HealthBoard::view`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dataplane::{RealId, ServiceId};

/// One real server's health as last checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    pub up: bool,
    /// The last check's result in words, e.g. "HTTP 200" or "connect: refused".
    pub last_result: Option<String>,
    /// Why its last failed check run failed, and when (Unix seconds):
    /// kept after it recovers, so an operator sees what happened.
    #[serde(default)]
    pub last_failure: Option<String>,
    #[serde(default)]
    pub last_failure_at: Option<u64>,
}

/// Health per real server; empty while no checks run.
#[derive(Clone, Debug, Default)]
pub struct HealthBoard {
    reals: BTreeMap<RealId, HealthView>,
}

impl HealthBoard {
    /// Records a real server's health (for the health-check module).
    pub fn set(&mut self, key: RealId, view: HealthView) {
        self.reals.insert(key, view);
    }

    /// Forgets a real server (removed from the configuration).
    pub fn remove(&mut self, key: &RealId) {
        self.reals.remove(key);
    }

    /// Keeps only the real servers `keep` accepts (after a reload).
    pub fn retain(&mut self, mut keep: impl FnMut(&RealId) -> bool) {
        self.reals.retain(|key, _| keep(key));
    }

    pub fn view(&self, key: &RealId) -> Option<HealthView> {
        self.reals.get(key).cloned()
    }

    /// The checked real servers of one service, by address.
    pub fn of_service(&self, service: ServiceId) -> impl Iterator<Item = (&RealId, &HealthView)> {
        self.reals
            .iter()
            .filter(move |(id, _)| id.service == service)
    }
}
