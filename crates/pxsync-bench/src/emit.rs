//! The emitter's benchmarks, against the in-process inwink simulator without faults.
//!
//! - `emit-converge` and `emit`: [`CONVERGE_ORDERS`] validated orders projected into the state
//!   (with `project_batch`, not measured), then the emitter (with the inspector, as
//!   `pxsync-emitter` runs them, default settings) in a child process until every order is done
//!   and inwink holds a partner and a team link for each. The time to converge (target: under
//!   2 minutes), and the emitter's inwink calls per second next to the simulator's raw capacity:
//!   the same number of partner creations sent straight to a second simulator by as many tasks
//!   as the emitter has orders in flight.
//! - `emit-memory`: the same child with [`MEMORY_ORDERS`] orders in state, all marked, until
//!   [`MEMORY_RECONCILED`] of them are done: its peak resident memory (`VmHWM`).
//! - `emit-latency` and `emit-writes`: the three services in this process (the ingestor with
//!   its webhook receiver, the projector, the emitter), the Planexpo simulator delivering its
//!   webhooks. After [`LATENCY_ORDERS`] orders reached inwink, one change of a partner field per
//!   [`CHANGE_INTERVAL`] (50 per second) for [`CHANGES`] changes; the latency of each from the
//!   simulator's change to the inwink simulator receiving its write (both logged by the same
//!   clock), p50 and p99 (target: p99 under 1 s), against the simulator's own round trip for
//!   one write. Then the inwink writes per effective change (target 1.00), and the writes of a
//!   pass that re-publishes every order unchanged (target 0).
//!
//! The emitter child is this binary re-executed with the hidden `emit-child` subcommand; it
//! speaks the same line protocol as `project-child`: `ready` → `go` → `done <seconds>` → stdin
//! closed.

use crate::data::{self, EVENT, INWINK_EVENT_ID};
use crate::project::{mib, read_stdin_line, run_measured_child};
use crate::report::{Report, rate, rate_line};
use anyhow::Context;
use clap::Parser;
use pxsync::Shutdown;
use pxsync::config::{EmitterArgs, WebhookArgs};
use pxsync_core::namespace::Namespace;
use pxsync_inwink::{InwinkClient, InwinkConfig, Secret};
use pxsync_store::Store;
use pxsync_test_support::{Http, TestNamespace, database_url, nats_url};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Orders of the convergence run (the figure).
pub const CONVERGE_ORDERS: usize = 2_000;
const CONVERGE_TARGET: Duration = Duration::from_secs(120);
/// Orders in state for the memory figure, and its target.
pub const MEMORY_ORDERS: usize = 100_000;
const TARGET_MIB: f64 = 64.0;
/// Orders the memory run reconciles before its figure is read.
const MEMORY_RECONCILED: usize = 1_000;
/// Orders of the latency run, and its changes.
const LATENCY_ORDERS: usize = 100;
const CHANGES: usize = 1_000;
const CHANGE_INTERVAL: Duration = Duration::from_millis(20);
const LATENCY_TARGET: Duration = Duration::from_secs(1);
/// The hidden subcommand that runs the emitter.
pub const CHILD: &str = "emit-child";
/// Events per `project_batch` while loading the state (not measured).
const LOAD_BATCH: usize = 1_000;
const WEBHOOK_SECRET: &str = "bench-webhook-secret";

/// The emitter settings and inspector settings `pxsync-emitter` would use here (its defaults, or
/// the `PXSYNC_EMITTER_*` variables of the environment).
#[derive(Parser)]
struct EmitterDefaults {
    #[command(flatten)]
    emitter: EmitterArgs,
}

fn emitter_args() -> anyhow::Result<EmitterArgs> {
    Ok(EmitterDefaults::try_parse_from(["pxsync-emitter"])
        .context("the PXSYNC_EMITTER_* settings")?
        .emitter)
}

fn inwink_options() -> pxsync_sim::inwink::Options {
    pxsync_sim::inwink::Options {
        event_id: INWINK_EVENT_ID.into(),
        ..Default::default()
    }
}

fn inwink_client(base_url: &str) -> anyhow::Result<InwinkClient> {
    let o = inwink_options();
    Ok(InwinkClient::new(InwinkConfig::new(
        base_url,
        format!("{base_url}/oauth/token"),
        o.client_id,
        Secret::new(o.client_secret),
        INWINK_EVENT_ID,
    ))?)
}

