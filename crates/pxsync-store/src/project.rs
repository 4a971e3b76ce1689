//! The projector's transaction: event log + hash chains + fold + desired state + marks +
//! checkpoint, all in one commit per fetched batch.

use crate::personal::{contact_of, email_digest, person_keys, seal_contact};
use crate::{Ctx, EventCursor, EventFilter, Result, Store, from_json, to_json};
use pxsync_core::desired::desired_order;
use pxsync_core::event::{EventEnvelope, encode};
use pxsync_core::fold::{FoldOutcome, OrderState, fold};
use pxsync_core::mask::Mask;
use ring::rand::SystemRandom;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use uuid::Uuid;

/// What one projected batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events new to the event log.
    pub inserted: usize,
    /// Events already in the log (redeliveries, republications).
    pub duplicates: usize,
    /// Orders whose state changed (and were marked for the emitter).
    pub changed_orders: usize,
}

/// The booking contact's e-mail of an observed revision, if it has a contact.
fn contact_email(e: &EventEnvelope) -> Option<&str> {
    match &e.data {
        pxsync_core::event::EventData::Observed(o) => {
            o.snapshot.contact.as_ref().map(|c| c.email.as_str())
        }
        pxsync_core::event::EventData::Rejected(_) => None,
    }
}

/// The hash of an event in its order's chain: SHA-256 of the previous hash and the event's
/// stored bytes (the canonical JSON of the stored payload, personal fields sealed; see
/// `eventlog::chain_input` for events logged before V7).
pub fn chain_hash(prev_hash: Option<&str>, canonical: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.unwrap_or("").as_bytes());
    h.update(b"\n");
    h.update(canonical);
    hex::encode(h.finalize())
}

type OrderKey = (String, String);

impl Store {
    /// Projects one batch in one transaction. Safe to call again with the same events (they are
    /// recognised by id) and from several processes at once (orders are serialised by their
    /// chain-head row lock, taken in a fixed order).
    pub async fn project_batch(
        &self,
        events: &[EventEnvelope],
        stream: &str,
        last_stream_seq: u64,
    ) -> Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        let mut groups: BTreeMap<OrderKey, Vec<&EventEnvelope>> = BTreeMap::new();
        for e in events {
            groups
                .entry((e.planexpo_event.clone(), e.order_id.clone()))
                .or_default()
                .push(e);
        }
        for g in groups.values_mut() {
            g.sort_by_key(|e| (e.revision, e.kind()));
        }
        let (evs, ords): (Vec<String>, Vec<String>) = groups.keys().cloned().unzip();

