//! Reading the event log back: the one place that turns stored rows into events, opening the
//! sealed personal fields with the person's key (see [`crate::personal`]). Replays, audits and
//! the chain verification all read through [`EventCursor`].
//!
//! Architecture invariant: a missing or erased key never stops a reader. The person reads as
//! erased (every sealed field is [`crate::ERASED`]) and the event is folded like any other.
//!
//! The cursor reads in one `REPEATABLE READ READ ONLY` transaction, by keyset pages (of
//! `position`, or of salon, order and position): every page sees the same snapshot, so
//! transactions still in flight when it started cannot leave gaps, and other reads made through [`EventCursor::client`] (masks, the
//! live state) see exactly the same moment.

use crate::personal::{contact_of, open_contact, open_stored};
use crate::{Ctx, Result, Store, chain_hash};
use pxsync_core::event::{DecodeError, EventEnvelope, decode_value, encode};
use serde_json::Value;
use std::borrow::Cow;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// A point in the log: events at or before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Events whose `position` is at most this.
    Position(i64),
    /// Events projected (committed to the log) at or before this instant.
    Time(OffsetDateTime),
}

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub planexpo_event: Option<String>,
    pub order_id: Option<String>,
    pub until: Option<Until>,
}

/// One event read back from the log.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub planexpo_event: String,
    pub order_id: String,
    pub projected_at: OffsetDateTime,
    pub prev_hash: Option<String>,
    pub hash: String,
    /// With [`EventCursor::checking_chains`]: whether `hash` is the chain hash of `prev_hash`
    /// and the stored payload.
    pub hash_matches: Option<bool>,
    /// The booking contact's sealed fields could not be opened: the person was erased.
    pub erased: bool,
    pub event: std::result::Result<EventEnvelope, DecodeError>,
}

const PAGE_COLUMNS: &str =
    "SELECT e.position, e.event_id, e.planexpo_event, e.order_id, e.projected_at,
        e.prev_hash, e.hash, e.payload, e.payload_format, k.key
     FROM event_log e LEFT JOIN person_keys k ON k.person_id = e.person_id";

/// The page query of a filter: only the conditions it has, in an order the indexes serve
/// without sorting. Read order by order, the events come by `event_log_order`
/// (salon, order, position); otherwise by `position`. A generic `($n IS NULL OR ...)` form made
/// Postgres scan every remaining event of the salon and sort them for each page.
///
/// Parameters: `$1` the last position read; then, by [`Keyset`], the last order read (`$2`)
/// and its salon (`$3`); then the filter's values (see [`filter_params`]), the page size last.
struct PageQuery {
    sql: String,
    keyset: Keyset,
}

/// Where a page starts: after the last event read, in the order the pages are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyset {
    /// After its position.
    Position,
    /// After its order and position, in the one salon of the filter.
    Order,
    /// After its salon, order and position.
    SalonAndOrder,
}

impl PageQuery {
    fn of(filter: &EventFilter, by_order: bool) -> PageQuery {
        let keyset = match (
            by_order && filter.order_id.is_none(),
            &filter.planexpo_event,
        ) {
            (false, _) => Keyset::Position,
            (true, Some(_)) => Keyset::Order,
            (true, None) => Keyset::SalonAndOrder,
        };
        let mut n = 1;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        let (mut conds, order) = match keyset {
            Keyset::Position => (vec!["e.position > $1".to_owned()], "e.position"),
            Keyset::Order => (
                vec![format!("(e.order_id, e.position) > ({}, $1)", next())],
                "e.order_id, e.position",
            ),
            Keyset::SalonAndOrder => {
                let order = next();
                (
                    vec![format!(
                        "(e.planexpo_event, e.order_id, e.position) > ({}, {order}, $1)",
                        next()
                    )],
                    "e.planexpo_event, e.order_id, e.position",
                )
            }
        };
        conds.extend(filter_conditions(filter, &mut next));
        let limit = next();
        PageQuery {
            sql: format!(
                "{PAGE_COLUMNS} WHERE {} ORDER BY {order} LIMIT {limit}",
                conds.join(" AND ")
            ),
            keyset,
        }
    }
}

/// The conditions of a filter, numbered by `next`, in the order of [`filter_params`].
fn filter_conditions(filter: &EventFilter, mut next: impl FnMut() -> String) -> Vec<String> {
    let mut conds = Vec::new();
    if filter.planexpo_event.is_some() {
        conds.push(format!("e.planexpo_event = {}", next()));
    }
    if filter.order_id.is_some() {
        conds.push(format!("e.order_id = {}", next()));
    }
    match filter.until {
        Some(Until::Position(_)) => conds.push(format!("e.position <= {}", next())),
        Some(Until::Time(_)) => conds.push(format!("e.projected_at <= {}", next())),
        None => {}
    }
    conds
}

