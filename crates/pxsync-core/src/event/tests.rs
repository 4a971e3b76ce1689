use super::*;
use crate::fold::{OrderState, fold, fold_owned};
use crate::order::observe;
use proptest::prelude::*;
use serde_json::{Value, json};

fn ctx(at: &str) -> (String, Timestamp) {
    (
        "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b".to_owned(),
        Timestamp::parse(at).unwrap(),
    )
}

/// The golden samples, compiled in (the core does no I/O, not even in tests).
fn golden(path: &str) -> Value {
    let text = match path {
        "golden/planexpo/order.json" => {
            include_str!("../../../../proto/golden/planexpo/order.json")
        }
        "golden/planexpo/tombstone.json" => {
            include_str!("../../../../proto/golden/planexpo/tombstone.json")
        }
        "events/order.observed.v1.json" => {
            include_str!("../../../../proto/events/order.observed.v1.json")
        }
        "events/order.rejected.v1.json" => {
            include_str!("../../../../proto/events/order.rejected.v1.json")
        }
        "events/order.rejected.whole.v1.json" => {
            include_str!("../../../../proto/events/order.rejected.whole.v1.json")
        }
        other => panic!("no golden sample {other}"),
    };
    serde_json::from_str(text).unwrap()
}

fn revision(raw: &Value, rev: u64, status: &str, qty: u64) -> Value {
    let mut o = raw.clone();
    o["revision"] = json!(rev);
    o["status"] = json!(status);
    o["updated_at"] = json!(format!("2026-03-02T10:00:{:02}Z", rev % 60));
    o["lines"][0]["quantity"] = json!(qty);
    o
}

fn derive_one(prev: &Previous, raw: &Value) -> Vec<EventEnvelope> {
    let (inwink, at) = ctx("2026-03-02T12:00:00Z");
    let c = DeriveContext {
        inwink_event_id: &inwink,
        recorded_at: at,
        traceparent: None,
    };
    derive_events(prev, observe(raw).unwrap(), &c)
}

#[test]
fn ids_are_deterministic_per_revision_and_kind() {
    let a = event_id("santexpo-2024", "ord_7QH2K", 7, EventKind::OrderObserved);
    assert_eq!(
        a,
        event_id("santexpo-2024", "ord_7QH2K", 7, EventKind::OrderObserved)
    );
    assert_ne!(
        a,
        event_id("santexpo-2024", "ord_7QH2K", 8, EventKind::OrderObserved)
    );
    assert_ne!(
        a,
        event_id("santexpo-2024", "ord_7QH2K", 7, EventKind::OrderRejected)
    );
    assert_ne!(
        a,
        event_id("other", "ord_7QH2K", 7, EventKind::OrderObserved)
    );
    assert_eq!(a.get_version_num(), 5);
}

#[test]
fn first_observation_then_changes_then_dedupe() {
    let raw = golden("golden/planexpo/order.json");
    let first = derive_one(&Previous::default(), &raw);
    assert_eq!(first.len(), 1);
    let EventData::Observed(o) = &first[0].data else {
        panic!()
    };
    assert_eq!(o.changes, [Change::FirstSeen, Change::Validated]);
    let prev = Previous::default().after(&first);
    assert!(
        derive_one(&prev, &raw).is_empty(),
        "the same revision publishes nothing"
    );

    let mut next = raw.clone();
    next["revision"] = json!(8);
    next["status"] = json!("cancelled");
    next["lines"][0]["quantity"] = json!(5);
    next["booking_contact"]["email"] = json!("c.durand@acme.example");
    let second = derive_one(&prev, &next);
    let EventData::Observed(o) = &second[0].data else {
        panic!()
    };
    assert_eq!(
        o.changes,
        [Change::Withdrawn, Change::ContactEmail, Change::Lines]
    );
}

#[test]
fn a_bad_unit_yields_a_rejection_next_to_the_snapshot() {
    let mut raw = golden("golden/planexpo/order.json");
    raw["booking_contact"]["email"] = json!("nope");
    let events = derive_one(&Previous::default(), &raw);
    assert_eq!(
        events.iter().map(EventEnvelope::kind).collect::<Vec<_>>(),
        [EventKind::OrderObserved, EventKind::OrderRejected]
    );
    let EventData::Rejected(r) = &events[1].data else {
        panic!()
    };
    assert!(!r.whole_order);
    assert_eq!(r.problems[0].field, "booking_contact.email");
}

#[test]
fn a_tombstone_carries_the_previous_units() {
    let raw = golden("golden/planexpo/order.json");
    let prev = Previous::default().after(&derive_one(&Previous::default(), &raw));
    let tomb = golden("golden/planexpo/tombstone.json");
    let events = derive_one(&prev, &tomb);
    let EventData::Observed(o) = &events[0].data else {
        panic!()
    };
    assert_eq!(o.snapshot.status, crate::order::OrderStatus::Deleted);
    assert_eq!(
        o.snapshot.partner.as_ref().unwrap().company_name,
        "Acme Médical"
    );
    assert_eq!(o.changes, [Change::Withdrawn]);
}

