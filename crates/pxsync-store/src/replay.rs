//! Replay: rebuild the fold state and the desired state of every order from `event_log` alone,
//! into a shadow schema, and compare it with the live `order_state`.
//!
//! Architecture invariants:
//! - A replay only reads the namespace and writes the shadow schema; it has no inwink client
//!   and no way to get one (this crate has none).
//! - The events, the masks and the live state are read in one snapshot ([`EventCursor`]), so a
//!   projector running meanwhile cannot make a difference appear.
//! - The desired state is computed with the mask version in force at the end point (the newest
//!   whose `valid_from` is at or before it). The live desired state is computed the same way
//!   from the live fold state and the mask in force now (it is not stored: V15).
//! - An erased person is not a difference: the live state still holds the current values of a
//!   person Planexpo still has; the comparison erases them the same way first.

use crate::personal::erase_contact;
use crate::project::{KeyColumns, json_bytes};
use crate::{
    Ctx, EventCursor, EventFilter, LoggedEvent, Result, Store, StoreError, Until, from_json,
};
use pxsync_core::desired::desired_order;
use pxsync_core::event::EventData;
use pxsync_core::fold::{FoldOutcome, OrderState, fold_owned};
use pxsync_core::mask::Mask;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// What to replay and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOptions {
    /// One salon, or all.
    pub planexpo_event: Option<String>,
    /// Stop at this point (events at or before it, and the mask then in force).
    pub until: Option<Until>,
    /// The shadow schema (created, its `order_state` replaced).
    pub into: String,
}

/// One order whose replayed state differs from the live one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayDifference {
    pub planexpo_event: String,
    pub order_id: String,
    /// `revision`, `state`, `desired`, `missing_live` or `missing_replayed`.
    pub fields: Vec<&'static str>,
    pub live_revision: Option<i64>,
    pub replayed_revision: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    pub events: u64,
    /// Events this build cannot read (not folded).
    pub unreadable: u64,
    pub orders: usize,
    /// Orders whose current contact reads as erased in the log (equal to the live state once
    /// the live values are erased the same way).
    pub erased_orders: usize,
    /// The mask version used per salon.
    pub mask_versions: BTreeMap<String, i32>,
    /// The end point as an instant, when `until` was given.
    #[serde(with = "time::serde::rfc3339::option")]
    pub as_of: Option<OffsetDateTime>,
    pub differences: Vec<ReplayDifference>,
}

type OrderKey = (String, String);

/// Events per page read from the log.
const PAGE: usize = 2_000;
/// Pages opened at once (on blocking threads) while the next one is read.
const OPENING: usize = 4;

/// The mask in force per salon at the replay's end point, and now (a salon without one maps
/// nothing).
struct Masks {
    by_salon: BTreeMap<String, (i32, Mask)>,
    /// The masks in force now, when the end point is in the past (otherwise `by_salon`).
    current: Option<BTreeMap<String, (i32, Mask)>>,
    none: Mask,
}

impl Masks {
    fn of(&self, planexpo_event: &str) -> &Mask {
        self.by_salon
            .get(planexpo_event)
            .map_or(&self.none, |(_, m)| m)
    }

    /// The mask the live desired state is computed with.
    fn current_of(&self, planexpo_event: &str) -> &Mask {
        let current = self.current.as_ref().unwrap_or(&self.by_salon);
        current.get(planexpo_event).map_or(&self.none, |(_, m)| m)
    }

    /// Whether the replay and the live state use the same mask version for this salon.
    fn same_now(&self, planexpo_event: &str) -> bool {
        self.current.as_ref().is_none_or(|current| {
            current.get(planexpo_event).map(|(v, _)| v)
                == self.by_salon.get(planexpo_event).map(|(v, _)| v)
        })
    }
}

#[derive(Default)]
struct Replayed {
    state: OrderState,
    traceparent: Option<String>,
    erased: bool,
}

