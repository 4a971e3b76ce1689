//! The inwink simulator: contracts.md B (OAuth token, partners, participants, team
//! members, partner products, errors and limits) and the inwink controls of C
//! (`/_sim/products`, manual deletes and edits, `/_sim/state`, `/_sim/calls`,
//! `/_sim/faults`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post, put};
use serde_json::{Map, Value, json};

use crate::common::{self, ApiError, ApiResult, Common, SimApi, json_ok, lock, parse_object};

pub mod wire;

use wire::{Address, EventProduct, Partner, PartnerProduct, Person, TeamMember, Token};

/// The token lifetime when no `token_ttl_s` fault is set.
const DEFAULT_TOKEN_TTL_S: u64 = 3600;
const TOKEN_PATH: &str = "/oauth/token";
const PARTNER_STATUSES: &[&str] = &["Draft", "Preview", "Published"];
const MAX_PAGE_SIZE: u64 = 100;
const EXHIBITOR_CATEGORY: &str = "Exhibitor";

/// Settings of the inwink simulator.
#[derive(Clone, Debug)]
pub struct Options {
    /// OAuth client id accepted by `POST /oauth/token`.
    pub client_id: String,
    /// OAuth client secret accepted by `POST /oauth/token`.
    pub client_secret: String,
    /// The one inwink event id (a GUID) served; every API path starts with it.
    pub event_id: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            client_id: "pxsync-sim".to_owned(),
            client_secret: "inwink-sim-secret".to_owned(),
            event_id: "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b".to_owned(),
        }
    }
}

/// Partner products matching the mappable products of
/// [`crate::planexpo::demo_catalog`] by name, with fixed ids, in the body shape of
/// `PUT /_sim/products` (`{"data": [{"id", "name"}]}`). Not loaded by default.
pub fn demo_products() -> Value {
    let products = [
        (
            "5e1c0a01-7b2d-4c3e-9f10-2a3b4c5d6e01",
            "Pack 10 badges exposant",
        ),
        ("0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a", "Bannière 2x1 m"),
        ("5e1c0a01-7b2d-4c3e-9f10-2a3b4c5d6e03", "Logo au catalogue"),
        ("5e1c0a01-7b2d-4c3e-9f10-2a3b4c5d6e04", "Pass VIP"),
        ("5e1c0a01-7b2d-4c3e-9f10-2a3b4c5d6e05", "Wi-Fi stand"),
        (
            "5e1c0a01-7b2d-4c3e-9f10-2a3b4c5d6e06",
            "Boîtier électrique 3 kW",
        ),
        ("5e1c0a01-7b2d-4c3e-9f10-2a3b4c5d6e07", "Pack mobilier"),
        (
            "5e1c0a01-7b2d-4c3e-9f10-2a3b4c5d6e08",
            "Application scan de badges",
        ),
    ];
    let data: Vec<Value> = products
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    json!({ "data": data })
}

/// Serves the inwink simulator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        opts,
        common: Common::default(),
        state: Mutex::new(IwState::default()),
    });
    common::serve_router(listener, router(shared), shutdown).await
}

/// Binds `127.0.0.1:0` and serves the inwink simulator on a tokio task.
pub async fn spawn(opts: Options) -> std::io::Result<crate::Running> {
    crate::spawn_with(move |listener, signal| serve(listener, opts, signal)).await
}

#[derive(Default)]
struct IwState {
    /// In creation order (queries page over this order).
    partners: Vec<Partner>,
    /// Partner id → its products, in the order they were first set.
    products_of: HashMap<String, Vec<PartnerProduct>>,
    persons: Vec<Person>,
    team: Vec<TeamMember>,
    products: Vec<EventProduct>,
    /// Access token → expiry.
    tokens: HashMap<String, Instant>,
    quantity_decrease_attempts: u64,
}

