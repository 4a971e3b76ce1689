//! The classified inwink error, and the classification of an HTTP answer (status, headers,
//! body) into it. Messages name the operation and its route template, never an id of a person,
//! a personal value or a request body.

use crate::wire::{self, WireError, WireTokenError};
use std::fmt;
use std::time::Duration;

/// The call an error happened in: the operation and its route template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The operation (`create_partner`, `set_quantity`, `token`...).
    pub op: &'static str,
    pub method: &'static str,
    /// The route template (`/{eventId}/exhibitor/{id}`), never a filled path.
    pub route: &'static str,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {})", self.op, self.method, self.route)
    }
}

impl Call {
    pub(crate) fn of(ep: &wire::Endpoint<'_>) -> Self {
        Call {
            op: ep.name(),
            method: method_str(&ep.method()),
            route: ep.route(),
        }
    }
}

fn method_str(m: &reqwest::Method) -> &'static str {
    match *m {
        reqwest::Method::GET => "GET",
        reqwest::Method::POST => "POST",
        reqwest::Method::PUT => "PUT",
        reqwest::Method::PATCH => "PATCH",
        reqwest::Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// What went wrong with an inwink call. Each variant carries the [`Call`] it happened in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InwinkError {
    /// 429: inwink's rate limit. `retry_after` is at least 1 s.
    #[error("inwink {call}: rate limited, retry after {}s", retry_after.as_secs())]
    RateLimited { call: Call, retry_after: Duration },
    /// 5xx: the write may have happened (unknown outcome).
    #[error("inwink {call}: unavailable ({status}){}", fmt_retry(*retry_after))]
    Unavailable {
        call: Call,
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Timeout, connection refused or reset: the write may have happened.
    #[error("inwink {call}: {}: {detail}", if *timeout { "timed out" } else { "transport error" })]
    Transport {
        call: Call,
        timeout: bool,
        detail: String,
    },
    /// A 2xx whose body is not the expected JSON: the write may have happened.
    #[error("inwink {call}: unexpected body in a {status} answer")]
    Garbage { call: Call, status: u16 },
    /// 401 again after one token refresh.
    #[error("inwink {call}: unauthorized (401 after a token refresh)")]
    Unauthorized { call: Call },
    /// 404: `event_not_found`, `partner_not_found`, `participant_not_found`,
    /// `team_member_not_found`, `product_not_found`.
    #[error("inwink {call}: not found ({code})")]
    NotFound { call: Call, code: String },
    /// 409 `duplicate_key`; `existing_id` is the record that already holds the key.
    #[error("inwink {call}: conflict ({code})")]
    Conflict {
        call: Call,
        code: String,
        existing_id: Option<String>,
    },
    /// 400 (or another 4xx): a validation error, `code` names the field or rule;
    /// `quantity_decrease` carries the stored quantity in `current`. Never retry as is.
    #[error("inwink {call}: rejected ({status} {code}){}", fmt_current(*current))]
    Rejected {
        call: Call,
        status: u16,
        code: String,
        current: Option<u32>,
    },
    /// The token endpoint refused (`invalid_client`...), or kept failing
    /// (`temporarily_unavailable`, which is transient).
    #[error("inwink token endpoint: {error}{}", fmt_status(*status))]
    Token { status: Option<u16>, error: String },
    /// The configuration cannot work (a base URL that is not http(s), an empty event id...).
    #[error("inwink configuration: {detail}")]
    Config { detail: String },
}

fn fmt_retry(d: Option<Duration>) -> String {
    d.map(|d| format!(", retry after {}s", d.as_secs()))
        .unwrap_or_default()
}

fn fmt_current(c: Option<u32>) -> String {
    c.map(|c| format!(", current quantity {c}"))
        .unwrap_or_default()
}

fn fmt_status(s: Option<u16>) -> String {
    s.map(|s| format!(" ({s})")).unwrap_or_default()
}

impl InwinkError {
    /// Worth retrying later, with backoff (honour [`Self::retry_after`]).
    pub fn is_transient(&self) -> bool {
        match self {
            InwinkError::RateLimited { .. }
            | InwinkError::Unavailable { .. }
            | InwinkError::Transport { .. }
            | InwinkError::Garbage { .. } => true,
            InwinkError::Token { error, .. } => error == wire::TOKEN_TEMPORARILY_UNAVAILABLE,
            _ => false,
        }
    }

    /// A write may have happened: look before writing again.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            InwinkError::Unavailable { .. }
                | InwinkError::Transport { .. }
                | InwinkError::Garbage { .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            InwinkError::RateLimited { retry_after, .. } => Some(*retry_after),
            InwinkError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status inwink answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            InwinkError::RateLimited { .. } => Some(429),
            InwinkError::Unavailable { status, .. }
            | InwinkError::Garbage { status, .. }
            | InwinkError::Rejected { status, .. } => Some(*status),
            InwinkError::Unauthorized { .. } => Some(401),
            InwinkError::NotFound { .. } => Some(404),
            InwinkError::Conflict { .. } => Some(409),
            InwinkError::Token { status, .. } => *status,
            InwinkError::Transport { .. } | InwinkError::Config { .. } => None,
        }
    }

    /// inwink's error code (or the OAuth error of the token endpoint).
    pub fn code(&self) -> Option<&str> {
        match self {
            InwinkError::NotFound { code, .. }
            | InwinkError::Conflict { code, .. }
            | InwinkError::Rejected { code, .. } => Some(code),
            InwinkError::Token { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The call the error happened in (`None` for the token endpoint and the configuration).
    pub fn call(&self) -> Option<Call> {
        match self {
            InwinkError::RateLimited { call, .. }
            | InwinkError::Unavailable { call, .. }
            | InwinkError::Transport { call, .. }
            | InwinkError::Garbage { call, .. }
            | InwinkError::Unauthorized { call }
            | InwinkError::NotFound { call, .. }
            | InwinkError::Conflict { call, .. }
            | InwinkError::Rejected { call, .. } => Some(*call),
            InwinkError::Token { .. } | InwinkError::Config { .. } => None,
        }
    }
}

/// The error code used when an error answer has no readable `code`.
pub(crate) const UNKNOWN_CODE: &str = "unknown";

/// `Retry-After` in whole seconds, at least 1 s; `None` when absent or not a number of seconds.
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let secs: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.max(1)))
}

