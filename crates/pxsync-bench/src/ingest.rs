//! The ingestor's benchmarks: an in-memory feed through a `FeedPass` against a raw JetStream
//! publish, and the Planexpo simulator over HTTP through `poll_once`.

use crate::data::{self, EVENT, INWINK_EVENT_ID};
use crate::report::{Report, rate, rate_line};
use anyhow::Context;
use async_nats::jetstream::{self, stream};
use pxsync::ingestor::{FeedPass, Salon, poll_once};
use pxsync_bus::StreamSettings;
use pxsync_core::event::encode;
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

/// Runs both ingest benchmarks; returns the in-memory report and the end-to-end report.
pub async fn run(orders: usize) -> anyhow::Result<Vec<Report>> {
    let in_memory = {
        let ns = TestNamespace::new("bench_ingest").await;
        let r = in_memory(&ns, orders).await;
        ns.cleanup().await;
        r?
    };
    let ingest_rate = in_memory.1;
    let e2e = {
        let ns = TestNamespace::new("bench_e2e").await;
        let r = end_to_end(&ns, orders, ingest_rate).await;
        ns.cleanup().await;
        r?
    };
    Ok(vec![in_memory.0, e2e])
}

/// A `FeedPass` page by page on an in-memory feed; baseline: a raw JetStream publish of the
/// same payloads with 256 acks in flight. Returns the report and the ingest rate.
async fn in_memory(ns: &TestNamespace, orders: usize) -> anyhow::Result<(Report, f64)> {
    let feed = data::validated_feed(orders);
    // The payloads the ingestor will publish (same derivation; ids and sizes match).
    let payloads: Vec<Vec<u8>> = data::first_events(&feed)?.iter().map(encode).collect();
    let avg_size = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len().max(1);

    // Baseline first, on a scratch stream of the namespace.
    let (raw_count, raw_elapsed) = raw_publish(ns, &payloads, false).await?;
    let raw_rate = rate(raw_count, raw_elapsed);
    let (hdr_count, hdr_elapsed) = raw_publish(ns, &payloads, true).await?;
    let hdr_rate = rate(hdr_count, hdr_elapsed);

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
    let pages: Vec<Vec<serde_json::Value>> = feed.chunks(PAGE).map(<[_]>::to_vec).collect();
    let started = Instant::now();
    let mut pass = FeedPass::new(&ns.store, &ns.bus, &salon);
    for page in pages {
        pass.push(page).await?;
    }
    let published = pass.finish().await?;
    let elapsed = started.elapsed();
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
    let ingest_rate = rate(published, elapsed);
    let ratio = ingest_rate / raw_rate;
    let report = Report {
        name: "ingest",
        what: format!(
            "ingestor rate, in-memory feed of {orders} validated orders in pages of {PAGE} \
             (derive, dedupe against the store, publish, JetStream ack, watermark)"
        ),
        figure: rate_line(published, elapsed, "events"),
        baseline: format!(
            "{}: raw JetStream publish of the same payloads ({avg_size} B average, no headers), \
             {RAW_IN_FLIGHT} acks in flight",
            rate_line(raw_count, raw_elapsed, "msgs")
        ),
        ratio,
        target: "ratio >= 0.50".into(),
        pass: Some(ratio >= 0.5),
        notes: vec![
            format!(
                "{}: raw publish of the same payloads with the ingestor's headers (a distinct \
                 Nats-Msg-Id each, deduplicated by JetStream); ratio against it {:.2}",
                rate_line(hdr_count, hdr_elapsed, "msgs"),
                ingest_rate / hdr_rate
            ),
            cpu_breakdown(&feed),
        ],
    };
    Ok((report, ingest_rate))
}

/// The pure steps of the ingestor, one after another on one thread, in microseconds per order:
/// where the CPU of an ingested event goes, besides the bus and the store.
fn cpu_breakdown(feed: &[serde_json::Value]) -> String {
    use pxsync_core::event::{DeriveContext, Previous, derive_events};
    let n = feed.len().max(1) as f64;
    let micros = |d: Duration| d.as_secs_f64() * 1e6 / n;
    let t = Instant::now();
    let observations: Vec<_> = feed
        .iter()
        .filter_map(|raw| pxsync_core::order::observe(raw).ok())
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
        "CPU per order, one thread: observe {:.1} µs, derive {:.1} µs, encode {:.1} µs, \
         memory after (owned) {:.1} µs, memory to bytes {:.1} µs",
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
