//! Configuration from the environment, one group of settings per concern. Each binary and
//! subcommand flattens only the groups it needs, so `--help` lists exactly its settings and a
//! missing or malformed one stops it at start with a message naming the variable.

use clap::Args;
use pxsync_core::namespace::Namespace;
use std::time::Duration;

fn namespace(s: &str) -> Result<Namespace, String> {
    Namespace::new(s).map_err(|e| e.to_string())
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("not a duration such as 1s or 500ms: {e}"))
}

/// Postgres and the namespace.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Postgres URL, e.g. postgres://postgres@127.0.0.1:5432/postgres
    #[arg(
        long = "database-url",
        env = "PXSYNC_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Isolates schema, streams, subjects, consumers and lock keys.
    #[arg(id = "namespace", long = "namespace", env = "PXSYNC_NAMESPACE", default_value = "default", value_parser = namespace)]
    pub namespace: Namespace,
    /// Maximum Postgres connections of this process.
    #[arg(
        long = "database-pool-size",
        env = "PXSYNC_DATABASE_POOL_SIZE",
        default_value_t = 10
    )]
    pub pool_size: usize,
}

/// The operations endpoint and shutdown.
#[derive(Debug, Clone, Args)]
pub struct OpsArgs {
    /// Listen address of /healthz, /readyz and /metrics, e.g. 0.0.0.0:9090. Unset: off.
    #[arg(id = "http_addr", long = "http-addr", env = "PXSYNC_HTTP_ADDR")]
    pub http_addr: Option<std::net::SocketAddr>,
    /// On SIGTERM, how long work in flight may take to finish before the process exits.
    #[arg(id = "shutdown_grace", long = "shutdown-grace", env = "PXSYNC_SHUTDOWN_GRACE", default_value = "20s", value_parser = duration)]
    pub shutdown_grace: Duration,
}

/// NATS JetStream.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS URL, e.g. nats://127.0.0.1:4222
    #[arg(id = "nats_url", long = "nats-url", env = "PXSYNC_NATS_URL")]
    pub nats_url: String,
    /// How long events stay in the stream (the event log keeps them for good).
    #[arg(id = "stream_max_age", long = "stream-max-age", env = "PXSYNC_STREAM_MAX_AGE", default_value = "7days", value_parser = duration)]
    pub stream_max_age: Duration,
}

impl NatsArgs {
    pub fn stream_settings(&self) -> pxsync_bus::StreamSettings {
        pxsync_bus::StreamSettings {
            max_age: self.stream_max_age,
            ..Default::default()
        }
    }
}

/// The Planexpo source.
#[derive(Debug, Clone, Args)]
pub struct PlanexpoArgs {
    /// Planexpo base URL (scheme, host, optional path prefix).
    #[arg(
        id = "planexpo_base_url",
        long = "planexpo-base-url",
        env = "PXSYNC_PLANEXPO_BASE_URL"
    )]
    pub base_url: String,
    #[arg(
        long = "planexpo-api-key",
        env = "PXSYNC_PLANEXPO_API_KEY",
        hide_env_values = true
    )]
    pub api_key: String,
    /// The Planexpo event slug.
    #[arg(
        id = "planexpo_event",
        long = "planexpo-event",
        env = "PXSYNC_PLANEXPO_EVENT"
    )]
    pub event: String,
    /// How often the order feed is polled (and, in an enabled salon, the catalogue checked).
    #[arg(id = "planexpo_poll_interval", long = "planexpo-poll-interval", env = "PXSYNC_PLANEXPO_POLL_INTERVAL", default_value = "5s", value_parser = duration)]
    pub poll_interval: Duration,
    /// How often the whole feed is read again from the start.
    #[arg(id = "planexpo_rescan_interval", long = "planexpo-rescan-interval", env = "PXSYNC_PLANEXPO_RESCAN_INTERVAL", default_value = "24h", value_parser = duration)]
    pub rescan_interval: Duration,
    /// Orders per page of the feed (Planexpo accepts 1 to 500).
    #[arg(id = "planexpo_page_size", long = "planexpo-page-size", env = "PXSYNC_PLANEXPO_PAGE_SIZE", default_value_t = crate::ingestor::DEFAULT_PAGE_SIZE, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub page_size: u16,
}

/// The webhook receiver (off when no address is set).
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Listen address of POST /webhooks/planexpo, e.g. 0.0.0.0:8080. Unset: no receiver.
    #[arg(
        id = "webhook_addr",
        long = "webhook-addr",
        env = "PXSYNC_WEBHOOK_ADDR",
        requires = "webhook_secret"
    )]
    pub addr: Option<std::net::SocketAddr>,
    /// The webhook signing secret (required with PXSYNC_WEBHOOK_ADDR).
    #[arg(
        id = "webhook_secret",
        long = "webhook-secret",
        env = "PXSYNC_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
}

