//! `pxsync-sim planexpo|inwink`: runs one simulator. Once bound it prints exactly one line
//! to stdout, `listening on http://HOST:PORT`; logs go to stderr.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use pxsync_sim::{inwink, planexpo};

/// In-memory simulators of the Planexpo and inwink APIs (see contracts.md), with their
/// `/_sim/` controls (state, call log, faults, manual edits, order generator).
#[derive(Debug, Parser)]
#[command(name = "pxsync-sim", version)]
struct Cli {
    #[command(subcommand)]
    sim: Sim,
}

#[derive(Debug, Subcommand)]
enum Sim {
    /// The Planexpo source API (contracts.md A).
    Planexpo(PlanexpoArgs),
    /// The inwink target API (contracts.md B).
    Inwink(InwinkArgs),
}

#[derive(Debug, Args)]
struct PlanexpoArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "PXSIM_PLANEXPO_ADDR", default_value = "127.0.0.1:8081")]
    addr: String,
    /// API key expected in `Authorization: Bearer {key}`.
    #[arg(long, env = "PXSIM_PLANEXPO_API_KEY", default_value = "px-sim-key")]
    api_key: String,
    /// The event slug served.
    #[arg(long, env = "PXSIM_PLANEXPO_EVENT", default_value = "salon-sante-2026")]
    event: String,
}

#[derive(Debug, Args)]
struct InwinkArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "PXSIM_INWINK_ADDR", default_value = "127.0.0.1:8082")]
    addr: String,
    /// OAuth client id accepted by `POST /oauth/token`.
    #[arg(long, env = "PXSIM_INWINK_CLIENT_ID", default_value = "pxsync-sim")]
    client_id: String,
    /// OAuth client secret accepted by `POST /oauth/token`.
    #[arg(
        long,
        env = "PXSIM_INWINK_CLIENT_SECRET",
        default_value = "inwink-sim-secret",
        hide_env_values = true
    )]
    client_secret: String,
    /// The inwink event id (GUID) served; every API path starts with it.
    #[arg(
        long,
        env = "PXSIM_INWINK_EVENT_ID",
        default_value = "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b"
    )]
    event_id: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let addr = match &cli.sim {
        Sim::Planexpo(a) => a.addr.clone(),
        Sim::Inwink(a) => a.addr.clone(),
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{local}")?;
        out.flush()?;
    }

    match cli.sim {
        Sim::Planexpo(a) => {
            tracing::info!(%local, event = %a.event, "planexpo simulator started");
            let opts = planexpo::Options {
                api_key: a.api_key,
                event: a.event,
            };
            planexpo::serve(listener, opts, shutdown_signal()).await?;
        }
        Sim::Inwink(a) => {
            tracing::info!(%local, event_id = %a.event_id, "inwink simulator started");
            let opts = inwink::Options {
                client_id: a.client_id,
                client_secret: a.client_secret,
                event_id: a.event_id,
            };
            inwink::serve(listener, opts, shutdown_signal()).await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
