//! The projector: the durable pull consumer → one Postgres transaction per fetched batch (event
//! log, fold state, marks, checkpoint) → acknowledgement after commit. The desired inwink state
//! is computed from the fold state and the mask where it is read (V15).
//!
//! The loop is pipelined: a fetching task fetches and decodes batch N+1 while batch N's
//! transaction runs, and hands it over through a channel of one batch. Batch N's messages are
//! acknowledged only after its commit (the acknowledgements are published without waiting for
//! the server's confirmation: a lost one is a redelivery, which the event log recognises).
//!
//! Poison handling: bytes that are not an event are terminated and written to `dead_letters`;
//! an event of a newer schema version (a rolling upgrade in progress) is NAKed with a delay so
//! an upgraded projector takes it.
//!
//! Fault hooks ([`Fault`], `PXSYNC_FAULT`) are for tests only: compiled in, inert unless set.

use crate::Shutdown;
use anyhow::Context;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use pxsync_bus::{Bus, Message, StreamSettings};
use pxsync_core::event::{DecodeError, EventEnvelope, decode};
use pxsync_store::Store;
use std::time::Duration;
use tokio::sync::mpsc;

/// Projector tuning.
#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    /// Messages per fetched batch, and so per transaction.
    pub batch: usize,
    pub fetch_wait: Duration,
    /// Batches projected at once, each in its own transaction (and connection).
    pub transactions: usize,
    /// Delay before an event of a newer schema version is offered again.
    pub newer_schema_delay: Duration,
    /// Delay before an event of an order behind a dead letter is offered again.
    pub held_delay: Duration,
    /// Test only: where the process dies on purpose (`None` in production).
    pub fault: Option<Fault>,
}

/// The default batch: large enough that a transaction's fixed costs (round trips, the commit's
/// WAL flush) are spread thin, small enough that a batch stays well inside the acknowledgement
/// wait (30 s) even on a loaded machine. Memory grows with batch x transactions (about 12 MiB
/// per 500 events in flight: the decoded events, their rows, and the connection's buffers);
/// 250 x 2 projected as fast as 500 x 2 (`make bench`, 400,000 events: 9,360 against 8,773
/// events/s) at 35 MiB instead of 63 with 100,000 orders in state, and 250 x 3 as fast as
/// 500 x 3.
pub const DEFAULT_BATCH: usize = 250;

/// Batches in their transaction at once: while Postgres runs one batch's statements, this
/// process prepares another and a third waits on its round trips. See ARCHITECTURE.md
/// (Performance, session 12) for the measurements; each transaction adds about 5 MiB at the
/// peak. The pool needs one connection per transaction.
pub const DEFAULT_TRANSACTIONS: usize = 3;

impl Default for ProjectorSettings {
    fn default() -> Self {
        ProjectorSettings {
            batch: DEFAULT_BATCH,
            fetch_wait: Duration::from_millis(500),
            transactions: DEFAULT_TRANSACTIONS,
            newer_schema_delay: Duration::from_secs(30),
            held_delay: Duration::from_secs(5),
            fault: None,
        }
    }
}

/// A test-only fault hook: the projector process exits at once with [`FAULT_EXIT_CODE`], at one
/// point of its first batch's cycle, without acknowledging anything of that batch and without
/// shutting down. Set with `PXSYNC_FAULT=projector:after-fetch` or `projector:after-commit`
/// (see `ProjectorArgs`). Never set in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// After a batch is fetched, before its transaction: nothing of it committed.
    AfterFetch,
    /// After a batch's commit, before its acknowledgements: it is committed and will be
    /// redelivered.
    AfterCommit,
}

/// The exit status of a process killed by its [`Fault`].
pub const FAULT_EXIT_CODE: i32 = 86;

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::AfterFetch => "projector:after-fetch",
            Fault::AfterCommit => "projector:after-commit",
        }
    }

    fn strike(self) -> ! {
        tracing::error!("fault injected: {}", self.as_str());
        std::process::exit(FAULT_EXIT_CODE)
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Fault, String> {
        [Fault::AfterFetch, Fault::AfterCommit]
            .into_iter()
            .find(|f| f.as_str() == text)
            .ok_or_else(|| {
                "expected projector:after-fetch or projector:after-commit (a test-only fault hook)"
                    .into()
            })
    }
}