impl PlanexpoArgs {
    pub fn client(&self) -> anyhow::Result<pxsync_planexpo::PlanexpoClient> {
        Ok(pxsync_planexpo::PlanexpoClient::new(
            pxsync_planexpo::PlanexpoConfig {
                base_url: self.base_url.clone(),
                api_key: pxsync_planexpo::Secret::new(self.api_key.clone()),
                event: self.event.clone(),
                timeout: Duration::from_secs(15),
            },
        )?)
    }

    pub fn salon(&self, inwink_event_id: &str) -> anyhow::Result<crate::ingestor::Salon> {
        Ok(crate::ingestor::Salon {
            planexpo: self.client()?,
            inwink_event_id: inwink_event_id.to_owned(),
            poll_interval: self.poll_interval,
            rescan_interval: self.rescan_interval,
            page_size: self.page_size,
        })
    }
}

/// The inwink event id alone (what the ingestor and `mask import` need).
#[derive(Debug, Clone, Args)]
pub struct InwinkEventArgs {
    /// The inwink event id (a GUID).
    #[arg(
        id = "inwink_event_id",
        long = "inwink-event-id",
        env = "PXSYNC_INWINK_EVENT_ID"
    )]
    pub event_id: String,
}

/// The inwink target.
#[derive(Debug, Clone, Args)]
pub struct InwinkArgs {
    /// inwink API base URL, e.g. https://api.inwink.com
    #[arg(
        id = "inwink_base_url",
        long = "inwink-base-url",
        env = "PXSYNC_INWINK_BASE_URL"
    )]
    pub base_url: String,
    /// OAuth2 token endpoint.
    #[arg(
        id = "inwink_token_url",
        long = "inwink-token-url",
        env = "PXSYNC_INWINK_TOKEN_URL"
    )]
    pub token_url: String,
    #[arg(
        id = "inwink_client_id",
        long = "inwink-client-id",
        env = "PXSYNC_INWINK_CLIENT_ID"
    )]
    pub client_id: String,
    #[arg(
        long = "inwink-client-secret",
        env = "PXSYNC_INWINK_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: String,
    #[arg(
        id = "inwink_scope",
        long = "inwink-scope",
        env = "PXSYNC_INWINK_SCOPE"
    )]
    pub scope: Option<String>,
    /// A cap on calls to this inwink event per second, shared by every emitter process of the
    /// namespace (through Postgres). Unset: no cap, the emitter adapts to inwink's 429s.
    #[arg(id = "inwink_rate_limit", long = "inwink-rate-limit", env = "PXSYNC_INWINK_RATE_LIMIT", value_parser = crate::budget::parse_rate)]
    pub rate_limit: Option<f64>,
    #[command(flatten)]
    pub event: InwinkEventArgs,
}

impl InwinkArgs {
    fn config(&self) -> pxsync_inwink::InwinkConfig {
        pxsync_inwink::InwinkConfig {
            base_url: self.base_url.clone(),
            token_url: self.token_url.clone(),
            client_id: self.client_id.clone(),
            client_secret: pxsync_inwink::Secret::new(self.client_secret.clone()),
            scope: self.scope.clone(),
            event_id: self.event.event_id.clone(),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn client(&self) -> anyhow::Result<pxsync_inwink::InwinkClient> {
        Ok(pxsync_inwink::InwinkClient::new(self.config())?)
    }

    pub fn reader(&self) -> anyhow::Result<pxsync_inwink::InwinkReader> {
        Ok(pxsync_inwink::InwinkReader::new(self.config())?)
    }
}

/// Emitter tuning.
#[derive(Debug, Clone, Args)]
pub struct EmitterArgs {
    /// Orders reconciled at once by this process.
    #[arg(
        long = "emitter-concurrency",
        env = "PXSYNC_EMITTER_CONCURRENCY",
        default_value_t = 4
    )]
    pub concurrency: usize,
    /// How often the work queue is swept for due orders.
    #[arg(id = "emitter_poll_interval", long = "emitter-poll-interval", env = "PXSYNC_EMITTER_POLL_INTERVAL", default_value = "200ms", value_parser = duration)]
    pub poll_interval: Duration,
    /// How long a claim is held before another process may take the order.
    #[arg(id = "emitter_lease", long = "emitter-lease", env = "PXSYNC_EMITTER_LEASE", default_value = "15s", value_parser = duration)]
    pub lease: Duration,
    /// The longest wait before an order is tried again after failed attempts (the wait doubles
    /// from 0.5 s with each failure, with jitter; at least 1 s). inwink's own Retry-After is
    /// always honoured.
    #[arg(id = "emitter_backoff_max", long = "emitter-backoff-max", env = "PXSYNC_EMITTER_BACKOFF_MAX", default_value = "30s", value_parser = duration)]
    pub backoff_max: Duration,
    /// How often inwink is read for partners and participants deleted by hand, and mapped
    /// products renamed or gone ("0s": never).
    #[arg(id = "existence_check_interval", long = "existence-check-interval", env = "PXSYNC_EXISTENCE_CHECK_INTERVAL", default_value = "60s", value_parser = duration)]
    pub existence_check_interval: Option<Duration>,
    /// How often synchronised fields edited by hand on inwink are restored (unset: never; they
    /// are overwritten at the order's next update anyway).
    #[arg(id = "drift_sweep_interval", long = "drift-sweep-interval", env = "PXSYNC_DRIFT_SWEEP_INTERVAL", value_parser = duration)]
    pub drift_sweep_interval: Option<Duration>,
}

