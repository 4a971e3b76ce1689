//! The ingestor's benchmarks: an in-memory feed through a `FeedPass` against a raw JetStream
//! publish, and the Planexpo simulator over HTTP through `poll_once`.

use crate::data::{self, EVENT, INWINK_EVENT_ID};
use crate::report::{Report, rate, rate_line};
use anyhow::Context;
use async_nats::jetstream::{self, stream};
use pxsync::ingestor::{FeedPass, Salon, poll_once};
use pxsync_bus::StreamSettings;
use pxsync_core::event::encode;
use pxsync_core::planexpo::FeedOrder;
use pxsync_planexpo::{PlanexpoClient, PlanexpoConfig, Secret};
use pxsync_test_support::TestNamespace;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Orders per feed page, as `poll_once` reads them.
const PAGE: usize = pxsync::ingestor::DEFAULT_PAGE_SIZE as usize;
/// Acknowledgements in flight in the raw publish baseline.
const RAW_IN_FLIGHT: usize = 256;
/// The simulator generates at most this many orders per `/_sim/generate`.
const SIM_GENERATE_MAX: usize = 100_000;

fn salon(planexpo: PlanexpoClient) -> Salon {
    Salon {
        planexpo,
        inwink_event_id: INWINK_EVENT_ID.into(),
        poll_interval: Duration::from_secs(1),
        rescan_interval: Duration::from_secs(3600),
        page_size: PAGE as u16,
    }
}

/// Rounds of the in-memory benchmark. This machine's speed drifts from one second to the next,
/// so each pass is compared with a baseline measured just before it, and the median round is
/// reported (every round is listed).
const ROUNDS: usize = 3;

/// Runs both ingest benchmarks; returns the in-memory report and the end-to-end report.
pub async fn run(orders: usize) -> anyhow::Result<Vec<Report>> {
    let feed = data::validated_feed(orders);
    // The payloads the ingestor will publish (same derivation; ids and sizes match).
    let payloads: Vec<Vec<u8>> = data::first_events(&feed)?.iter().map(encode).collect();
    let mut rounds = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let ns = TestNamespace::new("bench_ingest").await;
        let r = in_memory(&ns, &feed, &payloads, round == 0).await;
        ns.cleanup().await;
        rounds.push(r?);
    }
    let (report, ingest_rate) = in_memory_report(&feed, &payloads, rounds);
    let e2e = {
        let ns = TestNamespace::new("bench_e2e").await;
        let r = end_to_end(&ns, orders, ingest_rate).await;
        ns.cleanup().await;
        r?
    };
    Ok(vec![report, e2e])
}

/// One round of the in-memory benchmark.
struct Round {
    /// The raw publish without headers: messages, time.
    raw: (usize, Duration),
    /// The raw publish with the ingestor's headers (first round only).
    with_headers: Option<(usize, Duration)>,
    /// The feed pass: events published, time.
    ingest: (usize, Duration),
    /// CPU time of this process (every thread) during the pass.
    cpu: Duration,
}

impl Round {
    fn ratio(&self) -> f64 {
        rate(self.ingest.0, self.ingest.1) / rate(self.raw.0, self.raw.1)
    }
}

