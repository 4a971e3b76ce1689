//! Audits: the sealed personal data of the event log, replays into a shadow schema (whole, and up
//! to a point across a mask re-import), erasure, and the story of an order.

use pxsync_core::event::{DeriveContext, EventData, EventEnvelope, Previous, derive_events};
use pxsync_core::mask::{Mask, MaskRow, check_mask};
use pxsync_core::order::observe;
use pxsync_store::{ERASED, EventFilter, ReplayOptions, Store, Until};
use pxsync_test_support::TestNamespace;
use serde_json::{Value, json};

const SALON: &str = "salon-audit-2026";

/// Revision `rev` of order `n`: quantities move up and down, the contact is a named person.
fn order_json(n: usize, rev: u64) -> Value {
    let qty = [4, 9, 6, 12][(rev as usize + n) % 4];
    json!({
        "id": format!("ord_{n:05}"), "public_id": format!("PX-{n}"), "event": SALON, "revision": rev,
        "updated_at": format!("2026-04-0{}T08:{:02}:00Z", rev, n % 60), "status": "validated",
        "parent_order_id": null,
        "company": {"name": format!("Exposant {n} rev {rev}"), "address": {"street": "1 rue de la Paix", "city": "Paris"}, "website": null},
        "stand": null,
        "booking_contact": {"civility": "Mme", "last_name": format!("Durand{n}"), "first_name": "Alice",
            "email": format!("alice.durand{n}@example.fr"), "company": "ACME", "job_title": null,
            "phone_1": "+33 1 23 45 67 89", "phone_2": null, "preferred_language": "fr"},
        "lines": [{"product_id": "px_banner", "product_name": "Bannière", "quantity": qty},
                  {"product_id": "px_badge", "product_name": "Badge", "quantity": rev}]
    })
}

/// Revisions `revs` of orders `0..orders`, derived as the ingestor would.
fn revisions(orders: usize, revs: std::ops::RangeInclusive<u64>) -> Vec<EventEnvelope> {
    let ctx = derive_context();
    let mut out = Vec::new();
    for n in 0..orders {
        let mut prev = Previous::default();
        for rev in 1..=*revs.end() {
            let events = derive_events(&prev, observe(&order_json(n, rev)).unwrap(), &ctx);
            prev = prev.after(&events);
            if revs.contains(&rev) {
                out.extend(events);
            }
        }
    }
    out
}

/// What the ingestor remembers of order `n` after observing revisions `1..=rev`.
fn ingestor_memory(n: usize, rev: u64) -> Previous {
    let mut p = Previous::default();
    for r in 1..=rev {
        let events = derive_events(&p, observe(&order_json(n, r)).unwrap(), &derive_context());
        p = p.after(&events);
    }
    p
}

fn derive_context() -> DeriveContext<'static> {
    DeriveContext {
        inwink_event_id: "iw-audit",
        recorded_at: pxsync_core::Timestamp::EPOCH,
        traceparent: None,
    }
}

fn mask(banner: &str) -> Mask {
    let (mask, issues) = check_mask(&[
        MaskRow {
            row: 2,
            planexpo_product_name: "Bannière".into(),
            planexpo_product_id: Some("px_banner".into()),
            inwink_product_name: "Banner".into(),
            inwink_product_id: Some(banner.into()),
        },
        MaskRow {
            row: 3,
            planexpo_product_name: "Badge".into(),
            planexpo_product_id: Some("px_badge".into()),
            inwink_product_name: "Badge".into(),
            inwink_product_id: Some("iw-badge".into()),
        },
    ]);
    assert!(issues.is_empty(), "{issues:?}");
    mask
}

/// A namespace with the salon registered and its first mask (banner → `iw-banner`) imported.
async fn salon_namespace(tag: &str) -> TestNamespace {
    let ns = TestNamespace::new(tag).await;
    ns.store.register_salon(SALON, "iw-audit").await.unwrap();
    ns.store
        .import_mask(SALON, &mask("iw-banner"), "v1")
        .await
        .unwrap();
    ns
}

/// Replays into `into` (the shadow schema).
async fn replay(
    ns: &TestNamespace,
    until: Option<Until>,
    into: &str,
) -> pxsync_store::ReplayReport {
    ns.store
        .replay(
            &ReplayOptions {
                planexpo_event: Some(SALON.into()),
                until,
                into: into.to_owned(),
            },
            |_, _| {},
        )
        .await
        .unwrap()
}

