//! The pure core of pxsync: the Planexpo order model and its validation, the event envelope and
//! the derivation of events, the fold to desired inwink state, the mask, and the planner with its
//! no-decrease guard.
//!
//! What this crate must never do: touch the network, a database, the file system, a clock or a
//! random number generator. Time and ids are arguments. CI enforces it (`scripts/check-pure.sh`
//! with `cargo tree`, and `clippy.toml`'s `disallowed-methods`). This is what lets the property
//! tests explore every interleaving, and what makes replays reproduce the state exactly.
//!
//! The flow: raw Planexpo JSON → [`order::observe`] → [`event::derive_events`] → (NATS, event
//! log) → [`fold::fold`] → [`desired::desired_order`] → [`plan::plan_order`] → inwink writes.

pub mod catalogue;
pub mod desired;
pub mod event;
pub mod fold;
pub mod mask;
pub mod namespace;
pub mod order;
pub mod plan;
pub mod planexpo;
pub mod timestamp;
pub mod webhook;

pub use timestamp::Timestamp;

/// Property-test configuration: `PROPTEST_CASES` caps the cases (CI sets it), 64 by default.
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // test configuration, read once; the core itself reads no environment
pub(crate) fn test_config() -> proptest::prelude::ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    proptest::prelude::ProptestConfig::with_cases(cases)
}
