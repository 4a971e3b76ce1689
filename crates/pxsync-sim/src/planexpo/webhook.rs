//! Webhook deliveries (contracts.md A.4) from a background task: a bounded queue that the
//! API never waits on, a few retries, optional duplicates and out-of-order batches.

use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// `PUT /_sim/webhook`
#[derive(Clone, Debug, Serialize)]
pub(crate) struct WebhookConfig {
    #[serde(rename = "url")]
    pub(crate) url: String,
    #[serde(rename = "secret")]
    pub(crate) secret: String,
    #[serde(rename = "duplicate_rate")]
    pub(crate) duplicate_rate: f64,
    #[serde(rename = "reorder")]
    pub(crate) reorder: bool,
}

/// One delivery to make (its config is the one in force when the change happened).
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) config: WebhookConfig,
    /// The raw JSON body, identical for every attempt and duplicate.
    pub(crate) body: String,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    queued: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Stats {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "queued": self.queued.load(Ordering::Relaxed),
            "delivered": self.delivered.load(Ordering::Relaxed),
            "duplicates": self.duplicates.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
        })
    }
}

const QUEUE: usize = 4096;
const ATTEMPTS: u32 = 4;
/// How long a reordering batch waits for more deliveries.
const REORDER_HOLD: Duration = Duration::from_millis(300);
const REORDER_MAX: usize = 32;

/// The sending half of the queue; the worker stops when every sender is gone.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    tx: mpsc::Sender<Delivery>,
    stats: Arc<Stats>,
}

impl Queue {
    /// Starts the worker (needs a tokio runtime).
    pub(crate) fn start() -> Queue {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        tokio::spawn(worker(rx, stats.clone()));
        Queue { tx, stats }
    }

    /// Enqueues without waiting; a full queue drops the delivery (and counts it).
    pub(crate) fn push(&self, delivery: Delivery) {
        match self.tx.try_send(delivery) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("webhook queue full: delivery dropped");
            }
        }
    }

    pub(crate) fn stats(&self) -> Value {
        self.stats.to_json()
    }
}

/// `sha256=` + hex HMAC-SHA256(secret's UTF-8 bytes, `timestamp.body`).
pub(crate) fn signature(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; unreachable in practice.
        Err(_) => return String::from("sha256="),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// reqwest is built without a TLS crypto provider: install ring's once (if nobody did).
pub(crate) fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

async fn worker(mut rx: mpsc::Receiver<Delivery>, stats: Arc<Stats>) {
    ensure_crypto_provider();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client: deliveries dropped");
            while rx.recv().await.is_some() {
                stats.failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    while let Some(first) = rx.recv().await {
        if !first.config.reorder {
            deliver(&client, &stats, &first).await;
            continue;
        }
        // Hold a batch briefly, then send it backwards: out of order by construction.
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + REORDER_HOLD;
        while batch.len() < REORDER_MAX {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(next)) => batch.push(next),
                Ok(None) | Err(_) => break,
            }
        }
        for delivery in batch.iter().rev() {
            deliver(&client, &stats, delivery).await;
        }
    }
}

async fn deliver(client: &reqwest::Client, stats: &Stats, delivery: &Delivery) {
    if send_with_retries(client, delivery).await {
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        if crate::common::chance(delivery.config.duplicate_rate) {
            // Same body (same delivery_id), new timestamp and signature.
            if send_with_retries(client, delivery).await {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
    } else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(url = %delivery.config.url, "webhook delivery failed after retries");
    }
}

async fn send_with_retries(client: &reqwest::Client, delivery: &Delivery) -> bool {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let sig = signature(&delivery.config.secret, &timestamp, &delivery.body);
        let result = client
            .post(&delivery.config.url)
            .header("content-type", "application/json")
            .header("X-Planexpo-Timestamp", &timestamp)
            .header("X-Planexpo-Signature", sig)
            .body(delivery.body.clone())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => return true,
            Ok(resp) => {
                tracing::debug!(status = %resp.status(), attempt, "webhook answered an error")
            }
            Err(e) => tracing::debug!(error = %e, attempt, "webhook delivery error"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 3;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Reference value computed independently (openssl dgst -sha256 -hmac key).
        let sig = signature("key", "1700000000", "{}");
        assert_eq!(
            sig,
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert_ne!(sig, signature("key", "1700000001", "{}"));
        assert_ne!(sig, signature("other", "1700000000", "{}"));
    }
}
