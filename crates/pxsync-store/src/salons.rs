//! Salons (Planexpo events served), the go-live switch and the versioned masks.

use crate::{Ctx, Result, Store, from_json, to_json};
use pxsync_core::mask::{Mask, Remap};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What a mask import recorded.
#[derive(Debug, Clone)]
pub struct MaskImport {
    pub version: i32,
    /// Planexpo products now mapped to another inwink product than in the previous version.
    pub remaps: Vec<Remap>,
}

/// A remap recorded by a mask import, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MaskRemap {
    /// The mask version that made it.
    pub version: i32,
    #[serde(flatten)]
    pub remap: Remap,
    /// One line saying what changed and what it means.
    pub summary: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct Salon {
    pub planexpo_event: String,
    pub inwink_event_id: String,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub enabled_at: Option<OffsetDateTime>,
    pub mask_version: Option<i32>,
    /// While set, only these orders are written (a pilot before the whole salon).
    pub pilot_orders: Option<Vec<String>>,
}

impl Store {
    /// Registers (or re-points) a salon. A new salon is disabled.
    pub async fn register_salon(&self, planexpo_event: &str, inwink_event_id: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO salons (planexpo_event, inwink_event_id) VALUES ($1, $2)
                 ON CONFLICT (planexpo_event) DO UPDATE SET inwink_event_id = EXCLUDED.inwink_event_id",
                &[&planexpo_event, &inwink_event_id],
            )
            .await
            .ctx("register the salon")?;
        Ok(())
    }

    pub async fn salons(&self) -> Result<Vec<Salon>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.planexpo_event, s.inwink_event_id, s.enabled, s.enabled_at,
                        (SELECT max(version) FROM mask_versions m WHERE m.planexpo_event = s.planexpo_event),
                        s.pilot_orders
                 FROM salons s ORDER BY s.planexpo_event",
                &[],
            )
            .await
            .ctx("list the salons")?;
        Ok(rows
            .iter()
            .map(|r| Salon {
                planexpo_event: r.get(0),
                inwink_event_id: r.get(1),
                enabled: r.get(2),
                enabled_at: r.get(3),
                mask_version: r.get(4),
                pilot_orders: r.get(5),
            })
            .collect())
    }

    pub async fn salon(&self, planexpo_event: &str) -> Result<Option<Salon>> {
        Ok(self
            .salons()
            .await?
            .into_iter()
            .find(|s| s.planexpo_event == planexpo_event))
    }

    /// Switches writing to inwink on or off. Returns false when the salon is unknown.
    ///
    /// Disabling waits for reconciles in flight (each holds a share lock on its salon row while
    /// it writes), so when this returns no process writes to inwink for this salon any more.
    /// Enabling marks every order of the salon, so the emitters plan the whole event.
    pub async fn set_enabled(&self, planexpo_event: &str, enabled: bool) -> Result<bool> {
        self.switch(planexpo_event, enabled, None).await
    }

    /// Enables a pilot: only `orders` are written until the salon is enabled as a whole.
    pub async fn enable_pilot(&self, planexpo_event: &str, orders: &[String]) -> Result<bool> {
        self.switch(planexpo_event, true, Some(orders)).await
    }

    async fn switch(
        &self,
        planexpo_event: &str,
        enabled: bool,
        pilot: Option<&[String]>,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.ctx("begin")?;
        let pilot: Option<Vec<String>> = pilot.map(<[String]>::to_vec);
        let n = tx
            .execute(
                "UPDATE salons SET enabled = $2,
                    enabled_at = CASE WHEN $2 THEN now() ELSE enabled_at END,
                    disabled_at = CASE WHEN $2 THEN disabled_at ELSE now() END,
                    pilot_orders = CASE WHEN $2 THEN $3 ELSE pilot_orders END
                 WHERE planexpo_event = $1",
                &[&planexpo_event, &enabled, &pilot],
            )
            .await
            .ctx("switch the salon")?;
        if n == 1 && enabled {
            mark_salon(&tx, planexpo_event).await?;
        }
        tx.commit().await.ctx("commit")?;
        Ok(n == 1)
    }

    /// Records a new mask version (never overwriting an old one) and marks every order of the
    /// salon: their desired states, computed from the mask in force wherever they are read, now
    /// follow it. What the emitter recorded as applied is untouched. Returns the version.
    pub async fn import_mask(
        &self,
        planexpo_event: &str,
        mask: &Mask,
        source: &str,
    ) -> Result<i32> {
        Ok(self
            .import_mask_with(planexpo_event, mask, source, None)
            .await?
            .version)
    }

    /// [`import_mask`](Self::import_mask), also keeping the mask's prerequisites sheet (ids and
    /// references, never a secret) and recording, in the same transaction:
    /// - one `mask_remaps` row per Planexpo product whose inwink product changed since the
    ///   previous version (returned too);
    /// - the end of the salon's broken mappings (the new mask is their fix; a row still wrong
    ///   is found again);
    /// - the end of the salon's catalogue fingerprints: the new mask was checked against the
    ///   catalogues as they are now, so they are the new baseline (the caller records them when
    ///   it read them; otherwise the next ingest cycle and inspection adopt what they read).
    pub async fn import_mask_with(
        &self,
        planexpo_event: &str,
        mask: &Mask,
        source: &str,
        prerequisites: Option<&serde_json::Value>,
    ) -> Result<MaskImport> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.ctx("begin")?;
        // Serialise imports of one salon (each takes the next version), and wait for the batches
        // projecting it (they share this lock): every order they create is then in the list
        // marked below. No order row changes: desired states are computed from the mask in
        // force where they are read (V15), and the marks make the emitter apply the new mask.
        let key = self.mask_lock_key(planexpo_event);
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            .await
            .ctx("lock the mask")?;
        let previous = newest_mask(&tx, planexpo_event).await?.map(|(_, m)| m);
        let version: i32 = tx
            .query_one(
                "INSERT INTO mask_versions (planexpo_event, version, source, mask, prerequisites)
                 SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM mask_versions WHERE planexpo_event = $1
                 RETURNING version",
                &[&planexpo_event, &source, &to_json(mask), &prerequisites],
            )
            .await
            .ctx("record the mask version")?
            .get(0);
        let remaps = previous
            .as_ref()
            .map(|old| pxsync_core::mask::remaps(old, mask))
            .unwrap_or_default();
        for r in &remaps {
            let row = i32::try_from(r.row).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO mask_remaps (planexpo_event, version, planexpo_product_id, planexpo_product_name,
                     from_inwink_product_id, to_inwink_product_id, mask_row)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &planexpo_event,
                    &version,
                    &r.planexpo_product_id,
                    &r.planexpo_product_name,
                    &r.from_inwink_product_id,
                    &r.to_inwink_product_id,
                    &row,
                ],
            )
            .await
            .ctx("record the remap")?;
        }
        // A new mask is the fix of a broken mapping: its products are checked again as they sync.
        tx.execute(
            "DELETE FROM broken_mappings WHERE planexpo_event = $1",
            &[&planexpo_event],
        )
        .await
        .ctx("clear the broken mappings")?;
        tx.execute(
            "DELETE FROM catalog_fingerprints WHERE planexpo_event = $1",
            &[&planexpo_event],
        )
        .await
        .ctx("clear the catalogue baselines")?;
        mark_salon(&tx, planexpo_event).await?;
        tx.commit().await.ctx("commit")?;
        Ok(MaskImport { version, remaps })
    }

    /// The prerequisites sheet of the mask in force, as imported (`None` for a CSV mask or a
    /// mask imported before V10).
    pub async fn current_prerequisites(
        &self,
        planexpo_event: &str,
    ) -> Result<Option<serde_json::Value>> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT prerequisites FROM mask_versions WHERE planexpo_event = $1 ORDER BY version DESC LIMIT 1",
                &[&planexpo_event],
            )
            .await
            .ctx("read the prerequisites")?
            .and_then(|r| r.get(0)))
    }

    /// The remaps recorded by mask imports, newest first.
    pub async fn mask_remaps(&self, planexpo_event: &str) -> Result<Vec<MaskRemap>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT version, planexpo_product_id, planexpo_product_name, from_inwink_product_id,
                        to_inwink_product_id, mask_row, recorded_at
                 FROM mask_remaps WHERE planexpo_event = $1 ORDER BY version DESC, mask_row",
                &[&planexpo_event],
            )
            .await
            .ctx("read the remaps")?;
        Ok(rows
            .iter()
            .map(|r| {
                let remap = Remap {
                    planexpo_product_id: r.get(1),
                    planexpo_product_name: r.get(2),
                    from_inwink_product_id: r.get(3),
                    to_inwink_product_id: r.get(4),
                    row: usize::try_from(r.get::<_, i32>(5)).unwrap_or(0),
                };
                MaskRemap {
                    version: r.get(0),
                    summary: remap.to_string(),
                    remap,
                    recorded_at: r.get(6),
                }
            })
            .collect())
    }

    /// The mask in force for a salon (the newest version), if any.
    pub async fn current_mask(&self, planexpo_event: &str) -> Result<Option<(i32, Mask)>> {
        let client = self.client().await?;
        newest_mask(&client, planexpo_event).await
    }
}

