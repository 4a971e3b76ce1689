//! The inspector: finds on inwink what changed without the order changing. It reads the
//! salon's partners and participants page by page (never one call per partner), and:
//! - a synchronised partner or participant that is gone (deleted by hand) is forgotten and its
//!   orders marked: the emitter recreates it with its fields, its products at their floor
//!   (never lower), its team links, and re-points its co-exhibitors;
//! - with the drift sweep on, synchronised fields edited by hand are restored (the next plan
//!   sends every field again);
//! - partners created by hand before the sync that look like an order's (same company name once
//!   case, accents and spaces are normalised, no `planexpo_order_id`) are listed as likely
//!   matches for an operator to adopt with `pxsync link`.
//!
//! One replica inspects at a time (a namespaced advisory lock). Each finding is recorded.

use crate::Shutdown;
use crate::emitter::Clients;
use pxsync_core::desired::matching_name;
use pxsync_inwink::{InwinkError, InwinkReader};
use pxsync_store::{LikelyMatch, Store};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct InspectorSettings {
    /// How often inwink is read for deletions; `None`: never.
    pub interval: Option<Duration>,
    /// How often hand edits are restored too (the drift sweep); `None`: never (the default).
    pub drift_interval: Option<Duration>,
}

impl InspectorSettings {
    pub fn from_args(args: &crate::config::EmitterArgs) -> Self {
        InspectorSettings {
            interval: args.existence_check_interval.filter(|d| !d.is_zero()),
            drift_interval: args.drift_sweep_interval.filter(|d| !d.is_zero()),
        }
    }
}

/// What one inspection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    pub partners_missing: usize,
    pub participants_missing: usize,
    pub repaired: usize,
    pub likely_matches: usize,
}

pub async fn run(
    store: Store,
    clients: Clients,
    settings: InspectorSettings,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let interval = match (settings.interval, settings.drift_interval) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Ok(()),
    };
    let key = store.namespace().lock_key("inspect");
    let mut last_drift = std::time::Instant::now();
    while shutdown.sleep(interval).await {
        let drift = settings
            .drift_interval
            .is_some_and(|d| last_drift.elapsed() >= d);
        if drift {
            last_drift = std::time::Instant::now();
        }
        let conn = match store.client().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "inspector cannot reach Postgres");
                continue;
            }
        };
        let got: bool = match conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
        {
            Ok(r) => r.get(0),
            Err(_) => false,
        };
        if !got {
            continue;
        }
        for salon in store.salons().await.unwrap_or_default() {
            let Some(client) = clients.get(&salon.inwink_event_id) else {
                continue;
            };
            // A disabled salon is only looked at for likely pre-existing partners (read-only),
            // so they are listed before go-live.
            match inspect_salon(
                &store,
                client.reader(),
                &salon.planexpo_event,
                salon.enabled,
                drift,
            )
            .await
            {
                Ok(Ok(found)) if found != Inspection::default() => {
                    tracing::info!(
                        event = salon.planexpo_event,
                        ?found,
                        "inspection found changes on inwink"
                    );
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(event = salon.planexpo_event, error = %e, "inspection could not read inwink")
                }
                Err(e) => tracing::warn!(
                    event = salon.planexpo_event,
                    error = format!("{e:#}"),
                    "inspection failed"
                ),
            }
        }
        let _ = conn.execute("SELECT pg_advisory_unlock($1)", &[&key]).await;
    }
    Ok(())
}

/// Reads every page of a query.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, InwinkError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<pxsync_inwink::Page<T>, InwinkError>>,
{
    let mut items = Vec::new();
    for index in 0..10_000u32 {
        let p = page(index).await?;
        let n = p.items.len();
        items.extend(p.items);
        if n < 100 || items.len() as u64 >= p.total_count {
            break;
        }
    }
    Ok(items)
}

