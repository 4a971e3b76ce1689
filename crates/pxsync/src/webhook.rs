//! The webhook receiver: `POST /webhooks/planexpo` (contracts.md A.4).
//!
//! The signature and the timestamp are verified before anything else (bad or missing → 401,
//! nothing recorded, a warning without the body). The payload is thin: the order is fetched
//! from Planexpo and ingested exactly as polling would, so duplicate and out-of-order deliveries
//! publish nothing new (dedupe on order id and revision). Webhooks never move the watermark:
//! only a complete pass over the feed does.

use crate::Shutdown;
use crate::ingestor::{Salon, ingest_orders};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pxsync_bus::Bus;
use pxsync_core::planexpo::WireWebhook;
use pxsync_core::webhook::verify;
use pxsync_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The clock the receiver checks timestamps against (unix seconds); injectable for tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| time::OffsetDateTime::now_utc().unix_timestamp())
}

#[derive(Clone)]
pub struct Receiver {
    pub store: Store,
    pub bus: Bus,
    /// Salons served, by Planexpo event slug.
    pub salons: BTreeMap<String, Salon>,
    /// The signing secret of each salon (by Planexpo event slug).
    pub secrets: Arc<BTreeMap<String, Vec<u8>>>,
    pub clock: Clock,
}

pub fn router(receiver: Receiver) -> axum::Router {
    axum::Router::new()
        .route("/webhooks/planexpo", post(receive))
        .with_state(receiver)
}

/// Serves the receiver until the shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    receiver: Receiver,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(receiver))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: bytes::Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // The signature is checked before anything else is read: against each salon's secret.
    let (ts, sig, now) = (
        header("x-planexpo-timestamp"),
        header("x-planexpo-signature"),
        (r.clock)(),
    );
    let mut signed_by: Option<&str> = None;
    let mut rejection = None;
    for (event, secret) in r.secrets.iter() {
        match verify(secret, ts, sig, &body, now) {
            Ok(()) => {
                signed_by = Some(event);
                break;
            }
            Err(e) => rejection = Some(e),
        }
    }
    let Some(signed_by) = signed_by else {
        let reason = rejection.map_or_else(
            || "no webhook secret configured".to_owned(),
            |e| e.to_string(),
        );
        tracing::warn!(reason, "webhook refused");
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(delivery) = serde_json::from_slice::<WireWebhook>(&body) else {
        tracing::warn!("webhook signed but not a delivery body");
        return StatusCode::BAD_REQUEST;
    };
    if r.salons.contains_key(&delivery.event)
        && r.secrets.get(&delivery.event).map(Vec::as_slice)
            != r.secrets.get(signed_by).map(Vec::as_slice)
    {
        tracing::warn!(
            event = delivery.event,
            "webhook signed with another salon's secret: refused"
        );
        return StatusCode::UNAUTHORIZED;
    }
    let Some(salon) = r.salons.get(&delivery.event) else {
        tracing::debug!(
            event = delivery.event,
            "webhook for a salon this ingestor does not serve: ignored"
        );
        return StatusCode::ACCEPTED;
    };
    match salon.planexpo.order(&delivery.order_id).await {
        Ok(Some(order)) => match ingest_orders(&r.store, &r.bus, salon, vec![order], false).await {
            Ok(published) => {
                tracing::debug!(
                    order = delivery.order_id,
                    action = delivery.action,
                    published,
                    "webhook ingested"
                );
                StatusCode::OK
            }
            Err(e) => {
                tracing::warn!(
                    order = delivery.order_id,
                    error = format!("{e:#}"),
                    "webhook not ingested (polling will catch up)"
                );
                StatusCode::SERVICE_UNAVAILABLE
            }
        },
        Ok(None) => StatusCode::OK,
        Err(e) => {
            tracing::warn!(order = delivery.order_id, error = %e, "cannot fetch the order of a webhook (polling will catch up)");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}
