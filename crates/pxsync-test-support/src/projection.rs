//! Event histories for the projector's multi-process checks (the system test and the bench),
//! and what a projection left in a namespace, in a form two namespaces can be compared by.

use pxsync_bus::Bus;
use pxsync_core::Timestamp;
use pxsync_core::desired::desired_order;
use pxsync_core::event::{DeriveContext, EventEnvelope, Previous, derive_events, encode};
use pxsync_core::fold::{OrderState, fold};
use pxsync_core::mask::{Mask, MaskRow, check_mask};
use pxsync_core::order::observe;
use pxsync_store::Store;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The salon of these histories.
pub const SALON: &str = "salon-projection-2026";
/// Its inwink event.
pub const INWINK_EVENT: &str = "6e1d4c8f-0b52-4a3c-9f7e-2b3c4d5e6f70";

const PRODUCTS: [(&str, &str); 3] = [
    ("prd_banner_2x1", "iw-banner"),
    ("prd_badge_pack10", "iw-badges"),
    ("opt_power_3kw", "iw-power"),
];

/// Registers [`SALON`] and imports its [`mask`] (`source`: who imports it, as recorded).
pub async fn prepare_salon(store: &Store, source: &str) -> anyhow::Result<()> {
    store.register_salon(SALON, INWINK_EVENT).await?;
    store.import_mask(SALON, &mask(), source).await?;
    Ok(())
}

/// The mask of [`SALON`]: every product of the histories mapped.
pub fn mask() -> Mask {
    let rows: Vec<MaskRow> = PRODUCTS
        .iter()
        .enumerate()
        .map(|(k, (id, inwink))| MaskRow {
            row: k + 2,
            planexpo_product_name: format!("produit {id}"),
            planexpo_product_id: Some((*id).to_owned()),
            inwink_product_name: format!("product {inwink}"),
            inwink_product_id: Some((*inwink).to_owned()),
        })
        .collect();
    check_mask(&rows).0
}

fn raw_order(i: usize, revision: u64) -> Value {
    let id = format!("ord_p{i:06}");
    // Every third order goes back to submitted at its second revision, and every seventh is
    // cancelled at its last: the state depends on which revision is the newest.
    let status = match revision {
        1 => "submitted",
        2 if i.is_multiple_of(3) => "submitted",
        _ if i.is_multiple_of(7) && revision >= 4 => "cancelled",
        _ => "validated",
    };
    let lines: Vec<Value> = (0..1 + i % 3)
        .map(|k| {
            let (product, _) = PRODUCTS[(i + k) % PRODUCTS.len()];
            json!({"product_id": product, "product_name": format!("produit {product}"),
                   "quantity": 1 + (i as u64 + k as u64 + revision) % 5})
        })
        .collect();
    json!({
        "id": id, "public_id": format!("PJ-{i:06}"), "event": SALON, "revision": revision,
        "updated_at": format!("2026-03-02T08:{revision:02}:00Z"),
        "status": status, "parent_order_id": null,
        "company": {"name": format!("Société {i}"), "address": null, "website": null},
        "stand": {"number": format!("B{}", i % 90), "space": null, "aisle": null},
        "booking_contact": {"civility": "M.", "last_name": "Martin", "first_name": "Louis",
            // Orders share a contact in pairs, so the per-person keys are shared too.
            "email": format!("louis.martin.{}@exemple.fr", i / 2),
            "company": null, "job_title": format!("Poste {revision}"), "phone_1": null, "phone_2": null,
            "preferred_language": "fr"},
        "lines": lines
    })
}

/// `events` events: every revision (up to 4) of ⌈events / 4⌉ orders, derived as the ingestor
/// derives them, each with a trace context of its own.
pub fn history(events: usize) -> Vec<EventEnvelope> {
    let orders = events.div_ceil(4);
    let mut all = Vec::with_capacity(events);
    for i in 0..orders {
        let mut prev = Previous::default();
        for revision in 1..=4 {
            let traceparent = format!("00-{:032x}-{:016x}-01", (i as u128) << 8 | 1, revision);
            let ctx = DeriveContext {
                inwink_event_id: INWINK_EVENT,
                recorded_at: Timestamp::EPOCH,
                traceparent: Some(&traceparent),
            };
            let derived = derive_events(
                &prev,
                observe(&raw_order(i, revision)).expect("a generated order is identifiable"),
                &ctx,
            );
            prev = prev.after(&derived);
            all.extend(derived);
        }
    }
    all.truncate(events);
    all
}

