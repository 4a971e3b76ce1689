//! Drives both simulators over HTTP with raw JSON (no shared types) and checks every rule
//! and error code of contracts.md B, the main ones of A, and the controls of C.

use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use pxsync_sim::{Running, inwink, planexpo};
use reqwest::Method;
use serde_json::{Value, json};

const EVENT_ID: &str = "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b";
const SLUG: &str = "salon-sante-2026";
const API_KEY: &str = "px-sim-key";

fn client() -> reqwest::Client {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A raw answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut req = client.request(method, url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await.expect("request sent");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.expect("body read"),
    }
}

// ---------------------------------------------------------------------------------------
// inwink helpers

struct Iw {
    sim: Running,
    http: reqwest::Client,
    token: String,
}

impl Iw {
    async fn start() -> Iw {
        let sim = inwink::spawn(inwink::Options::default())
            .await
            .expect("spawn");
        let http = client();
        let mut iw = Iw {
            sim,
            http,
            token: String::new(),
        };
        iw.token = iw.new_token().await;
        iw
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    async fn new_token(&self) -> String {
        let a = self
            .token_call(&[
                ("grant_type", "client_credentials"),
                ("client_id", "pxsync-sim"),
                ("client_secret", "inwink-sim-secret"),
                ("scope", "api"),
            ])
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()["access_token"].as_str().expect("token").to_owned()
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Answer {
        let resp = self
            .http
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .expect("token call");
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            text: resp.text().await.expect("body"),
        }
    }

    /// An API call under the event (`path` starts with `/`).
    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let url = self.url(&format!("/{EVENT_ID}{path}"));
        send(&self.http, method, &url, Some(&self.token), body.as_ref()).await
    }

    async fn sim(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        send(&self.http, method, &self.url(path), None, body.as_ref()).await
    }

    async fn state(&self) -> Value {
        self.sim(Method::GET, "/_sim/state", None).await.json()
    }

    async fn faults(&self, faults: Value) {
        let a = self.sim(Method::POST, "/_sim/faults", Some(faults)).await;
        assert_eq!(a.status, 200, "{}", a.text);
    }

    async fn partner(&self, body: Value) -> Value {
        let a = self.api(Method::POST, "/exhibitor", Some(body)).await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.json()
    }

    async fn person(&self, body: Value) -> Value {
        let a = self.api(Method::POST, "/registered", Some(body)).await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.json()
    }

    async fn products(&self, body: Value) {
        let a = self.sim(Method::PUT, "/_sim/products", Some(body)).await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
}

fn acme(order: &str) -> Value {
    json!({
        "name": "Acme Médical", "status": "Published", "affiliatedToId": null,
        "emplacement": "B12", "space": "Hall 1", "aisle": "Allée C",
        "website": "https://acme.example",
        "address": {"street": "12 rue de la Paix", "street2": null, "zipCode": "75002", "city": "Paris", "country": "FR"},
        "planexpo_order_id": order, "planexpo_public_order_id": "SX24-0042"
    })
}

fn claire(email: &str) -> Value {
    json!({
        "email": email, "civility": "Mme", "lastname": "Durand", "firstname": "Claire",
        "company": "Acme Médical", "jobTitle": "Directrice marketing",
        "phone1": "+33 1 23 45 67 89", "phone2": null, "language": "fr"
    })
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

// ---------------------------------------------------------------------------------------
// B. OAuth

#[tokio::test]
async fn inwink_token_endpoint_follows_oauth_client_credentials() {
    let iw = Iw::start().await;
    let ok = iw
        .token_call(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pxsync-sim"),
            ("client_secret", "inwink-sim-secret"),
        ])
        .await;
    assert_eq!(ok.status, 200);
    let body = ok.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    // HTTP Basic client authentication.
    let basic = iw
        .http
        .post(iw.url("/oauth/token"))
        .basic_auth("pxsync-sim", Some("inwink-sim-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("sent");
    assert_eq!(basic.status(), 200);
    let token: Value = basic.json().await.expect("json");
    let basic_token = token["access_token"].as_str().expect("token").to_owned();
    let a = send(
        &iw.http,
        Method::GET,
        &iw.url(&format!("/{EVENT_ID}/product")),
        Some(&basic_token),
        None,
    )
    .await;
    assert_eq!(a.status, 200);

    let wrong = iw
        .token_call(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pxsync-sim"),
            ("client_secret", "nope"),
        ])
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "invalid_client");
    assert!(wrong.json()["error_description"].is_string());

    let wrong_basic = iw
        .http
        .post(iw.url("/oauth/token"))
        .basic_auth("pxsync-sim", Some("bad"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong_basic.status(), 401);

    let grant = iw
        .token_call(&[
            ("grant_type", "password"),
            ("client_id", "pxsync-sim"),
            ("client_secret", "inwink-sim-secret"),
        ])
        .await;
    assert_eq!(grant.status, 400);
    assert_eq!(grant.json()["error"], "unsupported_grant_type");

    // Unknown or missing bearer on an API route.
    let unknown = send(
        &iw.http,
        Method::GET,
        &iw.url(&format!("/{EVENT_ID}/product")),
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.code(), "unauthorized");
    let missing = send(
        &iw.http,
        Method::GET,
        &iw.url(&format!("/{EVENT_ID}/product")),
        None,
        None,
    )
    .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.code(), "unauthorized");
}

#[tokio::test]
async fn inwink_unknown_event_is_404_after_auth() {
    let iw = Iw::start().await;
    let other = "00000000-0000-4000-8000-000000000000";
    for (method, path, body) in [
        (Method::GET, format!("/{other}/product"), None),
        (
            Method::POST,
            format!("/{other}/exhibitor"),
            Some(acme("ord_1")),
        ),
        (Method::GET, format!("/{other}/registered/x"), None),
        (
            Method::POST,
            format!("/{other}/exhibitor/account/query"),
            Some(json!({})),
        ),
    ] {
        let a = send(
            &iw.http,
            method.clone(),
            &iw.url(&path),
            Some(&iw.token),
            body.as_ref(),
        )
        .await;
        assert_eq!(a.status, 404, "{path}");
        assert_eq!(a.code(), "event_not_found");
        let unauth = send(&iw.http, method, &iw.url(&path), None, body.as_ref()).await;
        assert_eq!(unauth.status, 401, "auth comes first on {path}");
    }
    // An unknown route of the right event: 404 with a contract body.
    let a = iw.api(Method::GET, "/nothing-here", None).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "not_found");
    assert!(a.json()["message"].is_string());
    // A wrong method gets a contract body too.
    let a = iw.api(Method::DELETE, "/product", None).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.code(), "method_not_allowed");
}

// ---------------------------------------------------------------------------------------
// B.1 Partners

