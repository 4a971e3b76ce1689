//! The fold: (state of one order, event) → new state and outcome.
//!
//! Architecture invariant: the fold only compares revisions. A newer revision replaces the
//! snapshot; an older or equal one changes nothing. Events are self-contained (see
//! [`crate::event::derive_events`]), so the state after a set of events does not depend on the
//! order in which they arrive, nor on duplicates.

use crate::event::{EventData, EventEnvelope};
use crate::order::{OrderSnapshot, Problem};
use serde::{Deserialize, Serialize};

/// The projector's memory of one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// The newest usable snapshot.
    pub snapshot: Option<OrderSnapshot>,
    /// The revision of the newest rejection event folded (0: none).
    pub problems_revision: u64,
    /// Its problems.
    pub problems: Vec<Problem>,
    /// True when that rejection concerned the order as a whole.
    pub whole_order_rejected: bool,
}

impl OrderState {
    pub fn revision(&self) -> u64 {
        self.snapshot
            .as_ref()
            .map_or(0, |s| s.revision)
            .max(self.problems_revision)
    }

    /// The problems of the newest revision (none when a newer clean revision followed them).
    pub fn current_problems(&self) -> &[Problem] {
        let snapshot_revision = self.snapshot.as_ref().map_or(0, |s| s.revision);
        if self.problems_revision >= snapshot_revision {
            &self.problems
        } else {
            &[]
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoldOutcome {
    /// The state changed.
    Changed,
    /// The event was older than, or the same as, what the state holds.
    Stale,
}

/// Folds one event into the state of its order.
pub fn fold(state: &mut OrderState, event: &EventEnvelope) -> FoldOutcome {
    if !is_newer(state, event) {
        return FoldOutcome::Stale;
    }
    match &event.data {
        EventData::Observed(o) => state.snapshot = Some(o.snapshot.clone()),
        EventData::Rejected(r) => {
            set_problems(state, event.revision, r.problems.clone(), r.whole_order);
        }
    }
    FoldOutcome::Changed
}

/// [`fold`], taking the event: its snapshot moves into the state instead of being copied (a
/// replay folds events it owns).
pub fn fold_owned(state: &mut OrderState, event: EventEnvelope) -> FoldOutcome {
    if !is_newer(state, &event) {
        return FoldOutcome::Stale;
    }
    match event.data {
        EventData::Observed(o) => state.snapshot = Some(o.snapshot),
        EventData::Rejected(r) => set_problems(state, event.revision, r.problems, r.whole_order),
    }
    FoldOutcome::Changed
}

/// Whether the event is newer than what the state holds of its kind.
fn is_newer(state: &OrderState, event: &EventEnvelope) -> bool {
    match &event.data {
        EventData::Observed(o) => state
            .snapshot
            .as_ref()
            .is_none_or(|s| s.revision < o.snapshot.revision),
        EventData::Rejected(_) => event.revision > state.problems_revision,
    }
}

fn set_problems(state: &mut OrderState, revision: u64, problems: Vec<Problem>, whole_order: bool) {
    state.problems_revision = revision;
    state.problems = problems;
    state.whole_order_rejected = whole_order;
}
