//! The event envelope, the event kinds and the derivation (previous observation, new observation)
//! → events.
//!
//! Architecture invariant: one observed revision of an order yields at most one `order.observed`
//! event (the whole snapshot plus what changed) and at most one `order.rejected` event (the units
//! that failed validation). Event ids are UUIDv5 of (Planexpo event, order id, revision, kind), so
//! reading the same revision twice yields the same ids and JetStream's `Nats-Msg-Id` dedupe and
//! the event log's primary key make a second publication harmless.
//!
//! Versioning: every kind carries `schema_version`. Old versions must always decode (golden
//! samples under `proto/events/` are tested). A payload of a newer version than this build knows
//! is reported as [`DecodeError::NewerSchema`] so a consumer can wait for its upgrade instead of
//! dead-lettering it.

use crate::order::{Observation, OrderSnapshot, OrderStatus, Problem};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema version this build writes, and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The UUIDv5 namespace of pxsync event ids.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_4c2a_9b3e_4f70_8a15_2c7d_9e0b_3a41);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// One observed revision of an order, with its whole snapshot.
    #[serde(rename = "order.observed")]
    OrderObserved,
    /// Units of one revision that failed validation.
    #[serde(rename = "order.rejected")]
    OrderRejected,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderObserved => "order.observed",
            EventKind::OrderRejected => "order.rejected",
        }
    }
}

/// What changed since the previously observed revision; audits read these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The first revision pxsync observed of this order.
    FirstSeen,
    /// The status became `validated`.
    Validated,
    /// The status left `validated` (cancelled, refused, deleted, reopened).
    Withdrawn,
    /// Any other status change.
    Status,
    /// Partner fields (company, address, website, stand, public id).
    Details,
    /// The parent (co-exhibitor) relation.
    Parent,
    /// The booking contact's fields.
    Contact,
    /// The booking contact's e-mail (another participant).
    ContactEmail,
    /// The order lines.
    Lines,
    /// A deleted order came back.
    Restored,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderObserved {
    pub snapshot: OrderSnapshot,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRejected {
    /// True when the order as a whole could not be used for this revision.
    pub whole_order: bool,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // moved once per event, never stored in bulk
pub enum EventData {
    Observed(OrderObserved),
    Rejected(OrderRejected),
}

/// The envelope every event travels in, on NATS and in `event_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    pub event_id: Uuid,
    pub schema_version: u32,
    pub planexpo_event: String,
    pub inwink_event_id: String,
    pub order_id: String,
    pub revision: u64,
    pub updated_at: Timestamp,
    pub recorded_at: Timestamp,
    /// W3C trace context of the observation, when there is one.
    pub traceparent: Option<String>,
    pub data: EventData,
}

impl EventEnvelope {
    pub fn kind(&self) -> EventKind {
        match self.data {
            EventData::Observed(_) => EventKind::OrderObserved,
            EventData::Rejected(_) => EventKind::OrderRejected,
        }
    }
}

/// The JSON form (see `proto/events/envelope.schema.json`), its data still unparsed: a
/// `Value`, or the raw JSON text borrowed from the bytes.
#[derive(Serialize, Deserialize)]
struct WireEnvelope<D = serde_json::Value> {
    event_id: Uuid,
    kind: String,
    schema_version: u32,
    planexpo_event: String,
    inwink_event_id: String,
    order_id: String,
    revision: u64,
    updated_at: Timestamp,
    recorded_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    data: D,
}

/// An envelope's data not parsed yet.
trait WireData: Sized {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error>;
}

impl WireData for serde_json::Value {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self)
    }
}

impl WireData for &serde_json::value::RawValue {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }
}

/// Why bytes are not an event this build can fold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Written by a newer pxsync: wait for the upgrade, do not dead-letter.
    #[error(
        "event schema version {found} is newer than {SCHEMA_VERSION}, the newest this build reads"
    )]
    NewerSchema { found: u32, kind: String },
    /// Not an event at all, or a broken one: a dead letter.
    #[error("undecodable event: {0}")]
    Undecodable(String),
}

