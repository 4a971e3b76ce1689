//! The emitter service: desired state → inwink, never lowering a quantity.
use clap::Parser;
use pxsync::config::{DatabaseArgs, EmitterArgs, InwinkArgs};

#[derive(Parser)]
#[command(
    name = "pxsync-emitter",
    version,
    about = "Applies the differences between the desired state and inwink, never lowering a product quantity."
)]
struct Args {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    inwink: InwinkArgs,
    #[command(flatten)]
    emitter: EmitterArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    pxsync::telemetry::init("pxsync-emitter");
    let shutdown = pxsync::Shutdown::on_signals();
    let Some(store) = pxsync::cli::store(&args.db, &shutdown).await? else {
        return Ok(());
    };
    let mut clients = pxsync::emitter::Clients::new();
    clients.insert(args.inwink.event.event_id.clone(), args.inwink.client()?);
    let settings = pxsync::emitter::EmitterSettings::from_args(&args.emitter);
    let inspector = pxsync::inspector::InspectorSettings::from_args(&args.emitter);
    let inspect = tokio::spawn(pxsync::inspector::run(
        store.clone(),
        clients.clone(),
        inspector,
        shutdown.clone(),
    ));
    pxsync::emitter::run(store, clients, settings, shutdown).await?;
    inspect.await?
}