/// Classifies a non-2xx API answer (401 included: the caller handles the refresh first).
pub(crate) fn classify(
    call: Call,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> InwinkError {
    let parsed: Option<WireError> = serde_json::from_slice(body).ok();
    let code = || {
        parsed
            .as_ref()
            .map(|e| e.code.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| UNKNOWN_CODE.to_owned())
    };
    match status {
        429 => InwinkError::RateLimited {
            call,
            retry_after: parse_retry_after(retry_after).unwrap_or(Duration::from_secs(1)),
        },
        500..=599 => InwinkError::Unavailable {
            call,
            status,
            retry_after: parse_retry_after(retry_after),
        },
        401 => InwinkError::Unauthorized { call },
        404 => InwinkError::NotFound { call, code: code() },
        409 => InwinkError::Conflict {
            call,
            code: code(),
            existing_id: parsed.as_ref().and_then(|e| e.existing_id.clone()),
        },
        _ => InwinkError::Rejected {
            call,
            status,
            code: code(),
            current: parsed.as_ref().and_then(|e| e.current),
        },
    }
}

/// What a token endpoint answer that is not a token means.
pub(crate) enum TokenFailure {
    /// Refused for good (an OAuth error body, or another 4xx): report at once.
    Refused(InwinkError),
    /// Worth another attempt (5xx, 429, garbage, transport), after at least `retry_after`.
    Retry {
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
}

/// Classifies a token endpoint answer that is not a usable token.
pub(crate) fn classify_token(status: u16, retry_after: Option<&str>, body: &[u8]) -> TokenFailure {
    if (200..300).contains(&status) || status == 429 || (500..=599).contains(&status) {
        return TokenFailure::Retry {
            status: Some(status),
            retry_after: parse_retry_after(retry_after),
        };
    }
    match serde_json::from_slice::<WireTokenError>(body) {
        Ok(e) if e.error == wire::TOKEN_TEMPORARILY_UNAVAILABLE => TokenFailure::Retry {
            status: Some(status),
            retry_after: parse_retry_after(retry_after),
        },
        Ok(e) => TokenFailure::Refused(InwinkError::Token {
            status: Some(status),
            error: e.error,
        }),
        Err(_) => TokenFailure::Refused(InwinkError::Token {
            status: Some(status),
            error: format!("unexpected_status_{status}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CALL: Call = Call {
        op: "set_quantity",
        method: "PUT",
        route: "/{eventId}/exhibitor/{id}/products/{productId}",
    };

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn err(code: &str) -> Vec<u8> {
        body(json!({"code": code, "message": "m"}))
    }

    #[test]
    fn every_not_found_code_is_kept() {
        for code in [
            "event_not_found",
            "partner_not_found",
            "participant_not_found",
            "team_member_not_found",
            "product_not_found",
        ] {
            let e = classify(CALL, 404, None, &err(code));
            assert_eq!(
                e,
                InwinkError::NotFound {
                    call: CALL,
                    code: code.into()
                }
            );
            assert!(!e.is_transient() && !e.outcome_unknown());
            assert_eq!(e.status(), Some(404));
            assert_eq!(e.code(), Some(code));
        }
    }

    #[test]
    fn duplicate_key_carries_the_existing_id() {
        let e = classify(
            CALL,
            409,
            None,
            &body(json!({"code": "duplicate_key", "message": "m", "existingId": "abc"})),
        );
        assert_eq!(
            e,
            InwinkError::Conflict {
                call: CALL,
                code: "duplicate_key".into(),
                existing_id: Some("abc".into())
            }
        );
        assert!(!e.is_transient());
        assert_eq!(e.status(), Some(409));
    }

    #[test]
    fn validation_codes_and_quantity_decrease() {
        let e = classify(
            CALL,
            400,
            None,
            include_str!("../../../proto/golden/inwink/error_decrease.json").as_bytes(),
        );
        assert_eq!(
            e,
            InwinkError::Rejected {
                call: CALL,
                status: 400,
                code: "quantity_decrease".into(),
                current: Some(10)
            }
        );
        for code in [
            "quantity",
            "name",
            "status",
            "affiliatedToId",
            "email",
            "page",
        ] {
            let e = classify(CALL, 400, None, &err(code));
            assert_eq!(e.code(), Some(code));
            assert_eq!(e.status(), Some(400));
            assert!(!e.is_transient() && !e.outcome_unknown());
        }
        let e = classify(CALL, 400, None, b"not json");
        assert_eq!(e.code(), Some(UNKNOWN_CODE));
    }

    #[test]
    fn rate_limit_honours_retry_after_at_least_one_second() {
        let ra = |v: Option<&str>| classify(CALL, 429, v, &err("rate_limited")).retry_after();
        assert_eq!(ra(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(ra(Some(" 2 ")), Some(Duration::from_secs(2)));
        assert_eq!(ra(Some("0")), Some(Duration::from_secs(1)));
        assert_eq!(ra(None), Some(Duration::from_secs(1)));
        assert_eq!(ra(Some("soon")), Some(Duration::from_secs(1)));
        assert_eq!(
            ra(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::from_secs(1))
        );
        let e = classify(CALL, 429, Some("2"), b"");
        assert!(e.is_transient() && !e.outcome_unknown());
        assert_eq!(e.status(), Some(429));
    }

    #[test]
    fn server_errors_are_transient_with_unknown_outcome() {
        let e = classify(CALL, 503, Some("4"), b"");
        assert_eq!(
            e,
            InwinkError::Unavailable {
                call: CALL,
                status: 503,
                retry_after: Some(Duration::from_secs(4))
            }
        );
        assert!(e.is_transient() && e.outcome_unknown());
        let e = classify(CALL, 500, None, &err("internal"));
        assert_eq!(e.retry_after(), None);
        assert_eq!(e.status(), Some(500));
        assert!(e.is_transient() && e.outcome_unknown());
        let g = InwinkError::Garbage {
            call: CALL,
            status: 200,
        };
        assert!(g.is_transient() && g.outcome_unknown());
        let t = InwinkError::Transport {
            call: CALL,
            timeout: true,
            detail: "x".into(),
        };
        assert!(t.is_transient() && t.outcome_unknown() && t.status().is_none());
    }

    #[test]
    fn token_endpoint_answers() {
        let refused = classify_token(
            401,
            None,
            include_str!("../../../proto/golden/inwink/token_error.json").as_bytes(),
        );
        match refused {
            TokenFailure::Refused(e) => {
                assert_eq!(
                    e,
                    InwinkError::Token {
                        status: Some(401),
                        error: "invalid_client".into()
                    }
                );
                assert!(!e.is_transient() && !e.outcome_unknown());
            }
            TokenFailure::Retry { .. } => panic!("an OAuth error is not retried"),
        }
        assert!(matches!(
            classify_token(503, Some("1"), b""),
            TokenFailure::Retry {
                status: Some(503),
                retry_after: Some(_)
            }
        ));
        assert!(matches!(
            classify_token(200, None, b"<html>"),
            TokenFailure::Retry { .. }
        ));
        assert!(matches!(
            classify_token(403, None, b""),
            TokenFailure::Refused(InwinkError::Token { .. })
        ));
        let kept_failing = InwinkError::Token {
            status: Some(503),
            error: wire::TOKEN_TEMPORARILY_UNAVAILABLE.into(),
        };
        assert!(kept_failing.is_transient() && !kept_failing.outcome_unknown());
    }

    #[test]
    fn messages_name_the_call_never_the_body() {
        let e = classify(
            CALL,
            409,
            None,
            &body(
                json!({"code": "duplicate_key", "message": "claire@x.example exists",
                         "existingId": "abc"}),
            ),
        );
        let text = e.to_string();
        assert_eq!(
            text,
            "inwink set_quantity (PUT /{eventId}/exhibitor/{id}/products/{productId}): \
             conflict (duplicate_key)"
        );
        assert!(!text.contains("claire"));
        let e = classify(CALL, 400, None, &err("quantity_decrease"));
        assert!(e.to_string().starts_with("inwink set_quantity"));
    }
}