/// Schema names a replay may write: a plain lowercase identifier, not a system schema.
fn check_shadow_schema(name: &str, live: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain || name == live || name == "public" || name.starts_with("pg_") {
        return Err(StoreError::Config(format!(
            "--into {name:?}: the shadow schema must be a lowercase identifier ([a-z0-9_]), \
             and neither the namespace's own schema, public nor a pg_ schema"
        )));
    }
    Ok(())
}

impl Store {
    /// Replays the log into the shadow schema `opts.into` and compares it with the live state.
    /// `progress(done, total)` is called after each page of events.
    pub async fn replay(
        &self,
        opts: &ReplayOptions,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ReplayReport> {
        check_shadow_schema(&opts.into, &self.namespace().schema())?;
        let filter = EventFilter {
            planexpo_event: opts.planexpo_event.clone(),
            order_id: None,
            until: opts.until,
        };
        let mut cursor = EventCursor::open(self, filter.clone(), PAGE)
            .await?
            .order_by_order();
        let (as_of, masks, current) = replay_inputs(cursor.client(), &filter).await?;
        let total = cursor.count().await?;
        let mut report = ReplayReport {
            as_of,
            mask_versions: masks.iter().map(|(k, (v, _))| (k.clone(), *v)).collect(),
            ..ReplayReport::default()
        };
        let masks = Arc::new(Masks {
            by_salon: masks,
            current,
            none: Mask::default(),
        });

        // Read pages in one task; open and fold them on blocking threads while the next page
        // is read; join the orders at the pages' edges here, in order.
        let (pages_tx, mut pages) = tokio::sync::mpsc::channel(2);
        let opener_masks = Arc::clone(&masks);
        let reader = tokio::spawn(async move {
            let mut opening = futures::stream::FuturesOrdered::new();
            let mut reading = true;
            while reading || !opening.is_empty() {
                if reading {
                    match cursor.next_rows().await {
                        Ok(Some(raw)) => {
                            let masks = Arc::clone(&opener_masks);
                            opening.push_back(tokio::task::spawn_blocking(move || {
                                FoldedPage::of(raw.open(), &masks)
                            }));
                        }
                        Ok(None) => reading = false,
                        Err(e) => {
                            let _ = pages_tx.send(Err(e)).await;
                            break;
                        }
                    }
                }
                if opening.len() < OPENING && reading {
                    continue;
                }
                let Some(folded) = futures::StreamExt::next(&mut opening).await else {
                    continue;
                };
                let folded = folded.map_err(|e| StoreError::Corrupt {
                    what: "event log opener",
                    detail: e.to_string(),
                });
                if pages_tx.send(folded).await.is_err() {
                    break;
                }
            }
            cursor
        });
        let mut edges = OrderRuns::default();
        while let Some(page) = pages.recv().await {
            let page = page?;
            report.events += page.events;
            report.unreadable += page.runs.unreadable;
            for logged in page.first {
                edges.push(logged, &masks);
            }
            if !page.runs.rows.is_empty() {
                edges.finish_current(&masks);
                edges.rows.extend(page.runs.rows);
            }
            for logged in page.last {
                edges.push(logged, &masks);
            }
            progress(report.events, total);
        }
        let cursor = reader.await.map_err(|e| StoreError::Corrupt {
            what: "event log reader",
            detail: e.to_string(),
        })?;
        report.unreadable += edges.unreadable;
        edges.finish_current(&masks);
        let mut rows = edges.rows;
        // Each order's events came together (the cursor reads order by order), so each order
        // has one row; two would mean the read was not in that order.
        rows.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        if let Some(pair) = rows.windows(2).find(|p| p[0].key == p[1].key) {
            return Err(StoreError::Corrupt {
                what: "replay",
                detail: format!(
                    "order {} of {} was read in two parts",
                    pair[0].key.1, pair[0].key.0
                ),
            });
        }
        report.orders = rows.len();
        let mut erased_orders = 0;
        let compare_live = async {
            let live = live_states(cursor.client(), opts.planexpo_event.as_deref()).await?;
            cursor.close().await?;
            Ok::<_, StoreError>(compare(&rows, &live, &masks, &mut erased_orders))
        };
        // The shadow is written on a second connection while the live state is read and
        // compared on the snapshot's (one after the other in a pool of one connection).
        report.differences = if self.pool_size() >= 2 {
            let (written, compared) =
                tokio::join!(self.write_shadow(&opts.into, &rows), compare_live);
            written?;
            compared?
        } else {
            let compared = compare_live.await?;
            self.write_shadow(&opts.into, &rows).await?;
            compared
        };
        report.erased_orders = erased_orders;
        Ok(report)
    }

    /// Creates `schema.order_state` like the live table and fills it with one binary COPY.
    async fn write_shadow(&self, schema: &str, rows: &[ShadowRow]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.ctx("begin the shadow write")?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             DROP TABLE IF EXISTS {schema}.order_state;
             CREATE UNLOGGED TABLE {schema}.order_state (LIKE {live}.order_state INCLUDING ALL);",
            live = self.namespace().schema()
        ))
        .await
        .ctx("create the shadow schema")?;
        // The column types as the table has them, so that a column whose type changed fails
        // here with a clear error instead of being written wrong.
        let types: Vec<tokio_postgres::types::Type> = tx
            .prepare(&format!(
                "SELECT {SHADOW_COLUMNS} FROM {schema}.order_state LIMIT 0"
            ))
            .await
            .ctx("read the shadow table's columns")?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let sink = tx
            .copy_in(&format!(
                "COPY {schema}.order_state ({SHADOW_COLUMNS}) FROM STDIN BINARY"
            ))
            .await
            .ctx("start the shadow copy")?;
        let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        futures::pin_mut!(writer);
        for r in rows {
            writer
                .as_mut()
                .write(&[
                    &r.key.0,
                    &r.key.1,
                    &r.revision,
                    &r.state_bytes,
                    &r.parent_order_id,
                    &r.email_key,
                    &r.updated_at,
                    &r.traceparent,
                ])
                .await
                .ctx("copy the replayed states")?;
        }
        writer.finish().await.ctx("finish the shadow copy")?;
        tx.commit().await.ctx("commit the shadow write")
    }
}