impl IwState {
    fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id == id)
    }

    fn person(&self, id: &str) -> Option<&Person> {
        self.persons.iter().find(|p| p.id == id)
    }

    fn stored_quantity(&self, partner: &str, product: &str) -> u64 {
        self.products_of
            .get(partner)
            .and_then(|list| list.iter().find(|p| p.product_id == product))
            .map_or(0, |p| p.quantity)
    }
}

struct Shared {
    opts: Options,
    common: Common,
    state: Mutex<IwState>,
}

impl SimApi for Shared {
    fn common(&self) -> &Common {
        &self.common
    }

    fn is_token_path(&self, path: &str) -> bool {
        path == TOKEN_PATH
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::planexpo::bearer);
        let now = Instant::now();
        let valid = token.is_some_and(|t| {
            lock(&self.state)
                .tokens
                .get(t)
                .is_some_and(|expiry| *expiry > now)
        });
        if valid {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing, unknown or expired access token",
            )
            .header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            ))
        }
    }

    fn precheck(&self, path: &str) -> Result<(), ApiError> {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if first == self.opts.event_id {
            Ok(())
        } else {
            Err(ApiError::not_found(
                "event_not_found",
                "no event with this id",
            ))
        }
    }

    /// Counts every attempt to lower a partner product quantity, whatever happens to the
    /// call afterwards (fault, 401, 429...): the tests' no-decrease oracle.
    fn observe(&self, method: &Method, path: &str, body: &[u8]) {
        if method != Method::PUT {
            return;
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let [event, "exhibitor", partner, "products", product] = segments.as_slice() else {
            return;
        };
        if *event != self.opts.event_id {
            return;
        }
        // Only a valid quantity (an integer >= 0) can be a decrease.
        let Some(quantity) = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("quantity").and_then(Value::as_u64))
        else {
            return;
        };
        let mut state = lock(&self.state);
        if quantity < state.stored_quantity(partner, product) {
            state.quantity_decrease_attempts += 1;
        }
    }

    /// The token call is logged as its form fields, the secret masked.
    fn logged_body(&self, token: bool, body: &[u8]) -> Value {
        if !token {
            return common::logged_json(body);
        }
        let fields: Map<String, Value> = url::form_urlencoded::parse(body)
            .map(|(k, v)| {
                let v = if k == "client_secret" {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), Value::String(v))
            })
            .collect();
        Value::Object(fields)
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route("/{event_id}/exhibitor", post(create_partner))
        .route("/{event_id}/exhibitor/query", post(query_partners))
        .route(
            "/{event_id}/exhibitor/{id}",
            get(get_partner).patch(patch_partner),
        )
        .route("/{event_id}/exhibitor/account", post(create_team_member))
        .route("/{event_id}/exhibitor/account/query", post(query_team))
        .route("/{event_id}/exhibitor/account/{id}", get(get_team_member))
        .route("/{event_id}/exhibitor/{id}/products", get(partner_products))
        .route(
            "/{event_id}/exhibitor/{id}/products/{product_id}",
            put(put_partner_product),
        )
        .route("/{event_id}/registered", post(create_person))
        .route("/{event_id}/registered/query", post(query_persons))
        .route(
            "/{event_id}/registered/{id}",
            get(get_person).patch(patch_person),
        )
        .route("/{event_id}/product", get(event_products))
        .route("/_sim/state", get(sim_state))
        .route(
            "/_sim/calls",
            get(common::get_calls::<Shared>).delete(common::delete_calls::<Shared>),
        )
        .route(
            "/_sim/faults",
            get(common::get_faults::<Shared>).post(common::post_faults::<Shared>),
        )
        .route("/_sim/products", put(sim_put_products))
        .route(
            "/_sim/exhibitor/{id}",
            patch(sim_patch_partner).delete(sim_delete_partner),
        )
        .route(
            "/_sim/registered/{id}",
            patch(sim_patch_person).delete(sim_delete_person),
        )
        .fallback(common::fallback)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            common::pipeline::<Shared>,
        ))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------
