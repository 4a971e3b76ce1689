//! Personal data in the event log: the booking contact's personal fields are sealed with a
//! per-person key (ChaCha20-Poly1305, ring) before an event is appended, and opened when it is
//! read back. Erasing a person deletes the key: the sealed fields then read as [`ERASED`].
//!
//! The stored contact keeps `company` and `preferred_language` in clear and replaces the other
//! fields by `sealed`: `{"person": <uuid>, "fields": [names of the sealed fields present],
//! "nonce": <base64>, "box": <base64>}`. The associated data is the event id, so a sealed box
//! cannot be moved to another event. Field names are kept in clear so that an erased contact
//! shows exactly which fields it had, never their values.
//!
//! What it must never do: log, or put in an error, a personal value or a key.

use crate::{Ctx, Result, StoreError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use pxsync_core::event::{DecodeError, EventData, EventEnvelope, decode, encode};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What an erased personal field reads as.
pub const ERASED: &str = "[erased]";

/// The contact fields sealed in the event log (the others stay in clear).
pub const SEALED_FIELDS: [&str; 7] = [
    "civility",
    "last_name",
    "first_name",
    "email",
    "job_title",
    "phone_1",
    "phone_2",
];

/// Erases a contact the way the log reads an erased person: every sealed field it has becomes
/// [`ERASED`] (the fields it does not have stay empty).
pub fn erase_contact(c: &mut pxsync_core::order::BookingContact) {
    for field in [
        &mut c.civility,
        &mut c.last_name,
        &mut c.first_name,
        &mut c.job_title,
        &mut c.phone_1,
        &mut c.phone_2,
    ] {
        if field.is_some() {
            *field = Some(ERASED.to_owned());
        }
    }
    c.email = ERASED.to_owned();
}

/// How a person is looked up without storing the e-mail: SHA-256 (hex) of the trimmed,
/// lowercased address.
pub fn email_digest(email: &str) -> String {
    hex::encode(Sha256::digest(
        pxsync_core::order::email_key(email).as_bytes(),
    ))
}

/// One person's key.
#[derive(Clone)]
pub struct PersonKey {
    pub person_id: Uuid,
    key: Vec<u8>,
}

impl PersonKey {
    pub(crate) fn new(person_id: Uuid, key: Vec<u8>) -> PersonKey {
        PersonKey { person_id, key }
    }
}

impl std::fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PersonKey {{ person_id: {}, key: <secret> }}",
            self.person_id
        )
    }
}

fn aead(key: &[u8]) -> Option<LessSafeKey> {
    UnboundKey::new(&CHACHA20_POLY1305, key)
        .ok()
        .map(LessSafeKey::new)
}

fn sealing_failed() -> StoreError {
    StoreError::Corrupt {
        what: "person_keys.key",
        detail: "a person key cannot seal (wrong length or no randomness)".into(),
    }
}

/// The personal fields of a contact, as sealed in its box (absent ones are left out).
#[derive(serde::Serialize)]
struct SealedPlain<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    civility: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a str>,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_1: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_2: Option<&'a str>,
}

/// The `sealed` member of a stored contact.
#[derive(serde::Serialize)]
struct SealedOut {
    person: Uuid,
    fields: Vec<&'static str>,
    nonce: String,
    #[serde(rename = "box")]
    sealed: String,
}

