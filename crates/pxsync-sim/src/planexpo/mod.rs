//! The Planexpo simulator: contracts.md A (order feed, order, catalogue, webhooks) and the
//! Planexpo controls of C (`/_sim/orders`, `/_sim/catalog`, `/_sim/webhook`,
//! `/_sim/generate`, `/_sim/state`, `/_sim/calls`, `/_sim/faults`).
//!
//! Orders are kept as raw JSON so that `PUT /_sim/orders/{id}` can store malformed ones;
//! the simulator only sets `id`, `event`, `revision` and `updated_at`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use hmac::{KeyInit, Mac};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::common::{
    self, ApiError, ApiResult, Common, SimApi, fmt_time, json_ok, lock, parse_object, query_get,
    query_pairs,
};

mod generate;
mod webhook;
pub mod wire;

use webhook::{Delivery, Queue, WebhookConfig};
use wire::{Catalog, Tombstone, WebhookPayload};

/// How long a feed cursor stays valid.
const CURSOR_TTL_S: i64 = 600;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;
const MAX_GENERATE: u64 = 100_000;

/// Settings of the Planexpo simulator.
#[derive(Clone, Debug)]
pub struct Options {
    /// The API key expected in `Authorization: Bearer {api_key}`.
    pub api_key: String,
    /// The one event slug served.
    pub event: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_key: "px-sim-key".to_owned(),
            event: "salon-sante-2026".to_owned(),
        }
    }
}

/// The fixed catalogue `POST /_sim/generate` installs when the catalogue is empty
/// (`{"products": [{"id", "name", "kind", "paid"}]}`).
pub fn demo_catalog() -> Value {
    serde_json::to_value(generate::demo_catalog_typed()).unwrap_or(Value::Null)
}

/// Serves the Planexpo simulator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared::new(opts));
    common::serve_router(listener, router(shared), shutdown).await
}

/// Binds `127.0.0.1:0` and serves the Planexpo simulator on a tokio task.
pub async fn spawn(opts: Options) -> std::io::Result<crate::Running> {
    crate::spawn_with(move |listener, signal| serve(listener, opts, signal)).await
}

struct StoredOrder {
    value: Value,
    updated_at: OffsetDateTime,
    revision: u64,
    status: Option<String>,
    /// An order put as JSON text that a `Value` cannot hold (see [`put_order`]): served as
    /// this text, verbatim; `value` then holds only its id, event, revision and time.
    text: Option<String>,
}

impl StoredOrder {
    fn key(&self, id: &str) -> (OffsetDateTime, String) {
        (self.updated_at, id.to_owned())
    }

    /// The order as the API serves it.
    fn json_text(&self) -> String {
        match &self.text {
            Some(text) => text.clone(),
            None => self.value.to_string(),
        }
    }
}

/// A JSON answer from JSON text (an order put as text is served verbatim).
fn json_text_ok(status: StatusCode, text: String) -> ApiResult {
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response())
}

#[derive(Default)]
struct PxState {
    orders: HashMap<String, StoredOrder>,
    catalog: Catalog,
    webhook: Option<WebhookConfig>,
}

impl PxState {
    /// Every order, sorted by (`updated_at`, `id`).
    fn sorted(&self) -> Vec<(&String, &StoredOrder)> {
        let mut all: Vec<_> = self.orders.iter().collect();
        all.sort_by(|a, b| (a.1.updated_at, a.0).cmp(&(b.1.updated_at, b.0)));
        all
    }
}

struct Shared {
    opts: Options,
    common: Common,
    state: Mutex<PxState>,
    hooks: Queue,
    cursor_key: [u8; 32],
}

impl SimApi for Shared {
    fn common(&self) -> &Common {
        &self.common
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        if given == Some(self.opts.api_key.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid API key",
            )
            .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")))
        }
    }
}

