//! The projector service: JetStream → event log and desired state in Postgres.
use clap::Parser;
use pxsync::config::{DatabaseArgs, NatsArgs, OpsArgs, ProjectorArgs};

#[derive(Parser)]
#[command(
    name = "pxsync-projector",
    version,
    about = "Folds order events into the durable event log and the desired inwink state."
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
