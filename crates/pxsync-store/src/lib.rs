//! Postgres for pxsync: the namespace's schema and its migrations, the append-only event log with
//! its per-order hash chains, the fold and desired state, the emitter's work queue, and every
//! record operators read (applied state, refused decreases, inwink calls, status).
//!
//! Architecture invariants:
//! - Everything lives in the namespace's schema (`search_path` is set on every connection), and
//!   migrations run under the namespace's advisory lock.
//! - A projected batch is one transaction: event log, chain heads, fold, desired state, work-queue
//!   marks and checkpoint commit together or not at all. The caller acknowledges NATS only after.
//! - `event_log` refuses UPDATE, DELETE and TRUNCATE (a trigger, which binds superusers too).
//!
//! What it must never do: store a personal value outside the snapshot columns (calls, errors and
//! refusals carry no names, e-mails or phones), or mark an order done while a newer mark exists.

mod audit;
mod budget;
mod deadletter;
mod emit;
mod eventlog;
mod heal;
mod ingest;
pub mod personal;
mod project;
mod replay;
mod salons;
mod status;

pub use audit::*;
pub use deadletter::*;
pub use emit::*;
pub use eventlog::*;
pub use heal::*;
pub use ingest::*;
pub use personal::{ERASED, Erasure, email_digest, erase_contact};
pub use project::*;
pub use replay::*;
pub use salons::*;
pub use status::*;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use pxsync_core::namespace::Namespace;
use std::str::FromStr;
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("postgres: {context}: {source}")]
    Postgres {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("postgres: bad database url: {0}")]
    Config(String),
    #[error("migration: {0}")]
    Migration(String),
    #[error("stored data of {what} is not readable by this build: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("a batch of {orders} orders: at most {max} (each holds a lock until its commit)")]
    BatchTooLarge { orders: usize, max: usize },
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> Ctx<T> for std::result::Result<T, tokio_postgres::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Postgres { context, source })
    }
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    v: serde_json::Value,
) -> Result<T> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// A stored JSON value (a `bytea` column written with `serde_json::to_vec`), deserialised.
pub(crate) fn from_json_bytes<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// The mask in force for the salon of the row being selected (`s.planexpo_event`): a scalar
/// subquery for a select list, `NULL` when the salon has no mask yet. Read it with
/// [`mask_column`].
pub(crate) const MASK_IN_FORCE: &str = "(SELECT m.mask FROM mask_versions m WHERE m.planexpo_event = s.planexpo_event ORDER BY m.version DESC LIMIT 1)";

/// A `mask_versions.mask` column (jsonb, possibly `NULL`: no mask, every line unmapped),
/// deserialised straight from its bytes.
pub(crate) fn mask_column(
    row: &tokio_postgres::Row,
    idx: usize,
) -> Result<pxsync_core::mask::Mask> {
    row.try_get::<_, Option<tokio_postgres::types::Json<pxsync_core::mask::Mask>>>(idx)
        .map(|j| j.map(|j| j.0).unwrap_or_default())
        .map_err(|e| StoreError::Corrupt {
            what: "mask_versions.mask",
            detail: e.to_string(),
        })
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Applies, in version order, the embedded migrations numbered below the newest applied one that
/// were never applied. Versions are reserved per branch (V9 and V10 beside V11), so a schema
/// can hold V11 before V9 and V10 are merged; refinery alone refuses such a schema (a missing
/// version). Each one runs in a transaction of its own with its history row, as refinery would
/// have run it.
async fn apply_late_migrations(
    client: &mut tokio_postgres::Client,
    runner: &refinery::Runner,
) -> Result<()> {
    let history = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await
        .ctx("look for the migration history")?;
    if !history.get::<_, bool>(0) {
        return Ok(());
    }
    let applied: std::collections::BTreeSet<i32> = client
        .query("SELECT version FROM refinery_schema_history", &[])
        .await
        .ctx("read the migration history")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let Some(&newest) = applied.last() else {
        return Ok(());
    };
    let mut late: Vec<&refinery::Migration> = runner
        .get_migrations()
        .iter()
        .filter(|m| m.version() < newest && !applied.contains(&m.version()))
        .collect();
    late.sort_by_key(|m| m.version());
    for m in late {
        let tx = client.transaction().await.ctx("begin a late migration")?;
        tx.batch_execute(m.sql().unwrap_or_default())
            .await
            .map_err(|e| StoreError::Migration(format!("V{}__{}: {e}", m.version(), m.name())))?;
        let applied_on = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        tx.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES ($1, $2, $3, $4)",
            &[
                &m.version(),
                &m.name(),
                &applied_on,
                &m.checksum().to_string(),
            ],
        )
        .await
        .ctx("record a late migration")?;
        tx.commit().await.ctx("commit a late migration")?;
    }
    Ok(())
}

/// The namespace's database: a capped pool whose connections all use the namespace's schema.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    ns: Namespace,
    url: String,
}

impl Store {
    /// Connects lazily (the pool opens connections on demand) with at most `pool_size`
    /// connections.
    pub fn connect(url: &str, ns: &Namespace, pool_size: usize) -> Result<Store> {
        let mut cfg =
            tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Config(e.to_string()))?;
        cfg.options(format!("-c search_path={}", ns.schema()));
        cfg.application_name("pxsync");
        cfg.connect_timeout(std::time::Duration::from_secs(5));
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Store {
            pool,
            ns: ns.clone(),
            url: url.to_owned(),
        })
    }

    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The most connections the pool opens.
    pub fn pool_size(&self) -> usize {
        self.pool.status().max_size
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }

    /// Creates the schema and runs the embedded migrations, under the namespace's advisory lock
    /// so that replicas starting together do not race. Idempotent.
    pub async fn migrate(&self) -> Result<()> {
        self.migrate_to(None).await
    }

    /// As [`Store::migrate`], stopping at `version` (upgrade tests: a schema as an older
    /// release left it, then [`Store::migrate`]).
    pub async fn migrate_up_to(&self, version: i32) -> Result<()> {
        self.migrate_to(Some(version)).await
    }

    async fn migrate_to(&self, target: Option<i32>) -> Result<()> {
        let mut client = self.client().await?;
        let key = self.ns.lock_key("migrate");
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .ctx("take the migration lock")?;
        let result = async {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", self.ns.schema()))
                .await
                .ctx("create the schema")?;
            let c: &mut tokio_postgres::Client = &mut client;
            let mut runner = embedded::migrations::runner();
            if let Some(v) = target {
                runner = runner.set_target(refinery::Target::Version(v));
            }
            apply_late_migrations(c, &runner).await?;
            runner
                .run_async(c)
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            Ok(())
        }
        .await;
        let unlock = client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await
            .ctx("release the migration lock");
        result.and(unlock.map(|_| ()))
    }

    /// True when the schema exists and is migrated (readiness).
    pub async fn is_migrated(&self) -> Result<bool> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT to_regclass('work_queue') IS NOT NULL", &[])
            .await
            .ctx("check the schema")?;
        Ok(row.get(0))
    }

    /// Drops the namespace's schema and everything in it (tests and `pxsync reset` only).
    pub async fn drop_namespace(&self) -> Result<()> {
        let client = self.client().await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                self.ns.schema()
            ))
            .await
            .ctx("drop the schema")?;
        Ok(())
    }

    /// The database URL (to open a dedicated connection, e.g. for LISTEN).
    pub fn url(&self) -> &str {
        &self.url
    }
}