        let mut client = self.client().await?;
        let tx = client.transaction().await.ctx("begin the batch")?;
        if !groups.is_empty() {
            tx.execute(
                "INSERT INTO chain_heads (planexpo_event, order_id, hash)
                 SELECT e, o, '' FROM unnest($1::text[], $2::text[]) AS t(e, o)
                 ON CONFLICT DO NOTHING",
                &[&evs, &ords],
            )
            .await
            .ctx("create the chain heads")?;
        }
        let heads = tx
            .query(
                "SELECT planexpo_event, order_id, hash FROM chain_heads
                 WHERE (planexpo_event, order_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                 ORDER BY planexpo_event, order_id FOR UPDATE",
                &[&evs, &ords],
            )
            .await
            .ctx("lock the chain heads")?;
        let mut heads: BTreeMap<OrderKey, String> = heads
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect();

        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let existing: BTreeSet<Uuid> = tx
            .query(
                "SELECT event_id FROM event_log WHERE event_id = ANY($1)",
                &[&ids],
            )
            .await
            .ctx("find known events")?
            .iter()
            .map(|r| r.get(0))
            .collect();

        // The new events, in chain order.
        let mut new_events: Vec<(&OrderKey, &EventEnvelope)> = Vec::new();
        let mut fresh: BTreeMap<OrderKey, Vec<&EventEnvelope>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (key, group) in &groups {
            for e in group {
                if existing.contains(&e.event_id) || !seen.insert(e.event_id) {
                    outcome.duplicates += 1;
                    continue;
                }
                new_events.push((key, e));
                fresh.entry(key.clone()).or_default().push(e);
                outcome.inserted += 1;
            }
        }
        // Their contacts' keys: one statement for the whole batch.
        let digests: BTreeSet<String> = new_events
            .iter()
            .filter_map(|(_, e)| contact_email(e))
            .map(email_digest)
            .collect();
        let keys = if digests.is_empty() {
            BTreeMap::new()
        } else {
            person_keys(&tx, &digests.into_iter().collect::<Vec<_>>()).await?
        };
        // Sealed, then chained over what is stored.
        let rng = SystemRandom::new();
        let mut rows = EventRows::default();
        for (key, e) in new_events {
            let mut stored: serde_json::Value =
                serde_json::from_slice(&encode(e)).unwrap_or(serde_json::Value::Null);
            let mut person = None;
            if let Some(email) = contact_email(e)
                && let Some(k) = keys.get(&email_digest(email))
                && let Some(contact) = contact_of(&mut stored)
            {
                seal_contact(contact, k, e.event_id, &rng)?;
                person = Some(k.person_id);
            }
            let canonical = serde_json::to_vec(&stored).unwrap_or_default();
            let prev = heads.get(key).filter(|h| !h.is_empty()).cloned();
            let hash = chain_hash(prev.as_deref(), &canonical);
            rows.push(e, stored, person, prev, hash.clone());
            heads.insert(key.clone(), hash);
        }
        if !rows.ids.is_empty() {
            rows.insert(&tx).await?;
            let (hk_e, hk_o, hk_h): (Vec<String>, Vec<String>, Vec<String>) = fresh
                .keys()
                .map(|k| {
                    (
                        k.0.clone(),
                        k.1.clone(),
                        heads.get(k).cloned().unwrap_or_default(),
                    )
                })
                .fold((vec![], vec![], vec![]), |mut acc, (e, o, h)| {
                    acc.0.push(e);
                    acc.1.push(o);
                    acc.2.push(h);
                    acc
                });
            tx.execute(
                "UPDATE chain_heads c SET hash = t.h FROM unnest($1::text[], $2::text[], $3::text[]) AS t(e, o, h)
                 WHERE c.planexpo_event = t.e AND c.order_id = t.o",
                &[&hk_e, &hk_o, &hk_h],
            )
            .await
            .ctx("advance the chain heads")?;
        }

        // Fold the new events into the orders' states.
        if !fresh.is_empty() {
            let (fe, fo): (Vec<String>, Vec<String>) = fresh.keys().cloned().unzip();
            let states = tx
                .query(
                    "SELECT planexpo_event, order_id, state FROM order_state
                     WHERE (planexpo_event, order_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                    &[&fe, &fo],
                )
                .await
                .ctx("read the fold states")?;
            let mut states: BTreeMap<OrderKey, OrderState> = states
                .into_iter()
                .map(|r| {
                    Ok((
                        (r.get(0), r.get(1)),
                        from_json("order_state.state", r.get(2))?,
                    ))
                })
                .collect::<Result<_>>()?;
            let mut masks: BTreeMap<String, Mask> = BTreeMap::new();
            let mut salons: BTreeMap<String, String> = BTreeMap::new();
            let mut changed = StateRows::default();
            for (key, group) in &fresh {
                let state = states.entry(key.clone()).or_default();
                let mut any = false;
                for e in group {
                    salons
                        .entry(e.planexpo_event.clone())
                        .or_insert_with(|| e.inwink_event_id.clone());
                    any |= fold(state, e) == FoldOutcome::Changed;
                }
                if !any {
                    continue;
                }
                if !masks.contains_key(&key.0) {
                    let mask = tx
                        .query_opt(
                            "SELECT mask FROM mask_versions WHERE planexpo_event = $1 ORDER BY version DESC LIMIT 1",
                            &[&key.0],
                        )
                        .await
                        .ctx("read the mask")?
                        .map(|r| from_json::<Mask>("mask_versions.mask", r.get(0)))
                        .transpose()?
                        .unwrap_or_default();
                    masks.insert(key.0.clone(), mask);
                }
                let desired = desired_order(state, &masks[&key.0]);
                let traceparent = group.iter().rev().find_map(|e| e.traceparent.clone());
                changed.push(
                    key,
                    state,
                    desired.as_ref().map(to_json),
                    desired.as_ref(),
                    traceparent,
                );
            }
            outcome.changed_orders = changed.ev.len();
            if !salons.is_empty() {
                let (se, si): (Vec<String>, Vec<String>) = salons.into_iter().unzip();
                tx.execute(
                    "INSERT INTO salons (planexpo_event, inwink_event_id)
                     SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
                    &[&se, &si],
                )
                .await
                .ctx("register the salons")?;
            }
            changed.write(&tx).await?;
        }
        tx.execute(
            "INSERT INTO projector_checkpoints (stream, stream_seq) VALUES ($1, $2)
             ON CONFLICT (stream) DO UPDATE SET stream_seq = greatest(projector_checkpoints.stream_seq, EXCLUDED.stream_seq), updated_at = now()",
            &[&stream, &(last_stream_seq as i64)],
        )
        .await
        .ctx("advance the checkpoint")?;
        tx.commit().await.ctx("commit the batch")?;
        Ok(outcome)
    }

    /// The fold state and desired state of one order (for tests, status and audits).
    pub async fn order_state(
        &self,
        planexpo_event: &str,
        order_id: &str,
    ) -> Result<Option<(OrderState, Option<serde_json::Value>)>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT state, desired FROM order_state WHERE planexpo_event = $1 AND order_id = $2",
                &[&planexpo_event, &order_id],
            )
            .await
            .ctx("read the order state")?;
        row.map(|r| Ok((from_json("order_state.state", r.get(0))?, r.get(1))))
            .transpose()
    }

    /// How many events the log holds (optionally for one salon).
    pub async fn event_log_count(&self, planexpo_event: Option<&str>) -> Result<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM event_log WHERE $1::text IS NULL OR planexpo_event = $1",
                &[&planexpo_event],
            )
            .await
            .ctx("count the event log")?;
        Ok(row.get(0))
    }

    /// Verifies every order's hash chain over the stored (sealed) payloads, so an erasure does
    /// not break it. Returns the first broken link found in log order, if any, as (order id,
    /// event id, position).
    pub async fn verify_chains(&self) -> Result<Option<(String, Uuid, i64)>> {
        let mut cursor = EventCursor::open(self, EventFilter::default(), 10_000)
            .await?
            .checking_chains();
        let mut heads: BTreeMap<OrderKey, String> = BTreeMap::new();
        let mut broken = None;
        'pages: while let Some(page) = cursor.next_page().await? {
            for e in page {
                let key = (e.planexpo_event, e.order_id);
                if e.prev_hash.as_ref() != heads.get(&key) || e.hash_matches != Some(true) {
                    broken = Some((key.1, e.event_id, e.position));
                    break 'pages;
                }
                heads.insert(key, e.hash);
            }
        }
        cursor.close().await?;
        Ok(broken)
    }
}