#[tokio::test]
async fn inwink_partners_create_get_patch_and_validate() {
    let iw = Iw::start().await;
    let mut body = acme("ord_7QH2K");
    body["unknownField"] = json!("ignored");
    body["id"] = json!("not-taken");
    let p = iw.partner(body).await;
    let id = p["id"].as_str().expect("id").to_owned();
    assert!(is_guid(&id), "{id}");
    let mut expected = acme("ord_7QH2K");
    expected["id"] = json!(id);
    assert_eq!(p, expected, "the partner as the golden sample shows it");

    let got = iw.api(Method::GET, &format!("/exhibitor/{id}"), None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), expected);

    let missing = iw
        .api(
            Method::GET,
            "/exhibitor/3f0c2a8e-0000-4000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "partner_not_found");

    // Validation: the field name is the code.
    for (body, code) in [
        (json!({"status": "Published"}), "name"),
        (json!({"name": "   ", "status": "Published"}), "name"),
        (json!({"name": null, "status": "Published"}), "name"),
        (json!({"name": "X"}), "status"),
        (json!({"name": "X", "status": "Live"}), "status"),
        (json!({"name": "X", "status": "published"}), "status"),
        (
            json!({"name": "X", "status": "Draft", "affiliatedToId": "nope"}),
            "affiliatedToId",
        ),
        (json!({"name": 12, "status": "Draft"}), "name"),
        (
            json!({"name": "X", "status": "Draft", "address": "Paris"}),
            "address",
        ),
    ] {
        let a = iw.api(Method::POST, "/exhibitor", Some(body.clone())).await;
        assert_eq!(a.status, 400, "{body}");
        assert_eq!(a.code(), code, "{body}");
    }
    for status in ["Draft", "Preview", "Published"] {
        iw.partner(json!({"name": "S", "status": status})).await;
    }

    // Duplicate planexpo_order_id on POST.
    let dup = iw
        .api(Method::POST, "/exhibitor", Some(acme("ord_7QH2K")))
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.code(), "duplicate_key");
    assert_eq!(dup.json()["existingId"], json!(id));
    assert!(dup.json()["message"].is_string());

    // PATCH: present fields replaced, null clears, missing left, address replaced whole.
    let patched = iw
        .api(
            Method::PATCH,
            &format!("/exhibitor/{id}"),
            Some(json!({"name": "Acme Santé", "space": null, "address": {"city": "Lyon"}, "junk": 1})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let v = patched.json();
    assert_eq!(v["name"], "Acme Santé");
    assert_eq!(v["space"], Value::Null);
    assert_eq!(v["aisle"], "Allée C");
    assert_eq!(v["emplacement"], "B12");
    assert_eq!(
        v["address"],
        json!({"street": null, "street2": null, "zipCode": null, "city": "Lyon", "country": null})
    );
    assert!(v.get("junk").is_none());
    let again = iw
        .api(Method::GET, &format!("/exhibitor/{id}"), None)
        .await
        .json();
    assert_eq!(again, v);

    // PATCH rules.
    let other = iw.partner(acme("ord_OTHER")).await;
    let other_id = other["id"].as_str().expect("id").to_owned();
    let self_aff = iw
        .api(
            Method::PATCH,
            &format!("/exhibitor/{id}"),
            Some(json!({"affiliatedToId": id})),
        )
        .await;
    assert_eq!(self_aff.status, 400);
    assert_eq!(self_aff.code(), "affiliatedToId");
    let unknown_aff = iw
        .api(
            Method::PATCH,
            &format!("/exhibitor/{id}"),
            Some(json!({"affiliatedToId": "3f0c2a8e-0000-4000-8000-000000000000"})),
        )
        .await;
    assert_eq!(unknown_aff.status, 400);
    assert_eq!(unknown_aff.code(), "affiliatedToId");
    let aff = iw
        .api(
            Method::PATCH,
            &format!("/exhibitor/{other_id}"),
            Some(json!({"affiliatedToId": id})),
        )
        .await;
    assert_eq!(aff.status, 200);
    assert_eq!(aff.json()["affiliatedToId"], json!(id));
    let dup_patch = iw
        .api(
            Method::PATCH,
            &format!("/exhibitor/{other_id}"),
            Some(json!({"planexpo_order_id": "ord_7QH2K"})),
        )
        .await;
    assert_eq!(dup_patch.status, 409);
    assert_eq!(dup_patch.code(), "duplicate_key");
    assert_eq!(dup_patch.json()["existingId"], json!(id));
    // Its own key again is no conflict.
    let same = iw
        .api(
            Method::PATCH,
            &format!("/exhibitor/{id}"),
            Some(json!({"planexpo_order_id": "ord_7QH2K"})),
        )
        .await;
    assert_eq!(same.status, 200);
    for (body, code) in [
        (json!({"name": ""}), "name"),
        (json!({"status": "Gone"}), "status"),
        (json!({"status": null}), "status"),
    ] {
        let a = iw
            .api(
                Method::PATCH,
                &format!("/exhibitor/{id}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(a.status, 400, "{body}");
        assert_eq!(a.code(), code);
    }
    let nf = iw
        .api(
            Method::PATCH,
            "/exhibitor/3f0c2a8e-0000-4000-8000-000000000000",
            Some(json!({"name": "Y"})),
        )
        .await;
    assert_eq!(nf.status, 404);
    assert_eq!(nf.code(), "partner_not_found");

    // A rejected PATCH changed nothing.
    let after = iw
        .api(Method::GET, &format!("/exhibitor/{id}"), None)
        .await
        .json();
    assert_eq!(after["name"], "Acme Santé");

    // Bad JSON and non-object bodies.
    let raw = iw
        .http
        .post(iw.url(&format!("/{EVENT_ID}/exhibitor")))
        .bearer_auth(&iw.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(raw.status(), 400);
    let v: Value = raw.json().await.expect("json error body");
    assert_eq!(v["code"], "invalid_json");
    let arr = iw
        .api(Method::POST, "/exhibitor", Some(json!([1, 2])))
        .await;
    assert_eq!(arr.status, 400);
    assert!(arr.json()["message"].is_string());
}

#[tokio::test]
async fn inwink_partner_query_filters_and_pages() {
    let iw = Iw::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let p = iw.partner(acme(&format!("ord_{i}"))).await;
        ids.push(p["id"].as_str().expect("id").to_owned());
    }
    iw.partner(json!({"name": "No key", "status": "Draft"}))
        .await;

    let q = iw
        .api(
            Method::POST,
            "/exhibitor/query",
            Some(json!({"filters": {"planexpo_order_id": "ord_3"}, "page": {"index": 0, "size": 100}})),
        )
        .await;
    assert_eq!(q.status, 200);
    let v = q.json();
    assert_eq!(v["totalCount"], 1);
    assert_eq!(v["data"][0]["id"], json!(ids[3]));
    assert_eq!(v["data"][0]["planexpo_order_id"], "ord_3");

    let none = iw
        .api(
            Method::POST,
            "/exhibitor/query",
            Some(json!({"filters": {"planexpo_order_id": "ord_X"}})),
        )
        .await
        .json();
    assert_eq!(none, json!({"data": [], "totalCount": 0}));

    // Paging by index over the 5 with the same public id.
    let mut seen = Vec::new();
    for (index, expected) in [(0, 2), (1, 2), (2, 1), (3, 0)] {
        let page = iw
            .api(
                Method::POST,
                "/exhibitor/query",
                Some(json!({"filters": {"planexpo_public_order_id": "SX24-0042"}, "page": {"index": index, "size": 2}})),
            )
            .await
            .json();
        assert_eq!(page["totalCount"], 5);
        let data = page["data"].as_array().expect("data");
        assert_eq!(data.len(), expected);
        seen.extend(
            data.iter()
                .map(|p| p["id"].as_str().expect("id").to_owned()),
        );
    }
    assert_eq!(seen, ids);

    let all = iw
        .api(Method::POST, "/exhibitor/query", Some(json!({})))
        .await
        .json();
    assert_eq!(all["totalCount"], 6);

    for page in [
        json!({"index": 0, "size": 0}),
        json!({"index": 0, "size": 101}),
        json!({"index": -1, "size": 10}),
        json!({"size": "10"}),
        json!("all"),
    ] {
        let a = iw
            .api(
                Method::POST,
                "/exhibitor/query",
                Some(json!({"filters": {}, "page": page})),
            )
            .await;
        assert_eq!(a.status, 400, "{page}");
        assert_eq!(a.code(), "page");
    }
    let max = iw
        .api(
            Method::POST,
            "/exhibitor/query",
            Some(json!({"page": {"index": 0, "size": 100}})),
        )
        .await;
    assert_eq!(max.status, 200);
}

// ---------------------------------------------------------------------------------------
// B.2 Participants

#[tokio::test]
async fn inwink_participants_email_rules_and_categories() {
    let iw = Iw::start().await;
    let mut body = claire("Claire.Durand@acme.example");
    body["categories"] = json!(["VIP"]);
    let p = iw.person(body).await;
    let id = p["id"].as_str().expect("id").to_owned();
    assert!(is_guid(&id));
    let mut expected = claire("Claire.Durand@acme.example");
    expected["id"] = json!(id);
    expected["categories"] = json!([]);
    assert_eq!(
        p, expected,
        "categories are managed by inwink, ignored on creation"
    );

    for (body, code) in [
        (json!({"lastname": "X"}), "email"),
        (json!({"email": null}), "email"),
        (json!({"email": "no-at-sign"}), "email"),
        (json!({"email": ""}), "email"),
        (json!({"email": 42}), "email"),
    ] {
        let a = iw
            .api(Method::POST, "/registered", Some(body.clone()))
            .await;
        assert_eq!(a.status, 400, "{body}");
        assert_eq!(a.code(), code);
    }
    let dup = iw
        .api(
            Method::POST,
            "/registered",
            Some(claire("claire.durand@ACME.example")),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.code(), "duplicate_key");
    assert_eq!(dup.json()["existingId"], json!(id));
    assert!(
        !dup.json()["message"]
            .as_str()
            .expect("message")
            .contains("claire"),
        "no personal data in messages"
    );

    let got = iw
        .api(Method::GET, &format!("/registered/{id}"), None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), expected);
    let nf = iw
        .api(
            Method::GET,
            "/registered/3f0c2a8e-0000-4000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(nf.status, 404);
    assert_eq!(nf.code(), "participant_not_found");

    let q = iw
        .api(
            Method::POST,
            "/registered/query",
            Some(json!({"filters": {"email": "CLAIRE.durand@acme.EXAMPLE"}, "page": {"index": 0, "size": 10}})),
        )
        .await
        .json();
    assert_eq!(q["totalCount"], 1);
    assert_eq!(q["data"][0]["id"], json!(id));

    // PATCH: merge rules, explicit categories, e-mail rules.
    let patched = iw
        .api(
            Method::PATCH,
            &format!("/registered/{id}"),
            Some(json!({"phone2": "+33 6 11 22 33 44", "jobTitle": null, "categories": ["Exhibitor", "VIP"]})),
        )
        .await;
    assert_eq!(patched.status, 200);
    let v = patched.json();
    assert_eq!(v["phone2"], "+33 6 11 22 33 44");
    assert_eq!(v["jobTitle"], Value::Null);
    assert_eq!(v["firstname"], "Claire");
    assert_eq!(v["categories"], json!(["Exhibitor", "VIP"]));
    let wipe = iw
        .api(
            Method::PATCH,
            &format!("/registered/{id}"),
            Some(json!({"categories": []})),
        )
        .await
        .json();
    assert_eq!(wipe["categories"], json!([]));

    let other = iw.person(claire("paul@acme.example")).await;
    let other_id = other["id"].as_str().expect("id").to_owned();
    let dup_patch = iw
        .api(
            Method::PATCH,
            &format!("/registered/{other_id}"),
            Some(json!({"email": "CLAIRE.DURAND@acme.example"})),
        )
        .await;
    assert_eq!(dup_patch.status, 409);
    assert_eq!(dup_patch.json()["existingId"], json!(id));
    let bad = iw
        .api(
            Method::PATCH,
            &format!("/registered/{other_id}"),
            Some(json!({"email": "paul"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "email");
    let case_only = iw
        .api(
            Method::PATCH,
            &format!("/registered/{id}"),
            Some(json!({"email": "claire.durand@acme.example"})),
        )
        .await;
    assert_eq!(
        case_only.status, 200,
        "its own e-mail in another case is no conflict"
    );
    let nf = iw
        .api(
            Method::PATCH,
            "/registered/3f0c2a8e-0000-4000-8000-000000000000",
            Some(json!({})),
        )
        .await;
    assert_eq!(nf.status, 404);
    assert_eq!(nf.code(), "participant_not_found");
}

// ---------------------------------------------------------------------------------------
// B.3 Team members

#[tokio::test]
async fn inwink_team_members_link_and_add_the_exhibitor_category() {
    let iw = Iw::start().await;
    let partner = iw.partner(acme("ord_A")).await;
    let pid = partner["id"].as_str().expect("id").to_owned();
    let person = iw.person(claire("claire@acme.example")).await;
    let rid = person["id"].as_str().expect("id").to_owned();

    let link = iw
        .api(
            Method::POST,
            "/exhibitor/account",
            Some(json!({"exhibitorId": pid, "registeredId": rid, "roles": ["Admin"]})),
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.text);
    let member = link.json();
    let mid = member["id"].as_str().expect("id").to_owned();
    assert!(is_guid(&mid));
    assert_eq!(
        member,
        json!({"id": mid, "exhibitorId": pid, "registeredId": rid, "roles": ["Admin"]})
    );
    let person = iw
        .api(Method::GET, &format!("/registered/{rid}"), None)
        .await
        .json();
    assert_eq!(person["categories"], json!(["Exhibitor"]));

    let dup = iw
        .api(
            Method::POST,
            "/exhibitor/account",
            Some(json!({"exhibitorId": pid, "registeredId": rid, "roles": ["Admin"]})),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.code(), "duplicate_key");
    assert_eq!(dup.json()["existingId"], json!(mid));

    let nobody = "3f0c2a8e-0000-4000-8000-000000000000";
    let a = iw
        .api(
            Method::POST,
            "/exhibitor/account",
            Some(json!({"exhibitorId": nobody, "registeredId": nobody, "roles": []})),
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.code(),
        "partner_not_found",
        "the partner is checked first"
    );
    let a = iw
        .api(
            Method::POST,
            "/exhibitor/account",
            Some(json!({"exhibitorId": pid, "registeredId": nobody, "roles": []})),
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "participant_not_found");
    let a = iw
        .api(
            Method::POST,
            "/exhibitor/account",
            Some(json!({"registeredId": rid})),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "exhibitorId");

    let got = iw
        .api(Method::GET, &format!("/exhibitor/account/{mid}"), None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), member);
    let nf = iw
        .api(Method::GET, &format!("/exhibitor/account/{nobody}"), None)
        .await;
    assert_eq!(nf.status, 404);
    assert_eq!(nf.code(), "team_member_not_found");

    // A second partner with the same person; queries by exhibitorId.
    let p2 = iw.partner(acme("ord_B")).await;
    let pid2 = p2["id"].as_str().expect("id").to_owned();
    let l2 = iw
        .api(
            Method::POST,
            "/exhibitor/account",
            Some(json!({"exhibitorId": pid2, "registeredId": rid, "roles": ["Admin"]})),
        )
        .await;
    assert_eq!(l2.status, 201);
    let person = iw
        .api(Method::GET, &format!("/registered/{rid}"), None)
        .await
        .json();
    assert_eq!(person["categories"], json!(["Exhibitor"]), "added once");
    let q = iw
        .api(
            Method::POST,
            "/exhibitor/account/query",
            Some(json!({"filters": {"exhibitorId": pid}, "page": {"index": 0, "size": 100}})),
        )
        .await
        .json();
    assert_eq!(q, json!({"data": [member], "totalCount": 1}));
    let by_person = iw
        .api(
            Method::POST,
            "/exhibitor/account/query",
            Some(json!({"filters": {"registeredId": rid}})),
        )
        .await
        .json();
    assert_eq!(by_person["totalCount"], 2);
    let bad = iw
        .api(
            Method::POST,
            "/exhibitor/account/query",
            Some(json!({"page": {"size": 500}})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "page");
}

// ---------------------------------------------------------------------------------------
// B.4 Partner products

#[tokio::test]
async fn inwink_partner_products_never_decrease() {
    let iw = Iw::start().await;
    let banner = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a";
    let wifi = "1a2b3c4d-0000-4000-8000-000000000001";
    // A bare array is accepted as well as {"data": [...]}.
    iw.products(json!([{"id": banner, "name": "Bannière 2x1 m"}]))
        .await;
    iw.products(json!({"data": [{"id": banner, "name": "Bannière 2x1 m"}, {"id": wifi, "name": "Wi-Fi stand"}]}))
        .await;
    let list = iw.api(Method::GET, "/product", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json(),
        json!({"data": [{"id": banner, "name": "Bannière 2x1 m"}, {"id": wifi, "name": "Wi-Fi stand"}]})
    );
    let bad = iw
        .sim(
            Method::PUT,
            "/_sim/products",
            Some(json!({"data": [{"name": "x"}]})),
        )
        .await;
    assert_eq!(bad.status, 400);

    let p = iw.partner(acme("ord_P")).await;
    let pid = p["id"].as_str().expect("id").to_owned();
    let nobody = "3f0c2a8e-0000-4000-8000-000000000000";

    let a = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{nobody}/products/nope"),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.code(),
        "partner_not_found",
        "partner checked before product"
    );
    let a = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{pid}/products/nope"),
            Some(json!({"quantity": -3})),
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.code(),
        "product_not_found",
        "product checked before the quantity"
    );
    for q in [json!(-1), json!(2.5), json!("3"), json!(null)] {
        let a = iw
            .api(
                Method::PUT,
                &format!("/exhibitor/{pid}/products/{banner}"),
                Some(json!({"quantity": q})),
            )
            .await;
        assert_eq!(a.status, 400, "{q}");
        assert_eq!(a.code(), "quantity");
    }
    let a = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{pid}/products/{banner}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(a.code(), "quantity");

    let empty = iw
        .api(Method::GET, &format!("/exhibitor/{pid}/products"), None)
        .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json(), json!({"data": []}));

    let set = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{pid}/products/{banner}"),
            Some(json!({"quantity": 10})),
        )
        .await;
    assert_eq!(set.status, 200);
    let zero = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{pid}/products/{wifi}"),
            Some(json!({"quantity": 0})),
        )
        .await;
    assert_eq!(
        zero.status, 200,
        "0 on a never-set product is equal: a no-op"
    );
    let equal = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{pid}/products/{banner}"),
            Some(json!({"quantity": 10})),
        )
        .await;
    assert_eq!(equal.status, 200);
    let down = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{pid}/products/{banner}"),
            Some(json!({"quantity": 5})),
        )
        .await;
    assert_eq!(down.status, 400);
    assert_eq!(down.code(), "quantity_decrease");
    assert_eq!(down.json()["current"], 10);
    let up = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{pid}/products/{banner}"),
            Some(json!({"quantity": 12})),
        )
        .await;
    assert_eq!(up.status, 200);

    let got = iw
        .api(Method::GET, &format!("/exhibitor/{pid}/products"), None)
        .await
        .json();
    assert_eq!(
        got,
        json!({"data": [{"productId": banner, "quantity": 12}]})
    );
    let nf = iw
        .api(Method::GET, &format!("/exhibitor/{nobody}/products"), None)
        .await;
    assert_eq!(nf.status, 404);
    assert_eq!(nf.code(), "partner_not_found");

    // Even a decrease lost to a fault is counted.
    iw.faults(json!({"error_rate": 1.0})).await;
    let faulted = iw
        .api(
            Method::PUT,
            &format!("/exhibitor/{pid}/products/{banner}"),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert!(faulted.status >= 500);
    iw.faults(json!({})).await;

    let state = iw.state().await;
    assert_eq!(state["quantity_decrease_attempts"], 2);
    assert_eq!(state["partners"][0]["products"], json!({ banner: 12 }));
    assert_eq!(state["products"].as_array().expect("products").len(), 2);
}

