//! Shared start-up of the binaries: connect to Postgres and NATS (waiting for them), migrate,
//! and the operator subcommands of `pxsync`.

use crate::config::{
    DatabaseArgs, EmitterArgs, InwinkArgs, InwinkEventArgs, NatsArgs, OpsArgs, PlanexpoArgs,
    WebhookArgs,
};
use crate::{Shutdown, emitter, ingestor, projector, retry_until_ready};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use pxsync_bus::Bus;
use pxsync_store::Store;
use std::path::PathBuf;

/// Connects to Postgres and migrates the namespace, waiting for the server if it is not up.
pub async fn store(db: &DatabaseArgs, shutdown: &Shutdown) -> anyhow::Result<Option<Store>> {
    let store = Store::connect(&db.database_url, &db.namespace, db.pool_size)?;
    Ok(retry_until_ready("postgres", shutdown, || store.migrate())
        .await
        .map(|()| store))
}

/// Connects to NATS, waiting for the server if it is not up.
pub async fn bus(
    nats: &NatsArgs,
    db: &DatabaseArgs,
    shutdown: &Shutdown,
) -> anyhow::Result<Option<Bus>> {
    Ok(retry_until_ready("nats", shutdown, || {
        Bus::connect(&nats.nats_url, &db.namespace)
    })
    .await)
}

/// A one-shot command's store: fails fast instead of waiting.
async fn store_now(db: &DatabaseArgs) -> anyhow::Result<Store> {
    let store = Store::connect(&db.database_url, &db.namespace, 2)?;
    store
        .migrate()
        .await
        .context("connect to Postgres and migrate")?;
    Ok(store)
}