/// The values of a filter's conditions (see [`filter_conditions`]).
fn filter_params<'a>(filter: &'a EventFilter, params: &mut Vec<&'a (dyn ToSql + Sync)>) {
    if let Some(ev) = &filter.planexpo_event {
        params.push(ev);
    }
    if let Some(order) = &filter.order_id {
        params.push(order);
    }
    match &filter.until {
        Some(Until::Position(p)) => params.push(p),
        Some(Until::Time(t)) => params.push(t),
        None => {}
    }
}

/// The page query walks its index in order and looks each event's key up: no bitmap scan of the
/// whole salon, no hash join, no sort. Just after a large projection the statistics are stale
/// (Postgres estimated 1,000 rows for a salon of 100,000) and the planner chose a bitmap scan
/// of every remaining event, a hash join and an on-disk sort for each page, six times slower.
/// Set for the cursor's reads only: [`PLAN_AS_USUAL`] restores the defaults once the last page
/// is read, for the other reads of the snapshot.
const FOLLOW_THE_INDEX: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
     SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_sort = off";
const PLAN_AS_USUAL: &str = "RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_hashjoin;
     RESET enable_mergejoin; RESET enable_sort";

/// A snapshot of the event log, read page by page. The events of one order always come in
/// position order; read [`EventCursor::order_by_order`], each order's events come together,
/// orders one after another (by salon and order id); otherwise every event comes in position
/// order.
pub struct EventCursor {
    client: deadpool_postgres::Object,
    filter: EventFilter,
    query: PageQuery,
    statement: Option<tokio_postgres::Statement>,
    page: i64,
    after: i64,
    after_order: String,
    after_salon: String,
    done: bool,
    check_chains: bool,
}

impl EventCursor {
    /// Opens a read-only snapshot of the log (it holds one pooled connection until
    /// [`EventCursor::close`]).
    pub async fn open(store: &Store, filter: EventFilter, page: usize) -> Result<EventCursor> {
        let client = store.client().await?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .ctx("open the event log snapshot")?;
        Ok(EventCursor {
            client,
            query: PageQuery::of(&filter, false),
            statement: None,
            filter,
            page: page.max(1) as i64,
            after: 0,
            after_order: String::new(),
            after_salon: String::new(),
            done: false,
            check_chains: false,
        })
    }

    /// Reads order by order: all the events of one order together, in position order, orders
    /// one after another (by salon and order id). What a fold needs, and what the index serves
    /// best.
    pub fn order_by_order(mut self) -> EventCursor {
        self.query = PageQuery::of(&self.filter, true);
        self
    }

    /// Also checks each event's hash against its stored payload.
    pub fn checking_chains(mut self) -> EventCursor {
        self.check_chains = true;
        self
    }

    /// How many events the cursor reads in all.
    pub async fn count(&self) -> Result<u64> {
        let mut n = 0;
        let conds = filter_conditions(&self.filter, || {
            n += 1;
            format!("${n}")
        });
        let sql = if conds.is_empty() {
            "SELECT count(*) FROM event_log e".to_owned()
        } else {
            format!(
                "SELECT count(*) FROM event_log e WHERE {}",
                conds.join(" AND ")
            )
        };
        let mut params = Vec::new();
        filter_params(&self.filter, &mut params);
        let count: i64 = self
            .client
            .query_one(&sql, &params)
            .await
            .ctx("count the events to read")?
            .get(0);
        Ok(count.max(0) as u64)
    }