/// The stored bytes of an event (payload format 4): its encoding with the booking contact's
/// sealed fields replaced by their `sealed` box, sealed with `key`, and an empty `email`, so
/// that the bytes still decode as an event ([`open_stored`] puts the fields back).
///
/// Serialised straight from the typed event, without a `Value`: the contact's sealed fields
/// are encoded as `null` and its e-mail as a placeholder that holds the (random) nonce, and the
/// placeholder member is then replaced by the empty e-mail and the box. Nothing else in the
/// encoding can hold the placeholder, since nothing else knows the nonce. An event without a
/// contact is stored as it is encoded.
pub(crate) fn seal_event(
    event: &EventEnvelope,
    key: &PersonKey,
    rng: &SystemRandom,
) -> Result<Vec<u8>> {
    let EventData::Observed(observed) = &event.data else {
        return Ok(encode(event));
    };
    let Some(contact) = observed.snapshot.contact.as_ref() else {
        return Ok(encode(event));
    };
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| sealing_failed())?;
    let nonce_text = B64.encode(nonce);
    let plain = SealedPlain {
        civility: contact.civility.as_deref(),
        last_name: contact.last_name.as_deref(),
        first_name: contact.first_name.as_deref(),
        email: &contact.email,
        job_title: contact.job_title.as_deref(),
        phone_1: contact.phone_1.as_deref(),
        phone_2: contact.phone_2.as_deref(),
    };
    let fields: Vec<&'static str> = SEALED_FIELDS
        .into_iter()
        .zip([
            contact.civility.is_some(),
            contact.last_name.is_some(),
            contact.first_name.is_some(),
            true,
            contact.job_title.is_some(),
            contact.phone_1.is_some(),
            contact.phone_2.is_some(),
        ])
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
    let mut data = serde_json::to_vec(&plain).map_err(|_| sealing_failed())?;
    aead(&key.key)
        .ok_or_else(sealing_failed)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(event.event_id.as_bytes()),
            &mut data,
        )
        .map_err(|_| sealing_failed())?;
    let sealed = serde_json::to_vec(&SealedOut {
        person: key.person_id,
        fields,
        nonce: nonce_text.clone(),
        sealed: B64.encode(data),
    })
    .map_err(|_| sealing_failed())?;

    let placeholder = format!("\u{1}pxsync-sealed:{nonce_text}");
    // The member as `encode` writes it (serde_json escapes the control character).
    let member = format!(
        "\"email\":{}",
        serde_json::to_string(&placeholder).map_err(|_| sealing_failed())?
    );
    let mut view = event.clone();
    if let EventData::Observed(o) = &mut view.data
        && let Some(c) = o.snapshot.contact.as_mut()
    {
        c.civility = None;
        c.last_name = None;
        c.first_name = None;
        c.job_title = None;
        c.phone_1 = None;
        c.phone_2 = None;
        c.email = placeholder;
    }
    let encoded = encode(&view);
    let at = memchr::memmem::find(&encoded, member.as_bytes()).ok_or_else(sealing_failed)?;
    let mut stored = Vec::with_capacity(encoded.len() + sealed.len() + 16);
    stored.extend_from_slice(&encoded[..at]);
    stored.extend_from_slice(b"\"email\":\"\",\"sealed\":");
    stored.extend_from_slice(&sealed);
    stored.extend_from_slice(&encoded[at + member.len()..]);
    Ok(stored)
}

/// Puts the sealed fields of a stored contact back, or [`ERASED`] in each of them when the key
/// is gone (erased) or does not open the box. Returns true when the person reads as erased.
pub(crate) fn open_contact(
    contact: &mut Map<String, Value>,
    key: Option<&[u8]>,
    event_id: Uuid,
) -> bool {
    let Some(Value::Object(sealed)) = contact.remove("sealed") else {
        return false;
    };
    let opened = open_box(
        sealed.get("nonce").and_then(Value::as_str),
        sealed.get("box").and_then(Value::as_str),
        key,
        event_id,
    )
    .and_then(|plain| serde_json::from_slice::<Map<String, Value>>(&plain).ok());
    match opened {
        Some(fields) => {
            contact.extend(fields);
            false
        }
        None => {
            for name in sealed
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                contact.insert(name.to_owned(), Value::from(ERASED));
            }
            // The e-mail is required by the contact type: an erased contact always has one.
            contact
                .entry("email")
                .or_insert_with(|| Value::from(ERASED));
            true
        }
    }
}

/// The plain text of a sealed box, if the key opens it.
fn open_box(
    nonce: Option<&str>,
    sealed: Option<&str>,
    key: Option<&[u8]>,
    event_id: Uuid,
) -> Option<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = B64.decode(nonce?).ok()?.try_into().ok()?;
    let mut data = B64.decode(sealed?).ok()?;
    let plain_len = aead(key?)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(event_id.as_bytes()),
            &mut data,
        )
        .ok()?
        .len();
    data.truncate(plain_len);
    Some(data)
}

/// The sealed box of a stored contact, read from the payload's bytes without the rest.
#[derive(Deserialize)]
struct StoredPayload<'a> {
    #[serde(borrow)]
    data: Option<StoredData<'a>>,
}

