//! The emitter service: desired state → inwink, never lowering a quantity.
use clap::Parser;
use pxsync::config::{DatabaseArgs, EmitterArgs, InwinkArgs, OpsArgs, SalonsFileArgs};

#[derive(Parser)]
#[command(
    name = "pxsync-emitter",
    version,
    about = "Applies the differences between the desired state and inwink, never lowering a product quantity.",
    after_help = pxsync::config::SALONS_FILE_HELP
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

/// The same service configured by a salons file.
#[derive(Parser)]
#[command(name = "pxsync-emitter", version)]
struct FileArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    salons: SalonsFileArgs,
    #[command(flatten)]
    emitter: EmitterArgs,
    #[command(flatten)]
    ops: OpsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Per inwink event: its client and its optional rate cap (calls per second).
    let mut limits = std::collections::BTreeMap::new();
    let (db, emitter, ops, mut clients, _telemetry) = if pxsync::config::salons_file_configured() {
        let args = FileArgs::parse();
        let telemetry = pxsync::telemetry::init("pxsync-emitter");
        let config = pxsync::salons::SalonsConfig::load(&args.salons.config)?;
        let mut clients = pxsync::emitter::Clients::new();
        for salon in &config.salons {
            clients.insert(salon.inwink_event_id.clone(), salon.inwink_client()?);
            if let Some(r) = salon.inwink_rate_limit {
                limits.insert(salon.inwink_event_id.clone(), r);
            }
        }
        (args.db, args.emitter, args.ops, clients, telemetry)
    } else {
        let args = Args::parse();
        let telemetry = pxsync::telemetry::init("pxsync-emitter");
        let mut clients = pxsync::emitter::Clients::new();
        clients.insert(args.inwink.event.event_id.clone(), args.inwink.client()?);
        if let Some(r) = args.inwink.rate_limit {
            limits.insert(args.inwink.event.event_id.clone(), r);
        }
        (args.db, args.emitter, args.ops, clients, telemetry)
    };
    let shutdown = pxsync::Shutdown::on_signals();
    let Some(store) = pxsync::cli::store(&db, &shutdown).await? else {
        return Ok(());
    };
    pxsync::budget::share(&mut clients, &store, &limits);
    let settings = pxsync::emitter::EmitterSettings::from_args(&emitter);
    let inspector = pxsync::inspector::InspectorSettings::from_args(&emitter);
    let inspect = tokio::spawn(pxsync::inspector::run(
        store.clone(),
        clients.clone(),
        inspector,
        shutdown.clone(),
    ));
    let work = pxsync::emitter::run(store.clone(), clients, settings, shutdown.clone());
    let result = pxsync::supervise("pxsync-emitter", &ops, store, None, work, shutdown).await;
    inspect.abort();
    result
}