// ---------------------------------------------------------------------------------------
// C. Manual deletes and edits

#[tokio::test]
async fn inwink_manual_delete_cascades_and_manual_edits_skip_validation() {
    let iw = Iw::start().await;
    let banner = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a";
    iw.products(json!({"data": [{"id": banner, "name": "Bannière 2x1 m"}]}))
        .await;
    let parent = iw.partner(acme("ord_PARENT")).await;
    let pid = parent["id"].as_str().expect("id").to_owned();
    let mut child_body = acme("ord_CHILD");
    child_body["affiliatedToId"] = json!(pid);
    let child = iw.partner(child_body).await;
    let cid = child["id"].as_str().expect("id").to_owned();
    let person = iw.person(claire("claire@acme.example")).await;
    let rid = person["id"].as_str().expect("id").to_owned();
    let link = iw
        .api(
            Method::POST,
            "/exhibitor/account",
            Some(json!({"exhibitorId": pid, "registeredId": rid, "roles": ["Admin"]})),
        )
        .await
        .json();
    let mid = link["id"].as_str().expect("id").to_owned();
    let child_link = iw
        .api(
            Method::POST,
            "/exhibitor/account",
            Some(json!({"exhibitorId": cid, "registeredId": rid, "roles": ["Admin"]})),
        )
        .await
        .json();
    let cmid = child_link["id"].as_str().expect("id").to_owned();
    iw.api(
        Method::PUT,
        &format!("/exhibitor/{pid}/products/{banner}"),
        Some(json!({"quantity": 4})),
    )
    .await;

    let calls_before = iw.sim(Method::GET, "/_sim/calls", None).await.json()["calls"]
        .as_array()
        .expect("calls")
        .len();

    // A hand edit: no validation, merge rules, not logged.
    let edit = iw
        .sim(
            Method::PATCH,
            &format!("/_sim/exhibitor/{cid}"),
            Some(json!({"name": "", "status": "Weird", "website": null})),
        )
        .await;
    assert_eq!(edit.status, 200);
    assert_eq!(edit.json()["name"], "");
    assert_eq!(edit.json()["status"], "Weird");
    assert_eq!(edit.json()["website"], Value::Null);
    assert_eq!(edit.json()["emplacement"], "B12");
    let pedit = iw
        .sim(
            Method::PATCH,
            &format!("/_sim/registered/{rid}"),
            Some(json!({"lastname": "Martin", "categories": []})),
        )
        .await;
    assert_eq!(pedit.status, 200);
    assert_eq!(pedit.json()["lastname"], "Martin");
    assert_eq!(pedit.json()["categories"], json!([]));
    assert_eq!(pedit.json()["email"], "claire@acme.example");

    let del = iw
        .sim(Method::DELETE, &format!("/_sim/exhibitor/{pid}"), None)
        .await;
    assert_eq!(del.status, 204);
    let gone = iw
        .api(Method::GET, &format!("/exhibitor/{pid}"), None)
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.code(), "partner_not_found");
    let link_gone = iw
        .api(Method::GET, &format!("/exhibitor/account/{mid}"), None)
        .await;
    assert_eq!(link_gone.code(), "team_member_not_found");
    let products_gone = iw
        .api(Method::GET, &format!("/exhibitor/{pid}/products"), None)
        .await;
    assert_eq!(products_gone.code(), "partner_not_found");
    let child_now = iw
        .api(Method::GET, &format!("/exhibitor/{cid}"), None)
        .await
        .json();
    assert_eq!(
        child_now["affiliatedToId"],
        json!(pid),
        "dangling link kept"
    );
    let person_now = iw
        .api(Method::GET, &format!("/registered/{rid}"), None)
        .await;
    assert_eq!(person_now.status, 200, "the person stays");
    // The same order id can be created again.
    let again = iw
        .api(Method::POST, "/exhibitor", Some(acme("ord_PARENT")))
        .await;
    assert_eq!(again.status, 201);
    let again_del = iw
        .sim(Method::DELETE, &format!("/_sim/exhibitor/{pid}"), None)
        .await;
    assert_eq!(again_del.status, 404);

    let pdel = iw
        .sim(Method::DELETE, &format!("/_sim/registered/{rid}"), None)
        .await;
    assert_eq!(pdel.status, 204);
    let pgone = iw
        .api(Method::GET, &format!("/registered/{rid}"), None)
        .await;
    assert_eq!(pgone.code(), "participant_not_found");
    let clink = iw
        .api(Method::GET, &format!("/exhibitor/account/{cmid}"), None)
        .await;
    assert_eq!(clink.code(), "team_member_not_found");

    let state = iw.state().await;
    assert_eq!(state["event_id"], EVENT_ID);
    assert_eq!(state["team_members"], json!([]));
    assert_eq!(state["participants"], json!([]));
    assert_eq!(state["partners"].as_array().expect("partners").len(), 2);

    // /_sim/ routes are never logged: only the 8 API calls since `calls_before`.
    let calls = iw.sim(Method::GET, "/_sim/calls", None).await.json();
    let paths: Vec<&str> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .skip(calls_before)
        .map(|c| c["path"].as_str().expect("path"))
        .collect();
    assert!(paths.iter().all(|p| !p.starts_with("/_sim")), "{paths:?}");
    assert_eq!(paths.len(), 8, "{paths:?}");
}