#[derive(Deserialize)]
struct StoredData<'a> {
    #[serde(borrow)]
    snapshot: Option<StoredSnapshot<'a>>,
}

#[derive(Deserialize)]
struct StoredSnapshot<'a> {
    #[serde(borrow)]
    contact: Option<StoredContact<'a>>,
}

#[derive(Deserialize)]
struct StoredContact<'a> {
    #[serde(borrow)]
    sealed: Option<SealedBox<'a>>,
}

#[derive(Deserialize)]
struct SealedBox<'a> {
    #[serde(borrow)]
    fields: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    nonce: Cow<'a, str>,
    #[serde(borrow, rename = "box")]
    sealed: Cow<'a, str>,
}

/// The personal fields as sealed.
#[derive(Deserialize)]
struct SealedFields {
    civility: Option<String>,
    last_name: Option<String>,
    first_name: Option<String>,
    email: Option<String>,
    job_title: Option<String>,
    phone_1: Option<String>,
    phone_2: Option<String>,
}

/// Decodes a stored payload of format 4 straight into its event (no `Value`), then puts the
/// contact's sealed fields back, or [`ERASED`] in each of them when the key is gone or does not
/// open the box. The same event and answer as [`open_contact`] on the parsed payload followed
/// by `decode_value`. Returns the event and whether the person reads as erased.
pub(crate) fn open_stored(
    stored: &[u8],
    key: Option<&[u8]>,
    event_id: Uuid,
) -> (std::result::Result<EventEnvelope, DecodeError>, bool) {
    let mut event = decode(stored);
    let Ok(EventEnvelope {
        data: EventData::Observed(observed),
        ..
    }) = &mut event
    else {
        return (event, false);
    };
    let Some(contact) = observed.snapshot.contact.as_mut() else {
        return (event, false);
    };
    let Some(sealed) = serde_json::from_slice::<StoredPayload>(stored)
        .ok()
        .and_then(|p| p.data?.snapshot?.contact?.sealed)
    else {
        return (event, false);
    };
    let opened = open_box(Some(&sealed.nonce), Some(&sealed.sealed), key, event_id)
        .and_then(|plain| serde_json::from_slice::<SealedFields>(&plain).ok());
    let erased = match opened {
        Some(f) => {
            contact.civility = f.civility;
            contact.last_name = f.last_name;
            contact.first_name = f.first_name;
            contact.job_title = f.job_title;
            contact.phone_1 = f.phone_1;
            contact.phone_2 = f.phone_2;
            if let Some(email) = f.email {
                contact.email = email;
            }
            false
        }
        None => {
            for name in &sealed.fields {
                let field = match name.as_ref() {
                    "civility" => &mut contact.civility,
                    "last_name" => &mut contact.last_name,
                    "first_name" => &mut contact.first_name,
                    "job_title" => &mut contact.job_title,
                    "phone_1" => &mut contact.phone_1,
                    "phone_2" => &mut contact.phone_2,
                    _ => continue,
                };
                *field = Some(ERASED.to_owned());
            }
            // The e-mail is required by the contact type: an erased contact always has one.
            contact.email = ERASED.to_owned();
            true
        }
    };
    (event, erased)
}

/// The stored contact object inside an event payload, if the event carries one.
pub(crate) fn contact_of(payload: &mut Value) -> Option<&mut Map<String, Value>> {
    payload
        .get_mut("data")?
        .get_mut("snapshot")?
        .get_mut("contact")?
        .as_object_mut()
}

