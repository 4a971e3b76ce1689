//! The projector's transaction: event log + hash chains + fold + desired state + marks +
//! checkpoint, all in one commit per fetched batch.

use crate::personal::{PersonKey, email_digest, person_keys, seal_event};
use crate::{Ctx, EventCursor, EventFilter, Result, Store, StoreError, from_json_bytes};
use pxsync_core::desired::{desired_keys, desired_order};
use pxsync_core::event::{EventEnvelope, encode};
use pxsync_core::fold::{FoldOutcome, OrderState, fold};
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

/// The reads of a batch, in the order they must run: the salons' mask locks (shared), then the
/// orders' locks (exclusive, one advisory lock per order, taken in key order: two batches never
/// extend one order's chain at once and never deadlock), then read.
///
/// No mask is read (the desired state is computed where it is read, V15), but a batch and a
/// mask import of its salon still never overlap (the import holds the lock exclusively): the
/// import marks the salon's orders as it lists them, so an order a batch creates meanwhile
/// would be missed, and the emitter could reconcile it through the mask being replaced and
/// finish it as done; and the import's marks and the batch's would lock work-queue rows in
/// different orders.
const BATCH_READS: [&str; 5] = [
    "SELECT pg_advisory_xact_lock_shared(k) FROM unnest($1::bigint[]) AS t(k) ORDER BY k",
    "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS t(k) ORDER BY k",
    "SELECT event_id FROM event_log WHERE event_id = ANY($1)",
    "SELECT planexpo_event, order_id, state, chain_hash FROM order_state
     WHERE (planexpo_event, order_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
    // A set of index probes whatever the table's statistics say (V17).
    "SELECT email_digest, person_id, key FROM person_keys_by_digest($1)",
];

/// The writes of a batch, pipelined after the reads. Plain inserts, without `ON CONFLICT`: an
/// event id belongs to one order, and only a batch holding the order's lock writes its events
/// and its state, after reading them under that lock (a conflict would be a bug: the batch
/// fails, is redelivered, and the read then finds the row).
const BATCH_WRITES: [&str; 6] = [
    "INSERT INTO event_log (event_id, kind, schema_version, planexpo_event, order_id, revision,
                            updated_at, recorded_at, traceparent, payload, prev_hash, hash, person_id, payload_format)
     SELECT t.*, 4::smallint FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[],
                          $7::timestamptz[], $8::timestamptz[], $9::text[], $10::bytea[], $11::text[], $12::text[], $13::uuid[]) AS t",
    // Orders already in state (their rows are known to exist: the batch holds their locks).
    "UPDATE order_state s SET revision = t.r, state = t.s, parent_order_id = t.p,
            email_key = t.m, updated_at = t.u, traceparent = coalesce(t.tp, s.traceparent), chain_hash = t.h
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::text[],
                 $7::timestamptz[], $8::text[], $9::text[]) AS t(e, o, r, s, p, m, u, tp, h)
     WHERE s.planexpo_event = t.e AND s.order_id = t.o",
    // Orders new to the state.
    "INSERT INTO order_state (planexpo_event, order_id, revision, state, parent_order_id, email_key, updated_at, traceparent, chain_hash)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::text[],
                          $7::timestamptz[], $8::text[], $9::text[])",
    crate::salons::PROJECTOR_MARKS_SQL,
    "INSERT INTO salons (planexpo_event, inwink_event_id)
     SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
    "INSERT INTO projector_checkpoints (stream, stream_seq) VALUES ($1, $2)
     ON CONFLICT (stream) DO UPDATE SET stream_seq = greatest(projector_checkpoints.stream_seq, EXCLUDED.stream_seq), updated_at = now()",
];

/// The most orders a batch may hold: each holds one advisory lock until the commit, in a lock
/// table Postgres sizes to `max_locks_per_transaction` x `max_connections` (6,400 by default).
pub const MAX_BATCH_ORDERS: usize = 1_000;

/// One order of a batch as read: its fold state, the head of its chain, and whether it has a
/// row yet.
struct ReadOrder {
    state: OrderState,
    head: Option<String>,
    exists: bool,
}