/// The columns of `order_state` a replay writes, in [`ShadowRow`]'s order.
const SHADOW_COLUMNS: &str = "planexpo_event, order_id, revision, state, parent_order_id, email_key, updated_at, traceparent";

/// One replayed order as the shadow `order_state` holds it (the same columns as the
/// projector's rows).
struct ShadowRow {
    key: OrderKey,
    erased: bool,
    revision: i64,
    /// The stored bytes, as the projector writes them.
    state_bytes: Vec<u8>,
    /// The desired state through the mask in force at the end point, as JSON (for the
    /// comparison only: the shadow table stores no desired state, as the live one).
    desired_bytes: Option<Vec<u8>>,
    parent_order_id: Option<String>,
    email_key: Option<String>,
    updated_at: Option<OffsetDateTime>,
    traceparent: Option<String>,
}

impl ShadowRow {
    fn new(key: OrderKey, r: Replayed, mask: &Mask) -> ShadowRow {
        let keys = KeyColumns::of(&r.state);
        ShadowRow {
            revision: r.state.revision() as i64,
            state_bytes: json_bytes(&r.state),
            desired_bytes: desired_order(&r.state, mask).as_ref().map(json_bytes),
            parent_order_id: keys.parent_order_id,
            email_key: keys.email_key,
            updated_at: keys.updated_at,
            traceparent: r.traceparent,
            erased: r.erased,
            key,
        }
    }
}

/// Replayed orders, read order by order: the one being folded and the shadow rows of those
/// done (the state's JSON and the desired state's, computed once for the comparison and the
/// shadow write alike).
#[derive(Default)]
struct OrderRuns {
    current: Option<(OrderKey, Replayed)>,
    rows: Vec<ShadowRow>,
    /// Events this build cannot read (not folded).
    unreadable: u64,
}