/// The newest mask version of a salon, on a connection or in a transaction already held.
pub(crate) async fn newest_mask(
    client: &impl deadpool_postgres::GenericClient,
    planexpo_event: &str,
) -> Result<Option<(i32, Mask)>> {
    let row = client
        .query_opt(
            "SELECT version, mask FROM mask_versions WHERE planexpo_event = $1 ORDER BY version DESC LIMIT 1",
            &[&planexpo_event],
        )
        .await
        .ctx("read the mask")?;
    row.map(|r| Ok((r.get(0), from_json("mask_versions.mask", r.get(1))?)))
        .transpose()
}

/// The change a mark makes to a `work_queue` row aliased `q`.
macro_rules! mark_set {
    () => {
        "state = 'pending', mark_seq = q.mark_seq + 1, not_before = least(q.not_before, now()),
         attempts = 0, reason = NULL, updated_at = now()"
    };
}

/// The start of a mark statement: the keys of `$1`/`$2`, and the CTE `marked` updating their
/// existing rows (to be closed by the caller, which may add conditions).
macro_rules! mark_existing {
    () => {
        concat!(
            "WITH keys AS (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS t(e, o)),
             marked AS (
                 UPDATE work_queue q SET ",
            mark_set!(),
            " FROM keys WHERE q.planexpo_event = keys.e AND q.order_id = keys.o"
        )
    };
}

/// Marks orders for the emitter: pending again (a parked order wakes, since its inputs changed),
/// with a new mark so a reconcile in flight cannot finish them as done. Parameters: salons and
/// order ids, as two text arrays. Answers one row: the number of orders marked.
///
/// Rows that exist are updated first, and only the others inserted (`ON CONFLICT` covers a row
/// inserted meanwhile): an upsert's speculative insertion and row lock cost more than the
/// update. A ready order keeps its `not_before` (its place in the queue), so that marking an
/// order already pending changes no indexed column and stays a HOT update.
pub(crate) const MARK_ORDERS_SQL: &str = concat!(
    mark_existing!(),
    "
         RETURNING q.planexpo_event, q.order_id),
     inserted AS (
         INSERT INTO work_queue AS q (planexpo_event, order_id)
         SELECT e, o FROM keys
         WHERE NOT EXISTS (SELECT 1 FROM marked m WHERE m.planexpo_event = keys.e AND m.order_id = keys.o)
         ON CONFLICT (planexpo_event, order_id) DO UPDATE SET ",
    mark_set!(),
    " RETURNING 1)
     SELECT (SELECT count(*) FROM marked) + (SELECT count(*) FROM inserted)"
);

/// The projector's marks: [`MARK_ORDERS_SQL`]'s, except that an order already pending, ready
/// and unclaimed keeps its row as it is. It will be reconciled anyway, and the emitter reads an
/// order's fold state under the order's lock (shared; see `Store::reconcile_context`), which
/// the marking batch holds until its commit: a claim made after this statement's snapshot reads
/// the batch's state, and a claim made before it is seen here (`claimed_by` is set until the
/// claim finishes) and gets the new mark. During a burst, when the emitter is behind, most
/// marks are then reads, not row writes. Only the projector may use it: other markers (a mask
/// import, an operator's retry) hold no order lock. Parameters as [`MARK_ORDERS_SQL`]; answers
/// nothing.
pub(crate) const PROJECTOR_MARKS_SQL: &str = concat!(
    mark_existing!(),
    "
           AND NOT (q.state = 'pending' AND q.claimed_by IS NULL AND q.attempts = 0
                    AND q.reason IS NULL AND q.not_before <= now()))
     INSERT INTO work_queue AS q (planexpo_event, order_id)
     SELECT e, o FROM keys
     WHERE NOT EXISTS (SELECT 1 FROM work_queue w WHERE w.planexpo_event = keys.e AND w.order_id = keys.o)
     ON CONFLICT (planexpo_event, order_id) DO UPDATE SET ",
    mark_set!()
);