#[derive(Default)]
struct EventRows {
    ids: Vec<Uuid>,
    kinds: Vec<String>,
    versions: Vec<i32>,
    evs: Vec<String>,
    orders: Vec<String>,
    revisions: Vec<i64>,
    updated: Vec<OffsetDateTime>,
    recorded: Vec<OffsetDateTime>,
    traces: Vec<Option<String>>,
    payloads: Vec<serde_json::Value>,
    persons: Vec<Option<Uuid>>,
    prevs: Vec<Option<String>>,
    hashes: Vec<String>,
}

impl EventRows {
    fn push(
        &mut self,
        e: &EventEnvelope,
        stored: serde_json::Value,
        person: Option<Uuid>,
        prev: Option<String>,
        hash: String,
    ) {
        self.ids.push(e.event_id);
        self.kinds.push(e.kind().as_str().to_owned());
        self.versions.push(e.schema_version as i32);
        self.evs.push(e.planexpo_event.clone());
        self.orders.push(e.order_id.clone());
        self.revisions.push(e.revision as i64);
        self.updated.push(e.updated_at.datetime());
        self.recorded.push(e.recorded_at.datetime());
        self.traces.push(e.traceparent.clone());
        self.payloads.push(stored);
        self.persons.push(person);
        self.prevs.push(prev);
        self.hashes.push(hash);
    }

