//! Test support for pxsync's integration and system tests.
//!
//! - [`TestNamespace`]: a fresh `PXSYNC_NAMESPACE` per test on the real Postgres and NATS
//!   JetStream (URLs from `PXSYNC_DATABASE_URL` / `PXSYNC_NATS_URL`, as written by
//!   `make services`, or the local defaults), with small pools, removed by `cleanup()`. A test
//!   that cannot reach a server fails and says so: nothing is skipped.
//! - [`Service`]: a child process (one of our binaries) that is killed when the test ends, with
//!   its output kept in a log file that failing tests print.
//! - [`wait_for`]: polls a condition with a deadline.
//!
//! What it must never do: restart or reconfigure the shared servers, or touch another
//! namespace.

pub mod projection;

use pxsync_bus::Bus;
use pxsync_core::namespace::Namespace;
use pxsync_store::Store;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn database_url() -> String {
    std::env::var("PXSYNC_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn nats_url() -> String {
    std::env::var("PXSYNC_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// One test's namespace on the shared servers.
pub struct TestNamespace {
    pub ns: Namespace,
    pub store: Store,
    pub bus: Bus,
}

impl TestNamespace {
    /// A new namespace `t_<tag>_<random>`, migrated, with its stream created.
    pub async fn new(tag: &str) -> TestNamespace {
        let born = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!("t_{tag}_{born:x}_{:04x}", fastrand::u16(..));
        let ns = Namespace::new(&name).expect("test namespace");
        let store = Store::connect(&database_url(), &ns, 3).expect("database url");
        tokio::time::timeout(Duration::from_secs(20), store.migrate())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "Postgres at {} did not answer in 20 s (run `make services`)",
                    database_url()
                )
            })
            .unwrap_or_else(|e| {
                panic!(
                    "Postgres at {} is not usable (run `make services`): {e}",
                    database_url()
                )
            });
        let bus = tokio::time::timeout(Duration::from_secs(10), Bus::connect(&nats_url(), &ns))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "NATS at {} did not answer in 10 s (run `make services`)",
                    nats_url()
                )
            })
            .unwrap_or_else(|e| {
                panic!(
                    "NATS at {} is not usable (run `make services`): {e}",
                    nats_url()
                )
            });
        bus.ensure_stream(&Default::default())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "JetStream at {} is not usable (run `make services`): {e}",
                    nats_url()
                )
            });
        let me = TestNamespace { ns, store, bus };
        me.sweep_leftovers(born).await;
        me
    }

    /// Removes what tests that died before their cleanup left, once it is over an hour old
    /// (test namespaces carry their creation time): schemas, and streams (also those whose
    /// schema is already gone). Never touches a namespace of another kind.
    async fn sweep_leftovers(&self, now: u64) {
        let stale = |ns: &str| {
            let parts: Vec<&str> = ns.split('_').collect();
            let born = parts
                .len()
                .checked_sub(2)
                .and_then(|i| u64::from_str_radix(parts[i], 16).ok());
            ns.starts_with("t_")
                && born.is_some_and(|b| {
                    (1_600_000_000..=now).contains(&b) && now.saturating_sub(b) >= 3600
                })
        };
        let js = self.bus.jetstream();
        let mut names = js.stream_names();
        let mut streams = Vec::new();
        while let Some(Ok(name)) = futures::StreamExt::next(&mut names).await {
            // PXSYNC_<NS>_ORDERS, and the benchmarks' scratch streams after it.
            let ns = name
                .strip_prefix("PXSYNC_")
                .and_then(|rest| rest.rsplit_once("_ORDERS"))
                .filter(|(_, after)| after.is_empty() || after.starts_with('_'))
                .map(|(ns, _)| ns.to_lowercase())
                .filter(|ns| Namespace::new(ns).is_ok());
            if ns.as_deref().is_some_and(stale) {
                streams.push(name);
            }
        }
        for name in streams {
            let _ = js.delete_stream(&name).await;
        }
        let Ok(client) = self.store.client().await else {
            return;
        };
        let Ok(rows) = client
            .query(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pxsync\\_t\\_%'",
                &[],
            )
            .await
        else {
            return;
        };
        for row in rows {
            let schema: String = row.get(0);
            let ns = schema.trim_start_matches("pxsync_");
            if !stale(ns) {
                continue;
            }
            if let Ok(old) = Namespace::new(ns) {
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", old.schema()))
                    .await;
            }
        }
    }

    /// The environment a pxsync process needs to use this namespace.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PXSYNC_DATABASE_URL".into(), database_url()),
            ("PXSYNC_NATS_URL".into(), nats_url()),
            ("PXSYNC_NAMESPACE".into(), self.ns.as_str().into()),
            ("PXSYNC_DATABASE_POOL_SIZE".into(), "7".into()),
        ]
    }

    /// Removes the schema and the stream.
    pub async fn cleanup(self) {
        let _ = self.bus.delete_stream().await;
        let _ = self.store.drop_namespace().await;
    }
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_for<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child process killed on drop, its output in a log file.
pub struct Service {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

/// A folder under the target directory for test artefacts.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let base = std::env::var("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("pxsync-tests"));
    let dir = base.join(format!("{tag}-{:08x}", fastrand::u32(..)));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

impl Service {
    pub fn spawn(
        name: &str,
        exe: &str,
        args: &[&str],
        env: &[(String, String)],
        dir: &std::path::Path,
    ) -> Service {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(exe)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("PXSYNC_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        Service {
            name: name.into(),
            child,
            log,
        }
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then wait up to `grace` for the exit status.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status, if it did.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a one-shot command and returns (success, stdout, stderr).
pub fn run_command(exe: &str, args: &[&str], env: &[(String, String)]) -> (bool, String, String) {
    let out = Command::new(exe)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a one-shot command with `input` on its standard input and returns (success, stdout,
/// stderr).
pub fn run_command_with_input(
    exe: &str,
    args: &[&str],
    env: &[(String, String)],
    input: &str,
) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(exe)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits without reading its input closes the pipe: not an error here.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {exe}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A small JSON HTTP helper for simulator controls.
pub struct Http(reqwest::Client);

impl Default for Http {
    fn default() -> Self {
        // One TLS crypto provider for the whole workspace: ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Http(reqwest::Client::new())
    }
}

impl Http {
    pub async fn get(&self, url: &str) -> serde_json::Value {
        let r = self
            .0
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        r.json().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .0
            .request(method.clone(), url)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn put(&self, url: &str, body: &serde_json::Value) -> serde_json::Value {
        let (status, v) = self.send(reqwest::Method::PUT, url, body).await;
        assert!((200..300).contains(&status), "PUT {url}: {status} {v}");
        v
    }

    pub async fn post(&self, url: &str, body: &serde_json::Value) -> serde_json::Value {
        let (status, v) = self.send(reqwest::Method::POST, url, body).await;
        assert!((200..300).contains(&status), "POST {url}: {status} {v}");
        v
    }

    pub async fn delete(&self, url: &str) -> u16 {
        self.0
            .delete(url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}