impl Store {
    /// Projects one batch in one transaction. Safe to call again with the same events (they are
    /// recognised by id) and from several processes at once (orders are serialised by their
    /// advisory locks, taken in a fixed order).
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
        if groups.len() > MAX_BATCH_ORDERS {
            return Err(StoreError::BatchTooLarge {
                orders: groups.len(),
                max: MAX_BATCH_ORDERS,
            });
        }
        for g in groups.values_mut() {
            g.sort_by_key(|e| (e.revision, e.kind()));
        }
        let (evs, ords): (Vec<String>, Vec<String>) = groups.keys().cloned().unzip();
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let mut mask_locks: Vec<i64> = evs
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|salon| self.mask_lock_key(salon))
            .collect();
        mask_locks.sort_unstable();
        let mut order_locks: Vec<i64> = groups
            .keys()
            .map(|(salon, order)| self.order_lock_key(salon, order))
            .collect();
        order_locks.sort_unstable();
        order_locks.dedup();
        // Every contact's key is read (a redelivered event's too, which is harmless); only new
        // events' contacts get a key created, below.
        let all_digests: Vec<String> = events
            .iter()
            .filter_map(contact_email)
            .map(email_digest)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();

        let mut client = self.client().await?;
        let tx = client.transaction().await.ctx("begin the batch")?;
        // One round trip. The statements are prepared once per connection, so all five go out
        // at the first poll, in this order, and Postgres runs pipelined statements in order:
        // the states and the known ids are read once the orders are locked.
        let reads = prepare_all(&tx, &BATCH_READS, "prepare the batch's reads").await?;
        let writes = prepare_all(&tx, &BATCH_WRITES, "prepare the batch's writes").await?;
        let (_, _, existing, states, key_rows) = futures::try_join!(
            async {
                tx.query(&reads[0], &[&mask_locks])
                    .await
                    .ctx("share the mask locks")
            },
            async {
                tx.query(&reads[1], &[&order_locks])
                    .await
                    .ctx("lock the orders")
            },
            async { tx.query(&reads[2], &[&ids]).await.ctx("find known events") },
            async {
                tx.query(&reads[3], &[&evs, &ords])
                    .await
                    .ctx("read the fold states")
            },
            async {
                tx.query(&reads[4], &[&all_digests])
                    .await
                    .ctx("read the person keys")
            },
        )?;
        let existing: BTreeSet<Uuid> = existing.iter().map(|r| r.get(0)).collect();
        let mut read: BTreeMap<OrderKey, ReadOrder> = states
            .iter()
            .map(|r| {
                let head: Option<String> = r.get(3);
                Ok((
                    (r.get(0), r.get(1)),
                    ReadOrder {
                        state: from_json_bytes("order_state.state", r.get(2))?,
                        head: head.filter(|h| !h.is_empty()),
                        exists: true,
                    },
                ))
            })
            .collect::<Result<_>>()?;
        let mut keys: BTreeMap<String, PersonKey> = key_rows
            .iter()
            .map(|r| (r.get(0), PersonKey::new(r.get(1), r.get(2))))
            .collect();

        // The new events, in chain order.
        let mut new_events: Vec<(&OrderKey, &EventEnvelope)> = Vec::new();
        let mut fresh: BTreeMap<&OrderKey, Vec<&EventEnvelope>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (key, group) in &groups {
            for e in group {
                if existing.contains(&e.event_id) || !seen.insert(e.event_id) {
                    outcome.duplicates += 1;
                    continue;
                }
                new_events.push((key, e));
                fresh.entry(key).or_default().push(e);
                outcome.inserted += 1;
            }
        }
        // The keys of new persons: one more statement, only when there are some (only for new
        // events, so that a redelivered event of an erased person never recreates a key).
        let missing: Vec<String> = new_events
            .iter()
            .filter_map(|(_, e)| contact_email(e))
            .map(email_digest)
            .filter(|d| !keys.contains_key(d))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            keys.extend(person_keys(&tx, &missing).await?);
        }
        // Sealed, then chained over what is stored.
        let rng = SystemRandom::new();
        let mut rows = EventRows::default();
        for (key, e) in new_events {
            let order = read.entry(key.clone()).or_insert_with(|| ReadOrder {
                state: OrderState::default(),
                head: None,
                exists: false,
            });
            let person = contact_email(e).and_then(|email| keys.get(&email_digest(email)));
            let stored = match person {
                Some(k) => seal_event(e, k, &rng)?,
                None => encode(e),
            };
            let prev = order.head.take();
            let hash = chain_hash(prev.as_deref(), &stored);
            rows.push(e, stored, person.map(|k| k.person_id), prev, hash.clone());
            order.head = Some(hash);
        }

        // Fold the new events into the orders' states. Every order with a new event is
        // written (its chain head moved); only those whose state changed are marked.
        let mut salons: BTreeMap<String, String> = BTreeMap::new();
        let (mut updated, mut inserted) = (StateRows::default(), StateRows::default());
        let (mut marked_ev, mut marked_order) = (Vec::new(), Vec::new());
        for (key, group) in &fresh {
            let Some(order) = read.get_mut(*key) else {
                continue;
            };
            let mut any = false;
            for e in group {
                salons
                    .entry(e.planexpo_event.clone())
                    .or_insert_with(|| e.inwink_event_id.clone());
                any |= fold(&mut order.state, e) == FoldOutcome::Changed;
            }
            let traceparent = any
                .then(|| group.iter().rev().find_map(|e| e.traceparent.clone()))
                .flatten();
            let rows = if order.exists {
                &mut updated
            } else {
                &mut inserted
            };
            rows.push_order(key, &order.state, traceparent, order.head.clone());
            if any {
                marked_ev.push(key.0.clone());
                marked_order.push(key.1.clone());
            }
        }
        outcome.changed_orders = marked_ev.len();
        let (se, si): (Vec<String>, Vec<String>) = salons.into_iter().unzip();

        // The writes, pipelined in one round trip, then the commit.
        let last_seq = last_stream_seq as i64;
        futures::try_join!(
            async {
                if rows.ids.is_empty() {
                    return Ok(());
                }
                rows.insert(&tx, &writes[0]).await
            },
            updated.write(&tx, &writes[1]),
            inserted.write(&tx, &writes[2]),
            async {
                if marked_ev.is_empty() {
                    return Ok(());
                }
                tx.execute(&writes[3], &[&marked_ev, &marked_order])
                    .await
                    .ctx("mark the orders for the emitter")
                    .map(|_| ())
            },
            async {
                if se.is_empty() {
                    return Ok(());
                }
                tx.execute(&writes[4], &[&se, &si])
                    .await
                    .ctx("register the salons")
                    .map(|_| ())
            },
            async {
                tx.execute(&writes[5], &[&stream, &last_seq])
                    .await
                    .ctx("advance the checkpoint")
                    .map(|_| ())
            },
        )?;
        tx.commit().await.ctx("commit the batch")?;
        Ok(outcome)
    }

    /// The advisory lock key of an order (held by the batch that extends its chain and writes
    /// its state; the emitter takes it shared to read the state).
    pub fn order_lock_key(&self, planexpo_event: &str, order_id: &str) -> i64 {
        self.namespace()
            .lock_key(&format!("order:{planexpo_event}\n{order_id}"))
    }

    /// The fold state and desired state of one order (for tests, status and audits). The
    /// desired state is computed from the fold state and the salon's mask in force.
    pub async fn order_state(
        &self,
        planexpo_event: &str,
        order_id: &str,
    ) -> Result<Option<(OrderState, Option<serde_json::Value>)>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT s.state, {} FROM order_state s WHERE s.planexpo_event = $1 AND s.order_id = $2",
                    crate::MASK_IN_FORCE
                ),
                &[&planexpo_event, &order_id],
            )
            .await
            .ctx("read the order state")?;
        row.map(|r| {
            let state: OrderState = from_json_bytes("order_state.state", r.get(0))?;
            let desired = desired_order(&state, &crate::mask_column(&r, 1)?);
            Ok((state, desired.as_ref().map(crate::to_json)))
        })
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
    payloads: Vec<Vec<u8>>,
    persons: Vec<Option<Uuid>>,
    prevs: Vec<Option<String>>,
    hashes: Vec<String>,
}