/// Finds or creates the keys of these persons (by e-mail digest), in one statement. A digest
/// created by a concurrent batch after this statement's snapshot is read by a second one.
pub(crate) async fn person_keys(
    tx: &tokio_postgres::Transaction<'_>,
    digests: &[String],
) -> Result<BTreeMap<String, PersonKey>> {
    let rng = SystemRandom::new();
    let mut found = BTreeMap::new();
    for _attempt in 0..2 {
        let missing: Vec<String> = digests
            .iter()
            .filter(|d| !found.contains_key(*d))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        let mut ids = Vec::with_capacity(missing.len());
        let mut keys = Vec::with_capacity(missing.len());
        for _ in &missing {
            let mut k = vec![0u8; 32];
            rng.fill(&mut k).map_err(|_| sealing_failed())?;
            keys.push(k);
            let mut id = [0u8; 16];
            rng.fill(&mut id).map_err(|_| sealing_failed())?;
            ids.push(uuid::Builder::from_random_bytes(id).into_uuid());
        }
        let rows = tx
            .query(
                "WITH new AS (
                    INSERT INTO person_keys (person_id, email_digest, key)
                    SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])
                    ON CONFLICT (email_digest) WHERE email_digest IS NOT NULL DO NOTHING
                    RETURNING person_id, email_digest, key)
                 SELECT person_id, email_digest, key FROM new
                 UNION ALL
                 SELECT person_id, email_digest, key FROM person_keys_by_digest($2)",
                &[&ids, &missing, &keys],
            )
            .await
            .ctx("find or create the person keys")?;
        for r in rows {
            found.insert(
                r.get::<_, String>(1),
                PersonKey {
                    person_id: r.get(0),
                    key: r.get(2),
                },
            );
        }
    }
    if found.len() < digests.len() {
        return Err(StoreError::Corrupt {
            what: "person_keys",
            detail: "a person key could not be found or created".into(),
        });
    }
    Ok(found)
}

/// What an erasure did (counts only: no personal value).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    /// Person keys deleted (0: pxsync holds no key for that address).
    pub keys_erased: u64,
    /// Events of the log whose contact now reads as erased.
    pub events_erased: i64,
    /// Orders whose current booking contact is still this person on Planexpo (as last folded,
    /// withdrawn and deleted orders included): their current values stay in `order_state` and
    /// `applied_participants` (the emitter needs them) until Planexpo drops the person.
    pub still_current_in: Vec<(String, String)>,
    /// `applied_participants` records removed (only when no order has the person any more).
    pub applied_participants_removed: u64,
    /// `ingest_orders` rows (the ingestor's memory of an order's last revision) whose booking
    /// contact was this person and was removed from that memory.
    pub ingest_memory_scrubbed: u64,
}

/// Just enough of a stored [`pxsync_core::event::Previous`] to find its contact's e-mail.
#[derive(serde::Deserialize)]
struct PreviousContact {
    snapshot: Option<SnapshotContact>,
}

#[derive(serde::Deserialize)]
struct SnapshotContact {
    contact: Option<ContactEmail>,
}

#[derive(serde::Deserialize)]
struct ContactEmail {
    email: String,
}

/// Whether the stored ingestor memory `previous` has the booking contact `email_key`.
fn previous_has_contact(previous: &[u8], email_key: &str) -> bool {
    serde_json::from_slice::<PreviousContact>(previous).is_ok_and(|p| {
        p.snapshot
            .and_then(|s| s.contact)
            .is_some_and(|c| pxsync_core::order::email_key(&c.email) == email_key)
    })
}

/// The stored ingestor memory `previous` without its booking contact, or `None` if it cannot be
/// read (left as it is: the ingestor reports it).
fn previous_without_contact(previous: &[u8]) -> Option<Vec<u8>> {
    let mut p: pxsync_core::event::Previous = serde_json::from_slice(previous).ok()?;
    p.snapshot.as_mut()?.contact = None;
    serde_json::to_vec(&p).ok()
}

