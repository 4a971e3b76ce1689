//! Self-healing records: deletions and hand edits found on inwink, adoptions, and the likely
//! matches of partners that existed before the sync.

use crate::{Ctx, Result, Store, from_json};
use pxsync_core::plan::PartnerWrite;
use serde::Serialize;
use time::OffsetDateTime;

/// What inwink holds of one order's partner, as recorded.
#[derive(Debug, Clone)]
pub struct AppliedPartnerRow {
    pub order_id: String,
    pub partner_id: String,
    pub sent: Option<PartnerWrite>,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct AppliedParticipantRow {
    pub email_key: String,
    pub participant_id: String,
    pub sent: Option<pxsync_core::desired::DesiredParticipant>,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct Heal {
    pub order_id: Option<String>,
    pub kind: String,
    pub detail: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct LikelyMatch {
    pub order_id: String,
    pub partner_id: String,
    pub partner_name: String,
}

impl Store {
    pub async fn applied_partners(&self, ev: &str) -> Result<Vec<AppliedPartnerRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT order_id, partner_id, sent, updated_at FROM applied_partners
                 WHERE planexpo_event = $1 AND partner_id IS NOT NULL AND NOT uncertain",
                &[&ev],
            )
            .await
            .ctx("read the applied partners")?;
        rows.into_iter()
            .map(|r| {
                let sent: Option<serde_json::Value> = r.get(2);
                Ok(AppliedPartnerRow {
                    order_id: r.get(0),
                    partner_id: r.get(1),
                    sent: sent
                        .map(|v| from_json("applied_partners.sent", v))
                        .transpose()?,
                    updated_at: r.get(3),
                })
            })
            .collect()
    }

    pub async fn applied_participants(&self, ev: &str) -> Result<Vec<AppliedParticipantRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT email_key, participant_id, updated_at, sent FROM applied_participants
                 WHERE planexpo_event = $1 AND participant_id IS NOT NULL AND NOT uncertain",
                &[&ev],
            )
            .await
            .ctx("read the applied participants")?;
        rows.into_iter()
            .map(|r| {
                let sent: Option<serde_json::Value> = r.get(3);
                Ok(AppliedParticipantRow {
                    email_key: r.get(0),
                    participant_id: r.get(1),
                    sent: sent
                        .map(|v| from_json("applied_participants.sent", v))
                        .transpose()?,
                    updated_at: r.get(2),
                })
            })
            .collect()
    }

    /// Records a heal, a repair or an adoption (no personal values in `detail`).
    pub async fn record_heal(
        &self,
        ev: &str,
        order_id: Option<&str>,
        kind: &str,
        detail: &str,
    ) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO heals (planexpo_event, order_id, kind, detail) VALUES ($1, $2, $3, $4)",
            &[&ev, &order_id, &kind, &detail],
        )
        .await
        .ctx("record the heal")?;
        Ok(())
    }

    pub async fn heals(&self, ev: &str, limit: i64) -> Result<Vec<Heal>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT order_id, kind, detail, at FROM heals WHERE planexpo_event = $1 ORDER BY id DESC LIMIT $2",
                &[&ev, &limit],
            )
            .await
            .ctx("read the heals")?;
        Ok(rows
            .iter()
            .map(|r| Heal {
                order_id: r.get(0),
                kind: r.get(1),
                detail: r.get(2),
                at: r.get(3),
            })
            .collect())
    }

    /// Forgets what was last sent for a partner, so the next plan sends every field again (a
    /// hand edit found by the drift sweep).
    pub async fn clear_partner_sent(&self, ev: &str, order_id: &str) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE applied_partners SET sent = NULL, updated_at = now() WHERE planexpo_event = $1 AND order_id = $2",
            &[&ev, &order_id],
        )
        .await
        .ctx("clear the sent partner")?;
        Ok(())
    }

    /// Forgets what was last sent for a participant (a hand edit found by the drift sweep).
    pub async fn clear_participant_sent(&self, ev: &str, email_key: &str) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE applied_participants SET sent = NULL, updated_at = now() WHERE planexpo_event = $1 AND email_key = $2",
            &[&ev, &email_key],
        )
        .await
        .ctx("clear the sent participant")?;
        Ok(())
    }

    /// The orders whose booking contact has this e-mail.
    pub async fn orders_with_email(&self, ev: &str, email_key: &str) -> Result<Vec<String>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT order_id FROM order_state WHERE planexpo_event = $1 AND email_key = $2 ORDER BY order_id",
                &[&ev, &email_key],
            )
            .await
            .ctx("find the orders of a contact")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Desired partner names of orders that have no partner on inwink yet: (order id, name). The
    /// desired partner is the snapshot's, whatever the mask: read from the fold state.
    pub async fn orders_without_partner(&self, ev: &str) -> Result<Vec<(String, String)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT o.order_id, d.partner->>'company_name'
                 FROM order_state o CROSS JOIN LATERAL (SELECT json_of(o.state)->'snapshot'->'partner') AS d(partner)
                 LEFT JOIN applied_partners a ON a.planexpo_event = o.planexpo_event AND a.order_id = o.order_id
                 WHERE o.planexpo_event = $1 AND jsonb_typeof(d.partner) = 'object' AND a.partner_id IS NULL",
                &[&ev],
            )
            .await
            .ctx("find orders without a partner")?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, Option<String>>(1).unwrap_or_default()))
            .collect())
    }

    /// Replaces the salon's likely matches.
    pub async fn replace_likely_matches(&self, ev: &str, matches: &[LikelyMatch]) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.ctx("begin")?;
        tx.execute(
            "DELETE FROM likely_matches WHERE planexpo_event = $1",
            &[&ev],
        )
        .await
        .ctx("clear the likely matches")?;
        for m in matches {
            tx.execute(
                "INSERT INTO likely_matches (planexpo_event, order_id, partner_id, partner_name) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&ev, &m.order_id, &m.partner_id, &m.partner_name],
            )
            .await
            .ctx("record a likely match")?;
        }
        tx.commit().await.ctx("commit")?;
        Ok(())
    }

    pub async fn likely_matches(&self, ev: &str) -> Result<Vec<LikelyMatch>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT order_id, partner_id, partner_name FROM likely_matches WHERE planexpo_event = $1 ORDER BY order_id",
                &[&ev],
            )
            .await
            .ctx("read the likely matches")?;
        Ok(rows
            .iter()
            .map(|r| LikelyMatch {
                order_id: r.get(0),
                partner_id: r.get(1),
                partner_name: r.get(2),
            })
            .collect())
    }

    /// Adopts an inwink partner created by hand for an order (`pxsync link`): its fields are
    /// sent at the next reconcile, which sets its `planexpo_*` fields.
    pub async fn adopt_partner(&self, ev: &str, order_id: &str, partner_id: &str) -> Result<bool> {
        let known: bool = {
            let c = self.client().await?;
            c.query_opt(
                "SELECT 1 FROM order_state WHERE planexpo_event = $1 AND order_id = $2",
                &[&ev, &order_id],
            )
            .await
            .ctx("find the order")?
            .is_some()
        };
        if !known {
            return Ok(false);
        }
        self.record_partner(ev, order_id, partner_id, None).await?;
        self.record_heal(
            ev,
            Some(order_id),
            "partner_adopted",
            &format!("inwink partner {partner_id} adopted by an operator"),
        )
        .await?;
        {
            let c = self.client().await?;
            c.execute(
                "DELETE FROM likely_matches WHERE planexpo_event = $1 AND order_id = $2",
                &[&ev, &order_id],
            )
            .await
            .ctx("clear the likely matches")?;
        }
        self.mark_orders(ev, &[order_id.to_owned()]).await?;
        self.mark_children(ev, order_id).await?;
        Ok(true)
    }
}