/// The token of an `Authorization: Bearer {token}` header.
pub(crate) fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl Shared {
    fn new(opts: Options) -> Shared {
        let mut cursor_key = [0u8; 32];
        for b in &mut cursor_key {
            *b = fastrand::u8(..);
        }
        Shared {
            opts,
            common: Common::default(),
            state: Mutex::new(PxState::default()),
            hooks: Queue::start(),
            cursor_key,
        }
    }

    fn check_event(&self, event: &str) -> Result<(), ApiError> {
        if event == self.opts.event {
            Ok(())
        } else {
            Err(ApiError::not_found(
                "event_not_found",
                "no event with this slug",
            ))
        }
    }

    /// Stores an order (sets `id`, `event`, `revision`, `updated_at`) and fires the webhook.
    fn store(
        &self,
        state: &mut PxState,
        id: &str,
        mut order: Map<String, Value>,
        updated_at: OffsetDateTime,
        revision: Option<u64>,
    ) -> Value {
        let previous = state.orders.get(id);
        let revision = revision.unwrap_or_else(|| previous.map_or(1, |p| p.revision + 1));
        order.insert("id".into(), Value::from(id));
        order.insert("event".into(), Value::from(self.opts.event.clone()));
        order.insert("revision".into(), Value::from(revision));
        order.insert("updated_at".into(), Value::from(fmt_time(updated_at)));
        let status = order
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let action = webhook_action(previous, status.as_deref());
        let value = Value::Object(order);
        state.orders.insert(
            id.to_owned(),
            StoredOrder {
                value: value.clone(),
                updated_at,
                revision,
                status,
                text: None,
            },
        );
        self.notify(state, id, action);
        value
    }

    /// Stores an order given as JSON text, its top-level `members` in the order given: served
    /// as text, its id, event, revision and time first (any of these the text gives are left
    /// out, as [`Shared::store`] overwrites them), then the other members verbatim. Its status
    /// is the last `status` member that reads as a string.
    fn store_text(
        &self,
        state: &mut PxState,
        id: &str,
        members: Vec<(String, &RawValue)>,
        updated_at: OffsetDateTime,
    ) -> Value {
        let previous = state.orders.get(id);
        let revision = previous.map_or(1, |p| p.revision + 1);
        let status = members
            .iter()
            .rev()
            .find(|(key, _)| key == "status")
            .and_then(|(_, value)| serde_json::from_str::<String>(value.get()).ok());
        let action = webhook_action(previous, status.as_deref());
        let head = json!({
            "id": id,
            "event": self.opts.event,
            "revision": revision,
            "updated_at": fmt_time(updated_at),
        });
        let mut text = head.to_string();
        text.pop(); // the head's closing brace
        for (key, value) in &members {
            if ["id", "event", "revision", "updated_at"].contains(&key.as_str()) {
                continue;
            }
            text.push(',');
            text.push_str(&Value::from(key.as_str()).to_string());
            text.push(':');
            text.push_str(value.get());
        }
        text.push('}');
        state.orders.insert(
            id.to_owned(),
            StoredOrder {
                value: head.clone(),
                updated_at,
                revision,
                status,
                text: Some(text),
            },
        );
        self.notify(state, id, action);
        head
    }

    fn notify(&self, state: &PxState, order_id: &str, action: &str) {
        let Some(config) = state.webhook.clone() else {
            return;
        };
        let payload = WebhookPayload {
            delivery_id: uuid::Uuid::new_v4().to_string(),
            event: self.opts.event.clone(),
            order_id: order_id.to_owned(),
            action: action.to_owned(),
            occurred_at: fmt_time(common::now()),
        };
        match serde_json::to_string(&payload) {
            Ok(body) => self.hooks.push(Delivery { config, body }),
            Err(e) => tracing::error!(error = %e, "cannot encode a webhook payload"),
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/events/{event}/orders", get(list_orders))
        .route("/api/v1/events/{event}/orders/{order_id}", get(get_order))
        .route("/api/v1/events/{event}/catalog", get(get_catalog))
        .route("/_sim/state", get(sim_state))
        .route(
            "/_sim/calls",
            get(common::get_calls::<Shared>).delete(common::delete_calls::<Shared>),
        )
        .route(
            "/_sim/faults",
            get(common::get_faults::<Shared>).post(common::post_faults::<Shared>),
        )
        .route("/_sim/orders/{id}", put(put_order).delete(delete_order))
        .route("/_sim/catalog", put(put_catalog).get(sim_get_catalog))
        .route(
            "/_sim/webhook",
            put(put_webhook).delete(delete_webhook).get(get_webhook),
        )
        .route("/_sim/generate", post(generate_orders))
        .fallback(common::fallback)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            common::pipeline::<Shared>,
        ))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------
// Cursors: base64url("{mac}|{updated_at nanos}|{issued unix s}|{id}")

fn cursor_mac(key: &[u8; 32], payload: &str) -> String {
    match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(payload.as_bytes());
            let bytes = mac.finalize().into_bytes();
            hex::encode(bytes.get(..8).unwrap_or(&[]))
        }
        Err(_) => String::new(),
    }
}

