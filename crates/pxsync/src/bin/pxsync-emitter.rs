//! The emitter service: desired state → inwink, never lowering a quantity.
use clap::Parser;
use pxsync::config::{DatabaseArgs, EmitterArgs, InwinkArgs, OpsArgs};

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
    #[command(flatten)]
    ops: OpsArgs,
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
    let work = pxsync::emitter::run(store.clone(), clients, settings, shutdown.clone());
    let result = pxsync::supervise("pxsync-emitter", &args.ops, store, None, work, shutdown).await;
    inspect.abort();
    result
}