// OAuth

/// A form-urlencoded component, decoded (`+` is a space, `%XX` a byte).
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// HTTP Basic client credentials (RFC 6749 2.3.1: each part form-urlencoded).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(crate::b64::decode(encoded)?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// `POST /oauth/token` (client credentials, in the form or HTTP Basic).
async fn token(State(sim): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let basic = basic_credentials(&headers);
    let used_basic = basic.is_some();
    let (client_id, client_secret) = match basic {
        Some(pair) => (Some(pair.0), Some(pair.1)),
        None => (field("client_id"), field("client_secret")),
    };
    let authenticated = client_id.as_deref() == Some(sim.opts.client_id.as_str())
        && client_secret.as_deref() == Some(sim.opts.client_secret.as_str());
    if !authenticated {
        let error = ApiError::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        return Err(if used_basic {
            error.header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"inwink\""),
            )
        } else {
            error
        });
    }
    match field("grant_type").as_deref() {
        Some("client_credentials") => {}
        None => {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            ));
        }
        Some(_) => {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            ));
        }
    }
    let ttl = sim
        .common
        .faults()
        .token_ttl_s
        .unwrap_or(DEFAULT_TOKEN_TTL_S);
    let access_token = uuid::Uuid::new_v4().simple().to_string();
    let now = Instant::now();
    {
        let mut state = lock(&sim.state);
        state.tokens.retain(|_, expiry| *expiry > now);
        let expiry = now
            .checked_add(Duration::from_secs(ttl))
            .unwrap_or(now + Duration::from_secs(DEFAULT_TOKEN_TTL_S));
        state.tokens.insert(access_token.clone(), expiry);
    }
    let body = Token {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: ttl,
    };
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Merging request bodies: a present field is replaced (null clears it), a missing one is
// left as it is, unknown ones are ignored.

/// `None`: absent; `Some(None)`: null; `Some(Some(s))`: a string. Else 400 `{key}`.
fn string_field(obj: &Map<String, Value>, key: &str) -> Result<Option<Option<String>>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ApiError::bad_request(key, "must be a string or null")),
    }
}

fn set(target: &mut Option<String>, obj: &Map<String, Value>, key: &str) -> Result<(), ApiError> {
    if let Some(value) = string_field(obj, key)? {
        *target = value;
    }
    Ok(())
}

fn apply_partner(p: &mut Partner, obj: &Map<String, Value>) -> Result<(), ApiError> {
    set(&mut p.name, obj, "name")?;
    set(&mut p.status, obj, "status")?;
    set(&mut p.affiliated_to_id, obj, "affiliatedToId")?;
    set(&mut p.emplacement, obj, "emplacement")?;
    set(&mut p.space, obj, "space")?;
    set(&mut p.aisle, obj, "aisle")?;
    set(&mut p.website, obj, "website")?;
    set(&mut p.planexpo_order_id, obj, "planexpo_order_id")?;
    set(
        &mut p.planexpo_public_order_id,
        obj,
        "planexpo_public_order_id",
    )?;
    match obj.get("address") {
        None => {}
        Some(Value::Null) => p.address = None,
        Some(v @ Value::Object(_)) => {
            let address: Address = serde_json::from_value(v.clone()).map_err(|_| {
                ApiError::bad_request("address", "address members must be strings or null")
            })?;
            p.address = Some(address);
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "address",
                "address must be an object or null",
            ));
        }
    }
    Ok(())
}

