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
    /// The undos from that one on, still owed to the maps.
    pub(crate) owed: Vec<MapOp>,
}

impl From<MapWriteError> for DataplaneError {
    fn from(e: MapWriteError) -> Self {
        DataplaneError::new(e)
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
            let undos: Vec<&MapOp> = steps[..i]
                .iter()
                .rev()
                .filter_map(|s| s.undo.as_ref())
                .collect();
            let (rollback, owed) = perform(writer, undos.iter().copied())
                .map_or((None, Vec::new()), |(e, at)| {
                    (Some(e), undos[at..].iter().copied().cloned().collect())
                });
            return Err(ExecuteError {
                step: i,
                failed,
                rollback,
                owed,
            });
        }
    }
    Ok(())
}

/// Performs `ops` in order up to the first failure: its error and index.
fn perform<'a>(
    writer: &mut impl MapWriter,
    ops: impl IntoIterator<Item = &'a MapOp>,
) -> Option<(MapWriteError, usize)> {
    ops.into_iter()
        .enumerate()
        .find_map(|(i, op)| writer.apply(op).err().map(|e| (e, i)))
}

/// Installs `desired` through `writer`: plans from `state`, performs the
/// plan and, only once it all succeeded, takes the new state. On failure
/// `state` stays what it was, as do (after the undos) the maps; undos that
/// failed too are retried first on the next call.
pub(crate) fn install(
    state: &mut InstalledState,
    writer: &mut impl MapWriter,
    desired: &DesiredState,
) -> Result<(), DataplaneError> {
    // Undos a failed rollback left owed come first: then the maps are
    // what `state` says again. (Each writes a whole value, so performing
    // the sequence again from the one that failed ends where it should.)
    if let Some((e, at)) = perform(writer, &state.owed) {
        state.owed.drain(..at);
        return Err(e.into());
    }
    state.owed.clear();
    let plan = state.plan(desired)?;
    match execute(writer, &plan.steps) {
        Ok(()) => {
            *state = plan.next;
            Ok(())
        }
        Err(mut e) => {
            state.keep_generations(&plan.next);
            state.owed = std::mem::take(&mut e.owed);
            Err(e.into())
        }
    }
}