/// A raw JetStream publish of the same payloads with 256 acks in flight, then a `FeedPass`
/// page by page on the in-memory feed, on a fresh namespace.
async fn in_memory(
    ns: &TestNamespace,
    feed: &[serde_json::Value],
    payloads: &[Vec<u8>],
    with_headers: bool,
) -> anyhow::Result<Round> {
    let raw = raw_publish(ns, payloads, false).await?;
    let with_headers = match with_headers {
        true => Some(raw_publish(ns, payloads, true).await?),
        false => None,
    };

    // The ingestor. Its Planexpo client is never called: the feed is in memory.
    let planexpo = PlanexpoClient::new(PlanexpoConfig::new(
        "http://127.0.0.1:9",
        Secret::new("unused"),
        EVENT,
    ))
    .context("the unused Planexpo client")?;
    let salon = salon(planexpo);
    ns.store.register_salon(EVENT, INWINK_EVENT_ID).await?;
    // The pages as the Planexpo client hands them over (owned), cut before the clock starts.
    let pages: Vec<Vec<FeedOrder>> = feed
        .chunks(PAGE)
        .map(|page| page.iter().map(FeedOrder::from_value).collect())
        .collect();
    let cpu_before = process_cpu()?;
    let started = Instant::now();
    let mut pass = FeedPass::new(&ns.store, &ns.bus, &salon);
    for page in pages {
        pass.push(page).await?;
    }
    let published = pass.finish().await?;
    let elapsed = started.elapsed();
    let cpu = process_cpu()?.saturating_sub(cpu_before);
    anyhow::ensure!(
        published == payloads.len(),
        "the ingestor published {published} events, {} expected",
        payloads.len()
    );
    let watermark = ns.store.watermark(EVENT).await?;
    anyhow::ensure!(
        watermark.as_ref().map(|w| w.order_id.as_str())
            == feed.last().and_then(|o| o["id"].as_str()),
        "the watermark did not reach the last order of the feed"
    );
    Ok(Round {
        raw,
        with_headers,
        ingest: (published, elapsed),
        cpu,
    })
}

/// The report of the in-memory rounds (the median round's figures), and its ingest rate.
fn in_memory_report(
    feed: &[serde_json::Value],
    payloads: &[Vec<u8>],
    mut rounds: Vec<Round>,
) -> (Report, f64) {
    let avg_size = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len().max(1);
    let every: Vec<String> = rounds
        .iter()
        .map(|r| {
            format!(
                "{:.0}/{:.0} = {:.2}",
                rate(r.ingest.0, r.ingest.1),
                rate(r.raw.0, r.raw.1),
                r.ratio()
            )
        })
        .collect();
    let headers = rounds
        .iter()
        .find_map(|r| r.with_headers.map(|h| (h, r.ingest)));
    rounds.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    let median = &rounds[rounds.len() / 2];
    let (published, elapsed) = median.ingest;
    let ingest_rate = rate(published, elapsed);
    let mut notes = vec![
        format!(
            "{} rounds, each a baseline then a pass on a fresh namespace (ingest/raw events per \
             second): {}",
            every.len(),
            every.join(", ")
        ),
        format!(
            "CPU of the ingestor's process during the pass: {:.1} µs per event (every thread, \
             user and system; the median round)",
            median.cpu.as_secs_f64() * 1e6 / published.max(1) as f64
        ),
    ];
    if let Some(((count, took), ingest)) = headers {
        notes.push(format!(
            "{}: raw publish of the same payloads with the ingestor's headers (a distinct \
             Nats-Msg-Id each, deduplicated by JetStream), first round; ratio against it {:.2}",
            rate_line(count, took, "msgs"),
            rate(ingest.0, ingest.1) / rate(count, took)
        ));
    }
    notes.push(cpu_breakdown(feed));
    let ratio = median.ratio();
    let report = Report {
        name: "ingest",
        what: format!(
            "ingestor rate, in-memory feed of {} validated orders in pages of {PAGE} \
             (derive, dedupe against the store, publish, JetStream ack, watermark)",
            feed.len()
        ),
        figure: rate_line(published, elapsed, "events"),
        baseline: format!(
            "{}: raw JetStream publish of the same payloads ({avg_size} B average, no headers), \
             {RAW_IN_FLIGHT} acks in flight, just before the pass",
            rate_line(median.raw.0, median.raw.1, "msgs")
        ),
        ratio,
        target: "ratio >= 0.50 (median round)".into(),
        pass: Some(ratio >= 0.5),
        notes,
    };
    (report, ingest_rate)
}

