//! The Planexpo client against the real Planexpo simulator (contracts.md A and C), in-process.
//! Each test spawns its own simulator.

use pxsync_core::Timestamp;
use pxsync_planexpo::{PlanexpoClient, PlanexpoConfig, PlanexpoError, Secret};
use pxsync_sim::planexpo::{Options, spawn};
use serde_json::{Value, json};
use std::collections::BTreeMap;

struct Harness {
    sim: pxsync_sim::Running,
    http: reqwest::Client,
}

impl Harness {
    async fn start() -> Harness {
        let sim = spawn(Options::default())
            .await
            .expect("planexpo simulator starts");
        let _ = rustls::crypto::ring::default_provider().install_default();
        Harness {
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn config(&self) -> PlanexpoConfig {
        let o = Options::default();
        // A trailing slash must not matter.
        PlanexpoConfig::new(
            format!("{}/", self.sim.base_url()),
            Secret::new(o.api_key),
            o.event,
        )
    }

    fn client(&self) -> PlanexpoClient {
        PlanexpoClient::new(self.config()).expect("client builds")
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

    async fn put_order(&self, id: &str, updated_at: &str) {
        let order = json!({
            "public_id": format!("PUB-{id}"),
            "status": "validated",
            "parent_order_id": null,
            "company": {"name": format!("Société {id}"), "address": null, "website": null},
            "stand": null,
            "booking_contact": null,
            "lines": []
        });
        self.sim(
            reqwest::Method::PUT,
            &format!("/_sim/orders/{id}?updated_at={updated_at}"),
            order,
        )
        .await;
    }
}

#[tokio::test]
async fn paging_with_a_cursor_sees_every_order_once() {
    let h = Harness::start().await;
    h.sim(
        reqwest::Method::POST,
        "/_sim/generate",
        json!({"orders": 57, "seed": 7}),
    )
    .await;
    let c = h.client();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut last_key: Option<(Timestamp, String)> = None;
    loop {
        let page = c.orders_page(None, cursor.as_deref(), 10).await.unwrap();
        pages += 1;
        assert!(page.orders.len() <= 10);
        for o in &page.orders {
            let id = o.id().unwrap().to_owned();
            let at = Timestamp::parse(field(o, |r| &r.updated_at)).unwrap();
            let key = (at, id.clone());
            assert!(last_key.as_ref() < Some(&key), "sorted by (updated_at, id)");
            last_key = Some(key);
            *seen.entry(id).or_default() += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 100, "the feed ends");
    }
    assert_eq!(seen.len(), 57, "every generated order");
    assert!(seen.values().all(|n| *n == 1), "each order once");
    assert_eq!(pages, 6);

    // The catalogue the generator installed.
    let catalog = c.catalog().await.unwrap();
    assert!(!catalog.products.is_empty());
}

#[tokio::test]
async fn updated_since_is_inclusive_and_cursor_wins() {
    let h = Harness::start().await;
    h.put_order("ord_A", "2026-03-01T10:00:00Z").await;
    h.put_order("ord_B", "2026-03-02T10:00:00Z").await;
    h.put_order("ord_C", "2026-03-02T10:00:00Z").await;
    h.put_order("ord_D", "2026-03-03T08:00:00Z").await;
    let c = h.client();
    let ids = |page: &pxsync_core::planexpo::RawOrderPage| -> Vec<String> {
        page.orders
            .iter()
            .map(|o| o.id().unwrap().to_owned())
            .collect()
    };

    let all = c.orders_page(None, None, 100).await.unwrap();
    assert_eq!(ids(&all), ["ord_A", "ord_B", "ord_C", "ord_D"]);
    assert_eq!(all.next_cursor, None);

    // Inclusive; an offset other than Z is the same instant.
    let since = Timestamp::parse("2026-03-02T11:00:00+01:00").unwrap();
    let page = c.orders_page(Some(since), None, 100).await.unwrap();
    assert_eq!(ids(&page), ["ord_B", "ord_C", "ord_D"]);

    let first = c.orders_page(Some(since), None, 1).await.unwrap();
    assert_eq!(ids(&first), ["ord_B"]);
    let cursor = first.next_cursor.expect("more pages");
    // The cursor wins over updated_since.
    let late = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
    let next = c.orders_page(Some(late), Some(&cursor), 5).await.unwrap();
    assert_eq!(ids(&next), ["ord_C", "ord_D"]);
    assert_eq!(next.next_cursor, None);

    // A single order, a tombstone, an unknown order.
    let b = c.order("ord_B").await.unwrap().expect("ord_B exists");
    assert_eq!(field(&b, |r| &r.public_id), "PUB-ord_B");
    let r = h
        .http
        .delete(format!("{}/_sim/orders/ord_B", h.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let tomb = c.order("ord_B").await.unwrap().expect("a tombstone");
    assert_eq!(field(&tomb, |r| &r.status), "deleted");
    assert_eq!(c.order("ord_NEVER").await.unwrap(), None);
}

#[tokio::test]
async fn errors_are_classified() {
    let h = Harness::start().await;
    let c = h.client();

    let mut cfg = h.config();
    cfg.api_key = Secret::new("wrong-key");
    let e = PlanexpoClient::new(cfg)
        .unwrap()
        .orders_page(None, None, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, PlanexpoError::Unauthorized { .. }), "got {e:?}");
    assert!(!e.is_transient());
    assert!(!e.to_string().contains("wrong-key"));

    let mut cfg = h.config();
    cfg.event = "salon-inconnu-2026".into();
    let other = PlanexpoClient::new(cfg).unwrap();
    for e in [
        other.orders_page(None, None, 10).await.unwrap_err(),
        other.order("ord_A").await.unwrap_err(),
        other.catalog().await.unwrap_err(),
    ] {
        assert!(
            matches!(e, PlanexpoError::EventNotFound { .. }),
            "got {e:?}"
        );
        assert!(e.to_string().contains("salon-inconnu-2026"));
    }

    for limit in [0, 501] {
        let e = c.orders_page(None, None, limit).await.unwrap_err();
        assert_eq!(e.code(), Some("limit"), "got {e:?}");
        assert!(matches!(e, PlanexpoError::BadRequest { status: 400, .. }));
        assert!(!e.is_transient());
    }
    let e = c
        .orders_page(None, Some("not-a-cursor"), 10)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("cursor"));

    h.sim(
        reqwest::Method::POST,
        "/_sim/faults",
        json!({"error_rate": 1.0}),
    )
    .await;
    let e = c.catalog().await.unwrap_err();
    assert!(matches!(e, PlanexpoError::Unavailable { .. }), "got {e:?}");
    assert!(e.is_transient());

    h.sim(
        reqwest::Method::POST,
        "/_sim/faults",
        json!({"garbage_rate": 1.0}),
    )
    .await;
    let e = c.orders_page(None, None, 10).await.unwrap_err();
    assert!(
        matches!(e, PlanexpoError::Garbage { status: 200, .. }),
        "got {e:?}"
    );
    assert!(e.is_transient());

    h.sim(
        reqwest::Method::POST,
        "/_sim/faults",
        json!({"rate_limit_per_s": 1}),
    )
    .await;
    let mut limited = None;
    for _ in 0..3 {
        if let Err(e) = c.catalog().await {
            limited = Some(e);
            break;
        }
    }
    match limited.expect("the rate limit answers 429") {
        PlanexpoError::RateLimited { retry_after, .. } => {
            assert!(retry_after >= std::time::Duration::from_secs(1))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }

    let base = h.sim.base_url();
    h.sim.shutdown().await;
    let dead = PlanexpoClient::new(PlanexpoConfig::new(
        base,
        Secret::new("px-sim-key"),
        "salon-sante-2026",
    ))
    .unwrap();
    let e = dead.catalog().await.unwrap_err();
    assert!(matches!(e, PlanexpoError::Transport { .. }), "got {e:?}");
    assert!(e.is_transient());
}

/// A string field of an order read loose, which the test expects to be a string.
fn field(
    order: &pxsync_core::planexpo::FeedOrder,
    get: impl Fn(&pxsync_core::planexpo::RawOrder) -> &pxsync_core::planexpo::Loose<String>,
) -> &str {
    let raw = order.as_ref().expect("an order object");
    get(raw).as_ref().expect("a string field").as_str()
}
