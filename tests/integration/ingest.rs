//! The ingestor: every Planexpo change becomes exactly one event.

use crate::stream_messages;
use pxsync::ingestor::{Salon, poll_once};
use pxsync_test_support::{Http, TestNamespace};
use serde_json::{Value, json};
use std::time::Duration;

const EVENT: &str = "salon-sante-2026";

fn order(id: &str, status: &str) -> Value {
    json!({
        "id": id, "public_id": format!("P-{id}"), "event": EVENT, "status": status, "parent_order_id": null,
        "company": {"name": format!("Société {id}"), "address": null, "website": null},
        "stand": null,
        "booking_contact": {"civility": "M.", "last_name": "Martin", "first_name": "Luc", "email": format!("{id}@example.fr"),
            "company": null, "job_title": null, "phone_1": null, "phone_2": null, "preferred_language": "fr"},
        "lines": [{"product_id": "prd_banner_2x1", "product_name": "Bannière 2x1 m", "quantity": 1}]
    })
}

struct Feed {
    ns: TestNamespace,
    sim: pxsync_sim::Running,
    http: Http,
    salon: Salon,
}

impl Feed {
    async fn new(tag: &str) -> Feed {
        let sim = pxsync_sim::planexpo::spawn(pxsync_sim::planexpo::Options::default())
            .await
            .unwrap();
        let opts = pxsync_sim::planexpo::Options::default();
        let planexpo = pxsync_planexpo::PlanexpoClient::new(pxsync_planexpo::PlanexpoConfig::new(
            sim.base_url(),
            pxsync_planexpo::Secret::new(opts.api_key),
            opts.event,
        ))
        .unwrap();
        let salon = Salon {
            planexpo,
            inwink_event_id: "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b".into(),
            poll_interval: Duration::from_millis(100),
            rescan_interval: Duration::from_secs(3600),
            page_size: 100,
        };
        Feed {
            ns: TestNamespace::new(tag).await,
            sim,
            http: Http::default(),
            salon,
        }
    }

    async fn put(&self, o: &Value, updated_at: Option<&str>) {
        let q = updated_at
            .map(|u| format!("?updated_at={u}"))
            .unwrap_or_default();
        self.http
            .put(
                &format!(
                    "{}/_sim/orders/{}{q}",
                    self.sim.base_url(),
                    o["id"].as_str().unwrap()
                ),
                o,
            )
            .await;
    }

    async fn pass(&self) -> pxsync::ingestor::PassOutcome {
        poll_once(&self.ns.store, &self.ns.bus, &self.salon, false)
            .await
            .expect("feed pass")
    }
}

/// 1,000 orders paged 100 at a time, 50 of them sharing one `updated_at`: each ingested exactly
/// once, and a second pass (inclusive `updated_since`) publishes nothing.
#[tokio::test]
async fn a_feed_is_ingested_exactly_once_across_pages_and_shared_timestamps() {
    let f = Feed::new("feed").await;
    let n = 1_000;
    for i in 0..n {
        let at = if i % 20 == 0 {
            "2026-03-02T10:00:00Z".to_owned()
        } else {
            format!("2026-03-02T09:{:02}:{:02}Z", i / 60, i % 60)
        };
        f.put(&order(&format!("ord_{i:05}"), "validated"), Some(&at))
            .await;
    }
    let first = f.pass().await;
    assert_eq!(first.orders_read, n);
    assert_eq!(first.events_published, n);
    assert_eq!(stream_messages(&f.ns).await, n as u64);
    let again = f.pass().await;
    assert_eq!(again.events_published, 0, "nothing is published twice");
    // A new revision of one order sharing the watermark's timestamp is seen.
    f.put(
        &order("ord_00000", "cancelled"),
        Some("2026-03-02T10:00:00Z"),
    )
    .await;
    assert_eq!(f.pass().await.events_published, 1);
    assert_eq!(stream_messages(&f.ns).await, n as u64 + 1);
    f.ns.cleanup().await;
}