/// CPU time this process has used so far, every thread, user and system (`/proc/self/stat`,
/// in clock ticks of 1/100 s).
fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    // The fields after the command name (which may hold spaces), from field 3 on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("field {} of /proc/self/stat", i + 3))
    };
    // utime and stime are fields 14 and 15.
    Ok(Duration::from_millis((tick(11)? + tick(12)?) * 10))
}

/// The pure steps of the ingestor, one after another on one thread, in microseconds per order:
/// where the CPU of an ingested event goes, besides the bus and the store.
fn cpu_breakdown(feed: &[serde_json::Value]) -> String {
    use pxsync_core::event::{DeriveContext, Previous, derive_events};
    let n = feed.len().max(1) as f64;
    let micros = |d: Duration| d.as_secs_f64() * 1e6 / n;
    let texts: Vec<Vec<u8>> = feed
        .iter()
        .map(|raw| serde_json::to_vec(raw).unwrap_or_default())
        .collect();
    let t = Instant::now();
    let raws: Vec<FeedOrder> = texts
        .iter()
        .filter_map(|text| FeedOrder::from_json(text).ok())
        .collect();
    let parse = t.elapsed();
    drop(texts);
    let t = Instant::now();
    let observations: Vec<_> = raws
        .into_iter()
        .filter_map(|raw| pxsync_core::order::observe_raw(raw).ok())
        .collect();
    let observe = t.elapsed();
    let ctx = DeriveContext {
        inwink_event_id: INWINK_EVENT_ID,
        recorded_at: pxsync_core::Timestamp::from_datetime(time::macros::datetime!(
            2026-03-02 08:00 UTC
        )),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    };
    let unseen = Previous::default();
    let t = Instant::now();
    let events: Vec<_> = observations
        .into_iter()
        .map(|o| derive_events(&unseen, o, &ctx))
        .collect();
    let derive = t.elapsed();
    let t = Instant::now();
    let bytes: usize = events.iter().flatten().map(|e| encode(e).len()).sum();
    let encoding = t.elapsed();
    let t = Instant::now();
    let memories: Vec<Previous> = events.into_iter().map(|e| unseen.after_owned(e)).collect();
    let after = t.elapsed();
    let t = Instant::now();
    let memory_bytes: usize = memories
        .iter()
        .map(|m| serde_json::to_vec(m).map_or(0, |v| v.len()))
        .sum();
    let memory = t.elapsed();
    std::hint::black_box((bytes, memory_bytes));
    format!(
        "CPU per order, one thread: parse from JSON text {:.1} µs (the HTTP path only), \
         observe {:.1} µs, derive {:.1} µs, encode {:.1} µs, memory after (owned) {:.1} µs, \
         memory to bytes {:.1} µs",
        micros(parse),
        micros(observe),
        micros(derive),
        micros(encoding),
        micros(after),
        micros(memory)
    )
}

/// Publishes `payloads` on a scratch stream (removed afterwards), keeping [`RAW_IN_FLIGHT`]
/// acknowledgements in flight; with `headers`, each message carries the headers the ingestor
/// sends (a distinct `Nats-Msg-Id`, which JetStream checks against its duplicate window).
async fn raw_publish(
    ns: &TestNamespace,
    payloads: &[Vec<u8>],
    headers: bool,
) -> anyhow::Result<(usize, Duration)> {
    let js = ns.bus.jetstream();
    let name = format!("{}_BENCH_RAW{}", ns.ns.stream(), u8::from(headers));
    let settings = StreamSettings::default();
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{}.benchraw{}.>", ns.ns, u8::from(headers))],
        storage: stream::StorageType::File,
        max_age: settings.max_age,
        duplicate_window: settings.duplicate_window,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("create the scratch stream: {e}"))?;
    let prefix = format!("{}.benchraw{}", ns.ns, u8::from(headers));
    let result = publish_window(js, &prefix, payloads, headers).await;
    let deleted = js.delete_stream(&name).await;
    let out = result?;
    deleted.map_err(|e| anyhow::anyhow!("delete the scratch stream: {e}"))?;
    Ok(out)
}

