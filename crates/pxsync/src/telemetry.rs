//! One logging setup for every binary: `tracing` to stderr, filtered by `RUST_LOG` (default
//! `info`), JSON when `PXSYNC_LOG_FORMAT=json`. Logs name fields, never personal values.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber for `service` (e.g. `pxsync-emitter`). Safe to call twice.
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("PXSYNC_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if result.is_ok() {
        tracing::debug!(service, "logging ready");
    }
}
