//! `pxsync audit verify`, second part: for every order, that what pxsync recorded as applied on
//! inwink agrees with the fold of its events, except where a recorded reason explains it.
//!
//! How: the desired state is rebuilt from the event log (through the current mask) and compared
//! with the one the emitter computes from `order_state` (its fold state, through the same mask);
//! then the live planner runs against the applied records alone
//! (no inwink client: nothing is read from or written to inwink). An order whose plan still has
//! writes is explained when its salon is disabled, it is outside a pilot, its work-queue state
//! is pending, waiting or parked, or a record is marked uncertain. A decrease the planner
//! refuses is explained only when `refused_decreases` records it (otherwise a floor was raised
//! by something else than inwink's answer). Everything else is reported.

use pxsync_core::desired::{DesiredOrder, desired_order};
use pxsync_core::fold::{OrderState, fold};
use pxsync_core::plan::{Note, Op, plan_order};
use pxsync_store::{EventFilter, Store};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A difference no recorded reason explains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unexplained {
    pub planexpo_event: String,
    pub order_id: String,
    /// The rule broken, in words (no personal value).
    pub detail: String,
}

/// What the applied-state check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppliedCheck {
    pub orders: usize,
    /// Orders with a difference explained by a recorded reason, by reason.
    pub explained: BTreeMap<String, usize>,
    pub unexplained: Vec<Unexplained>,
}

fn describe(op: &Op) -> String {
    match op {
        Op::CreatePartner(_) => "no partner recorded as applied".into(),
        Op::UpdatePartner(_) => "the applied partner fields differ from the fold".into(),
        Op::CreateParticipant(_) => "no participant recorded as applied".into(),
        Op::UpdateParticipant(_) => "the applied participant fields differ from the fold".into(),
        Op::LinkTeamMember => "no team link recorded".into(),
        Op::SetQuantity {
            product_id,
            quantity,
            floor,
        } => format!("product {product_id}: applied floor {floor} below the desired {quantity}"),
    }
}

/// Checks every order of every salon.
pub async fn verify_applied(store: &Store) -> anyhow::Result<AppliedCheck> {
    let mut check = AppliedCheck::default();
    for salon in store.salons().await? {
        let ev = salon.planexpo_event.clone();
        let mask = store
            .current_mask(&ev)
            .await?
            .map(|(_, m)| m)
            .unwrap_or_default();
        let mut folded: BTreeMap<String, (OrderState, bool)> = BTreeMap::new();
        for e in store
            .logged_events(EventFilter {
                planexpo_event: Some(ev.clone()),
                ..EventFilter::default()
            })
            .await?
        {
            let Ok(event) = &e.event else { continue };
            let entry = folded.entry(e.order_id.clone()).or_default();
            if fold(&mut entry.0, event) == pxsync_core::fold::FoldOutcome::Changed
                && matches!(event.data, pxsync_core::event::EventData::Observed(_))
            {
                entry.1 = e.erased;
            }
        }
        let refused: BTreeSet<(String, String, i32, i32)> = store
            .client()
            .await?
            .query(
                "SELECT order_id, product_id, floor, desired FROM refused_decreases WHERE planexpo_event = $1",
                &[&ev],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        for (order_id, (state, erased)) in &folded {
            check.orders += 1;
            let ctx = store.reconcile_context(&ev, order_id).await?;
            let mut report = |detail: String| {
                check.unexplained.push(Unexplained {
                    planexpo_event: ev.clone(),
                    order_id: order_id.clone(),
                    detail,
                })
            };
            let from_log: Option<DesiredOrder> = desired_order(state, &mask);
            // An erased contact differs from the live values by design; the rest must agree.
            let agree = |a: &DesiredOrder, b: &DesiredOrder| {
                let (mut a, mut b) = (a.clone(), b.clone());
                if *erased {
                    a.participant = None;
                    b.participant = None;
                }
                a == b
            };
            match (&from_log, &ctx.desired) {
                (Some(a), Some(b)) if agree(a, b) => {}
                (None, None) => {}
                _ => report("the state in order_state differs from the fold of its events".into()),
            }
            let Some(desired) = &ctx.desired else {
                continue;
            };
            let desired = crate::emitter::with_broken_held(desired, &ctx.broken_products);
            let plan = plan_order(ctx.plan_input(&desired));
            for note in &plan.notes {
                if let Note::QuantityDecreaseRefused {
                    product_id,
                    floor,
                    desired,
                } = note
                    && !refused.contains(&(
                        order_id.clone(),
                        product_id.clone(),
                        *floor as i32,
                        *desired as i32,
                    ))
                {
                    report(format!(
                        "product {product_id}: applied floor {floor} above the desired {desired}, and no refused decrease recorded"
                    ));
                }
            }
            if plan.ops.is_empty() {
                continue;
            }
            let queue = store.queue_state(&ev, order_id).await?.map(|(s, _)| s);
            let reason = if !salon.enabled {
                Some("salon disabled")
            } else if salon
                .pilot_orders
                .as_ref()
                .is_some_and(|p| !p.contains(order_id))
            {
                Some("outside the pilot")
            } else if ctx.partner_uncertain || ctx.participant_uncertain || ctx.floors_uncertain {
                Some("uncertain")
            } else {
                match queue.as_deref() {
                    Some("pending") => Some("not reconciled yet"),
                    Some("waiting") => Some("waiting"),
                    Some("parked") => Some("parked"),
                    _ => None,
                }
            };
            match reason {
                Some(r) => *check.explained.entry(r.to_owned()).or_default() += 1,
                None => {
                    for op in &plan.ops {
                        report(describe(op));
                    }
                }
            }
        }
    }
    Ok(check)
}