/// The partner rules of B.1 for the fields a POST (all) or a PATCH (those present) sets.
fn validate_partner(
    state: &IwState,
    p: &Partner,
    obj: &Map<String, Value>,
    post: bool,
) -> Result<(), ApiError> {
    if post || obj.contains_key("name") {
        let ok = p.name.as_deref().is_some_and(|n| !n.trim().is_empty());
        if !ok {
            return Err(ApiError::bad_request(
                "name",
                "name is required and must not be blank",
            ));
        }
    }
    if post || obj.contains_key("status") {
        let ok = p
            .status
            .as_deref()
            .is_some_and(|s| PARTNER_STATUSES.contains(&s));
        if !ok {
            return Err(ApiError::bad_request(
                "status",
                "status must be Draft, Preview or Published",
            ));
        }
    }
    if obj.contains_key("affiliatedToId")
        && let Some(parent) = p.affiliated_to_id.as_deref()
    {
        if parent == p.id {
            return Err(ApiError::bad_request(
                "affiliatedToId",
                "a partner cannot be affiliated to itself",
            ));
        }
        if state.partner(parent).is_none() {
            return Err(ApiError::bad_request(
                "affiliatedToId",
                "no partner with this id",
            ));
        }
    }
    if (post || obj.contains_key("planexpo_order_id"))
        && let Some(key) = p.planexpo_order_id.as_deref()
        && let Some(other) = state
            .partners
            .iter()
            .find(|o| o.id != p.id && o.planexpo_order_id.as_deref() == Some(key))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_key",
            "another partner has this planexpo_order_id",
        )
        .with("existingId", other.id.clone()));
    }
    Ok(())
}

fn apply_person(
    p: &mut Person,
    obj: &Map<String, Value>,
    categories: bool,
) -> Result<(), ApiError> {
    set(&mut p.email, obj, "email")?;
    set(&mut p.civility, obj, "civility")?;
    set(&mut p.lastname, obj, "lastname")?;
    set(&mut p.firstname, obj, "firstname")?;
    set(&mut p.company, obj, "company")?;
    set(&mut p.job_title, obj, "jobTitle")?;
    set(&mut p.phone1, obj, "phone1")?;
    set(&mut p.phone2, obj, "phone2")?;
    set(&mut p.language, obj, "language")?;
    if categories {
        match obj.get("categories") {
            None => {}
            Some(Value::Null) => p.categories.clear(),
            Some(v) => {
                p.categories = serde_json::from_value(v.clone()).map_err(|_| {
                    ApiError::bad_request("categories", "categories must be an array of strings")
                })?;
            }
        }
    }
    Ok(())
}

fn same_email(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// The person rules of B.2 for the fields a POST (all) or a PATCH (those present) sets.
fn validate_person(
    state: &IwState,
    p: &Person,
    obj: &Map<String, Value>,
    post: bool,
) -> Result<(), ApiError> {
    if !(post || obj.contains_key("email")) {
        return Ok(());
    }
    let Some(email) = p.email.as_deref().filter(|e| e.contains('@')) else {
        return Err(ApiError::bad_request(
            "email",
            "email is required and must contain @",
        ));
    };
    if let Some(other) = state
        .persons
        .iter()
        .find(|o| o.id != p.id && o.email.as_deref().is_some_and(|e| same_email(e, email)))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_key",
            "another participant has this e-mail",
        )
        .with("existingId", other.id.clone()));
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn partner_not_found() -> ApiError {
    ApiError::not_found("partner_not_found", "no partner with this id")
}

fn participant_not_found() -> ApiError {
    ApiError::not_found("participant_not_found", "no participant with this id")
}

// ---------------------------------------------------------------------------------------
// Queries

