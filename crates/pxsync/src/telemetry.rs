//! One telemetry setup for every binary:
//! - logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), JSON when
//!   `PXSYNC_LOG_FORMAT=json`; the dependencies that log query parameters or bodies
//!   (`tokio_postgres`, `hyper`, `reqwest`, `async_nats`, `h2`, `tonic`) are capped at `warn`, so
//!   even `RUST_LOG=trace` cannot put personal data in the logs;
//! - traces: OpenTelemetry through the OTLP exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, over `OTEL_EXPORTER_OTLP_PROTOCOL`
//!   `http/protobuf` (the default) or `grpc`; `OTEL_SERVICE_NAME` (default: the binary's name)
//!   and `OTEL_TRACES_SAMPLER` as the standard says. No endpoint: no exporter, logs only.
//!   `pxsync run` reports each service under its own name (one tracer provider per service,
//!   each fed the spans of its own modules).
//!
//! Span attributes carry ids, counts and statuses, never personal values.

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes the exporters when dropped (at the end of `main`, after the shutdown).
#[must_use = "dropping the guard flushes and stops the trace exporters"]
pub struct TelemetryGuard {
    providers: Vec<SdkTracerProvider>,
    meters: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
}

static METRICS_EXPORTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// The meter of this process, when OTLP export is configured.
pub fn meter() -> Option<opentelemetry::metrics::Meter> {
    METRICS_EXPORTED
        .get()
        .map(|()| opentelemetry::global::meter("pxsync"))
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        for p in &self.providers {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
        if let Some(m) = &self.meters {
            let _ = m.force_flush();
            let _ = m.shutdown();
        }
    }
}

fn meter_provider(service: &str) -> anyhow::Result<opentelemetry_sdk::metrics::SdkMeterProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let protocol =
        std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_else(|_| "http/protobuf".into());
    let exporter = match protocol.as_str() {
        "grpc" => opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()?,
        _ => opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()?,
    };
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| service.to_owned());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(name)
        .build();
    Ok(opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The modules whose spans belong to each service of `pxsync run`.
const SERVICE_TARGETS: &[(&str, &[&str])] = &[
    (
        "pxsync-ingestor",
        &["pxsync::ingestor", "pxsync::webhook", "pxsync_planexpo"],
    ),
    (
        "pxsync-projector",
        &["pxsync::projector", "pxsync_store", "pxsync_bus"],
    ),
    (
        "pxsync-emitter",
        &["pxsync::emitter", "pxsync::inspector", "pxsync_inwink"],
    ),
];

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

fn provider(service: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let protocol =
        std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_else(|_| "http/protobuf".into());
    let exporter = match protocol.as_str() {
        "grpc" => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?,
        "http/protobuf" => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()?,
        other => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not supported (http/protobuf or grpc)"
        ),
    };
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| service.to_owned());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(name)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

fn log_filter() -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for noisy in [
        "tokio_postgres",
        "hyper",
        "hyper_util",
        "reqwest",
        "async_nats",
        "h2",
        "tonic",
        "opentelemetry",
    ] {
        if let Ok(d) = format!("{noisy}=warn").parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Installs logging and, when configured, tracing for `service` (e.g. `pxsync-emitter`). With
/// `split`, the process hosts the three services (`pxsync run`): one tracer per service.
pub fn init_with(service: &str, split: bool) -> TelemetryGuard {
    // One TLS crypto provider for the whole process (reqwest, the OTLP exporter, NATS): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let json = std::env::var("PXSYNC_LOG_FORMAT").is_ok_and(|v| v == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    let fmt = if json {
        fmt.json().with_filter(log_filter()).boxed()
    } else {
        fmt.with_filter(log_filter()).boxed()
    };
    let mut layers: Vec<Box<dyn Layer<_> + Send + Sync>> = vec![fmt];
    let mut providers = Vec::new();
    let mut problem = None;
    if otlp_configured() {
        let services: Vec<(&str, Option<&[&str]>)> = if split {
            SERVICE_TARGETS
                .iter()
                .map(|(s, t)| (*s, Some(*t)))
                .collect()
        } else {
            vec![(service, None)]
        };
        for (name, targets) in services {
            match provider(name) {
                Ok(p) => {
                    let tracer = p.tracer("pxsync");
                    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
                    let layer = match targets {
                        Some(ts) => {
                            let t = ts.iter().fold(Targets::new(), |t, target| {
                                t.with_target(*target, LevelFilter::TRACE)
                            });
                            layer.with_filter(t).boxed()
                        }
                        None => layer
                            .with_filter(
                                Targets::new()
                                    .with_default(LevelFilter::TRACE)
                                    .with_target("h2", LevelFilter::OFF)
                                    .with_target("hyper", LevelFilter::OFF)
                                    .with_target("tonic", LevelFilter::OFF)
                                    .with_target("tokio_postgres", LevelFilter::OFF),
                            )
                            .boxed(),
                    };
                    layers.push(layer);
                    providers.push(p);
                }
                Err(e) => problem = Some(format!("{e:#}")),
            }
        }
    }
    let meters = if otlp_configured() {
        match meter_provider(service) {
            Ok(m) => {
                opentelemetry::global::set_meter_provider(m.clone());
                let _ = METRICS_EXPORTED.set(());
                Some(m)
            }
            Err(e) => {
                problem = Some(format!("{e:#}"));
                None
            }
        }
    } else {
        None
    };
    let _ = tracing_subscriber::registry().with(layers).try_init();
    if let Some(p) = problem {
        tracing::warn!(error = p, "OTLP export is off");
    }
    TelemetryGuard { providers, meters }
}

/// Installs logging and tracing for one service.
pub fn init(service: &str) -> TelemetryGuard {
    init_with(service, false)
}

/// The W3C trace context of the current span, when it is being traced.
pub fn current_traceparent() -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Parses a W3C `traceparent` into a remote span context.
pub fn parse_traceparent(tp: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let mut parts = tp.trim().split('-');
    let (Some("00"), Some(trace), Some(span), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let sc = SpanContext::new(
        trace,
        span,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// Makes `span` a child of the remote context `traceparent` (before the span is entered).
pub fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if let Some(sc) = traceparent.and_then(parse_traceparent) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
    }
}

/// Links `span` to the remote context `traceparent` (the events that caused a reconcile).
pub fn add_link(span: &tracing::Span, traceparent: Option<&str>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if let Some(sc) = traceparent.and_then(parse_traceparent) {
        span.add_link(sc);
    }
}

/// The trace id of the current span, when traced (kept with each recorded inwink call).
pub fn current_trace_id() -> Option<String> {
    current_traceparent().and_then(|tp| tp.split('-').nth(1).map(str::to_owned))
}