/// The projector's settings.
#[derive(Debug, Clone, Args)]
pub struct ProjectorArgs {
    /// Messages per fetched batch, and so per Postgres transaction (at most 1,000: each order of
    /// a batch holds an advisory lock until the commit).
    #[arg(id = "projector_batch", long = "projector-batch", env = "PXSYNC_PROJECTOR_BATCH", default_value_t = crate::projector::DEFAULT_BATCH, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=1000), usize::from))]
    pub batch: usize,
    /// Batches projected at once, each in its own transaction and connection.
    #[arg(id = "projector_transactions", long = "projector-transactions", env = "PXSYNC_PROJECTOR_TRANSACTIONS", default_value_t = crate::projector::DEFAULT_TRANSACTIONS, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u8).range(1..=8), usize::from))]
    pub transactions: usize,
    /// Test only: a fault hook that makes the process exit at one point of its first batch
    /// (`projector:after-fetch`, `projector:after-commit`). Inert unless set; never set it in a
    /// deployment.
    #[arg(id = "fault", long = "fault", env = "PXSYNC_FAULT", hide = true)]
    pub fault: Option<crate::projector::Fault>,
}

impl ProjectorArgs {
    pub fn settings(&self) -> crate::projector::ProjectorSettings {
        crate::projector::ProjectorSettings {
            batch: self.batch,
            transactions: self.transactions,
            fault: self.fault,
            ..Default::default()
        }
    }
}

/// Several salons from a file (`PXSYNC_CONFIG`) instead of the single-salon PXSYNC_PLANEXPO_* /
/// PXSYNC_INWINK_* variables.
#[derive(Debug, Clone, Args)]
pub struct SalonsFileArgs {
    /// The salons file (JSON; see the README): each salon's Planexpo and inwink settings, with
    /// secrets as references to environment variables or files.
    #[arg(id = "config", long = "config", env = "PXSYNC_CONFIG")]
    pub config: std::path::PathBuf,
}

/// Set when the process is configured by a salons file.
pub fn salons_file_configured() -> bool {
    std::env::var_os("PXSYNC_CONFIG").is_some()
        || std::env::args().any(|a| a == "--config" || a.starts_with("--config="))
}

pub const SALONS_FILE_HELP: &str = "Several salons: set PXSYNC_CONFIG to a salons file instead of the PXSYNC_PLANEXPO_* and PXSYNC_INWINK_* variables.";

/// The single salon of the environment as the mask's prerequisites sheet sees it: its ids, and
/// for each secret the variable it is read from (when set), never the secret. Read at the time
/// of the call, without requiring anything to be set.
pub fn environment_deployment() -> pxsync_mask::Deployment {
    use pxsync_mask::{PrerequisiteKey as K, SecretSource, Setting, SettingValue};
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut settings = std::collections::BTreeMap::new();
    for key in [
        K::PlanexpoBaseUrl,
        K::PlanexpoEventSlug,
        K::InwinkEventId,
        K::InwinkClientId,
    ] {
        if let Some(value) = set(key.env_var()) {
            settings.insert(
                key,
                Setting {
                    name: key.env_var().to_owned(),
                    value: SettingValue::Plain(value),
                },
            );
        }
    }
    for key in [
        K::PlanexpoApiKeyRef,
        K::InwinkClientSecretRef,
        K::WebhookSecretRef,
    ] {
        let source = match set(key.env_var()) {
            Some(_) => SecretSource::Env(key.env_var().to_owned()),
            None => SecretSource::Missing,
        };
        settings.insert(
            key,
            Setting {
                name: key.env_var().to_owned(),
                value: SettingValue::Secret(source),
            },
        );
    }
    pxsync_mask::Deployment {
        source: "the environment".into(),
        settings,
    }
}

/// The salons file of `PXSYNC_CONFIG`, when it is set.
pub fn salons_file_path() -> Option<std::path::PathBuf> {
    std::env::var_os("PXSYNC_CONFIG").map(std::path::PathBuf::from)
}
