//! Carrying out a plan: a [`MapWriter`] performs one map operation; the
//! kernel's maps ([`AyaMaps`]) or, in host tests, `FakeMaps`.

mod aya_maps;
#[cfg(test)]
pub(crate) mod fake;

use thiserror::Error;

pub(crate) use self::aya_maps::AyaMaps;
use super::plan::{InstalledState, MapOp, Step};
use crate::dataplane::{DataplaneError, DesiredState};

/// Performs map operations.
pub(crate) trait MapWriter {
    fn apply(&mut self, op: &MapOp) -> Result<(), MapWriteError>;
}

/// A map operation that failed.
#[derive(Debug, Error)]
pub(crate) enum MapWriteError {
    #[error("the XDP object has no map named {0}")]
    MissingMap(&'static str),
    #[error("{operation} on map {map} failed")]
    Map {
        map: &'static str,
        operation: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

/// A plan that failed part way.
#[derive(Debug, Error)]
#[error("{failed}")]
pub(crate) struct ExecuteError {
    /// What failed (step `step` of the plan).
    pub(crate) step: usize,
    #[source]
    pub(crate) failed: MapWriteError,
    /// The first undo that failed too: the maps are then partly updated.
    pub(crate) rollback: Option<MapWriteError>,
}

impl From<MapWriteError> for DataplaneError {
    fn from(e: MapWriteError) -> Self {
        match e {
            MapWriteError::MissingMap(map) => DataplaneError::MissingMap(map),
            MapWriteError::Map {
                map,
                operation,
                source,
            } => DataplaneError::Map {
                map,
                operation,
                source,
            },
        }
    }
}

impl From<ExecuteError> for DataplaneError {
    fn from(e: ExecuteError) -> Self {
        if let Some(rollback) = &e.rollback {
            tracing::error!(
                error = %crate::error_text::error_chain(rollback),
                "undoing a failed data-plane update failed too: the XDP maps are partly updated"
            );
        }
        e.failed.into()
    }
}

/// Performs `steps` in order. When one fails, the undos of those done are
/// performed in reverse order, which brings back what forwarding reads to
/// the state the plan started from.
pub(crate) fn execute(writer: &mut impl MapWriter, steps: &[Step]) -> Result<(), ExecuteError> {
    for (i, step) in steps.iter().enumerate() {
        if let Err(failed) = writer.apply(&step.op) {
            let mut rollback = None;
            // Every undo is tried even after one fails: each one put back
            // is one less map out of line.
            for undo in steps[..i].iter().rev().filter_map(|s| s.undo.as_ref()) {
                if let Err(e) = writer.apply(undo) {
                    rollback.get_or_insert(e);
                }
            }
            return Err(ExecuteError {
                step: i,
                failed,
                rollback,
            });
        }
    }
    Ok(())
}

/// Installs `desired` through `writer`: plans from `state`, performs the
/// plan and, only once it all succeeded, takes the new state. On failure
/// `state` stays what it was, as do (after the undos) the maps.
pub(crate) fn install(
    state: &mut InstalledState,
    writer: &mut impl MapWriter,
    desired: &DesiredState,
) -> Result<(), DataplaneError> {
    let plan = state.plan(desired)?;
    match execute(writer, &plan.steps) {
        Ok(()) => {
            *state = plan.next;
            Ok(())
        }
        Err(e) => {
            state.keep_generations(&plan.next);
            Err(e.into())
        }
    }
}
