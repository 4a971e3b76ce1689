//! The story of one order, in time order, from every record pxsync keeps: each Planexpo
//! revision observed and what changed, rejected units, every inwink call with its result and
//! trace id, refused decreases, heals, repairs and adoptions, and the mask remaps of its
//! products.

use crate::{Ctx, EventFilter, LoggedEvent, Result, Store};
use pxsync_core::event::EventData;
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `revision`, `rejected`, `inwink_call`, `refused_decrease`, `heal`, `remap`.
    pub kind: String,
    /// One line for people (no personal values).
    pub summary: String,
    pub trace_id: Option<String>,
}

impl Store {
    pub async fn audit_trail(&self, ev: &str, order_id: &str) -> Result<Vec<AuditEntry>> {
        let c = self.client().await?;
        let mut entries = Vec::new();
        let filter = EventFilter {
            planexpo_event: Some(ev.to_owned()),
            order_id: Some(order_id.to_owned()),
            until: None,
        };
        for logged in self.logged_events(filter).await? {
            entries.push(event_entry(&logged));
        }
        for r in c
            .query(
                "SELECT at, operation, method, route, status, code, outcome, trace_id FROM inwink_calls
                 WHERE planexpo_event = $1 AND order_id = $2 ORDER BY id",
                &[&ev, &order_id],
            )
            .await
            .ctx("read the order's inwink calls")?
        {
            let status: Option<i32> = r.get(4);
            let code: Option<String> = r.get(5);
            let summary = format!(
                "inwink {} {} {}: {}{} → {}",
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                status.map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                code.map(|c| format!(" {c}")).unwrap_or_default(),
                r.get::<_, String>(6)
            );
            entries.push(AuditEntry { at: r.get(0), kind: "inwink_call".into(), summary, trace_id: r.get(7) });
        }
        for r in c
            .query(
                "SELECT first_seen_at, product_id, floor, desired FROM refused_decreases
                 WHERE planexpo_event = $1 AND order_id = $2 ORDER BY first_seen_at",
                &[&ev, &order_id],
            )
            .await
            .ctx("read the order's refused decreases")?
        {
            let summary = format!(
                "decrease refused for product {}: inwink keeps {}, Planexpo asked for {} (never sent)",
                r.get::<_, String>(1),
                r.get::<_, i32>(2),
                r.get::<_, i32>(3)
            );
            entries.push(AuditEntry {
                at: r.get(0),
                kind: "refused_decrease".into(),
                summary,
                trace_id: None,
            });
        }
        for r in c
            .query(
                "SELECT at, kind, detail FROM heals WHERE planexpo_event = $1 AND order_id = $2 ORDER BY id",
                &[&ev, &order_id],
            )
            .await
            .ctx("read the order's heals")?
        {
            let summary = format!("{}: {}", r.get::<_, String>(1).replace('_', " "), r.get::<_, String>(2));
            entries.push(AuditEntry { at: r.get(0), kind: "heal".into(), summary, trace_id: None });
        }
        // The remaps of the products this order holds or held on inwink.
        for r in c
            .query(
                "SELECT r.recorded_at, r.version, r.planexpo_product_id, r.planexpo_product_name,
                        r.from_inwink_product_id, r.to_inwink_product_id, r.mask_row
                 FROM mask_remaps r
                 WHERE r.planexpo_event = $1 AND EXISTS (
                     SELECT 1 FROM applied_quantities q
                     WHERE q.planexpo_event = r.planexpo_event AND q.order_id = $2
                       AND q.product_id IN (r.from_inwink_product_id, r.to_inwink_product_id))
                 ORDER BY r.version",
                &[&ev, &order_id],
            )
            .await
            .ctx("read the order's remaps")?
        {
            let remap = pxsync_core::mask::Remap {
                planexpo_product_id: r.get(2),
                planexpo_product_name: r.get(3),
                from_inwink_product_id: r.get(4),
                to_inwink_product_id: r.get(5),
                row: usize::try_from(r.get::<_, i32>(6)).unwrap_or(0),
            };
            entries.push(AuditEntry {
                at: r.get(0),
                kind: "remap".into(),
                summary: format!("mask version {}: {remap}", r.get::<_, i32>(1)),
                trace_id: None,
            });
        }
        entries.sort_by_key(|e| e.at);
        Ok(entries)
    }
}

/// One event of the log told for people: a revision and what changed, or the units rejected.
/// Erased contacts change nothing here: no personal value is ever told.
fn event_entry(logged: &LoggedEvent) -> AuditEntry {
    let (kind, summary, traceparent) = match &logged.event {
        Ok(e) => {
            let summary = match &e.data {
                EventData::Observed(o) => {
                    let status = name_of(&o.snapshot.status);
                    let changes: Vec<String> = o.changes.iter().map(name_of).collect();
                    format!(
                        "Planexpo revision {} observed ({status}); changed: {}",
                        e.revision,
                        if changes.is_empty() {
                            "nothing synchronised".into()
                        } else {
                            changes.join(", ")
                        }
                    )
                }
                EventData::Rejected(r) => {
                    let problems: Vec<String> = r
                        .problems
                        .iter()
                        .map(|p| format!("{} ({})", p.field, name_of(&p.rule)))
                        .collect();
                    let whole = if r.whole_order {
                        "the whole order"
                    } else {
                        "units"
                    };
                    format!(
                        "revision {}: {whole} rejected: {}",
                        e.revision,
                        problems.join("; ")
                    )
                }
            };
            let kind = match e.data {
                EventData::Observed(_) => "revision",
                EventData::Rejected(_) => "rejected",
            };
            (kind, summary, e.traceparent.clone())
        }
        Err(err) => (
            "unreadable",
            format!(
                "event {} (position {}) cannot be read by this build: {err}",
                logged.event_id, logged.position
            ),
            None,
        ),
    };
    let summary = if logged.erased {
        format!("{summary} (booking contact erased)")
    } else {
        summary
    };
    AuditEntry {
        at: logged.projected_at,
        kind: kind.into(),
        summary,
        trace_id: traceparent.and_then(|t| t.split('-').nth(1).map(str::to_owned)),
    }
}