impl OrderRuns {
    fn push(&mut self, logged: LoggedEvent, masks: &Masks) {
        let Ok(mut event) = logged.event else {
            self.unreadable += 1;
            return;
        };
        if !self.current.as_ref().is_some_and(|((ev, order), _)| {
            *ev == logged.planexpo_event && *order == logged.order_id
        }) {
            self.finish_current(masks);
        }
        let (_, r) = self.current.get_or_insert_with(|| {
            (
                (logged.planexpo_event, logged.order_id),
                Replayed::default(),
            )
        });
        let observed = matches!(event.data, EventData::Observed(_));
        let traceparent = event.traceparent.take();
        if fold_owned(&mut r.state, event) == FoldOutcome::Changed {
            if traceparent.is_some() {
                r.traceparent = traceparent;
            }
            if observed {
                r.erased = logged.erased;
            }
        }
    }

    /// The order being folded is complete.
    fn finish_current(&mut self, masks: &Masks) {
        if let Some((key, r)) = self.current.take() {
            let mask = masks.of(&key.0);
            self.rows.push(ShadowRow::new(key, r, mask));
        }
    }
}

/// A page opened and folded on a blocking thread. The orders wholly inside it are folded into
/// shadow rows there; the events of its first and last orders, which may continue from the
/// page before or onto the next, are left to join with their neighbours.
struct FoldedPage {
    events: u64,
    first: Vec<LoggedEvent>,
    runs: OrderRuns,
    last: Vec<LoggedEvent>,
}

impl FoldedPage {
    fn of(mut page: Vec<LoggedEvent>, masks: &Masks) -> FoldedPage {
        let events = page.len() as u64;
        let same = |a: &LoggedEvent, b: &LoggedEvent| {
            a.order_id == b.order_id && a.planexpo_event == b.planexpo_event
        };
        let (first_len, last_len) = match (page.first(), page.last()) {
            (Some(first), Some(last)) => (
                page.iter().take_while(|e| same(e, first)).count(),
                page.iter().rev().take_while(|e| same(e, last)).count(),
            ),
            _ => (0, 0),
        };
        // One order only: all of it is an edge.
        let last = if first_len == page.len() {
            Vec::new()
        } else {
            page.split_off(page.len() - last_len)
        };
        let middle = page.split_off(first_len);
        let mut runs = OrderRuns::default();
        for logged in middle {
            runs.push(logged, masks);
        }
        runs.finish_current(masks);
        FoldedPage {
            events,
            first: page,
            runs,
            last,
        }
    }
}

type SalonMasks = BTreeMap<String, (i32, Mask)>;

/// The end point as an instant, the mask in force per salon then, and (for an end point in the
/// past) the mask in force now.
async fn replay_inputs(
    client: &tokio_postgres::Client,
    filter: &EventFilter,
) -> Result<(Option<OffsetDateTime>, SalonMasks, Option<SalonMasks>)> {
    let as_of: Option<OffsetDateTime> = match filter.until {
        None => None,
        Some(Until::Time(t)) => Some(t),
        Some(Until::Position(p)) => client
            .query_one(
                "SELECT coalesce(max(projected_at), '-infinity') FROM event_log WHERE position <= $1",
                &[&p],
            )
            .await
            .ctx("find the end point")?
            .get(0),
    };
    let then = masks_in_force(client, as_of).await?;
    let now = match as_of {
        Some(_) => Some(masks_in_force(client, None).await?),
        None => None,
    };
    Ok((as_of, then, now))
}

/// The newest mask per salon whose `valid_from` is at or before `at` (the newest, without it).
async fn masks_in_force(
    client: &tokio_postgres::Client,
    at: Option<OffsetDateTime>,
) -> Result<SalonMasks> {
    let mut masks = BTreeMap::new();
    for r in client
        .query(
            "SELECT DISTINCT ON (planexpo_event) planexpo_event, version, mask FROM mask_versions
             WHERE $1::timestamptz IS NULL OR valid_from <= $1
             ORDER BY planexpo_event, version DESC",
            &[&at],
        )
        .await
        .ctx("read the masks in force")?
    {
        let mask: Mask = from_json("mask_versions.mask", r.get(2))?;
        masks.insert(r.get::<_, String>(0), (r.get::<_, i32>(1), mask));
    }
    Ok(masks)
}

