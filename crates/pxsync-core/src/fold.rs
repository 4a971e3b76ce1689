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
    match &event.data {
        EventData::Observed(o) => {
            let newer = state
                .snapshot
                .as_ref()
                .is_none_or(|s| s.revision < o.snapshot.revision);
            if newer {
                state.snapshot = Some(o.snapshot.clone());
                FoldOutcome::Changed
            } else {
                FoldOutcome::Stale
            }
        }
        EventData::Rejected(r) => {
            if event.revision > state.problems_revision {
                state.problems_revision = event.revision;
                state.problems = r.problems.clone();
                state.whole_order_rejected = r.whole_order;
                FoldOutcome::Changed
            } else {
                FoldOutcome::Stale
            }
        }
    }
}
