//! The emitter: a level-triggered reconciler. Per claimed order: read desired and applied state,
//! look at inwink where an earlier outcome is unknown, plan with the pure planner, execute the
//! writes one by one, record each as soon as inwink answered, finish the claim.
//!
//! Architecture invariants:
//! - Never a lower quantity: the planner's guard decides, and a `quantity_decrease` answer only
//!   raises the recorded floor.
//! - Never two partners for one order, two participants for one e-mail, or a duplicate link:
//!   after an unknown outcome inwink is read before writing again; a 409 adopts `existingId`.
//! - No write while the salon is disabled: each reconcile holds a share lock on its salon row,
//!   which `pxsync disable` must wait for.

use crate::Shutdown;
use futures::StreamExt;
use pxsync_core::plan::{Note, Op, plan_order};
use pxsync_inwink::{InwinkClient, InwinkError};
use pxsync_store::{Claim, Finish, ReconcileContext, Store};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct EmitterSettings {
    pub concurrency: usize,
    pub poll_interval: Duration,
    pub lease: Duration,
    /// The longest backoff after failed attempts (see [`backoff`]).
    pub backoff_max: Duration,
    /// This process's name in claims.
    pub worker: String,
}

impl EmitterSettings {
    pub fn from_args(args: &crate::config::EmitterArgs) -> Self {
        EmitterSettings {
            concurrency: args.concurrency.max(1),
            poll_interval: args.poll_interval,
            lease: args.lease,
            backoff_max: args.backoff_max.max(MIN_BACKOFF_MAX),
            worker: format!("emitter-{}-{:08x}", std::process::id(), fastrand::u32(..)),
        }
    }
}

/// The inwink clients of the salons this emitter serves, by inwink event id.
pub type Clients = BTreeMap<String, InwinkClient>;

pub async fn run(
    store: Store,
    clients: Clients,
    settings: EmitterSettings,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let events: Vec<String> = clients.keys().cloned().collect();
    // Each reconcile holds one connection (its salon's share lock) and uses another.
    let pool = store.pool_size();
    let mut settings = settings;
    if settings.concurrency * 2 + 1 > pool {
        let fitted = ((pool.saturating_sub(1)) / 2).max(1);
        tracing::warn!(
            concurrency = settings.concurrency,
            pool,
            fitted,
            "PXSYNC_EMITTER_CONCURRENCY needs 2 connections per order plus one: concurrency lowered to fit PXSYNC_DATABASE_POOL_SIZE"
        );
        settings.concurrency = fitted;
    }
    tracing::info!(worker = settings.worker, "emitting to inwink");
    while !shutdown.is_triggered() {
        let claims = match store
            .claim(
                &settings.worker,
                settings.concurrency as i64,
                settings.lease,
                &events,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim orders");
                shutdown.sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if claims.is_empty() {
            shutdown.sleep(settings.poll_interval).await;
            continue;
        }
        futures::stream::iter(claims)
            .for_each_concurrent(settings.concurrency, |claim| {
                let store = store.clone();
                let clients = &clients;
                let lease = settings.lease;
                let backoff_max = settings.backoff_max;
                async move {
                    // Keep the claim while the reconcile runs (slow inwink answers, retries).
                    let renew = async {
                        loop {
                            tokio::time::sleep(lease / 3).await;
                            if let Err(e) = store.renew(&claim, lease).await {
                                tracing::warn!(order = %claim.order_id, error = %e, "cannot renew the claim");
                            }
                        }
                    };
let span = tracing::info_span!("emitter.reconcile", order = %claim.order_id, event = %claim.planexpo_event);
                    // Continue the trace of the order's newest change (set before the span is
                    // entered), and link to it.
                    let traceparent = store.order_traceparent(&claim.planexpo_event, &claim.order_id).await.ok().flatten();
                    crate::telemetry::set_remote_parent(&span, traceparent.as_deref());
                    crate::telemetry::add_link(&span, traceparent.as_deref());
                    let outcome = tokio::select! {
                        r = reconcile(&store, clients, &claim, backoff_max).instrument(span) => r,
                        () = renew => unreachable!("the renewal loop never ends"),
                    };
                    let finish = match outcome {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::warn!(order = %claim.order_id, error = format!("{e:#}"), "reconcile failed");
                            Finish::Waiting { delay: backoff(claim.attempts, backoff_max), attempts: claim.attempts + 1, reason: "internal error: see the emitter log".into() }
                        }
                    };
                    if let Err(e) = store.finish(&claim, &finish).await {
                        tracing::warn!(order = %claim.order_id, error = %e, "cannot finish the claim; its lease will expire");
                    }
                }
            })
            .await;
    }
    Ok(())
}