/// `{"filters": {field: value}, "page": {"index", "size"}}` over `items` (equality; the
/// `ci_key` field compared ignoring case) → `{"data", "totalCount"}`.
fn run_query(items: Vec<Value>, body: &[u8], ci_key: Option<&str>) -> ApiResult {
    let obj = parse_object(body)?;
    let filters = match obj.get("filters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "filters",
                "filters must be an object",
            ));
        }
    };
    let bad_page = || ApiError::bad_request("page", "page.index must be >= 0 and page.size 1..100");
    let (index, size) = match obj.get("page") {
        None | Some(Value::Null) => (0, MAX_PAGE_SIZE),
        Some(Value::Object(page)) => {
            let index = match page.get("index") {
                None | Some(Value::Null) => 0,
                Some(v) => v.as_u64().ok_or_else(bad_page)?,
            };
            let size = match page.get("size") {
                None | Some(Value::Null) => MAX_PAGE_SIZE,
                Some(v) => v
                    .as_u64()
                    .filter(|s| (1..=MAX_PAGE_SIZE).contains(s))
                    .ok_or_else(bad_page)?,
            };
            (index, size)
        }
        Some(_) => return Err(bad_page()),
    };
    let matched: Vec<Value> = items
        .into_iter()
        .filter(|item| {
            filters.iter().all(|(key, wanted)| {
                let have = item.get(key).unwrap_or(&Value::Null);
                match (ci_key == Some(key.as_str()), have, wanted) {
                    (true, Value::String(a), Value::String(b)) => same_email(a, b),
                    _ => have == wanted,
                }
            })
        })
        .collect();
    let total = matched.len();
    let skip = usize::try_from(index.saturating_mul(size)).unwrap_or(usize::MAX);
    let take = usize::try_from(size).unwrap_or(usize::MAX);
    let data: Vec<Value> = matched.into_iter().skip(skip).take(take).collect();
    json_ok(StatusCode::OK, json!({"data": data, "totalCount": total}))
}

// ---------------------------------------------------------------------------------------
// B.1 Partners

async fn create_partner(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let obj = parse_object(&body)?;
    let mut partner = Partner {
        id: uuid::Uuid::new_v4().to_string(),
        ..Partner::default()
    };
    apply_partner(&mut partner, &obj)?;
    let mut state = lock(&sim.state);
    validate_partner(&state, &partner, &obj, true)?;
    state.partners.push(partner.clone());
    json_ok(StatusCode::CREATED, to_json(&partner))
}

async fn get_partner(
    State(sim): State<Arc<Shared>>,
    Path((_event, id)): Path<(String, String)>,
) -> ApiResult {
    let state = lock(&sim.state);
    let partner = state.partner(&id).ok_or_else(partner_not_found)?;
    json_ok(StatusCode::OK, to_json(partner))
}