/// Inspects one salon. The outer error is the store's, the inner one inwink's.
pub async fn inspect_salon(
    store: &Store,
    reader: &InwinkReader,
    ev: &str,
    enabled: bool,
    drift: bool,
) -> anyhow::Result<Result<Inspection, InwinkError>> {
    let started = time::OffsetDateTime::now_utc();
    let mut found = Inspection::default();
    let partners = match all_pages(|i| reader.partners_page(i, 100)).await {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let participants = match all_pages(|i| reader.participants_page(i, 100)).await {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let partners_by_id: BTreeMap<&str, &pxsync_inwink::Partner> =
        partners.iter().map(|p| (p.id.as_str(), p)).collect();
    let applied_partners = if enabled {
        store.applied_partners(ev).await?
    } else {
        Vec::new()
    };
    for row in applied_partners {
        if row.updated_at >= started {
            continue; // written after the pages were read
        }
        match partners_by_id.get(row.partner_id.as_str()) {
            None => {
                found.partners_missing += 1;
                store.forget_partner(ev, &row.order_id).await?;
                store
                    .record_heal(ev, Some(&row.order_id), "partner_deleted", &format!(
                        "partner {} was deleted on inwink: recreated with its fields, products at their floor and team links; co-exhibitors re-pointed",
                        row.partner_id
                    ))
                    .await?;
                store
                    .mark_orders(ev, std::slice::from_ref(&row.order_id))
                    .await?;
            }
            Some(p) if drift => {
                if let (Some(sent), Some(seen)) = (&row.sent, p.as_write())
                    && !sent.same_as(&seen)
                {
                    found.repaired += 1;
                    store.clear_partner_sent(ev, &row.order_id).await?;
                    store
                        .record_heal(ev, Some(&row.order_id), "partner_repaired", &format!(
                            "synchronised fields of partner {} were edited on inwink: restored from Planexpo",
                            row.partner_id
                        ))
                        .await?;
                    store
                        .mark_orders(ev, std::slice::from_ref(&row.order_id))
                        .await?;
                }
            }
            Some(_) => {}
        }
    }
    let people_by_id: BTreeMap<&str, &pxsync_inwink::Participant> =
        participants.iter().map(|p| (p.id.as_str(), p)).collect();
    let applied_participants = if enabled {
        store.applied_participants(ev).await?
    } else {
        Vec::new()
    };
    for row in applied_participants {
        if row.updated_at >= started {
            continue;
        }
        let orders = store.orders_with_email(ev, &row.email_key).await?;
        match people_by_id.get(row.participant_id.as_str()) {
            None => {
                found.participants_missing += 1;
                store.forget_participant(ev, &row.email_key).await?;
                for order in &orders {
                    store
                        .record_heal(ev, Some(order), "participant_deleted", &format!(
                            "participant {} (the booking contact) was deleted on inwink: recreated and linked again",
                            row.participant_id
                        ))
                        .await?;
                }
                store.mark_orders(ev, &orders).await?;
            }
            Some(p) if drift => {
                if let Some(sent) = &row.sent
                    && !sent.same_as(&p.as_desired())
                {
                    found.repaired += 1;
                    store.clear_participant_sent(ev, &row.email_key).await?;
                    for order in &orders {
                        store
                            .record_heal(ev, Some(order), "participant_repaired", &format!(
                                "synchronised fields of participant {} were edited on inwink: restored from Planexpo",
                                row.participant_id
                            ))
                            .await?;
                    }
                    store.mark_orders(ev, &orders).await?;
                }
            }
            Some(_) => {}
        }
    }
    // Mapped products renamed, removed or re-identified on inwink (found here even when no
    // order changes).
    if enabled && store.current_mask(ev).await?.is_some() {
        let products = match reader.event_products().await {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let current: BTreeMap<String, String> =
            products.into_iter().map(|p| (p.id, p.name)).collect();
        crate::catalogue::check_side(store, ev, pxsync_core::catalogue::Side::Inwink, &current)
            .await?;
    }
    // Partners created by hand before the sync.
    let mut by_name: BTreeMap<String, Vec<&pxsync_inwink::Partner>> = BTreeMap::new();
    for p in partners
        .iter()
        .filter(|p| p.planexpo_order_id.as_deref().is_none_or(str::is_empty))
    {
        if let Some(name) = &p.name {
            by_name.entry(matching_name(name)).or_default().push(p);
        }
    }
    let mut matches = Vec::new();
    for (order_id, name) in store.orders_without_partner(ev).await? {
        for p in by_name.get(&matching_name(&name)).into_iter().flatten() {
            matches.push(LikelyMatch {
                order_id: order_id.clone(),
                partner_id: p.id.clone(),
                partner_name: p.name.clone().unwrap_or_default(),
            });
        }
    }
    found.likely_matches = matches.len();
    store.replace_likely_matches(ev, &matches).await?;
    Ok(Ok(found))
}