// ---------------------------------------------------------------------------------------
// C. Call log and faults

#[tokio::test]
async fn inwink_call_log_records_every_api_call_with_since() {
    let iw = Iw::start().await;
    iw.partner(acme("ord_LOG")).await;
    let _ = send(
        &iw.http,
        Method::GET,
        &iw.url(&format!("/{EVENT_ID}/product?x=1")),
        Some("bad"),
        None,
    )
    .await;
    let _ = iw.sim(Method::GET, "/_sim/state", None).await;

    let all = iw.sim(Method::GET, "/_sim/calls", None).await.json();
    let calls = all["calls"].as_array().expect("calls").clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0]["seq"], 1);
    assert_eq!(calls[0]["method"], "POST");
    assert_eq!(calls[0]["path"], "/oauth/token");
    assert_eq!(calls[0]["status"], 200);
    assert_eq!(
        calls[0]["body"],
        json!({"grant_type": "client_credentials", "client_id": "pxsync-sim", "client_secret": "***", "scope": "api"})
    );
    assert!(!all.to_string().contains("inwink-sim-secret"));
    assert_eq!(calls[1]["path"], format!("/{EVENT_ID}/exhibitor"));
    assert_eq!(calls[1]["status"], 201);
    assert_eq!(calls[1]["body"]["planexpo_order_id"], "ord_LOG");
    assert!(calls[1]["time"].as_str().expect("time").ends_with('Z'));
    assert_eq!(calls[2]["path"], format!("/{EVENT_ID}/product?x=1"));
    assert_eq!(calls[2]["status"], 401);
    assert_eq!(calls[2]["body"], Value::Null);

    let since = iw
        .sim(Method::GET, "/_sim/calls?since=2", None)
        .await
        .json();
    assert_eq!(since["calls"].as_array().expect("calls").len(), 1);
    assert_eq!(since["calls"][0]["seq"], 3);
    let bad = iw.sim(Method::GET, "/_sim/calls?since=abc", None).await;
    assert_eq!(bad.status, 400);

    let cleared = iw.sim(Method::DELETE, "/_sim/calls", None).await;
    assert_eq!(cleared.status, 204);
    assert_eq!(
        iw.sim(Method::GET, "/_sim/calls", None).await.json(),
        json!({"calls": []})
    );
    iw.api(Method::GET, "/product", None).await;
    let after = iw.sim(Method::GET, "/_sim/calls", None).await.json();
    assert_eq!(
        after["calls"][0]["seq"], 4,
        "sequence numbers keep increasing"
    );
}