/// One fetched message, decoded by the fetching task.
type Fetched = (Message, Result<EventEnvelope, DecodeError>);

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
    // Each batch in its transaction holds one connection until its commit.
    let mut settings = settings;
    let pool = store.pool_size();
    if settings.transactions > pool {
        tracing::warn!(
            transactions = settings.transactions,
            pool,
            "PXSYNC_PROJECTOR_TRANSACTIONS needs one connection per transaction: lowered to fit PXSYNC_DATABASE_POOL_SIZE"
        );
        settings.transactions = pool.max(1);
    }
    tracing::info!(stream = %bus.namespace().stream(), batch = settings.batch, transactions = settings.transactions, "projecting");
    let stream_name = bus.namespace().stream();
    let (handover, mut batches) = mpsc::channel::<Vec<Fetched>>(1);
    let fetcher = tokio::spawn(fetch_batches(
        consumer,
        settings.clone(),
        handover,
        shutdown.clone(),
    ));
    // Up to `settings.transactions` batches are projected at once, each in its own transaction
    // and on its own connection: while Postgres runs one batch's statements, this process
    // prepares the next one. Batches in flight are so many projectors as far as the store is
    // concerned (orders serialised by their chain-head locks, the checkpoint only moving
    // forward), and each batch is acknowledged after its own commit.
    let mut in_flight = FuturesUnordered::new();
    let mut failures = 0u32;
    loop {
        tokio::select! {
            Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                match result {
                    Ok(()) => failures = 0,
                    // The next batch waits before it starts.
                    Err(e) => {
                        failures += 1;
                        not_projected(&e);
                    }
                }
            }
            batch = batches.recv(), if in_flight.len() < settings.transactions.max(1) => {
                let Some(batch) = batch else { break };
                if settings.fault == Some(Fault::AfterFetch) {
                    Fault::AfterFetch.strike();
                }
                let backoff = (failures > 0)
                    .then(|| Duration::from_millis(200 * 2u64.pow(failures.min(5))));
                let (store, stream_name, settings, shutdown) = (&store, &stream_name, &settings, &shutdown);
                in_flight.push(async move {
                    if let Some(delay) = backoff {
                        shutdown.sleep(delay).await;
                    }
                    project(store, stream_name, settings, batch).await
                });
            }
            _ = shutdown.wait() => break,
        }
    }
    // Batches already in their transaction finish (and are acknowledged).
    while let Some(result) = in_flight.next().await {
        if let Err(e) = result {
            not_projected(&e);
        }
    }
    // What was fetched ahead and not projected goes back at once, for another projector. Closing
    // the channel first wakes a fetcher waiting to hand a batch over.
    batches.close();
    let _ = fetcher.await;
    while let Some(batch) = batches.recv().await {
        give_back(batch).await;
    }
    Ok(())
}

/// A batch whose transaction failed: nothing of it was acknowledged, so JetStream redelivers it
/// after the acknowledgement wait.
fn not_projected(e: &anyhow::Error) {
    tracing::warn!(
        error = format!("{e:#}"),
        "batch not projected; it will be redelivered"
    );
}

/// NAKs fetched messages that will not be projected here, so that they are redelivered at once.
async fn give_back(batch: Vec<Fetched>) {
    for (m, _) in batch {
        let _ = m.ack_with(AckKind::Nak(None)).await;
    }
}

/// Fetches and decodes batches ahead of the transaction, until shutdown or until the loop
/// stops taking them.
async fn fetch_batches(
    consumer: PullConsumer,
    settings: ProjectorSettings,
    handover: mpsc::Sender<Vec<Fetched>>,
    shutdown: Shutdown,
) {
    while !shutdown.is_triggered() {
        let fetched = tokio::select! {
            r = consumer.fetch().max_messages(settings.batch).expires(settings.fetch_wait).messages() => r,
            _ = shutdown.wait() => return,
        };
        let mut messages = match fetched {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "fetch failed");
                shutdown.sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut batch = Vec::with_capacity(settings.batch);
        while let Some(m) = messages.next().await {
            match m {
                Ok(m) => {
                    let decoded = decode(&m.payload);
                    batch.push((m, decoded));
                }
                Err(e) => tracing::warn!(error = %e, "message error"),
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Err(mpsc::error::SendError(batch)) = handover.send(batch).await {
            give_back(batch).await;
            return;
        }
    }
}

fn stream_sequence(m: &Message) -> u64 {
    m.info().map(|i| i.stream_sequence).unwrap_or(0)
}

async fn project(
    store: &Store,
    stream: &str,
    settings: &ProjectorSettings,
    mut batch: Vec<Fetched>,
) -> anyhow::Result<()> {
    batch.sort_by_key(|(m, _)| stream_sequence(m));
    let mut events = Vec::with_capacity(batch.len());
    let mut to_ack = Vec::with_capacity(batch.len());
    let mut last_seq = 0u64;
    // Orders behind a dead letter wait until an operator resolves it.
    let subjects: Vec<String> = batch.iter().map(|(m, _)| m.subject.to_string()).collect();
    let mut held = store
        .held_subjects(&subjects)
        .await
        .context("find held orders")?;
    for (m, decoded) in batch {
        let seq = stream_sequence(&m);
        last_seq = last_seq.max(seq);
        if held.contains(m.subject.as_str()) {
            tracing::debug!(seq, "event of an order behind a dead letter: waiting");
            let _ = m.ack_with(AckKind::Nak(Some(settings.held_delay))).await;
            continue;
        }
        match decoded {
            Ok(e) => {
                events.push(e);
                // Only the acknowledgement is kept: the message's bytes are freed now, not
                // after the commit.
                to_ack.push(m.split().1);
            }
            Err(DecodeError::NewerSchema { found, kind }) => {
                tracing::warn!(
                    seq,
                    found,
                    kind,
                    "event of a newer schema version: waiting for an upgraded projector"
                );
                let _ = m
                    .ack_with(AckKind::Nak(Some(settings.newer_schema_delay)))
                    .await;
            }
            Err(DecodeError::Undecodable(reason)) => {
                tracing::error!(seq, reason, "undecodable event: dead-lettered");
                store
                    .dead_letter(seq, m.subject.as_str(), &reason, &m.payload)
                    .await
                    .context("write the dead letter")?;
                held.insert(m.subject.to_string());
                let _ = m.ack_with(AckKind::Term).await;
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
    if settings.fault == Some(Fault::AfterCommit) {
        Fault::AfterCommit.strike();
    }
    // Committed: the acknowledgements go out while the next batch's transaction starts.
    tokio::spawn(async move {
        for m in to_ack {
            if let Err(e) = m.ack().await {
                tracing::warn!(error = %e, "ack failed; the event will be redelivered and recognised");
            }
        }
    });
    Ok(())
}
