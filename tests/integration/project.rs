//! The projector's store: the append-only, hash-chained event log, idempotent batches, the fold
//! across redeliveries and out-of-order arrival, and namespaces side by side.

use pxsync_core::event::{DeriveContext, EventEnvelope, Previous, derive_events};
use pxsync_core::mask::{MaskRow, check_mask};
use pxsync_core::order::observe;
use pxsync_test_support::TestNamespace;
use serde_json::{Value, json};

const EVENT: &str = "salon-sante-2026";

fn raw(id: &str, revision: u64, status: &str, qty: u64) -> Value {
    json!({
        "id": id, "public_id": format!("P-{id}"), "event": EVENT, "revision": revision,
        "updated_at": format!("2026-03-02T10:{:02}:00Z", revision), "status": status, "parent_order_id": null,
        "company": {"name": format!("Société {id}"), "address": null, "website": null}, "stand": null,
        "booking_contact": {"civility": null, "last_name": null, "first_name": null, "email": format!("{id}@example.fr"),
            "company": null, "job_title": null, "phone_1": null, "phone_2": null, "preferred_language": null},
        "lines": [{"product_id": "prd_banner_2x1", "product_name": "Bannière", "quantity": qty}]
    })
}

/// Every revision of a few orders, as the ingestor would publish them.
fn history(orders: &[&str], revisions: u64) -> Vec<EventEnvelope> {
    let ctx = DeriveContext {
        inwink_event_id: "iw-1",
        recorded_at: pxsync_core::Timestamp::EPOCH,
        traceparent: None,
    };
    let mut all = Vec::new();
    for id in orders {
        let mut prev = Previous::default();
        for r in 1..=revisions {
            let status = if r == revisions {
                "validated"
            } else {
                "submitted"
            };
            let events = derive_events(&prev, observe(&raw(id, r, status, r * 3)).unwrap(), &ctx);
            prev = prev.after(&events);
            all.extend(events);
        }
    }
    all
}

/// A mask of one row: the banner, mapped to the inwink product `inwink_id`.
fn banner_mask(inwink_name: &str, inwink_id: &str) -> pxsync_core::mask::Mask {
    let (mask, issues) = check_mask(&[MaskRow {
        row: 2,
        planexpo_product_name: "Bannière".into(),
        planexpo_product_id: Some("prd_banner_2x1".into()),
        inwink_product_name: inwink_name.into(),
        inwink_product_id: Some(inwink_id.into()),
    }]);
    assert!(issues.is_empty());
    mask
}

async fn import_mask(ns: &TestNamespace) {
    ns.store.register_salon(EVENT, "iw-1").await.unwrap();
    let mask = banner_mask("Banner", "iw-banner");
    ns.store.import_mask(EVENT, &mask, "test").await.unwrap();
}

