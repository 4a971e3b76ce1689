//! The ingestor: Planexpo's order feed → one event per observed revision → JetStream.
//!
//! Architecture invariant: the watermark and the per-order memory are saved only after JetStream
//! acknowledged every event up to them. A crash in between republishes the same event ids, which
//! JetStream's duplicate window and the event log's primary key both absorb.

use crate::{Shutdown, new_traceparent, now};
use anyhow::Context;
use pxsync_bus::Bus;
use pxsync_core::event::{DeriveContext, Previous, derive_events};
use pxsync_core::order::{Observation, observe};
use pxsync_planexpo::PlanexpoClient;
use pxsync_store::{Store, Watermark};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// One salon served by an ingestor.
#[derive(Clone)]
pub struct Salon {
    pub planexpo: PlanexpoClient,
    pub inwink_event_id: String,
    pub poll_interval: Duration,
    /// How often the whole feed is read again from the start (heals anything missed; an
    /// unchanged salon publishes nothing).
    pub rescan_interval: Duration,
    /// Orders per page of the feed (Planexpo accepts 1 to 500).
    pub page_size: u16,
}

/// Orders per feed page by default: Planexpo's maximum, the fewest round trips.
pub const DEFAULT_PAGE_SIZE: u16 = 500;

/// What one pass over the feed did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassOutcome {
    pub orders_read: usize,
    pub events_published: usize,
}

