//! What both simulators share: contract error bodies, timestamps, the call log, the fault
//! settings, the rate limiter and the request pipeline that applies them (contracts.md C).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;

/// Resolves when the server must stop.
pub(crate) type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Largest request body read (bigger ones get 413).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// The call log keeps at most this many calls (the oldest go first).
const MAX_CALLS: usize = 50_000;
/// The body of a `garbage_rate` answer.
pub(crate) const GARBAGE: &str = "<html>oops</html>";

/// Locks a mutex, recovering from poisoning (a panicked holder never wedges the simulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------
// Errors

/// An error answer: `{"code", "message"}` plus optional extra members (`existingId`,
/// `current`), or an OAuth error body on the token endpoint.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: Map<String, Value>,
    pub(crate) headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: &str) -> Self {
        let mut body = Map::new();
        body.insert("code".into(), Value::from(code));
        body.insert("message".into(), Value::from(message));
        ApiError {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// An OAuth 2 error body `{"error", "error_description"}`.
    pub(crate) fn oauth(status: StatusCode, error: &str, description: &str) -> Self {
        let mut body = Map::new();
        body.insert("error".into(), Value::from(error));
        body.insert("error_description".into(), Value::from(description));
        ApiError {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub(crate) fn bad_request(code: &str, message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(code: &str, message: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// Adds a member to the body (`existingId`, `current`).
    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.body.insert(key.into(), value.into());
        self
    }

    pub(crate) fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(Value::Object(self.body))).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// A JSON answer.
pub(crate) fn json_ok(status: StatusCode, value: Value) -> ApiResult {
    Ok((status, axum::Json(value)).into_response())
}

/// Parses a JSON request body; empty or invalid → 400 `invalid_json`.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body must be a JSON document",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the request body is not valid JSON"))
}

/// Parses a JSON object request body; not an object → 400 `body`.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse_json(body)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            "body",
            "the request body must be a JSON object",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Time

/// Now, UTC, whole seconds (every timestamp the simulators make looks like
/// `2026-03-02T10:00:00Z`).
pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Now, UTC, to the millisecond: the time of a call in the call log, precise enough to measure
/// latencies and calls per second from it.
pub(crate) fn now_ms() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_millisecond(t.millisecond()).unwrap_or(t)
}

/// RFC 3339 in UTC with `Z`; sub-seconds only when there are some.
pub(crate) fn fmt_time(t: OffsetDateTime) -> String {
    t.checked_to_offset(UtcOffset::UTC)
        .and_then(|utc| utc.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses RFC 3339 with an offset; `None` if invalid or not representable in UTC.
pub(crate) fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .and_then(|t| t.checked_to_offset(UtcOffset::UTC))
}

// ---------------------------------------------------------------------------------------
// Query strings

/// The decoded `key=value` pairs of a query string (never fails).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    match query {
        Some(q) => url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        None => Vec::new(),
    }
}

/// The first value of `key`.
pub(crate) fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------
// Faults

/// The fault settings of `POST /_sim/faults` (a key left out is "no fault").
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Faults {
    #[serde(rename = "error_rate")]
    pub(crate) error_rate: f64,
    #[serde(rename = "after_effect_error_rate")]
    pub(crate) after_effect_error_rate: f64,
    #[serde(rename = "rate_limit_per_s")]
    pub(crate) rate_limit_per_s: u64,
    #[serde(rename = "latency_ms")]
    pub(crate) latency_ms: u64,
    /// `None`: the default token lifetime (3600 s).
    #[serde(rename = "token_ttl_s")]
    pub(crate) token_ttl_s: Option<u64>,
    #[serde(rename = "garbage_rate")]
    pub(crate) garbage_rate: f64,
}

impl Faults {
    /// Reads a `POST /_sim/faults` body; a bad value → 400 with the key as `code`.
    pub(crate) fn from_json(body: &Map<String, Value>) -> Result<Faults, ApiError> {
        fn rate(body: &Map<String, Value>, key: &str) -> Result<f64, ApiError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(0.0),
                Some(v) => match v.as_f64() {
                    Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(ApiError::bad_request(
                        key,
                        "must be a number between 0 and 1",
                    )),
                },
            }
        }
        fn int(body: &Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, ApiError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if n <= max => Ok(Some(n)),
                    _ => Err(ApiError::bad_request(
                        key,
                        &format!("must be an integer between 0 and {max}"),
                    )),
                },
            }
        }
        Ok(Faults {
            error_rate: rate(body, "error_rate")?,
            after_effect_error_rate: rate(body, "after_effect_error_rate")?,
            rate_limit_per_s: int(body, "rate_limit_per_s", 1_000_000)?.unwrap_or(0),
            latency_ms: int(body, "latency_ms", 60_000)?.unwrap_or(0),
            token_ttl_s: int(body, "token_ttl_s", 315_360_000)?,
            garbage_rate: rate(body, "garbage_rate")?,
        })
    }
}