fn encode_cursor(key: &[u8; 32], after: &(OffsetDateTime, String), issued: i64) -> String {
    let payload = format!("{}|{}|{}", after.0.unix_timestamp_nanos(), issued, after.1);
    let mac = cursor_mac(key, &payload);
    crate::b64::encode_url(format!("{mac}|{payload}").as_bytes())
}

/// The position after which the next page starts; `Err` names what is wrong.
fn decode_cursor(
    key: &[u8; 32],
    cursor: &str,
    now: i64,
) -> Result<(OffsetDateTime, String), &'static str> {
    let raw = crate::b64::decode(cursor).ok_or("malformed cursor")?;
    let text = String::from_utf8(raw).map_err(|_| "malformed cursor")?;
    let (mac, payload) = text.split_once('|').ok_or("malformed cursor")?;
    if cursor_mac(key, payload) != mac || mac.is_empty() {
        return Err("unknown cursor");
    }
    let mut parts = payload.splitn(3, '|');
    let nanos: i128 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("malformed cursor")?;
    let issued: i64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("malformed cursor")?;
    let id = parts.next().ok_or("malformed cursor")?;
    if now.saturating_sub(issued) > CURSOR_TTL_S {
        return Err("expired cursor: restart from your watermark");
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| "malformed cursor")?;
    Ok((at, id.to_owned()))
}

// ---------------------------------------------------------------------------------------
// A. The API

/// `GET /api/v1/events/{event}/orders?updated_since&cursor&limit`
async fn list_orders(
    State(sim): State<Arc<Shared>>,
    Path(event): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    sim.check_event(&event)?;
    let pairs = query_pairs(query.as_deref());
    let limit = match query_get(&pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "limit",
                    "limit must be an integer between 1 and 500",
                ));
            }
        },
    };
    enum From {
        Start,
        Since(OffsetDateTime),
        After((OffsetDateTime, String)),
    }
    let now_s = OffsetDateTime::now_utc().unix_timestamp();
    let from = if let Some(cursor) = query_get(&pairs, "cursor") {
        From::After(
            decode_cursor(&sim.cursor_key, cursor, now_s)
                .map_err(|why| ApiError::bad_request("cursor", why))?,
        )
    } else if let Some(since) = query_get(&pairs, "updated_since") {
        From::Since(common::parse_time(since).ok_or_else(|| {
            ApiError::bad_request(
                "updated_since",
                "updated_since must be an RFC 3339 timestamp with an offset",
            )
        })?)
    } else {
        From::Start
    };
    let state = lock(&sim.state);
    let mut selected = state
        .sorted()
        .into_iter()
        .filter(|(id, o)| match &from {
            From::Start => true,
            From::Since(t) => o.updated_at >= *t,
            From::After(pos) => o.key(id) > *pos,
        })
        .take(limit + 1)
        .collect::<Vec<_>>();
    let more = selected.len() > limit;
    selected.truncate(limit);
    let next_cursor = match (more, selected.last()) {
        (true, Some((id, o))) => Value::from(encode_cursor(&sim.cursor_key, &o.key(id), now_s)),
        _ => Value::Null,
    };
    let orders: Vec<String> = selected.iter().map(|(_, o)| o.json_text()).collect();
    json_text_ok(
        StatusCode::OK,
        format!(
            "{{\"orders\":[{}],\"next_cursor\":{next_cursor}}}",
            orders.join(",")
        ),
    )
}

/// `GET /api/v1/events/{event}/orders/{order_id}`
async fn get_order(
    State(sim): State<Arc<Shared>>,
    Path((event, order_id)): Path<(String, String)>,
) -> ApiResult {
    sim.check_event(&event)?;
    let state = lock(&sim.state);
    match state.orders.get(&order_id) {
        Some(o) => json_text_ok(StatusCode::OK, o.json_text()),
        None => Err(ApiError::not_found(
            "order_not_found",
            "no order with this id in this event",
        )),
    }
}

/// `GET /api/v1/events/{event}/catalog`
async fn get_catalog(State(sim): State<Arc<Shared>>, Path(event): Path<String>) -> ApiResult {
    sim.check_event(&event)?;
    let catalog = lock(&sim.state).catalog.clone();
    json_ok(
        StatusCode::OK,
        serde_json::to_value(catalog).unwrap_or(Value::Null),
    )
}

// ---------------------------------------------------------------------------------------
// C. Controls

