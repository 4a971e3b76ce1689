//! # pxsync-inwink: the inwink API client
//!
//! The one place where pxsync talks to inwink (contracts.md B): an OAuth2 client-credentials
//! token, partners (`exhibitor`), participants (`registered`), team links (`exhibitor/account`)
//! and partner product quantities. It converts between inwink's JSON (the private `wire` module) and the
//! domain types of `pxsync-core` and of this crate, and classifies every failure into an
//! [`InwinkError`] the emitter can act on (transient or not, outcome unknown or not,
//! `Retry-After`, inwink's code).
//!
//! Two types, by construction: [`InwinkReader`] can only read (token, `GET`s and queries) and
//! is all a dry run gets; [`InwinkClient`] adds the writes.
//!
//! API boundary: every path, field name and status string of inwink lives in `src/wire.rs`, so
//! the real contract, once obtained, is a one-file change. Write bodies carry every
//! synchronised field (an explicit `null` clears a stale value), never `id`, never `categories`.
//!
//! What this crate must never do:
//! - **log or put into an error any personal data**: no e-mail, name, phone, no participant
//!   id, no request or response body. Spans carry the method, the route *template* and the
//!   status; errors name the operation and the route template.
//! - **retry a 400 as is**, or retry API calls at all: the emitter owns per-order backoff. The
//!   only retries here are the token endpoint's (5xx, timeouts, garbage, with backoff) and one
//!   call again after a 401 with a fresh token.
//! - **resolve URLs with `Url::join`**, which drops a base URL's path prefix: paths are appended
//!   to the base (trailing slashes trimmed), with every id percent-encoded as a path segment.
//! - **use another crypto provider than ring** (installed process-wide on first use).

mod client;
mod error;
mod token;
mod wire;

pub use client::{InwinkClient, InwinkReader};
pub use error::{Call, InwinkError};
pub use wire::{WriteDescription, code, describe_write};

use pxsync_core::desired::{DesiredAddress, DesiredParticipant, DesiredPartner};
use pxsync_core::plan::PartnerWrite;
use std::fmt;
use std::time::Duration;