/// One column of ord_A's row in `table` (`order_state` or `work_queue`), as text.
async fn order_a_column(ns: &TestNamespace, table: &str, column: &str) -> String {
    ns.store
        .client()
        .await
        .unwrap()
        .query_one(
            &format!("SELECT {column}::text FROM {table} WHERE order_id = 'ord_A'"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn desired_quantity(ns: &TestNamespace, order: &str) -> Option<u64> {
    let (_, desired) = ns.store.order_state(EVENT, order).await.unwrap()?;
    desired?["products"]["iw-banner"].as_u64()
}

#[tokio::test]
async fn batches_are_idempotent_and_order_insensitive() {
    let ns = TestNamespace::new("proj").await;
    import_mask(&ns).await;
    let mut events = history(&["ord_A", "ord_B", "ord_C"], 4);
    events.reverse(); // newest first
    let (first, second) = events.split_at(5);
    let a = ns.store.project_batch(first, "s", 5).await.unwrap();
    assert_eq!((a.inserted, a.duplicates), (5, 0));
    // Redelivery of everything, in another order, with duplicates inside the batch.
    let mut again: Vec<EventEnvelope> = second.iter().chain(first).cloned().collect();
    again.push(events[0].clone());
    let b = ns.store.project_batch(&again, "s", 12).await.unwrap();
    assert_eq!((b.inserted, b.duplicates), (7, 6));
    assert_eq!(ns.store.event_log_count(Some(EVENT)).await.unwrap(), 12);
    for id in ["ord_A", "ord_B", "ord_C"] {
        let (state, _) = ns.store.order_state(EVENT, id).await.unwrap().unwrap();
        assert_eq!(
            state.snapshot.unwrap().revision,
            4,
            "{id} holds its newest revision"
        );
        assert_eq!(desired_quantity(&ns, id).await, Some(12));
    }
    assert_eq!(
        ns.store.verify_chains().await.unwrap(),
        None,
        "every chain verifies"
    );
    let c = ns.store.project_batch(&events, "s", 12).await.unwrap();
    assert_eq!((c.inserted, c.changed_orders), (0, 0));
    ns.cleanup().await;
}

#[tokio::test]
async fn the_event_log_is_append_only_and_tampering_is_found() {
    let ns = TestNamespace::new("chain").await;
    import_mask(&ns).await;
    ns.store
        .project_batch(&history(&["ord_A", "ord_B"], 3), "s", 6)
        .await
        .unwrap();
    let client = ns.store.client().await.unwrap();
    for sql in [
        "UPDATE event_log SET revision = 99",
        "DELETE FROM event_log",
        "TRUNCATE event_log",
    ] {
        let err = client.batch_execute(sql).await.unwrap_err();
        assert!(format!("{err:?}").contains("append-only"), "{sql}: {err:?}");
    }
    // Even a superuser who disables the trigger cannot alter history unseen.
    client
        .batch_execute(
            "ALTER TABLE event_log DISABLE TRIGGER event_log_no_update;
             UPDATE event_log SET payload = convert_to(jsonb_set(convert_from(payload, 'UTF8')::jsonb, '{data,snapshot,lines,0,quantity}', '1000')::text, 'UTF8')
               WHERE order_id = 'ord_B' AND revision = 2;
             ALTER TABLE event_log ENABLE TRIGGER event_log_no_update;",
        )
        .await
        .unwrap();
    let broken = ns
        .store
        .verify_chains()
        .await
        .unwrap()
        .expect("the broken link is found");
    assert_eq!(broken.0, "ord_B");
    ns.cleanup().await;
}

#[tokio::test]
async fn a_mask_reimport_recomputes_desired_quantities() {
    let ns = TestNamespace::new("mask").await;
    ns.store.register_salon(EVENT, "iw-1").await.unwrap();
    ns.store
        .project_batch(&history(&["ord_A"], 2), "s", 2)
        .await
        .unwrap();
    assert_eq!(
        desired_quantity(&ns, "ord_A").await,
        None,
        "no mask yet: the line is unmapped"
    );
    let (_, desired) = ns.store.order_state(EVENT, "ord_A").await.unwrap().unwrap();
    assert_eq!(
        desired.unwrap()["unmapped"][0]["planexpo_product_id"],
        "prd_banner_2x1"
    );
    import_mask(&ns).await;
    assert_eq!(desired_quantity(&ns, "ord_A").await, Some(6));
    let (version, mask) = ns.store.current_mask(EVENT).await.unwrap().unwrap();
    assert_eq!(version, 1);
    assert_eq!(mask.products.len(), 1);
    ns.cleanup().await;
}

/// A batch projected while a mask import of its salon is in progress waits for it (the import
/// marks the orders it lists, so an order created meanwhile must be in its list), and the desired
/// state then follows the new mask. An import rewrites no order row: it marks the orders.
#[tokio::test]
async fn a_batch_waits_for_a_mask_import_in_progress() {
    let ns = TestNamespace::new("masklock").await;
    import_mask(&ns).await;
    // An import in progress: the salon's mask lock held, version 2 written, not committed.
    let mut client = ns.store.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&ns.store.mask_lock_key(EVENT)],
    )
    .await
    .unwrap();
    let mask = banner_mask("Banner XL", "iw-banner-xl");
    tx.execute(
        "INSERT INTO mask_versions (planexpo_event, version, source, mask) VALUES ($1, 2, 'test', $2)",
        &[&EVENT, &serde_json::to_value(&mask).unwrap()],
    )
    .await
    .unwrap();
    let store = ns.store.clone();
    let batch =
        tokio::spawn(async move { store.project_batch(&history(&["ord_A"], 2), "s", 2).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!batch.is_finished(), "the batch waits for the import");
    tx.commit().await.unwrap();
    assert_eq!(batch.await.unwrap().unwrap().inserted, 2);
    let (_, desired) = ns.store.order_state(EVENT, "ord_A").await.unwrap().unwrap();
    let products = &desired.unwrap()["products"];
    assert_eq!(products["iw-banner-xl"], 6, "the new mask's product");
    assert!(products.get("iw-banner").is_none(), "{products}");

    // Through the store's import: the salon's orders are marked, their rows untouched.
    let marks = |text: String| text.parse::<i64>().unwrap();
    let marked = marks(order_a_column(&ns, "work_queue", "mark_seq").await);
    let before = order_a_column(&ns, "order_state", "xmin").await;
    ns.store
        .import_mask(EVENT, &banner_mask("Banner", "iw-banner"), "test")
        .await
        .unwrap();
    assert_eq!(
        marks(order_a_column(&ns, "work_queue", "mark_seq").await),
        marked + 1,
        "marked by the import"
    );
    assert_eq!(
        order_a_column(&ns, "order_state", "xmin").await,
        before,
        "the order's row was not rewritten"
    );
    let (_, desired) = ns.store.order_state(EVENT, "ord_A").await.unwrap().unwrap();
    assert_eq!(desired.unwrap()["products"]["iw-banner"], 6);
    drop(client);
    ns.cleanup().await;
}

#[tokio::test]
async fn two_namespaces_side_by_side_do_not_see_each_other() {
    let (a, b) = tokio::join!(TestNamespace::new("side"), TestNamespace::new("side"));
    import_mask(&a).await;
    import_mask(&b).await;
    let events = history(&["ord_A"], 2);
    let (ra, rb) = tokio::join!(
        a.store.project_batch(&events, "s", 2),
        b.store.project_batch(&events[..1], "s", 1)
    );
    assert_eq!(ra.unwrap().inserted, 2);
    assert_eq!(rb.unwrap().inserted, 1);
    assert_eq!(a.store.event_log_count(None).await.unwrap(), 2);
    assert_eq!(b.store.event_log_count(None).await.unwrap(), 1);
    for e in &events {
        a.bus.publish(e).await.unwrap();
    }
    assert_eq!(crate::stream_messages(&a).await, 2);
    assert_eq!(
        crate::stream_messages(&b).await,
        0,
        "streams and subjects are per namespace"
    );
    a.cleanup().await;
    b.cleanup().await;
}

/// What a test that died before its cleanup left (schema, stream, a benchmark's scratch stream,
/// or a stream whose schema is already gone) is swept by the next test once it is over an hour
/// old; a younger namespace is left alone.
#[tokio::test]
async fn namespaces_left_by_dead_tests_are_swept_after_an_hour() {
    use pxsync_core::namespace::Namespace;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tag = std::process::id() % 0x10000;
    let old = Namespace::new(&format!("t_dead_{:x}_{tag:04x}", now - 7_200)).unwrap();
    let gone = Namespace::new(&format!("t_gone_{:x}_{tag:04x}", now - 7_200)).unwrap();
    let young = Namespace::new(&format!("t_dead_{:x}_{tag:04x}", now - 600)).unwrap();
    let url = pxsync_test_support::nats_url();
    let mut buses = Vec::new();
    for ns in [&old, &gone, &young] {
        let bus = pxsync_bus::Bus::connect(&url, ns).await.unwrap();
        bus.ensure_stream(&Default::default()).await.unwrap();
        buses.push(bus);
    }
    let js = buses[0].jetstream();
    let scratch = format!("{}_BENCH_RAW0", old.stream());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: scratch.clone(),
        subjects: vec![format!("{old}.benchraw0.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    let sweeper = TestNamespace::new("sweep").await;
    let client = sweeper.store.client().await.unwrap();
    for ns in [&old, &young] {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ns.schema()))
            .await
            .unwrap();
    }
    drop(client);
    // The next test's namespace sweeps.
    let next = TestNamespace::new("sweep").await;
    let client = next.store.client().await.unwrap();
    let schema_exists = |ns: &Namespace| {
        let schema = ns.schema();
        let client = &client;
        async move {
            client
                .query_one("SELECT to_regnamespace($1) IS NOT NULL", &[&schema])
                .await
                .unwrap()
                .get::<_, bool>(0)
        }
    };
    let stream_exists = |name: String| async move { js.get_stream(name).await.is_ok() };
    assert!(!schema_exists(&old).await, "the old schema is swept");
    assert!(
        !stream_exists(old.stream()).await,
        "the old stream is swept"
    );
    assert!(
        !stream_exists(scratch).await,
        "the old scratch stream is swept"
    );
    assert!(
        !stream_exists(gone.stream()).await,
        "a stream whose schema is gone is swept"
    );
    assert!(schema_exists(&young).await, "a young schema is kept");
    assert!(
        stream_exists(young.stream()).await,
        "a young stream is kept"
    );
    client
        .batch_execute(&format!("DROP SCHEMA {}", young.schema()))
        .await
        .unwrap();
    drop(client);
    buses[2].delete_stream().await.unwrap();
    sweeper.cleanup().await;
    next.cleanup().await;
}

/// The projector loop on the real stream: published events end up in the log once, even when
/// they are published twice.
#[tokio::test]
async fn the_projector_consumes_the_stream_into_the_log() {
    let ns = TestNamespace::new("loop").await;
    import_mask(&ns).await;
    let events = history(&["ord_A", "ord_B", "ord_C", "ord_D"], 3);
    for e in events.iter().chain(events.iter()) {
        ns.bus.publish(e).await.unwrap();
    }
    let (trigger, shutdown) = pxsync::Shutdown::new();
    let task = tokio::spawn(pxsync::projector::run(
        ns.store.clone(),
        ns.bus.clone(),
        Default::default(),
        Default::default(),
        shutdown,
    ));
    let store = ns.store.clone();
    let done = pxsync_test_support::wait_for(std::time::Duration::from_secs(20), || async {
        store.event_log_count(None).await.unwrap() == 12
    })
    .await;
    trigger.trigger();
    task.await.unwrap().unwrap();
    assert!(done, "the events were not projected");
    assert_eq!(desired_quantity(&ns, "ord_D").await, Some(9));
    let queue = ns.store.status(Some(EVENT)).await.unwrap();
    assert_eq!(
        queue[0].queue.get("pending").copied(),
        Some(4),
        "every changed order is marked for the emitter"
    );
    ns.cleanup().await;
}

/// Poison messages: an undecodable event is dead-lettered and its order's later events wait
/// while other orders flow; once skipped, the order flows. An event of a newer schema version
/// waits for an upgraded projector instead of being dead-lettered.
#[tokio::test]
async fn poison_and_newer_schema_events_are_held_not_lost() {
    let ns = TestNamespace::new("poison").await;
    import_mask(&ns).await;
    let js = ns.bus.jetstream();
    let poisoned = ns.ns.order_subject(EVENT, "ord_P");
    js.publish(poisoned.clone(), "{not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut newer: Value =
        serde_json::from_slice(&pxsync_core::event::encode(&history(&["ord_N"], 1)[0])).unwrap();
    newer["schema_version"] = json!(2);
    js.publish(
        ns.ns.order_subject(EVENT, "ord_N"),
        newer.to_string().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    for e in history(&["ord_P", "ord_Q"], 2) {
        ns.bus.publish(&e).await.unwrap();
    }
    let (trigger, shutdown) = pxsync::Shutdown::new();
    let settings = pxsync::projector::ProjectorSettings {
        held_delay: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let task = tokio::spawn(pxsync::projector::run(
        ns.store.clone(),
        ns.bus.clone(),
        Default::default(),
        settings,
        shutdown,
    ));
    let store = ns.store.clone();
    let q_flows = pxsync_test_support::wait_for(std::time::Duration::from_secs(20), || async {
        store.order_state(EVENT, "ord_Q").await.unwrap().is_some()
    })
    .await;
    assert!(q_flows, "the other order flows");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(
        ns.store
            .order_state(EVENT, "ord_P")
            .await
            .unwrap()
            .is_none(),
        "the poisoned order's later events wait"
    );
    assert!(
        ns.store
            .order_state(EVENT, "ord_N")
            .await
            .unwrap()
            .is_none(),
        "a newer schema is not folded"
    );
    let letters = ns.store.dead_letters(true).await.unwrap();
    assert_eq!(
        letters.len(),
        1,
        "only the undecodable event is a dead letter: {letters:?}"
    );
    assert_eq!(letters[0].subject, poisoned);
    assert!(
        letters[0].reason.contains("not JSON"),
        "{}",
        letters[0].reason
    );
    let mut consumer = ns
        .bus
        .projector_consumer(&Default::default())
        .await
        .unwrap();
    assert!(
        consumer.info().await.unwrap().num_ack_pending >= 1,
        "the newer-schema event is still pending, not terminated"
    );

    assert!(
        ns.store
            .resolve_dead_letter(letters[0].id, "skipped")
            .await
            .unwrap()
    );
    let p_flows = pxsync_test_support::wait_for(std::time::Duration::from_secs(20), || async {
        store
            .order_state(EVENT, "ord_P")
            .await
            .unwrap()
            .is_some_and(|(s, _)| s.revision() == 2)
    })
    .await;
    trigger.trigger();
    task.await.unwrap().unwrap();
    assert!(p_flows, "once skipped, the order's events flow");
    ns.cleanup().await;
}

/// A re-import that points the product at another inwink product records one remap, keeps the
/// prerequisites sheet, clears the catalogue baselines, and leaves the old product's floor out
/// of the plan input (no desired 0, so no refused decrease), while the floor stays recorded.
#[tokio::test]
async fn a_remap_is_recorded_once_and_the_old_floor_leaves_the_plan() {
    let ns = TestNamespace::new("remap").await;
    import_mask(&ns).await;
    ns.store
        .project_batch(&history(&["ord_A"], 2), "s", 2)
        .await
        .unwrap();
    ns.store
        .record_floor(EVENT, "ord_A", "iw-banner", 6, false)
        .await
        .unwrap();
    ns.store
        .record_catalog_fingerprint(
            EVENT,
            "planexpo",
            "f",
            &json!({"prd_banner_2x1": "Bannière"}),
        )
        .await
        .unwrap();
    let ctx = ns.store.reconcile_context(EVENT, "ord_A").await.unwrap();
    assert_eq!(ctx.floors.get("iw-banner"), Some(&6));
    let (remapped, _) = check_mask(&[MaskRow {
        row: 2,
        planexpo_product_name: "Bannière".into(),
        planexpo_product_id: Some("prd_banner_2x1".into()),
        inwink_product_name: "Banner XL".into(),
        inwink_product_id: Some("iw-banner-xl".into()),
    }]);
    let sheet = json!({"sheet": "Prérequis techniques", "rows": []});
    let import = ns
        .store
        .import_mask_with(EVENT, &remapped, "test", Some(&sheet))
        .await
        .unwrap();
    assert_eq!(import.version, 2);
    assert_eq!(import.remaps.len(), 1);
    assert_eq!(
        (
            import.remaps[0].from_inwink_product_id.as_str(),
            import.remaps[0].to_inwink_product_id.as_str()
        ),
        ("iw-banner", "iw-banner-xl")
    );
    let remaps = ns.store.mask_remaps(EVENT).await.unwrap();
    assert_eq!(remaps.len(), 1);
    assert!(
        remaps[0]
            .summary
            .starts_with("remap: Planexpo product prd_banner_2x1")
    );
    assert_eq!(
        ns.store.current_prerequisites(EVENT).await.unwrap(),
        Some(sheet)
    );
    assert!(
        ns.store
            .catalog_fingerprint(EVENT, "planexpo")
            .await
            .unwrap()
            .is_none(),
        "the import resets the baseline"
    );
    let ctx = ns.store.reconcile_context(EVENT, "ord_A").await.unwrap();
    assert!(
        !ctx.floors.contains_key("iw-banner"),
        "a product no longer in the mask is not planned: {:?}",
        ctx.floors
    );
    let desired = ctx.desired.as_ref().unwrap();
    let plan = pxsync_core::plan::plan_order(ctx.plan_input(desired));
    assert!(
        !plan
            .notes
            .iter()
            .any(|n| matches!(n, pxsync_core::plan::Note::QuantityDecreaseRefused { .. })),
        "{plan:?}"
    );
    // Mapped again: the floor is back, so nothing below it is ever sent.
    import_mask(&ns).await;
    let ctx = ns.store.reconcile_context(EVENT, "ord_A").await.unwrap();
    assert_eq!(ctx.floors.get("iw-banner"), Some(&6));
    assert_eq!(
        ns.store.mask_remaps(EVENT).await.unwrap().len(),
        2,
        "the way back is a remap too"
    );
    ns.cleanup().await;
}

/// Migration versions are reserved per branch, so a schema can hold a newer version before an
/// older one is merged: `migrate` then applies the older one, once.
#[tokio::test]
async fn a_migration_numbered_below_the_newest_applied_is_applied_late() {
    let ns = TestNamespace::new("late").await;
    let client = ns.store.client().await.unwrap();
    // As if V8 had been merged after V11 was applied: neither its effect nor its history row.
    client
        .batch_execute(
            "DELETE FROM refinery_schema_history WHERE version = 8;
             ALTER TABLE ingest_orders ALTER COLUMN previous TYPE jsonb USING convert_from(previous, 'UTF8')::jsonb;",
        )
        .await
        .unwrap();
    let c = &client;
    let previous_type = move || async move {
        let row = c
            .query_one(
                "SELECT data_type FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = 'ingest_orders' AND column_name = 'previous'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    assert_eq!(previous_type().await, "jsonb");
    ns.store.migrate().await.unwrap();
    assert_eq!(previous_type().await, "bytea", "V8 was applied late");
    ns.store.migrate().await.unwrap();
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions.iter().filter(|v| **v == 8).count(),
        1,
        "recorded once: {versions:?}"
    );
    assert!(versions.contains(&11), "{versions:?}");
    ns.cleanup().await;
}

/// A projector asked to stop while it is behind (a batch fetched ahead, waiting to be handed
/// over) stops, and what it left is projected by the next one, each event once.
#[tokio::test]
async fn a_projector_stopped_while_behind_stops_and_loses_nothing() {
    use pxsync_test_support::projection;
    let ns = TestNamespace::new("stop").await;
    projection::prepare_salon(&ns.store, "test").await.unwrap();
    let events = projection::history(3_000);
    projection::publish_shuffled_with_duplicates(&ns.bus, &events, 10, 5)
        .await
        .unwrap();
    // Small batches: the fetching task is soon ahead, waiting to hand a batch over.
    let settings = pxsync::projector::ProjectorSettings {
        batch: 5,
        ..Default::default()
    };
    let start = |settings: pxsync::projector::ProjectorSettings| {
        let (trigger, shutdown) = pxsync::Shutdown::new();
        let task = tokio::spawn(pxsync::projector::run(
            ns.store.clone(),
            ns.bus.clone(),
            Default::default(),
            settings,
            shutdown,
        ));
        (trigger, task)
    };
    let (trigger, task) = start(settings);
    let store = ns.store.clone();
    assert!(
        pxsync_test_support::wait_for(std::time::Duration::from_secs(30), || async {
            store.event_log_count(None).await.unwrap() >= 100
        })
        .await,
        "the projector started"
    );
    trigger.trigger();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), task).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the projector stops when asked, even behind: {stopped:?}"
    );
    let logged = ns.store.event_log_count(None).await.unwrap();
    assert!(logged < events.len() as i64, "it stopped before the end");

    let (trigger, task) = start(Default::default());
    let done = pxsync_test_support::wait_for(std::time::Duration::from_secs(60), || async {
        store.event_log_count(None).await.unwrap() == events.len() as i64
            && matches!(ns.bus.projector_lag().await, Ok((0, 0)))
    })
    .await;
    trigger.trigger();
    task.await.unwrap().unwrap();
    assert!(done, "the next projector projects the rest");
    let state = projection::projected_state(&ns.store).await.unwrap();
    let expected = projection::expected_orders(&events, &projection::mask());
    assert_eq!(
        state.event_ids.len(),
        events.len(),
        "each event logged once"
    );
    assert_eq!(state.orders.len(), expected.len());
    for (got, want) in state.orders.iter().zip(&expected) {
        assert_eq!(
            (&got.state, &got.desired),
            (&want.state, &want.desired),
            "{}",
            want.order_id
        );
    }
    ns.cleanup().await;
}

/// A log written before V12 (jsonb payloads, chain hashes over their canonical JSON) and order
/// states written before V13 (jsonb) are converted in place: the chains still verify, events
/// and states read back unchanged, a replay equals them, and new events extend the same chains
/// in the new format.
#[tokio::test]
async fn a_log_and_states_written_as_jsonb_before_v12_still_verify_and_extend() {
    let ns = TestNamespace::new("upgrade_v12").await;
    ns.store.drop_namespace().await.unwrap();
    ns.store.migrate_up_to(11).await.unwrap();
    import_mask(&ns).await;
    let events = history(&["ord_U"], 3);
    let (old, new) = events.split_at(2);
    let client = ns.store.client().await.unwrap();
    let mut prev: Option<String> = None;
    for e in old {
        // As the V11 projector stored them: the canonical JSON (sorted keys) as jsonb, format 2.
        let stored: Value = serde_json::from_slice(&pxsync_core::event::encode(e)).unwrap();
        let canonical = serde_json::to_string(&stored).unwrap();
        let hash = pxsync_store::chain_hash(prev.as_deref(), canonical.as_bytes());
        client
            .execute(
                "INSERT INTO event_log (event_id, kind, schema_version, planexpo_event, order_id, revision,
                                        updated_at, recorded_at, payload, prev_hash, hash, payload_format)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11, 2)",
                &[
                    &e.event_id,
                    &e.kind().as_str(),
                    &(e.schema_version as i32),
                    &e.planexpo_event,
                    &e.order_id,
                    &(e.revision as i64),
                    &e.updated_at.datetime(),
                    &e.recorded_at.datetime(),
                    &canonical,
                    &prev,
                    &hash,
                ],
            )
            .await
            .unwrap();
        prev = Some(hash);
    }
    client
        .execute(
            "INSERT INTO chain_heads (planexpo_event, order_id, hash) VALUES ($1, 'ord_U', $2)",
            &[&EVENT, &prev],
        )
        .await
        .unwrap();
    // And its state as jsonb (before V13).
    let mut state = pxsync_core::fold::OrderState::default();
    for e in old {
        pxsync_core::fold::fold(&mut state, e);
    }
    let desired = pxsync_core::desired::desired_order(&state, &banner_mask("Banner", "iw-banner"));
    client
        .execute(
            "INSERT INTO order_state (planexpo_event, order_id, revision, state, desired)
             VALUES ($1, 'ord_U', $2, $3::text::jsonb, $4::text::jsonb)",
            &[
                &EVENT,
                &(state.revision() as i64),
                &serde_json::to_string(&state).unwrap(),
                &desired.as_ref().map(|d| serde_json::to_string(d).unwrap()),
            ],
        )
        .await
        .unwrap();
    drop(client);

    ns.store.migrate().await.unwrap();
    assert_eq!(ns.store.verify_chains().await.unwrap(), None);
    let (read_state, read_desired) = ns.store.order_state(EVENT, "ord_U").await.unwrap().unwrap();
    assert_eq!(read_state, state, "the converted state reads back");
    assert_eq!(
        read_desired,
        desired.map(|d| serde_json::to_value(d).unwrap())
    );
    let into = format!("{}_replayed", ns.ns.schema());
    let replay = pxsync_store::ReplayOptions {
        planexpo_event: Some(EVENT.into()),
        until: None,
        into: into.clone(),
    };
    let report = ns.store.replay(&replay, |_, _| {}).await.unwrap();
    assert_eq!(report.orders, 1);
    assert!(
        report.differences.is_empty(),
        "the converted state equals its replay: {:?}",
        report.differences
    );
    ns.store.project_batch(new, "s", 3).await.unwrap();
    assert_eq!(
        ns.store.verify_chains().await.unwrap(),
        None,
        "the new event extends the converted chain"
    );
    let logged = ns
        .store
        .logged_events(pxsync_store::EventFilter::default())
        .await
        .unwrap();
    let read: Vec<EventEnvelope> = logged.into_iter().map(|l| l.event.unwrap()).collect();
    assert_eq!(read, events, "every event reads back as it was published");
    let formats: Vec<i16> = ns
        .store
        .client()
        .await
        .unwrap()
        .query(
            "SELECT payload_format FROM event_log ORDER BY position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        formats,
        [2, 2, 4],
        "the new event is stored in today's format"
    );
    let report = ns.store.replay(&replay, |_, _| {}).await.unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    ns.store
        .client()
        .await
        .unwrap()
        .batch_execute(&format!("DROP SCHEMA {into} CASCADE"))
        .await
        .unwrap();
    ns.cleanup().await;
}

/// The projector's marks: an order already pending and unclaimed keeps its row as it is (it
/// will be reconciled anyway); a claimed order gets a new mark, so its claim cannot finish it as
/// done; a done order is pending again.
#[tokio::test]
async fn the_projector_marks_only_orders_a_claim_could_miss() {
    let ns = TestNamespace::new("marks").await;
    import_mask(&ns).await;
    ns.store.set_enabled(EVENT, true).await.unwrap();
    let events = history(&["ord_A"], 4);
    let queue = |ns: &TestNamespace| {
        let store = ns.store.clone();
        async move {
            let r = store
                .client()
                .await
                .unwrap()
                .query_one(
                    "SELECT mark_seq, state FROM work_queue WHERE order_id = 'ord_A'",
                    &[],
                )
                .await
                .unwrap();
            (r.get::<_, i64>(0), r.get::<_, String>(1))
        }
    };
    ns.store.project_batch(&events[..1], "s", 1).await.unwrap();
    assert_eq!(
        queue(&ns).await,
        (1, "pending".into()),
        "a new order is marked"
    );
    let xmin = order_a_column(&ns, "work_queue", "xmin").await;
    ns.store.project_batch(&events[1..2], "s", 2).await.unwrap();
    assert_eq!(queue(&ns).await, (1, "pending".into()));
    assert_eq!(
        order_a_column(&ns, "work_queue", "xmin").await,
        xmin,
        "pending and unclaimed: the row is not rewritten"
    );

    let lease = std::time::Duration::from_secs(60);
    let claims = ns
        .store
        .claim("w1", 10, lease, &["iw-1".to_owned()])
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    ns.store.project_batch(&events[2..3], "s", 3).await.unwrap();
    assert_eq!(queue(&ns).await.0, 2, "claimed: a new mark");
    ns.store
        .finish(&claims[0], &pxsync_store::Finish::Done)
        .await
        .unwrap();
    assert_eq!(
        queue(&ns).await,
        (2, "pending".into()),
        "the claim saw an older mark: the order stays pending"
    );

    let claims = ns
        .store
        .claim("w1", 10, lease, &["iw-1".to_owned()])
        .await
        .unwrap();
    ns.store
        .finish(&claims[0], &pxsync_store::Finish::Done)
        .await
        .unwrap();
    assert_eq!(queue(&ns).await, (2, "done".into()));
    ns.store.project_batch(&events[3..4], "s", 4).await.unwrap();
    assert_eq!(
        queue(&ns).await,
        (3, "pending".into()),
        "done: pending again"
    );
    ns.cleanup().await;
}

/// The emitter reads an order's state under the order's lock: while a batch projecting the
/// order is in flight (it holds the lock until its commit), the read waits, then sees the
/// batch's state.
#[tokio::test]
async fn the_emitter_reads_an_order_after_the_batch_projecting_it() {
    let ns = TestNamespace::new("readlock").await;
    import_mask(&ns).await;
    let events = history(&["ord_A"], 2);
    ns.store.project_batch(&events[..1], "s", 1).await.unwrap();
    let mut client = ns.store.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&ns.store.order_lock_key(EVENT, "ord_A")],
    )
    .await
    .unwrap();
    let store = ns.store.clone();
    let read = tokio::spawn(async move { store.reconcile_context(EVENT, "ord_A").await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!read.is_finished(), "the read waits for the batch");
    tx.commit().await.unwrap();
    let ctx = read.await.unwrap().unwrap();
    assert_eq!(ctx.desired.unwrap().revision, 1);
    drop(client);
    ns.cleanup().await;
}

