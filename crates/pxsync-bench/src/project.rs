//! The projector's benchmarks: projected events per second against a raw JetStream
//! consume-and-ack of the same messages, and the projector process's peak resident memory.
//!
//! The projection runs in a child process (this binary re-executed with the hidden
//! `project-child` subcommand) so that its `VmHWM` is the projector's alone. The two talk over
//! the child's stdin and stdout, one line at a time:
//! child `ready` (connected) → parent reads the idle `VmHWM`, sends `go` → child projects and
//! prints `done <seconds> <events in the log>` → parent reads the peak `VmHWM` and closes stdin
//! → child exits.

use crate::data::{self, EVENT, INWINK_EVENT_ID, REVISIONS};
use crate::report::{Report, rate, rate_line};
use anyhow::Context;
use async_nats::jetstream::consumer::{self, PullConsumer};
use futures::StreamExt;
use pxsync::Shutdown;
use pxsync::projector::ProjectorSettings;
use pxsync_bus::{Bus, StreamSettings};
use pxsync_core::event::EventEnvelope;
use pxsync_core::namespace::Namespace;
use pxsync_store::Store;
use pxsync_test_support::{TestNamespace, database_url, nats_url};
use std::collections::VecDeque;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The projector's absolute target.
const TARGET_EVENTS_PER_S: f64 = 20_000.0;
/// The memory target, and the state size it is stated for.
const TARGET_MIB: f64 = 64.0;
const TARGET_ORDERS: usize = 100_000;
/// Acknowledgements in flight while loading the stream (not measured).
const LOAD_IN_FLIGHT: usize = 256;
/// Batch size of the raw consume baseline (the projector's default batch too).
const RAW_BATCH: usize = 500;
/// The hidden subcommand that runs the projection.
pub const CHILD: &str = "project-child";

/// Runs the projection benchmarks on a namespace of their own.
pub async fn run(events: usize, default_n: bool) -> anyhow::Result<Vec<Report>> {
    let ns = TestNamespace::new("bench_project").await;
    let r = project(&ns, events, default_n).await;
    ns.cleanup().await;
    r
}

async fn project(ns: &TestNamespace, n: usize, default_n: bool) -> anyhow::Result<Vec<Report>> {
    let (events, orders) = data::history(n)?;
    ns.store.register_salon(EVENT, INWINK_EVENT_ID).await?;
    ns.store
        .import_mask(EVENT, &data::mask()?, "pxsync-bench")
        .await?;
    let load_started = Instant::now();
    load(&ns.bus, &events).await?;
    let load_elapsed = load_started.elapsed();
    let in_stream = ns
        .bus
        .jetstream()
        .get_stream(ns.ns.stream())
        .await
        .map_err(|e| anyhow::anyhow!("get the stream: {e}"))?
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("stream info: {e}"))?
        .state
        .messages;
    anyhow::ensure!(
        in_stream == n as u64,
        "the stream holds {in_stream} messages, {n} published"
    );
    drop(events);

    let (raw_count, raw_elapsed) = raw_consume(&ns.bus, n).await?;
    let raw_rate = rate(raw_count, raw_elapsed);

    let child = project_in_child(&ns.ns, n).await?;
    anyhow::ensure!(
        child.logged == n as i64,
        "the event log holds {} events, {n} published",
        child.logged
    );
    let projected_rate = rate(n, child.elapsed);

    let throughput = Report {
        name: "project",
        what: format!(
            "projected events per second: {n} events ({orders} orders x up to {REVISIONS} \
             revisions, published round by round) through pxsync::projector::run \
             (default settings, batches of {}) until the event log holds them all",
            ProjectorSettings::default().batch
        ),
        figure: rate_line(n, child.elapsed, "events"),
        baseline: format!(
            "{}: raw JetStream consume-and-ack of the same messages (pull consumer on the same \
             stream, another durable, batches of {RAW_BATCH})",
            rate_line(raw_count, raw_elapsed, "msgs")
        ),
        ratio: projected_rate / raw_rate,
        target: format!(">= {TARGET_EVENTS_PER_S:.0} events/s absolute"),
        pass: Some(projected_rate >= TARGET_EVENTS_PER_S),
        notes: vec![format!(
            "loading the stream took {:.2} s (not measured); the projector ran in its own process",
            load_elapsed.as_secs_f64()
        )],
    };

    let (peak, idle) = (mib(child.peak_kib), mib(child.idle_kib));
    let mut notes = Vec::new();
    if orders < TARGET_ORDERS {
        notes.push(format!(
            "{} N ({n} events) gives {orders} orders in state, fewer than the target's \
             {TARGET_ORDERS}; `pxsync-bench project --orders {}` measures it at that size",
            if default_n { "the default" } else { "this" },
            TARGET_ORDERS * REVISIONS as usize
        ));
    }
    let memory = Report {
        name: "project-memory",
        what: "peak resident memory (VmHWM) of the projector process".into(),
        figure: format!("{peak:.1} MiB with {orders} orders in state ({n} events projected)"),
        baseline: format!("{idle:.1} MiB (the same process connected, before projecting)"),
        ratio: peak / idle.max(f64::MIN_POSITIVE),
        target: format!("< {TARGET_MIB:.0} MiB with {TARGET_ORDERS} orders in state"),
        pass: Some(peak < TARGET_MIB),
        notes,
    };
    Ok(vec![throughput, memory])
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Publishes the events as the ingestor does, [`LOAD_IN_FLIGHT`] acknowledgements in flight.
async fn load(bus: &Bus, events: &[EventEnvelope]) -> anyhow::Result<()> {
    let mut acks: VecDeque<async_nats::jetstream::context::PublishAckFuture> =
        VecDeque::with_capacity(LOAD_IN_FLIGHT);
    for e in events {
        if acks.len() >= LOAD_IN_FLIGHT
            && let Some(ack) = acks.pop_front()
        {
            ack.await
                .context("JetStream did not acknowledge an event")?;
        }
        acks.push_back(bus.publish_async(e).await?);
    }
    for ack in acks {
        ack.await
            .context("JetStream did not acknowledge an event")?;
    }
    Ok(())
}