/// The smallest `PXSYNC_EMITTER_BACKOFF_MAX` taken (a smaller one is raised to it).
const MIN_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Per-order exponential backoff with jitter after `attempts` failures: 0.5 s doubling with each,
/// capped at `max`, then between half of that and all of it.
pub fn backoff(attempts: i32, max: Duration) -> Duration {
    let base = 0.5 * 2f64.powi(attempts.clamp(0, 10));
    Duration::from_secs_f64(base.min(max.as_secs_f64()) * (0.5 + fastrand::f64() * 0.5))
}

/// What executing a plan led to.
enum Step {
    /// Every operation was applied.
    Applied,
    /// Something learned from inwink (an adoption, a deletion, a floor) calls for a new plan.
    Replan,
    Finish(Finish),
}

/// Reconciles one order.
/// `backoff_max`: the longest wait it may ask for after a failure.
pub async fn reconcile(
    store: &Store,
    clients: &Clients,
    claim: &Claim,
    backoff_max: Duration,
) -> anyhow::Result<Finish> {
    let ev = claim.planexpo_event.as_str();
    let mut lock_conn = store.client().await?;
    let lock = lock_conn.transaction().await?;
    let enabled: Option<bool> = lock
        .query_opt(
            "SELECT enabled FROM salons WHERE planexpo_event = $1 FOR SHARE",
            &[&ev],
        )
        .await?
        .map(|r| r.get(0));
    if enabled != Some(true) {
        return Ok(Finish::Waiting {
            delay: Duration::ZERO,
            attempts: claim.attempts,
            reason: "salon disabled".into(),
        });
    }
    let mut progressed = false;
    for _round in 0..6 {
        let ctx = store.reconcile_context(ev, &claim.order_id).await?;
        let Some(client) = clients.get(&ctx.inwink_event_id) else {
            return Ok(Finish::Parked {
                reason: format!("no inwink client for event {}", ctx.inwink_event_id),
            });
        };
        if ctx.partner_uncertain || ctx.participant_uncertain || ctx.floors_uncertain {
            if let Err(e) = observe(store, client, claim, &ctx).await? {
                return Ok(failure(
                    if progressed { 0 } else { claim.attempts },
                    "observe",
                    &e,
                    backoff_max,
                ));
            }
            continue;
        }
        let Some(desired) = &ctx.desired else {
            return Ok(Finish::Done);
        };
        let desired = &with_broken_held(desired, &ctx.broken_products);
        let plan = plan_order(ctx.plan_input(desired));
        for note in &plan.notes {
            if let Note::QuantityDecreaseRefused {
                product_id,
                floor,
                desired,
            } = note
            {
                store
                    .record_refused_decrease(ev, &claim.order_id, product_id, *floor, *desired)
                    .await?;
            }
        }
        if plan.ops.is_empty() {
            return Ok(Finish::Done);
        }
        match execute(
            store,
            client,
            claim,
            &ctx,
            plan.ops,
            &mut progressed,
            backoff_max,
        )
        .await?
        {
            Step::Applied => return Ok(Finish::Done),
            Step::Replan => continue,
            Step::Finish(f) => return Ok(f),
        }
    }
    Ok(Finish::Waiting {
        delay: backoff(claim.attempts, backoff_max),
        attempts: claim.attempts + 1,
        reason: "did not converge in 6 rounds".into(),
    })
}