async fn publish_window(
    js: &jetstream::Context,
    prefix: &str,
    payloads: &[Vec<u8>],
    headers: bool,
) -> anyhow::Result<(usize, Duration)> {
    let subjects: Vec<String> = (0..payloads.len())
        .map(|i| format!("{prefix}.{EVENT}.{}", data::order_id(i)))
        .collect();
    let bodies: Vec<_> = payloads.iter().map(|p| p.clone().into()).collect();
    let started = Instant::now();
    let mut acks = VecDeque::with_capacity(RAW_IN_FLIGHT);
    for (i, (subject, body)) in subjects.into_iter().zip(bodies).enumerate() {
        if acks.len() >= RAW_IN_FLIGHT
            && let Some(ack) = acks.pop_front()
        {
            wait_ack(ack).await?;
        }
        let sent = if headers {
            let mut h = async_nats::HeaderMap::new();
            h.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{:032x}", i).as_str(),
            );
            h.insert(
                pxsync_bus::HEADER_TRACEPARENT,
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            );
            js.publish_with_headers(subject, h, body).await
        } else {
            js.publish(subject, body).await
        };
        acks.push_back(sent.map_err(|e| anyhow::anyhow!("raw publish: {e}"))?);
    }
    for ack in acks {
        wait_ack(ack).await?;
    }
    Ok((payloads.len(), started.elapsed()))
}

async fn wait_ack(ack: jetstream::context::PublishAckFuture) -> anyhow::Result<()> {
    ack.await
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("raw publish acknowledgement: {e}"))
}

/// The Planexpo simulator in-process over HTTP, then one `poll_once` pass over the whole feed.
async fn end_to_end(ns: &TestNamespace, orders: usize, ingest_rate: f64) -> anyhow::Result<Report> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let opts = pxsync_sim::planexpo::Options::default();
    let sim = pxsync_sim::planexpo::spawn(opts.clone())
        .await
        .context("start the Planexpo simulator")?;
    let result = async {
        let http = reqwest::Client::new();
        let mut left = orders;
        let mut seed = 1u64;
        while left > 0 {
            let n = left.min(SIM_GENERATE_MAX);
            let resp = http
                .post(format!("{}/_sim/generate", sim.base_url()))
                .json(&serde_json::json!({"orders": n, "seed": seed}))
                .send()
                .await
                .context("POST /_sim/generate")?;
            anyhow::ensure!(
                resp.status().is_success(),
                "POST /_sim/generate answered {}",
                resp.status()
            );
            left -= n;
            seed += 1;
        }
        let planexpo = PlanexpoClient::new(PlanexpoConfig::new(
            sim.base_url(),
            Secret::new(opts.api_key.clone()),
            opts.event.clone(),
        ))
        .context("the Planexpo client")?;
        let salon = salon(planexpo);
        ns.store
            .register_salon(&opts.event, INWINK_EVENT_ID)
            .await?;
        let started = Instant::now();
        let outcome = poll_once(&ns.store, &ns.bus, &salon, false).await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            outcome.orders_read == orders,
            "the pass read {} orders of {orders}",
            outcome.orders_read
        );
        let e2e_rate = rate(outcome.events_published, elapsed);
        Ok(Report {
            name: "ingest-e2e",
            what: format!(
                "end to end from the Planexpo simulator over HTTP: {orders} generated orders, \
                 one poll_once pass (pages of {PAGE}) to JetStream ack"
            ),
            figure: format!(
                "{}, {} orders read",
                rate_line(outcome.events_published, elapsed, "events"),
                outcome.orders_read
            ),
            baseline: format!("{ingest_rate:.0} events/s (the in-memory ingest above)"),
            ratio: e2e_rate / ingest_rate,
            target: "none".into(),
            pass: None,
            notes: vec!["the simulator runs in this process and shares its 2 cores".into()],
        })
    }
    .await;
    sim.shutdown().await;
    result
}