/// Consumes and acknowledges `n` messages of the namespace's stream with a durable of its own,
/// configured as the projector's.
async fn raw_consume(bus: &Bus, n: usize) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let stream = bus
        .jetstream()
        .get_stream(bus.namespace().stream())
        .await
        .map_err(|e| anyhow::anyhow!("get the stream: {e}"))?;
    let consumer: PullConsumer = stream
        .get_or_create_consumer(
            "bench_raw",
            consumer::pull::Config {
                durable_name: Some("bench_raw".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 20_000,
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("create the raw consumer: {e}"))?;
    let deadline = started + Duration::from_secs(120);
    let mut got = 0;
    while got < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the raw consumer received {got} of {n} messages in 120 s"
        );
        let mut messages = consumer
            .fetch()
            .max_messages(RAW_BATCH)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("raw fetch: {e}"))?;
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("raw message: {e}"))?;
            m.ack().await.map_err(|e| anyhow::anyhow!("raw ack: {e}"))?;
            got += 1;
        }
    }
    let elapsed = started.elapsed();
    let _ = stream.delete_consumer("bench_raw").await;
    Ok((got, elapsed))
}

/// What the projection child reported.
struct ChildRun {
    elapsed: Duration,
    logged: i64,
    idle_kib: u64,
    peak_kib: u64,
}

/// Runs the projection in a child process and reads its memory high-water mark.
async fn project_in_child(ns: &Namespace, n: usize) -> anyhow::Result<ChildRun> {
    let n_text = n.to_string();
    let run = run_measured_child(
        "projection",
        &[CHILD, "--namespace", ns.as_str(), "--orders", &n_text],
        child_timeout(n) + Duration::from_secs(30),
    )
    .await?;
    let mut parts = run.done.split_whitespace();
    let (Some("done"), Some(secs), Some(logged)) = (parts.next(), parts.next(), parts.next())
    else {
        anyhow::bail!("unexpected line from the child: {}", run.done);
    };
    Ok(ChildRun {
        elapsed: Duration::from_secs_f64(secs.parse()?),
        logged: logged.parse()?,
        idle_kib: run.idle_kib,
        peak_kib: run.peak_kib,
    })
}

/// What a measured child said when done, and its `VmHWM` before and after its work.
pub(crate) struct MeasuredChild {
    /// Its `done …` line.
    pub done: String,
    pub idle_kib: u64,
    pub peak_kib: u64,
}

