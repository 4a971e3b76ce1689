//! The operations endpoint of every service, on `PXSYNC_HTTP_ADDR` (off when unset):
//! - `GET /healthz`: the process is alive;
//! - `GET /readyz`: Postgres answers and the schema is migrated, NATS is connected (for the
//!   services that use it); 503 with the failing check otherwise;
//! - `GET /metrics`: Prometheus text, read from the namespace's records at scrape time (so every
//!   replica reports the same namespace-wide figures): events logged, orders by queue state, the
//!   oldest waiting age, inwink calls by operation and status, refused decreases, parked orders,
//!   heals, rejected units.

use crate::Shutdown;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use pxsync_store::Store;
use std::fmt::Write;

#[derive(Clone)]
pub struct Ops {
    pub service: &'static str,
    pub store: Store,
    /// The service's NATS connection (readiness), and for the projector its consumer (lag).
    pub bus: Option<pxsync_bus::Bus>,
}

pub fn router(ops: Ops) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(ops)
}

/// Serves the endpoint until the shutdown, when `addr` is set.
pub async fn serve(
    addr: Option<std::net::SocketAddr>,
    ops: Ops,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let Some(addr) = addr else { return Ok(()) };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("listen on PXSYNC_HTTP_ADDR {addr}: {e}"))?;
    tracing::info!(%addr, service = ops.service, "operations endpoint: /healthz /readyz /metrics");
    axum::serve(listener, router(ops))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
    Ok(())
}

async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    match ops.store.is_migrated().await {
        Ok(true) => {}
        Ok(false) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "postgres: schema not migrated\n".to_owned(),
            );
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("postgres: {e}\n")),
    }
    if let Some(bus) = &ops.bus
        && bus.client().connection_state() != async_nats::connection::State::Connected
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "nats: not connected\n".to_owned(),
        );
    }
    if let Some(bus) = &ops.bus
        && ops.service == "pxsync-projector"
        && let Err(e) = bus.projector_lag().await
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("nats: projector consumer not bound: {e}\n"),
        );
    }
    (StatusCode::OK, "ready\n".to_owned())
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    match render_metrics(
        &ops.store,
        ops.bus
            .as_ref()
            .filter(|_| ops.service == "pxsync-projector"),
    )
    .await
    {
        Ok(text) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            text,
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/plain")],
            format!("# postgres: {e}\n"),
        ),
    }
}

/// One metric family and its samples (label set, value).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(String, String)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    fn sample(&mut self, labels: String, value: impl std::fmt::Display) {
        self.samples.push((labels, value.to_string()));
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {}",
            self.name, self.help, self.name, self.kind
        );
        for (labels, value) in &self.samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{} {value}", self.name);
            } else {
                let _ = writeln!(out, "{}{{{labels}}} {value}", self.name);
            }
        }
    }
}

/// The Prometheus exposition of the namespace's figures.
pub async fn render_metrics(
    store: &Store,
    consumer: Option<&pxsync_bus::Bus>,
) -> anyhow::Result<String> {
    let statuses = store.status(None).await?;
    let mut events = Family::new("pxsync_events_logged", "gauge", "Events in the event log.");
    let mut orders = Family::new(
        "pxsync_orders",
        "gauge",
        "Orders by work-queue state (pending, waiting, parked, done).",
    );
    let mut oldest = Family::new(
        "pxsync_oldest_waiting_seconds",
        "gauge",
        "Age of the oldest order waiting for the emitter.",
    );
    let mut refused = Family::new(
        "pxsync_refused_decreases",
        "gauge",
        "Products whose Planexpo quantity is below what inwink holds.",
    );
    let mut rejected = Family::new(
        "pxsync_rejected_units",
        "gauge",
        "Order units rejected by validation.",
    );
    let mut heals = Family::new(
        "pxsync_heals_total",
        "counter",
        "Heals of hand deletions, repairs of hand edits and adoptions recorded.",
    );
    let mut calls = Family::new(
        "pxsync_inwink_calls_total",
        "counter",
        "Calls to inwink by operation and status.",
    );
    for s in &statuses {
        let ev = format!("event=\"{}\"", s.planexpo_event);
        events.sample(ev.clone(), s.events_logged);
        for (state, count) in &s.queue {
            orders.sample(format!("{ev},state=\"{state}\""), count);
        }
        oldest.sample(ev.clone(), s.oldest_waiting_s.unwrap_or(0.0));
        refused.sample(ev.clone(), s.refused_decreases.len());
        rejected.sample(ev.clone(), s.rejected.len());
        heals.sample(ev, s.heals_total);
    }
    for (event, op, status, count) in store.call_counts().await? {
        let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        calls.sample(
            format!("event=\"{event}\",operation=\"{op}\",status=\"{status}\""),
            count,
        );
    }
    let mut lag = Family::new(
        "pxsync_projector_pending",
        "gauge",
        "Events in the stream not yet delivered to the projector.",
    );
    let mut unacked = Family::new(
        "pxsync_projector_ack_pending",
        "gauge",
        "Events delivered to projectors and not yet acknowledged.",
    );
    if let Some(bus) = consumer
        && let Ok((pending, ack_pending)) = bus.projector_lag().await
    {
        lag.sample(String::new(), pending);
        unacked.sample(String::new(), ack_pending);
    }
    let mut out = String::new();
    for f in [
        events, orders, oldest, refused, rejected, heals, calls, lag, unacked,
    ] {
        f.render(&mut out);
    }
    Ok(out)
}