/// Publishes `events` shuffled (with `seed`), and again a copy of every `duplicate_every`-th of
/// them without a `Nats-Msg-Id`, so that JetStream keeps the duplicates in the stream. Returns
/// the number of messages published.
pub async fn publish_shuffled_with_duplicates(
    bus: &Bus,
    events: &[EventEnvelope],
    duplicate_every: usize,
    seed: u64,
) -> anyhow::Result<usize> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut order: Vec<(usize, bool)> = (0..events.len()).map(|i| (i, false)).collect();
    order.extend(
        (0..events.len())
            .filter(|i| i % duplicate_every.max(1) == 0)
            .map(|i| (i, true)),
    );
    rng.shuffle(&mut order);
    let js = bus.jetstream();
    let mut acks = std::collections::VecDeque::new();
    for &(i, duplicate) in &order {
        let e = &events[i];
        let ack = if duplicate {
            let subject = bus
                .namespace()
                .order_subject(&e.planexpo_event, &e.order_id);
            js.publish(subject, encode(e).into())
                .await
                .map_err(|err| anyhow::anyhow!("publish a duplicate: {err}"))?
        } else {
            bus.publish_async(e).await?
        };
        acks.push_back(ack);
        if acks.len() >= 256
            && let Some(ack) = acks.pop_front()
        {
            ack.await
                .map_err(|err| anyhow::anyhow!("publish acknowledgement: {err}"))?;
        }
    }
    for ack in acks {
        ack.await
            .map_err(|err| anyhow::anyhow!("publish acknowledgement: {err}"))?;
    }
    Ok(order.len())
}

/// What a projection left in a namespace, without what legitimately depends on the arrival
/// order (chain hashes, random nonces, mark counters): the logged event ids, and per order its
/// revision, fold state, desired state (computed as every reader does, through the mask in
/// force), trace context and work-queue state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedState {
    pub event_ids: Vec<String>,
    pub orders: Vec<ProjectedOrder>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedOrder {
    pub order_id: String,
    pub revision: i64,
    pub state: Value,
    pub desired: Option<Value>,
    pub traceparent: Option<String>,
    pub queue: Option<String>,
}

/// Reads the [`ProjectedState`] of a namespace.
pub async fn projected_state(store: &Store) -> anyhow::Result<ProjectedState> {
    let client = store.client().await?;
    let event_ids = client
        .query(
            "SELECT event_id::text FROM event_log ORDER BY event_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect::<Vec<String>>();
    let mut event_ids = event_ids;
    event_ids.sort();
    // The desired state as every reader computes it: the fold state through the mask in force.
    let orders = client
        .query(
            "SELECT o.order_id, o.revision, o.state, o.traceparent, q.state,
                    (SELECT m.mask FROM mask_versions m WHERE m.planexpo_event = o.planexpo_event
                     ORDER BY m.version DESC LIMIT 1)
             FROM order_state o LEFT JOIN work_queue q USING (planexpo_event, order_id)
             ORDER BY o.planexpo_event, o.order_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let state: OrderState = serde_json::from_slice(r.get(2))?;
            let mask: Mask = match r.get::<_, Option<Value>>(5) {
                Some(m) => serde_json::from_value(m)?,
                None => Mask::default(),
            };
            Ok(ProjectedOrder {
                order_id: r.get(0),
                revision: r.get(1),
                desired: desired_order(&state, &mask)
                    .map(|d| serde_json::to_value(d).unwrap_or(Value::Null)),
                state: serde_json::to_value(&state)?,
                traceparent: r.get(3),
                queue: r.get(4),
            })
        })
        .collect::<anyhow::Result<Vec<ProjectedOrder>>>()?;
    let mut orders = orders;
    orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    Ok(ProjectedState { event_ids, orders })
}

/// What the projection of `events` must leave, computed with the pure core: per order, the fold
/// of all its events and its desired state through `mask` (work queue and trace context aside).
pub fn expected_orders(events: &[EventEnvelope], mask: &Mask) -> Vec<ProjectedOrder> {
    let mut states: BTreeMap<String, OrderState> = BTreeMap::new();
    for e in events {
        fold(states.entry(e.order_id.clone()).or_default(), e);
    }
    states
        .into_iter()
        .map(|(order_id, state)| ProjectedOrder {
            order_id,
            revision: state.revision() as i64,
            desired: desired_order(&state, mask)
                .map(|d| serde_json::to_value(d).unwrap_or(Value::Null)),
            state: serde_json::to_value(&state).unwrap_or(Value::Null),
            traceparent: None,
            queue: None,
        })
        .collect()
}