/// `GET /_sim/state`
async fn sim_state(State(sim): State<Arc<Shared>>) -> ApiResult {
    let state = lock(&sim.state);
    let orders: Vec<Value> = state
        .sorted()
        .into_iter()
        .map(|(_, o)| o.value.clone())
        .collect();
    json_ok(
        StatusCode::OK,
        json!({
            "event": sim.opts.event,
            "orders": orders,
            "catalog": serde_json::to_value(&state.catalog).unwrap_or(Value::Null),
            "webhook": serde_json::to_value(&state.webhook).unwrap_or(Value::Null),
            "webhook_stats": sim.hooks.stats(),
        }),
    )
}

/// `?updated_at=RFC3339` of the order controls, else now.
fn updated_at_param(query: Option<&str>) -> Result<OffsetDateTime, ApiError> {
    let pairs = query_pairs(query);
    match query_get(&pairs, "updated_at") {
        None => Ok(common::now()),
        Some(s) => common::parse_time(s).ok_or_else(|| {
            ApiError::bad_request(
                "updated_at",
                "updated_at must be an RFC 3339 timestamp with an offset",
            )
        }),
    }
}

/// `PUT /_sim/orders/{id}[?updated_at=RFC3339]`: create or replace, even malformed.
async fn put_order(
    State(sim): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult {
    let updated_at = updated_at_param(query.as_deref())?;
    let order = match common::parse_json(&body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(ApiError::bad_request(
                "order",
                "an order must be a JSON object",
            ));
        }
        // JSON text that a `Value` cannot hold (a number out of range, a lone surrogate
        // escape): kept and served as text, so that such an order can be tested too.
        Err(not_a_value) => {
            let Some(members) = object_members(&body) else {
                return Err(not_a_value);
            };
            let mut state = lock(&sim.state);
            let stored = sim.store_text(&mut state, &id, members, updated_at);
            return json_ok(StatusCode::OK, stored);
        }
    };
    let mut state = lock(&sim.state);
    let stored = sim.store(&mut state, &id, order, updated_at, None);
    json_ok(StatusCode::OK, stored)
}

/// The webhook action of an order stored with `status` over `previous`.
fn webhook_action(previous: Option<&StoredOrder>, status: Option<&str>) -> &'static str {
    match previous {
        None => "order.created",
        Some(p) if p.status.as_deref() != status => match status {
            Some("validated") => "order.validated",
            Some("refused") => "order.refused",
            Some("cancelled") => "order.cancelled",
            Some("deleted") => "order.deleted",
            _ => "order.updated",
        },
        Some(_) => "order.updated",
    }
}

/// The top-level members of a JSON object's text, each value as its text, in the order given
/// (a key given twice stays twice); `None` when `body` is not an object with readable keys.
fn object_members(body: &[u8]) -> Option<Vec<(String, &RawValue)>> {
    struct Members;
    impl<'de> serde::de::Visitor<'de> for Members {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut members = Vec::new();
            while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                members.push(entry);
            }
            Ok(members)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let members = serde::Deserializer::deserialize_map(&mut de, Members).ok()?;
    de.end().ok()?;
    Some(members)
}

/// `DELETE /_sim/orders/{id}[?updated_at=RFC3339]`: replaces the order by its tombstone.
async fn delete_order(
    State(sim): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let updated_at = updated_at_param(query.as_deref())?;
    let mut state = lock(&sim.state);
    let Some(previous) = state.orders.get(&id) else {
        return Err(ApiError::not_found(
            "order_not_found",
            "no order with this id in this event",
        ));
    };
    if previous.status.as_deref() == Some("deleted") {
        // Already a tombstone: nothing changes.
        return json_ok(StatusCode::OK, previous.value.clone());
    }
    let revision = previous.revision + 1;
    let tombstone = Tombstone {
        id: id.clone(),
        event: sim.opts.event.clone(),
        status: "deleted".to_owned(),
        revision,
        updated_at: fmt_time(updated_at),
    };
    let value = serde_json::to_value(&tombstone).unwrap_or(Value::Null);
    state.orders.insert(
        id.clone(),
        StoredOrder {
            value: value.clone(),
            updated_at,
            revision,
            status: Some("deleted".to_owned()),
            text: None,
        },
    );
    sim.notify(&state, &id, "order.deleted");
    json_ok(StatusCode::OK, value)
}

/// `PUT /_sim/catalog` `{"products": [{"id", "name", "kind", "paid"}]}`
async fn put_catalog(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let value = common::parse_json(&body)?;
    let catalog: Catalog = serde_json::from_value(value).map_err(|_| {
        ApiError::bad_request(
            "catalog",
            "expected {\"products\": [{\"id\", \"name\", \"kind\", \"paid\"}]}",
        )
    })?;
    if catalog
        .products
        .iter()
        .any(|p| p.kind != "product" && p.kind != "option")
    {
        return Err(ApiError::bad_request(
            "catalog",
            "kind must be \"product\" or \"option\"",
        ));
    }
    let mut state = lock(&sim.state);
    state.catalog = catalog;
    json_ok(
        StatusCode::OK,
        serde_json::to_value(&state.catalog).unwrap_or(Value::Null),
    )
}

