//! The OAuth2 client-credentials token: fetched once, shared by every caller (one fetch at a
//! time behind a tokio mutex), refreshed ahead of expiry by min(60 s, half its lifetime), and
//! dropped after a 401 so the next caller fetches a new one.

use crate::error::{InwinkError, TokenFailure, classify_token};
use crate::wire::{self, TokenForm, WireToken};
use crate::{Secret, transport_detail};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

/// Attempts at the token endpoint before giving up on a 5xx, 429, timeout or garbage.
const TOKEN_ATTEMPTS: u32 = 4;
/// The first backoff between token attempts (then doubled, plus jitter).
const TOKEN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between token attempts, even when `Retry-After` asks for more.
const TOKEN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The lifetime assumed when the token answer has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: Arc<str>,
    refresh_at: Instant,
}

pub(crate) struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
    cached: Mutex<Option<Token>>,
}

/// When to refresh a token of this lifetime, fetched at `now`.
pub(crate) fn refresh_at(now: Instant, lifetime: Duration) -> Instant {
    let ahead = std::cmp::min(Duration::from_secs(60), lifetime / 2);
    now + lifetime.saturating_sub(ahead)
}

/// The wait before token attempt `attempt + 1` (0-based): 100 ms doubled each time, plus up to
/// half of it as jitter; at least what `Retry-After` asked for (capped).
pub(crate) fn token_backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let base = TOKEN_BACKOFF.saturating_mul(1 << attempt.min(10));
    let jitter_ms = fastrand::u64(0..=(base.as_millis() as u64 / 2));
    let backoff = base + Duration::from_millis(jitter_ms);
    backoff
        .max(retry_after.unwrap_or_default())
        .min(TOKEN_BACKOFF_MAX)
}

impl TokenSource {
    pub(crate) fn new(
        http: reqwest::Client,
        token_url: String,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
    ) -> Self {
        TokenSource {
            http,
            token_url,
            client_id,
            client_secret,
            scope,
            cached: Mutex::new(None),
        }
    }

    /// A valid token: the cached one, or a new one (concurrent callers wait for one fetch).
    pub(crate) async fn get(&self) -> Result<Token, InwinkError> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.clone());
        }
        let fresh = self.fetch().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `rejected` (inwink answered 401 to it), unless another caller already replaced it.
    pub(crate) async fn invalidate(&self, rejected: &Token) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(&t.value, &rejected.value))
        {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Token, InwinkError> {
        let mut last_status = None;
        for attempt in 0..TOKEN_ATTEMPTS {
            let span = tracing::info_span!(
                "inwink.token",
                attempt = attempt + 1,
                status = tracing::field::Empty
            );
            let outcome = self.fetch_once().instrument(span.clone()).await;
            let (status, retry_after) = match outcome {
                Ok(token) => return Ok(token),
                Err(TokenFailure::Refused(e)) => {
                    span.record("status", e.status().unwrap_or(0));
                    tracing::warn!(parent: &span, error = %e, "inwink token refused");
                    return Err(e);
                }
                Err(TokenFailure::Retry {
                    status,
                    retry_after,
                }) => (status, retry_after),
            };
            last_status = status;
            if attempt + 1 < TOKEN_ATTEMPTS {
                let wait = token_backoff(attempt, retry_after);
                tracing::debug!(parent: &span, ?status, wait_ms = wait.as_millis() as u64,
                    "inwink token endpoint failed, retrying");
                tokio::time::sleep(wait).await;
            }
        }
        tracing::warn!(
            status = ?last_status,
            attempts = TOKEN_ATTEMPTS,
            "inwink token endpoint kept failing"
        );
        Err(InwinkError::Token {
            status: last_status,
            error: wire::TOKEN_TEMPORARILY_UNAVAILABLE.to_owned(),
        })
    }

    async fn fetch_once(&self) -> Result<Token, TokenFailure> {
        let form = TokenForm {
            grant_type: wire::GRANT_TYPE,
            client_id: &self.client_id,
            client_secret: self.client_secret.expose(),
            scope: self.scope.as_deref(),
        };
        let response = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                tracing::debug!(detail = %transport_detail(&e), "inwink token transport error");
                TokenFailure::Retry {
                    status: None,
                    retry_after: None,
                }
            })?;
        let status = response.status().as_u16();
        tracing::Span::current().record("status", status);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|_| TokenFailure::Retry {
            status: Some(status),
            retry_after: None,
        })?;
        if (200..300).contains(&status)
            && let Ok(t) = serde_json::from_slice::<WireToken>(&body)
            && !t.access_token.is_empty()
        {
            let lifetime = t
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_LIFETIME);
            return Ok(Token {
                value: Arc::from(t.access_token),
                refresh_at: refresh_at(Instant::now(), lifetime),
            });
        }
        Err(classify_token(status, retry_after.as_deref(), &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_ahead_by_min_of_a_minute_and_half_the_lifetime() {
        let now = Instant::now();
        assert_eq!(
            refresh_at(now, Duration::from_secs(3600)),
            now + Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_at(now, Duration::from_secs(2)),
            now + Duration::from_secs(1)
        );
        assert_eq!(
            refresh_at(now, Duration::from_secs(100)),
            now + Duration::from_secs(50)
        );
        assert_eq!(refresh_at(now, Duration::ZERO), now);
    }

    #[test]
    fn token_backoff_doubles_with_bounded_jitter() {
        for attempt in 0..3 {
            let base = TOKEN_BACKOFF * (1 << attempt);
            for _ in 0..50 {
                let b = token_backoff(attempt, None);
                assert!(b >= base && b <= base + base / 2, "{attempt}: {b:?}");
            }
        }
        assert_eq!(
            token_backoff(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            token_backoff(0, Some(Duration::from_secs(60))),
            TOKEN_BACKOFF_MAX
        );
    }
}