/// Marks every order of a salon.
async fn mark_salon(tx: &tokio_postgres::Transaction<'_>, planexpo_event: &str) -> Result<()> {
    let orders: Vec<String> = tx
        .query(
            "SELECT order_id FROM order_state WHERE planexpo_event = $1",
            &[&planexpo_event],
        )
        .await
        .ctx("list the salon's orders")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let salons = vec![planexpo_event.to_owned(); orders.len()];
    tx.execute(MARK_ORDERS_SQL, &[&salons, &orders])
        .await
        .ctx("mark the salon's orders")?;
    Ok(())
}

impl Store {
    /// Records a catalogue's fingerprint as the preflight saw it (one per salon and side).
    pub async fn record_catalog_fingerprint(
        &self,
        planexpo_event: &str,
        side: &str,
        fingerprint: &str,
        products: &serde_json::Value,
    ) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO catalog_fingerprints (planexpo_event, side, fingerprint, products) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (planexpo_event, side) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                     products = EXCLUDED.products, recorded_at = now()",
                &[&planexpo_event, &side, &fingerprint, products],
            )
            .await
            .ctx("record the catalogue fingerprint")?;
        Ok(())
    }

    /// A catalogue's recorded baseline (fingerprint and id → name), if any.
    pub async fn catalog_fingerprint(
        &self,
        planexpo_event: &str,
        side: &str,
    ) -> Result<Option<(String, BTreeMap<String, String>)>> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT fingerprint, products FROM catalog_fingerprints WHERE planexpo_event = $1 AND side = $2",
                &[&planexpo_event, &side],
            )
            .await
            .ctx("read the catalogue fingerprint")?
            .map(|r| Ok((r.get(0), from_json("catalog_fingerprints.products", r.get(1))?)))
            .transpose()
    }

    /// Orders of the salon by Planexpo status (from the folded snapshots).
    pub async fn orders_by_status(&self, planexpo_event: &str) -> Result<Vec<(String, String)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT order_id, coalesce(json_of(state)->'snapshot'->>'status', '') FROM order_state WHERE planexpo_event = $1 ORDER BY order_id",
                &[&planexpo_event],
            )
            .await
            .ctx("read the orders' statuses")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// A mapped product that changed after set-up (renamed, removed or re-identified) on one side.