async fn project(store: &Store, events: &[EventEnvelope]) {
    for batch in events.chunks(500) {
        store.project_batch(batch, "s", 0).await.unwrap();
    }
}

/// Four columns of every row of `table`, ordered by order id.
async fn four_columns<A, B, C, D>(store: &Store, table: &str, columns: &str) -> Vec<(A, B, C, D)>
where
    A: for<'a> tokio_postgres::types::FromSql<'a>,
    B: for<'a> tokio_postgres::types::FromSql<'a>,
    C: for<'a> tokio_postgres::types::FromSql<'a>,
    D: for<'a> tokio_postgres::types::FromSql<'a>,
{
    let c = store.client().await.unwrap();
    c.query(
        &format!("SELECT {columns} FROM {table} ORDER BY order_id"),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// The live order_state (or a shadow copy) as comparable rows (the desired state is not stored:
/// it follows from the state and the mask).
async fn state_rows(store: &Store, table: &str) -> Vec<(String, i64, Value, Option<String>)> {
    four_columns(
        store,
        table,
        "order_id, revision, json_of(state), traceparent",
    )
    .await
}

/// The columns of order_state derived from the desired state (e-mail key, updated_at as text,
/// parent) and the trace context.
async fn derived_columns(
    store: &Store,
    table: &str,
) -> Vec<(String, Option<String>, Option<String>, Option<String>)> {
    four_columns(
        store,
        table,
        "order_id, email_key, updated_at::text, coalesce(parent_order_id, '') || coalesce(traceparent, '')",
    )
    .await
}

fn shadow(ns: &TestNamespace, tag: &str) -> String {
    format!("{}_{tag}", ns.ns.schema())
}

async fn drop_schema(store: &Store, schema: &str) {
    let c = store.client().await.unwrap();
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_replay_of_2000_orders_equals_the_live_state_and_the_log_holds_no_personal_value() {
    let ns = salon_namespace("replay").await;
    let events = revisions(2_000, 1..=3);
    assert_eq!(events.len(), 6_000);
    project(&ns.store, &events).await;

    // The log holds no personal value in clear, and reads back the contact exactly.
    let c = ns.store.client().await.unwrap();
    let clear: i64 = c
        .query_one(
            "SELECT count(*) FROM event_log, convert_from(payload, 'UTF8') AS p(text) WHERE p.text LIKE '%alice%' OR p.text LIKE '%Durand%' OR p.text LIKE '%23 45%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(clear, 0, "no name, e-mail or phone in clear in event_log");
    let keys: i64 = c
        .query_one("SELECT count(*) FROM person_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 2_000, "one key per person");
    let back = ns
        .store
        .logged_events(EventFilter {
            order_id: Some("ord_00007".into()),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(back.len(), 3);
    let original: Vec<&EventEnvelope> = events
        .iter()
        .filter(|e| e.order_id == "ord_00007")
        .collect();
    for (read, orig) in back.iter().zip(original) {
        assert_eq!(read.event.as_ref().unwrap(), orig, "read back exactly");
        assert!(!read.erased);
    }

    let into = shadow(&ns, "shadow");
    let mut calls = 0;
    let report = ns
        .store
        .replay(
            &ReplayOptions {
                planexpo_event: Some(SALON.into()),
                until: None,
                into: into.clone(),
            },
            |_, _| calls += 1,
        )
        .await
        .unwrap();
    assert_eq!(report.events, 6_000);
    assert_eq!(report.orders, 2_000);
    assert_eq!(
        report.differences,
        vec![],
        "no difference with the live state"
    );
    assert!(calls >= 1, "progress reported");
    let live = state_rows(&ns.store, "order_state").await;
    assert_eq!(live.len(), 2_000);
    assert_eq!(
        state_rows(&ns.store, &format!("{into}.order_state")).await,
        live
    );
    let live_columns = derived_columns(&ns.store, "order_state").await;
    assert!(live_columns.iter().all(|c| c.1.is_some() && c.2.is_some()));
    assert_eq!(
        derived_columns(&ns.store, &format!("{into}.order_state")).await,
        live_columns,
        "the shadow rows carry the same lookup columns as the projector's"
    );
    assert_eq!(ns.store.verify_chains().await.unwrap(), None);
    drop_schema(&ns.store, &into).await;
    ns.cleanup().await;
}

#[tokio::test]
async fn replay_until_reproduces_an_earlier_state_across_a_mask_reimport() {
    let ns = salon_namespace("until").await;
    project(&ns.store, &revisions(50, 1..=2)).await;
    let then = state_rows(&ns.store, "order_state").await;
    let c = ns.store.client().await.unwrap();
    let row = c
        .query_one("SELECT max(position), now() FROM event_log", &[])
        .await
        .unwrap();
    let (position, at): (i64, time::OffsetDateTime) = (row.get(0), row.get(1));
    // Later: a new mask (the banner remapped) and newer revisions.
    ns.store
        .import_mask(SALON, &mask("iw-banner-xl"), "v2")
        .await
        .unwrap();
    project(&ns.store, &revisions(50, 3..=4)).await;
    let now = state_rows(&ns.store, "order_state").await;
    assert_ne!(now, then, "the live state moved on");

    for (tag, until) in [
        ("pos", Until::Position(position)),
        ("time", Until::Time(at)),
    ] {
        let into = shadow(&ns, tag);
        let report = replay(&ns, Some(until), &into).await;
        assert_eq!(report.events, 100, "{tag}");
        assert_eq!(
            report.mask_versions.get(SALON),
            Some(&1),
            "{tag}: mask then in force"
        );
        assert_eq!(
            state_rows(&ns.store, &format!("{into}.order_state")).await,
            then,
            "{tag}: the state as it was"
        );
        assert_eq!(
            report.differences.len(),
            50,
            "{tag}: every order moved since"
        );
        drop_schema(&ns.store, &into).await;
    }
    ns.cleanup().await;
}

#[tokio::test]
async fn an_erased_person_reads_as_erased_and_replays_audits_and_chains_still_run() {
    let ns = salon_namespace("erase").await;
    project(&ns.store, &revisions(3, 1..=2)).await;
    // The ingestor's memory of the three orders (revision 2), as it records it.
    let memory: std::collections::BTreeMap<String, Previous> = (0..3)
        .map(|n| (format!("ord_{n:05}"), ingestor_memory(n, 2)))
        .collect();
    let recorded = memory.iter().map(|(id, p)| (id.as_str(), p)).collect();
    ns.store
        .record_ingested(SALON, &recorded, None)
        .await
        .unwrap();

    // The address as typed by the operator (case and spaces do not matter).
    let erasure = ns
        .store
        .erase_person("  Alice.Durand1@EXAMPLE.fr ")
        .await
        .unwrap();
    assert_eq!(erasure.keys_erased, 1);
    assert_eq!(erasure.events_erased, 2);
    assert_eq!(erasure.ingest_memory_scrubbed, 1);
    // The ingestor's memory of ord_00001 lost its contact and nothing else; the others are kept.
    let ids: Vec<String> = memory.keys().cloned().collect();
    let after = ns.store.previous(SALON, &ids).await.unwrap();
    let mut expected_after = memory.clone();
    if let Some(s) = expected_after
        .get_mut("ord_00001")
        .and_then(|p| p.snapshot.as_mut())
    {
        s.contact = None;
    }
    assert_eq!(after, expected_after);
    assert!(
        memory["ord_00001"]
            .snapshot
            .as_ref()
            .unwrap()
            .contact
            .is_some()
    );
    // Its change detection still works: the next revision shows the contact as changed.
    let next = derive_events(
        &after["ord_00001"],
        observe(&order_json(1, 3)).unwrap(),
        &derive_context(),
    );
    let EventData::Observed(o) = &next[0].data else {
        panic!("an observed revision");
    };
    assert!(
        o.changes.contains(&pxsync_core::event::Change::Contact),
        "{:?}",
        o.changes
    );
    assert!(
        !o.changes.contains(&pxsync_core::event::Change::FirstSeen),
        "still known to the ingestor"
    );
    assert_eq!(
        erasure.still_current_in,
        vec![(SALON.to_owned(), "ord_00001".to_owned())],
        "Planexpo still has the person as ord_00001's contact"
    );

    let back = ns
        .store
        .logged_events(EventFilter {
            order_id: Some("ord_00001".into()),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(back.len(), 2);
    for e in &back {
        assert!(e.erased);
        let EventData::Observed(o) = &e.event.as_ref().unwrap().data else {
            panic!("an observed revision");
        };
        let contact = o.snapshot.contact.as_ref().unwrap();
        assert_eq!(contact.email, ERASED);
        assert_eq!(contact.last_name.as_deref(), Some(ERASED));
        assert_eq!(contact.phone_1.as_deref(), Some(ERASED));
        assert_eq!(contact.phone_2, None, "a field it never had stays empty");
        assert_eq!(contact.company.as_deref(), Some("ACME"), "not personal");
        assert_eq!(o.snapshot.lines.len(), 2, "the rest of the order is intact");
    }
    // Another person is untouched.
    let other = ns
        .store
        .logged_events(EventFilter {
            order_id: Some("ord_00002".into()),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert!(other.iter().all(|e| !e.erased));

    assert_eq!(
        ns.store.verify_chains().await.unwrap(),
        None,
        "the chains still verify"
    );
    let into = shadow(&ns, "erased");
    let report = replay(&ns, None, &into).await;
    assert_eq!(report.erased_orders, 1);
    assert_eq!(report.differences, vec![], "erased, otherwise equal");
    let c = ns.store.client().await.unwrap();
    let shadow_email: String = c
        .query_one(
            &format!(
                "SELECT json_of(state)->'snapshot'->'contact'->>'email' FROM {into}.order_state WHERE order_id = 'ord_00001'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(shadow_email, ERASED);

    let trail = ns.store.audit_trail(SALON, "ord_00001").await.unwrap();
    assert_eq!(trail.len(), 2);
    assert!(
        trail
            .iter()
            .all(|e| e.summary.contains("booking contact erased") && !e.summary.contains("Durand")),
        "{trail:?}"
    );
    // A second erasure finds nothing more.
    assert_eq!(
        ns.store
            .erase_person("alice.durand1@example.fr")
            .await
            .unwrap()
            .keys_erased,
        0
    );
    drop_schema(&ns.store, &into).await;
    ns.cleanup().await;
}

#[tokio::test]
async fn the_audit_of_an_order_tells_its_refused_decrease_and_its_healed_deletion() {
    let ns = salon_namespace("story").await;
    project(&ns.store, &revisions(1, 1..=3)).await;
    let order = "ord_00000";
    ns.store
        .record_refused_decrease(SALON, order, "iw-banner", 12, 4)
        .await
        .unwrap();
    ns.store
        .record_heal(
            SALON,
            Some(order),
            "partner_recreated",
            "partner deleted by hand on inwink: recreated",
        )
        .await
        .unwrap();
    let trail = ns.store.audit_trail(SALON, order).await.unwrap();
    let kinds: Vec<&str> = trail.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "revision").count(),
        3,
        "{kinds:?}"
    );
    let refused = trail
        .iter()
        .find(|e| e.kind == "refused_decrease")
        .expect("the refused decrease is told");
    assert!(
        refused.summary.contains("inwink keeps 12") && refused.summary.contains("asked for 4"),
        "{}",
        refused.summary
    );
    let heal = trail
        .iter()
        .find(|e| e.kind == "heal")
        .expect("the heal is told");
    assert!(heal.summary.contains("recreated"), "{}", heal.summary);
    assert!(
        trail.iter().all(|e| !e.summary.contains("alice")),
        "no personal value"
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn the_audit_as_of_a_time_shows_the_order_as_it_stood_then() {
    let ns = salon_namespace("asof").await;
    let order = "ord_00003";
    project(&ns.store, &revisions(5, 1..=2)).await;
    ns.store
        .record_floor(SALON, order, "iw-banner", 9, false)
        .await
        .unwrap();
    let (_, desired_then) = ns.store.order_state(SALON, order).await.unwrap().unwrap();
    let c = ns.store.client().await.unwrap();
    let then: time::OffsetDateTime = c.query_one("SELECT now()", &[]).await.unwrap().get(0);
    ns.store
        .import_mask(SALON, &mask("iw-banner-xl"), "v2")
        .await
        .unwrap();
    project(&ns.store, &revisions(5, 3..=4)).await;
    ns.store
        .record_floor(SALON, order, "iw-badge", 4, false)
        .await
        .unwrap();

    let r = ns.store.audit_as_of(SALON, order, then).await.unwrap();
    assert_eq!(r.revision, 2);
    assert_eq!(r.mask_version, Some(1), "the mask then in force");
    assert_eq!(r.entries.iter().filter(|e| e.kind == "revision").count(), 2);
    let products: std::collections::BTreeMap<String, u32> =
        serde_json::from_value(desired_then.unwrap()["products"].clone()).unwrap();
    assert_eq!(r.desired.as_ref().unwrap().products, products);
    let banner = r
        .applied
        .floors
        .iter()
        .find(|f| f.product_id == "iw-banner")
        .unwrap();
    assert!(banner.exact && banner.floor == 9, "{banner:?}");
    let badge = r
        .applied
        .floors
        .iter()
        .find(|f| f.product_id == "iw-badge")
        .unwrap();
    assert!(
        !badge.exact,
        "written after the moment: not known as of then"
    );
    ns.cleanup().await;
}

/// Records what the emitter would have applied for every order, round after round, until the
/// planner has nothing left to write (no inwink involved: only the applied records).
async fn apply_everything(store: &Store) {
    use pxsync_core::plan::{Op, plan_order};
    for order in store.order_ids(SALON).await.unwrap() {
        for _round in 0..4 {
            let ctx = store.reconcile_context(SALON, &order).await.unwrap();
            let desired = ctx.desired.clone().unwrap();
            let plan = plan_order(ctx.plan_input(&desired));
            if plan.ops.is_empty() {
                break;
            }
            for op in &plan.ops {
                match op {
                    Op::CreatePartner(w) | Op::UpdatePartner(w) => store
                        .record_partner(SALON, &order, &format!("p-{order}"), Some(w))
                        .await
                        .unwrap(),
                    Op::CreateParticipant(p) | Op::UpdateParticipant(p) => store
                        .record_participant(SALON, &p.email_key, &format!("u-{order}"), Some(p))
                        .await
                        .unwrap(),
                    Op::LinkTeamMember => {
                        if let (Some(p), Some(u)) = (&ctx.partner, &ctx.participant_record) {
                            store
                                .record_link(SALON, &p.partner_id, &u.participant_id, None)
                                .await
                                .unwrap();
                        }
                    }
                    Op::SetQuantity {
                        product_id,
                        quantity,
                        ..
                    } => store
                        .record_floor(SALON, &order, product_id, *quantity, false)
                        .await
                        .unwrap(),
                }
            }
        }
    }
}

#[tokio::test]
async fn audit_verify_catches_a_tampered_applied_record_and_accepts_recorded_reasons() {
    let ns = salon_namespace("verify").await;
    project(&ns.store, &revisions(4, 1..=2)).await;
    ns.store.set_enabled(SALON, true).await.unwrap();
    apply_everything(&ns.store).await;
    let c = ns.store.client().await.unwrap();
    c.batch_execute("UPDATE work_queue SET state = 'done'")
        .await
        .unwrap();
    let check = pxsync::verify::verify_applied(&ns.store).await.unwrap();
    assert_eq!(check.orders, 4);
    assert_eq!(check.unexplained, vec![], "all applied, nothing to explain");

    // A floor lowered behind pxsync's back, and one raised without a refused decrease.
    c.batch_execute(
        "UPDATE applied_quantities SET floor = 1 WHERE order_id = 'ord_00001' AND product_id = 'iw-banner';
         UPDATE applied_quantities SET floor = 99 WHERE order_id = 'ord_00002' AND product_id = 'iw-badge';",
    )
    .await
    .unwrap();
    let check = pxsync::verify::verify_applied(&ns.store).await.unwrap();
    let found: Vec<(&str, &str)> = check
        .unexplained
        .iter()
        .map(|u| (u.order_id.as_str(), u.detail.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].0 == "ord_00001" && found[0].1.contains("iw-banner: applied floor 1 below"),
        "{found:?}"
    );
    assert!(
        found[1].0 == "ord_00002" && found[1].1.contains("no refused decrease recorded"),
        "{found:?}"
    );

    // Recorded reasons explain them: the decrease refused, the other order parked.
    ns.store
        .record_refused_decrease(SALON, "ord_00002", "iw-badge", 99, 2)
        .await
        .unwrap();
    c.batch_execute("UPDATE work_queue SET state = 'parked' WHERE order_id = 'ord_00001'")
        .await
        .unwrap();
    let check = pxsync::verify::verify_applied(&ns.store).await.unwrap();
    assert_eq!(check.unexplained, vec![]);
    assert_eq!(check.explained.get("parked"), Some(&1));
    ns.cleanup().await;
}