/// V17: the batch's read of its persons' keys probes the digest index, whatever the table's
/// statistics say (unanalysed, the partial index promised nothing and the planner scanned the
/// table for each batch).
#[tokio::test]
async fn the_persons_of_a_batch_are_read_by_key_whatever_the_statistics() {
    let ns = TestNamespace::new("person_keys").await;
    import_mask(&ns).await;
    let mut client = ns.store.client().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO person_keys (person_id, email_digest, key)
             SELECT gen_random_uuid(), 'digest-' || i, decode(repeat('00', 32), 'hex')
             FROM generate_series(1, 20000) i;
             INSERT INTO person_keys (person_id, email_digest, key, erased_at)
             SELECT gen_random_uuid(), NULL, NULL, now() FROM generate_series(1, 100)",
        )
        .await
        .unwrap();
    let mut digests: Vec<String> = (1..=250).map(|i| format!("digest-{i}")).collect();
    digests.push("digest-missing".into());
    let tx = client.transaction().await.unwrap();
    let before = crate::scans_so_far(&tx, "person_keys").await;
    let found: i64 = tx
        .query_one(
            "SELECT count(*) FROM person_keys_by_digest($1)",
            &[&digests],
        )
        .await
        .unwrap()
        .get(0);
    let after = crate::scans_so_far(&tx, "person_keys").await;
    tx.commit().await.unwrap();
    assert_eq!(found, 250, "every live digest asked for, once");
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (0, 250),
        "one index probe per digest, no scan"
    );
    drop(client);
    // Through the projector's batches: each person keeps one key across two batches.
    let events = history(&["ord_A", "ord_B"], 2);
    assert_eq!(events.len(), 4, "one event per revision");
    for (n, revision) in [1, 2].into_iter().enumerate() {
        let batch: Vec<EventEnvelope> = events
            .iter()
            .filter(|e| e.revision == revision)
            .cloned()
            .collect();
        ns.store
            .project_batch(&batch, "s", n as u64 + 1)
            .await
            .unwrap();
    }
    let client = ns.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT (SELECT count(DISTINCT person_id) FROM event_log WHERE person_id IS NOT NULL),
                    (SELECT count(*) FROM event_log WHERE person_id IS NOT NULL),
                    (SELECT count(*) FROM person_keys)",
            &[],
        )
        .await
        .unwrap();
    let (persons, sealed, keys): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (persons, sealed),
        (2, 4),
        "two persons, each revision sealed with its key"
    );
    assert_eq!(keys, 20_100 + 2, "one key created per new person");
    drop(client);
    ns.cleanup().await;
}
