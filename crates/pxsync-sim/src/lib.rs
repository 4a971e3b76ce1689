//! # pxsync-sim: simulators of the Planexpo and inwink APIs
//!
//! Neither vendor gives us a sandbox, so the demo and every test of pxsync run against
//! these two in-memory HTTP servers. They implement `shared/spec/contracts.md` exactly:
//! section A ([`planexpo`]), section B ([`inwink`]) and the simulator controls of
//! section C (`/_sim/...`: state, call log, faults, manual edits, order generator).
//!
//! What the simulators must never do:
//! - **reuse the clients' wire types.** Each simulator has its own serde structs
//!   ([`planexpo::wire`], [`inwink::wire`]) renamed field by field, checked against the
//!   golden samples in `proto/golden/`. Sharing types with the clients would let a naming
//!   mistake pass every test, so this crate depends on no other pxsync crate.
//! - **fault, rate-limit or log the `/_sim/` routes.** Faults, the rate limit and the call
//!   log only concern the vendor API (token endpoint included, except the rate limit).
//! - **panic on any input.** Every malformed request gets a contract error body
//!   `{"code", "message"}` (messages never carry personal data).
//!
//! Each simulator can run in-process ([`planexpo::spawn`], [`inwink::spawn`], or `serve`
//! on a listener of your own) or as the `pxsync-sim` binary.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod b64;
mod common;
pub mod inwink;
pub mod planexpo;

/// A simulator serving on a tokio task. Dropping it stops the server too.
#[derive(Debug)]
pub struct Running {
    /// The address the simulator listens on (`127.0.0.1:PORT`).
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits (at most 5 s) until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `127.0.0.1:0` and runs `serve` on a task with a shutdown signal bound to the
/// returned [`Running`].
pub(crate) async fn spawn_with<F, Fut>(serve: F) -> std::io::Result<Running>
where
    F: FnOnce(tokio::net::TcpListener, common::ShutdownSignal) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let signal: common::ShutdownSignal = Box::pin(async move {
        // Resolves on an explicit stop and when the sender is dropped.
        let _ = stopped.await;
    });
    let task = tokio::spawn(serve(listener, signal));
    Ok(Running {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

#[cfg(test)]
mod golden_tests;
