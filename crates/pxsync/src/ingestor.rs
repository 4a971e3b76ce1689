//! The ingestor: Planexpo's order feed → one event per observed revision → JetStream.
//!
//! Architecture invariant: the watermark and the per-order memory are saved only after JetStream
//! acknowledged every event up to them. A crash in between republishes the same event ids, which
//! JetStream's duplicate window and the event log's primary key both absorb.

use crate::{Shutdown, new_traceparent, now};
use anyhow::Context;
use pxsync_bus::{Bus, Encoded};
use pxsync_core::event::{DeriveContext, Previous, derive_events};
use pxsync_core::order::{Observation, observe_raw};
use pxsync_core::planexpo::{FeedOrder, unreadable_order_message};
use pxsync_planexpo::PlanexpoClient;
use pxsync_store::{Store, Watermark};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
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
        outcome.orders_read += page.orders.len() + page.unreadable.len();
        for id in &page.unreadable {
            // The order is not judged: no event, no memory. It is read again once its
            // `updated_at` moves, and by every full rescan.
            tracing::warn!(
                event,
                order = id.as_deref(),
                "order of the feed not readable: skipped"
            );
            store
                .record_feed_problem(
                    event,
                    id.as_deref(),
                    &unreadable_order_message(id.as_deref()),
                )
                .await?;
        }
        pass.push(page.orders).await?;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    outcome.events_published = pass.finish().await?;
    Ok(outcome)
}

/// Pages published whose acknowledgements and record may still be pending, at most.
const PAGES_IN_FLIGHT: usize = 4;

/// One pass over the feed, pipelined in three stages: a page is judged, derived and encoded on
/// a blocking thread while the store's memory of the next page is read and the page before it
/// is published, and a recorder task awaits the
/// acknowledgements of the pages already published and records them (coalescing the pages
/// waiting for it into one transaction). Records happen strictly in page order, each only after
/// every event of its pages was acknowledged, so the watermark never passes an unacknowledged
/// event. An order seen again while an earlier page is unrecorded is derived against that
/// page's memory, not the store's (no duplicate, no lost change).
pub struct FeedPass<'a> {
    store: &'a Store,
    bus: &'a Bus,
    salon: &'a Salon,
    /// The memories of the pages not known to be recorded, oldest first, by page number.
    unrecorded: VecDeque<(u64, Arc<BTreeMap<String, Previous>>)>,
    pages: Option<mpsc::Sender<(u64, PublishedPage)>>,
    /// The last page handed over, being prepared on a blocking thread, with its number.
    preparing: Option<(u64, tokio::task::JoinHandle<PreparedPage>)>,
    /// The number of the last page recorded (0: none yet).
    recorded: watch::Receiver<u64>,
    recorder: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    next_page: u64,
    published: usize,
}