/// True with probability `p` (never for 0, always for 1).
pub(crate) fn chance(p: f64) -> bool {
    p > 0.0 && fastrand::f64() < p
}

// ---------------------------------------------------------------------------------------
// Call log

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Call {
    #[serde(rename = "seq")]
    pub(crate) seq: u64,
    #[serde(rename = "method")]
    pub(crate) method: String,
    #[serde(rename = "path")]
    pub(crate) path: String,
    #[serde(rename = "status")]
    pub(crate) status: u16,
    #[serde(rename = "body")]
    pub(crate) body: Value,
    #[serde(rename = "time")]
    pub(crate) time: String,
}

#[derive(Debug, Default)]
pub(crate) struct CallLog {
    last_seq: u64,
    calls: VecDeque<Call>,
}

/// What both simulators keep besides their own state.
#[derive(Debug, Default)]
pub(crate) struct Common {
    faults: Mutex<Faults>,
    calls: Mutex<CallLog>,
    /// Instants of the calls admitted in the last second (sliding window).
    window: Mutex<VecDeque<Instant>>,
}

impl Common {
    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    fn record(&self, method: String, path: String, status: u16, body: Value, time: String) {
        let mut log = lock(&self.calls);
        log.last_seq += 1;
        let seq = log.last_seq;
        log.calls.push_back(Call {
            seq,
            method,
            path,
            status,
            body,
            time,
        });
        while log.calls.len() > MAX_CALLS {
            log.calls.pop_front();
        }
    }

    /// Admits one authenticated call under `limit` calls per second (0 = unlimited), or
    /// answers how many whole seconds (≥ 1) to wait.
    fn admit(&self, limit: u64) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut window = lock(&self.window);
        while let Some(first) = window.front() {
            if now.duration_since(*first) >= Duration::from_secs(1) {
                window.pop_front();
            } else {
                break;
            }
        }
        if (window.len() as u64) < limit {
            window.push_back(now);
            return Ok(());
        }
        let wait = window
            .front()
            .map(|first| Duration::from_secs(1).saturating_sub(now.duration_since(*first)))
            .unwrap_or(Duration::from_secs(1));
        Err(wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

// ---------------------------------------------------------------------------------------
// The request pipeline

/// What the pipeline needs from one simulator.
pub(crate) trait SimApi: Send + Sync + 'static {
    fn common(&self) -> &Common;

    /// The OAuth token endpoint: faulted and logged, never authenticated nor rate-limited.
    fn is_token_path(&self, _path: &str) -> bool {
        false
    }

    /// Checks the caller's credentials (the error is the 401 to answer).
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError>;

    /// Checks run after authentication and the rate limit (the inwink event id).
    fn precheck(&self, _path: &str) -> Result<(), ApiError> {
        Ok(())
    }

    /// Sees every API request as it arrives, before faults and authentication.
    fn observe(&self, _method: &Method, _path: &str, _body: &[u8]) {}

    /// The request body as the call log shows it.
    fn logged_body(&self, _token: bool, body: &[u8]) -> Value {
        logged_json(body)
    }
}

/// A JSON body as is, a non-JSON body as a string, an empty body as null.
pub(crate) fn logged_json(body: &[u8]) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(_) => Value::String(String::from_utf8_lossy(body).chars().take(4096).collect()),
    }
}

fn is_sim_path(path: &str) -> bool {
    path == "/_sim" || path.starts_with("/_sim/")
}

/// The middleware of both simulators: `/_sim/` routes pass through untouched; API calls
/// get latency, faults, authentication, the rate limit, error-body normalisation and a
/// call-log entry.
pub(crate) async fn pipeline<S: SimApi>(
    State(sim): State<Arc<S>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if is_sim_path(&path) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let logged_path = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let time = fmt_time(now_ms());
    let token = sim.is_token_path(&path);
    let (parts, body) = req.into_parts();
    let (response, logged_body) = match axum::body::to_bytes(body, MAX_BODY).await {
        Err(_) => (
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large or could not be read",
            )
            .into_response(),
            Value::Null,
        ),
        Ok(bytes) => {
            let logged = sim.logged_body(token, &bytes);
            sim.observe(&method, &path, &bytes);
            let response = run_api(&*sim, token, &path, parts, bytes, next).await;
            (response, logged)
        }
    };
    let response = normalize(response);
    sim.common().record(
        method.to_string(),
        logged_path,
        response.status().as_u16(),
        logged_body,
        time,
    );
    response
}

