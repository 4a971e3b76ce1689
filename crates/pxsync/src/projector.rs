//! The projector: the durable pull consumer → one Postgres transaction per fetched batch (event
//! log, fold, desired state, marks, checkpoint) → acknowledgement after commit.
//!
//! Poison handling: bytes that are not an event are terminated and written to `dead_letters`;
//! an event of a newer schema version (a rolling upgrade in progress) is NAKed with a delay so
//! an upgraded projector takes it.

use crate::Shutdown;
use anyhow::Context;
use futures::StreamExt;
use pxsync_bus::{Bus, StreamSettings};
use pxsync_core::event::{DecodeError, decode};
use pxsync_store::Store;
use std::time::Duration;

/// Projector tuning.
#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    pub batch: usize,
    pub fetch_wait: Duration,
    /// Delay before an event of a newer schema version is offered again.
    pub newer_schema_delay: Duration,
    /// Delay before an event of an order behind a dead letter is offered again.
    pub held_delay: Duration,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        ProjectorSettings {
            batch: 500,
            fetch_wait: Duration::from_millis(500),
            newer_schema_delay: Duration::from_secs(30),
            held_delay: Duration::from_secs(5),
        }
    }
}

pub async fn run(
    store: Store,
    bus: Bus,
    stream: StreamSettings,
    settings: ProjectorSettings,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let Some(consumer) = crate::retry_until_ready("projector consumer", &shutdown, || {
        bus.projector_consumer(&stream)
    })
    .await
    else {
        return Ok(());
    };
    tracing::info!(stream = %bus.namespace().stream(), "projecting");
    let stream_name = bus.namespace().stream();
    let mut failures = 0u32;
    while !shutdown.is_triggered() {
        let fetched = tokio::select! {
            r = consumer.fetch().max_messages(settings.batch).expires(settings.fetch_wait).messages() => r,
            _ = shutdown.wait() => break,
        };
        let mut messages = match fetched {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "fetch failed");
                shutdown.sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut batch = Vec::new();
        while let Some(m) = messages.next().await {
            match m {
                Ok(m) => batch.push(m),
                Err(e) => tracing::warn!(error = %e, "message error"),
            }
        }
        if batch.is_empty() {
            continue;
        }
        match project(&store, &stream_name, &settings, batch).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                // Nothing acknowledged: JetStream redelivers after ack_wait; back off meanwhile.
                tracing::warn!(
                    error = format!("{e:#}"),
                    "batch not projected; it will be redelivered"
                );
                shutdown
                    .sleep(Duration::from_millis(200 * 2u64.pow(failures.min(5))))
                    .await;
            }
        }
    }
    Ok(())
}

async fn project(
    store: &Store,
    stream: &str,
    settings: &ProjectorSettings,
    batch: Vec<pxsync_bus::Message>,
) -> anyhow::Result<()> {
    let mut batch = batch;
    batch.sort_by_key(|m| m.info().map(|i| i.stream_sequence).unwrap_or(0));
    let mut events = Vec::with_capacity(batch.len());
    let mut to_ack = Vec::with_capacity(batch.len());
    let mut last_seq = 0u64;
    // Orders behind a dead letter wait until an operator resolves it.
    let subjects: Vec<String> = batch.iter().map(|m| m.subject.to_string()).collect();
    let mut held = store
        .held_subjects(&subjects)
        .await
        .context("find held orders")?;
    for m in batch {
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
        last_seq = last_seq.max(seq);
        if held.contains(m.subject.as_str()) {
            tracing::debug!(seq, "event of an order behind a dead letter: waiting");
            let _ = m
                .ack_with(async_nats::jetstream::AckKind::Nak(Some(
                    settings.held_delay,
                )))
                .await;
            continue;
        }
        match decode(&m.payload) {
            Ok(e) => {
                events.push(e);
                to_ack.push(m);
            }
            Err(DecodeError::NewerSchema { found, kind }) => {
                tracing::warn!(
                    seq,
                    found,
                    kind,
                    "event of a newer schema version: waiting for an upgraded projector"
                );
                let _ = m
                    .ack_with(async_nats::jetstream::AckKind::Nak(Some(
                        settings.newer_schema_delay,
                    )))
                    .await;
            }
            Err(DecodeError::Undecodable(reason)) => {
                tracing::error!(seq, reason, "undecodable event: dead-lettered");
                store
                    .dead_letter(seq, m.subject.as_str(), &reason, &m.payload)
                    .await
                    .context("write the dead letter")?;
                held.insert(m.subject.to_string());
                let _ = m.ack_with(async_nats::jetstream::AckKind::Term).await;
            }
        }
    }
    // Each event's span continues the trace its ingestor started (through the NATS message).
    let spans: Vec<tracing::Span> = events
        .iter()
        .map(|e| {
            let span = tracing::info_span!("project.event", order = %e.order_id, revision = e.revision, kind = e.kind().as_str());
            crate::telemetry::set_remote_parent(&span, e.traceparent.as_deref());
            span
        })
        .collect();
    let outcome = store
        .project_batch(&events, stream, last_seq)
        .await
        .context("project the batch")?;
    tracing::debug!(
        inserted = outcome.inserted,
        duplicates = outcome.duplicates,
        changed = outcome.changed_orders,
        "batch committed"
    );
    drop(spans);
    for m in to_ack {
        if let Err(e) = m.ack().await {
            tracing::warn!(error = %e, "ack failed; the event will be redelivered and recognised");
        }
    }
    Ok(())
}
