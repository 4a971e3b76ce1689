//! The pxsync services and the operator CLI.
//!
//! Each service is a thin loop around the pure core: receive → call the core → persist → ack.
//! - [`ingestor`]: Planexpo → one event per observed revision → JetStream.
//! - [`projector`]: JetStream → event log + fold state in Postgres, one transaction
//!   per batch, acknowledged after commit.
//! - [`emitter`]: desired vs applied → planner → inwink, never lowering a quantity.
//!
//! Every service takes a [`Shutdown`] so tests and `pxsync run` control its end, and none exits
//! because another one (or Postgres, or NATS) is not up yet: they wait and retry.

pub mod budget;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod dryrun;
pub mod emitter;
pub mod http;
pub mod ingestor;
pub mod inspector;
pub mod preflight;
pub mod progress;
pub mod projector;
pub mod salons;
pub mod telemetry;
pub mod verify;
pub mod webhook;

/// The allocator of every pxsync process (the services, the CLI, the benchmarks and the tests
/// that link this crate). With glibc's, about 30 % of the projector's samples were in
/// allocating and freeing (decoded events, their rows, JSON states). mimalloc's v2 (its v3
/// keeps freed memory for a second and doubled the projector's peak): see ARCHITECTURE.md,
/// Performance, session 12.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// A shutdown signal shared by the tasks of a process.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The side that triggers the shutdown.
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the shutdown is triggered (or its trigger dropped).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Sleeps for `d`, or less if the shutdown comes first. Returns false on shutdown.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.is_triggered(),
            _ = self.wait() => false,
        }
    }

    /// A shutdown triggered by SIGTERM or Ctrl-C.
    pub fn on_signals() -> Shutdown {
        let (trigger, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
            tracing::info!("shutdown requested");
            trigger.trigger();
        });
        shutdown
    }
}

/// Retries `attempt` with exponential backoff (capped at 5 s) until it succeeds or the shutdown
/// comes; logs each failure once with its cause. Used for start-up dependencies.
pub async fn retry_until_ready<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    shutdown: &Shutdown,
    mut attempt: impl FnMut() -> F,
) -> Option<T> {
    let mut delay = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(v) => return Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "{what}: not ready, retrying in {delay:?}");
                if !shutdown.sleep(delay).await {
                    return None;
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The current time as a core timestamp (the shell reads the clock; the core never does).
pub fn now() -> pxsync_core::Timestamp {
    pxsync_core::Timestamp::from_datetime(time::OffsetDateTime::now_utc())
}

/// A new W3C trace context (version 00, sampled) for an observation.
pub fn new_traceparent() -> String {
    let trace: u128 = fastrand::u128(1..);
    let span: u64 = fastrand::u64(1..);
    format!("00-{trace:032x}-{span:016x}-01")
}

/// Runs a service with its operations endpoint: on shutdown the service gets `grace` to finish
/// the work in flight (an emitter's unfinished claims are then released by their lease).
pub async fn supervise(
    service: &'static str,
    ops: &config::OpsArgs,
    store: pxsync_store::Store,
    bus: Option<pxsync_bus::Bus>,
    work: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    if let Some(meter) = telemetry::meter() {
        let consumer = bus
            .clone()
            .filter(|_| service == "pxsync-projector" || service == "pxsync");
        http::export_otlp_metrics(meter, store.clone(), consumer, shutdown.clone());
    }
    let endpoint = http::Ops {
        service,
        store,
        bus,
    };
    let http = tokio::spawn(http::serve(ops.http_addr, endpoint, shutdown.clone()));
    let mut work = tokio::spawn(work);
    let grace = ops.shutdown_grace;
    let result = tokio::select! {
        r = &mut work => r?,
        () = async { shutdown.wait().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(service, ?grace, "grace period over: stopping with work in flight (claims are released by their lease)");
            work.abort();
            Ok(())
        }
    };
    let _ = http.await;
    tracing::info!(service, "stopped");
    result
}
