//! `pxsync dry-run`: what the emitter would write to inwink, order by order, without writing.
//!
//! Architecture invariant: the dry run holds an [`InwinkReader`], a type with no write methods,
//! so it cannot write by construction. It plans each order with the live planner against the
//! recorded state and what inwink holds now (a partner found by `planexpo_order_id`, a person by
//! e-mail, the partner's quantities), and describes each write with the client's own routes and
//! body builders ([`pxsync_inwink::describe_write`]); ids not created yet are placeholders
//! (`{partner:ORDER}`, `{participant:ORDER}`). Each order is planned on its own: a co-exhibitor
//! whose parent is created by the same run gets its link in a follow-up update.

use pxsync_core::plan::{Note, Op, ParticipantRecord, PartnerRecord, plan_order};
use pxsync_inwink::{InwinkReader, WriteDescription, describe_write};
use pxsync_store::Store;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct OrderDryRun {
    pub order_id: String,
    pub writes: Vec<WriteDescription>,
    /// For updates: the fields whose value changes, before → after.
    pub changes: Vec<FieldChange>,
    pub notes: Vec<Note>,
    /// The order's work-queue state and reason when it is waiting or parked.
    pub queue: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldChange {
    pub operation: &'static str,
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub planexpo_event: String,
    pub orders: Vec<OrderDryRun>,
    /// Orders with nothing to write (only counted).
    pub unchanged: usize,
}

/// Plans every order of the salon (or one) against what inwink holds now.
pub async fn dry_run(
    store: &Store,
    reader: &InwinkReader,
    ev: &str,
    only: Option<&str>,
) -> anyhow::Result<DryRun> {
    let mut result = DryRun {
        planexpo_event: ev.to_owned(),
        orders: Vec::new(),
        unchanged: 0,
    };
    let ids = match only {
        Some(o) => vec![o.to_owned()],
        None => store.order_ids(ev).await?,
    };
    for order_id in ids {
        let mut ctx = store.reconcile_context(ev, &order_id).await?;
        let Some(desired) = ctx
            .desired
            .as_ref()
            .map(|d| crate::emitter::with_broken_held(d, &ctx.broken_products))
        else {
            continue;
        };
        // Look at inwink where pxsync has no record yet.
        if ctx.partner.is_none()
            && let Some(p) = reader
                .find_partners_by_order(&order_id)
                .await?
                .into_iter()
                .next()
        {
            ctx.partner = Some(PartnerRecord {
                partner_id: p.id.clone(),
                sent: p.as_write(),
            });
        }
        if ctx.participant_record.is_none()
            && let Some(values) = &ctx.participant
            && let Some(r) = reader
                .find_participants_by_email(&values.email)
                .await?
                .into_iter()
                .next()
        {
            ctx.participant_record = Some(ParticipantRecord {
                participant_id: r.id.clone(),
                sent: Some(r.as_desired()),
            });
        }
        if let Some(p) = &ctx.partner {
            for held in reader
                .partner_products(&p.partner_id)
                .await
                .unwrap_or_default()
            {
                let floor = ctx.floors.entry(held.product_id).or_insert(0);
                *floor = (*floor).max(held.quantity);
            }
        }
        let plan = plan_order(ctx.plan_input(&desired));
        let partner_id = ctx.partner.as_ref().map_or_else(
            || format!("{{partner:{order_id}}}"),
            |p| p.partner_id.clone(),
        );
        let participant_id = ctx.participant_record.as_ref().map_or_else(
            || format!("{{participant:{order_id}}}"),
            |p| p.participant_id.clone(),
        );
        let event_id = reader.event_id();
        let mut changes = Vec::new();
        for op in &plan.ops {
            let before = match op {
                Op::UpdatePartner(_) => ctx
                    .partner
                    .as_ref()
                    .and_then(|p| p.sent.clone())
                    .map(Op::UpdatePartner),
                Op::UpdateParticipant(_) => ctx
                    .participant_record
                    .as_ref()
                    .and_then(|p| p.sent.clone())
                    .map(Op::UpdateParticipant),
                _ => None,
            };
            let after = describe_write(event_id, op, &partner_id, &participant_id);
            match before {
                Some(b) => {
                    let before = describe_write(event_id, &b, &partner_id, &participant_id);
                    for (field, value) in after.body.as_object().into_iter().flatten() {
                        let old = before
                            .body
                            .get(field)
                            .cloned()
                            .unwrap_or(serde_json::Value::Null);
                        if &old != value {
                            changes.push(FieldChange {
                                operation: after.operation,
                                field: field.clone(),
                                before: old,
                                after: value.clone(),
                            });
                        }
                    }
                }
                None if matches!(op, Op::UpdatePartner(_) | Op::UpdateParticipant(_)) => changes
                    .push(FieldChange {
                        operation: after.operation,
                        field: "*".into(),
                        before: serde_json::Value::String("unknown (not recorded)".into()),
                        after: serde_json::Value::String("every synchronised field".into()),
                    }),
                None => {}
            }
        }
        let writes: Vec<WriteDescription> = plan
            .ops
            .iter()
            .map(|op| describe_write(event_id, op, &partner_id, &participant_id))
            .collect();
        let notes: Vec<Note> = plan
            .notes
            .into_iter()
            .filter(|n| !matches!(n, Note::NotPublished))
            .collect();
        let queue = store
            .queue_state(ev, &order_id)
            .await?
            .filter(|(state, _)| state == "waiting" || state == "parked");
        if writes.is_empty() && notes.is_empty() && queue.is_none() {
            result.unchanged += 1;
            continue;
        }
        result.orders.push(OrderDryRun {
            order_id,
            writes,
            changes,
            notes,
            queue: queue.map(|(state, reason)| format!("{state}: {}", reason.unwrap_or_default())),
        });
    }
    Ok(result)
}

/// The dry run as a project manager reads it (no personal values: participants are named by
/// their id or placeholder only).
pub fn render(d: &DryRun) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let writes: usize = d.orders.iter().map(|o| o.writes.len()).sum();
    let _ = writeln!(
        out,
        "dry run of {}: {writes} writes for {} orders; {} orders have nothing to write",
        d.planexpo_event,
        d.orders.len(),
        d.unchanged
    );
    for o in &d.orders {
        let _ = writeln!(out, "order {}", o.order_id);
        if let Some(q) = &o.queue {
            let _ = writeln!(out, "  {q}");
        }
        for w in &o.writes {
            let what = match w.operation {
                "create_partner" | "update_partner" => format!(
                    "{} \"{}\"",
                    w.operation,
                    w.body["name"].as_str().unwrap_or("")
                ),
                "set_quantity" => format!(
                    "set_quantity {} → {}",
                    w.path.rsplit('/').next().unwrap_or(""),
                    w.body["quantity"]
                ),
                other => other.to_owned(),
            };
            let _ = writeln!(out, "  {} {}  {what}", w.method, w.route);
        }
        for c in &o.changes {
            if c.operation == "update_partner" {
                let _ = writeln!(out, "    {}: {} → {}", c.field, c.before, c.after);
            } else {
                let _ = writeln!(out, "    participant {}: changes", c.field);
            }
        }
        for n in &o.notes {
            let _ = writeln!(
                out,
                "  note: {}",
                serde_json::to_string(n).unwrap_or_default()
            );
        }
    }
    out
}