/// Removes the booking contact `email_key` from the ingestor's memory (`ingest_orders.previous`).
/// The rows are found by a keyset scan (the memory has no e-mail column), then locked and
/// checked again, so a revision the ingestor records meanwhile is never overwritten. The next
/// revision of such an order then shows a `contact` change, and a deletion seen after it
/// carries no contact over.
async fn scrub_ingest_memory(tx: &tokio_postgres::Transaction<'_>, email_key: &str) -> Result<u64> {
    const PAGE: i64 = 1_000;
    let mut found: Vec<(String, String)> = Vec::new();
    let mut after = (String::new(), String::new());
    loop {
        let rows = tx
            .query(
                "SELECT planexpo_event, order_id, previous FROM ingest_orders
                 WHERE (planexpo_event, order_id) > ($1, $2) ORDER BY 1, 2 LIMIT $3",
                &[&after.0, &after.1, &PAGE],
            )
            .await
            .ctx("read the ingestor's memory")?;
        for r in &rows {
            if previous_has_contact(r.get(2), email_key) {
                found.push((r.get(0), r.get(1)));
            }
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == PAGE => after = (last.get(0), last.get(1)),
            _ => break,
        }
    }
    if found.is_empty() {
        return Ok(0);
    }
    let (events, orders): (Vec<String>, Vec<String>) = found.into_iter().unzip();
    let locked = tx
        .query(
            "SELECT i.planexpo_event, i.order_id, i.previous FROM ingest_orders i
             JOIN unnest($1::text[], $2::text[]) AS k(planexpo_event, order_id)
               USING (planexpo_event, order_id)
             FOR UPDATE OF i",
            &[&events, &orders],
        )
        .await
        .ctx("lock the ingestor's memory")?;
    let mut scrubbed = 0;
    for r in locked {
        let previous: &[u8] = r.get(2);
        if !previous_has_contact(previous, email_key) {
            continue;
        }
        let Some(without) = previous_without_contact(previous) else {
            continue;
        };
        scrubbed += tx
            .execute(
                "UPDATE ingest_orders SET previous = $3 WHERE planexpo_event = $1 AND order_id = $2",
                &[&r.get::<_, &str>(0), &r.get::<_, &str>(1), &without],
            )
            .await
            .ctx("remove the contact from the ingestor's memory")?;
    }
    Ok(scrubbed)
}