/// `GET /_sim/catalog`
async fn sim_get_catalog(State(sim): State<Arc<Shared>>) -> ApiResult {
    let catalog = lock(&sim.state).catalog.clone();
    json_ok(
        StatusCode::OK,
        serde_json::to_value(catalog).unwrap_or(Value::Null),
    )
}

/// `PUT /_sim/webhook` `{"url", "secret", "duplicate_rate": 0.0, "reorder": false}`
async fn put_webhook(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = parse_object(&body)?;
    let url = body
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| ApiError::bad_request("url", "url must be an http(s) URL"))?;
    let secret = body
        .get("secret")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("secret", "secret must be a string"))?;
    let duplicate_rate = match body.get("duplicate_rate") {
        None | Some(Value::Null) => 0.0,
        Some(v) => v
            .as_f64()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                ApiError::bad_request("duplicate_rate", "must be a number between 0 and 1")
            })?,
    };
    let reorder = match body.get("reorder") {
        None | Some(Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| ApiError::bad_request("reorder", "must be a boolean"))?,
    };
    let config = WebhookConfig {
        url: url.to_owned(),
        secret: secret.to_owned(),
        duplicate_rate,
        reorder,
    };
    lock(&sim.state).webhook = Some(config.clone());
    json_ok(
        StatusCode::OK,
        serde_json::to_value(config).unwrap_or(Value::Null),
    )
}

/// `DELETE /_sim/webhook`
async fn delete_webhook(State(sim): State<Arc<Shared>>) -> impl IntoResponse {
    lock(&sim.state).webhook = None;
    StatusCode::NO_CONTENT
}

/// `GET /_sim/webhook`
async fn get_webhook(State(sim): State<Arc<Shared>>) -> ApiResult {
    let config = lock(&sim.state).webhook.clone();
    json_ok(
        StatusCode::OK,
        serde_json::to_value(config).unwrap_or(Value::Null),
    )
}

/// `POST /_sim/generate` `{"orders": n, "seed": s}`
async fn generate_orders(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = parse_object(&body)?;
    let n = body
        .get("orders")
        .and_then(Value::as_u64)
        .filter(|n| *n <= MAX_GENERATE)
        .ok_or_else(|| {
            ApiError::bad_request("orders", "orders must be an integer between 0 and 100000")
        })?;
    let seed = match body.get("seed") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::bad_request("seed", "seed must be a non-negative integer"))?,
    };
    let n = usize::try_from(n).unwrap_or(0);
    let mut state = lock(&sim.state);
    let taken: HashSet<String> = state.orders.keys().cloned().collect();
    let now = common::now();
    let (orders, summary) = generate::generate(
        seed,
        n,
        &sim.opts.event,
        &fmt_time(now),
        &taken,
        state.orders.len() + 1,
    );
    if state.catalog.products.is_empty() {
        state.catalog = generate::demo_catalog_typed();
    }
    for order in orders {
        let id = order.id.clone();
        let revision = order.revision;
        if let Ok(Value::Object(map)) = serde_json::to_value(order) {
            sim.store(&mut state, &id, map, now, Some(revision));
        }
    }
    json_ok(StatusCode::OK, summary.to_json(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_expire_and_resist_tampering() {
        let key = [7u8; 32];
        let at = common::parse_time("2026-03-02T10:00:00Z").expect("time");
        let pos = (at, "ord_A|B".to_owned());
        let c = encode_cursor(&key, &pos, 1_000);
        assert_eq!(decode_cursor(&key, &c, 1_000), Ok(pos.clone()));
        assert_eq!(decode_cursor(&key, &c, 1_600), Ok(pos));
        assert!(decode_cursor(&key, &c, 1_601).is_err_and(|e| e.contains("expired")));
        assert!(decode_cursor(&[8u8; 32], &c, 1_000).is_err());
        assert!(decode_cursor(&key, "c_2", 1_000).is_err());
        assert!(decode_cursor(&key, "", 1_000).is_err());
    }

    #[test]
    fn bearer_parses_the_scheme() {
        assert_eq!(bearer("Bearer px-sim-key"), Some("px-sim-key"));
        assert_eq!(bearer("bearer  k "), Some("k"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
