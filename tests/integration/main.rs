//! Integration tests against the real Postgres and NATS JetStream (each test in its own
//! namespace) and the simulators.

mod audits;
mod budget;
mod ingest;
mod project;

use pxsync_test_support::TestNamespace;

/// Messages in the namespace's stream.
pub async fn stream_messages(ns: &TestNamespace) -> u64 {
    let mut stream = ns
        .bus
        .jetstream()
        .get_stream(ns.ns.stream())
        .await
        .expect("stream");
    stream.info().await.expect("stream info").state.messages
}

/// This transaction's sequential scans of `table` and the rows its index scans fetched so far
/// (`pg_stat_xact_user_tables`: the backend's own counts, whatever it has not yet flushed).
pub async fn scans_so_far(tx: &tokio_postgres::Transaction<'_>, table: &str) -> (i64, i64) {
    tx.query_one(
        "SELECT seq_scan, idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relid = $1::text::regclass",
        &[&table],
    )
    .await
    .map(|r| (r.get(0), r.get(1)))
    .expect("the transaction's table statistics")
}