#[test]
fn encode_decode_roundtrip_and_versions() {
    let raw = golden("golden/planexpo/order.json");
    let mut bad = raw.clone();
    bad["lines"][0]["quantity"] = json!(-3);
    for e in derive_one(&Previous::default(), &raw)
        .into_iter()
        .chain(derive_one(&Previous::default(), &bad))
    {
        assert_eq!(decode(&encode(&e)).unwrap(), e);
    }
    let mut v: Value =
        serde_json::from_slice(&encode(&derive_one(&Previous::default(), &raw)[0])).unwrap();
    v["schema_version"] = json!(2);
    assert!(matches!(
        decode(v.to_string().as_bytes()),
        Err(DecodeError::NewerSchema { found: 2, .. })
    ));
    assert!(matches!(
        decode(b"not json"),
        Err(DecodeError::Undecodable(_))
    ));
    v["schema_version"] = json!(1);
    v["kind"] = json!("order.exploded");
    assert!(matches!(
        decode(v.to_string().as_bytes()),
        Err(DecodeError::Undecodable(_))
    ));
}

/// Golden samples of every event kind and version: if one stops decoding, old event logs can no
/// longer be replayed.
#[test]
fn golden_event_samples_decode() {
    for name in [
        "order.observed.v1.json",
        "order.rejected.v1.json",
        "order.rejected.whole.v1.json",
    ] {
        let value = golden(&format!("events/{name}"));
        let event = decode(value.to_string().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(event.schema_version, 1, "{name}");
        let again: Value = serde_json::from_slice(&encode(&event)).unwrap();
        assert_eq!(again, value, "{name} re-encodes identically");
    }
}

proptest! {
    #![proptest_config(crate::test_config())]

    /// Snapshots fed in any order, with duplicates: no duplicate event id, and the same final state.
    #[test]
    fn derivation_and_fold_ignore_order_and_duplicates(
        statuses in prop::collection::vec(prop::sample::select(vec!["validated", "submitted", "cancelled", "draft"]), 1..6),
        quantities in prop::collection::vec(0u64..20, 6),
        feed in prop::collection::vec(0usize..6, 1..20),
    ) {
        let raw = golden("golden/planexpo/order.json");
        let revisions: Vec<Value> = statuses.iter().enumerate()
            .map(|(i, s)| revision(&raw, i as u64 + 1, s, quantities[i])).collect();
        let feed: Vec<&Value> = feed.iter().map(|i| &revisions[i % revisions.len()])
            .chain(revisions.last()).collect();

        let mut prev = Previous::default();
        let mut ids = std::collections::BTreeSet::new();
        let mut state = OrderState::default();
        for raw in feed {
            let events = derive_one(&prev, raw);
            for e in &events {
                prop_assert!(ids.insert(e.event_id), "duplicate event id");
                fold(&mut state, e);
                // What order_state keeps beside the fold state agrees with the desired state.
                let keys = crate::desired::desired_keys(&state);
                let desired = crate::desired::desired_order(&state, &crate::mask::Mask::default());
                prop_assert_eq!(keys.is_some(), desired.is_some());
                if let (Some(k), Some(d)) = (keys, &desired) {
                    prop_assert_eq!(k.parent_order_id, d.parent_order_id.as_deref());
                    prop_assert_eq!(k.email_key, d.participant.as_ref().map(|p| p.email_key.clone()));
                    prop_assert_eq!(k.updated_at, d.updated_at);
                }
            }
            let next = prev.after(&events);
            prop_assert_eq!(&prev.after_owned(events), &next, "after_owned differs from after");
            prev = next;
        }
        let expected = observe(revisions.last().unwrap()).unwrap();
        let crate::order::Observation::Order { snapshot, .. } = expected else { panic!() };
        let got = state.snapshot.unwrap();
        prop_assert_eq!(got.revision, snapshot.revision);
        prop_assert_eq!(got.status, snapshot.status);
        prop_assert_eq!(got.lines, snapshot.lines);
    }

    /// The fold gives the same state whatever the order and duplication of the events.
    #[test]
    fn fold_is_order_insensitive(perm in Just((0..8usize).collect::<Vec<_>>()).prop_shuffle(), dups in prop::collection::vec(0usize..8, 0..8)) {
        let raw = golden("golden/planexpo/order.json");
        let mut prev = Previous::default();
        let mut all = Vec::new();
        for rev in 1..=8u64 {
            let mut r = revision(&raw, rev, if rev % 3 == 0 { "cancelled" } else { "validated" }, rev * 2);
            if rev == 5 { r["booking_contact"]["email"] = json!("bad"); }
            let events = derive_one(&prev, &r);
            prev = prev.after(&events);
            all.push(events);
        }
        let mut in_order = OrderState::default();
        for e in all.iter().flatten() { fold(&mut in_order, e); }
        let mut shuffled = OrderState::default();
        for i in perm.iter().chain(dups.iter()) { for e in &all[*i] { fold(&mut shuffled, e); } }
        prop_assert_eq!(&in_order, &shuffled);
        // Folding owned events (as a replay does) gives the same state and outcomes.
        let (mut borrowed, mut owned) = (OrderState::default(), OrderState::default());
        for i in perm.iter().chain(dups.iter()) {
            for e in &all[*i] {
                prop_assert_eq!(fold(&mut borrowed, e), fold_owned(&mut owned, e.clone()));
            }
        }
        prop_assert_eq!(&owned, &in_order);
    }
}
