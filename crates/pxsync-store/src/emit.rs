//! The emitter's side: the work queue (claimed with `FOR UPDATE SKIP LOCKED`), the reconcile
//! context of one order, and the records of what inwink holds.

use crate::{Ctx, Result, Store, from_json, from_json_bytes, to_json};
use pxsync_core::desired::{DesiredOrder, DesiredParticipant, desired_order, winning_participant};
use pxsync_core::fold::OrderState;
use pxsync_core::plan::{ParticipantRecord, PartnerRecord, PartnerWrite};
use std::collections::BTreeMap;
use std::time::Duration;

/// One order claimed by one emitter process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub planexpo_event: String,
    pub order_id: String,
    pub mark_seq: i64,
    pub attempts: i32,
    pub worker: String,
}

/// Everything the planner needs for one order, read from the store.
#[derive(Debug, Clone)]
pub struct ReconcileContext {
    pub inwink_event_id: String,
    pub desired: Option<DesiredOrder>,
    pub participant: Option<DesiredParticipant>,
    pub parent_partner_id: Option<String>,
    pub partner: Option<PartnerRecord>,
    pub partner_uncertain: bool,
    pub participant_record: Option<ParticipantRecord>,
    pub participant_uncertain: bool,
    pub linked: bool,
    pub floors: BTreeMap<String, u32>,
    pub floors_uncertain: bool,
    /// inwink products of broken mappings: held until the mask is fixed.
    pub broken_products: std::collections::BTreeSet<String>,
}

impl ReconcileContext {
    /// The planner's input for `desired` (this order's desired state, possibly adjusted, e.g.
    /// with broken mappings held) against the records of this context.
    pub fn plan_input<'a>(&'a self, desired: &'a DesiredOrder) -> pxsync_core::plan::PlanInput<'a> {
        pxsync_core::plan::PlanInput {
            desired,
            participant: self.participant.as_ref(),
            parent_partner_id: self.parent_partner_id.as_deref(),
            partner: self.partner.as_ref(),
            participant_record: self.participant_record.as_ref(),
            linked: self.linked,
            floors: &self.floors,
        }
    }
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Everything desired is applied (or recorded as refused/held).
    Done,
    /// Try again after the delay (429, 5xx, timeouts). `attempts` is the failure count the next
    /// backoff starts from (a rate limit does not count; a reconcile that made progress resets it);
    /// rate limit does not.
    Waiting {
        delay: Duration,
        attempts: i32,
        reason: String,
    },
    /// inwink rejected a write (400): wait for new inputs or an operator.
    Parked { reason: String },
}