    /// The snapshot's connection, for reads that must see the same moment as the events.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// The next page of events, or `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<LoggedEvent>>> {
        Ok(self.next_rows().await?.map(RawPage::open))
    }

    /// The next page as Postgres sent it, or `None` at the end: [`RawPage::open`] turns it into
    /// events (CPU work a caller may run elsewhere while the next page is read).
    pub async fn next_rows(&mut self) -> Result<Option<RawPage>> {
        if self.done {
            return Ok(None);
        }
        let statement = match &self.statement {
            Some(s) => s.clone(),
            None => {
                self.client
                    .batch_execute(FOLLOW_THE_INDEX)
                    .await
                    .ctx("set the event log read's plan")?;
                let s = self
                    .client
                    .prepare(&self.query.sql)
                    .await
                    .ctx("prepare the event log read")?;
                self.statement.insert(s).clone()
            }
        };
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.after];
        match self.query.keyset {
            Keyset::Position => {}
            Keyset::Order => params.push(&self.after_order),
            Keyset::SalonAndOrder => {
                params.push(&self.after_order);
                params.push(&self.after_salon);
            }
        }
        filter_params(&self.filter, &mut params);
        params.push(&self.page);
        let rows = self
            .client
            .query(&statement, &params)
            .await
            .ctx("read the event log")?;
        if (rows.len() as i64) < self.page {
            self.done = true;
            self.client
                .batch_execute(PLAN_AS_USUAL)
                .await
                .ctx("reset the event log read's plan")?;
        }
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = last.get(0);
        if self.query.keyset != Keyset::Position {
            self.after_order = last.get(3);
            self.after_salon = last.get(2);
        }
        Ok(Some(RawPage {
            rows,
            check_chains: self.check_chains,
        }))
    }

    /// Ends the snapshot.
    pub async fn close(self) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .ctx("close the event log snapshot")
    }
}

/// A page of the log as Postgres sent it.
pub struct RawPage {
    rows: Vec<tokio_postgres::Row>,
    check_chains: bool,
}

impl RawPage {
    /// The page's events, their personal fields opened.
    pub fn open(self) -> Vec<LoggedEvent> {
        self.rows
            .into_iter()
            .map(|r| open_row(r, self.check_chains))
            .collect()
    }
}

/// The bytes an event's chain hash covers: the stored bytes themselves (formats 3 and 4; 4 keeps
/// an empty `email` beside the sealed box, so the stored bytes decode as an event), the stored
/// payload's canonical JSON (format 2: logged as jsonb before V12, whose text form is not the
/// bytes that were hashed), or the re-encoded envelope of an event logged in clear before V7
/// (format 1).
fn chain_input<'a>(stored: &'a [u8], payload: &Value, format: i16) -> Cow<'a, [u8]> {
    match format {
        3.. => Cow::Borrowed(stored),
        2 => Cow::Owned(serde_json::to_vec(payload).unwrap_or_default()),
        _ => Cow::Owned(
            decode_value(payload.clone())
                .map(|e| encode(&e))
                .unwrap_or_default(),
        ),
    }
}

fn open_row(r: tokio_postgres::Row, check_chain: bool) -> LoggedEvent {
    let prev_hash: Option<String> = r.get(5);
    let hash: String = r.get(6);
    let stored: &[u8] = r.get(7);
    let format: i16 = r.get(8);
    let key: Option<&[u8]> = r.get(9);
    let event_id: Uuid = r.get(1);
    let (event, erased, hash_matches) = if format >= 4 {
        // Decodable as it is stored: no `Value` in between.
        let (event, erased) = open_stored(stored, key, event_id);
        let hash_matches = check_chain.then(|| chain_hash(prev_hash.as_deref(), stored) == hash);
        (event, erased, hash_matches)
    } else {
        // Bytes that are not JSON read as `null`, which decodes as an undecodable event (and
        // fails its chain check): a reader reports them, it never stops on them.
        let mut payload: Value = serde_json::from_slice(stored).unwrap_or(Value::Null);
        let hash_matches = check_chain.then(|| {
            chain_hash(prev_hash.as_deref(), &chain_input(stored, &payload, format)) == hash
        });
        let erased =
            contact_of(&mut payload).is_some_and(|contact| open_contact(contact, key, event_id));
        (decode_value(payload), erased, hash_matches)
    };
    LoggedEvent {
        position: r.get(0),
        event_id,
        planexpo_event: r.get(2),
        order_id: r.get(3),
        projected_at: r.get(4),
        prev_hash,
        hash,
        hash_matches,
        erased,
        event,
    }
}

impl Store {
    /// Every event matching `filter`, read back (opened): one salon's order by order (see
    /// [`EventCursor::order_by_order`]), otherwise in position order. For one order or a small
    /// salon; replays page through an [`EventCursor`] instead.
    pub async fn logged_events(&self, filter: EventFilter) -> Result<Vec<LoggedEvent>> {
        let one_salon = filter.planexpo_event.is_some();
        let mut cursor = EventCursor::open(self, filter, 10_000).await?;
        if one_salon {
            cursor = cursor.order_by_order();
        }
        let mut all = Vec::new();
        while let Some(page) = cursor.next_page().await? {
            all.extend(page);
        }
        cursor.close().await?;
        Ok(all)
    }
}