impl<'a> FeedPass<'a> {
    pub fn new(store: &'a Store, bus: &'a Bus, salon: &'a Salon) -> FeedPass<'a> {
        let (pages, queue) = mpsc::channel(PAGES_IN_FLIGHT);
        let (done, recorded) = watch::channel(0);
        let recorder = tokio::spawn(record_pages(
            store.clone(),
            salon.planexpo.event().to_owned(),
            queue,
            done,
        ));
        FeedPass {
            store,
            bus,
            salon,
            unrecorded: VecDeque::new(),
            pages: Some(pages),
            preparing: None,
            recorded,
            recorder: Some(recorder),
            next_page: 1,
            published: 0,
        }
    }

    /// Takes one page: reads the store's memory of its orders while the page before it is
    /// still being prepared, then starts preparing it (judged, derived, encoded) on a blocking
    /// thread and publishes the page before it meanwhile, queued for its record (waiting while
    /// [`PAGES_IN_FLIGHT`] pages are ahead of it). [`FeedPass::finish`] publishes the last one.
    pub async fn push(&mut self, raws: Vec<FeedOrder>) -> anyhow::Result<()> {
        // Forget the memories already in the store before the store is read: a page recorded
        // after this point is still in the overlay.
        let recorded = *self.recorded.borrow();
        let mut forgotten = Vec::new();
        while self.unrecorded.front().is_some_and(|(n, _)| *n <= recorded) {
            forgotten.extend(self.unrecorded.pop_front());
        }
        if !forgotten.is_empty() {
            // Freeing a page's memories (500 orders' units) is off the publishing path.
            tokio::task::spawn_blocking(move || drop(forgotten));
        }
        let event = self.salon.planexpo.event();
        let previous = self.store.previous(event, &feed_ids(&raws)).await?;
        // The page before this one is unrecorded (not even published): its memory joins the
        // overlay before this page is derived.
        let before = self.prepared().await?;
        // Newest first: the page before this one, then the other unrecorded ones.
        let overlay: Vec<Arc<BTreeMap<String, Previous>>> = self
            .unrecorded
            .iter()
            .rev()
            .map(|(_, m)| Arc::clone(m))
            .collect();
        let input = PageInput::new(self.salon, self.bus, true);
        let preparing = tokio::task::spawn_blocking(move || {
            let overlay: Vec<&BTreeMap<String, Previous>> = overlay.iter().map(|m| &**m).collect();
            input.prepare(raws, &previous, &overlay)
        });
        let number = self.next_page;
        self.next_page += 1;
        self.preparing = Some((number, preparing));
        if let Some(page) = before {
            self.publish(page).await?;
        }
        Ok(())
    }

    /// Waits for the page being prepared, if any, and keeps its memory as unrecorded.
    async fn prepared(&mut self) -> anyhow::Result<Option<(u64, PreparedPage)>> {
        let Some((number, preparing)) = self.preparing.take() else {
            return Ok(None);
        };
        let prepared = preparing.await.context("the preparation of a feed page")?;
        self.unrecorded
            .push_back((number, Arc::clone(&prepared.observed)));
        Ok(Some((number, prepared)))
    }

    /// Publishes a prepared page and queues it for its record.
    async fn publish(&mut self, (number, prepared): (u64, PreparedPage)) -> anyhow::Result<()> {
        let page = prepared.send(self.store, self.bus, self.salon).await?;
        self.published += page.acks.len();
        let queued = match &self.pages {
            Some(pages) => pages.send((number, page)).await.is_ok(),
            None => false,
        };
        if !queued {
            // The recorder stopped: its error says why.
            self.finish_recorder().await?;
            anyhow::bail!("the recorder of the feed pass stopped");
        }
        Ok(())
    }

    async fn finish_recorder(&mut self) -> anyhow::Result<()> {
        self.pages = None;
        if let Some(task) = self.recorder.take() {
            task.await
                .context("the recording task of the feed pass")??;
        }
        Ok(())
    }

    /// Publishes the last page, waits for the last pages' acknowledgements and record; returns
    /// the events published.
    pub async fn finish(mut self) -> anyhow::Result<usize> {
        if let Some(page) = self.prepared().await? {
            self.publish(page).await?;
        }
        self.finish_recorder().await?;
        Ok(self.published)
    }
}

/// The recorder of a [`FeedPass`]: takes the published pages in order, awaits their
/// acknowledgements, records them, and tells the pass the last page recorded. The pages waiting
/// when it is ready are recorded together.
async fn record_pages(
    store: Store,
    event: String,
    mut queue: mpsc::Receiver<(u64, PublishedPage)>,
    done: watch::Sender<u64>,
) -> anyhow::Result<()> {
    const COALESCE: usize = PAGES_IN_FLIGHT + 1;
    let mut batch = Vec::with_capacity(COALESCE);
    while queue.recv_many(&mut batch, COALESCE).await > 0 {
        let last = batch.last().map_or(0, |(n, _)| *n);
        let pages = batch.drain(..).map(|(_, page)| page).collect();
        settle(&store, &event, pages).await?;
        done.send_replace(last);
    }
    Ok(())
}

/// A page whose events are published and not yet acknowledged.
struct PublishedPage {
    acks: Vec<async_nats::jetstream::context::PublishAckFuture>,
    /// The memory of each order published, after this page (shared with the next pages, which
    /// derive against it until it is recorded).
    observed: Arc<BTreeMap<String, Previous>>,
    watermark: Option<Watermark>,
    /// The publish spans, closed once acknowledged.
    spans: Vec<tracing::Span>,
}

/// Awaits every acknowledgement of `pages` (in feed order), then records their observations
/// (a later page's memory of an order wins) and the last watermark, in one transaction.
async fn settle(store: &Store, event: &str, pages: Vec<PublishedPage>) -> anyhow::Result<()> {
    let mut watermark = None;
    let mut memories = Vec::with_capacity(pages.len());
    for page in pages {
        for ack in page.acks {
            ack.await
                .context("JetStream did not acknowledge an event")?;
        }
        drop(page.spans);
        watermark = page.watermark.or(watermark);
        memories.push(page.observed);
    }
    let observed: BTreeMap<&str, &Previous> = memories
        .iter()
        .flat_map(|m| m.iter().map(|(id, p)| (id.as_str(), p)))
        .collect();
    store
        .record_ingested(event, &observed, watermark.as_ref())
        .await?;
    Ok(())
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
    raws: Vec<FeedOrder>,
    advance_watermark: bool,
) -> anyhow::Result<usize> {
    let previous = store
        .previous(salon.planexpo.event(), &feed_ids(&raws))
        .await?;
    let prepared = PageInput::new(salon, bus, advance_watermark).prepare(raws, &previous, &[]);
    let page = prepared.send(store, bus, salon).await?;
    let published = page.acks.len();
    settle(store, salon.planexpo.event(), vec![page]).await?;
    Ok(published)
}

/// The ids of raw orders as the feed gives them (an order without a usable id is judged
/// unidentifiable and has no memory).
fn feed_ids(raws: &[FeedOrder]) -> Vec<String> {
    raws.iter()
        .filter_map(|raw| raw.id().map(str::to_owned))
        .collect()
}

/// What preparing a page needs of its salon and bus (owned: it runs on a blocking thread).
struct PageInput {
    event: String,
    inwink_event_id: String,
    namespace: pxsync_core::namespace::Namespace,
    advance_watermark: bool,
}

/// A page judged, derived and encoded, not yet published.
struct PreparedPage {
    /// Each event to publish, with the span of its order's publication.
    messages: Vec<(Encoded, tracing::Span)>,
    /// The publish spans, one per order published.
    spans: Vec<tracing::Span>,
    /// The memory of each order published, after this page.
    observed: Arc<BTreeMap<String, Previous>>,
    watermark: Option<Watermark>,
    /// Orders of the feed that could not be judged: (order id if any, the problem).
    problems: Vec<(Option<String>, String)>,
}

impl PageInput {
    fn new(salon: &Salon, bus: &Bus, advance_watermark: bool) -> PageInput {
        PageInput {
            event: salon.planexpo.event().to_owned(),
            inwink_event_id: salon.inwink_event_id.clone(),
            namespace: bus.namespace().clone(),
            advance_watermark,
        }
    }