/// Exports the same figures as `/metrics` over OTLP: a snapshot refreshed every 10 s (or
/// `OTEL_METRIC_EXPORT_INTERVAL` milliseconds), read by observable gauges.
pub fn export_otlp_metrics(
    meter: opentelemetry::metrics::Meter,
    store: Store,
    consumer: Option<pxsync_bus::Bus>,
    shutdown: Shutdown,
) {
    use opentelemetry::KeyValue;
    use std::sync::{Arc, Mutex};
    type Samples = Vec<(&'static str, Vec<KeyValue>, f64)>;
    let snapshot: Arc<Mutex<Samples>> = Arc::default();
    let names = [
        "pxsync_events_logged",
        "pxsync_orders",
        "pxsync_oldest_waiting_seconds",
        "pxsync_refused_decreases",
        "pxsync_rejected_units",
        "pxsync_heals_total",
        "pxsync_inwink_calls",
        "pxsync_projector_pending",
        "pxsync_projector_ack_pending",
    ];
    for name in names {
        let snapshot = snapshot.clone();
        let _gauge = meter
            .f64_observable_gauge(name)
            .with_callback(move |observer| {
                if let Ok(samples) = snapshot.lock() {
                    for (n, labels, value) in samples.iter() {
                        if *n == name {
                            observer.observe(*value, labels);
                        }
                    }
                }
            })
            .build();
    }
    let every = std::env::var("OTEL_METRIC_EXPORT_INTERVAL")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis,
        );
    tokio::spawn(async move {
        let _meter = meter;
        loop {
            let mut samples: Samples = Vec::new();
            if let Ok(statuses) = store.status(None).await {
                for s in &statuses {
                    let ev = KeyValue::new("event", s.planexpo_event.clone());
                    samples.push((
                        "pxsync_events_logged",
                        vec![ev.clone()],
                        s.events_logged as f64,
                    ));
                    for (state, count) in &s.queue {
                        samples.push((
                            "pxsync_orders",
                            vec![ev.clone(), KeyValue::new("state", state.clone())],
                            *count as f64,
                        ));
                    }
                    samples.push((
                        "pxsync_oldest_waiting_seconds",
                        vec![ev.clone()],
                        s.oldest_waiting_s.unwrap_or(0.0),
                    ));
                    samples.push((
                        "pxsync_refused_decreases",
                        vec![ev.clone()],
                        s.refused_decreases.len() as f64,
                    ));
                    samples.push((
                        "pxsync_rejected_units",
                        vec![ev.clone()],
                        s.rejected.len() as f64,
                    ));
                    samples.push(("pxsync_heals_total", vec![ev], s.heals_total as f64));
                }
            }
            if let Ok(calls) = store.call_counts().await {
                for (event, op, status, count) in calls {
                    let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
                    let labels = vec![
                        KeyValue::new("event", event),
                        KeyValue::new("operation", op),
                        KeyValue::new("status", status),
                    ];
                    samples.push(("pxsync_inwink_calls", labels, count as f64));
                }
            }
            if let Some(bus) = &consumer
                && let Ok((pending, ack_pending)) = bus.projector_lag().await
            {
                samples.push(("pxsync_projector_pending", Vec::new(), pending as f64));
                samples.push((
                    "pxsync_projector_ack_pending",
                    Vec::new(),
                    ack_pending as f64,
                ));
            }
            if let Ok(mut s) = snapshot.lock() {
                *s = samples;
            }
            if !shutdown.sleep(every).await {
                break;
            }
        }
    });
}