impl crate::Store {
    /// Erases a person: deletes their key(s) and e-mail digest, so that every event of the log
    /// sealed with them reads as [`ERASED`]; removes them from the ingestor's memory
    /// (`ingest_orders.previous`); when no order has them as booking contact any more, also
    /// removes their `applied_participants` record. One transaction. inwink is not changed.
    pub async fn erase_person(&self, email: &str) -> Result<Erasure> {
        let digest = email_digest(email);
        let email_key = pxsync_core::order::email_key(email);
        let mut client = self.client().await?;
        let tx = client.transaction().await.ctx("begin the erasure")?;
        let ids: Vec<Uuid> = tx
            .query(
                "UPDATE person_keys SET key = NULL, email_digest = NULL, erased_at = now()
                 WHERE email_digest = $1 RETURNING person_id",
                &[&digest],
            )
            .await
            .ctx("erase the person key")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let events_erased: i64 = tx
            .query_one(
                "SELECT count(*) FROM event_log WHERE person_id = ANY($1)",
                &[&ids],
            )
            .await
            .ctx("count the erased events")?
            .get(0);
        let still_current_in: Vec<(String, String)> = tx
            .query(
                "SELECT planexpo_event, order_id FROM order_state WHERE email_key = $1 ORDER BY 1, 2",
                &[&email_key],
            )
            .await
            .ctx("find the orders of the person")?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let applied_participants_removed = if still_current_in.is_empty() {
            tx.execute(
                "DELETE FROM applied_participants WHERE email_key = $1",
                &[&email_key],
            )
            .await
            .ctx("remove the applied participant")?
        } else {
            0
        };
        let ingest_memory_scrubbed = scrub_ingest_memory(&tx, &email_key).await?;
        tx.commit().await.ctx("commit the erasure")?;
        Ok(Erasure {
            keys_erased: ids.len() as u64,
            events_erased,
            still_current_in,
            applied_participants_removed,
            ingest_memory_scrubbed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pxsync_core::event::{DeriveContext, Previous, decode_value, derive_events};
    use pxsync_core::order::observe;
    use pxsync_core::timestamp::Timestamp;

    /// The golden order's first event, as the projector stores it: sealed with `key`.
    fn stored_event(key: &PersonKey) -> (EventEnvelope, Vec<u8>) {
        let raw: Value =
            serde_json::from_str(include_str!("../../../proto/golden/planexpo/order.json"))
                .unwrap();
        let ctx = DeriveContext {
            inwink_event_id: "evt-1",
            recorded_at: Timestamp::parse("2026-03-02T12:00:00Z").unwrap(),
            traceparent: None,
        };
        let event = derive_events(&Previous::default(), observe(&raw).unwrap(), &ctx)
            .into_iter()
            .next()
            .unwrap();
        let stored = seal_event(&event, key, &SystemRandom::new()).unwrap();
        (event, stored)
    }

    /// The reading of stored bytes through a parsed `Value` (formats 1 to 3).
    fn open_as_value(
        stored: &[u8],
        key: Option<&[u8]>,
        event_id: Uuid,
    ) -> (std::result::Result<EventEnvelope, DecodeError>, bool) {
        let mut payload: Value = serde_json::from_slice(stored).unwrap();
        let erased = open_contact(contact_of(&mut payload).unwrap(), key, event_id);
        (decode_value(payload), erased)
    }

    fn key() -> PersonKey {
        PersonKey {
            person_id: Uuid::from_u128(7),
            key: vec![42; 32],
        }
    }

    #[test]
    fn a_sealed_payload_hides_every_personal_value() {
        let k = key();
        let (event, stored) = stored_event(&k);
        let EventData::Observed(o) = &event.data else {
            panic!("an observation")
        };
        let c = o.snapshot.contact.as_ref().unwrap();
        let text = String::from_utf8(stored).unwrap();
        for value in [Some(&c.email), c.last_name.as_ref(), c.phone_1.as_ref()]
            .into_iter()
            .flatten()
        {
            assert!(
                !text.contains(value.as_str()),
                "a personal value is stored in clear"
            );
        }
    }

    #[test]
    fn the_typed_reading_opens_a_sealed_contact_as_the_value_reading_does() {
        let k = key();
        let (event, stored) = stored_event(&k);
        let typed = open_stored(&stored, Some(&k.key), event.event_id);
        assert_eq!(typed, open_as_value(&stored, Some(&k.key), event.event_id));
        assert_eq!(
            typed,
            (Ok(event.clone()), false),
            "the event as it was published"
        );
        // Format 3 had no placeholder e-mail: it reads through the `Value`, as before.
        let mut v: Value = serde_json::from_slice(&stored).unwrap();
        contact_of(&mut v).unwrap().remove("email");
        let format_3 = serde_json::to_vec(&v).unwrap();
        assert!(
            open_stored(&format_3, Some(&k.key), event.event_id)
                .0
                .is_err()
        );
        assert_eq!(
            open_as_value(&format_3, Some(&k.key), event.event_id),
            (Ok(event), false)
        );
    }

    /// Values that look like the placeholder or like the e-mail member, anywhere in the event,
    /// do not move the splice: the stored bytes open into the event as it was published.
    #[test]
    fn a_hostile_contact_is_sealed_and_opened_intact() {
        let k = key();
        let (mut event, _) = stored_event(&k);
        let EventData::Observed(o) = &mut event.data else {
            panic!("an observation")
        };
        let c = o.snapshot.contact.as_mut().unwrap();
        c.company = Some("\u{1}pxsync-sealed:AAAA\"email\":\"x\"".into());
        c.email = "\"email\":\"\u{1}pxsync-sealed: é@example.com".into();
        c.phone_2 = None;
        let stored = seal_event(&event, &k, &SystemRandom::new()).unwrap();
        let text = String::from_utf8(stored.clone()).unwrap();
        assert!(!text.contains("example.com"), "the e-mail is sealed");
        assert_eq!(
            open_stored(&stored, Some(&k.key), event.event_id),
            (Ok(event.clone()), false)
        );
        assert_eq!(
            open_as_value(&stored, Some(&k.key), event.event_id),
            (Ok(event), false)
        );
    }

    #[test]
    fn the_typed_reading_erases_as_the_value_reading_does() {
        let k = key();
        let (event, stored) = stored_event(&k);
        let wrong = [1u8; 32];
        for key in [None, Some(&wrong[..])] {
            let typed = open_stored(&stored, key, event.event_id);
            assert_eq!(typed, open_as_value(&stored, key, event.event_id));
            let (Ok(read), true) = typed else {
                panic!("the person reads as erased")
            };
            let EventData::Observed(o) = &read.data else {
                panic!("an observation")
            };
            let c = o.snapshot.contact.as_ref().unwrap();
            assert_eq!(c.email, ERASED);
            assert_eq!(c.last_name.as_deref(), Some(ERASED));
        }
        // A box moved to another event does not open either.
        let moved = open_stored(&stored, Some(&k.key), Uuid::from_u128(1));
        assert!(moved.1, "a box opens only for its own event");
    }
}