    /// Judges, derives and encodes raw orders (CPU only). `previous`: the store's memory of
    /// them; `overlay`: the memories of pages prepared but not yet recorded, newest first
    /// (they win over the store's memory).
    fn prepare(
        self,
        raws: Vec<FeedOrder>,
        previous: &BTreeMap<String, Previous>,
        overlay: &[&BTreeMap<String, Previous>],
    ) -> PreparedPage {
        let mut observations = Vec::with_capacity(raws.len());
        let mut watermark: Option<Watermark> = None;
        let mut problems = Vec::new();
        for raw in raws {
            match observe_raw(raw) {
                Ok(obs) => {
                    let (id, at) = match &obs {
                        Observation::Order { snapshot, .. } => {
                            (snapshot.id.clone(), snapshot.updated_at)
                        }
                        Observation::Rejected { id, updated_at, .. } => (id.clone(), *updated_at),
                    };
                    let candidate = Watermark {
                        updated_at: at,
                        order_id: id.clone(),
                    };
                    if watermark.as_ref().is_none_or(|w| {
                        (w.updated_at, &w.order_id) < (candidate.updated_at, &candidate.order_id)
                    }) {
                        watermark = Some(candidate);
                    }
                    observations.push((id, obs));
                }
                Err(problem) => {
                    let message = problem.to_string();
                    tracing::warn!(event = %self.event, problem = %message, "order of the feed ignored");
                    problems.push((problem.order_id.clone(), message));
                }
            }
        }
        let recorded_at = now();
        let mut messages = Vec::new();
        let mut observed: BTreeMap<String, Previous> = BTreeMap::new();
        let mut spans = Vec::new();
        let unseen = Previous::default();
        for (id, obs) in observations {
            // The freshest memory: earlier in this page, then the pages in flight, then the
            // store.
            let prev = observed
                .get(&id)
                .or_else(|| overlay.iter().find_map(|o| o.get(&id)))
                .or_else(|| previous.get(&id))
                .unwrap_or(&unseen);
            // One Planexpo change is one trace: the publish span's context travels with the
            // event.
            let span = tracing::info_span!("ingest.publish", order = %id, event = %self.event, revision = tracing::field::Empty);
            let traceparent = span
                .in_scope(crate::telemetry::current_traceparent)
                .unwrap_or_else(new_traceparent);
            let ctx = DeriveContext {
                inwink_event_id: &self.inwink_event_id,
                recorded_at,
                traceparent: Some(&traceparent),
            };
            let events = derive_events(prev, obs, &ctx);
            if events.is_empty() {
                continue;
            }
            span.record("revision", events[0].revision);
            for e in &events {
                messages.push((Encoded::of(&self.namespace, e), span.clone()));
            }
            spans.push(span);
            let next = prev.after_owned(events);
            observed.insert(id, next);
        }
        PreparedPage {
            messages,
            spans,
            observed: Arc::new(observed),
            watermark: if self.advance_watermark {
                watermark
            } else {
                None
            },
            problems,
        }
    }
}

impl PreparedPage {
    /// Records the page's feed problems and publishes its events, without waiting for the
    /// acknowledgements.
    async fn send(self, store: &Store, bus: &Bus, salon: &Salon) -> anyhow::Result<PublishedPage> {
        let event = salon.planexpo.event();
        for (order_id, message) in &self.problems {
            store
                .record_feed_problem(event, order_id.as_deref(), message)
                .await?;
        }
        let mut acks = Vec::with_capacity(self.messages.len());
        for (encoded, span) in self.messages {
            acks.push(bus.publish_encoded(encoded).instrument(span).await?);
        }
        Ok(PublishedPage {
            acks,
            observed: self.observed,
            watermark: self.watermark,
            spans: self.spans,
        })
    }
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
