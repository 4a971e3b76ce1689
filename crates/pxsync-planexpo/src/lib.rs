//! # pxsync-planexpo: the Planexpo API client
//!
//! The one place where pxsync reads Planexpo (contracts.md A): the order feed (paged by cursor,
//! filtered by `updated_since`), single orders (tombstones included) and the event's catalogue,
//! with an API key. It hands back the wire types of `pxsync_core::planexpo` (orders read loose,
//! `FeedOrder`, judged unit by unit by the core; a page's unreadable orders listed apart) and
//! classifies every failure into a [`PlanexpoError`].
//!
//! API boundary: every path, query parameter and error code of Planexpo lives in `src/wire.rs`;
//! the JSON types live in `pxsync_core::planexpo` and are not duplicated here.
//!
//! What this crate must never do:
//! - **log or put into an error any order content** (booking contacts are personal data) or a
//!   response body: spans carry the route *template* and the status, errors name the
//!   operation, the route template and the event slug.
//! - **retry a 400 as is**, or retry at all: the ingestor owns backoff (it persists a
//!   watermark, not a cursor, and starts again from it).
//! - **resolve URLs with `Url::join`**, which drops a base URL's path prefix: paths are appended
//!   to the base (trailing slashes trimmed), ids percent-encoded as path segments.
//! - **use another crypto provider than ring** (installed process-wide on first use).

mod error;
mod wire;

pub use error::{Call, PlanexpoError};

use pxsync_core::Timestamp;
use pxsync_core::planexpo::{FeedOrder, Loose, RawOrderPage, WireCatalog};
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use wire::Endpoint;

/// The per-request timeout used when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The order feed's page size bounds (a `limit` outside them is a 400).
pub const MAX_LIMIT: u32 = 500;

/// How to reach one Planexpo event.
#[derive(Debug, Clone)]
pub struct PlanexpoConfig {
    /// Scheme and host, maybe a path prefix (`https://{tenant}.planexpo.fr`); paths are appended.
    pub base_url: String,
    pub api_key: Secret,
    /// The event slug (`santexpo-2024`).
    pub event: String,
    /// Per request.
    pub timeout: Duration,
}

impl PlanexpoConfig {
    /// A configuration with the [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: impl Into<String>, api_key: Secret, event: impl Into<String>) -> Self {
        PlanexpoConfig {
            base_url: base_url.into(),
            api_key,
            event: event.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A secret (the API key): `Debug` and `Display` print `***`.
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

/// A client of one Planexpo event. Cheap to clone.
#[derive(Clone)]
pub struct PlanexpoClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Trailing slashes trimmed; paths are appended, never joined.
    base_url: String,
    event: Arc<str>,
    api_key: Secret,
}

impl fmt::Debug for PlanexpoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanexpoClient")
            .field("base_url", &self.inner.base_url)
            .field("event", &self.inner.event)
            .finish_non_exhaustive()
    }
}