/// A crash after publishing but before recording republishes the same ids: JetStream drops them.
#[tokio::test]
async fn a_crash_between_publish_and_record_duplicates_nothing() {
    let f = Feed::new("crash").await;
    for i in 0..30 {
        f.put(&order(&format!("ord_{i:05}"), "validated"), None)
            .await;
    }
    // What a process killed after its publish acks did: events out, nothing recorded.
    let page = f.salon.planexpo.orders_page(None, None, 100).await.unwrap();
    let ctx = pxsync_core::event::DeriveContext {
        inwink_event_id: "x",
        recorded_at: pxsync::now(),
        traceparent: None,
    };
    for raw in page.orders {
        let obs = pxsync_core::order::observe_raw(raw).unwrap();
        for e in pxsync_core::event::derive_events(&Default::default(), obs, &ctx) {
            f.ns.bus.publish(&e).await.unwrap();
        }
    }
    assert_eq!(stream_messages(&f.ns).await, 30);
    // The restarted ingestor reads the same revisions again.
    let outcome = f.pass().await;
    assert_eq!(outcome.orders_read, 30);
    assert_eq!(
        stream_messages(&f.ns).await,
        30,
        "the same event ids are not stored twice"
    );
    assert_eq!(f.pass().await.events_published, 0);
    f.ns.cleanup().await;
}

