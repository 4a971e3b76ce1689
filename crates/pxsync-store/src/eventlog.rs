//! Reading the event log back: the one place that turns stored rows into events, opening the
//! sealed personal fields with the person's key (see [`crate::personal`]). Replays, audits and
//! the chain verification all read through [`EventCursor`].
//!
//! Architecture invariant: a missing or erased key never stops a reader. The person reads as
//! erased (every sealed field is [`crate::ERASED`]) and the event is folded like any other.
//!
//! The cursor reads in one `REPEATABLE READ READ ONLY` transaction, by keyset pages of
//! `position`: every page sees the same snapshot, so transactions still in flight when it
//! started cannot leave gaps, and other reads made through [`EventCursor::client`] (masks, the
//! live state) see exactly the same moment.

use crate::personal::{contact_of, open_contact};
use crate::{Ctx, Result, Store, chain_hash};
use pxsync_core::event::{DecodeError, EventEnvelope, decode_value, encode};
use serde_json::Value;
use std::borrow::Cow;
use time::OffsetDateTime;
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

const PAGE_SQL: &str =
    "SELECT e.position, e.event_id, e.planexpo_event, e.order_id, e.projected_at,
        e.prev_hash, e.hash, e.payload, e.payload_format, k.key
     FROM event_log e LEFT JOIN person_keys k ON k.person_id = e.person_id
     WHERE e.position > $1
       AND ($2::text IS NULL OR e.planexpo_event = $2)
       AND ($3::text IS NULL OR e.order_id = $3)
       AND ($4::bigint IS NULL OR e.position <= $4)
       AND ($5::timestamptz IS NULL OR e.projected_at <= $5)
     ORDER BY e.position LIMIT $6";

/// A snapshot of the event log, read page by page in position order.
pub struct EventCursor {
    client: deadpool_postgres::Object,
    filter: EventFilter,
    page: i64,
    after: i64,
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
            filter,
            page: page.max(1) as i64,
            after: 0,
            done: false,
            check_chains: false,
        })
    }

    /// Also checks each event's hash against its stored payload.
    pub fn checking_chains(mut self) -> EventCursor {
        self.check_chains = true;
        self
    }

    /// The snapshot's connection, for reads that must see the same moment as the events.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// The next page of events, or `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<LoggedEvent>>> {
        if self.done {
            return Ok(None);
        }
        let (position, time) = match self.filter.until {
            Some(Until::Position(p)) => (Some(p), None),
            Some(Until::Time(t)) => (None, Some(t)),
            None => (None, None),
        };
        let rows = self
            .client
            .query(
                PAGE_SQL,
                &[
                    &self.after,
                    &self.filter.planexpo_event,
                    &self.filter.order_id,
                    &position,
                    &time,
                    &self.page,
                ],
            )
            .await
            .ctx("read the event log")?;
        if (rows.len() as i64) < self.page {
            self.done = true;
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let events: Vec<LoggedEvent> = rows
            .into_iter()
            .map(|r| open_row(r, self.check_chains))
            .collect();
        self.after = events.last().map_or(self.after, |e| e.position);
        Ok(Some(events))
    }

    /// Ends the snapshot.
    pub async fn close(self) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .ctx("close the event log snapshot")
    }
}

/// The bytes an event's chain hash covers: the stored bytes themselves (format 3), the stored
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
    let key: Option<Vec<u8>> = r.get(9);
    let event_id: Uuid = r.get(1);
    // Bytes that are not JSON read as `null`, which decodes as an undecodable event (and fails
    // its chain check): a reader reports them, it never stops on them.
    let mut payload: Value = serde_json::from_slice(stored).unwrap_or(Value::Null);
    let hash_matches = check_chain
        .then(|| chain_hash(prev_hash.as_deref(), &chain_input(stored, &payload, format)) == hash);
    let erased = contact_of(&mut payload)
        .is_some_and(|contact| open_contact(contact, key.as_deref(), event_id));
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
        event: decode_value(payload),
    }
}

impl Store {
    /// Every event matching `filter`, read back (opened) in position order. For one order or a
    /// small salon; replays page through an [`EventCursor`] instead.
    pub async fn logged_events(&self, filter: EventFilter) -> Result<Vec<LoggedEvent>> {
        let mut cursor = EventCursor::open(self, filter, 10_000).await?;
        let mut all = Vec::new();
        while let Some(page) = cursor.next_page().await? {
            all.extend(page);
        }
        cursor.close().await?;
        Ok(all)
    }
}
