//! The inwink rate budget shared through Postgres (`Store::take_call_slots`).

use pxsync_store::Store;
use pxsync_test_support::{TestNamespace, database_url};
use std::time::Duration;
use tokio::time::Instant;

/// Two stores (two processes' pools) taking slots at once get one timeline: no two slots closer
/// than the interval, and the timeline as long as every slot taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_take_slots_on_one_timeline() {
    let ns = TestNamespace::new("budget").await;
    let interval = Duration::from_millis(200);
    let other = Store::connect(&database_url(), &ns.ns, 2).unwrap();
    let take = |store: Store, n: u32| async move {
        let mut slots = Vec::new();
        for _ in 0..4 {
            let waits = store
                .take_call_slots("8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b", n, interval)
                .await
                .unwrap();
            assert_eq!(waits.len(), n as usize);
            let now = Instant::now();
            slots.extend(waits.into_iter().map(|w| now + w));
        }
        slots
    };
    let started = Instant::now();
    let (a, b) = tokio::join!(take(ns.store.clone(), 1), take(other, 3));
    let mut slots: Vec<Instant> = a.into_iter().chain(b).collect();
    slots.sort();
    assert_eq!(slots.len(), 16);
    // The slots are exactly `interval` apart by Postgres's clock; each is measured here after a
    // round trip, so allow half an interval for that.
    for pair in slots.windows(2) {
        assert!(
            pair[1] - pair[0] >= interval / 2,
            "two slots {:?} apart",
            pair[1] - pair[0]
        );
    }
    assert!(slots[15] - started >= interval * 15 - interval / 2);
    // Another inwink event has a timeline of its own: its first slot is due now.
    let waits = ns
        .store
        .take_call_slots("another-event", 1, interval)
        .await
        .unwrap();
    assert_eq!(waits, vec![Duration::ZERO]);
    ns.cleanup().await;
}
