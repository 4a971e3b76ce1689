use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = pxsync::cli::Cli::parse();
    pxsync::telemetry::init("pxsync");
    match pxsync::cli::main(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