async fn record(
    store: &Store,
    claim: &Claim,
    op: &Op,
    status: Option<u16>,
    code: Option<&str>,
    outcome: &str,
) -> anyhow::Result<()> {
    let call = pxsync_inwink::describe_write("", op, "", "");
    store
        .record_call(
            &claim.planexpo_event,
            &claim.order_id,
            call.operation,
            call.method,
            call.route,
            status,
            code,
            outcome,
            crate::telemetry::current_trace_id().as_deref(),
        )
        .await?;
    Ok(())
}

/// How a failed call ends the reconcile.
///
/// `attempts`: the failures so far (0 when this reconcile made progress: backoff resets on
/// success).
fn failure(attempts: i32, what: &str, e: &InwinkError, backoff_max: Duration) -> Finish {
    match e {
        InwinkError::RateLimited { retry_after, .. } => Finish::Waiting {
            delay: *retry_after,
            attempts,
            reason: format!("{what}: inwink rate limit"),
        },
        InwinkError::Unavailable {
            retry_after: Some(after),
            status,
            ..
        } => Finish::Waiting {
            delay: *after,
            attempts,
            reason: format!("{what}: inwink unavailable ({status})"),
        },
        e if e.is_transient() => Finish::Waiting {
            delay: backoff(attempts, backoff_max),
            attempts: attempts + 1,
            reason: format!("{what}: {e}"),
        },
        InwinkError::Unauthorized { .. } | InwinkError::Token { .. } => Finish::Waiting {
            delay: backoff(attempts, backoff_max),
            attempts: attempts + 1,
            reason: format!("{what}: {e}"),
        },
        e => Finish::Parked {
            reason: format!("{what}: inwink refused: {}", e.code().unwrap_or("error")),
        },
    }
}

fn is_not_found(e: &InwinkError, code: &str) -> bool {
    matches!(e, InwinkError::NotFound { code: c, .. } if c == code)
}

