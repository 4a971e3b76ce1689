//! Synthetic Planexpo orders (raw JSON, as the feed serves them) and their events, derived with
//! the pure core exactly as the ingestor derives them.

use anyhow::Context;
use pxsync_core::Timestamp;
use pxsync_core::event::{DeriveContext, EventEnvelope, Previous, derive_events};
use pxsync_core::mask::{Mask, MaskRow, check_mask};
use pxsync_core::order::observe;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

/// The Planexpo event slug of the synthetic salon.
pub const EVENT: &str = "bench-salon-2026";
/// Its inwink event.
pub const INWINK_EVENT_ID: &str = "5d0c3b7e-9a41-4f2b-8e6d-1a2b3c4d5e6f";
/// Revisions published per order by the projection benchmark.
pub const REVISIONS: u64 = 4;

/// (product id, product name, inwink product id).
const PRODUCTS: [(&str, &str, &str); 4] = [
    ("prd_banner_2x1", "Bannière 2x1 m", "iw-banner"),
    ("prd_badge_pack10", "Pack de 10 badges", "iw-badges"),
    ("prd_pass_vip", "Pass VIP", "iw-vip"),
    ("opt_power_3kw", "Électricité 3 kW", "iw-power"),
];

const BASE: OffsetDateTime = datetime!(2026-03-02 08:00 UTC);

/// One raw order of the feed: order `i` at `revision`, with 2 or 3 lines.
///
/// `variant` changes the quantities (0 or more) and, from 2 on, the contact's job title, so that
/// successive revisions are real changes for the fold.
pub fn raw_order(i: usize, revision: u64, status: &str, seconds: i64, variant: u64) -> Value {
    let id = order_id(i);
    let company = format!("Société Banc d'Essai {i}");
    let lines: Vec<Value> = (0..2 + i % 2)
        .map(|k| {
            let (product_id, name, _) = PRODUCTS[(i + k) % PRODUCTS.len()];
            json!({
                "product_id": product_id,
                "product_name": name,
                "quantity": 1 + (i as u64 + k as u64 + variant) % 3,
            })
        })
        .collect();
    let updated_at = Timestamp::from_datetime(BASE + time::Duration::seconds(seconds));
    json!({
        "id": id,
        "public_id": format!("BX26-{i:07}"),
        "event": EVENT,
        "revision": revision,
        "updated_at": updated_at.to_rfc3339(),
        "status": status,
        "parent_order_id": null,
        "company": {
            "name": company,
            "address": {
                "street": format!("{} rue de la Paix", 1 + i % 180),
                "street2": null,
                "postal_code": "75002",
                "city": "Paris",
                "country": "FR",
            },
            "website": format!("https://www.bench-{i}.example"),
        },
        "stand": {
            "number": format!("{}{}", char::from(b'A' + (i % 8) as u8), 1 + i % 60),
            "space": "Hall 1",
            "aisle": "Allée C",
        },
        "booking_contact": {
            "civility": "Mme",
            "last_name": "Durand",
            "first_name": "Claire",
            "email": format!("claire.durand.{i}@bench-{i}.example"),
            "company": company,
            "job_title": if variant >= 2 { "Directrice commerciale" } else { "Directrice marketing" },
            "phone_1": "+33 1 23 45 67 89",
            "phone_2": null,
            "preferred_language": "fr",
        },
        "lines": lines,
    })
}

pub fn order_id(i: usize) -> String {
    format!("ord_bench{i:07}")
}

/// `n` validated orders, each first seen (one `order.observed` event each), in feed order.
pub fn validated_feed(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| raw_order(i, 1, "validated", i as i64, 0))
        .collect()
}

/// The events the ingestor derives from `raws` seen for the first time (a fresh trace context
/// each, as the ingestor does).
pub fn first_events(raws: &[Value]) -> anyhow::Result<Vec<EventEnvelope>> {
    let recorded_at = pxsync::now();
    let mut events = Vec::with_capacity(raws.len());
    for raw in raws {
        let traceparent = pxsync::new_traceparent();
        let ctx = DeriveContext {
            inwink_event_id: INWINK_EVENT_ID,
            recorded_at,
            traceparent: Some(&traceparent),
        };
        let obs = observe(raw).context("a synthetic order is not identifiable")?;
        events.extend(derive_events(&Previous::default(), obs, &ctx));
    }
    Ok(events)
}

/// `n` events: the [`REVISIONS`] revisions of `ceil(n / REVISIONS)` orders (submitted, then
/// validated, then new quantities, then a new job title), published round by round as the
/// salon's orders evolve: revision 1 of every order, then revision 2, and so on.
pub fn history(n: usize) -> anyhow::Result<(Vec<EventEnvelope>, usize)> {
    let orders = n.div_ceil(REVISIONS as usize);
    let recorded_at = pxsync::now();
    let mut previous = vec![Previous::default(); orders];
    let mut events = Vec::with_capacity(n);
    'rounds: for revision in 1..=REVISIONS {
        for (i, prev) in previous.iter_mut().enumerate() {
            if events.len() >= n {
                break 'rounds;
            }
            let status = if revision == 1 {
                "submitted"
            } else {
                "validated"
            };
            let seconds = ((revision - 1) as usize * orders + i) as i64;
            let raw = raw_order(i, revision, status, seconds, revision.saturating_sub(2));
            let traceparent = pxsync::new_traceparent();
            let ctx = DeriveContext {
                inwink_event_id: INWINK_EVENT_ID,
                recorded_at,
                traceparent: Some(&traceparent),
            };
            let obs = observe(&raw).context("a synthetic order is not identifiable")?;
            let derived = derive_events(prev, obs, &ctx);
            *prev = prev.after(&derived);
            events.extend(derived);
        }
    }
    events.truncate(n);
    Ok((events, orders.min(n)))
}

/// The mask of the synthetic salon: every product mapped.
pub fn mask() -> anyhow::Result<Mask> {
    let rows: Vec<MaskRow> = PRODUCTS
        .iter()
        .enumerate()
        .map(|(k, (id, name, inwink))| MaskRow {
            row: k + 2,
            planexpo_product_name: (*name).to_owned(),
            planexpo_product_id: Some((*id).to_owned()),
            inwink_product_name: format!("inwink {name}"),
            inwink_product_id: Some((*inwink).to_owned()),
        })
        .collect();
    let (mask, issues) = check_mask(&rows);
    anyhow::ensure!(
        issues.is_empty(),
        "the synthetic mask has {} issues",
        issues.len()
    );
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pxsync_core::event::EventKind;

    #[test]
    fn every_synthetic_revision_is_one_observed_event() {
        let feed = validated_feed(10);
        let events = first_events(&feed).unwrap();
        assert_eq!(events.len(), 10);
        assert!(events.iter().all(|e| e.kind() == EventKind::OrderObserved));

        let (events, orders) = history(21).unwrap();
        assert_eq!((events.len(), orders), (21, 6));
        assert!(events.iter().all(|e| e.kind() == EventKind::OrderObserved));
        assert_eq!(events[6].revision, 2);
        assert!(mask().is_ok());
    }
}