async fn run_api<S: SimApi>(
    sim: &S,
    token: bool,
    path: &str,
    parts: axum::http::request::Parts,
    body: Bytes,
    next: Next,
) -> Response {
    let faults = sim.common().faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if chance(faults.error_rate) {
        return server_error(token, true);
    }
    if !token {
        if let Err(e) = sim.authenticate(&parts.headers) {
            return e.into_response();
        }
        if let Err(wait) = sim.common().admit(faults.rate_limit_per_s) {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests: slow down and retry after the given delay",
            )
            .header(header::RETRY_AFTER, HeaderValue::from(wait))
            .into_response();
        }
        if let Err(e) = sim.precheck(path) {
            return e.into_response();
        }
    }
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if chance(faults.after_effect_error_rate) {
        return server_error(token, false);
    }
    if response.status().is_success() && chance(faults.garbage_rate) {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            GARBAGE,
        )
            .into_response();
    }
    response
}

/// A simulated 5xx: before the effect a 503 (half of them with `Retry-After: 1`) or a
/// 500; after the effect a 500.
fn server_error(token: bool, before_effect: bool) -> Response {
    let unavailable = before_effect && fastrand::bool();
    let error = match (unavailable, token) {
        (true, false) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is temporarily unavailable",
        ),
        (true, true) => ApiError::oauth(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the authorization server is temporarily unavailable",
        ),
        (false, false) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred",
        ),
        (false, true) => ApiError::oauth(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "an internal error occurred",
        ),
    };
    let error = if unavailable && fastrand::bool() {
        error.header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    } else {
        error
    };
    error.into_response()
}

/// Gives a contract error body to the error answers axum makes by itself (unknown route,
/// wrong method, unreadable path).
fn normalize(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "method not allowed on this route")
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        s if s.is_server_error() => ("internal_error", "an internal error occurred"),
        _ => ("bad_request", "the request could not be understood"),
    };
    let (mut parts, _) = response.into_parts();
    let body = json!({"code": code, "message": message}).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The 404 of an unknown route (the pipeline logs it like any API call).
pub(crate) async fn fallback() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

// ---------------------------------------------------------------------------------------
// `/_sim/` routes both simulators have

/// `GET /_sim/calls[?since=SEQ]`
pub(crate) async fn get_calls<S: SimApi>(
    State(sim): State<Arc<S>>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let pairs = query_pairs(query.as_deref());
    let since = match query_get(&pairs, "since") {
        None => 0,
        Some(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request("since", "since must be a call sequence number"))?,
    };
    let calls: Vec<Call> = lock(&sim.common().calls)
        .calls
        .iter()
        .filter(|c| c.seq > since)
        .cloned()
        .collect();
    json_ok(StatusCode::OK, json!({ "calls": calls }))
}

/// `DELETE /_sim/calls` (sequence numbers keep increasing).
pub(crate) async fn delete_calls<S: SimApi>(State(sim): State<Arc<S>>) -> StatusCode {
    lock(&sim.common().calls).calls.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_sim/faults`
pub(crate) async fn get_faults<S: SimApi>(State(sim): State<Arc<S>>) -> ApiResult {
    json_ok(StatusCode::OK, faults_json(&sim.common().faults()))
}

/// `POST /_sim/faults`: replaces every setting.
pub(crate) async fn post_faults<S: SimApi>(State(sim): State<Arc<S>>, body: Bytes) -> ApiResult {
    let body = parse_object(&body)?;
    let faults = Faults::from_json(&body)?;
    *lock(&sim.common().faults) = faults.clone();
    lock(&sim.common().window).clear();
    json_ok(StatusCode::OK, faults_json(&faults))
}

fn faults_json(faults: &Faults) -> Value {
    serde_json::to_value(faults).unwrap_or(Value::Null)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub(crate) async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_whole_seconds() {
        let t = parse_time("2026-03-02T11:00:00+01:00").expect("valid");
        assert_eq!(fmt_time(t), "2026-03-02T10:00:00Z");
        assert!(fmt_time(now()).ends_with('Z'));
        assert!(!fmt_time(now()).contains('.'));
        assert_eq!(parse_time("2026-03-02 10:00:00"), None);
        assert_eq!(parse_time("9999-12-31T23:59:59-23:00"), None);
    }

    #[test]
    fn faults_parse_and_reject() {
        let ok = Faults::from_json(
            json!({"error_rate": 1, "rate_limit_per_s": 5, "token_ttl_s": 2})
                .as_object()
                .expect("object"),
        )
        .expect("valid");
        assert_eq!(ok.error_rate, 1.0);
        assert_eq!(ok.rate_limit_per_s, 5);
        assert_eq!(ok.token_ttl_s, Some(2));
        assert_eq!(ok.garbage_rate, 0.0);
        let err = Faults::from_json(json!({"garbage_rate": 2}).as_object().expect("object"))
            .expect_err("out of range");
        assert_eq!(err.body["code"], "garbage_rate");
    }

    #[test]
    fn rate_limiter_counts_a_sliding_second() {
        let common = Common::default();
        assert!(common.admit(2).is_ok());
        assert!(common.admit(2).is_ok());
        assert_eq!(common.admit(2), Err(1));
        assert!(common.admit(0).is_ok());
    }
}