impl EventRows {
    fn push(
        &mut self,
        e: &EventEnvelope,
        stored: Vec<u8>,
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

    async fn insert(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        statement: &tokio_postgres::Statement,
    ) -> Result<()> {
        tx.execute(
            statement,
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

/// The columns `order_state` keeps beside an order's fold state: the mask-independent keys of
/// its desired state ([`desired_keys`]), all `None` when it has none. The projector and the
/// replay's shadow rows write them alike.
pub(crate) struct KeyColumns {
    pub parent_order_id: Option<String>,
    pub email_key: Option<String>,
    pub updated_at: Option<OffsetDateTime>,
}

impl KeyColumns {
    pub(crate) fn of(state: &OrderState) -> KeyColumns {
        let keys = desired_keys(state);
        KeyColumns {
            parent_order_id: keys
                .as_ref()
                .and_then(|k| k.parent_order_id.map(str::to_owned)),
            updated_at: keys.as_ref().map(|k| k.updated_at.datetime()),
            email_key: keys.and_then(|k| k.email_key),
        }
    }
}

/// Rows of `order_state`, written with `unnest`.
#[derive(Default)]
struct StateRows {
    ev: Vec<String>,
    order: Vec<String>,
    revision: Vec<i64>,
    state: Vec<Vec<u8>>,
    parent: Vec<Option<String>>,
    email: Vec<Option<String>>,
    updated: Vec<Option<OffsetDateTime>>,
    traceparent: Vec<Option<String>>,
    chain_hash: Vec<Option<String>>,
}

impl StateRows {
    /// Adds an order's row: its fold state, serialised directly, and the mask-independent keys
    /// of its desired state.
    fn push_order(
        &mut self,
        key: &OrderKey,
        state: &OrderState,
        traceparent: Option<String>,
        chain_hash: Option<String>,
    ) {
        let keys = KeyColumns::of(state);
        self.ev.push(key.0.clone());
        self.order.push(key.1.clone());
        self.revision.push(state.revision() as i64);
        self.state.push(json_bytes(state));
        self.parent.push(keys.parent_order_id);
        self.email.push(keys.email_key);
        self.updated.push(keys.updated_at);
        self.traceparent.push(traceparent);
        self.chain_hash.push(chain_hash);
    }

    /// Writes the rows with `statement`, which takes the columns in this struct's order.
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        statement: &tokio_postgres::Statement,
    ) -> Result<()> {
        if self.ev.is_empty() {
            return Ok(());
        }
        tx.execute(
            statement,
            &[
                &self.ev,
                &self.order,
                &self.revision,
                &self.state,
                &self.parent,
                &self.email,
                &self.updated,
                &self.traceparent,
                &self.chain_hash,
            ],
        )
        .await
        .ctx("write the order states")?;
        Ok(())
    }
}

/// Prepares (once per connection) every statement of `sqls`.
async fn prepare_all(
    tx: &deadpool_postgres::Transaction<'_>,
    sqls: &[&str],
    what: &'static str,
) -> Result<Vec<tokio_postgres::Statement>> {
    let mut prepared = Vec::with_capacity(sqls.len());
    for sql in sqls {
        prepared.push(tx.prepare_cached(sql).await.ctx(what)?);
    }
    Ok(prepared)
}

/// A value as the JSON bytes `order_state` stores (`bytea`), serialised once, straight from
/// the typed value.
pub(crate) fn json_bytes<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Sized for a typical order's state at once (about 1 KB), not grown from empty.
    let mut out = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut out, v) {
        Ok(()) => out,
        Err(_) => b"null".to_vec(),
    }
}

/// The purpose of a salon's mask lock: held exclusively by a mask import, shared by every
/// projected batch of the salon.
pub(crate) fn mask_lock_purpose(planexpo_event: &str) -> String {
    format!("mask:{planexpo_event}")
}

impl Store {
    /// The advisory lock key of a salon's mask (see [`Store::import_mask_with`]).
    pub fn mask_lock_key(&self, planexpo_event: &str) -> i64 {
        self.namespace()
            .lock_key(&mask_lock_purpose(planexpo_event))
    }
}