/// Runs this executable with `args` as a measured child (`what` names it in errors): waits for
/// its `ready` line, reads its `VmHWM`, sends `go`, waits up to `done_wait` for its `done …`
/// line, reads its `VmHWM` again, closes its stdin and waits for a successful exit.
pub(crate) async fn run_measured_child(
    what: &str,
    args: &[&str],
    done_wait: Duration,
) -> anyhow::Result<MeasuredChild> {
    let exe = std::env::current_exe().context("find this executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start the {what} child"))?;
    let pid = child
        .id()
        .with_context(|| format!("the {what} child has no pid"))?;
    let mut stdin = child.stdin.take().context("the child's stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("the child's stdout")?).lines();
    let mut next = async |line: &str, wait: Duration| -> anyhow::Result<String> {
        match tokio::time::timeout(wait, lines.next_line()).await {
            Ok(Ok(Some(text))) => Ok(text),
            Ok(Ok(None)) => {
                anyhow::bail!("the {what} child exited before {line} (its error is above)")
            }
            Ok(Err(e)) => Err(e).with_context(|| format!("read the {what} child's output")),
            Err(_) => anyhow::bail!("the {what} child did not say {line} in {wait:?}"),
        }
    };
    let ready = next("ready", Duration::from_secs(60)).await?;
    anyhow::ensure!(ready == "ready", "unexpected line from the child: {ready}");
    let idle_kib = vm_hwm_kib(pid)?;
    stdin.write_all(b"go\n").await?;
    stdin.flush().await?;
    let done = next("done", done_wait).await?;
    anyhow::ensure!(
        done.starts_with("done "),
        "unexpected line from the {what} child: {done}"
    );
    let peak_kib = vm_hwm_kib(pid)?;
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .with_context(|| format!("the {what} child did not exit"))??;
    anyhow::ensure!(status.success(), "the {what} child failed: {status}");
    Ok(MeasuredChild {
        done,
        idle_kib,
        peak_kib,
    })
}

/// The peak resident set size (`VmHWM`) of a live process, in KiB.
pub(crate) fn vm_hwm_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmHWM in /proc/{pid}/status"))
}

/// How long the projection of `n` events may take before the child gives up.
fn child_timeout(n: usize) -> Duration {
    Duration::from_secs(120).max(Duration::from_millis(n as u64))
}

