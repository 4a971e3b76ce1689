use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = pxsync::cli::Cli::parse();
    let run = matches!(cli.command, pxsync::cli::Command::Run(_));
    let _telemetry = pxsync::telemetry::init_with("pxsync", run);
    match pxsync::cli::main(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