#[tokio::test]
async fn inwink_faults_error_rate_garbage_and_after_effect() {
    let iw = Iw::start().await;
    iw.faults(json!({"error_rate": 1.0})).await;
    let current = iw.sim(Method::GET, "/_sim/faults", None).await;
    assert_eq!(current.status, 200, "/_sim/ routes are never faulted");
    assert_eq!(current.json()["error_rate"], 1.0);
    assert_eq!(current.json()["rate_limit_per_s"], 0);
    let mut saw = std::collections::HashSet::new();
    for _ in 0..12 {
        let a = iw
            .api(Method::POST, "/exhibitor", Some(acme("ord_F")))
            .await;
        assert!(a.status == 500 || a.status == 503, "{}", a.status);
        assert!(!a.code().is_empty());
        if let Some(ra) = a.headers.get("retry-after") {
            assert_eq!(a.status, 503);
            assert_eq!(ra, "1");
        }
        saw.insert(a.status);
    }
    assert!(!saw.is_empty());
    let token = iw
        .token_call(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pxsync-sim"),
            ("client_secret", "inwink-sim-secret"),
        ])
        .await;
    assert!(token.status >= 500, "the token endpoint is faulted too");
    assert!(token.json()["error"].is_string());
    assert_eq!(
        iw.state().await["partners"],
        json!([]),
        "nothing applied before the error"
    );

    // Garbage: a 200 that is not JSON, the effect applied.
    iw.faults(json!({"garbage_rate": 1.0})).await;
    let g = iw
        .api(Method::POST, "/exhibitor", Some(acme("ord_G")))
        .await;
    assert_eq!(g.status, 200);
    assert!(
        serde_json::from_str::<Value>(&g.text).is_err(),
        "{}",
        g.text
    );
    assert_eq!(
        iw.state().await["partners"][0]["planexpo_order_id"],
        "ord_G"
    );

    // After the effect: a 500 but the write happened.
    iw.faults(json!({"after_effect_error_rate": 1.0})).await;
    let a = iw
        .api(Method::POST, "/exhibitor", Some(acme("ord_H")))
        .await;
    assert_eq!(a.status, 500);
    assert!(!a.code().is_empty());
    iw.faults(json!({})).await;
    let retry = iw
        .api(Method::POST, "/exhibitor", Some(acme("ord_H")))
        .await;
    assert_eq!(retry.status, 409, "the first attempt was applied");
    assert_eq!(
        iw.sim(Method::GET, "/_sim/faults", None).await.json()["after_effect_error_rate"],
        0.0
    );

    let bad = iw
        .sim(Method::POST, "/_sim/faults", Some(json!({"error_rate": 3})))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "error_rate");

    // Statuses in the log are the ones answered.
    let calls = iw.sim(Method::GET, "/_sim/calls", None).await.json();
    let statuses: Vec<u64> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["status"].as_u64().expect("status"))
        .collect();
    assert!(statuses.contains(&503) || statuses.contains(&500));
    assert!(statuses.contains(&409));
}

#[tokio::test]
async fn inwink_rate_limit_answers_429_with_retry_after() {
    let iw = Iw::start().await;
    iw.faults(json!({"rate_limit_per_s": 3})).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let a = iw.api(Method::GET, "/product", None).await;
        if a.status == 429 {
            assert_eq!(a.code(), "rate_limited");
            retry_after = a
                .headers
                .get("retry-after")
                .map(|v| v.to_str().expect("ascii").to_owned());
        }
        statuses.push(a.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429));
    let secs: u64 = retry_after
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(secs >= 1);
    // The token endpoint is not rate-limited, unauthenticated calls do not count.
    for _ in 0..5 {
        let t = iw
            .token_call(&[
                ("grant_type", "client_credentials"),
                ("client_id", "pxsync-sim"),
                ("client_secret", "inwink-sim-secret"),
            ])
            .await;
        assert_eq!(t.status, 200);
    }
    iw.faults(json!({"rate_limit_per_s": 0})).await;
    for _ in 0..10 {
        assert_eq!(iw.api(Method::GET, "/product", None).await.status, 200);
    }
}