async fn execute(
    store: &Store,
    client: &InwinkClient,
    claim: &Claim,
    ctx: &ReconcileContext,
    ops: Vec<Op>,
    progressed: &mut bool,
    backoff_max: Duration,
) -> anyhow::Result<Step> {
    let ev = claim.planexpo_event.as_str();
    let order = claim.order_id.as_str();
    let mut partner_id = ctx.partner.as_ref().map(|p| p.partner_id.clone());
    let mut participant_id = ctx
        .participant_record
        .as_ref()
        .map(|p| p.participant_id.clone());
    let email_key = ctx.participant.as_ref().map(|p| p.email_key.clone());
    for op in &ops {
        // Write-ahead: a create or a quantity is marked uncertain before the call, so that a
        // crash between inwink's answer and its record makes the next reconcile look first.
        match op {
            Op::CreatePartner(_) => store.mark_partner_uncertain(ev, order).await?,
            Op::CreateParticipant(p) => store.mark_participant_uncertain(ev, &p.email_key).await?,
            Op::SetQuantity {
                product_id,
                quantity,
                ..
            } => {
                store
                    .record_floor(ev, order, product_id, *quantity, true)
                    .await?
            }
            _ => {}
        }
        let result: Result<u16, InwinkError> = match op {
            Op::CreatePartner(w) => match client.create_partner(w).await {
                Ok(p) => {
                    store.record_partner(ev, order, &p.id, Some(w)).await?;
                    store.mark_children(ev, order).await?;
                    partner_id = Some(p.id);
                    Ok(201)
                }
                Err(InwinkError::Conflict {
                    existing_id: Some(id),
                    ..
                }) => {
                    record(
                        store,
                        claim,
                        op,
                        Some(409),
                        Some("duplicate_key"),
                        "adopted",
                    )
                    .await?;
                    store.record_partner(ev, order, &id, None).await?;
                    store.mark_children(ev, order).await?;
                    return Ok(Step::Replan);
                }
                // Already marked uncertain before the call (write-ahead).
                Err(e) => Err(e),
            },
            Op::UpdatePartner(w) => {
                let id = partner_id.clone().unwrap_or_default();
                match client.update_partner(&id, w).await {
                    Ok(_) => {
                        store.record_partner(ev, order, &id, Some(w)).await?;
                        Ok(200)
                    }
                    Err(e) if is_not_found(&e, "partner_not_found") => {
                        return partner_gone(store, claim, op).await;
                    }
                    Err(e) => {
                        if e.outcome_unknown() {
                            store.mark_partner_uncertain(ev, order).await?;
                        }
                        Err(e)
                    }
                }
            }
            Op::CreateParticipant(p) => match client.create_participant(p).await {
                Ok(r) => {
                    store
                        .record_participant(ev, &p.email_key, &r.id, Some(p))
                        .await?;
                    participant_id = Some(r.id);
                    Ok(201)
                }
                Err(InwinkError::Conflict {
                    existing_id: Some(id),
                    ..
                }) => {
                    record(
                        store,
                        claim,
                        op,
                        Some(409),
                        Some("duplicate_key"),
                        "adopted",
                    )
                    .await?;
                    store
                        .record_participant(ev, &p.email_key, &id, None)
                        .await?;
                    store.record_heal(ev, Some(order), "participant_adopted", &format!("participant {id} already existed on inwink with the booking contact's e-mail: adopted")).await?;
                    return Ok(Step::Replan);
                }
                // Already marked uncertain before the call (write-ahead).
                Err(e) => Err(e),
            },
            Op::UpdateParticipant(p) => {
                let id = participant_id.clone().unwrap_or_default();
                match client.update_participant(&id, p).await {
                    Ok(_) => {
                        store
                            .record_participant(ev, &p.email_key, &id, Some(p))
                            .await?;
                        Ok(200)
                    }
                    Err(e) if is_not_found(&e, "participant_not_found") => {
                        record(
                            store,
                            claim,
                            op,
                            Some(404),
                            Some("participant_not_found"),
                            "missing",
                        )
                        .await?;
                        store.forget_participant(ev, &p.email_key).await?;
                        store
                            .record_heal(
                                ev,
                                Some(order),
                                "participant_deleted",
                                "the participant was deleted on inwink: recreated and linked again",
                            )
                            .await?;
                        return Ok(Step::Replan);
                    }
                    Err(e) => {
                        if e.outcome_unknown() {
                            store.mark_participant_uncertain(ev, &p.email_key).await?;
                        }
                        Err(e)
                    }
                }
            }
            Op::LinkTeamMember => {
                let (Some(pid), Some(rid)) = (partner_id.clone(), participant_id.clone()) else {
                    return Ok(Step::Replan);
                };
                match client.link_team_member(&pid, &rid).await {
                    Ok(link) => {
                        store.record_link(ev, &pid, &rid, Some(&link.id)).await?;
                        Ok(201)
                    }
                    Err(InwinkError::Conflict { existing_id, .. }) => {
                        record(
                            store,
                            claim,
                            op,
                            Some(409),
                            Some("duplicate_key"),
                            "adopted",
                        )
                        .await?;
                        store
                            .record_link(ev, &pid, &rid, existing_id.as_deref())
                            .await?;
                        continue;
                    }
                    Err(e) if is_not_found(&e, "partner_not_found") => {
                        return partner_gone(store, claim, op).await;
                    }
                    Err(e) if is_not_found(&e, "participant_not_found") => {
                        record(
                            store,
                            claim,
                            op,
                            Some(404),
                            Some("participant_not_found"),
                            "missing",
                        )
                        .await?;
                        if let Some(k) = &email_key {
                            store.forget_participant(ev, k).await?;
                        }
                        return Ok(Step::Replan);
                    }
                    Err(e) => Err(e),
                }
            }
            Op::SetQuantity {
                product_id,
                quantity,
                ..
            } => {
                let pid = partner_id.clone().unwrap_or_default();
                store
                    .record_floor(ev, order, product_id, *quantity, true)
                    .await?;
                match client.set_quantity(&pid, product_id, *quantity).await {
                    Ok(()) => {
                        store
                            .record_floor(ev, order, product_id, *quantity, false)
                            .await?;
                        Ok(200)
                    }
                    Err(InwinkError::Rejected {
                        code,
                        current: Some(current),
                        ..
                    }) if code == "quantity_decrease" => {
                        // inwink holds more than pxsync knew: that is the floor now.
                        record(
                            store,
                            claim,
                            op,
                            Some(400),
                            Some("quantity_decrease"),
                            "floor_raised",
                        )
                        .await?;
                        store
                            .record_floor(ev, order, product_id, current, false)
                            .await?;
                        return Ok(Step::Replan);
                    }
                    Err(e) if is_not_found(&e, "partner_not_found") => {
                        return partner_gone(store, claim, op).await;
                    }
                    Err(e) if is_not_found(&e, "product_not_found") => {
                        // A mapping problem, never a reason to recreate the partner: the
                        // product's lines wait, the order's other products go on.
                        record(
                            store,
                            claim,
                            op,
                            Some(404),
                            Some("product_not_found"),
                            "mapping_broken",
                        )
                        .await?;
                        // Nothing was written: the quantity is certain again.
                        store.record_floor(ev, order, product_id, 0, false).await?;
                        mapping_broken(store, ev, product_id).await?;
                        return Ok(Step::Replan);
                    }
                    // Already marked uncertain before the call (write-ahead).
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(status) => {
                *progressed = true;
                record(store, claim, op, Some(status), None, "applied").await?
            }
            Err(e) => {
                let outcome = if e.outcome_unknown() {
                    "unknown"
                } else {
                    "failed"
                };
                record(store, claim, op, e.status(), e.code(), outcome).await?;
                return Ok(Step::Finish(failure(
                    if *progressed { 0 } else { claim.attempts },
                    op.name(),
                    &e,
                    backoff_max,
                )));
            }
        }
    }
    Ok(Step::Applied)
}

/// Reads inwink where an earlier write's outcome is unknown, and records what it holds. The
/// outer error is the store's, the inner one inwink's.
async fn observe(
    store: &Store,
    client: &InwinkClient,
    claim: &Claim,
    ctx: &ReconcileContext,
) -> anyhow::Result<Result<(), InwinkError>> {
    let ev = claim.planexpo_event.as_str();
    let order = claim.order_id.as_str();
    let reader = client.reader();
    let mut partner_id = ctx.partner.as_ref().map(|p| p.partner_id.clone());
    if ctx.partner_uncertain {
        let found = match reader.find_partners_by_order(order).await {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        match found.first() {
            Some(p) => {
                store
                    .record_partner(ev, order, &p.id, p.as_write().as_ref())
                    .await?;
                store.mark_children(ev, order).await?;
                partner_id = Some(p.id.clone());
            }
            None => {
                store.forget_partner(ev, order).await?;
                if ctx.partner.is_some() {
                    store
                        .record_heal(ev, Some(order), "partner_deleted", "the partner was deleted on inwink: recreated with its fields, products at their floor and team links")
                        .await?;
                }
                partner_id = None;
            }
        }
    }
    if ctx.participant_uncertain
        && let Some(p) = &ctx.participant
    {
        let found = match reader.find_participants_by_email(&p.email).await {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        match found.first() {
            Some(r) => {
                store
                    .record_participant(ev, &p.email_key, &r.id, Some(&r.as_desired()))
                    .await?
            }
            None => store.forget_participant(ev, &p.email_key).await?,
        }
    }
    if ctx.floors_uncertain {
        let held: BTreeMap<String, u32> = match &partner_id {
            Some(pid) => match reader.partner_products(pid).await {
                Ok(products) => products
                    .into_iter()
                    .map(|p| (p.product_id, p.quantity))
                    .collect(),
                Err(e) => return Ok(Err(e)),
            },
            None => BTreeMap::new(),
        };
        for product in ctx.floors.keys() {
            let q = held.get(product).copied().unwrap_or(0);
            store.record_floor(ev, order, product, q, false).await?;
        }
    }
    Ok(Ok(()))
}

/// The desired order with the products of broken mappings held (they wait for the mask fix),
/// also where the order no longer has their line (a product re-identified on Planexpo leaves
/// its old line behind): held, never a desired 0 and a refused decrease.
pub fn with_broken_held(
    desired: &pxsync_core::desired::DesiredOrder,
    broken: &std::collections::BTreeSet<String>,
) -> pxsync_core::desired::DesiredOrder {
    let mut d = desired.clone();
    d.held_products.extend(broken.iter().cloned());
    d
}

/// Records that a mapped inwink product is gone, naming the mask row to fix.
pub async fn mapping_broken(
    store: &Store,
    ev: &str,
    inwink_product_id: &str,
) -> anyhow::Result<()> {
    let row = store.current_mask(ev).await?.and_then(|(_, mask)| {
        mask.products
            .values()
            .find(|m| m.inwink_product_id == inwink_product_id)
            .map(|m| (m.row, m.planexpo_product_name.clone()))
    });
    let (mask_row, reason) = match &row {
        Some((r, name)) => (
            Some(*r as i32),
            format!(
                "mapping broken: inwink product {inwink_product_id} (for \"{name}\") no longer exists on inwink: fix mask row {r} (column D), then pxsync mask import; its lines wait, every other product keeps syncing"
            ),
        ),
        None => (
            None,
            format!(
                "mapping broken: inwink product {inwink_product_id} no longer exists on inwink: fix the mask, then pxsync mask import"
            ),
        ),
    };
    if store
        .record_broken_mapping(ev, inwink_product_id, mask_row, &reason)
        .await?
    {
        tracing::warn!(event = ev, product = inwink_product_id, row = ?mask_row, "mapping broken: a mapped inwink product no longer exists");
    }
    Ok(())
}

/// The order's partner was deleted by hand on inwink: forget it (its floors stay), record the
/// heal, and plan again, which recreates it with its fields, its products at their floor and its
/// team links.
async fn partner_gone(store: &Store, claim: &Claim, op: &Op) -> anyhow::Result<Step> {
    let (ev, order) = (claim.planexpo_event.as_str(), claim.order_id.as_str());
    record(
        store,
        claim,
        op,
        Some(404),
        Some("partner_not_found"),
        "missing",
    )
    .await?;
    tracing::info!(order, "partner deleted on inwink: recreating it");
    store.forget_partner(ev, order).await?;
    store
        .record_heal(ev, Some(order), "partner_deleted", "the partner was deleted on inwink: recreated with its fields, products at their floor and team links")
        .await?;
    Ok(Step::Replan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_with_jitter_up_to_its_cap() {
        let max = Duration::from_secs(4);
        for _ in 0..200 {
            let first = backoff(0, max);
            assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
            let third = backoff(2, max);
            assert!(third >= Duration::from_secs(1) && third <= Duration::from_secs(2));
            // 0.5 s x 2^10 is far past the cap: between half of it and all of it.
            let late = backoff(10, max);
            assert!(late >= Duration::from_secs(2) && late <= max, "{late:?}");
            assert!(backoff(i32::MAX, max) <= max);
        }
    }

    #[test]
    fn a_backoff_cap_under_a_second_is_raised_to_a_second() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            emitter: crate::config::EmitterArgs,
        }
        let cli = Cli::parse_from(["pxsync-emitter", "--emitter-backoff-max", "100ms"]);
        assert_eq!(
            EmitterSettings::from_args(&cli.emitter).backoff_max,
            Duration::from_secs(1)
        );
        let cli = Cli::parse_from(["pxsync-emitter"]);
        assert_eq!(
            EmitterSettings::from_args(&cli.emitter).backoff_max,
            Duration::from_secs(30)
        );
    }
}