/// Bad units are published as rejections naming the order, the field and the rule; the good
/// units and the other orders flow.
#[tokio::test]
async fn bad_input_is_rejected_per_unit_and_the_rest_flows() {
    let f = Feed::new("bad").await;
    let mut bad_email = order("ord_BAD01", "validated");
    bad_email["booking_contact"]["email"] = json!("luc.martin at example.fr");
    let mut no_name = order("ord_BAD02", "validated");
    no_name["company"]["name"] = json!("");
    let mut bad_line = order("ord_BAD03", "validated");
    bad_line["lines"] = json!([{"product_id": "prd_banner_2x1", "quantity": -4}, {"product_id": "opt_wifi", "quantity": 2}]);
    let mut bad_status = order("ord_BAD04", "validated");
    bad_status["status"] = json!("archived");
    for o in [
        &bad_email,
        &no_name,
        &bad_line,
        &bad_status,
        &order("ord_GOOD1", "validated"),
    ] {
        f.put(o, None).await;
    }
    let outcome = f.pass().await;
    assert_eq!(outcome.orders_read, 5);
    // 5 observations (one of them a whole-order rejection) + 3 unit rejections.
    assert_eq!(outcome.events_published, 4 + 1 + 3);
    // Fold them and look at what the projector would know.
    let stream =
        f.ns.bus
            .projector_consumer(&Default::default())
            .await
            .unwrap();
    let mut events = Vec::new();
    let mut batch = stream
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    use futures::StreamExt;
    while let Some(Ok(m)) = batch.next().await {
        events.push(pxsync_core::event::decode(&m.payload).unwrap());
        m.ack().await.unwrap();
    }
    assert_eq!(events.len(), 8);
    let rejected: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.data {
            pxsync_core::event::EventData::Rejected(r) => Some(
                r.problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    let text = rejected.join("\n");
    assert!(
        text.contains("order ord_BAD01: booking_contact.email must be an e-mail address"),
        "{text}"
    );
    assert!(
        text.contains("order ord_BAD02: company.name must not be blank"),
        "{text}"
    );
    assert!(
        text.contains("order ord_BAD03: lines[0].quantity must be an integer of at least 0"),
        "{text}"
    );
    assert!(
        text.contains("order ord_BAD04: status is not one of the documented values"),
        "{text}"
    );
    assert!(
        !text.contains("luc.martin"),
        "no personal value in a rejection: {text}"
    );
    let observed = |id: &str| {
        events.iter().find_map(|e| match &e.data {
            pxsync_core::event::EventData::Observed(o) if e.order_id == id => {
                Some(o.snapshot.clone())
            }
            _ => None,
        })
    };
    let s = observed("ord_BAD01").unwrap();
    assert!(
        s.contact.is_none() && s.partner.is_some(),
        "the partner of a bad e-mail still flows"
    );
    let s = observed("ord_BAD03").unwrap();
    assert_eq!(s.lines.len(), 1, "the good line flows");
    assert!(
        observed("ord_BAD04").is_none(),
        "an unknown status makes no snapshot"
    );
    assert!(observed("ord_GOOD1").is_some());
    f.ns.cleanup().await;
}

/// An order whose text cannot be read at all (a number out of range in a line) is a feed
/// problem that names it, never its content; the other orders of its page flow (one with such
/// a number in a field pxsync does not read among them), and once Planexpo serves it readable
/// it flows too.
#[tokio::test]
async fn an_unreadable_order_is_named_and_the_rest_of_its_page_flows() {
    let f = Feed::new("unreadable").await;
    f.ns.store
        .register_salon(EVENT, "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b")
        .await
        .unwrap();
    let put_text = async |id: &str, text: String| {
        assert!(text.contains("1e400"), "{text}");
        let answer = reqwest::Client::new()
            .put(format!("{}/_sim/orders/{id}", f.sim.base_url()))
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "the simulator keeps {id} as text");
    };
    f.put(&order("ord_GOOD1", "validated"), None).await;
    let odd = order("ord_ODD01", "validated").to_string();
    put_text(
        "ord_ODD01",
        odd.replacen("\"quantity\":1", "\"quantity\":1e400", 1),
    )
    .await;
    let lenient = order("ord_LENIENT", "validated").to_string();
    put_text("ord_LENIENT", lenient.replacen('{', "{\"note\":1e400,", 1)).await;
    f.put(&order("ord_GOOD2", "validated"), None).await;

    let outcome = f.pass().await;
    assert_eq!(outcome.orders_read, 4);
    assert_eq!(outcome.events_published, 3, "the three readable orders");
    let status = f.ns.store.status(Some(EVENT)).await.unwrap();
    let problems = status[0].feed_problems.join("\n");
    assert!(
        problems.contains("order ord_ODD01: a field is not readable JSON"),
        "{problems}"
    );
    assert!(
        !problems.contains("example.fr"),
        "no personal value: {problems}"
    );

    // Planexpo serves it readable: it flows, and the others publish nothing again.
    f.put(&order("ord_ODD01", "validated"), None).await;
    let outcome = f.pass().await;
    assert_eq!(outcome.events_published, 1, "the corrected order only");
    f.ns.cleanup().await;
}

/// Planexpo failing and answering garbage: passes fail and are retried; in the end every order
/// is ingested exactly once.
#[tokio::test]
async fn planexpo_faults_are_retried_without_loss_or_duplicate() {
    let f = Feed::new("faults").await;
    for i in 0..120 {
        f.put(
            &order(&format!("ord_{i:05}"), "validated"),
            Some(&format!("2026-03-02T09:{:02}:{:02}Z", i / 60, i % 60)),
        )
        .await;
    }
    f.http
        .post(
            &format!("{}/_sim/faults", f.sim.base_url()),
            &json!({"error_rate": 0.2, "garbage_rate": 0.05}),
        )
        .await;
    let mut failures = 0;
    let mut ok_passes = 0;
    for _ in 0..200 {
        match poll_once(&f.ns.store, &f.ns.bus, &f.salon, false).await {
            Ok(o) if o.events_published == 0 && stream_messages(&f.ns).await == 120 => {
                ok_passes += 1;
                // Converged, and the faults were met at least once (a run without any fault
                // would prove nothing: keep reading until one shows up).
                if ok_passes >= 2 && failures > 0 {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                let text = format!("{e:#}");
                assert!(
                    text.contains("read the order feed of salon-sante-2026"),
                    "{text}"
                );
            }
        }
    }
    assert!(failures > 0, "the faults were exercised");
    assert_eq!(
        stream_messages(&f.ns).await,
        120,
        "every order exactly once"
    );
    f.ns.cleanup().await;
}

/// The webhook receiver: valid, forged, stale, duplicated and reordered deliveries.
#[tokio::test]
async fn webhooks_are_verified_and_publish_nothing_twice() {
    let f = Feed::new("hook").await;
    let secret = "whsec-test";
    let now = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(1_767_000_000));
    let clock_now = now.clone();
    let receiver = pxsync::webhook::Receiver {
        store: f.ns.store.clone(),
        bus: f.ns.bus.clone(),
        salons: [(EVENT.to_owned(), f.salon.clone())].into_iter().collect(),
        secrets: std::sync::Arc::new(
            [(EVENT.to_owned(), secret.as_bytes().to_vec())]
                .into_iter()
                .collect(),
        ),
        clock: std::sync::Arc::new(move || clock_now.load(std::sync::atomic::Ordering::SeqCst)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/planexpo",
        listener.local_addr().unwrap()
    );
    let (trigger, shutdown) = pxsync::Shutdown::new();
    let server = tokio::spawn(pxsync::webhook::serve(listener, receiver, shutdown));
    let client = reqwest::Client::new();
    let deliver = |body: Value, ts: i64, key: &str| {
        let raw = body.to_string();
        let sig = pxsync_core::webhook::sign(key.as_bytes(), ts, raw.as_bytes());
        let req = client
            .post(&url)
            .header("X-Planexpo-Timestamp", ts.to_string())
            .header("X-Planexpo-Signature", sig)
            .body(raw);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    f.put(&order("ord_HOOK1", "submitted"), None).await;
    let delivery = |id: &str, action: &str| json!({"delivery_id": "5b0d7c1e-8f61-4f0a-9a59-1c3f4e2a7b90", "event": EVENT, "order_id": id, "action": action, "occurred_at": "2026-03-02T10:00:01Z"});
    let t = now.load(std::sync::atomic::Ordering::SeqCst);

    assert_eq!(
        deliver(delivery("ord_HOOK1", "order.created"), t, "forged-secret").await,
        401
    );
    assert_eq!(
        deliver(delivery("ord_HOOK1", "order.created"), t - 301, secret).await,
        401,
        "stale"
    );
    assert_eq!(
        deliver(delivery("ord_HOOK1", "order.created"), t + 301, secret).await,
        401,
        "from the future"
    );
    let unsigned = client
        .post(&url)
        .body(delivery("ord_HOOK1", "order.created").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert!(
        f.ns.store
            .previous(EVENT, &["ord_HOOK1".into()])
            .await
            .unwrap()
            .is_empty(),
        "nothing recorded for refused deliveries"
    );
    assert_eq!(stream_messages(&f.ns).await, 0);

    assert_eq!(
        deliver(delivery("ord_HOOK1", "order.created"), t + 10, secret).await,
        200
    );
    assert_eq!(stream_messages(&f.ns).await, 1);
    // The same delivery again (new timestamp and signature): nothing new.
    assert_eq!(
        deliver(delivery("ord_HOOK1", "order.created"), t + 20, secret).await,
        200
    );
    assert_eq!(stream_messages(&f.ns).await, 1);
    // Out of order: the validation is delivered, then the stale creation again.
    f.put(&order("ord_HOOK1", "validated"), None).await;
    assert_eq!(
        deliver(delivery("ord_HOOK1", "order.validated"), t + 30, secret).await,
        200
    );
    assert_eq!(
        deliver(delivery("ord_HOOK1", "order.created"), t + 31, secret).await,
        200
    );
    assert_eq!(stream_messages(&f.ns).await, 2);
    // Another salon's delivery is acknowledged and ignored.
    let mut other = delivery("ord_HOOK1", "order.updated");
    other["event"] = json!("another-salon");
    assert_eq!(deliver(other, t + 40, secret).await, 202);
    assert!(
        f.ns.store.watermark(EVENT).await.unwrap().is_none(),
        "webhooks never move the watermark"
    );
    // Polling afterwards finds nothing new.
    assert_eq!(f.pass().await.events_published, 0);

    // Driven by the simulator itself: every delivery twice, out of order.
    now.store(
        time::OffsetDateTime::now_utc().unix_timestamp(),
        std::sync::atomic::Ordering::SeqCst,
    );
    f.http
        .put(
            &format!("{}/_sim/webhook", f.sim.base_url()),
            &json!({"url": url, "secret": secret, "duplicate_rate": 1.0, "reorder": true}),
        )
        .await;
    for i in 0..10 {
        f.put(&order(&format!("ord_SIM{i:02}"), "validated"), None)
            .await;
    }
    let ok = pxsync_test_support::wait_for(Duration::from_secs(15), || async {
        stream_messages(&f.ns).await == 12
    })
    .await;
    assert!(
        ok,
        "ten new orders by webhook: {} messages",
        stream_messages(&f.ns).await
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        stream_messages(&f.ns).await,
        12,
        "duplicated deliveries published nothing more"
    );
    trigger.trigger();
    server.await.unwrap().unwrap();
    f.ns.cleanup().await;
}

/// The ingestor's memory of a page is read by key (V16), also from a table filled faster than
/// autovacuum analyses it (20,000 small rows, no statistics), read more often than Postgres
/// needs to cache a plan, with ids missing, repeated, and recorded for another salon too.
#[tokio::test]
async fn the_memory_of_a_page_is_read_by_key_whatever_the_statistics() {
    let ns = TestNamespace::new("ingest_memory").await;
    let mut client = ns.store.client().await.unwrap();
    client
        .execute(
            "INSERT INTO ingest_orders (planexpo_event, order_id, revision, previous)
             SELECT s.event, 'ord_' || i, i, convert_to(format('{\"revision\":%s,\"snapshot\":null}', i), 'UTF8')
             FROM generate_series(1, 20000) i
             JOIN (VALUES ($1::text, 2), ('salon-autre-2026', 1)) AS s(event, step) ON i % s.step = 1 % s.step",
            &[&EVENT],
        )
        .await
        .unwrap();
    let mut ids: Vec<String> = (1..=500).map(|i| format!("ord_{i}")).collect();
    ids.extend(["ord_1".to_owned(), "ord_missing".to_owned()]);
    // By key: the read fetches the rows it returns (not the salon's 10,000) and scans nothing.
    // The backend's own counts, before and after (they may hold earlier transactions' not yet
    // flushed).
    let tx = client.transaction().await.unwrap();
    let before = crate::scans_so_far(&tx, "ingest_orders").await;
    let found: i64 = tx
        .query_one(
            "SELECT count(*) FROM ingest_memory($1, $2)",
            &[&EVENT, &ids],
        )
        .await
        .unwrap()
        .get(0);
    let after = crate::scans_so_far(&tx, "ingest_orders").await;
    let (seq_scans, fetched) = (after.0 - before.0, after.1 - before.1);
    tx.commit().await.unwrap();
    assert_eq!(found, 251, "the odd orders of the salon, ord_1 twice");
    assert_eq!((seq_scans, fetched), (0, 251), "one index probe per id");
    drop(client);
    for read in 0..8 {
        let memory = ns.store.previous(EVENT, &ids).await.unwrap();
        let found: Vec<(u64, Option<u64>)> = memory
            .iter()
            .map(|(id, p)| (id["ord_".len()..].parse().unwrap(), p.revision))
            .collect();
        assert_eq!(found.len(), 250, "read {read}: the salon's odd orders only");
        assert!(
            found.iter().all(|(n, rev)| n % 2 == 1 && *rev == Some(*n)),
            "read {read}: each order with its own memory: {found:?}"
        );
    }
    ns.cleanup().await;
}