    async fn insert(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
        tx.execute(
            "INSERT INTO event_log (event_id, kind, schema_version, planexpo_event, order_id, revision,
                                    updated_at, recorded_at, traceparent, payload, prev_hash, hash, person_id, payload_format)
             SELECT t.*, 2::smallint FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[],
                                  $7::timestamptz[], $8::timestamptz[], $9::text[], $10::jsonb[], $11::text[], $12::text[], $13::uuid[]) AS t
             ON CONFLICT (event_id) DO NOTHING",
            &[
                &self.ids,
                &self.kinds,
                &self.versions,
                &self.evs,
                &self.orders,
                &self.revisions,
                &self.updated,
                &self.recorded,
                &self.traces,
                &self.payloads,
                &self.prevs,
                &self.hashes,
                &self.persons,
            ],
        )
        .await
        .ctx("append to the event log")?;
        Ok(())
    }
}

/// Rows of `order_state` (the live table, or a replay's shadow one), written with `unnest`.
#[derive(Default)]
pub(crate) struct StateRows {
    ev: Vec<String>,
    order: Vec<String>,
    revision: Vec<i64>,
    state: Vec<serde_json::Value>,
    desired: Vec<Option<serde_json::Value>>,
    parent: Vec<Option<String>>,
    email: Vec<Option<String>>,
    updated: Vec<Option<OffsetDateTime>>,
    traceparent: Vec<Option<String>>,
}

impl StateRows {
    pub(crate) fn push(
        &mut self,
        key: &OrderKey,
        state: &OrderState,
        desired_json: Option<serde_json::Value>,
        desired: Option<&pxsync_core::desired::DesiredOrder>,
        traceparent: Option<String>,
    ) {
        self.ev.push(key.0.clone());
        self.order.push(key.1.clone());
        self.revision.push(state.revision() as i64);
        self.state.push(to_json(state));
        self.desired.push(desired_json);
        self.parent
            .push(desired.and_then(|d| d.parent_order_id.clone()));
        self.email
            .push(desired.and_then(|d| d.participant.as_ref().map(|p| p.email_key.clone())));
        self.updated.push(desired.map(|d| d.updated_at.datetime()));
        self.traceparent.push(traceparent);
    }

    async fn write(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
        if self.ev.is_empty() {
            return Ok(());
        }
        self.upsert(tx, "order_state").await?;
        tx.execute(crate::salons::MARK_ORDERS_SQL, &[&self.ev, &self.order])
            .await
            .ctx("mark the orders for the emitter")?;
        Ok(())
    }

    /// Inserts (or updates) the rows into `table`, an `order_state` or a shadow copy of it.
    pub(crate) async fn upsert(
        &self,
        client: &tokio_postgres::Transaction<'_>,
        table: &str,
    ) -> Result<()> {
        client
            .execute(
            &format!("INSERT INTO {table} (planexpo_event, order_id, revision, state, desired, parent_order_id, email_key, updated_at, traceparent)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::jsonb[], $5::jsonb[], $6::text[], $7::text[], $8::timestamptz[], $9::text[])
             ON CONFLICT (planexpo_event, order_id) DO UPDATE SET
                revision = EXCLUDED.revision, state = EXCLUDED.state, desired = EXCLUDED.desired,
                parent_order_id = EXCLUDED.parent_order_id, email_key = EXCLUDED.email_key, updated_at = EXCLUDED.updated_at,
                traceparent = coalesce(EXCLUDED.traceparent, {table}.traceparent)"),
            &[&self.ev, &self.order, &self.revision, &self.state, &self.desired, &self.parent, &self.email, &self.updated, &self.traceparent],
        )
        .await
        .ctx("write the order states")?;
        Ok(())
    }
}