/// An HTTP answer as read.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl PlanexpoClient {
    pub fn new(cfg: PlanexpoConfig) -> Result<Self, PlanexpoError> {
        let config_error = |detail: &str| PlanexpoError::Config {
            detail: detail.to_owned(),
        };
        if !(cfg.base_url.starts_with("http://") || cfg.base_url.starts_with("https://")) {
            return Err(config_error(
                "the base url must start with http:// or https://",
            ));
        }
        if cfg.event.trim().is_empty() {
            return Err(config_error("the event slug is empty"));
        }
        if cfg.timeout.is_zero() {
            return Err(config_error("the timeout is zero"));
        }
        // One crypto provider for the whole process: ring. Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pxsync-planexpo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlanexpoError::Config {
                detail: format!("cannot build the http client: {}", transport_detail(&e)),
            })?;
        Ok(PlanexpoClient {
            inner: Arc::new(Inner {
                http,
                base_url: cfg.base_url.trim_end_matches('/').to_owned(),
                event: Arc::from(cfg.event),
                api_key: cfg.api_key,
            }),
        })
    }

    /// The event slug.
    pub fn event(&self) -> &str {
        &self.inner.event
    }

    /// `GET /api/v1/events/{event}/orders?updated_since=...&cursor=...&limit=...`: one page of
    /// the feed, sorted by (`updated_at`, `id`), `updated_since` inclusive. When `cursor` is
    /// given it wins (and `updated_since` is not sent). `limit` is sent as given (1..=500).
    pub async fn orders_page(
        &self,
        updated_since: Option<Timestamp>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<RawOrderPage, PlanexpoError> {
        let mut query: Vec<(&str, String)> = Vec::with_capacity(2);
        match (cursor, updated_since) {
            (Some(c), _) => query.push((wire::PARAM_CURSOR, c.to_owned())),
            (None, Some(t)) => query.push((wire::PARAM_UPDATED_SINCE, t.to_rfc3339())),
            (None, None) => {}
        }
        query.push((wire::PARAM_LIMIT, limit.to_string()));
        let ep = Endpoint::OrdersPage;
        let answer = self
            .get(ep, &query)
            .await?
            .ok_or_else(|| self.not_found(ep))?;
        RawOrderPage::from_json(&answer.body).map_err(|_| self.garbage(ep, &answer))
    }

    /// `GET /api/v1/events/{event}/orders/{order_id}`: the order, every field loose (a deleted
    /// order is its tombstone), `None` when no order with this id ever existed (404
    /// `order_not_found`).
    pub async fn order(&self, order_id: &str) -> Result<Option<FeedOrder>, PlanexpoError> {
        let ep = Endpoint::Order { order_id };
        let Some(answer) = self.get(ep, &[]).await? else {
            return Ok(None);
        };
        match FeedOrder::from_json(&answer.body) {
            Ok(order @ Loose::Is(_)) => Ok(Some(order)),
            _ => Err(self.garbage(ep, &answer)),
        }
    }

    /// `GET /api/v1/events/{event}/catalog`.
    pub async fn catalog(&self) -> Result<WireCatalog, PlanexpoError> {
        let ep = Endpoint::Catalog;
        let answer = self.get(ep, &[]).await?.ok_or_else(|| self.not_found(ep))?;
        self.decode(ep, &answer)
    }

    /// The base URL with the endpoint's path appended (never `Url::join`, which would drop a
    /// path prefix of the base).
    fn url(&self, ep: &Endpoint<'_>) -> String {
        format!("{}{}", self.inner.base_url, ep.path(&self.inner.event))
    }

    fn not_found(&self, ep: Endpoint<'_>) -> PlanexpoError {
        PlanexpoError::EventNotFound {
            call: Call::of(&ep, &self.inner.event),
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        ep: Endpoint<'_>,
        answer: &Answer,
    ) -> Result<T, PlanexpoError> {
        serde_json::from_slice(&answer.body).map_err(|_| self.garbage(ep, answer))
    }

    /// A 2xx answer whose body is not what the route returns.
    fn garbage(&self, ep: Endpoint<'_>, answer: &Answer) -> PlanexpoError {
        PlanexpoError::Garbage {
            call: Call::of(&ep, &self.inner.event),
            status: answer.status,
        }
    }

    /// One `GET`: a 2xx answer, `None` for a 404 `order_not_found` of the single-order route, or
    /// the classified error.
    async fn get(
        &self,
        ep: Endpoint<'_>,
        query: &[(&str, String)],
    ) -> Result<Option<Answer>, PlanexpoError> {
        let call = Call::of(&ep, &self.inner.event);
        let span = tracing::info_span!(
            "planexpo.call",
            method = ep.method(),
            route = ep.route(),
            event = &*self.inner.event,
            status = tracing::field::Empty,
        );
        async {
            let url = self.url(&ep);
            let mut request = self
                .inner
                .http
                .get(url)
                .bearer_auth(self.inner.api_key.expose())
                .header(reqwest::header::ACCEPT, "application/json");
            if !query.is_empty() {
                request = request.query(query);
            }
            let transport = |e: reqwest::Error| PlanexpoError::Transport {
                call: call.clone(),
                timeout: e.is_timeout(),
                detail: transport_detail(&e),
            };
            let response = request.send().await.map_err(transport)?;
            let status = response.status().as_u16();
            tracing::Span::current().record("status", status);
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.bytes().await.map_err(transport)?.to_vec();
            if (200..300).contains(&status) {
                return Ok(Some(Answer { status, body }));
            }
            match error::classify(call.clone(), status, retry_after.as_deref(), &body) {
                Ok(()) => Ok(None),
                Err(e) => {
                    tracing::debug!(code = e.code(), "planexpo call failed");
                    Err(e)
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// A transport error's chain, without the URL.
fn transport_detail(e: &reqwest::Error) -> String {
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
    fn the_api_key_never_prints() {
        let cfg = PlanexpoConfig::new("http://x/", Secret::new("px-sim-key"), "ev");
        assert!(!format!("{cfg:?}").contains("px-sim-key"));
        assert_eq!(format!("{}", cfg.api_key), "***");
        let c = PlanexpoClient::new(cfg).unwrap();
        assert!(!format!("{c:?}").contains("px-sim-key"));
        assert_eq!(c.event(), "ev");
        let prefixed = PlanexpoClient::new(PlanexpoConfig::new(
            "https://tenant.planexpo.fr/px/",
            Secret::new("k"),
            "santexpo-2024",
        ))
        .unwrap();
        assert_eq!(
            prefixed.url(&Endpoint::Order {
                order_id: "ord_7QH2K"
            }),
            "https://tenant.planexpo.fr/px/api/v1/events/santexpo-2024/orders/ord_7QH2K"
        );
        assert!(matches!(
            PlanexpoClient::new(PlanexpoConfig::new("x.planexpo.fr", Secret::new("k"), "ev")),
            Err(PlanexpoError::Config { .. })
        ));
    }
}
