//! Dead letters: undecodable events, parked for an operator. While an order (its subject) has an
//! open dead letter, its later events wait, so the order's history is never folded with a hole
//! in it; other orders flow.

use crate::{Ctx, Result, Store};
use serde::Serialize;
use std::collections::BTreeSet;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub stream_seq: i64,
    pub subject: String,
    pub reason: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Parks an undecodable event.
    pub async fn dead_letter(
        &self,
        stream_seq: u64,
        subject: &str,
        reason: &str,
        payload: &[u8],
    ) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO dead_letters (stream_seq, subject, reason, payload) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (stream_seq, subject) DO NOTHING",
                &[&(stream_seq as i64), &subject, &reason, &payload],
            )
            .await
            .ctx("write the dead letter")?;
        Ok(())
    }

    /// Which of these subjects have an open dead letter (their events wait).
    pub async fn held_subjects(&self, subjects: &[String]) -> Result<BTreeSet<String>> {
        let client = self.client().await?;
        // Prepared once per connection: the projector asks at every batch.
        let held = client
            .prepare_cached(
                "SELECT DISTINCT subject FROM dead_letters WHERE status = 'open' AND subject = ANY($1)",
            )
            .await
            .ctx("prepare the read of held orders")?;
        let rows = client
            .query(&held, &[&subjects])
            .await
            .ctx("find held orders")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn dead_letters(&self, open_only: bool) -> Result<Vec<DeadLetter>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, stream_seq, subject, reason, status, created_at FROM dead_letters
                 WHERE NOT $1 OR status = 'open' ORDER BY id",
                &[&open_only],
            )
            .await
            .ctx("list the dead letters")?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                id: r.get(0),
                stream_seq: r.get(1),
                subject: r.get(2),
                reason: r.get(3),
                status: r.get(4),
                created_at: r.get(5),
            })
            .collect())
    }

    /// The payload of an open dead letter.
    pub async fn dead_letter_payload(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT payload FROM dead_letters WHERE id = $1 AND status = 'open'",
                &[&id],
            )
            .await
            .ctx("read the dead letter")?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Closes a dead letter (`retried` or `skipped`): the order's held events flow again.
    pub async fn resolve_dead_letter(&self, id: i64, status: &str) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE dead_letters SET status = $2 WHERE id = $1 AND status = 'open'",
                &[&id, &status],
            )
            .await
            .ctx("resolve the dead letter")?;
        Ok(n == 1)
    }
}