/// An inwink simulator serving the synthetic salon's event and products.
async fn inwink_sim(http: &Http) -> anyhow::Result<pxsync_sim::Running> {
    let sim = pxsync_sim::inwink::spawn(inwink_options()).await?;
    let products: Vec<Value> = data::mask()?
        .products
        .values()
        .map(|m| json!({"id": m.inwink_product_id, "name": m.inwink_product_name}))
        .collect();
    http.put(
        &format!("{}/_sim/products", sim.base_url()),
        &json!({ "data": products }),
    )
    .await;
    Ok(sim)
}

/// Runs the emitter benchmarks, each in a namespace of its own, and prints each report as soon
/// as it is measured (the three runs take a few minutes).
pub async fn run() -> anyhow::Result<()> {
    let ns = TestNamespace::new("bench_emit").await;
    let r = converge(&ns).await;
    ns.cleanup().await;
    r?.iter().for_each(Report::print);
    let ns = TestNamespace::new("bench_emit_mem").await;
    let r = memory(&ns).await;
    ns.cleanup().await;
    r?.print();
    let ns = TestNamespace::new("bench_emit_lat").await;
    let r = latency(&ns).await;
    ns.cleanup().await;
    r?.iter().for_each(Report::print);
    Ok(())
}

/// Projects `n` validated orders into the state of an enabled salon (every order marked).
async fn load_state(store: &Store, stream: &str, n: usize) -> anyhow::Result<()> {
    store.register_salon(EVENT, INWINK_EVENT_ID).await?;
    store
        .import_mask(EVENT, &data::mask()?, "pxsync-bench")
        .await?;
    for (k, chunk) in data::validated_feed(n).chunks(LOAD_BATCH).enumerate() {
        let events = data::first_events(chunk)?;
        store.project_batch(&events, stream, k as u64 + 1).await?;
    }
    store.set_enabled(EVENT, true).await?;
    Ok(())
}

async fn done_orders(store: &Store) -> anyhow::Result<i64> {
    let client = store.client().await?;
    let row = client
        .query_one("SELECT count(*) FROM work_queue WHERE state = 'done'", &[])
        .await?;
    Ok(row.get(0))
}

async fn recorded_calls(store: &Store) -> anyhow::Result<i64> {
    let client = store.client().await?;
    Ok(client
        .query_one("SELECT count(*) FROM inwink_calls", &[])
        .await?
        .get(0))
}

async fn converge(ns: &TestNamespace) -> anyhow::Result<Vec<Report>> {
    let http = Http::default();
    load_state(&ns.store, &ns.ns.stream(), CONVERGE_ORDERS).await?;
    let inwink = inwink_sim(&http).await?;
    let child = emit_in_child(&ns.ns, &inwink.base_url(), CONVERGE_ORDERS).await?;
    let state = http.get(&format!("{}/_sim/state", inwink.base_url())).await;
    let count = |k: &str| state[k].as_array().map_or(0, Vec::len);
    let (partners, links) = (count("partners"), count("team_members"));
    anyhow::ensure!(
        partners == CONVERGE_ORDERS && links == CONVERGE_ORDERS,
        "inwink holds {partners} partners and {links} team links for {CONVERGE_ORDERS} orders"
    );
    let calls = recorded_calls(&ns.store).await? as usize;
    inwink.shutdown().await;
    let emitter_rate = rate(calls, child.elapsed);

    let concurrency = emitter_args()?.concurrency;
    let (raw_calls, raw_elapsed) = raw_capacity(calls, concurrency).await?;
    let raw_rate = rate(raw_calls, raw_elapsed);
    let converged = Report {
        name: "emit-converge",
        what: format!(
            "{CONVERGE_ORDERS} validated orders from the state to inwink (partner, participant, \
             team link, products), the emitter in its own process, default settings"
        ),
        figure: format!(
            "{:.1} s ({})",
            child.elapsed.as_secs_f64(),
            rate_line(CONVERGE_ORDERS, child.elapsed, "orders")
        ),
        baseline: format!("{:.0} s", CONVERGE_TARGET.as_secs_f64()),
        ratio: child.elapsed.as_secs_f64() / CONVERGE_TARGET.as_secs_f64(),
        target: format!(
            "under {:.0} s without faults",
            CONVERGE_TARGET.as_secs_f64()
        ),
        pass: Some(child.elapsed < CONVERGE_TARGET),
        notes: vec![format!(
            "inwink holds {partners} partners and {links} team links; the simulator ran in \
             this process and shared the cores"
        )],
    };
    let throughput = Report {
        name: "emit",
        what: "emitter throughput against the inwink simulator without faults, in inwink calls \
               per second (every call recorded in inwink_calls)"
            .into(),
        figure: rate_line(calls, child.elapsed, "calls"),
        baseline: format!(
            "{}: the simulator's raw capacity, partner creations sent straight to it by \
             {concurrency} tasks (the emitter's orders in flight)",
            rate_line(raw_calls, raw_elapsed, "calls")
        ),
        ratio: emitter_rate / raw_rate,
        target: "none".into(),
        pass: None,
        notes: vec![format!(
            "{:.1} calls per order",
            calls as f64 / CONVERGE_ORDERS as f64
        )],
    };
    Ok(vec![converged, throughput])
}

