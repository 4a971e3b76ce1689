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