/// A budget of API calls that several clients, maybe in several processes, draw on: the inwink
/// event's rate limit. A client given one ([`InwinkClient::with_budget`]) waits for it before
/// each API call; token requests do not count (inwink does not rate-limit them).
///
/// The implementation lives with whoever can share it (the emitter keeps it in Postgres): this
/// crate only waits.
pub trait CallBudget: Send + Sync + 'static {
    /// Resolves when one more call may be sent.
    fn take(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// The per-request timeout used when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach one inwink event.
#[derive(Debug, Clone)]
pub struct InwinkConfig {
    /// Scheme and host, maybe a path prefix (`https://api.inwink.com`); paths are appended.
    pub base_url: String,
    /// The OAuth2 token endpoint, used as given.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
    /// The inwink event id (a GUID): the first segment of every path.
    pub event_id: String,
    /// Per request (token requests included).
    pub timeout: Duration,
}

impl InwinkConfig {
    /// A configuration with no scope and the [`DEFAULT_TIMEOUT`].
    pub fn new(
        base_url: impl Into<String>,
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
        event_id: impl Into<String>,
    ) -> Self {
        InwinkConfig {
            base_url: base_url.into(),
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret,
            scope: None,
            event_id: event_id.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A secret (the OAuth2 client secret): `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many records match in all (not only on this page).
    pub total_count: u64,
}

/// A partner as inwink holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: String,
    pub name: Option<String>,
    /// `Draft`, `Preview` or `Published`.
    pub status: Option<String>,
    pub affiliated_to_id: Option<String>,
    /// The stand number.
    pub emplacement: Option<String>,
    pub space: Option<String>,
    pub aisle: Option<String>,
    pub website: Option<String>,
    pub address: Option<DesiredAddress>,
    pub planexpo_order_id: Option<String>,
    pub planexpo_public_order_id: Option<String>,
}

impl Partner {
    /// The synchronised fields as a write (what pxsync would have sent to get this partner);
    /// `None` when `name` or `planexpo_order_id` is missing. Published means status `Published`.
    pub fn as_write(&self) -> Option<PartnerWrite> {
        Some(PartnerWrite {
            fields: DesiredPartner {
                name: self.name.clone()?,
                emplacement: self.emplacement.clone(),
                space: self.space.clone(),
                aisle: self.aisle.clone(),
                website: self.website.clone(),
                address: self.address.clone(),
                planexpo_order_id: self.planexpo_order_id.clone()?,
                planexpo_public_order_id: self.planexpo_public_order_id.clone(),
            },
            published: wire::is_published(self.status.as_deref()),
            affiliated_to_id: self.affiliated_to_id.clone(),
        })
    }

    /// Whether the partner is published.
    pub fn is_published(&self) -> bool {
        wire::is_published(self.status.as_deref())
    }
}

/// A participant (inwink person) as inwink holds it. Personal data: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Participant {
    pub id: String,
    pub email: String,
    pub civility: Option<String>,
    pub lastname: Option<String>,
    pub firstname: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub phone1: Option<String>,
    pub phone2: Option<String>,
    pub language: Option<String>,
    /// Managed by inwink (a linked person gets `Exhibitor`); never sent.
    pub categories: Vec<String>,
}

impl fmt::Debug for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Participant")
            .field("personal_data", &"<redacted>")
            .field("categories", &self.categories)
            .finish()
    }
}

impl Participant {
    /// The synchronised values (the identity is the e-mail trimmed and lowercased).
    pub fn as_desired(&self) -> DesiredParticipant {
        DesiredParticipant {
            email_key: pxsync_core::order::email_key(&self.email),
            email: self.email.clone(),
            civility: self.civility.clone(),
            lastname: self.lastname.clone(),
            firstname: self.firstname.clone(),
            company: self.company.clone(),
            job_title: self.job_title.clone(),
            phone1: self.phone1.clone(),
            phone2: self.phone2.clone(),
            language: self.language.clone(),
        }
    }
}

/// A person ↔ partner link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub id: String,
    pub partner_id: String,
    pub participant_id: String,
    pub roles: Vec<String>,
}

/// A partner product defined on the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventProduct {
    pub id: String,
    pub name: String,
}

/// A product quantity held by a partner (a product never set counts as 0 and is not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerProduct {
    pub product_id: String,
    pub quantity: u32,
}

/// A transport error's chain, without the URL (which would carry ids).
pub(crate) fn transport_detail(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    let head = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    if parts.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {}", parts.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_personal_data_are_redacted() {
        let s = Secret::new("inwink-sim-secret");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let cfg = InwinkConfig::new("http://x", "http://x/oauth/token", "id", s, "ev");
        assert!(!format!("{cfg:?}").contains("inwink-sim-secret"));
        assert_eq!(cfg.timeout, DEFAULT_TIMEOUT);
        let p = Participant {
            id: "c1".into(),
            email: "claire.durand@acme.example".into(),
            civility: None,
            lastname: Some("Durand".into()),
            firstname: Some("Claire".into()),
            company: None,
            job_title: None,
            phone1: Some("+33 1".into()),
            phone2: None,
            language: None,
            categories: vec!["Exhibitor".into()],
        };
        let d = format!("{p:?}");
        assert!(!d.contains("claire") && !d.contains("Durand") && !d.contains("+33"));
        assert!(d.contains("Exhibitor"));
    }

    #[test]
    fn a_partner_without_name_or_order_id_is_no_write() {
        let mut p = Partner {
            id: "a".into(),
            name: Some("Acme".into()),
            status: Some("Preview".into()),
            affiliated_to_id: None,
            emplacement: None,
            space: None,
            aisle: None,
            website: None,
            address: None,
            planexpo_order_id: Some("ord_1".into()),
            planexpo_public_order_id: None,
        };
        let w = p.as_write().unwrap();
        assert!(!w.published, "Preview is not published");
        assert_eq!(w.fields.planexpo_order_id, "ord_1");
        p.name = None;
        assert!(p.as_write().is_none());
        p.name = Some("Acme".into());
        p.planexpo_order_id = None;
        assert!(p.as_write().is_none());
    }
}