/// Polls one salon until shutdown, holding the salon's polling lock (one replica at a time).
pub async fn run(store: Store, bus: Bus, salon: Salon, shutdown: Shutdown) -> anyhow::Result<()> {
    let event = salon.planexpo.event().to_owned();
    store.register_salon(&event, &salon.inwink_event_id).await?;
    let key = store.namespace().lock_key(&format!("poll:{event}"));
    let lock = loop {
        let conn = store.client().await?;
        let got: bool = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await?
            .get(0);
        if got {
            break conn;
        }
        drop(conn);
        tracing::info!(event, "another ingestor polls this salon; standing by");
        if !shutdown.sleep(Duration::from_secs(2)).await {
            return Ok(());
        }
    };
    tracing::info!(event, "polling the Planexpo feed");
    let mut failures = 0u32;
    let mut last_rescan = std::time::Instant::now();
    loop {
        let full = last_rescan.elapsed() >= salon.rescan_interval;
        if full {
            last_rescan = std::time::Instant::now();
            tracing::info!(event, "scheduled full rescan of the feed");
        }
        // After go-live, a mapped product changed on Planexpo breaks its mapping (catalogue.rs).
        crate::catalogue::watch_planexpo(&store, &salon.planexpo).await;
        match poll_once(&store, &bus, &salon, full).await {
            Ok(outcome) => {
                failures = 0;
                if outcome.events_published > 0 {
                    tracing::info!(
                        event,
                        orders = outcome.orders_read,
                        events = outcome.events_published,
                        "feed pass"
                    );
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(
                    event,
                    error = format!("{e:#}"),
                    "feed pass failed; retrying with backoff"
                );
            }
        }
        let wait = if failures == 0 {
            salon.poll_interval
        } else {
            Duration::from_millis(250 * 2u64.pow(failures.min(7)))
                .min(Duration::from_secs(30))
                .max(salon.poll_interval)
        };
        if !shutdown.sleep(wait).await {
            break;
        }
    }
    let _ = lock.execute("SELECT pg_advisory_unlock($1)", &[&key]).await;
    Ok(())
}

/// Reads the feed from the watermark (or, for a full rescan, from the start) to its end, page
/// by page.
pub async fn poll_once(
    store: &Store,
    bus: &Bus,
    salon: &Salon,
    full: bool,
) -> anyhow::Result<PassOutcome> {
    let event = salon.planexpo.event();
    let since = if full {
        None
    } else {
        store.watermark(event).await?.map(|w| w.updated_at)
    };
    let mut cursor: Option<String> = None;
    let mut outcome = PassOutcome::default();
    let mut pass = FeedPass::new(store, bus, salon);
    loop {
        let page = salon
            .planexpo
            .orders_page(
                if cursor.is_none() { since } else { None },
                cursor.as_deref(),
                u32::from(salon.page_size),
            )
            .await
            .with_context(|| format!("read the order feed of {event}"))?;
        outcome.orders_read += page.orders.len();
        pass.push(&page.orders).await?;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    outcome.events_published = pass.finish().await?;
    Ok(outcome)
}

/// One pass over the feed, pipelined: page N+1 is judged, derived and published while page N's
/// acknowledgements are awaited and page N is recorded (in a task of its own). Records happen
/// strictly in page order, each only after every event of its page was acknowledged, so the
/// watermark never passes an unacknowledged event. An order of page N+1 that was also in page N
/// is derived against page N's observation, not yet recorded (no duplicate, no lost change).
pub struct FeedPass<'a> {
    store: &'a Store,
    bus: &'a Bus,
    salon: &'a Salon,
    inflight: Option<InflightPage>,
    published: usize,
}

impl<'a> FeedPass<'a> {
    pub fn new(store: &'a Store, bus: &'a Bus, salon: &'a Salon) -> FeedPass<'a> {
        FeedPass {
            store,
            bus,
            salon,
            inflight: None,
            published: 0,
        }
    }

    /// Publishes one page; returns once the previous page is recorded.
    pub async fn push(&mut self, raws: &[serde_json::Value]) -> anyhow::Result<()> {
        let overlay = self.inflight.as_ref().map(|(_, o)| &**o);
        let page = publish(self.store, self.bus, self.salon, raws, overlay, true).await?;
        self.settle_inflight().await?;
        self.published += page.acks.len();
        let overlay = Arc::clone(&page.observed);
        let store = self.store.clone();
        let event = self.salon.planexpo.event().to_owned();
        let task = tokio::spawn(async move { page.settle(&store, &event).await });
        self.inflight = Some((task, overlay));
        Ok(())
    }

    async fn settle_inflight(&mut self) -> anyhow::Result<()> {
        if let Some((task, _)) = self.inflight.take() {
            task.await.context("the recording task of a feed page")??;
        }
        Ok(())
    }

    /// Waits for the last page's acknowledgements and record; returns the events published.
    pub async fn finish(mut self) -> anyhow::Result<usize> {
        self.settle_inflight().await?;
        Ok(self.published)
    }
}

/// The recording task of the page in flight, and the observations it will record.
type InflightPage = (
    tokio::task::JoinHandle<anyhow::Result<()>>,
    Arc<BTreeMap<String, Previous>>,
);

/// A page whose events are published and not yet acknowledged.
struct PublishedPage {
    acks: Vec<async_nats::jetstream::context::PublishAckFuture>,
    /// The memory of each order published, after this page (shared with the next page, which
    /// derives against it until it is recorded).
    observed: Arc<BTreeMap<String, Previous>>,
    watermark: Option<Watermark>,
    /// The publish spans, closed once acknowledged.
    spans: Vec<tracing::Span>,
}

impl PublishedPage {
    /// Awaits every acknowledgement, then records the observations and the watermark.
    async fn settle(self, store: &Store, event: &str) -> anyhow::Result<()> {
        for ack in self.acks {
            ack.await
                .context("JetStream did not acknowledge an event")?;
        }
        drop(self.spans);
        store
            .record_ingested(event, &self.observed, self.watermark.as_ref())
            .await?;
        Ok(())
    }
}

/// Judges, derives and publishes a set of raw orders (a feed page, or one fetched order), then
/// records them and the watermark. Returns the number of events published.
///
/// `advance_watermark`: only a pass over the feed may move the watermark (a webhook's order can
/// be newer than feed orders not yet read).
pub async fn ingest_orders(
    store: &Store,
    bus: &Bus,
    salon: &Salon,
    raws: &[serde_json::Value],
    advance_watermark: bool,
) -> anyhow::Result<usize> {
    let page = publish(store, bus, salon, raws, None, advance_watermark).await?;
    let published = page.acks.len();
    page.settle(store, salon.planexpo.event()).await?;
    Ok(published)
}

/// Judges, derives and publishes a set of raw orders, without waiting for the
/// acknowledgements. `overlay`: observations published but not yet recorded (they win over the
/// store's memory).
async fn publish(
    store: &Store,
    bus: &Bus,
    salon: &Salon,
    raws: &[serde_json::Value],
    overlay: Option<&BTreeMap<String, Previous>>,
    advance_watermark: bool,
) -> anyhow::Result<PublishedPage> {
    let event = salon.planexpo.event();
    let mut observations = Vec::new();
    let mut watermark: Option<Watermark> = None;
    for raw in raws {
        match observe(raw) {
            Ok(obs) => {
                let (id, at) = match &obs {
                    Observation::Order { snapshot, .. } => {
                        (snapshot.id.clone(), snapshot.updated_at)
                    }
                    Observation::Rejected { id, updated_at, .. } => (id.clone(), *updated_at),
                };
                let candidate = Watermark {
                    updated_at: at,
                    order_id: id,
                };
                if watermark.as_ref().is_none_or(|w| {
                    (w.updated_at, &w.order_id) < (candidate.updated_at, &candidate.order_id)
                }) {
                    watermark = Some(candidate);
                }
                observations.push(obs);
            }
            Err(problem) => {
                let message = problem.to_string();
                tracing::warn!(event, problem = %message, "order of the feed ignored");
                store
                    .record_feed_problem(event, problem.order_id.as_deref(), &message)
                    .await?;
            }
        }
    }
    let ids: Vec<String> = observations
        .iter()
        .map(|o| match o {
            Observation::Order { snapshot, .. } => snapshot.id.clone(),
            Observation::Rejected { id, .. } => id.clone(),
        })
        .collect();
    let previous = store.previous(event, &ids).await?;
    let recorded_at = now();
    let mut acks = Vec::new();
    let mut observed: BTreeMap<String, Previous> = BTreeMap::new();
    let mut spans = Vec::new();
    let unseen = Previous::default();
    for (id, obs) in ids.into_iter().zip(observations) {
        // The freshest memory: earlier in this page, then the page in flight, then the store.
        let prev = observed
            .get(&id)
            .or_else(|| overlay.and_then(|o| o.get(&id)))
            .or_else(|| previous.get(&id))
            .unwrap_or(&unseen);
        // One Planexpo change is one trace: the publish span's context travels with the event.
        let span = tracing::info_span!("ingest.publish", order = %id, event = %salon.planexpo.event(), revision = tracing::field::Empty);
        let traceparent = span
            .in_scope(crate::telemetry::current_traceparent)
            .unwrap_or_else(new_traceparent);
        let ctx = DeriveContext {
            inwink_event_id: &salon.inwink_event_id,
            recorded_at,
            traceparent: Some(&traceparent),
        };
        let events = derive_events(prev, obs, &ctx);
        if events.is_empty() {
            continue;
        }
        span.record("revision", events[0].revision);
        for e in &events {
            acks.push(bus.publish_async(e).instrument(span.clone()).await?);
        }
        spans.push(span);
        let next = prev.after_owned(events);
        observed.insert(id, next);
    }
    Ok(PublishedPage {
        acks,
        observed: Arc::new(observed),
        watermark: if advance_watermark { watermark } else { None },
        spans,
    })
}

/// The whole ingestor: the webhook receiver when an address is set, and one poller per salon
/// (each behind its own lock, so replicas share the salons). `salons` pairs each salon with its
/// webhook secret.
pub async fn run_salons(
    store: Store,
    bus: Bus,
    salons: Vec<(Salon, Option<String>)>,
    webhook_addr: Option<std::net::SocketAddr>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let receiver = match webhook_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen on PXSYNC_WEBHOOK_ADDR {addr}"))?;
            tracing::info!(%addr, "webhook receiver listening on /webhooks/planexpo");
            let receiver = crate::webhook::Receiver {
                store: store.clone(),
                bus: bus.clone(),
                salons: salons
                    .iter()
                    .map(|(s, _)| (s.planexpo.event().to_owned(), s.clone()))
                    .collect(),
                secrets: std::sync::Arc::new(
                    salons
                        .iter()
                        .filter_map(|(s, secret)| {
                            secret
                                .as_ref()
                                .map(|k| (s.planexpo.event().to_owned(), k.as_bytes().to_vec()))
                        })
                        .collect(),
                ),
                clock: crate::webhook::system_clock(),
            };
            Some(tokio::spawn(crate::webhook::serve(
                listener,
                receiver,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let pollers: Vec<_> = salons
        .into_iter()
        .map(|(salon, _)| tokio::spawn(run(store.clone(), bus.clone(), salon, shutdown.clone())))
        .collect();
    let mut result = Ok(());
    for p in pollers {
        if let Err(e) = p.await? {
            result = Err(e);
        }
    }
    if let Some(r) = receiver {
        r.await??;
    }
    result
}

/// The ingestor of one salon configured by environment variables.
pub async fn run_with_webhook(
    store: Store,
    bus: Bus,
    salon: Salon,
    webhook: &crate::config::WebhookArgs,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    run_salons(
        store,
        bus,
        vec![(salon, webhook.secret.clone())],
        webhook.addr,
        shutdown,
    )
    .await
}