#[tokio::test]
async fn inwink_token_ttl_fault_makes_tokens_expire() {
    let iw = Iw::start().await;
    iw.faults(json!({"token_ttl_s": 1, "latency_ms": 150}))
        .await;
    let started = Instant::now();
    let a = iw
        .token_call(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pxsync-sim"),
            ("client_secret", "inwink-sim-secret"),
        ])
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "latency applies to the token call"
    );
    assert_eq!(a.json()["expires_in"], 1);
    let short = a.json()["access_token"].as_str().expect("token").to_owned();
    let url = iw.url(&format!("/{EVENT_ID}/product"));
    assert_eq!(
        send(&iw.http, Method::GET, &url, Some(&short), None)
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = send(&iw.http, Method::GET, &url, Some(&short), None).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.code(), "unauthorized");
    // The token taken before the fault keeps its hour.
    assert_eq!(
        send(&iw.http, Method::GET, &url, Some(&iw.token), None)
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------
// A. Planexpo

struct Px {
    sim: Running,
    http: reqwest::Client,
}

impl Px {
    async fn start() -> Px {
        Px {
            sim: planexpo::spawn(planexpo::Options::default())
                .await
                .expect("spawn"),
            http: client(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    async fn api(&self, path: &str) -> Answer {
        let url = self.url(&format!("/api/v1/events/{SLUG}{path}"));
        send(&self.http, Method::GET, &url, Some(API_KEY), None).await
    }

    async fn sim(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        send(&self.http, method, &self.url(path), None, body.as_ref()).await
    }

    async fn put_order(&self, id: &str, order: Value, updated_at: Option<&str>) -> Value {
        let path = match updated_at {
            Some(t) => format!("/_sim/orders/{id}?updated_at={}", t.replace('+', "%2B")),
            None => format!("/_sim/orders/{id}"),
        };
        let a = self.sim(Method::PUT, &path, Some(order)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()
    }

    /// Reads the whole feed page by page; returns the orders and the number of pages.
    async fn read_feed(&self, first_query: &str) -> (Vec<Value>, usize) {
        let mut orders = Vec::new();
        let mut query = first_query.to_owned();
        let mut pages = 0;
        loop {
            let a = self.api(&format!("/orders?{query}")).await;
            assert_eq!(a.status, 200, "{}", a.text);
            pages += 1;
            let v = a.json();
            orders.extend(v["orders"].as_array().expect("orders").iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => query = format!("cursor={c}&limit=3"),
                None => break,
            }
            assert!(pages < 100);
        }
        (orders, pages)
    }
}

fn order_body(status: &str) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../proto/golden/planexpo/order.json"
    ))
    .expect("golden order");
    let mut v: Value = serde_json::from_str(&text).expect("json");
    v["status"] = json!(status);
    v
}

#[tokio::test]
async fn planexpo_auth_and_not_found() {
    let px = Px::start().await;
    let url = px.url(&format!("/api/v1/events/{SLUG}/orders"));
    let none = send(&px.http, Method::GET, &url, None, None).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.code(), "unauthorized");
    let wrong = send(&px.http, Method::GET, &url, Some("nope"), None).await;
    assert_eq!(wrong.status, 401);
    let ok = px.api("/orders").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), json!({"orders": [], "next_cursor": null}));

    for path in ["/orders", "/orders/ord_X", "/catalog"] {
        let a = send(
            &px.http,
            Method::GET,
            &px.url(&format!("/api/v1/events/other-event{path}")),
            Some(API_KEY),
            None,
        )
        .await;
        assert_eq!(a.status, 404, "{path}");
        assert_eq!(a.code(), "event_not_found");
    }
    let nf = px.api("/orders/ord_NEVER").await;
    assert_eq!(nf.status, 404);
    assert_eq!(
        nf.json(),
        json!({"code": "order_not_found", "message": "no order with this id in this event"})
    );
}

#[tokio::test]
async fn planexpo_orders_revisions_tombstones_and_revival() {
    let px = Px::start().await;
    let mut body = order_body("submitted");
    body["id"] = json!("ord_SOMETHING_ELSE");
    body["revision"] = json!(99);
    let stored = px
        .put_order("ord_7QH2K", body, Some("2026-03-02T11:00:00+01:00"))
        .await;
    assert_eq!(stored["id"], "ord_7QH2K", "the path id wins");
    assert_eq!(stored["revision"], 1);
    assert_eq!(stored["event"], SLUG);
    assert_eq!(stored["updated_at"], "2026-03-02T10:00:00Z");
    assert_eq!(stored["booking_contact"]["first_name"], "Claire");

    let again = px
        .put_order("ord_7QH2K", order_body("validated"), None)
        .await;
    assert_eq!(again["revision"], 2);
    let t = again["updated_at"].as_str().expect("time");
    assert!(t.ends_with('Z') && !t.contains('.'), "{t}");
    let got = px.api("/orders/ord_7QH2K").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), again);

    let del = px.sim(Method::DELETE, "/_sim/orders/ord_7QH2K", None).await;
    assert_eq!(del.status, 200);
    let tomb = del.json();
    assert_eq!(tomb["status"], "deleted");
    assert_eq!(tomb["revision"], 3);
    assert_eq!(
        tomb.as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec!["event", "id", "revision", "status", "updated_at"]
    );
    let got = px.api("/orders/ord_7QH2K").await;
    assert_eq!(got.status, 200, "a tombstone is served");
    assert_eq!(got.json(), tomb);
    let feed = px.api("/orders").await.json();
    assert_eq!(feed["orders"], json!([tomb]));
    let nf = px.sim(Method::DELETE, "/_sim/orders/ord_NEVER", None).await;
    assert_eq!(nf.status, 404);
    assert_eq!(nf.code(), "order_not_found");

    let back = px
        .put_order("ord_7QH2K", order_body("validated"), None)
        .await;
    assert_eq!(back["revision"], 4, "revisions continue");
    assert_eq!(back["status"], "validated");

    // Malformed orders are stored and served as they are.
    let bad = px
        .put_order(
            "ord_BAD",
            json!({"status": "validated", "company": {"name": ""}, "lines": "oops"}),
            None,
        )
        .await;
    assert_eq!(bad["lines"], "oops");
    assert_eq!(px.api("/orders/ord_BAD").await.json(), bad);
    let not_obj = px
        .sim(Method::PUT, "/_sim/orders/ord_X", Some(json!([1])))
        .await;
    assert_eq!(not_obj.status, 400);
    let bad_time = px
        .sim(
            Method::PUT,
            "/_sim/orders/ord_X?updated_at=yesterday",
            Some(json!({})),
        )
        .await;
    assert_eq!(bad_time.status, 400);
    assert_eq!(bad_time.code(), "updated_at");

    let state = px.sim(Method::GET, "/_sim/state", None).await.json();
    assert_eq!(state["event"], SLUG);
    assert_eq!(state["orders"].as_array().expect("orders").len(), 2);
    assert_eq!(state["webhook"], Value::Null);
    assert!(state["catalog"]["products"].is_array());
}