/// The serialised name of a unit-like enum value (`validated`, `contact_email`...).
fn name_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// An order as it stood at a moment: its story up to then, the desired state then (the fold of
/// the events logged by then through the mask then in force), and what pxsync had applied to
/// inwink by then, as far as its records tell. No personal value: the participant is only
/// said to be there or not.
#[derive(Debug, Clone, Serialize)]
pub struct AuditAsOf {
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    pub entries: Vec<AuditEntry>,
    /// The newest revision folded by then (0: none).
    pub revision: u64,
    pub mask_version: Option<i32>,
    /// `None` when the order had no usable revision by then.
    pub desired: Option<DesiredAsOf>,
    pub applied: AppliedAsOf,
}

#[derive(Debug, Clone, Serialize)]
pub struct DesiredAsOf {
    pub publish: bool,
    pub partner: bool,
    pub participant: bool,
    pub parent_order_id: Option<String>,
    pub products: std::collections::BTreeMap<String, u32>,
    pub held_products: Vec<String>,
}

/// What pxsync had applied by then. The records keep the latest value and when it was written:
/// a value last written at or before the moment is exact (`exact: true`); one written later
/// is not known for that moment (for a floor, it was at most the current one, since floors
/// only rise). The inwink calls made by then are counted from `inwink_calls`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppliedAsOf {
    pub partner_id: Option<String>,
    pub partner_exact: bool,
    pub floors: Vec<FloorAsOf>,
    pub calls_applied: i64,
    pub calls_other: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloorAsOf {
    pub product_id: String,
    pub floor: i32,
    pub exact: bool,
}

impl Store {
    /// The order as it stood at `as_of` (see [`AuditAsOf`]).
    pub async fn audit_as_of(
        &self,
        ev: &str,
        order_id: &str,
        as_of: OffsetDateTime,
    ) -> Result<AuditAsOf> {
        let mut entries = self.audit_trail(ev, order_id).await?;
        entries.retain(|e| e.at <= as_of);
        let logged = self
            .logged_events(EventFilter {
                planexpo_event: Some(ev.to_owned()),
                order_id: Some(order_id.to_owned()),
                until: Some(crate::Until::Time(as_of)),
            })
            .await?;
        let mut state = pxsync_core::fold::OrderState::default();
        for e in logged.iter().filter_map(|l| l.event.as_ref().ok()) {
            pxsync_core::fold::fold(&mut state, e);
        }
        let c = self.client().await?;
        let mask = c
            .query_opt(
                "SELECT version, mask FROM mask_versions WHERE planexpo_event = $1 AND valid_from <= $2
                 ORDER BY version DESC LIMIT 1",
                &[&ev, &as_of],
            )
            .await
            .ctx("read the mask then in force")?;
        let (mask_version, mask) = match mask {
            Some(r) => (
                Some(r.get::<_, i32>(0)),
                crate::from_json("mask_versions.mask", r.get(1))?,
            ),
            None => (None, pxsync_core::mask::Mask::default()),
        };
        let desired = pxsync_core::desired::desired_order(&state, &mask).map(|d| DesiredAsOf {
            publish: d.publish,
            partner: d.partner.is_some(),
            participant: d.participant.is_some(),
            parent_order_id: d.parent_order_id,
            products: d.products,
            held_products: d.held_products.into_iter().collect(),
        });
        let mut applied = AppliedAsOf::default();
        if let Some(r) = c
            .query_opt(
                "SELECT partner_id, updated_at <= $3 FROM applied_partners WHERE planexpo_event = $1 AND order_id = $2",
                &[&ev, &order_id, &as_of],
            )
            .await
            .ctx("read the applied partner")?
        {
            applied.partner_exact = r.get(1);
            applied.partner_id = if applied.partner_exact { r.get(0) } else { None };
        }
        applied.floors = c
            .query(
                "SELECT product_id, floor, updated_at <= $3 FROM applied_quantities
                 WHERE planexpo_event = $1 AND order_id = $2 ORDER BY product_id",
                &[&ev, &order_id, &as_of],
            )
            .await
            .ctx("read the floors")?
            .iter()
            .map(|r| FloorAsOf {
                product_id: r.get(0),
                floor: r.get(1),
                exact: r.get(2),
            })
            .collect();
        let calls = c
            .query_one(
                "SELECT count(*) FILTER (WHERE outcome = 'applied'), count(*) FILTER (WHERE outcome <> 'applied')
                 FROM inwink_calls WHERE planexpo_event = $1 AND order_id = $2 AND at <= $3",
                &[&ev, &order_id, &as_of],
            )
            .await
            .ctx("count the inwink calls")?;
        applied.calls_applied = calls.get(0);
        applied.calls_other = calls.get(1);
        Ok(AuditAsOf {
            as_of,
            entries,
            revision: state.revision(),
            mask_version,
            desired,
            applied,
        })
    }
}
