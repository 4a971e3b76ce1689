//! Watching both catalogues after go-live (MISSION.md §3 rule 5): a mapped product renamed,
//! removed or re-identified on Planexpo (checked by the ingestor each poll cycle) or on inwink
//! (checked by the inspector every `PXSYNC_EXISTENCE_CHECK_INTERVAL`) becomes one
//! `broken_mappings` record naming the mask row to fix. Its lines wait (the emitter holds the
//! row's inwink product), every other product keeps syncing, and a mask import clears it.
//!
//! Cheap when nothing changed: the catalogue read is compared with the fingerprint of the
//! salon's baseline (`catalog_fingerprints`) first; only a different fingerprint compares the
//! mapped products one by one ([`pxsync_core::catalogue::mapping_breaks`]), and the catalogue
//! read then becomes the baseline. The baseline is recorded by the preflight and by
//! `mask import`; an import clears it, and without one only vanished products are found until
//! the catalogue read is adopted as the new baseline.

use pxsync_core::catalogue::{MappingBreak, Side, mapping_breaks};
use pxsync_planexpo::PlanexpoClient;
use pxsync_store::Store;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A catalogue's fingerprint: SHA-256 of its (id, name) pairs in id order.
pub fn fingerprint(products: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (id, name) in products {
        h.update(id.as_bytes());
        h.update(b"\t");
        h.update(name.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Records a catalogue as the salon's baseline on `side`.
pub async fn record_baseline(
    store: &Store,
    ev: &str,
    side: Side,
    products: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    store
        .record_catalog_fingerprint(
            ev,
            side.as_str(),
            &fingerprint(products),
            &serde_json::to_value(products)?,
        )
        .await?;
    Ok(())
}

/// The ingestor's hook, once per poll cycle: checks the Planexpo catalogue of an enabled salon
/// and logs (never fails the feed) when it cannot.
pub async fn watch_planexpo(store: &Store, planexpo: &PlanexpoClient) {
    if let Err(e) = check_planexpo(store, planexpo).await {
        tracing::warn!(
            event = planexpo.event(),
            error = format!("{e:#}"),
            "the Planexpo catalogue could not be checked; the feed goes on"
        );
    }
}

/// Reads the Planexpo catalogue of an enabled salon with a mask and records the mappings it
/// breaks. Returns the breaks found (new or already recorded).
pub async fn check_planexpo(
    store: &Store,
    planexpo: &PlanexpoClient,
) -> anyhow::Result<Vec<MappingBreak>> {
    let ev = planexpo.event();
    if !store
        .salon(ev)
        .await?
        .is_some_and(|s| s.enabled && s.mask_version.is_some())
    {
        return Ok(Vec::new()); // before go-live, the preflight checks the catalogues
    }
    let current: BTreeMap<String, String> = planexpo
        .catalog()
        .await?
        .products
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    check_side(store, ev, Side::Planexpo, &current).await
}

/// Compares a catalogue just read with the salon's baseline on `side` and records the broken
/// mappings of the mask in force. Returns the breaks found (new or already recorded). The
/// mask is read only when the fingerprint differs.
pub async fn check_side(
    store: &Store,
    ev: &str,
    side: Side,
    current: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<MappingBreak>> {
    let print = fingerprint(current);
    let baseline = store.catalog_fingerprint(ev, side.as_str()).await?;
    if baseline.as_ref().is_some_and(|(f, _)| *f == print) {
        return Ok(Vec::new());
    }
    let Some((_, mask)) = store.current_mask(ev).await? else {
        return Ok(Vec::new());
    };
    let breaks = mapping_breaks(side, &mask, baseline.as_ref().map(|(_, p)| p), current);
    for b in &breaks {
        let row = i32::try_from(b.row).ok();
        if store
            .record_mapping_break(
                ev,
                side.as_str(),
                Some(&b.planexpo_product_id),
                &b.inwink_product_id,
                row,
                &b.reason(),
            )
            .await?
        {
            tracing::warn!(
                event = ev,
                side = side.as_str(),
                product = b.product_id(),
                row = b.row,
                "mapping broken: a mapped product changed after set-up"
            );
        }
    }
    store
        .record_catalog_fingerprint(ev, side.as_str(), &print, &serde_json::to_value(current)?)
        .await?;
    Ok(breaks)
}
