//! `PXSYNC_NAMESPACE`: the one name that isolates everything two deployments (or two tests) could
//! share on the same servers: the Postgres schema, stream names, subjects, consumer names and
//! advisory-lock keys.

use sha2::{Digest, Sha256};
use std::fmt;

/// A validated namespace: 1 to 40 characters of `a-z`, `0-9` and `_`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PXSYNC_NAMESPACE must be 1 to 40 characters of a-z, 0-9 and _, starting with a letter")]
pub struct BadNamespace;

impl Namespace {
    pub fn new(name: &str) -> Result<Self, BadNamespace> {
        let ok = !name.is_empty()
            && name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Namespace(name.to_owned()))
        } else {
            Err(BadNamespace)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Postgres schema holding every table of this namespace (and its migration history).
    pub fn schema(&self) -> String {
        format!("pxsync_{}", self.0)
    }

    /// The JetStream stream of order events.
    pub fn stream(&self) -> String {
        format!("PXSYNC_{}_ORDERS", self.0.to_uppercase())
    }

    /// The subject of one order's events: `<ns>.orders.<event>.<order_id>`.
    pub fn order_subject(&self, planexpo_event: &str, order_id: &str) -> String {
        format!(
            "{}.orders.{}.{}",
            self.0,
            subject_token(planexpo_event),
            subject_token(order_id)
        )
    }

    /// Every order subject of this namespace.
    pub fn orders_wildcard(&self) -> String {
        format!("{}.orders.>", self.0)
    }

    /// A Postgres advisory-lock key for `purpose` (e.g. "migrate", "poll:salon-2026") in this
    /// namespace.
    pub fn lock_key(&self, purpose: &str) -> i64 {
        let digest = Sha256::digest(format!("{}\n{purpose}", self.0).as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }

    /// The LISTEN/NOTIFY channel for `purpose`.
    pub fn channel(&self, purpose: &str) -> String {
        format!("pxsync_{}_{purpose}", self.0)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A NATS subject token: characters outside `A-Za-z0-9_-` become `_` (the payload, not the
/// subject, is the authority on ids).
pub fn subject_token(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_isolated_per_namespace() {
        let a = Namespace::new("t_alpha1").unwrap();
        let b = Namespace::new("t_beta").unwrap();
        assert_eq!(a.schema(), "pxsync_t_alpha1");
        assert_eq!(a.stream(), "PXSYNC_T_ALPHA1_ORDERS");
        assert_eq!(
            a.order_subject("santexpo-2024", "ord.7 *>"),
            "t_alpha1.orders.santexpo-2024.ord_7___"
        );
        assert_ne!(a.lock_key("migrate"), b.lock_key("migrate"));
        assert_ne!(a.lock_key("migrate"), a.lock_key("poll:x"));
        for bad in ["", "Upper", "1abc", "a-b", "a.b", &"x".repeat(41)] {
            assert!(Namespace::new(bad).is_err(), "{bad}");
        }
    }
}