#[tokio::test]
async fn planexpo_feed_pages_with_cursors_and_validates_its_query() {
    let px = Px::start().await;
    // 7 orders sharing one updated_at, inserted out of id order, plus 2 earlier, 1 later.
    let shared = "2026-03-02T10:00:00Z";
    for id in [
        "ord_G", "ord_C", "ord_A", "ord_F", "ord_B", "ord_E", "ord_D",
    ] {
        px.put_order(id, order_body("validated"), Some(shared))
            .await;
    }
    px.put_order("ord_Z", order_body("draft"), Some("2026-03-01T08:00:00Z"))
        .await;
    px.put_order(
        "ord_Y",
        order_body("draft"),
        Some("2026-03-01T09:00:00+02:00"),
    )
    .await;
    px.put_order("ord_0", order_body("draft"), Some("2026-03-03T00:00:00Z"))
        .await;

    let (orders, pages) = px.read_feed("limit=3").await;
    assert_eq!(pages, 4);
    let ids: Vec<&str> = orders
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "ord_Y", "ord_Z", "ord_A", "ord_B", "ord_C", "ord_D", "ord_E", "ord_F", "ord_G",
            "ord_0"
        ]
    );

    // updated_since is inclusive.
    let (since, _) = px
        .read_feed("updated_since=2026-03-02T11%3A00%3A00%2B01%3A00&limit=3")
        .await;
    let ids: Vec<&str> = since
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "ord_A", "ord_B", "ord_C", "ord_D", "ord_E", "ord_F", "ord_G", "ord_0"
        ]
    );

    // A full last page has a null cursor.
    let exact = px.api("/orders?limit=10").await.json();
    assert_eq!(exact["orders"].as_array().expect("orders").len(), 10);
    assert_eq!(exact["next_cursor"], Value::Null);
    let default = px.api("/orders").await.json();
    assert_eq!(default["orders"].as_array().expect("orders").len(), 10);

    // An order changed between two pages comes back later, in its new place.
    let first = px.api("/orders?limit=3").await.json();
    let cursor = first["next_cursor"].as_str().expect("cursor").to_owned();
    px.put_order("ord_A", order_body("refused"), Some("2026-03-04T00:00:00Z"))
        .await;
    let (rest, _) = px.read_feed(&format!("cursor={cursor}&limit=3")).await;
    let ids: Vec<&str> = rest.iter().map(|o| o["id"].as_str().expect("id")).collect();
    assert_eq!(
        ids,
        [
            "ord_B", "ord_C", "ord_D", "ord_E", "ord_F", "ord_G", "ord_0", "ord_A"
        ]
    );

    // The cursor wins over updated_since (even a bad one).
    let wins = px
        .api(&format!(
            "/orders?cursor={cursor}&updated_since=garbage&limit=500"
        ))
        .await;
    assert_eq!(wins.status, 200);
    assert_eq!(wins.json()["orders"][0]["id"], "ord_B");

    for (query, code) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("updated_since=2026-03-02", "updated_since"),
        ("updated_since=2026-03-02T10:00:00", "updated_since"),
        ("updated_since=2026-03-02T10:00:00+01:00", "updated_since"), // '+' not URL-encoded
        ("cursor=c_2", "cursor"),
        ("cursor=", "cursor"),
        ("cursor=%F0%9F%98%80", "cursor"),
    ] {
        let a = px.api(&format!("/orders?{query}")).await;
        assert_eq!(a.status, 400, "{query}");
        assert_eq!(a.code(), code, "{query}");
    }
    let last = if cursor.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &cursor[..cursor.len() - 1]);
    let a = px.api(&format!("/orders?cursor={tampered}")).await;
    assert_eq!(a.status, 400);
    assert_eq!(px.api("/orders?limit=500").await.status, 200);
    assert_eq!(px.api("/orders?limit=1").await.status, 200);
}

#[tokio::test]
async fn planexpo_catalog_and_deterministic_generate() {
    let px = Px::start().await;
    assert_eq!(px.api("/catalog").await.json(), json!({"products": []}));
    let catalog = json!({"products": [{"id": "prd_banner_2x1", "name": "Bannière 2x1 m", "kind": "product", "paid": true}]});
    assert_eq!(
        px.sim(Method::PUT, "/_sim/catalog", Some(catalog.clone()))
            .await
            .status,
        200
    );
    assert_eq!(px.api("/catalog").await.json(), catalog);
    let bad = px
        .sim(
            Method::PUT,
            "/_sim/catalog",
            Some(json!({"products": [{"id": "x", "kind": "thing"}]})),
        )
        .await;
    assert_eq!(bad.status, 400);

    // generate on two fresh simulators with one seed: the same event.
    let a = Px::start().await;
    let b = Px::start().await;
    let c = Px::start().await;
    let ga = a
        .sim(
            Method::POST,
            "/_sim/generate",
            Some(json!({"orders": 60, "seed": 42})),
        )
        .await;
    assert_eq!(ga.status, 200, "{}", ga.text);
    let gb = b
        .sim(
            Method::POST,
            "/_sim/generate",
            Some(json!({"orders": 60, "seed": 42})),
        )
        .await;
    let gc = c
        .sim(
            Method::POST,
            "/_sim/generate",
            Some(json!({"orders": 60, "seed": 43})),
        )
        .await;
    assert_eq!(ga.json(), gb.json());
    let summary = ga.json();
    assert_eq!(summary["orders"], 60);
    let by_status = summary["by_status"].as_object().expect("by_status");
    assert_eq!(
        by_status
            .values()
            .map(|v| v.as_u64().expect("n"))
            .sum::<u64>(),
        60
    );

    let strip = |state: Value| -> Vec<Value> {
        state["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .map(|o| {
                let mut o = o.clone();
                o.as_object_mut().expect("object").remove("updated_at");
                o
            })
            .collect()
    };
    let sa = a.sim(Method::GET, "/_sim/state", None).await.json();
    let sb = b.sim(Method::GET, "/_sim/state", None).await.json();
    let sc = c.sim(Method::GET, "/_sim/state", None).await.json();
    assert_eq!(strip(sa.clone()), strip(sb));
    assert_ne!(strip(sa.clone()), strip(sc));
    let _ = gc;

    assert_eq!(
        sa["catalog"],
        planexpo::demo_catalog(),
        "the demo catalogue is installed"
    );
    let orders = sa["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 60);
    let validated = orders.iter().filter(|o| o["status"] == "validated").count() as u64;
    assert_eq!(validated, by_status["validated"].as_u64().expect("n"));
    let co = orders
        .iter()
        .filter(|o| o["parent_order_id"].is_string())
        .count() as u64;
    assert_eq!(co, summary["co_exhibitors"].as_u64().expect("n"));
    for o in orders {
        assert_eq!(o["event"], SLUG);
        let rev = o["revision"].as_u64().expect("revision");
        assert!((1..=5).contains(&rev));
        assert_eq!(o["company"]["address"]["country"], "FR");
        assert!(
            o["public_id"]
                .as_str()
                .expect("public id")
                .starts_with("SX26-")
        );
        if let Some(parent) = o["parent_order_id"].as_str() {
            let p = orders
                .iter()
                .find(|x| x["id"] == parent)
                .expect("parent in the event");
            assert_eq!(p["status"], "validated");
        }
        for line in o["lines"].as_array().expect("lines") {
            let id = line["product_id"].as_str().expect("product");
            assert!(
                sa["catalog"]["products"]
                    .as_array()
                    .expect("catalog")
                    .iter()
                    .any(|p| p["id"] == id),
                "{id} in the catalogue"
            );
        }
    }
    // The generated orders are served by the feed like any other.
    let feed = a.api("/orders?limit=500").await.json();
    assert_eq!(feed["orders"].as_array().expect("orders").len(), 60);
    // Bad requests.
    let bad = a
        .sim(Method::POST, "/_sim/generate", Some(json!({"orders": -1})))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "orders");
}

#[tokio::test]
async fn planexpo_faults_and_call_log() {
    let px = Px::start().await;
    px.sim(
        Method::POST,
        "/_sim/faults",
        Some(json!({"error_rate": 1.0})),
    )
    .await;
    let a = px.api("/orders").await;
    assert!(a.status == 500 || a.status == 503);
    assert!(!a.code().is_empty());
    px.sim(
        Method::POST,
        "/_sim/faults",
        Some(json!({"garbage_rate": 1.0})),
    )
    .await;
    let g = px.api("/orders").await;
    assert_eq!(g.status, 200);
    assert!(serde_json::from_str::<Value>(&g.text).is_err());
    px.sim(
        Method::POST,
        "/_sim/faults",
        Some(json!({"rate_limit_per_s": 1})),
    )
    .await;
    assert_eq!(px.api("/catalog").await.status, 200);
    let limited = px.api("/catalog").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.code(), "rate_limited");
    let ra: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!(ra >= 1);
    px.sim(Method::POST, "/_sim/faults", Some(json!({}))).await;

    let calls = px.sim(Method::GET, "/_sim/calls", None).await.json();
    let list = calls["calls"].as_array().expect("calls");
    let statuses: Vec<u64> = list
        .iter()
        .map(|c| c["status"].as_u64().expect("s"))
        .collect();
    assert_eq!(statuses.len(), 4);
    assert!(statuses[0] >= 500);
    assert_eq!(&statuses[1..], &[200, 200, 429]);
    assert_eq!(list[0]["path"], format!("/api/v1/events/{SLUG}/orders"));
    assert_eq!(list[0]["method"], "GET");
}