#[derive(Debug, Clone, Serialize)]
pub struct BrokenMapping {
    /// `planexpo` or `inwink`: the catalogue that changed.
    pub side: String,
    /// The row's Planexpo product, when known.
    pub planexpo_product_id: Option<String>,
    /// The row's inwink product: its lines wait.
    pub inwink_product_id: String,
    pub mask_row: Option<i32>,
    pub reason: String,
}

impl Store {
    /// Records a broken mapping found on inwink (once per product) and returns whether it is
    /// new.
    pub async fn record_broken_mapping(
        &self,
        planexpo_event: &str,
        inwink_product_id: &str,
        mask_row: Option<i32>,
        reason: &str,
    ) -> Result<bool> {
        self.record_mapping_break(
            planexpo_event,
            "inwink",
            None,
            inwink_product_id,
            mask_row,
            reason,
        )
        .await
    }

    /// Records a broken mapping found on `side` (`planexpo` or `inwink`), once per inwink
    /// product of the row (the first finding stays), and returns whether it is new.
    pub async fn record_mapping_break(
        &self,
        planexpo_event: &str,
        side: &str,
        planexpo_product_id: Option<&str>,
        inwink_product_id: &str,
        mask_row: Option<i32>,
        reason: &str,
    ) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO broken_mappings (planexpo_event, inwink_product_id, mask_row, reason, side, planexpo_product_id)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT DO NOTHING",
                &[&planexpo_event, &inwink_product_id, &mask_row, &reason, &side, &planexpo_product_id],
            )
            .await
            .ctx("record the broken mapping")?;
        Ok(n == 1)
    }

    pub async fn broken_mappings(&self, planexpo_event: &str) -> Result<Vec<BrokenMapping>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT inwink_product_id, mask_row, reason, side, planexpo_product_id FROM broken_mappings WHERE planexpo_event = $1 ORDER BY mask_row, inwink_product_id",
                &[&planexpo_event],
            )
            .await
            .ctx("read the broken mappings")?;
        Ok(rows
            .iter()
            .map(|r| BrokenMapping {
                inwink_product_id: r.get(0),
                mask_row: r.get(1),
                reason: r.get(2),
                side: r.get(3),
                planexpo_product_id: r.get(4),
            })
            .collect())
    }
}