/// The child side: connects, waits for `go`, runs the projector until the event log holds
/// `n` events, reports, and waits for stdin to close.
pub async fn child(namespace: &str, n: usize) -> anyhow::Result<()> {
    let ns = Namespace::new(namespace).context("the namespace")?;
    let settings = settings_from_env()?;
    // One connection per transaction in flight, and one for the polling below.
    let store = Store::connect(&database_url(), &ns, settings.transactions + 1)?;
    let bus = Bus::connect(&nats_url(), &ns).await?;
    anyhow::ensure!(store.is_migrated().await?, "namespace {ns} is not migrated");
    println!("ready");
    let go = read_stdin_line().await?;
    anyhow::ensure!(go.trim_end() == "go", "expected go, got {go:?}");
    let (trigger, shutdown) = Shutdown::new();
    let started = Instant::now();
    let projector = tokio::spawn(pxsync::projector::run(
        store.clone(),
        bus.clone(),
        StreamSettings::default(),
        settings,
        shutdown,
    ));
    let deadline = started + child_timeout(n);
    loop {
        if projector.is_finished() {
            break;
        }
        if matches!(bus.projector_lag().await, Ok((0, 0)))
            && store.event_log_count(None).await? >= n as i64
        {
            break;
        }
        if Instant::now() > deadline {
            trigger.trigger();
            anyhow::bail!(
                "the event log holds {} of {n} events after {:?}",
                store.event_log_count(None).await?,
                child_timeout(n)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    trigger.trigger();
    projector.await.context("the projector task")??;
    let logged = store.event_log_count(None).await?;
    println!("done {} {logged}", elapsed.as_secs_f64());
    // The parent reads this process's memory now; it closes stdin when done.
    let _ = read_stdin_line().await;
    Ok(())
}

/// The default settings, or the batch and transactions of `PXSYNC_PROJECTOR_BATCH` and
/// `PXSYNC_PROJECTOR_TRANSACTIONS` when set (to compare them; the report names the defaults).
fn settings_from_env() -> anyhow::Result<ProjectorSettings> {
    let mut settings = ProjectorSettings::default();
    for (var, field) in [
        ("PXSYNC_PROJECTOR_BATCH", &mut settings.batch),
        ("PXSYNC_PROJECTOR_TRANSACTIONS", &mut settings.transactions),
    ] {
        if let Ok(v) = std::env::var(var) {
            *field = v.parse().with_context(|| format!("{var}={v:?}"))?;
        }
    }
    Ok(settings)
}

/// One line of stdin (empty at its end), read on a blocking thread.
pub(crate) async fn read_stdin_line() -> anyhow::Result<String> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .context("the stdin reader")?
    .context("read stdin")
}

/// The hidden subcommand of a projector process of the three-process check.
pub const WORKER: &str = "project-worker";
/// Events of the three-process check.
const THREE_EVENTS: usize = 10_000;

/// Three projector processes (this binary re-executed as [`WORKER`]) on one durable consumer,
/// over [`THREE_EVENTS`] events shuffled and duplicated, against one process over the same
/// events shuffled otherwise: the two states must be identical, and the fold of the events.
pub async fn three(default_n: bool) -> anyhow::Result<Report> {
    use pxsync_test_support::projection::{
        self, expected_orders, projected_state, publish_shuffled_with_duplicates,
    };
    let events = projection::history(THREE_EVENTS);
    let (three, one) = tokio::join!(
        TestNamespace::new("bench_three"),
        TestNamespace::new("bench_one")
    );
    let result = async {
        let mut published = 0;
        for (ns, seed) in [(&three, 31), (&one, 32)] {
            projection::prepare_salon(&ns.store, "pxsync-bench").await?;
            published = publish_shuffled_with_duplicates(&ns.bus, &events, 10, seed).await?;
        }
        let (t3, t1) = tokio::join!(
            project_with_workers(&three, 3, THREE_EVENTS),
            project_with_workers(&one, 1, THREE_EVENTS)
        );
        let (t3, t1) = (t3?, t1?);
        let by_three = projected_state(&three.store).await?;
        let by_one = projected_state(&one.store).await?;
        let expected = expected_orders(&events, &projection::mask());
        let fold_matches = by_one.orders.len() == expected.len()
            && by_one.orders.iter().zip(&expected).all(|(got, want)| {
                (&got.order_id, got.revision, &got.state, &got.desired)
                    == (&want.order_id, want.revision, &want.state, &want.desired)
            });
        let chains = three.store.verify_chains().await?.is_none()
            && one.store.verify_chains().await?.is_none();
        let same = by_three == by_one;
        let once = by_three.event_ids.len() == THREE_EVENTS;
        Ok::<_, anyhow::Error>(Report {
            name: "project-three",
            what: format!(
                "three projector processes on one durable consumer over {THREE_EVENTS} events \
                 ({published} messages: shuffled, every tenth duplicated without Nats-Msg-Id)"
            ),
            figure: format!(
                "{}: {} logged once each, per-order state {} the single process's, {} the pure \
                 fold's; chains {} ({:.2} s)",
                if same && fold_matches && chains && once {
                    "identical"
                } else {
                    "DIFFERENT"
                },
                by_three.event_ids.len(),
                if same { "equal to" } else { "NOT equal to" },
                if fold_matches {
                    "equal to"
                } else {
                    "NOT equal to"
                },
                if chains { "intact" } else { "BROKEN" },
                t3.as_secs_f64()
            ),
            baseline: format!(
                "one projector process over the same events shuffled otherwise, run at the same time ({:.2} s)",
                t1.as_secs_f64()
            ),
            ratio: t1.as_secs_f64() / t3.as_secs_f64().max(1e-9),
            target: "exactly the state one process gives".into(),
            pass: Some(same && fold_matches && chains && once),
            notes: if default_n {
                vec![]
            } else {
                vec![format!(
                    "always {THREE_EVENTS} events, whatever --orders says"
                )]
            },
        })
    }
    .await;
    three.cleanup().await;
    one.cleanup().await;
    result
}

/// Runs `workers` projector processes on the namespace until its log holds `n` events and the
/// consumer has nothing pending; returns how long that took.
async fn project_with_workers(
    ns: &TestNamespace,
    workers: usize,
    n: usize,
) -> anyhow::Result<Duration> {
    let exe = std::env::current_exe().context("find this executable")?;
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..workers {
        children.push(
            tokio::process::Command::new(&exe)
                .args([WORKER, "--namespace", ns.ns.as_str()])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("start a projector process")?,
        );
    }
    let deadline = started + child_timeout(n);
    loop {
        if matches!(ns.bus.projector_lag().await, Ok((0, 0)))
            && ns.store.event_log_count(None).await? >= n as i64
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{workers} projector processes logged {} of {n} events in {:?}",
            ns.store.event_log_count(None).await?,
            child_timeout(n)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    for mut child in children {
        drop(child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    }
    Ok(elapsed)
}

/// A projector process of the three-process check: runs the projector until stdin closes.
pub async fn worker(namespace: &str) -> anyhow::Result<()> {
    let ns = Namespace::new(namespace).context("the namespace")?;
    let store = Store::connect(
        &database_url(),
        &ns,
        pxsync::projector::DEFAULT_TRANSACTIONS + 1,
    )?;
    let bus = Bus::connect(&nats_url(), &ns).await?;
    let (trigger, shutdown) = Shutdown::new();
    let projector = tokio::spawn(pxsync::projector::run(
        store,
        bus,
        StreamSettings::default(),
        ProjectorSettings::default(),
        shutdown,
    ));
    let _ = read_stdin_line().await;
    trigger.trigger();
    projector.await.context("the projector task")??;
    Ok(())
}
