//! What `pxsync status` shows: per salon, the switch, orders by state, parked orders and why,
//! rejected units, refused decreases, unmapped lines, the last write and the lag.

use crate::{Ctx, Result, Store};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize)]
pub struct SalonStatus {
    pub planexpo_event: String,
    pub inwink_event_id: String,
    pub enabled: bool,
    /// A pilot's orders, while only they are written.
    pub pilot_orders: Option<Vec<String>>,
    pub mask_version: Option<i32>,
    /// Orders known to the projector.
    pub orders: i64,
    /// Work-queue states: pending, waiting, parked, done.
    pub queue: BTreeMap<String, i64>,
    /// Seconds the oldest due order has been waiting.
    pub oldest_waiting_s: Option<f64>,
    pub parked: Vec<ParkedOrder>,
    pub rejected: Vec<RejectedUnit>,
    pub refused_decreases: Vec<RefusedDecrease>,
    pub unmapped: Vec<UnmappedProduct>,
    pub partners_applied: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_write_at: Option<OffsetDateTime>,
    pub feed_problems: Vec<String>,
    pub events_logged: i64,
    /// The most recent heals, repairs and adoptions.
    pub heals: Vec<crate::Heal>,
    /// Every heal, repair and adoption recorded.
    pub heals_total: i64,
    /// Mapped products inwink no longer knows: what to fix in the mask.
    pub broken_mappings: Vec<crate::BrokenMapping>,
    /// Planexpo products a mask import pointed at another inwink product (newest first).
    pub remaps: Vec<crate::MaskRemap>,
    /// inwink partners that look like an order's, created before the sync (adopt with `pxsync link`).
    pub likely_matches: Vec<crate::LikelyMatch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParkedOrder {
    pub order_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectedUnit {
    pub order_id: String,
    /// The problem, naming the order, the field and the rule (never a value).
    pub problem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefusedDecrease {
    pub order_id: String,
    pub product_id: String,
    pub floor: i32,
    pub desired: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnmappedProduct {
    pub planexpo_product_id: String,
    pub product_name: Option<String>,
    pub orders: i64,
}

impl Store {
    pub async fn status(&self, only: Option<&str>) -> Result<Vec<SalonStatus>> {
        let mut out = Vec::new();
        for salon in self.salons().await? {
            if only.is_some_and(|o| o != salon.planexpo_event) {
                continue;
            }
            out.push(self.salon_status(salon).await?);
        }
        Ok(out)
    }

    async fn salon_status(&self, salon: crate::Salon) -> Result<SalonStatus> {
        let ev = salon.planexpo_event.as_str();
        let c = self.client().await?;
        let orders: i64 = c
            .query_one(
                "SELECT count(*) FROM order_state WHERE planexpo_event = $1",
                &[&ev],
            )
            .await
            .ctx("count orders")?
            .get(0);
        let queue = c
            .query(
                "SELECT state, count(*) FROM work_queue WHERE planexpo_event = $1 GROUP BY state",
                &[&ev],
            )
            .await
            .ctx("count the queue")?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect();
        let oldest_waiting_s: Option<f64> = c
            .query_one(
                "SELECT extract(epoch FROM now() - min(updated_at))::float8 FROM work_queue
                 WHERE planexpo_event = $1 AND state IN ('pending', 'waiting')",
                &[&ev],
            )
            .await
            .ctx("measure the lag")?
            .get(0);
        let parked = c
            .query(
                "SELECT order_id, coalesce(reason, '') FROM work_queue WHERE planexpo_event = $1 AND state = 'parked' ORDER BY order_id",
                &[&ev],
            )
            .await
            .ctx("list parked orders")?
            .iter()
            .map(|r| ParkedOrder { order_id: r.get(0), reason: r.get(1) })
            .collect();
        let rejected = c
            .query(
                "SELECT order_id, state FROM order_state WHERE planexpo_event = $1 AND jsonb_array_length(json_of(state)->'problems') > 0 ORDER BY order_id",
                &[&ev],
            )
            .await
            .ctx("list rejected units")?
            .into_iter()
            .filter_map(|r| {
                let order_id: String = r.get(0);
                let state: pxsync_core::fold::OrderState = serde_json::from_slice(r.get(1)).ok()?;
                Some(
                    state
                        .current_problems()
                        .iter()
                        .map(|p| RejectedUnit { order_id: order_id.clone(), problem: p.to_string() })
                        .collect::<Vec<_>>(),
                )
            })
            .flatten()
            .collect();
        let refused_decreases = c
            .query(
                "SELECT DISTINCT ON (order_id, product_id) order_id, product_id, floor, desired, last_seen_at
                 FROM refused_decreases WHERE planexpo_event = $1 ORDER BY order_id, product_id, last_seen_at DESC",
                &[&ev],
            )
            .await
            .ctx("list refused decreases")?
            .iter()
            .map(|r| RefusedDecrease { order_id: r.get(0), product_id: r.get(1), floor: r.get(2), desired: r.get(3), last_seen_at: r.get(4) })
            .collect();
        let unmapped = c
            .query(
                "SELECT l->>'product_id', max(l->>'product_name'), count(DISTINCT s.order_id)
                 FROM order_state s, jsonb_array_elements(json_of(s.state)->'snapshot'->'lines') AS l
                 WHERE s.planexpo_event = $1 AND s.updated_at IS NOT NULL
                   AND NOT coalesce((SELECT m.mask->'products' FROM mask_versions m WHERE m.planexpo_event = s.planexpo_event
                                     ORDER BY m.version DESC LIMIT 1) ? (l->>'product_id'), false)
                 GROUP BY 1 ORDER BY 1",
                &[&ev],
            )
            .await
            .ctx("list unmapped products")?
            .iter()
            .map(|r| UnmappedProduct { planexpo_product_id: r.get(0), product_name: r.get(1), orders: r.get(2) })
            .collect();
        let partners_applied: i64 = c
            .query_one(
                "SELECT count(*) FROM applied_partners WHERE planexpo_event = $1 AND partner_id IS NOT NULL",
                &[&ev],
            )
            .await
            .ctx("count partners")?
            .get(0);
        let last_write_at: Option<OffsetDateTime> = c
            .query_one(
                "SELECT max(at) FROM inwink_calls WHERE planexpo_event = $1 AND method <> 'GET' AND outcome = 'applied'",
                &[&ev],
            )
            .await
            .ctx("find the last write")?
            .get(0);
        let feed_problems = c
            .query("SELECT message FROM feed_problems WHERE planexpo_event = $1 ORDER BY seen_at DESC LIMIT 20", &[&ev])
            .await
            .ctx("list feed problems")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let events_logged: i64 = c
            .query_one(
                "SELECT count(*) FROM event_log WHERE planexpo_event = $1",
                &[&ev],
            )
            .await
            .ctx("count events")?
            .get(0);
        let heals = self.heals(ev, 20).await?;
        let heals_total: i64 = c
            .query_one(
                "SELECT count(*) FROM heals WHERE planexpo_event = $1",
                &[&ev],
            )
            .await
            .ctx("count heals")?
            .get(0);
        let likely_matches = self.likely_matches(ev).await?;
        let broken_mappings = self.broken_mappings(ev).await?;
        let remaps = self.mask_remaps(ev).await?;
        Ok(SalonStatus {
            heals,
            heals_total,
            likely_matches,
            broken_mappings,
            remaps,
            planexpo_event: salon.planexpo_event,
            inwink_event_id: salon.inwink_event_id,
            enabled: salon.enabled,
            pilot_orders: salon.pilot_orders.clone(),
            mask_version: salon.mask_version,
            orders,
            queue,
            oldest_waiting_s,
            parked,
            rejected,
            refused_decreases,
            unmapped,
            partners_applied,
            last_write_at,
            feed_problems,
            events_logged,
        })
    }
}

impl Store {
    /// inwink calls by (salon, operation, status): the counters of `/metrics`.
    pub async fn call_counts(&self) -> Result<Vec<(String, String, Option<i32>, i64)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT planexpo_event, operation, status, count(*) FROM inwink_calls GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                &[],
            )
            .await
            .ctx("count the inwink calls")?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }
}