/// A token of the inwink simulator at `base`, for calls sent straight to it.
async fn sim_token(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let o = inwink_options();
    let token: Value = client
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &o.client_id),
            ("client_secret", &o.client_secret),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(token["access_token"]
        .as_str()
        .context("the simulator gave no token")?
        .to_owned())
}

/// `calls` partner creations sent straight to a fresh simulator by `tasks` tasks.
async fn raw_capacity(calls: usize, tasks: usize) -> anyhow::Result<(usize, Duration)> {
    let http = Http::default();
    let sim = inwink_sim(&http).await?;
    let client = reqwest::Client::new();
    let token = sim_token(&client, &sim.base_url()).await?;
    let url = format!("{}/{INWINK_EVENT_ID}/exhibitor", sim.base_url());
    let tasks = tasks.max(1);
    let per_task = calls.div_ceil(tasks);
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        handles.push(tokio::spawn(async move {
            for k in 0..per_task {
                let body = json!({"name": format!("Raw {t}-{k}"), "status": "Published",
                    "planexpo_order_id": format!("raw-{t}-{k}")});
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "raw create: {}", r.status());
            }
            Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let elapsed = started.elapsed();
    sim.shutdown().await;
    Ok((per_task * tasks, elapsed))
}

async fn memory(ns: &TestNamespace) -> anyhow::Result<Report> {
    let http = Http::default();
    let loading = Instant::now();
    load_state(&ns.store, &ns.ns.stream(), MEMORY_ORDERS).await?;
    let loaded_in = loading.elapsed();
    let inwink = inwink_sim(&http).await?;
    let child = emit_in_child(&ns.ns, &inwink.base_url(), MEMORY_RECONCILED).await?;
    inwink.shutdown().await;
    let (peak, idle) = (mib(child.peak_kib), mib(child.idle_kib));
    Ok(Report {
        name: "emit-memory",
        what: "peak resident memory (VmHWM) of the emitter process (emitter and inspector)".into(),
        figure: format!(
            "{peak:.1} MiB with {MEMORY_ORDERS} orders in state, all marked, while it \
             reconciled {MEMORY_RECONCILED} of them"
        ),
        baseline: format!("{idle:.1} MiB (the same process connected, before emitting)"),
        ratio: peak / idle.max(f64::MIN_POSITIVE),
        target: format!("< {TARGET_MIB:.0} MiB with {MEMORY_ORDERS} orders in state"),
        pass: Some(peak < TARGET_MIB),
        notes: vec![format!(
            "loading the state took {:.1} s (not measured); inwink held at most \
             {MEMORY_RECONCILED} partners, so the inspector's pages were that many",
            loaded_in.as_secs_f64()
        )],
    })
}

/// What the emitter child reported.
struct ChildRun {
    elapsed: Duration,
    idle_kib: u64,
    peak_kib: u64,
}

/// Runs the emitter in a child process until `orders` orders are done; reads its `VmHWM`.
async fn emit_in_child(ns: &Namespace, inwink: &str, orders: usize) -> anyhow::Result<ChildRun> {
    let orders_text = orders.to_string();
    let run = run_measured_child(
        "emitter",
        &[
            CHILD,
            "--namespace",
            ns.as_str(),
            "--inwink",
            inwink,
            "--orders",
            &orders_text,
        ],
        CHILD_TIMEOUT + Duration::from_secs(30),
    )
    .await?;
    let secs = run
        .done
        .strip_prefix("done ")
        .and_then(|s| s.parse::<f64>().ok())
        .with_context(|| format!("unexpected line from the child: {}", run.done))?;
    Ok(ChildRun {
        elapsed: Duration::from_secs_f64(secs),
        idle_kib: run.idle_kib,
        peak_kib: run.peak_kib,
    })
}

/// How long the child may emit before it gives up.
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

/// The child side: connects, waits for `go`, runs the emitter and the inspector until `orders`
/// orders are done, reports, and waits for stdin to close.
pub async fn child(namespace: &str, inwink: &str, orders: usize) -> anyhow::Result<()> {
    let ns = Namespace::new(namespace).context("the namespace")?;
    let args = emitter_args()?;
    // The pool of pxsync-emitter's default PXSYNC_DATABASE_POOL_SIZE.
    let store = Store::connect(&database_url(), &ns, 10)?;
    anyhow::ensure!(store.is_migrated().await?, "namespace {ns} is not migrated");
    let mut clients = pxsync::emitter::Clients::new();
    clients.insert(INWINK_EVENT_ID.to_owned(), inwink_client(inwink)?);
    println!("ready");
    let go = read_stdin_line().await?;
    anyhow::ensure!(go.trim_end() == "go", "expected go, got {go:?}");
    let (trigger, shutdown) = Shutdown::new();
    let started = Instant::now();
    let inspector = tokio::spawn(pxsync::inspector::run(
        store.clone(),
        clients.clone(),
        pxsync::inspector::InspectorSettings::from_args(&args),
        shutdown.clone(),
    ));
    let emitter = tokio::spawn(pxsync::emitter::run(
        store.clone(),
        clients,
        pxsync::emitter::EmitterSettings::from_args(&args),
        shutdown,
    ));
    loop {
        if done_orders(&store).await? >= orders as i64 {
            break;
        }
        if emitter.is_finished() || started.elapsed() > CHILD_TIMEOUT {
            trigger.trigger();
            anyhow::bail!(
                "{} of {orders} orders done after {:?}",
                done_orders(&store).await?,
                started.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    trigger.trigger();
    emitter.await.context("the emitter task")??;
    inspector.abort();
    println!("done {}", elapsed.as_secs_f64());
    let _ = read_stdin_line().await;
    Ok(())
}

/// The writes in an inwink simulator's call log: no read, no query, no token.
fn writes(calls: &Value) -> Vec<&Value> {
    calls["calls"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| {
                    c["method"] != "GET"
                        && !c["path"].as_str().unwrap_or("").ends_with("/query")
                        && c["path"] != "/oauth/token"
                })
                .collect()
        })
        .unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let k = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The three services in this process, driven by webhooks at 50 changes per second.
async fn latency(ns: &TestNamespace) -> anyhow::Result<Vec<Report>> {
    let http = Http::default();
    let planexpo_options = pxsync_sim::planexpo::Options {
        event: EVENT.into(),
        ..Default::default()
    };
    let planexpo = pxsync_sim::planexpo::spawn(planexpo_options.clone()).await?;
    let inwink = inwink_sim(&http).await?;
    let (px, iw) = (planexpo.base_url(), inwink.base_url());
    ns.store.register_salon(EVENT, INWINK_EVENT_ID).await?;
    ns.store
        .import_mask(EVENT, &data::mask()?, "pxsync-bench")
        .await?;
    ns.store.set_enabled(EVENT, true).await?;
    let webhook_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    http.put(
        &format!("{px}/_sim/webhook"),
        &json!({"url": format!("http://{webhook_addr}/webhooks/planexpo"), "secret": WEBHOOK_SECRET}),
    )
    .await;

    let args = emitter_args()?;
    let pool = |size| Store::connect(&database_url(), &ns.ns, size);
    let bus = pxsync_bus::Bus::connect(&nats_url(), &ns.ns).await?;
    let planexpo_client =
        pxsync_planexpo::PlanexpoClient::new(pxsync_planexpo::PlanexpoConfig::new(
            &px,
            pxsync_planexpo::Secret::new(planexpo_options.api_key.clone()),
            EVENT,
        ))?;
    let salon = pxsync::ingestor::Salon {
        planexpo: planexpo_client,
        inwink_event_id: INWINK_EVENT_ID.into(),
        poll_interval: Duration::from_secs(5),
        rescan_interval: Duration::from_secs(24 * 3600),
        page_size: pxsync::ingestor::DEFAULT_PAGE_SIZE,
    };
    let mut clients = pxsync::emitter::Clients::new();
    clients.insert(INWINK_EVENT_ID.to_owned(), inwink_client(&iw)?);
    let (trigger, shutdown) = Shutdown::new();
    let webhook = WebhookArgs {
        addr: Some(webhook_addr),
        secret: Some(WEBHOOK_SECRET.into()),
    };
    let ingest_store = pool(3)?;
    let ingest_bus = bus.clone();
    let ingest_shutdown = shutdown.clone();
    let services = vec![
        tokio::spawn(async move {
            pxsync::ingestor::run_with_webhook(
                ingest_store,
                ingest_bus,
                salon,
                &webhook,
                ingest_shutdown,
            )
            .await
        }),
        tokio::spawn(pxsync::projector::run(
            pool(pxsync::projector::DEFAULT_TRANSACTIONS + 1)?,
            bus.clone(),
            pxsync_bus::StreamSettings::default(),
            pxsync::projector::ProjectorSettings::default(),
            shutdown.clone(),
        )),
        tokio::spawn(pxsync::emitter::run(
            pool(10)?,
            clients,
            pxsync::emitter::EmitterSettings::from_args(&args),
            shutdown.clone(),
        )),
    ];
    let result = measure_latency(ns, &http, &px, &iw).await;
    trigger.trigger();
    for s in services {
        let _ = tokio::time::timeout(Duration::from_secs(25), s).await;
    }
    planexpo.shutdown().await;
    inwink.shutdown().await;
    result
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await? {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what}: not reached in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn measure_latency(
    ns: &TestNamespace,
    http: &Http,
    px: &str,
    iw: &str,
) -> anyhow::Result<Vec<Report>> {
    let mut orders: Vec<Value> = (0..LATENCY_ORDERS)
        .map(|i| data::raw_order(i, 1, "validated", i as i64, 0))
        .collect();
    for o in &orders {
        http.put(
            &format!("{px}/_sim/orders/{}", o["id"].as_str().unwrap_or("")),
            o,
        )
        .await;
    }
    wait_until(
        "the first orders on inwink",
        Duration::from_secs(120),
        || async {
            Ok(done_orders(&ns.store).await? >= LATENCY_ORDERS as i64
                && http.get(&format!("{iw}/_sim/state")).await["team_members"]
                    .as_array()
                    .map_or(0, Vec::len)
                    >= LATENCY_ORDERS)
        },
    )
    .await?;

    // The simulator's own round trip for one write (a partner update), as a baseline.
    let raw = raw_write_latencies(http, iw).await?;

    http.delete(&format!("{iw}/_sim/calls")).await;
    // One change of the partner's name per tick, round robin over the orders.
    let mut sent: Vec<(String, OffsetDateTime)> = Vec::with_capacity(CHANGES);
    let mut ticks = tokio::time::interval(CHANGE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut puts = tokio::task::JoinSet::new();
    let client = reqwest::Client::new();
    let started = Instant::now();
    for k in 0..CHANGES {
        ticks.tick().await;
        let o = &mut orders[k % LATENCY_ORDERS];
        let name = format!("Société Banc d'Essai {} (change {k})", k % LATENCY_ORDERS);
        o["company"]["name"] = json!(name);
        let url = format!("{px}/_sim/orders/{}", o["id"].as_str().unwrap_or(""));
        let body = o.clone();
        sent.push((name, OffsetDateTime::now_utc()));
        let client = client.clone();
        puts.spawn(async move { client.put(&url).json(&body).send().await });
    }
    for put in puts.join_all().await {
        anyhow::ensure!(
            put?.status().is_success(),
            "a change was refused by the simulator"
        );
    }
    let pace = started.elapsed();
    let _ = wait_until("every change written", Duration::from_secs(30), || async {
        Ok(writes(&http.get(&format!("{iw}/_sim/calls")).await).len() >= CHANGES)
    })
    .await;
    // Settle, then count every write of the run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = http.get(&format!("{iw}/_sim/calls")).await;
    let written = writes(&calls);
    let mut latencies: Vec<Duration> = Vec::new();
    for (name, at) in &sent {
        let hit = written.iter().find(|c| c["body"]["name"] == name.as_str());
        if let Some(t) = hit
            .and_then(|c| c["time"].as_str())
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        {
            latencies.push(Duration::try_from((t - *at).max(time::Duration::ZERO))?);
        }
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    let max = latencies.last().copied().unwrap_or_default();

    // A pass with no change: every order published again as it is.
    let logged_before = ns.store.event_log_count(None).await?;
    http.delete(&format!("{iw}/_sim/calls")).await;
    for o in &orders {
        http.put(
            &format!("{px}/_sim/orders/{}", o["id"].as_str().unwrap_or("")),
            o,
        )
        .await;
    }
    let republished = wait_until(
        "the unchanged revisions logged",
        Duration::from_secs(30),
        || async {
            Ok(ns.store.event_log_count(None).await? >= logged_before + LATENCY_ORDERS as i64)
        },
    )
    .await
    .is_ok();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_writes = writes(&http.get(&format!("{iw}/_sim/calls")).await).len();

    let per_change = written.len() as f64 / CHANGES as f64;
    let latency = Report {
        name: "emit-latency",
        what: format!(
            "from a Planexpo change (delivered by webhook) to the matching inwink write, \
             {CHANGES} partner-name changes at {:.0} per second over {LATENCY_ORDERS} orders, \
             through the ingestor, the projector and the emitter (default settings, in this \
             process)",
            1.0 / CHANGE_INTERVAL.as_secs_f64()
        ),
        figure: format!(
            "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} of {CHANGES} changes matched)",
            ms(p50),
            ms(p99),
            ms(max),
            latencies.len()
        ),
        baseline: format!(
            "the simulator's own round trip for one partner update: p50 {:.1} ms, p99 {:.1} ms",
            ms(percentile(&raw, 0.50)),
            ms(percentile(&raw, 0.99))
        ),
        ratio: p99.as_secs_f64() / percentile(&raw, 0.99).as_secs_f64().max(1e-6),
        target: format!("p99 under {:.0} ms", ms(LATENCY_TARGET)),
        pass: Some(p99 < LATENCY_TARGET && latencies.len() == CHANGES),
        notes: vec![format!(
            "the changes were sent in {:.1} s ({:.1} per second)",
            pace.as_secs_f64(),
            rate(CHANGES, pace)
        )],
    };
    let writes_report = Report {
        name: "emit-writes",
        what: "inwink writes per effective change (each change: one partner field)".into(),
        figure: format!(
            "{per_change:.2} ({} writes for {CHANGES} changes)",
            written.len()
        ),
        baseline: format!(
            "{idle_writes} writes for a pass re-publishing the {LATENCY_ORDERS} orders unchanged{}",
            if republished {
                ""
            } else {
                " (its revisions were not all logged in 30 s)"
            }
        ),
        ratio: per_change,
        target: "1.00 per change, and 0 for the pass with no change".into(),
        pass: Some(written.len() == CHANGES && idle_writes == 0),
        notes: Vec::new(),
    };
    Ok(vec![latency, writes_report])
}

/// 200 partner updates sent straight to the simulator one after the other: their round trips.
async fn raw_write_latencies(http: &Http, iw: &str) -> anyhow::Result<Vec<Duration>> {
    let state = http.get(&format!("{iw}/_sim/state")).await;
    let id = state["partners"][0]["id"]
        .as_str()
        .context("no partner on the simulator")?
        .to_owned();
    let client = reqwest::Client::new();
    let token = sim_token(&client, iw).await?;
    let url = format!("{iw}/{INWINK_EVENT_ID}/exhibitor/{id}");
    let mut out = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = Instant::now();
        let r = client
            .patch(&url)
            .bearer_auth(&token)
            .json(&json!({"website": "https://www.bench.example"}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "raw update: {}", r.status());
        out.push(t.elapsed());
    }
    out.sort();
    Ok(out)
}
