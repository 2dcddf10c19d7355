//! Health-check state as status and metrics show it: the single place it
//! enters. Until health checks run, [`HealthBoard`] knows nothing and every
//! real server's `health` is `None` ("not checked"); the health-check
//! module fills the board (e.g. from its checkers' results) and status and
//! metrics pick it up through [`HealthBoard::view`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::dataplane::RealId;

/// One real server's health as last checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    pub up: bool,
    /// The last check's result in words, e.g. "HTTP 200" or "connect: refused".
    pub last_result: Option<String>,
}

/// Health per real server; empty while no checks run.
#[derive(Clone, Debug, Default)]
pub struct HealthBoard {
    reals: HashMap<RealId, HealthView>,
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
}
