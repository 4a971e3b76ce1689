//! The ingestor's memory: the feed watermark and what it last observed of each order.

use crate::{Ctx, Result, Store, StoreError};
use pxsync_core::Timestamp;
use pxsync_core::event::Previous;
use std::collections::BTreeMap;

/// The position in the feed up to which every order was published and acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    pub updated_at: Timestamp,
    pub order_id: String,
}

impl Store {
    pub async fn watermark(&self, planexpo_event: &str) -> Result<Option<Watermark>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT updated_at, order_id FROM ingest_watermarks WHERE planexpo_event = $1",
                &[&planexpo_event],
            )
            .await
            .ctx("read the watermark")?;
        Ok(row.map(|r| Watermark {
            updated_at: Timestamp::from_datetime(r.get(0)),
            order_id: r.get(1),
        }))
    }

    /// What the ingestor last observed of these orders (missing: never seen).
    pub async fn previous(
        &self,
        planexpo_event: &str,
        order_ids: &[String],
    ) -> Result<BTreeMap<String, Previous>> {
        let client = self.client().await?;
        // A set of primary-key lookups whatever the table's statistics say (V16).
        let read = client
            .prepare_cached("SELECT order_id, previous FROM ingest_memory($1, $2)")
            .await
            .ctx("prepare the read of the previous observations")?;
        let rows = client
            .query(&read, &[&planexpo_event, &order_ids])
            .await
            .ctx("read the previous observations")?;
        rows.into_iter()
            .map(|r| {
                let bytes: &[u8] = r.get(1);
                let previous = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                    what: "ingest_orders.previous",
                    detail: e.to_string(),
                })?;
                Ok((r.get(0), previous))
            })
            .collect()
    }

    /// Records, after JetStream acknowledged their events, what was observed of these orders,
    /// and moves the watermark (never backwards). One transaction, committed without waiting
    /// for the WAL flush: a record lost in a server crash only makes the ingestor read and
    /// publish those orders again, with the same event ids, which JetStream and the event log
    /// drop.
    pub async fn record_ingested(
        &self,
        planexpo_event: &str,
        observed: &BTreeMap<&str, &Previous>,
        watermark: Option<&Watermark>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.ctx("begin")?;
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await
            .ctx("relax the commit")?;
        if !observed.is_empty() {
            let ids: Vec<&str> = observed.keys().copied().collect();
            let revs: Vec<i64> = observed
                .values()
                .map(|p| p.revision.unwrap_or(0) as i64)
                .collect();
            let prevs = observed
                .values()
                .map(crate::project::json_bytes)
                .collect::<Vec<Vec<u8>>>();
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO ingest_orders (planexpo_event, order_id, revision, previous)
                     SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bytea[])
                     ON CONFLICT (planexpo_event, order_id) DO UPDATE
                     SET revision = EXCLUDED.revision, previous = EXCLUDED.previous
                     WHERE ingest_orders.revision < EXCLUDED.revision",
                )
                .await
                .ctx("prepare the record of the observations")?;
            tx.execute(&upsert, &[&planexpo_event, &ids, &revs, &prevs])
                .await
                .ctx("record the observations")?;
        }
        if let Some(w) = watermark {
            let advance = tx
                .prepare_cached(
                    "INSERT INTO ingest_watermarks (planexpo_event, updated_at, order_id) VALUES ($1, $2, $3)
                     ON CONFLICT (planexpo_event) DO UPDATE SET updated_at = EXCLUDED.updated_at,
                         order_id = EXCLUDED.order_id, saved_at = now()
                     WHERE (ingest_watermarks.updated_at, ingest_watermarks.order_id) < (EXCLUDED.updated_at, EXCLUDED.order_id)",
                )
                .await
                .ctx("prepare the watermark")?;
            tx.execute(
                &advance,
                &[&planexpo_event, &w.updated_at.datetime(), &w.order_id],
            )
            .await
            .ctx("move the watermark")?;
        }
        tx.commit().await.ctx("commit")?;
        Ok(())
    }

    /// Records an order of the feed that could not be identified (the message names the field
    /// and the rule, never a value).
    pub async fn record_feed_problem(
        &self,
        planexpo_event: &str,
        order_id: Option<&str>,
        message: &str,
    ) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO feed_problems (planexpo_event, order_id, message) VALUES ($1, $2, $3)
                 ON CONFLICT (planexpo_event, message) DO UPDATE SET seen_at = now()",
                &[&planexpo_event, &order_id, &message],
            )
            .await
            .ctx("record the feed problem")?;
        Ok(())
    }
}