#[derive(Debug, Parser)]
#[command(
    name = "pxsync",
    version,
    about = "Keeps inwink in line with Planexpo. Every subcommand reads its settings from the environment and never prompts."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the ingestor, the projector and the emitter in one process until SIGTERM or Ctrl-C.
    Run(Box<RunArgs>),
    /// Creates or upgrades the namespace's schema.
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The synchronisation mask.
    #[command(subcommand)]
    Mask(MaskCommand),
    /// Starts writing to inwink for a salon (and plans the whole salon).
    #[command(
        after_help = "With the PXSYNC_PLANEXPO_* and PXSYNC_INWINK_* settings in the environment, enable first runs the preflight: technical failures block, organisational ones warn (--strict: block too)."
    )]
    Enable {
        #[arg(long)]
        event: String,
        /// Block on organisational preflight warnings too (and when the preflight cannot run).
        #[arg(long)]
        strict: bool,
        /// Orders that are tests, not counted among the real validated orders.
        #[arg(long, value_delimiter = ',')]
        test_orders: Vec<String>,
        /// A pilot: only these orders (comma-separated) are written; `enable` without it then
        /// opens the whole salon.
        #[arg(long, value_delimiter = ',')]
        orders: Option<Vec<String>>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Stops writing to inwink for a salon; when it returns, no process writes any more.
    Disable {
        #[arg(long)]
        event: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Per salon: the switch, orders by state, parked orders, rejected units, refused decreases, unmapped products, lag.
    Status {
        #[arg(long)]
        event: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Deletes the namespace's schema and stream (everything pxsync stored). Needs --yes.
    Reset {
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Reads a salon's whole Planexpo feed again now (heals anything missed; an unchanged salon publishes nothing).
    Rescan {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        nats: NatsArgs,
        #[command(flatten)]
        planexpo: PlanexpoArgs,
        #[command(flatten)]
        inwink: InwinkEventArgs,
    },
    /// Shows what the emitter would write to inwink for each order, without writing (read-only inwink client).
    DryRun {
        #[arg(long)]
        event: String,
        #[arg(long)]
        order: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        inwink: InwinkArgs,
    },
    /// Undecodable events: list them, retry one (decoded again, projected), or skip it; the
    /// order's later events wait until then.
    #[command(subcommand)]
    DeadLetter(DeadLetterCommand),
    /// Audits: the story of an order, or the verification of the event log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Rebuilds the fold state of every order from the event log alone into a shadow schema,
    /// compares it and its desired state with the live ones, and prints the orders that differ
    /// (none, without --until). Never writes to inwink: it has no inwink client.
    Replay {
        /// Only this Planexpo event (salon).
        #[arg(long)]
        event: Option<String>,
        /// Stop at this point: an RFC 3339 time, or an event-log position (a number).
        #[arg(long, value_parser = parse_until)]
        until: Option<pxsync_store::Until>,
        /// The shadow schema to write (created; its order_state replaced).
        #[arg(long)]
        into: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Erases a person from the event log: deletes their key, so their personal fields read as
    /// "[erased]" in replays and audits, and removes them from the ingestor's memory. Does not
    /// change inwink (see docs/operating.md).
    #[command(group = clap::ArgGroup::new("person").required(true))]
    Erase {
        /// The person's e-mail (never printed or logged). `-` reads it from standard input, like
        /// --email-stdin; an address on the command line shows in `ps` and in shell history.
        #[arg(long, group = "person")]
        email: Option<String>,
        /// Read the e-mail from the first line of standard input.
        #[arg(long, group = "person")]
        email_stdin: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The checklist before going live, each failure with its fix (reads both APIs, writes nothing to inwink).
    Preflight {
        #[arg(long)]
        event: String,
        /// Orders that are tests, not counted among the real validated orders.
        #[arg(long, value_delimiter = ',')]
        test_orders: Vec<String>,
        #[arg(long)]
        strict: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        planexpo: PlanexpoArgs,
        #[command(flatten)]
        inwink: InwinkArgs,
    },
    /// Adopts an inwink partner created by hand for an order (see the likely matches in `pxsync status`).
    Link {
        #[arg(long)]
        event: String,
        #[arg(long)]
        order: String,
        #[arg(long)]
        partner: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Wakes a parked or waiting order now.
    Retry {
        order: String,
        #[arg(long)]
        event: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub planexpo: PlanexpoArgs,
    #[command(flatten)]
    pub webhook: WebhookArgs,
    #[command(flatten)]
    pub inwink: InwinkArgs,
    #[command(flatten)]
    pub emitter: EmitterArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{s:?} is not an RFC 3339 time (e.g. 2026-03-02T10:00:00Z)"))
}

/// `pxsync audit order --as-of` for people.
fn render_as_of(order: &str, r: &pxsync_store::AuditAsOf) -> String {
    use std::fmt::Write;
    let at = pxsync_core::Timestamp::from_datetime(r.as_of);
    let mut out = String::new();
    for e in &r.entries {
        let trace = e
            .trace_id
            .as_ref()
            .map(|t| format!("  [trace {t}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}  {}{trace}",
            pxsync_core::Timestamp::from_datetime(e.at),
            e.summary
        );
    }
    let mask = r
        .mask_version
        .map_or("no mask".to_owned(), |v| format!("mask v{v}"));
    let _ = writeln!(
        out,
        "\nOrder {order} as of {at} (revision {}, {mask}):",
        r.revision
    );
    match &r.desired {
        None => {
            let _ = writeln!(out, "  desired: nothing (no usable revision by then)");
        }
        Some(d) => {
            let products: Vec<String> = d
                .products
                .iter()
                .map(|(p, q)| format!("{p} × {q}"))
                .collect();
            let _ = writeln!(
                out,
                "  desired: partner {}{}, participant {}, products: {}",
                if !d.partner {
                    "held (rejected)"
                } else if d.publish {
                    "Published"
                } else {
                    "Draft"
                },
                d.parent_order_id
                    .as_ref()
                    .map(|p| format!(" (co-exhibitor of {p})"))
                    .unwrap_or_default(),
                if d.participant { "yes" } else { "none" },
                if products.is_empty() {
                    "none".into()
                } else {
                    products.join(", ")
                },
            );
        }
    }
    let partner = match (&r.applied.partner_id, r.applied.partner_exact) {
        (Some(id), true) => format!("partner {id}"),
        (None, true) => "no partner yet".into(),
        _ => "partner: recorded again since, not known as of then".into(),
    };
    let floors: Vec<String> = r
        .applied
        .floors
        .iter()
        .map(|f| {
            if f.exact {
                format!("{} = {}", f.product_id, f.floor)
            } else {
                format!("{} ≤ {} (raised or marked since)", f.product_id, f.floor)
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "  applied: {partner}; quantities: {}; inwink calls by then: {} applied, {} other",
        if floors.is_empty() {
            "none".into()
        } else {
            floors.join(", ")
        },
        r.applied.calls_applied,
        r.applied.calls_other
    );
    out
}

/// `--until`: an event-log position (a number) or an RFC 3339 time.
fn parse_until(s: &str) -> Result<pxsync_store::Until, String> {
    if let Ok(p) = s.parse::<i64>() {
        return Ok(pxsync_store::Until::Position(p));
    }
    parse_time(s)
        .map(pxsync_store::Until::Time)
        .map_err(|_| format!("{s:?} is neither a position (a number) nor an RFC 3339 time"))
}

/// `erase --email-stdin` (or `--email -`): the address on the first line of `input`, trimmed.
/// The error never quotes what was read.
fn email_from(mut input: impl std::io::BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("read the e-mail from standard input")?;
    let email = line.trim();
    if email.is_empty() {
        bail!("no e-mail on the first line of standard input");
    }
    if !email.contains('@') || email.chars().any(char::is_whitespace) {
        bail!("the first line of standard input is not an e-mail address");
    }
    Ok(email.to_owned())
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The order's story in time order: revisions observed and what changed, rejected units,
    /// every inwink call with its result and trace id, refused decreases, heals and adoptions.
    Order {
        order: String,
        #[arg(long)]
        event: String,
        /// The order as it stood at this RFC 3339 time: its story up to then, the desired state
        /// then and what was applied by then.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<time::OffsetDateTime>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Verifies every order's hash chain in the event log, then that the applied state of every
    /// order matches the fold of its events except where a recorded reason explains it; exits
    /// non-zero at a broken link or an unexplained difference.
    Verify {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// Lists the dead letters (open ones, or all with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Decodes a dead letter again (e.g. after an upgrade) and projects it; the order flows again.
    Retry {
        id: i64,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Gives up on a dead letter; the order's later events flow again.
    Skip {
        id: i64,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaskCommand {
    /// Writes the blank three-sheet template (.xlsx) the organiser duplicates and fills.
    Template { file: PathBuf },
    /// Checks a mask offline (.xlsx with three sheets, or .csv with the products alone); exits non-zero only on errors.
    Validate { file: PathBuf },
    /// Writes a mask pre-filled from both live catalogues, products matched by exact name, for the organiser to check.
    Draft {
        #[arg(long)]
        event: String,
        file: PathBuf,
        #[command(flatten)]
        planexpo: PlanexpoArgs,
        #[command(flatten)]
        inwink: InwinkArgs,
    },
    /// Validates and imports a mask (.xlsx or .csv) as a new version of the salon's mask.
    Import {
        #[arg(long)]
        event: String,
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        inwink: InwinkEventArgs,
    },
}

/// Both APIs' settings, read from the environment when they are all there (for the checks of
/// `enable` and `mask import` that are possible only then).
#[derive(Parser)]
struct Apis {
    #[command(flatten)]
    planexpo: PlanexpoArgs,
    #[command(flatten)]
    inwink: InwinkArgs,
}

/// Reads and checks a mask file, printing every issue; fails when one is an error.
pub fn checked_mask(file: &std::path::Path) -> anyhow::Result<pxsync_mask::MaskFile> {
    let mask = pxsync_mask::read_mask(file)
        .with_context(|| format!("read the mask {}", file.display()))?;
    for issue in &mask.issues {
        eprintln!("{}: {issue}", file.display());
    }
    if mask.has_errors() {
        bail!("the mask {} has errors (listed above)", file.display());
    }
    Ok(mask)
}

/// The deployment's settings of `event`, for the prerequisites check: its salon in
/// `PXSYNC_CONFIG` when that is set, else the environment.
pub fn deployment_of(event: &str) -> anyhow::Result<pxsync_mask::Deployment> {
    match crate::config::salons_file_path() {
        Some(path) => {
            let config = crate::salons::SalonsConfig::load(&path)?;
            let salon = config
                .salons
                .iter()
                .find(|s| s.planexpo_event == event)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "PXSYNC_CONFIG {} has no salon {event}: add it, or import the mask of a configured salon",
                        path.display()
                    )
                })?;
            Ok(salon.deployment(&path))
        }
        None => Ok(crate::config::environment_deployment()),
    }
}

/// Checks a mask file's prerequisites sheet against the deployment's settings of `event`,
/// printing every issue; fails when one is an error.
fn check_mask_prerequisites(
    file: &std::path::Path,
    mask: &pxsync_mask::MaskFile,
    event: &str,
) -> anyhow::Result<()> {
    if mask.prerequisites.is_empty() {
        return Ok(());
    }
    let deployment = deployment_of(event)?;
    let issues = pxsync_mask::check_prerequisites(
        &mask.prerequisites_sheet,
        &mask.prerequisites,
        event,
        &deployment,
    );
    for issue in &issues {
        eprintln!("{}: {issue}", file.display());
    }
    if issues
        .iter()
        .any(|i| i.severity == pxsync_mask::Severity::Error)
    {
        bail!(
            "the prerequisites sheet of {} does not match the deployment ({}; listed above); nothing was imported",
            file.display(),
            deployment.source
        );
    }
    Ok(())
}

/// Both catalogues as (id, name) lists.
async fn catalogues(apis: &Apis) -> anyhow::Result<(Vec<(String, String)>, Vec<(String, String)>)> {
    let px = apis
        .planexpo
        .client()?
        .catalog()
        .await
        .context("read the Planexpo catalogue")?
        .products
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let iw = apis
        .inwink
        .reader()?
        .event_products()
        .await
        .context("read the inwink products")?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    Ok((px, iw))
}

/// Runs the three services in this process until the shutdown.
pub async fn run_all(args: RunArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let Some(store) = store(&args.db, &shutdown).await? else {
        return Ok(());
    };
    let Some(bus) = bus(&args.nats, &args.db, &shutdown).await? else {
        return Ok(());
    };
    let stream_settings = args.nats.stream_settings();
    retry_until_ready("stream", &shutdown, || bus.ensure_stream(&stream_settings)).await;
    let salon = args.planexpo.salon(&args.inwink.event.event_id)?;
    let mut clients = emitter::Clients::new();
    clients.insert(args.inwink.event.event_id.clone(), args.inwink.client()?);
    let limits = args
        .inwink
        .rate_limit
        .map(|r| (args.inwink.event.event_id.clone(), r))
        .into_iter()
        .collect();
    crate::budget::share(&mut clients, &store, &limits);
    let settings = emitter::EmitterSettings::from_args(&args.emitter);
    // Each service gets its own pool, as it would in its own process; the emitter's is the
    // configured size (it needs two connections per order in flight); the projector's, one per
    // transaction in flight (each batch reads its held orders on it first) and one spare.
    let own_pool = |size| Store::connect(&args.db.database_url, &args.db.namespace, size);
    let (ingest_store, project_store) =
        (own_pool(3)?, own_pool(projector::DEFAULT_TRANSACTIONS + 1)?);
    let webhook = args.webhook.clone();
    let (ingest_bus, ingest_shutdown) = (bus.clone(), shutdown.clone());
    let ingest = tokio::spawn(async move {
        ingestor::run_with_webhook(ingest_store, ingest_bus, salon, &webhook, ingest_shutdown).await
    });
    let project = tokio::spawn(projector::run(
        project_store,
        bus.clone(),
        args.nats.stream_settings(),
        projector::ProjectorSettings::default(),
        shutdown.clone(),
    ));
    let inspect = tokio::spawn(crate::inspector::run(
        store.clone(),
        clients.clone(),
        crate::inspector::InspectorSettings::from_args(&args.emitter),
        shutdown.clone(),
    ));
    let emit = tokio::spawn(emitter::run(store, clients, settings, shutdown.clone()));
    let (a, b, c, d) = tokio::join!(ingest, project, emit, inspect);
    a??;
    b??;
    c??;
    d??;
    Ok(())
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            let shutdown = Shutdown::on_signals();
            let db = args.db.clone();
            let ops = args.ops.clone();
            let store = Store::connect(&db.database_url, &db.namespace, 2)?;
            let work = run_all(*args, shutdown.clone());
            crate::supervise("pxsync", &ops, store, None, work, shutdown).await
        }
        Command::Migrate { db } => {
            store_now(&db).await?;
            println!(
                "namespace {} migrated (schema {})",
                db.namespace,
                db.namespace.schema()
            );
            Ok(())
        }
        Command::Mask(MaskCommand::Template { file }) => {
            pxsync_mask::write_template(&file)?;
            println!(
                "template written to {}: duplicate it, fill sheet 3 (products and options), then pxsync mask validate",
                file.display()
            );
            Ok(())
        }
        Command::Mask(MaskCommand::Validate { file }) => {
            let mask = checked_mask(&file)?;
            println!(
                "{}: valid, {} mapped products, {} warnings",
                file.display(),
                mask.mask().products.len(),
                mask.issues.len()
            );
            Ok(())
        }
        Command::Mask(MaskCommand::Draft {
            event,
            file,
            planexpo,
            inwink,
        }) => {
            if planexpo.event != event {
                bail!(
                    "--event {event} but PXSYNC_PLANEXPO_EVENT is {}: draft the mask of the configured event",
                    planexpo.event
                );
            }
            let apis = Apis { planexpo, inwink };
            let (px, iw) = catalogues(&apis).await?;
            // The prerequisites sheet says what the deployment is configured with: the salon
            // of PXSYNC_CONFIG when set, else this command's settings (and references to the
            // variables it reads its secrets from).
            use pxsync_mask::PrerequisiteKey as K;
            let mut settings = deployment_of(&event)?.sheet_values();
            if crate::config::salons_file_path().is_none() {
                settings.extend([
                    (K::PlanexpoBaseUrl, apis.planexpo.base_url.clone()),
                    (K::PlanexpoEventSlug, apis.planexpo.event.clone()),
                    (K::InwinkEventId, apis.inwink.event.event_id.clone()),
                    (K::InwinkClientId, apis.inwink.client_id.clone()),
                ]);
            }
            let summary = pxsync_mask::write_draft(&file, &px, &iw, &settings)?;
            println!(
                "draft mask for {event} written to {}: {} products matched by name, {} Planexpo and {} inwink products left for you to map, {} ambiguous names",
                file.display(),
                summary.matched,
                summary.planexpo_unmatched.len(),
                summary.inwink_unmatched.len(),
                summary.ambiguous.len()
            );
            Ok(())
        }
        Command::Mask(MaskCommand::Import {
            event,
            file,
            db,
            inwink,
        }) => {
            let mask_file = checked_mask(&file)?;
            check_mask_prerequisites(&file, &mask_file, &event)?;
            let rows = mask_file.rows.clone();
            let missing_ids = rows.iter().any(|r| {
                (r.planexpo_product_id.is_none() && !r.planexpo_product_name.trim().is_empty())
                    || (r.inwink_product_id.is_none() && !r.inwink_product_name.trim().is_empty())
            });
            // With both APIs' settings the catalogues are read: they fill the ids left empty,
            // warn about names that differ, and become the baselines the catalogue watch
            // compares with after go-live.
            let read = match Apis::try_parse_from(["pxsync-mask-import"]) {
                Ok(apis) => match catalogues(&apis).await {
                    Ok(c) => Some(c),
                    Err(e) if missing_ids => return Err(e),
                    Err(e) => {
                        eprintln!(
                            "{}: the catalogues could not be read ({e:#}): the names are not checked; the catalogue watch takes them as they are at its next check",
                            file.display()
                        );
                        None
                    }
                },
                Err(_) => None,
            };
            let rows = match (&read, missing_ids) {
                (Some((px, iw)), _) => {
                    let (resolved, issues) = pxsync_core::mask::resolve_ids(&rows, px, iw);
                    for issue in &issues {
                        eprintln!("{}: {issue}", file.display());
                    }
                    if issues
                        .iter()
                        .any(|i| i.severity == pxsync_core::mask::Severity::Error)
                    {
                        bail!(
                            "the mask's names do not all match the catalogues (listed above); nothing was imported"
                        );
                    }
                    resolved
                }
                (None, true) => {
                    eprintln!(
                        "{}: ids left empty stay unmapped (set the PXSYNC_PLANEXPO_* and PXSYNC_INWINK_* settings to resolve them by name)",
                        file.display()
                    );
                    rows
                }
                (None, false) => rows,
            };
            let (mask, issues) = pxsync_core::mask::check_mask(&rows);
            if let Some(e) = issues
                .iter()
                .find(|i| i.severity == pxsync_core::mask::Severity::Error)
            {
                bail!("{}: {e}; nothing was imported", file.display());
            }
            let prerequisites = (!mask_file.prerequisites.is_empty())
                .then(|| {
                    serde_json::to_value(crate::preflight::StoredPrerequisites {
                        sheet: mask_file.prerequisites_sheet.clone(),
                        rows: mask_file.prerequisites.clone(),
                    })
                })
                .transpose()?;
            let store = store_now(&db).await?;
            store.register_salon(&event, &inwink.event_id).await?;
            let import = store
                .import_mask_with(
                    &event,
                    &mask,
                    &file.display().to_string(),
                    prerequisites.as_ref(),
                )
                .await?;
            if let Some((px, iw)) = &read {
                use pxsync_core::catalogue::Side;
                for (side, products) in [(Side::Planexpo, px), (Side::Inwink, iw)] {
                    let products = products.iter().cloned().collect();
                    crate::catalogue::record_baseline(&store, &event, side, &products).await?;
                }
            }
            println!(
                "mask version {} imported for {event}: {} mapped products",
                import.version,
                mask.products.len()
            );
            for remap in &import.remaps {
                println!("{remap}");
            }
            Ok(())
        }
        Command::Enable {
            event,
            strict,
            test_orders,
            orders,
            db,
        } => {
            let store = store_now(&db).await?;
            match Apis::try_parse_from(["pxsync-enable"]) {
                Ok(apis) => {
                    let tests = test_orders.into_iter().collect();
                    let report = crate::preflight::preflight(
                        &store,
                        &apis.planexpo.client()?,
                        &apis.inwink.reader()?,
                        &event,
                        &tests,
                        &deployment_of(&event),
                    )
                    .await?;
                    eprint!("{}", report.render());
                    if !report.passes(strict) {
                        bail!(
                            "preflight failed: {event} stays disabled (fix what is listed above, then enable again)"
                        );
                    }
                }
                Err(_) if strict => bail!(
                    "--strict: the preflight needs the PXSYNC_PLANEXPO_* and PXSYNC_INWINK_* settings"
                ),
                Err(_) => eprintln!(
                    "preflight skipped: the PXSYNC_PLANEXPO_* and PXSYNC_INWINK_* settings are not all set"
                ),
            }
            if let Some(orders) = orders.filter(|o| !o.is_empty()) {
                if !store.enable_pilot(&event, &orders).await? {
                    bail!(
                        "unknown event {event}: import its mask first (pxsync mask import --event {event} FILE)"
                    );
                }
                println!(
                    "{event}: pilot enabled: only orders {} are written to inwink; `pxsync enable --event {event}` opens the whole salon",
                    orders.join(", ")
                );
                return Ok(());
            }
            if !store.set_enabled(&event, true).await? {
                bail!(
                    "unknown event {event}: import its mask first (pxsync mask import --event {event} FILE)"
                );
            }
            println!("{event} enabled: the emitters now write to inwink and plan the whole salon");
            Ok(())
        }
        Command::Disable { event, db } => {
            let store = store_now(&db).await?;
            if !store.set_enabled(&event, false).await? {
                bail!("unknown event {event}");
            }
            println!(
                "{event} disabled: nothing more is written to inwink (events keep flowing into the log)"
            );
            Ok(())
        }
        Command::Reset { yes, db, nats } => {
            if !yes {
                bail!(
                    "reset deletes every table and the stream of namespace {}: add --yes",
                    db.namespace
                );
            }
            let store = Store::connect(&db.database_url, &db.namespace, 1)?;
            store.drop_namespace().await?;
            Bus::connect(&nats.nats_url, &db.namespace)
                .await?
                .delete_stream()
                .await?;
            println!("namespace {} reset", db.namespace);
            Ok(())
        }
        Command::Rescan {
            db,
            nats,
            planexpo,
            inwink,
        } => {
            let store = store_now(&db).await?;
            let bus = Bus::connect(&nats.nats_url, &db.namespace).await?;
            bus.ensure_stream(&nats.stream_settings()).await?;
            let salon = planexpo.salon(&inwink.event_id)?;
            store
                .register_salon(&planexpo.event, &inwink.event_id)
                .await?;
            let outcome = ingestor::poll_once(&store, &bus, &salon, true).await?;
            println!(
                "rescan of {}: {} orders read, {} new events published",
                planexpo.event, outcome.orders_read, outcome.events_published
            );
            Ok(())
        }
        Command::DryRun {
            event,
            order,
            json,
            db,
            inwink,
        } => {
            let store = store_now(&db).await?;
            let reader = inwink.reader()?;
            let plan = crate::dryrun::dry_run(&store, &reader, &event, order.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", crate::dryrun::render(&plan));
            }
            Ok(())
        }
        Command::DeadLetter(DeadLetterCommand::List { all, json, db }) => {
            let store = store_now(&db).await?;
            let letters = store.dead_letters(!all).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else if letters.is_empty() {
                println!("no dead letter");
            } else {
                for d in letters {
                    println!(
                        "{} [{}] seq {} {}: {}",
                        d.id, d.status, d.stream_seq, d.subject, d.reason
                    );
                }
            }
            Ok(())
        }
        Command::DeadLetter(DeadLetterCommand::Retry { id, db }) => {
            let store = store_now(&db).await?;
            let Some(payload) = store.dead_letter_payload(id).await? else {
                bail!("no open dead letter {id}");
            };
            let event = pxsync_core::event::decode(&payload).map_err(|e| {
                anyhow::anyhow!("dead letter {id} is still not an event this build reads: {e}")
            })?;
            let outcome = store
                .project_batch(std::slice::from_ref(&event), "dead-letter-retry", 0)
                .await?;
            store.resolve_dead_letter(id, "retried").await?;
            println!(
                "dead letter {id} projected ({} new event); order {} flows again",
                outcome.inserted, event.order_id
            );
            Ok(())
        }
        Command::DeadLetter(DeadLetterCommand::Skip { id, db }) => {
            let store = store_now(&db).await?;
            if !store.resolve_dead_letter(id, "skipped").await? {
                bail!("no open dead letter {id}");
            }
            println!("dead letter {id} skipped; the order's later events flow again");
            Ok(())
        }
        Command::Audit(AuditCommand::Order {
            order,
            event,
            as_of: Some(as_of),
            json,
            db,
        }) => {
            let store = store_now(&db).await?;
            let report = store.audit_as_of(&event, &order, as_of).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render_as_of(&order, &report));
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Order {
            order,
            event,
            as_of: None,
            json,
            db,
        }) => {
            let store = store_now(&db).await?;
            let trail = store.audit_trail(&event, &order).await?;
            if trail.is_empty() {
                bail!("nothing recorded for order {order} in {event}");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&trail)?);
            } else {
                for e in trail {
                    let at = pxsync_core::Timestamp::from_datetime(e.at);
                    let trace = e
                        .trace_id
                        .map(|t| format!("  [trace {t}]"))
                        .unwrap_or_default();
                    println!("{at}  {}{trace}", e.summary);
                }
            }
            Ok(())
        }
        Command::Replay {
            event,
            until,
            into,
            json,
            db,
        } => {
            let store = store_now(&db).await?;
            let opts = pxsync_store::ReplayOptions {
                planexpo_event: event,
                until,
                into,
            };
            let started = std::time::Instant::now();
            let mut progress = crate::progress::Progress::new("replay");
            let report = store
                .replay(&opts, |done, total| progress.update(done, total))
                .await?;
            progress.finish();
            let elapsed = started.elapsed().as_secs_f64().max(1e-9);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "replayed {} events of {} orders into {} in {:.1} s ({:.0} events/s); masks: {}",
                    report.events,
                    report.orders,
                    opts.into,
                    elapsed,
                    report.events as f64 / elapsed,
                    if report.mask_versions.is_empty() {
                        "none".to_owned()
                    } else {
                        report
                            .mask_versions
                            .iter()
                            .map(|(ev, v)| format!("{ev} v{v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
                if report.unreadable > 0 {
                    println!(
                        "{} events this build cannot read were not folded",
                        report.unreadable
                    );
                }
                if report.erased_orders > 0 {
                    println!(
                        "{} orders' booking contacts read as erased (compared with the live values erased the same way)",
                        report.erased_orders
                    );
                }
                for d in &report.differences {
                    println!(
                        "{} {}: differs in {} (live revision {}, replayed {})",
                        d.planexpo_event,
                        d.order_id,
                        d.fields.join(", "),
                        d.live_revision.map_or("none".into(), |r| r.to_string()),
                        d.replayed_revision.map_or("none".into(), |r| r.to_string()),
                    );
                }
                if report.differences.is_empty() {
                    println!("the replayed state equals the live state");
                }
            }
            if opts.until.is_none() && !report.differences.is_empty() {
                bail!(
                    "{} orders differ from the live state",
                    report.differences.len()
                );
            }
            Ok(())
        }
        Command::Erase {
            email,
            email_stdin,
            db,
        } => {
            let email = match email {
                Some(e) if e != "-" && !email_stdin => e,
                _ => email_from(std::io::stdin().lock())?,
            };
            let store = store_now(&db).await?;
            let erasure = store.erase_person(&email).await?;
            if erasure.keys_erased == 0 {
                println!("no key held for that address: nothing to erase in the event log");
            } else {
                println!(
                    "erased: {} person key, {} events now read the booking contact as erased",
                    erasure.keys_erased, erasure.events_erased
                );
            }
            if erasure.ingest_memory_scrubbed > 0 {
                println!(
                    "removed the booking contact from the ingestor's memory of {} orders (their next revision shows a contact change)",
                    erasure.ingest_memory_scrubbed
                );
            }
            if erasure.applied_participants_removed > 0 {
                println!(
                    "removed the applied-participant record (no order has this person any more)"
                );
            }
            for (ev, order) in &erasure.still_current_in {
                println!(
                    "still the booking contact of order {order} in {ev} on Planexpo: its current values stay in the live state until Planexpo drops the person"
                );
            }
            println!("inwink is not changed by this command");
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { db }) => {
            let store = store_now(&db).await?;
            let events = store.event_log_count(None).await?;
            if let Some((order, event_id, position)) = store.verify_chains().await? {
                bail!(
                    "the hash chain of order {order} is broken at event {event_id} (position {position}): the event log was altered"
                )
            }
            println!("event log verified: {events} events, every order's hash chain is intact");
            let check = crate::verify::verify_applied(&store).await?;
            let explained: Vec<String> = check
                .explained
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            println!(
                "applied state checked against the fold of the events: {} orders{}",
                check.orders,
                if explained.is_empty() {
                    String::new()
                } else {
                    format!("; differences explained: {}", explained.join(", "))
                }
            );
            for u in &check.unexplained {
                println!("{} {}: {}", u.planexpo_event, u.order_id, u.detail);
            }
            if !check.unexplained.is_empty() {
                bail!(
                    "{} differences between the applied state and the fold are not explained by any recorded reason",
                    check.unexplained.len()
                );
            }
            Ok(())
        }
        Command::Preflight {
            event,
            test_orders,
            strict,
            json,
            db,
            planexpo,
            inwink,
        } => {
            let store = store_now(&db).await?;
            let tests = test_orders.into_iter().collect();
            let report = crate::preflight::preflight(
                &store,
                &planexpo.client()?,
                &inwink.reader()?,
                &event,
                &tests,
                &deployment_of(&event),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            if !report.passes(strict) {
                bail!("preflight of {event}: not ready to go live");
            }
            Ok(())
        }
        Command::Link {
            event,
            order,
            partner,
            db,
        } => {
            let store = store_now(&db).await?;
            if !store.adopt_partner(&event, &order, &partner).await? {
                bail!("unknown order {order} in {event}");
            }
            println!(
                "order {order} now owns inwink partner {partner}: its planexpo fields are set at the next reconcile"
            );
            Ok(())
        }
        Command::Retry { order, event, db } => {
            let store = store_now(&db).await?;
            if store.order_state(&event, &order).await?.is_none() {
                bail!("unknown order {order} in {event}");
            }
            let n = store
                .mark_orders(&event, std::slice::from_ref(&order))
                .await?;
            if n == 0 {
                bail!("unknown order {order} in {event}");
            }
            println!("order {order} will be reconciled now");
            Ok(())
        }
        Command::Status { event, json, db } => {
            let store = store_now(&db).await?;
            let status = store.status(event.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render_status(&status));
            }
            Ok(())
        }
    }
}

/// The status as a project manager reads it.
pub fn render_status(status: &[pxsync_store::SalonStatus]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if status.is_empty() {
        out.push_str("no salon yet: import a mask (pxsync mask import --event SLUG FILE)\n");
    }
    for s in status {
        let q = |k: &str| s.queue.get(k).copied().unwrap_or(0);
        let _ = writeln!(out, "{} → inwink {}", s.planexpo_event, s.inwink_event_id);
        let _ = writeln!(
            out,
            "  sync: {}   mask: {}",
            if s.enabled {
                "ENABLED"
            } else {
                "disabled (nothing is written to inwink)"
            },
            s.mask_version
                .map_or("none".to_owned(), |v| format!("version {v}"))
        );
        let _ = writeln!(
            out,
            "  orders: {} known, {} partners on inwink; queue: {} synced, {} pending, {} waiting, {} parked",
            s.orders,
            s.partners_applied,
            q("done"),
            q("pending"),
            q("waiting"),
            q("parked")
        );
        if let Some(pilot) = s.pilot_orders.as_ref().filter(|_| s.enabled) {
            let _ = writeln!(out, "  PILOT: only orders {} are written", pilot.join(", "));
        }
        if let Some(age) = s.oldest_waiting_s {
            let _ = writeln!(out, "  oldest waiting: {age:.1} s");
        }
        if let Some(at) = s.last_write_at {
            let at = pxsync_core::Timestamp::from_datetime(at);
            let _ = writeln!(out, "  last write to inwink: {at}");
        }
        for p in &s.parked {
            let _ = writeln!(out, "  parked {}: {}", p.order_id, p.reason);
        }
        for r in &s.rejected {
            let _ = writeln!(out, "  rejected: {}", r.problem);
        }
        for d in &s.refused_decreases {
            let _ = writeln!(
                out,
                "  refused decrease: order {} product {}: inwink keeps {}, Planexpo now wants {}",
                d.order_id, d.product_id, d.floor, d.desired
            );
        }
        for u in &s.unmapped {
            let _ = writeln!(
                out,
                "  not in the mask: {} {} ({} orders)",
                u.planexpo_product_id,
                u.product_name.as_deref().unwrap_or(""),
                u.orders
            );
        }
        for h in &s.heals {
            let at = pxsync_core::Timestamp::from_datetime(h.at);
            let _ = writeln!(
                out,
                "  healed {at} {}: {}",
                h.order_id.as_deref().unwrap_or("-"),
                h.detail
            );
        }
        for b in &s.broken_mappings {
            let _ = writeln!(out, "  {}", b.reason);
        }
        for r in &s.remaps {
            let _ = writeln!(out, "  mask version {}: {}", r.version, r.summary);
        }
        for m in &s.likely_matches {
            let _ = writeln!(
                out,
                "  likely pre-existing partner for order {}: {} ({}); adopt with: pxsync link --event {} --order {} --partner {}",
                m.order_id,
                m.partner_name,
                m.partner_id,
                s.planexpo_event,
                m.order_id,
                m.partner_id
            );
        }
        for f in &s.feed_problems {
            let _ = writeln!(out, "  feed problem: {f}");
        }
        let _ = writeln!(out, "  event log: {} events", s.events_logged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Clap's own consistency checks (unique argument ids across flattened groups...).
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn erase_reads_the_address_from_the_first_line_of_stdin() {
        assert_eq!(
            email_from("  Claire.Durand@Acme.example \nsecond line\n".as_bytes()).unwrap(),
            "Claire.Durand@Acme.example"
        );
        assert_eq!(
            email_from("claire@acme.example".as_bytes()).unwrap(),
            "claire@acme.example",
            "no final newline"
        );
        for bad in ["", "\n", "   \nclaire@acme.example\n", "claire durand\n"] {
            let err = email_from(bad.as_bytes()).unwrap_err().to_string();
            assert!(!err.contains("claire"), "{err}");
        }
    }

    #[test]
    fn erase_takes_exactly_one_way_of_giving_the_address() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let erase = |cli: Cli| match cli.command {
            Command::Erase {
                email, email_stdin, ..
            } => (email, email_stdin),
            _ => panic!("not erase"),
        };
        assert_eq!(
            erase(parse(&["pxsync", "erase", "--email", "a@b.example"]).unwrap()),
            (Some("a@b.example".to_owned()), false)
        );
        assert_eq!(
            erase(parse(&["pxsync", "erase", "--email-stdin"]).unwrap()),
            (None, true)
        );
        assert_eq!(
            erase(parse(&["pxsync", "erase", "--email", "-"]).unwrap()),
            (Some("-".to_owned()), false)
        );
        assert!(
            parse(&["pxsync", "erase"]).is_err(),
            "an address is required"
        );
        assert!(
            parse(&["pxsync", "erase", "--email", "a@b.example", "--email-stdin"]).is_err(),
            "not both"
        );
    }

    /// Each subcommand lists the settings it needs, and only those.
    #[test]
    fn help_lists_exactly_the_settings_needed() {
        let mut cmd = Cli::command();
        let help = |cmd: &mut clap::Command, sub: &str| {
            cmd.find_subcommand_mut(sub)
                .unwrap()
                .render_long_help()
                .to_string()
        };
        let enable = help(&mut cmd, "enable");
        assert!(
            enable.contains("PXSYNC_DATABASE_URL") && enable.contains("PXSYNC_NAMESPACE"),
            "{enable}"
        );
        assert!(
            !enable.contains("PXSYNC_INWINK_CLIENT_SECRET") && !enable.contains("PXSYNC_NATS_URL"),
            "{enable}"
        );
        let run = help(&mut cmd, "run");
        for var in [
            "PXSYNC_NATS_URL",
            "PXSYNC_PLANEXPO_API_KEY",
            "PXSYNC_INWINK_CLIENT_SECRET",
            "PXSYNC_WEBHOOK_ADDR",
        ] {
            assert!(run.contains(var), "run --help lacks {var}");
        }
    }
}