/// The JSON form borrowed from an envelope, for [`encode`]: the same fields as
/// [`WireEnvelope`], serialised straight from the envelope (no intermediate `Value`).
#[derive(Serialize)]
struct WireEnvelopeRef<'a> {
    event_id: Uuid,
    kind: &'a str,
    schema_version: u32,
    planexpo_event: &'a str,
    inwink_event_id: &'a str,
    order_id: &'a str,
    revision: u64,
    updated_at: Timestamp,
    recorded_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
    data: WireDataRef<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireDataRef<'a> {
    Observed(&'a OrderObserved),
    Rejected(&'a OrderRejected),
}

/// Serialises an envelope to its JSON bytes.
pub fn encode(event: &EventEnvelope) -> Vec<u8> {
    let wire = WireEnvelopeRef {
        event_id: event.event_id,
        kind: event.kind().as_str(),
        schema_version: event.schema_version,
        planexpo_event: &event.planexpo_event,
        inwink_event_id: &event.inwink_event_id,
        order_id: &event.order_id,
        revision: event.revision,
        updated_at: event.updated_at,
        recorded_at: event.recorded_at,
        traceparent: event.traceparent.as_deref(),
        data: match &event.data {
            EventData::Observed(o) => WireDataRef::Observed(o),
            EventData::Rejected(r) => WireDataRef::Rejected(r),
        },
    };
    // Sized for a typical event at once (about 1.4 KB), not grown from empty.
    let mut out = Vec::with_capacity(2048);
    match serde_json::to_writer(&mut out, &wire) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// Decodes an envelope. Serde's messages are not passed on verbatim for the data part, since
/// they can quote values (personal data); the kind and version are.
pub fn decode(bytes: &[u8]) -> Result<EventEnvelope, DecodeError> {
    // The envelope is parsed once, its data kept as borrowed raw text, then the data once,
    // straight into its type (no intermediate `Value`). Only an envelope that does not parse is
    // read again for its header, to tell a newer schema from a broken message.
    let wire: WireEnvelope<&serde_json::value::RawValue> = match serde_json::from_slice(bytes) {
        Ok(wire) => wire,
        Err(e) => {
            #[derive(Deserialize)]
            struct Header {
                kind: String,
                schema_version: u32,
            }
            let header: Header = serde_json::from_slice(bytes).map_err(|e| {
                DecodeError::Undecodable(format!("no envelope header ({})", e.classify_name()))
            })?;
            check_version(header.schema_version, &header.kind)?;
            return Err(DecodeError::Undecodable(format!(
                "bad envelope of kind {} ({})",
                header.kind,
                e.classify_name()
            )));
        }
    };
    check_version(wire.schema_version, &wire.kind)?;
    from_wire(wire)
}

/// A schema version this build can read: not newer than [`SCHEMA_VERSION`], and not 0.
fn check_version(schema_version: u32, kind: &str) -> Result<(), DecodeError> {
    if schema_version > SCHEMA_VERSION {
        return Err(DecodeError::NewerSchema {
            found: schema_version,
            kind: kind.to_owned(),
        });
    }
    if schema_version == 0 {
        return Err(DecodeError::Undecodable(
            "schema_version 0 does not exist".into(),
        ));
    }
    Ok(())
}

/// Decodes an envelope already parsed as JSON (the event log hands back JSON values), with the
/// same checks and messages as [`decode`].
pub fn decode_value(value: serde_json::Value) -> Result<EventEnvelope, DecodeError> {
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .map(str::to_owned);
    let version = value.get("schema_version").and_then(|v| v.as_u64());
    let (Some(kind), Some(version)) = (kind, version) else {
        return Err(DecodeError::Undecodable(
            "no envelope header (wrong fields or types)".into(),
        ));
    };
    check_version(u32::try_from(version).unwrap_or(u32::MAX), &kind)?;
    let wire: WireEnvelope = serde_json::from_value(value).map_err(|e| {
        DecodeError::Undecodable(format!(
            "bad envelope of kind {kind} ({})",
            e.classify_name()
        ))
    })?;
    from_wire(wire)
}

/// The envelope from its wire form, its data parsed into the type its kind names.
fn from_wire<D: WireData>(wire: WireEnvelope<D>) -> Result<EventEnvelope, DecodeError> {
    let bad_data = |e: serde_json::Error| {
        DecodeError::Undecodable(format!(
            "bad data of kind {} v{} ({})",
            wire.kind,
            wire.schema_version,
            e.classify_name()
        ))
    };
    let data = match wire.kind.as_str() {
        "order.observed" => EventData::Observed(wire.data.parse().map_err(bad_data)?),
        "order.rejected" => EventData::Rejected(wire.data.parse().map_err(bad_data)?),
        other => return Err(DecodeError::Undecodable(format!("unknown kind {other:?}"))),
    };
    Ok(EventEnvelope {
        event_id: wire.event_id,
        schema_version: wire.schema_version,
        planexpo_event: wire.planexpo_event,
        inwink_event_id: wire.inwink_event_id,
        order_id: wire.order_id,
        revision: wire.revision,
        updated_at: wire.updated_at,
        recorded_at: wire.recorded_at,
        traceparent: wire.traceparent,
        data,
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "i/o",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "wrong fields or types",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// The deterministic id of the event of `kind` for one revision of one order.
pub fn event_id(planexpo_event: &str, order_id: &str, revision: u64, kind: EventKind) -> Uuid {
    let name = format!(
        "{planexpo_event}\n{order_id}\n{revision}\n{}",
        kind.as_str()
    );
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes())
}

/// What the derivation needs besides the observations; the shell supplies the clock reading.
#[derive(Debug, Clone, Copy)]
pub struct DeriveContext<'a> {
    pub inwink_event_id: &'a str,
    pub recorded_at: Timestamp,
    pub traceparent: Option<&'a str>,
}

/// What the ingestor remembers of an order between two observations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// The highest revision already turned into events (including whole-order rejections).
    pub revision: Option<u64>,
    /// The last usable snapshot.
    pub snapshot: Option<OrderSnapshot>,
}

impl Previous {
    /// The memory after publishing `events`.
    pub fn after(&self, events: &[EventEnvelope]) -> Previous {
        let snapshot = events
            .iter()
            .rev()
            .find_map(|e| match &e.data {
                EventData::Observed(o) => Some(&o.snapshot),
                EventData::Rejected(_) => None,
            })
            .or(self.snapshot.as_ref())
            .cloned();
        Previous {
            revision: self.revision_after(events),
            snapshot,
        }
    }

    /// [`Previous::after`], taking the newest snapshot out of `events` instead of copying it
    /// (for the ingestor, once the events are published).
    pub fn after_owned(&self, events: Vec<EventEnvelope>) -> Previous {
        let revision = self.revision_after(&events);
        let snapshot = events
            .into_iter()
            .rev()
            .find_map(|e| match e.data {
                EventData::Observed(o) => Some(o.snapshot),
                EventData::Rejected(_) => None,
            })
            .or_else(|| self.snapshot.clone());
        Previous { revision, snapshot }
    }

    fn revision_after(&self, events: &[EventEnvelope]) -> Option<u64> {
        events
            .iter()
            .map(|e| e.revision)
            .fold(self.revision, |r, e| Some(r.map_or(e, |r| r.max(e))))
    }
}

/// Turns one observation into its events. An observation of a revision already seen yields
/// nothing (dedupe on (order id, revision)).
pub fn derive_events(
    prev: &Previous,
    observation: Observation,
    ctx: &DeriveContext<'_>,
) -> Vec<EventEnvelope> {
    let (order_id, event, revision, updated_at) = match &observation {
        Observation::Order { snapshot, .. } => (
            snapshot.id.clone(),
            snapshot.event.clone(),
            snapshot.revision,
            snapshot.updated_at,
        ),
        Observation::Rejected {
            id,
            event,
            revision,
            updated_at,
            ..
        } => (id.clone(), event.clone(), *revision, *updated_at),
    };
    if prev.revision.is_some_and(|seen| seen >= revision) {
        return Vec::new();
    }
    let envelope = |kind: EventKind, data: EventData| EventEnvelope {
        event_id: event_id(&event, &order_id, revision, kind),
        schema_version: SCHEMA_VERSION,
        planexpo_event: event.clone(),
        inwink_event_id: ctx.inwink_event_id.to_owned(),
        order_id: order_id.clone(),
        revision,
        updated_at,
        recorded_at: ctx.recorded_at,
        traceparent: ctx.traceparent.map(str::to_owned),
        data,
    };
    match observation {
        Observation::Rejected { problems, .. } => {
            vec![envelope(
                EventKind::OrderRejected,
                EventData::Rejected(OrderRejected {
                    whole_order: true,
                    problems,
                }),
            )]
        }
        Observation::Order {
            mut snapshot,
            problems,
        } => {
            if snapshot.status == OrderStatus::Deleted {
                carry_over(&mut snapshot, prev.snapshot.as_ref());
            }
            let changes = changes(prev.snapshot.as_ref(), &snapshot);
            let mut events = vec![envelope(
                EventKind::OrderObserved,
                EventData::Observed(OrderObserved { snapshot, changes }),
            )];
            if !problems.is_empty() {
                events.push(envelope(
                    EventKind::OrderRejected,
                    EventData::Rejected(OrderRejected {
                        whole_order: false,
                        problems,
                    }),
                ));
            }
            events
        }
    }
}

/// A tombstone has no fields: it keeps the previous snapshot's units so that each event is
/// self-contained (the fold then only compares revisions, whatever the arrival order).
fn carry_over(tombstone: &mut OrderSnapshot, prev: Option<&OrderSnapshot>) {
    if let Some(p) = prev {
        tombstone.public_id = p.public_id.clone();
        tombstone.parent_order_id = p.parent_order_id.clone();
        tombstone.partner = p.partner.clone();
        tombstone.contact = p.contact.clone();
        tombstone.lines = p.lines.clone();
        tombstone.held_products = p.held_products.clone();
    }
}

/// The change kinds from `prev` to `next`.
pub fn changes(prev: Option<&OrderSnapshot>, next: &OrderSnapshot) -> Vec<Change> {
    let Some(prev) = prev else {
        let mut c = vec![Change::FirstSeen];
        if next.status == OrderStatus::Validated {
            c.push(Change::Validated);
        }
        return c;
    };
    let mut c = Vec::new();
    let was = prev.status == OrderStatus::Validated;
    let is = next.status == OrderStatus::Validated;
    if prev.status != next.status {
        c.push(match (was, is) {
            (false, true) => Change::Validated,
            (true, false) => Change::Withdrawn,
            _ if prev.status == OrderStatus::Deleted => Change::Restored,
            _ => Change::Status,
        });
        if prev.status == OrderStatus::Deleted && is {
            c.push(Change::Restored);
        }
    }
    if prev.partner != next.partner || prev.public_id != next.public_id {
        c.push(Change::Details);
    }
    if prev.parent_order_id != next.parent_order_id {
        c.push(Change::Parent);
    }
    match (&prev.contact, &next.contact) {
        (Some(a), Some(b)) if a.email_key() != b.email_key() => c.push(Change::ContactEmail),
        (a, b) if a != b => c.push(Change::Contact),
        _ => {}
    }
    if prev.lines != next.lines || prev.held_products != next.held_products {
        c.push(Change::Lines);
    }
    c
}

#[cfg(test)]
mod tests;