impl Store {
    /// Claims up to `limit` orders of enabled salons that are due, for `lease`. A claim whose
    /// holder died is free again once its lease expired.
    /// Only salons whose inwink event is in `inwink_events` are claimed (those this emitter has
    /// credentials for).
    pub async fn claim(
        &self,
        worker: &str,
        limit: i64,
        lease: Duration,
        inwink_events: &[String],
    ) -> Result<Vec<Claim>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "WITH c AS (
                    SELECT q.planexpo_event, q.order_id FROM work_queue q
                    JOIN salons s ON s.planexpo_event = q.planexpo_event
                    WHERE s.enabled AND s.inwink_event_id = ANY($4) AND q.state IN ('pending', 'waiting') AND q.not_before <= now()
                      AND (s.pilot_orders IS NULL OR q.order_id = ANY(s.pilot_orders))
                      AND (q.claimed_until IS NULL OR q.claimed_until < now())
                    ORDER BY q.not_before
                    LIMIT $1
                    FOR UPDATE OF q SKIP LOCKED)
                 UPDATE work_queue q SET claimed_by = $2, claimed_until = now() + make_interval(secs => $3)
                 FROM c WHERE q.planexpo_event = c.planexpo_event AND q.order_id = c.order_id
                 RETURNING q.planexpo_event, q.order_id, q.mark_seq, q.attempts",
                &[&limit, &worker, &lease.as_secs_f64(), &inwink_events],
            )
            .await
            .ctx("claim orders")?;
        Ok(rows
            .iter()
            .map(|r| Claim {
                planexpo_event: r.get(0),
                order_id: r.get(1),
                mark_seq: r.get(2),
                attempts: r.get(3),
                worker: worker.to_owned(),
            })
            .collect())
    }

    /// Extends a claim's lease (long reconciles).
    pub async fn renew(&self, claim: &Claim, lease: Duration) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE work_queue SET claimed_until = now() + make_interval(secs => $4)
                 WHERE planexpo_event = $1 AND order_id = $2 AND claimed_by = $3",
                &[
                    &claim.planexpo_event,
                    &claim.order_id,
                    &claim.worker,
                    &lease.as_secs_f64(),
                ],
            )
            .await
            .ctx("renew the claim")?;
        Ok(n == 1)
    }

    /// Ends a claim. A newer mark (the projector changed the order meanwhile) keeps it pending.
    pub async fn finish(&self, claim: &Claim, finish: &Finish) -> Result<()> {
        let client = self.client().await?;
        let params_base = (
            &claim.planexpo_event,
            &claim.order_id,
            &claim.worker,
            &claim.mark_seq,
        );
        let n = match finish {
            Finish::Done => client
                .execute(
                    "UPDATE work_queue SET state = CASE WHEN mark_seq = $4 THEN 'done' ELSE 'pending' END,
                        claimed_by = NULL, claimed_until = NULL, attempts = 0, reason = NULL, updated_at = now()
                     WHERE planexpo_event = $1 AND order_id = $2 AND claimed_by = $3",
                    &[params_base.0, params_base.1, params_base.2, params_base.3],
                )
                .await,
            Finish::Waiting { delay, attempts, reason } => {
                client
                    .execute(
                        "UPDATE work_queue SET state = 'waiting', not_before = now() + make_interval(secs => $5),
                            attempts = $6, reason = $7, claimed_by = NULL, claimed_until = NULL, updated_at = now()
                         WHERE planexpo_event = $1 AND order_id = $2 AND claimed_by = $3 AND $4::bigint IS NOT NULL",
                        &[params_base.0, params_base.1, params_base.2, params_base.3, &delay.as_secs_f64(), attempts, reason],
                    )
                    .await
            }
            Finish::Parked { reason } => client
                .execute(
                    "UPDATE work_queue SET state = CASE WHEN mark_seq = $4 THEN 'parked' ELSE 'pending' END,
                        reason = $5, claimed_by = NULL, claimed_until = NULL, updated_at = now()
                     WHERE planexpo_event = $1 AND order_id = $2 AND claimed_by = $3",
                    &[params_base.0, params_base.1, params_base.2, params_base.3, reason],
                )
                .await,
        }
        .ctx("finish the claim")?;
        if n == 0 {
            tracing::warn!(order = %claim.order_id, "claim was lost before it finished (lease expired)");
        }
        Ok(())
    }

    /// Marks orders pending again (an operator's retry, or a parent whose partner now exists).
    pub async fn mark_orders(&self, planexpo_event: &str, order_ids: &[String]) -> Result<u64> {
        let client = self.client().await?;
        let salons = vec![planexpo_event.to_owned(); order_ids.len()];
        let row = client
            .query_one(crate::salons::MARK_ORDERS_SQL, &[&salons, &order_ids])
            .await
            .ctx("mark orders")?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// Marks the co-exhibitors of an order (its partner now exists, or was recreated).
    pub async fn mark_children(&self, planexpo_event: &str, parent_order_id: &str) -> Result<u64> {
        let client = self.client().await?;
        let children: Vec<String> = client
            .query(
                "SELECT order_id FROM order_state WHERE planexpo_event = $1 AND parent_order_id = $2",
                &[&planexpo_event, &parent_order_id],
            )
            .await
            .ctx("find the co-exhibitors")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if children.is_empty() {
            return Ok(0);
        }
        self.mark_orders(planexpo_event, &children).await
    }

    /// Reads the reconcile context of one order.
    pub async fn reconcile_context(
        &self,
        planexpo_event: &str,
        order_id: &str,
    ) -> Result<ReconcileContext> {
        let mut client = self.client().await?;
        // The salon and its mask in force, then the order's fold state: its desired state is
        // computed here (V15), with the mask as it is now.
        let salon = client
            .query_one(
                &format!(
                    "SELECT s.inwink_event_id, {} FROM salons s WHERE s.planexpo_event = $1",
                    crate::MASK_IN_FORCE
                ),
                &[&planexpo_event],
            )
            .await
            .ctx("read the salon")?;
        let inwink_event_id: String = salon.get(0);
        let mask = crate::mask_column(&salon, 1)?;
        // Under the order's lock, shared: a batch projecting the order holds it until its commit,
        // so this read sees that batch's state (the projector leaves the mark of an order already
        // pending and unclaimed as it is, counting on this: see `PROJECTOR_MARKS_SQL`).
        let row = {
            let tx = client.transaction().await.ctx("begin the state read")?;
            let lock = self.order_lock_key(planexpo_event, order_id);
            tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&lock])
                .await
                .ctx("share the order's lock")?;
            let row = tx
                .query_opt(
                    "SELECT state FROM order_state WHERE planexpo_event = $1 AND order_id = $2",
                    &[&planexpo_event, &order_id],
                )
                .await
                .ctx("read the fold state")?;
            tx.commit().await.ctx("end the state read")?;
            row
        };
        let desired: Option<DesiredOrder> = match &row {
            Some(r) => {
                let state: OrderState = from_json_bytes("order_state.state", r.get(0))?;
                desired_order(&state, &mask)
            }
            None => None,
        };
        let email_key = desired
            .as_ref()
            .and_then(|d| d.participant.as_ref().map(|p| p.email_key.clone()));
        let participant = match &email_key {
            Some(key) => {
                // email_key is set exactly when the order has a desired state.
                let sharing: Vec<DesiredOrder> = client
                    .query(
                        "SELECT state FROM order_state WHERE planexpo_event = $1 AND email_key = $2",
                        &[&planexpo_event, key],
                    )
                    .await
                    .ctx("read the orders sharing the contact")?
                    .into_iter()
                    .map(|r| {
                        let state: OrderState = from_json_bytes("order_state.state", r.get(0))?;
                        Ok(desired_order(&state, &mask))
                    })
                    .filter_map(Result::transpose)
                    .collect::<Result<_>>()?;
                winning_participant(sharing.iter().filter(|d| d.publish))
                    .or_else(|| winning_participant(&sharing))
                    .cloned()
            }
            None => None,
        };
        let parent_partner_id = match desired.as_ref().and_then(|d| d.parent_order_id.clone()) {
            Some(parent) => client
                .query_opt(
                    "SELECT partner_id FROM applied_partners WHERE planexpo_event = $1 AND order_id = $2 AND partner_id IS NOT NULL",
                    &[&planexpo_event, &parent],
                )
                .await
                .ctx("read the parent's partner")?
                .map(|r| r.get(0)),
            None => None,
        };
        let (partner, partner_uncertain) = match client
            .query_opt(
                "SELECT partner_id, sent, uncertain FROM applied_partners WHERE planexpo_event = $1 AND order_id = $2",
                &[&planexpo_event, &order_id],
            )
            .await
            .ctx("read the applied partner")?
        {
            Some(r) => {
                let id: Option<String> = r.get(0);
                let sent: Option<serde_json::Value> = r.get(1);
                let sent: Option<PartnerWrite> = sent.map(|v| from_json("applied_partners.sent", v)).transpose()?;
                (id.map(|partner_id| PartnerRecord { partner_id, sent }), r.get(2))
            }
            None => (None, false),
        };
        let (participant_record, participant_uncertain) = match &email_key {
            Some(key) => match client
                .query_opt(
                    "SELECT participant_id, sent, uncertain FROM applied_participants WHERE planexpo_event = $1 AND email_key = $2",
                    &[&planexpo_event, key],
                )
                .await
                .ctx("read the applied participant")?
            {
                Some(r) => {
                    let id: Option<String> = r.get(0);
                    let sent: Option<serde_json::Value> = r.get(1);
                    let sent = sent.map(|v| from_json("applied_participants.sent", v)).transpose()?;
                    (id.map(|participant_id| ParticipantRecord { participant_id, sent }), r.get(2))
                }
                None => (None, false),
            },
            None => (None, false),
        };
        let linked = match (&partner, &participant_record) {
            (Some(p), Some(r)) => client
                .query_opt(
                    "SELECT 1 FROM applied_links WHERE planexpo_event = $1 AND partner_id = $2 AND participant_id = $3",
                    &[&planexpo_event, &p.partner_id, &r.participant_id],
                )
                .await
                .ctx("read the team link")?
                .is_some(),
            _ => false,
        };
        let rows = client
            .query(
                "SELECT product_id, floor, uncertain FROM applied_quantities WHERE planexpo_event = $1 AND order_id = $2",
                &[&planexpo_event, &order_id],
            )
            .await
            .ctx("read the floors")?;
        // Only the products of the mask in force are synchronised: a product no longer mapped
        // (a remap, a row deleted) keeps what inwink holds, and its floor is no desired 0, so
        // it yields no refused decrease. Its floor stays recorded, should a mask map it again.
        let mask = crate::salons::newest_mask(&client, planexpo_event)
            .await?
            .map(|(_, m)| m);
        let mut floors = BTreeMap::new();
        let mut floors_uncertain = false;
        for r in rows {
            let product: String = r.get(0);
            if !mask
                .as_ref()
                .is_some_and(|m| m.maps_inwink_product(&product))
            {
                continue;
            }
            let floor: i32 = r.get(1);
            floors.insert(product, floor.max(0) as u32);
            floors_uncertain |= r.get::<_, bool>(2);
        }
        let broken_products = client
            .query(
                "SELECT inwink_product_id FROM broken_mappings WHERE planexpo_event = $1",
                &[&planexpo_event],
            )
            .await
            .ctx("read the broken mappings")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(ReconcileContext {
            broken_products,
            inwink_event_id,
            desired,
            participant,
            parent_partner_id,
            partner,
            partner_uncertain,
            participant_record,
            participant_uncertain,
            linked,
            floors,
            floors_uncertain,
        })
    }

    /// Records the order's partner as inwink answered it (`sent: None` when its fields are not
    /// known, e.g. found by a lookup).
    pub async fn record_partner(
        &self,
        ev: &str,
        order_id: &str,
        partner_id: &str,
        sent: Option<&PartnerWrite>,
    ) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO applied_partners (planexpo_event, order_id, partner_id, sent, uncertain) VALUES ($1, $2, $3, $4, false)
                 ON CONFLICT (planexpo_event, order_id) DO UPDATE SET partner_id = EXCLUDED.partner_id,
                    sent = EXCLUDED.sent, uncertain = false, updated_at = now()",
                &[&ev, &order_id, &partner_id, &sent.map(to_json)],
            )
            .await
            .ctx("record the partner")?;
        Ok(())
    }

    /// A partner write's outcome is unknown: look before writing again.
    pub async fn mark_partner_uncertain(&self, ev: &str, order_id: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO applied_partners (planexpo_event, order_id, uncertain) VALUES ($1, $2, true)
                 ON CONFLICT (planexpo_event, order_id) DO UPDATE SET uncertain = true, updated_at = now()",
                &[&ev, &order_id],
            )
            .await
            .ctx("mark the partner uncertain")?;
        Ok(())
    }

    /// The partner is gone from inwink (deleted by hand): forget it, keep the floors.
    pub async fn forget_partner(&self, ev: &str, order_id: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE applied_partners SET partner_id = NULL, sent = NULL, uncertain = false, updated_at = now()
                 WHERE planexpo_event = $1 AND order_id = $2",
                &[&ev, &order_id],
            )
            .await
            .ctx("forget the partner")?;
        Ok(())
    }

    pub async fn record_participant(
        &self,
        ev: &str,
        email_key: &str,
        participant_id: &str,
        sent: Option<&DesiredParticipant>,
    ) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO applied_participants (planexpo_event, email_key, participant_id, sent, uncertain) VALUES ($1, $2, $3, $4, false)
                 ON CONFLICT (planexpo_event, email_key) DO UPDATE SET participant_id = EXCLUDED.participant_id,
                    sent = EXCLUDED.sent, uncertain = false, updated_at = now()",
                &[&ev, &email_key, &participant_id, &sent.map(to_json)],
            )
            .await
            .ctx("record the participant")?;
        Ok(())
    }

    pub async fn mark_participant_uncertain(&self, ev: &str, email_key: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO applied_participants (planexpo_event, email_key, uncertain) VALUES ($1, $2, true)
                 ON CONFLICT (planexpo_event, email_key) DO UPDATE SET uncertain = true, updated_at = now()",
                &[&ev, &email_key],
            )
            .await
            .ctx("mark the participant uncertain")?;
        Ok(())
    }

    pub async fn forget_participant(&self, ev: &str, email_key: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM applied_participants WHERE planexpo_event = $1 AND email_key = $2",
                &[&ev, &email_key],
            )
            .await
            .ctx("forget the participant")?;
        Ok(())
    }

    pub async fn record_link(
        &self,
        ev: &str,
        partner_id: &str,
        participant_id: &str,
        link_id: Option<&str>,
    ) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO applied_links (planexpo_event, partner_id, participant_id, link_id) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (planexpo_event, partner_id, participant_id) DO UPDATE SET link_id = coalesce(EXCLUDED.link_id, applied_links.link_id)",
                &[&ev, &partner_id, &participant_id, &link_id],
            )
            .await
            .ctx("record the team link")?;
        Ok(())
    }

    /// Raises a floor (never lowers it). `uncertain`: a write of that quantity may or may not
    /// have happened; the floor is then kept and inwink is read before the next write.
    pub async fn record_floor(
        &self,
        ev: &str,
        order_id: &str,
        product_id: &str,
        floor: u32,
        uncertain: bool,
    ) -> Result<()> {
        let client = self.client().await?;
        let floor = i32::try_from(floor).unwrap_or(i32::MAX);
        if uncertain {
            client
                .execute(
                    "INSERT INTO applied_quantities (planexpo_event, order_id, product_id, floor, uncertain) VALUES ($1, $2, $3, 0, true)
                     ON CONFLICT (planexpo_event, order_id, product_id) DO UPDATE SET uncertain = true, updated_at = now()",
                    &[&ev, &order_id, &product_id],
                )
                .await
                .ctx("mark the quantity uncertain")?;
        } else {
            client
                .execute(
                    "INSERT INTO applied_quantities (planexpo_event, order_id, product_id, floor, uncertain) VALUES ($1, $2, $3, $4, false)
                     ON CONFLICT (planexpo_event, order_id, product_id) DO UPDATE
                     SET floor = greatest(applied_quantities.floor, EXCLUDED.floor), uncertain = false, updated_at = now()",
                    &[&ev, &order_id, &product_id, &floor],
                )
                .await
                .ctx("record the quantity")?;
        }
        Ok(())
    }

    /// Records a refused decrease (idempotent per order, product, floor and desired).
    pub async fn record_refused_decrease(
        &self,
        ev: &str,
        order_id: &str,
        product_id: &str,
        floor: u32,
        desired: u32,
    ) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO refused_decreases (planexpo_event, order_id, product_id, floor, desired) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (planexpo_event, order_id, product_id, floor, desired) DO UPDATE SET last_seen_at = now()",
                &[&ev, &order_id, &product_id, &(floor as i32), &(desired as i32)],
            )
            .await
            .ctx("record the refused decrease")?;
        Ok(())
    }

    /// Records one call to inwink (no personal values: operation, route template, status, code).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_call(
        &self,
        ev: &str,
        order_id: &str,
        operation: &str,
        method: &str,
        route: &str,
        status: Option<u16>,
        code: Option<&str>,
        outcome: &str,
        trace_id: Option<&str>,
    ) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO inwink_calls (planexpo_event, order_id, operation, method, route, status, code, outcome, trace_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[&ev, &order_id, &operation, &method, &route, &status.map(i32::from), &code, &outcome, &trace_id],
            )
            .await
            .ctx("record the inwink call")?;
        Ok(())
    }
}

impl Store {
    /// The orders of a salon that have a desired state, by id.
    pub async fn order_ids(&self, planexpo_event: &str) -> Result<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT order_id FROM order_state WHERE planexpo_event = $1 AND updated_at IS NOT NULL ORDER BY order_id",
                &[&planexpo_event],
            )
            .await
            .ctx("list the orders")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

impl Store {
    /// An order's work-queue state and reason.
    pub async fn queue_state(
        &self,
        planexpo_event: &str,
        order_id: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT state, reason FROM work_queue WHERE planexpo_event = $1 AND order_id = $2",
                &[&planexpo_event, &order_id],
            )
            .await
            .ctx("read the queue state")?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }
}

impl Store {
    /// The trace context of an order's newest change.
    pub async fn order_traceparent(
        &self,
        planexpo_event: &str,
        order_id: &str,
    ) -> Result<Option<String>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT traceparent FROM order_state WHERE planexpo_event = $1 AND order_id = $2",
                &[&planexpo_event, &order_id],
            )
            .await
            .ctx("read the trace context")?;
        Ok(row.and_then(|r| r.get(0)))
    }
}