async fn patch_partner(
    State(sim): State<Arc<Shared>>,
    Path((_event, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let mut state = lock(&sim.state);
    let idx = state
        .partners
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(partner_not_found)?;
    let obj = parse_object(&body)?;
    let mut partner = state.partners[idx].clone();
    apply_partner(&mut partner, &obj)?;
    validate_partner(&state, &partner, &obj, false)?;
    state.partners[idx] = partner.clone();
    json_ok(StatusCode::OK, to_json(&partner))
}

async fn query_partners(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let items: Vec<Value> = lock(&sim.state).partners.iter().map(to_json).collect();
    run_query(items, &body, None)
}

// ---------------------------------------------------------------------------------------
// B.2 Participants

async fn create_person(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let obj = parse_object(&body)?;
    let mut person = Person {
        id: uuid::Uuid::new_v4().to_string(),
        ..Person::default()
    };
    // `categories` is managed by inwink: ignored on creation.
    apply_person(&mut person, &obj, false)?;
    let mut state = lock(&sim.state);
    validate_person(&state, &person, &obj, true)?;
    state.persons.push(person.clone());
    json_ok(StatusCode::CREATED, to_json(&person))
}

async fn get_person(
    State(sim): State<Arc<Shared>>,
    Path((_event, id)): Path<(String, String)>,
) -> ApiResult {
    let state = lock(&sim.state);
    let person = state.person(&id).ok_or_else(participant_not_found)?;
    json_ok(StatusCode::OK, to_json(person))
}

async fn patch_person(
    State(sim): State<Arc<Shared>>,
    Path((_event, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let mut state = lock(&sim.state);
    let idx = state
        .persons
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(participant_not_found)?;
    let obj = parse_object(&body)?;
    let mut person = state.persons[idx].clone();
    apply_person(&mut person, &obj, true)?;
    validate_person(&state, &person, &obj, false)?;
    state.persons[idx] = person.clone();
    json_ok(StatusCode::OK, to_json(&person))
}

async fn query_persons(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let items: Vec<Value> = lock(&sim.state).persons.iter().map(to_json).collect();
    run_query(items, &body, Some("email"))
}

// ---------------------------------------------------------------------------------------
// B.3 Team members

async fn create_team_member(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let obj = parse_object(&body)?;
    let exhibitor_id = obj
        .get("exhibitorId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("exhibitorId", "exhibitorId is required"))?
        .to_owned();
    let registered_id = obj
        .get("registeredId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("registeredId", "registeredId is required"))?
        .to_owned();
    let roles: Vec<String> = match obj.get("roles") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| ApiError::bad_request("roles", "roles must be an array of strings"))?,
    };
    let mut state = lock(&sim.state);
    if state.partner(&exhibitor_id).is_none() {
        return Err(partner_not_found());
    }
    if state.person(&registered_id).is_none() {
        return Err(participant_not_found());
    }
    if let Some(existing) = state
        .team
        .iter()
        .find(|t| t.exhibitor_id == exhibitor_id && t.registered_id == registered_id)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_key",
            "this participant is already a team member of this partner",
        )
        .with("existingId", existing.id.clone()));
    }
    let member = TeamMember {
        id: uuid::Uuid::new_v4().to_string(),
        exhibitor_id,
        registered_id: registered_id.clone(),
        roles,
    };
    state.team.push(member.clone());
    if let Some(person) = state.persons.iter_mut().find(|p| p.id == registered_id)
        && !person.categories.iter().any(|c| c == EXHIBITOR_CATEGORY)
    {
        person.categories.push(EXHIBITOR_CATEGORY.to_owned());
    }
    json_ok(StatusCode::CREATED, to_json(&member))
}

async fn get_team_member(
    State(sim): State<Arc<Shared>>,
    Path((_event, id)): Path<(String, String)>,
) -> ApiResult {
    let state = lock(&sim.state);
    let member = state.team.iter().find(|t| t.id == id).ok_or_else(|| {
        ApiError::not_found("team_member_not_found", "no team member with this id")
    })?;
    json_ok(StatusCode::OK, to_json(member))
}

async fn query_team(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let items: Vec<Value> = lock(&sim.state).team.iter().map(to_json).collect();
    run_query(items, &body, None)
}

// ---------------------------------------------------------------------------------------
// B.4 Partner products

async fn event_products(State(sim): State<Arc<Shared>>) -> ApiResult {
    let products = lock(&sim.state).products.clone();
    json_ok(StatusCode::OK, json!({ "data": products }))
}

async fn partner_products(
    State(sim): State<Arc<Shared>>,
    Path((_event, id)): Path<(String, String)>,
) -> ApiResult {
    let state = lock(&sim.state);
    if state.partner(&id).is_none() {
        return Err(partner_not_found());
    }
    let data = state.products_of.get(&id).cloned().unwrap_or_default();
    json_ok(StatusCode::OK, json!({ "data": data }))
}

async fn put_partner_product(
    State(sim): State<Arc<Shared>>,
    Path((_event, id, product_id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let mut state = lock(&sim.state);
    if state.partner(&id).is_none() {
        return Err(partner_not_found());
    }
    if !state.products.iter().any(|p| p.id == product_id) {
        return Err(ApiError::not_found(
            "product_not_found",
            "no product with this id in the event",
        ));
    }
    let body = common::parse_json(&body)?;
    let quantity = body
        .get("quantity")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::bad_request("quantity", "quantity must be an integer >= 0"))?;
    let current = state.stored_quantity(&id, &product_id);
    if quantity < current {
        // Counted in `observe`, as the request arrived.
        return Err(
            ApiError::bad_request("quantity_decrease", "the quantity cannot be lowered")
                .with("current", current),
        );
    }
    if quantity > current {
        let list = state.products_of.entry(id).or_default();
        match list.iter_mut().find(|p| p.product_id == product_id) {
            Some(entry) => entry.quantity = quantity,
            None => list.push(PartnerProduct {
                product_id: product_id.clone(),
                quantity,
            }),
        }
    }
    json_ok(
        StatusCode::OK,
        json!({"productId": product_id, "quantity": quantity}),
    )
}

// ---------------------------------------------------------------------------------------
// C. Controls

async fn sim_state(State(sim): State<Arc<Shared>>) -> ApiResult {
    let state = lock(&sim.state);
    let partners: Vec<Value> = state
        .partners
        .iter()
        .map(|p| {
            let mut value = to_json(p);
            let products: Map<String, Value> = state
                .products_of
                .get(&p.id)
                .map(|list| {
                    list.iter()
                        .map(|pp| (pp.product_id.clone(), Value::from(pp.quantity)))
                        .collect()
                })
                .unwrap_or_default();
            if let Value::Object(map) = &mut value {
                map.insert("products".into(), Value::Object(products));
            }
            value
        })
        .collect();
    json_ok(
        StatusCode::OK,
        json!({
            "event_id": sim.opts.event_id,
            "partners": partners,
            "participants": state.persons,
            "team_members": state.team,
            "products": state.products,
            "quantity_decrease_attempts": state.quantity_decrease_attempts,
        }),
    )
}

/// `PUT /_sim/products` `{"data": [{"id", "name"}]}` or a bare array.
async fn sim_put_products(State(sim): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let value = common::parse_json(&body)?;
    let list = match value {
        Value::Array(_) => value,
        Value::Object(mut map) => map.remove("data").unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let products: Vec<EventProduct> = serde_json::from_value(list).map_err(|_| {
        ApiError::bad_request(
            "products",
            "expected {\"data\": [{\"id\", \"name\"}]} or [{\"id\", \"name\"}]",
        )
    })?;
    let mut ids: Vec<&str> = products.iter().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::bad_request("products", "duplicate product id"));
    }
    lock(&sim.state).products = products.clone();
    json_ok(StatusCode::OK, json!({ "data": products }))
}

/// `DELETE /_sim/exhibitor/{id}`: with its products and team links; its co-exhibitors
/// keep an `affiliatedToId` pointing at nothing.
async fn sim_delete_partner(State(sim): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let mut state = lock(&sim.state);
    let before = state.partners.len();
    state.partners.retain(|p| p.id != id);
    if state.partners.len() == before {
        return Err(partner_not_found());
    }
    state.products_of.remove(&id);
    state.team.retain(|t| t.exhibitor_id != id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /_sim/registered/{id}`: with its team links.
async fn sim_delete_person(State(sim): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let mut state = lock(&sim.state);
    let before = state.persons.len();
    state.persons.retain(|p| p.id != id);
    if state.persons.len() == before {
        return Err(participant_not_found());
    }
    state.team.retain(|t| t.registered_id != id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PATCH /_sim/exhibitor/{id}`: an edit by hand (merge rules, no validation).
async fn sim_patch_partner(
    State(sim): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let obj = parse_object(&body)?;
    let mut state = lock(&sim.state);
    let partner = state
        .partners
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(partner_not_found)?;
    let mut edited = partner.clone();
    apply_partner(&mut edited, &obj)?;
    *partner = edited.clone();
    json_ok(StatusCode::OK, to_json(&edited))
}

/// `PATCH /_sim/registered/{id}`: an edit by hand (merge rules, no validation).
async fn sim_patch_person(
    State(sim): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let obj = parse_object(&body)?;
    let mut state = lock(&sim.state);
    let person = state
        .persons
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(participant_not_found)?;
    let mut edited = person.clone();
    apply_person(&mut edited, &obj, true)?;
    *person = edited.clone();
    json_ok(StatusCode::OK, to_json(&edited))
}
