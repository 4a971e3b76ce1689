//! The replay benchmark: `Store::replay` of N logged events (several revisions per order) into a
//! shadow schema, in events per second, against a raw sequential read of the same `event_log`
//! rows (keyset pages of 10,000, payloads received but not decoded) in the same run, and the
//! same read with the payloads parsed into `serde_json::Value`, as a note.

use crate::data::{self, EVENT, INWINK_EVENT_ID};
use crate::report::{Report, rate, rate_line};
use pxsync_store::{ReplayOptions, Store};
use pxsync_test_support::TestNamespace;
use std::time::{Duration, Instant};

/// The replay's absolute target.
const TARGET_EVENTS_PER_S: f64 = 50_000.0;

pub async fn run(n: usize) -> anyhow::Result<Vec<Report>> {
    let ns = TestNamespace::new("bench_replay").await;
    let r = replay(&ns, n).await;
    ns.cleanup().await;
    r
}

async fn replay(ns: &TestNamespace, n: usize) -> anyhow::Result<Vec<Report>> {
    let (events, orders) = data::history(n)?;
    ns.store.register_salon(EVENT, INWINK_EVENT_ID).await?;
    ns.store
        .import_mask(EVENT, &data::mask()?, "pxsync-bench")
        .await?;
    for batch in events.chunks(500) {
        ns.store.project_batch(batch, "bench", 0).await?;
    }
    drop(events);

    let (raw_count, raw_elapsed) = raw_read(&ns.store, Payloads::Received).await?;
    let (parsed_count, parsed_elapsed) = raw_read(&ns.store, Payloads::ParsedToValue).await?;
    let into = format!("{}_shadow", ns.ns.schema());
    let started = Instant::now();
    let report = ns
        .store
        .replay(
            &ReplayOptions {
                planexpo_event: Some(EVENT.into()),
                until: None,
                into: into.clone(),
            },
            |_, _| {},
        )
        .await?;
    let elapsed = started.elapsed();
    ns.store
        .client()
        .await?
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {into} CASCADE"))
        .await?;
    anyhow::ensure!(
        report.events as usize == n && raw_count == n && parsed_count == n,
        "replayed {} and read {raw_count} events, {n} logged",
        report.events
    );
    let replay_rate = rate(n, elapsed);
    Ok(vec![Report {
        name: "replay",
        what: format!(
            "Store::replay of {n} logged events ({orders} orders) into a shadow schema, compared with the live state"
        ),
        figure: rate_line(n, elapsed, "events"),
        baseline: format!(
            "raw sequential read of the same event_log rows, payloads received, not decoded: {}",
            rate_line(raw_count, raw_elapsed, "rows")
        ),
        ratio: replay_rate / rate(raw_count, raw_elapsed),
        target: format!("at least {TARGET_EVENTS_PER_S:.0} events/s"),
        pass: Some(replay_rate >= TARGET_EVENTS_PER_S),
        notes: vec![
            format!(
                "{} differences with the live state (0 expected); personal fields opened with their keys",
                report.differences.len()
            ),
            format!(
                "the same read with each payload parsed into a serde_json::Value (the baseline before): {}",
                rate_line(parsed_count, parsed_elapsed, "rows")
            ),
        ],
    }])
}

/// A column read as the bytes Postgres sent, whatever its type (nothing decoded).
struct Undecoded(usize);

impl<'a> tokio_postgres::types::FromSql<'a> for Undecoded {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Undecoded(raw.len()))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// How the raw read handles each payload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Payloads {
    /// Received, not decoded (the baseline: what reading the rows costs).
    Received,
    /// Parsed into a `serde_json::Value` (the baseline of earlier runs).
    ParsedToValue,
}

/// Reads every row of the log in position order, in pages of 10,000, payloads included.
async fn raw_read(store: &Store, payloads: Payloads) -> anyhow::Result<(usize, Duration)> {
    let client = store.client().await?;
    let started = Instant::now();
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let (mut after, mut count) = (0i64, 0usize);
    loop {
        let rows = client
            .query(
                "SELECT position, payload FROM event_log WHERE position > $1 ORDER BY position LIMIT 10000",
                &[&after],
            )
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        count += rows
            .iter()
            .filter(|r| match payloads {
                Payloads::Received => r.get::<_, Undecoded>(1).0 > 0,
                Payloads::ParsedToValue => serde_json::from_slice::<serde_json::Value>(r.get(1))
                    .is_ok_and(|v| v.is_object()),
            })
            .count();
    }
    client.batch_execute("COMMIT").await?;
    Ok((count, started.elapsed()))
}