struct LiveState {
    revision: i64,
    state: Vec<u8>,
}

/// Whether two stored JSON values are the same value: byte for byte (as the projector and the
/// replay both write them), or else as JSON (values converted from jsonb by V13 are spaced
/// differently). Bytes that are not JSON equal nothing but themselves.
fn same_json(a: &[u8], b: &[u8]) -> bool {
    a == b
        || matches!(
            (
                serde_json::from_slice::<serde_json::Value>(a),
                serde_json::from_slice::<serde_json::Value>(b),
            ),
            (Ok(x), Ok(y)) if x == y
        )
}

async fn live_states(
    client: &tokio_postgres::Client,
    planexpo_event: Option<&str>,
) -> Result<BTreeMap<OrderKey, LiveState>> {
    Ok(client
        .query(
            "SELECT planexpo_event, order_id, revision, state FROM order_state
             WHERE $1::text IS NULL OR planexpo_event = $1",
            &[&planexpo_event],
        )
        .await
        .ctx("read the live state")?
        .into_iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                LiveState {
                    revision: r.get(2),
                    state: r.get(3),
                },
            )
        })
        .collect())
}

fn compare(
    replayed: &[ShadowRow],
    live: &BTreeMap<OrderKey, LiveState>,
    masks: &Masks,
    erased_orders: &mut usize,
) -> Vec<ReplayDifference> {
    let replayed: BTreeMap<&OrderKey, &ShadowRow> = replayed.iter().map(|r| (&r.key, r)).collect();
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&OrderKey> =
        replayed.keys().copied().chain(live.keys()).collect();
    for key in keys {
        let (r, l) = (replayed.get(key).copied(), live.get(key));
        let mut fields = Vec::new();
        match (r, l) {
            (Some(r), Some(l)) => {
                // The live state as the comparison sees it: an erased person's current values
                // erased the same way first.
                let erased_live = r
                    .erased
                    .then(|| serde_json::from_slice::<OrderState>(&l.state).ok())
                    .flatten()
                    .map(|mut s| {
                        if let Some(c) = s.snapshot.as_mut().and_then(|s| s.contact.as_mut()) {
                            erase_contact(c);
                        }
                        *erased_orders += 1;
                        (json_bytes(&s), s)
                    });
                let live_state = erased_live.as_ref().map_or(&l.state, |(bytes, _)| bytes);
                if r.revision != l.revision {
                    fields.push("revision");
                }
                let state_same = same_json(&r.state_bytes, live_state);
                if !state_same {
                    fields.push("state");
                }
                // The desired state is a function of the state and the mask: the same state
                // through the same mask version is the same desired state. Otherwise both are
                // computed (an unreadable live state has none).
                let desired_same = if state_same && masks.same_now(&key.0) {
                    true
                } else {
                    let live = match erased_live {
                        Some((_, s)) => Some(s),
                        None => serde_json::from_slice::<OrderState>(&l.state).ok(),
                    };
                    let live_desired = live
                        .as_ref()
                        .and_then(|s| desired_order(s, masks.current_of(&key.0)));
                    r.desired_bytes == live_desired.as_ref().map(json_bytes)
                };
                if !desired_same {
                    fields.push("desired");
                }
            }
            (Some(_), None) => fields.push("missing_live"),
            (None, Some(_)) => fields.push("missing_replayed"),
            (None, None) => {}
        }
        if !fields.is_empty() {
            out.push(ReplayDifference {
                planexpo_event: key.0.clone(),
                order_id: key.1.clone(),
                fields,
                live_revision: l.map(|l| l.revision),
                replayed_revision: r.map(|r| r.revision),
            });
        }
    }
    out
}
