//! The story of one order, in time order, from every record pxsync keeps: each Planexpo
//! revision observed and what changed, rejected units, every inwink call with its result and
//! trace id, refused decreases, heals, repairs and adoptions.

use crate::{Ctx, Result, Store};
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `revision`, `rejected`, `inwink_call`, `refused_decrease`, `heal`.
    pub kind: String,
    /// One line for people (no personal values).
    pub summary: String,
    pub trace_id: Option<String>,
}

impl Store {
    pub async fn audit_trail(&self, ev: &str, order_id: &str) -> Result<Vec<AuditEntry>> {
        let c = self.client().await?;
        let mut entries = Vec::new();
        for r in c
            .query(
                "SELECT projected_at, kind, revision, payload->'data', traceparent FROM event_log
                 WHERE planexpo_event = $1 AND order_id = $2 ORDER BY position",
                &[&ev, &order_id],
            )
            .await
            .ctx("read the order's events")?
        {
            let (at, kind, revision, data, tp): (
                OffsetDateTime,
                String,
                i64,
                serde_json::Value,
                Option<String>,
            ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            let trace_id = tp.and_then(|t| t.split('-').nth(1).map(str::to_owned));
            let summary = if kind == "order.observed" {
                let status = data["snapshot"]["status"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                let changes: Vec<&str> = data["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str())
                    .collect();
                format!(
                    "Planexpo revision {revision} observed ({status}); changed: {}",
                    if changes.is_empty() {
                        "nothing synchronised".into()
                    } else {
                        changes.join(", ")
                    }
                )
            } else {
                let problems: Vec<String> = data["problems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        format!(
                            "{} ({})",
                            p["field"].as_str().unwrap_or("?"),
                            p["rule"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                let whole = if data["whole_order"] == true {
                    "the whole order"
                } else {
                    "units"
                };
                format!(
                    "revision {revision}: {whole} rejected: {}",
                    problems.join("; ")
                )
            };
            let kind = if kind == "order.observed" {
                "revision"
            } else {
                "rejected"
            };
            entries.push(AuditEntry {
                at,
                kind: kind.into(),
                summary,
                trace_id,
            });
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
        entries.sort_by_key(|e| e.at);
        Ok(entries)
    }
}
