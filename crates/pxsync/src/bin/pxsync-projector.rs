//! The projector service: JetStream → event log and order states in Postgres.
use clap::Parser;
use pxsync::config::{DatabaseArgs, NatsArgs, OpsArgs, ProjectorArgs};

#[derive(Parser)]
#[command(
    name = "pxsync-projector",
    version,
    about = "Appends order events to the durable event log and folds them into each order's state."
)]
struct Args {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    ops: OpsArgs,
    #[command(flatten)]
    projector: ProjectorArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = pxsync::telemetry::init("pxsync-projector");
    let shutdown = pxsync::Shutdown::on_signals();
    let Some(store) = pxsync::cli::store(&args.db, &shutdown).await? else {
        return Ok(());
    };
    let Some(bus) = pxsync::cli::bus(&args.nats, &args.db, &shutdown).await? else {
        return Ok(());
    };
    let settings = args.projector.settings();
    let work = pxsync::projector::run(
        store.clone(),
        bus.clone(),
        args.nats.stream_settings(),
        settings,
        shutdown.clone(),
    );
    pxsync::supervise(
        "pxsync-projector",
        &args.ops,
        store,
        Some(bus.clone()),
        work,
        shutdown,
    )
    .await
}
