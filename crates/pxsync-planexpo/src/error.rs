//! The classified Planexpo error. Messages name the operation, its route template and the
//! event slug, never an order's content or a response body.

use crate::wire::{self, Endpoint};
use pxsync_core::planexpo::WireError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The call an error happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `orders_page`, `order` or `catalog`.
    pub op: &'static str,
    /// The route template (`/api/v1/events/{event}/orders`), never a filled path.
    pub route: &'static str,
    /// The Planexpo event slug.
    pub event: Arc<str>,
}

impl Call {
    pub(crate) fn of(ep: &Endpoint<'_>, event: &Arc<str>) -> Self {
        Call {
            op: ep.name(),
            route: ep.route(),
            event: event.clone(),
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (GET {}) for event {}",
            self.op, self.route, self.event
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanexpoError {
    /// 401: a missing or wrong API key.
    #[error("planexpo {call}: unauthorized (401), check the api key")]
    Unauthorized { call: Call },
    /// 404 on the event: the slug is unknown.
    #[error("planexpo {call}: event not found (404)")]
    EventNotFound { call: Call },
    /// 400 (or another unexpected 4xx): a bad `limit`, cursor or timestamp; `code` names it.
    #[error("planexpo {call}: bad request ({status} {code})")]
    BadRequest {
        call: Call,
        status: u16,
        code: String,
    },
    /// 5xx.
    #[error("planexpo {call}: unavailable ({status}){}",
        retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    Unavailable {
        call: Call,
        status: u16,
        retry_after: Option<Duration>,
    },
    /// 429 (`retry_after` at least 1 s).
    #[error("planexpo {call}: rate limited, retry after {}s", retry_after.as_secs())]
    RateLimited { call: Call, retry_after: Duration },
    /// Timeout, connection refused or reset.
    #[error("planexpo {call}: {}: {detail}", if *timeout { "timed out" } else { "transport error" })]
    Transport {
        call: Call,
        timeout: bool,
        detail: String,
    },
    /// A 2xx whose body is not the expected JSON.
    #[error("planexpo {call}: unexpected body in a {status} answer")]
    Garbage { call: Call, status: u16 },
    /// The configuration cannot work (a base URL that is not http(s), an empty event...).
    #[error("planexpo configuration: {detail}")]
    Config { detail: String },
}

impl PlanexpoError {
    /// Worth retrying later with backoff (honour [`Self::retry_after`]).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PlanexpoError::Unavailable { .. }
                | PlanexpoError::RateLimited { .. }
                | PlanexpoError::Transport { .. }
                | PlanexpoError::Garbage { .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PlanexpoError::RateLimited { retry_after, .. } => Some(*retry_after),
            PlanexpoError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status Planexpo answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            PlanexpoError::Unauthorized { .. } => Some(401),
            PlanexpoError::EventNotFound { .. } => Some(404),
            PlanexpoError::RateLimited { .. } => Some(429),
            PlanexpoError::BadRequest { status, .. }
            | PlanexpoError::Unavailable { status, .. }
            | PlanexpoError::Garbage { status, .. } => Some(*status),
            PlanexpoError::Transport { .. } | PlanexpoError::Config { .. } => None,
        }
    }

    /// Planexpo's error code, for a bad request.
    pub fn code(&self) -> Option<&str> {
        match self {
            PlanexpoError::BadRequest { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// `Retry-After` in whole seconds, at least 1 s; `None` when absent or garbled.
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let secs: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.max(1)))
}

/// What a non-2xx answer means. `Ok(())` is the one non-error: a 404 `order_not_found` on the
/// single-order route.
pub(crate) fn classify(
    call: Call,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> Result<(), PlanexpoError> {
    let code = serde_json::from_slice::<WireError>(body)
        .ok()
        .map(|e| e.code)
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    Err(match status {
        401 => PlanexpoError::Unauthorized { call },
        404 if code == wire::CODE_ORDER_NOT_FOUND && call.op == "order" => return Ok(()),
        404 if code == wire::CODE_EVENT_NOT_FOUND || call.op != "order" => {
            PlanexpoError::EventNotFound { call }
        }
        429 => PlanexpoError::RateLimited {
            call,
            retry_after: parse_retry_after(retry_after).unwrap_or(Duration::from_secs(1)),
        },
        500..=599 => PlanexpoError::Unavailable {
            call,
            status,
            retry_after: parse_retry_after(retry_after),
        },
        _ => PlanexpoError::BadRequest { call, status, code },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ep: Endpoint<'_>) -> Call {
        Call::of(&ep, &Arc::from("salon-sante-2026"))
    }

    fn body(code: &str) -> Vec<u8> {
        format!(r#"{{"code": "{code}", "message": "m"}}"#).into_bytes()
    }

    #[test]
    fn classification() {
        let page = call(Endpoint::OrdersPage);
        let order = call(Endpoint::Order { order_id: "ord_1" });
        assert_eq!(
            classify(page.clone(), 401, None, &body("unauthorized")),
            Err(PlanexpoError::Unauthorized { call: page.clone() })
        );
        assert_eq!(
            classify(page.clone(), 404, None, &body("event_not_found")),
            Err(PlanexpoError::EventNotFound { call: page.clone() })
        );
        assert_eq!(
            classify(
                order.clone(),
                404,
                None,
                include_str!("../../../proto/golden/planexpo/error.json").as_bytes()
            ),
            Ok(())
        );
        assert_eq!(
            classify(order.clone(), 404, None, &body("event_not_found")),
            Err(PlanexpoError::EventNotFound {
                call: order.clone()
            })
        );
        let e = classify(page.clone(), 400, None, &body("limit")).unwrap_err();
        assert_eq!(e.code(), Some("limit"));
        assert!(!e.is_transient());
        let e = classify(page.clone(), 429, Some("0"), b"").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        assert!(e.is_transient());
        let e = classify(page.clone(), 429, None, b"").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        let e = classify(page.clone(), 503, Some("7"), b"").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_transient());
        assert_eq!(e.status(), Some(503));
        let e = classify(page, 502, Some("later"), b"<html>").unwrap_err();
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn messages_name_the_route_and_the_event() {
        let e = PlanexpoError::Unauthorized {
            call: call(Endpoint::OrdersPage),
        };
        assert_eq!(
            e.to_string(),
            "planexpo orders_page (GET /api/v1/events/{event}/orders) for event \
             salon-sante-2026: unauthorized (401), check the api key"
        );
    }
}
