//! The ingestor service: Planexpo → order events on JetStream.
use clap::Parser;
use pxsync::config::{
    DatabaseArgs, InwinkEventArgs, NatsArgs, OpsArgs, PlanexpoArgs, SalonsFileArgs, WebhookArgs,
};

#[derive(Parser)]
#[command(
    name = "pxsync-ingestor",
    version,
    about = "Reads Planexpo and publishes one event per observed order revision to NATS JetStream.",
    after_help = pxsync::config::SALONS_FILE_HELP
)]
struct Args {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    planexpo: PlanexpoArgs,
    #[command(flatten)]
    webhook: WebhookArgs,
    #[command(flatten)]
    inwink: InwinkEventArgs,
    #[command(flatten)]
    ops: OpsArgs,
}

/// The same service configured by a salons file.
#[derive(Parser)]
#[command(name = "pxsync-ingestor", version)]
struct FileArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    salons: SalonsFileArgs,
    /// Listen address of POST /webhooks/planexpo (each salon's secret is in the salons file).
    #[arg(long = "webhook-addr", env = "PXSYNC_WEBHOOK_ADDR")]
    webhook_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    ops: OpsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if pxsync::config::salons_file_configured() {
        return from_file(FileArgs::parse()).await;
    }
    let args = Args::parse();
    let _telemetry = pxsync::telemetry::init("pxsync-ingestor");
    let shutdown = pxsync::Shutdown::on_signals();
    let Some(store) = pxsync::cli::store(&args.db, &shutdown).await? else {
        return Ok(());
    };
    let Some(bus) = pxsync::cli::bus(&args.nats, &args.db, &shutdown).await? else {
        return Ok(());
    };
    let stream_settings = args.nats.stream_settings();
    pxsync::retry_until_ready("stream", &shutdown, || bus.ensure_stream(&stream_settings)).await;
    let salon = args.planexpo.salon(&args.inwink.event_id)?;
    let (work_store, work_bus, webhook, work_shutdown) = (
        store.clone(),
        bus.clone(),
        args.webhook.clone(),
        shutdown.clone(),
    );
    let work = async move {
        pxsync::ingestor::run_with_webhook(work_store, work_bus, salon, &webhook, work_shutdown)
            .await
    };
    pxsync::supervise(
        "pxsync-ingestor",
        &args.ops,
        store,
        Some(bus.clone()),
        work,
        shutdown,
    )
    .await
}

async fn from_file(args: FileArgs) -> anyhow::Result<()> {
    let _telemetry = pxsync::telemetry::init("pxsync-ingestor");
    let config = pxsync::salons::SalonsConfig::load(&args.salons.config)?;
    let mut salons = Vec::new();
    for salon in &config.salons {
        salons.push((salon.ingestor_salon()?, salon.webhook_secret()?));
    }
    let shutdown = pxsync::Shutdown::on_signals();
    let Some(store) = pxsync::cli::store(&args.db, &shutdown).await? else {
        return Ok(());
    };
    let Some(bus) = pxsync::cli::bus(&args.nats, &args.db, &shutdown).await? else {
        return Ok(());
    };
    let stream_settings = args.nats.stream_settings();
    pxsync::retry_until_ready("stream", &shutdown, || bus.ensure_stream(&stream_settings)).await;
    let (work_store, work_bus, work_shutdown) = (store.clone(), bus.clone(), shutdown.clone());
    let work = pxsync::ingestor::run_salons(
        work_store,
        work_bus,
        salons,
        args.webhook_addr,
        work_shutdown,
    );
    pxsync::supervise(
        "pxsync-ingestor",
        &args.ops,
        store,
        Some(bus.clone()),
        work,
        shutdown,
    )
    .await
}