// ---------------------------------------------------------------------------------------
// A.4 Webhooks

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn receiver() -> (String, Received) {
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/webhooks/planexpo",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/webhooks/planexpo",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

async fn wait_for(got: &Received, n: usize) -> Vec<(HeaderMap, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = got.lock().expect("lock").clone();
        if now.len() >= n || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Verifies the signature as a receiver must, and returns the payload.
fn verified(secret: &str, headers: &HeaderMap, body: &str) -> Value {
    let ts = headers["x-planexpo-timestamp"].to_str().expect("ascii");
    let sig = headers["x-planexpo-signature"].to_str().expect("ascii");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{ts}.{body}").as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(sig, expected, "signature");
    let ts: i64 = ts.parse().expect("unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!((now - ts).abs() <= 300, "timestamp within 5 minutes");
    serde_json::from_str(body).expect("json payload")
}

#[tokio::test]
async fn planexpo_webhooks_are_signed_and_name_the_change() {
    let px = Px::start().await;
    let (url, got) = receiver().await;
    let secret = "whsec-é-test";
    let set = px
        .sim(
            Method::PUT,
            "/_sim/webhook",
            Some(json!({"url": url, "secret": secret})),
        )
        .await;
    assert_eq!(set.status, 200);
    assert_eq!(set.json()["duplicate_rate"], 0.0);
    assert_eq!(set.json()["reorder"], false);

    px.put_order("ord_W", order_body("submitted"), None).await;
    px.put_order("ord_W", order_body("validated"), None).await;
    px.put_order("ord_W", order_body("validated"), None).await;
    px.put_order("ord_W", order_body("refused"), None).await;
    px.put_order("ord_W", order_body("cancelled"), None).await;
    px.sim(Method::DELETE, "/_sim/orders/ord_W", None).await;
    let deliveries = wait_for(&got, 6).await;
    assert_eq!(deliveries.len(), 6);
    let payloads: Vec<Value> = deliveries
        .iter()
        .map(|(h, b)| verified(secret, h, b))
        .collect();
    let actions: Vec<&str> = payloads
        .iter()
        .map(|p| p["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "order.created",
            "order.validated",
            "order.updated",
            "order.refused",
            "order.cancelled",
            "order.deleted"
        ]
    );
    for p in &payloads {
        assert_eq!(p["event"], SLUG);
        assert_eq!(p["order_id"], "ord_W");
        assert_eq!(p["delivery_id"].as_str().expect("uuid").len(), 36);
        assert!(p["occurred_at"].as_str().expect("time").ends_with('Z'));
        assert_eq!(p.as_object().expect("object").len(), 5);
    }
    let ids: std::collections::HashSet<&str> = payloads
        .iter()
        .map(|p| p["delivery_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 6);

    // generate fires one order.created per order.
    px.sim(
        Method::POST,
        "/_sim/generate",
        Some(json!({"orders": 3, "seed": 1})),
    )
    .await;
    let deliveries = wait_for(&got, 9).await;
    assert_eq!(deliveries.len(), 9);
    for (h, b) in &deliveries[6..] {
        assert_eq!(verified(secret, h, b)["action"], "order.created");
    }

    // Removed: no more deliveries.
    assert_eq!(
        px.sim(Method::DELETE, "/_sim/webhook", None).await.status,
        204
    );
    px.put_order("ord_W", order_body("validated"), None).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(got.lock().expect("lock").len(), 9);
    let bad = px
        .sim(
            Method::PUT,
            "/_sim/webhook",
            Some(json!({"url": "ftp://x", "secret": "s"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "url");
}

#[tokio::test]
async fn planexpo_webhooks_duplicate_and_reorder() {
    let px = Px::start().await;
    let (url, got) = receiver().await;
    px.sim(
        Method::PUT,
        "/_sim/webhook",
        Some(json!({"url": url, "secret": "s", "duplicate_rate": 1.0, "reorder": false})),
    )
    .await;
    px.put_order("ord_D1", order_body("validated"), None).await;
    let deliveries = wait_for(&got, 2).await;
    assert_eq!(deliveries.len(), 2);
    let a = verified("s", &deliveries[0].0, &deliveries[0].1);
    let b = verified("s", &deliveries[1].0, &deliveries[1].1);
    assert_eq!(
        a["delivery_id"], b["delivery_id"],
        "a duplicate has the same delivery_id"
    );
    assert_eq!(deliveries[0].1, deliveries[1].1);

    got.lock().expect("lock").clear();
    px.sim(
        Method::PUT,
        "/_sim/webhook",
        Some(json!({"url": url, "secret": "s", "duplicate_rate": 0.0, "reorder": true})),
    )
    .await;
    for id in ["ord_R1", "ord_R2", "ord_R3"] {
        px.put_order(id, order_body("validated"), None).await;
    }
    let deliveries = wait_for(&got, 3).await;
    let order: Vec<String> = deliveries
        .iter()
        .map(|(h, b)| {
            verified("s", h, b)["order_id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    assert_eq!(
        order,
        ["ord_R3", "ord_R2", "ord_R1"],
        "held and delivered out of order"
    );
    // The stats count a delivery once the receiver has answered: wait for them.
    let deadline = Instant::now() + Duration::from_secs(5);
    let state = loop {
        let state = px.sim(Method::GET, "/_sim/state", None).await.json();
        if state["webhook_stats"]["delivered"] == 4 || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(state["webhook"]["reorder"], true);
    assert_eq!(state["webhook_stats"]["delivered"], 4);
    assert_eq!(state["webhook_stats"]["duplicates"], 1);
}

// ---------------------------------------------------------------------------------------
// Lifecycle and the binary

#[tokio::test]
async fn running_shutdown_stops_the_server() {
    let sim = inwink::spawn(inwink::Options::default())
        .await
        .expect("spawn");
    let url = format!("{}/_sim/state", sim.base_url());
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    let http = client();
    assert_eq!(http.get(&url).send().await.expect("up").status(), 200);
    sim.shutdown().await;
    let fresh = client();
    assert!(fresh.get(&url).send().await.is_err(), "stopped");

    let custom = planexpo::spawn(planexpo::Options {
        api_key: "k2".into(),
        event: "autre-salon".into(),
    })
    .await
    .expect("spawn");
    let a = send(
        &fresh,
        Method::GET,
        &format!("{}/api/v1/events/autre-salon/orders", custom.base_url()),
        Some("k2"),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    let custom_url = format!("{}/_sim/state", custom.base_url());
    drop(custom);
    let deadline = Instant::now() + Duration::from_secs(5);
    while client().get(&custom_url).send().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "dropping Running stops the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_binary_prints_its_address_and_serves() {
    use tokio::io::AsyncBufReadExt;
    for sim in ["planexpo", "inwink"] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pxsync-sim"))
            .args([sim, "--addr", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("in time")
            .expect("read")
            .expect("a line");
        let base = line
            .strip_prefix("listening on ")
            .expect("the listening line")
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{line}");
        let port: u16 = base
            .rsplit(':')
            .next()
            .expect("port")
            .parse()
            .expect("number");
        assert_ne!(port, 0);
        let state = client()
            .get(format!("{base}/_sim/state"))
            .send()
            .await
            .expect("serves");
        assert_eq!(state.status(), 200);
        let v: Value = state.json().await.expect("json");
        if sim == "planexpo" {
            assert_eq!(v["event"], SLUG);
        } else {
            assert_eq!(v["event_id"], EVENT_ID);
        }
        child.kill().await.expect("killed");
    }
}
