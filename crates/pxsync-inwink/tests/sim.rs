//! The inwink client against the real inwink simulator (contracts.md B and C), in-process.
//! Each test spawns its own simulator, so the tests run in parallel without sharing state.

use pxsync_core::desired::{DesiredAddress, DesiredParticipant, DesiredPartner};
use pxsync_core::plan::PartnerWrite;
use pxsync_inwink::{InwinkClient, InwinkConfig, InwinkError, Secret, code};
use pxsync_sim::inwink::{Options, spawn};
use serde_json::{Value, json};
use std::time::Duration;

const PRODUCT_A: &str = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a";
const PRODUCT_B: &str = "5e1c0a01-7b2d-4c3e-9f10-2a3b4c5d6e01";

struct Harness {
    sim: pxsync_sim::Running,
    http: reqwest::Client,
}

impl Harness {
    async fn start() -> Harness {
        let sim = spawn(Options::default())
            .await
            .expect("inwink simulator starts");
        let _ = rustls::crypto::ring::default_provider().install_default();
        Harness {
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn config(&self) -> InwinkConfig {
        let base = self.sim.base_url();
        let o = Options::default();
        InwinkConfig::new(
            // A trailing slash must not matter.
            format!("{base}/"),
            format!("{base}/oauth/token"),
            o.client_id,
            Secret::new(o.client_secret),
            o.event_id,
        )
    }

    fn client(&self) -> InwinkClient {
        InwinkClient::new(self.config()).expect("client builds")
    }

    async fn sim(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("simulator control answers");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    async fn faults(&self, faults: Value) {
        self.sim(reqwest::Method::POST, "/_sim/faults", faults)
            .await;
    }

    async fn token_calls(&self) -> usize {
        let r: Value = self
            .http
            .get(format!("{}/_sim/calls", self.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["path"] == "/oauth/token")
            .count()
    }
}

fn partner_write(order: &str, published: bool) -> PartnerWrite {
    PartnerWrite {
        fields: DesiredPartner {
            name: "Acme Médical".into(),
            emplacement: Some("B12".into()),
            space: Some("Hall 1".into()),
            aisle: Some("Allée C".into()),
            website: Some("https://acme.example".into()),
            address: Some(DesiredAddress {
                street: Some("12 rue de la Paix".into()),
                street2: None,
                zip_code: Some("75002".into()),
                city: Some("Paris".into()),
                country: Some("FR".into()),
            }),
            planexpo_order_id: order.into(),
            planexpo_public_order_id: Some("SX24-0042".into()),
        },
        published,
        affiliated_to_id: None,
    }
}

fn participant(email: &str) -> DesiredParticipant {
    DesiredParticipant {
        email_key: email.trim().to_lowercase(),
        email: email.into(),
        civility: Some("Mme".into()),
        lastname: Some("Durand".into()),
        firstname: Some("Claire".into()),
        company: Some("Acme Médical".into()),
        job_title: Some("Directrice marketing".into()),
        phone1: Some("+33 1 23 45 67 89".into()),
        phone2: Some("+33 6 00 00 00 00".into()),
        language: Some("fr".into()),
    }
}

#[tokio::test]
async fn partners_create_update_get_query_and_conflict() {
    let h = Harness::start().await;
    let c = h.client();

    let draft = partner_write("ord_7QH2K", false);
    let created = c.create_partner(&draft).await.unwrap();
    assert_eq!(created.status.as_deref(), Some("Draft"));
    assert_eq!(created.as_write(), Some(draft.clone()));

    // Publish, clear the stand and the address, link to a parent.
    let parent = c
        .create_partner(&partner_write("ord_PARENT", true))
        .await
        .unwrap();
    let mut update = partner_write("ord_7QH2K", true);
    update.fields.emplacement = None;
    update.fields.address = None;
    update.affiliated_to_id = Some(parent.id.clone());
    let updated = c.update_partner(&created.id, &update).await.unwrap();
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.status.as_deref(), Some("Published"));
    assert_eq!(
        updated.emplacement, None,
        "an explicit null clears the field"
    );
    assert_eq!(updated.address, None);
    assert_eq!(
        updated.affiliated_to_id.as_deref(),
        Some(parent.id.as_str())
    );

    let got = c.reader().get_partner(&created.id).await.unwrap();
    assert_eq!(got, updated);
    assert_eq!(got.as_write(), Some(update));

    let found = c
        .reader()
        .find_partners_by_order("ord_7QH2K")
        .await
        .unwrap();
    assert_eq!(found, vec![got.clone()]);
    assert!(
        c.reader()
            .find_partners_by_order("ord_NONE")
            .await
            .unwrap()
            .is_empty()
    );
    let page = c.reader().partners_page(0, 1).await.unwrap();
    assert_eq!(page.total_count, 2);
    assert_eq!(page.items.len(), 1);

    // Another partner with an order id already used.
    match c.create_partner(&partner_write("ord_7QH2K", true)).await {
        Err(InwinkError::Conflict {
            code: c,
            existing_id,
            ..
        }) => {
            assert_eq!(c, code::DUPLICATE_KEY);
            assert_eq!(existing_id.as_deref(), Some(created.id.as_str()));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // An update that would take another partner's order id.
    let e = c
        .update_partner(&parent.id, &partner_write("ord_7QH2K", true))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));

    let e = c
        .reader()
        .get_partner("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::PARTNER_NOT_FOUND));
    assert!(!e.is_transient());

    // A parent that does not exist is a validation error.
    let mut orphan = partner_write("ord_ORPHAN", true);
    orphan.affiliated_to_id = Some("00000000-0000-4000-8000-000000000000".into());
    match c.create_partner(&orphan).await {
        Err(InwinkError::Rejected {
            status, code: c, ..
        }) => {
            assert_eq!((status, c.as_str()), (400, code::AFFILIATED_TO_ID));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn participants_team_links_and_categories() {
    let h = Harness::start().await;
    let c = h.client();

    let p = participant("claire.durand@acme.example");
    let created = c.create_participant(&p).await.unwrap();
    assert_eq!(created.as_desired(), p);

    // The same e-mail in another case is the same person.
    match c
        .create_participant(&participant("Claire.DURAND@acme.example"))
        .await
    {
        Err(InwinkError::Conflict {
            code: c,
            existing_id,
            ..
        }) => {
            assert_eq!(c, code::DUPLICATE_KEY);
            assert_eq!(existing_id.as_deref(), Some(created.id.as_str()));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let found = c
        .reader()
        .find_participants_by_email("CLAIRE.durand@ACME.example")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, created.id);

    // Team link, then a second one for the same pair.
    let partner = c
        .create_partner(&partner_write("ord_7QH2K", true))
        .await
        .unwrap();
    let link = c.link_team_member(&partner.id, &created.id).await.unwrap();
    assert_eq!(link.partner_id, partner.id);
    assert_eq!(link.participant_id, created.id);
    assert_eq!(link.roles, vec!["Admin".to_owned()]);
    let e = c
        .link_team_member(&partner.id, &created.id)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert_eq!(e.code(), Some(code::DUPLICATE_KEY));
    assert_eq!(
        c.reader().team_members_of(&partner.id).await.unwrap(),
        vec![link]
    );
    let e = c
        .link_team_member(&partner.id, "00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::PARTICIPANT_NOT_FOUND));

    // The update clears phone2 and never touches the Exhibitor category.
    let mut changed = participant("claire.durand@acme.example");
    changed.phone2 = None;
    changed.job_title = Some("Directrice générale".into());
    let updated = c.update_participant(&created.id, &changed).await.unwrap();
    assert_eq!(updated.as_desired(), changed);
    assert_eq!(updated.categories, vec!["Exhibitor".to_owned()]);
    let got = c.reader().get_participant(&created.id).await.unwrap();
    assert_eq!(got, updated);
    let page = c.reader().participants_page(0, 100).await.unwrap();
    assert_eq!((page.items.len(), page.total_count), (1, 1));

    let e = c
        .reader()
        .get_participant("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::PARTICIPANT_NOT_FOUND));
}

#[tokio::test]
async fn product_quantities_never_go_down() {
    let h = Harness::start().await;
    h.sim(
        reqwest::Method::PUT,
        "/_sim/products",
        json!({"data": [{"id": PRODUCT_A, "name": "Bannière 2x1 m"},
                        {"id": PRODUCT_B, "name": "Pack 10 badges exposant"}]}),
    )
    .await;
    let c = h.client();
    let products = c.reader().event_products().await.unwrap();
    assert_eq!(products.len(), 2);
    assert_eq!(products[0].id, PRODUCT_A);
    assert_eq!(products[0].name, "Bannière 2x1 m");

    let partner = c
        .create_partner(&partner_write("ord_7QH2K", true))
        .await
        .unwrap();
    assert!(
        c.reader()
            .partner_products(&partner.id)
            .await
            .unwrap()
            .is_empty()
    );
    c.set_quantity(&partner.id, PRODUCT_A, 2).await.unwrap();
    c.set_quantity(&partner.id, PRODUCT_A, 5).await.unwrap();
    let held = c.reader().partner_products(&partner.id).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].product_id.as_str(), held[0].quantity),
        (PRODUCT_A, 5)
    );

    match c.set_quantity(&partner.id, PRODUCT_A, 3).await {
        Err(InwinkError::Rejected {
            status,
            code: c,
            current,
            ..
        }) => {
            assert_eq!(status, 400);
            assert_eq!(c, code::QUANTITY_DECREASE);
            assert_eq!(current, Some(5));
        }
        other => panic!("expected quantity_decrease, got {other:?}"),
    }
    let e = c
        .set_quantity(&partner.id, "00000000-0000-4000-8000-000000000000", 1)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::PRODUCT_NOT_FOUND));
    let e = c
        .set_quantity("00000000-0000-4000-8000-000000000000", PRODUCT_A, 1)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::PARTNER_NOT_FOUND));
    assert_eq!(
        c.reader().partner_products(&partner.id).await.unwrap()[0].quantity,
        5
    );
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_concurrent_callers_share_one() {
    let h = Harness::start().await;
    h.faults(json!({"token_ttl_s": 2})).await;
    let c = h.client();

    // Eight concurrent first calls fetch one token.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let r = c.reader().clone();
        tasks.push(tokio::spawn(async move { r.partners_page(0, 10).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(h.token_calls().await, 1);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let page = c.reader().partners_page(0, 10).await.unwrap();
    assert_eq!(page.total_count, 0);
    assert_eq!(h.token_calls().await, 2, "the expired token was replaced");
}

#[tokio::test]
async fn a_token_inwink_keeps_refusing_is_unauthorized_after_one_refresh() {
    let h = Harness::start().await;
    // Tokens that expire at once: every call answers 401.
    h.faults(json!({"token_ttl_s": 0})).await;
    let c = h.client();
    let e = c.reader().partners_page(0, 10).await.unwrap_err();
    assert!(matches!(e, InwinkError::Unauthorized { .. }), "got {e:?}");
    assert_eq!(e.status(), Some(401));
    assert!(!e.is_transient());
    assert_eq!(h.token_calls().await, 2, "one token, one refresh");
}

#[tokio::test]
async fn server_errors_rate_limits_and_garbage_are_classified() {
    let h = Harness::start().await;
    let c = h.client();
    // A token first: faults apply to the token endpoint too.
    let partner = c
        .create_partner(&partner_write("ord_7QH2K", true))
        .await
        .unwrap();

    h.faults(json!({"error_rate": 1.0})).await;
    let e = c
        .create_partner(&partner_write("ord_OTHER", true))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            InwinkError::Unavailable {
                status: 500..=599,
                ..
            }
        ),
        "got {e:?}"
    );
    assert!(e.is_transient() && e.outcome_unknown());

    h.faults(json!({"rate_limit_per_s": 1})).await;
    let mut limited = None;
    for _ in 0..3 {
        if let Err(e) = c.reader().get_partner(&partner.id).await {
            limited = Some(e);
            break;
        }
    }
    let e = limited.expect("the rate limit answers 429");
    match e {
        InwinkError::RateLimited { retry_after, .. } => {
            assert!(retry_after >= Duration::from_secs(1))
        }
        ref other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(e.is_transient() && !e.outcome_unknown());
    assert_eq!(e.status(), Some(429));

    h.faults(json!({"garbage_rate": 1.0})).await;
    let e = c.reader().get_partner(&partner.id).await.unwrap_err();
    assert!(
        matches!(e, InwinkError::Garbage { status: 200, .. }),
        "got {e:?}"
    );
    assert!(e.is_transient() && e.outcome_unknown());

    h.faults(json!({})).await;
    c.reader().get_partner(&partner.id).await.unwrap();
}

#[tokio::test]
async fn token_errors() {
    let h = Harness::start().await;
    let mut cfg = h.config();
    cfg.client_secret = Secret::new("wrong");
    let c = InwinkClient::new(cfg).unwrap();
    let e = c.reader().event_products().await.unwrap_err();
    assert_eq!(
        e,
        InwinkError::Token {
            status: Some(401),
            error: "invalid_client".into()
        }
    );
    assert!(!e.is_transient() && !e.outcome_unknown());
    assert_eq!(h.token_calls().await, 1, "an OAuth refusal is not retried");
    assert!(!e.to_string().contains("wrong"));

    // A token endpoint that keeps failing: four attempts, then a transient token error.
    h.faults(json!({"error_rate": 1.0})).await;
    let c = h.client();
    let e = c.reader().event_products().await.unwrap_err();
    assert!(matches!(e, InwinkError::Token { .. }), "got {e:?}");
    assert_eq!(e.code(), Some("temporarily_unavailable"));
    assert!(e.is_transient());
    assert_eq!(h.token_calls().await, 1 + 4);
}

#[tokio::test]
async fn an_unknown_event_and_a_dead_server() {
    let h = Harness::start().await;
    let mut cfg = h.config();
    cfg.event_id = "00000000-0000-4000-8000-000000000000".into();
    let e = InwinkClient::new(cfg)
        .unwrap()
        .reader()
        .event_products()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(code::EVENT_NOT_FOUND));

    let mut cfg = h.config();
    cfg.timeout = Duration::from_millis(300);
    let c = InwinkClient::new(cfg).unwrap();
    c.reader().event_products().await.unwrap();
    // Slower than the timeout: a transport error whose outcome is unknown.
    h.faults(json!({"latency_ms": 1000})).await;
    let e = c.reader().event_products().await.unwrap_err();
    assert!(
        matches!(e, InwinkError::Transport { timeout: true, .. }),
        "got {e:?}"
    );
    assert!(e.is_transient() && e.outcome_unknown());

    let base = h.sim.base_url();
    h.sim.shutdown().await;
    let c = InwinkClient::new(InwinkConfig::new(
        base.clone(),
        format!("{base}/oauth/token"),
        "pxsync-sim",
        Secret::new("inwink-sim-secret"),
        "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b",
    ))
    .unwrap();
    let e = c.reader().event_products().await.unwrap_err();
    assert!(e.is_transient(), "got {e:?}");

    assert!(matches!(
        InwinkClient::new(InwinkConfig::new(
            "api.inwink.com",
            "https://x/oauth/token",
            "id",
            Secret::new("s"),
            "ev"
        )),
        Err(InwinkError::Config { .. })
    ));
}
