//! Verification of Planexpo's signed webhooks (contracts.md A.4), as a pure function: the shell
//! passes the headers, the raw body and the current time.
//!
//! The signature is `sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`, the key being
//! the secret's UTF-8 bytes. A timestamp more than five minutes away, in either direction, is
//! refused: a replayed delivery cannot be accepted later.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a delivery's timestamp may be from now, in seconds.
pub const TOLERANCE_S: i64 = 300;

/// Why a delivery is refused (answered 401, nothing recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    #[error("missing X-Planexpo-Timestamp or X-Planexpo-Signature header")]
    MissingHeader,
    #[error("X-Planexpo-Timestamp is not unix seconds")]
    BadTimestamp,
    #[error("timestamp more than 5 minutes away from now")]
    Stale,
    #[error("X-Planexpo-Signature is not sha256=<hex>")]
    BadSignatureFormat,
    #[error("signature does not match")]
    WrongSignature,
}

/// Verifies one delivery. `now_unix` comes from the caller's clock.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), WebhookRejection> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(WebhookRejection::MissingHeader);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| WebhookRejection::BadTimestamp)?;
    if (now_unix - ts).abs() > TOLERANCE_S {
        return Err(WebhookRejection::Stale);
    }
    let hex_sig = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(WebhookRejection::BadSignatureFormat)?;
    let expected = hex::decode(hex_sig).map_err(|_| WebhookRejection::BadSignatureFormat)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookRejection::WrongSignature)?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookRejection::WrongSignature)
}

/// The signature header value for a delivery (tests and the simulator's counterpart).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = include_bytes!("../../../proto/golden/planexpo/webhook.json");

    #[test]
    fn valid_forged_stale_and_malformed() {
        let now = 1_767_000_000;
        let sig = sign(b"s3cret", now, BODY);
        let ts = now.to_string();
        assert_eq!(
            verify(b"s3cret", Some(&ts), Some(&sig), BODY, now + 299),
            Ok(())
        );
        assert_eq!(
            verify(b"s3cret", Some(&ts), Some(&sig), BODY, now - 300),
            Ok(())
        );
        assert_eq!(
            verify(b"other", Some(&ts), Some(&sig), BODY, now),
            Err(WebhookRejection::WrongSignature)
        );
        let mut tampered = BODY.to_vec();
        tampered[5] ^= 1;
        assert_eq!(
            verify(b"s3cret", Some(&ts), Some(&sig), &tampered, now),
            Err(WebhookRejection::WrongSignature)
        );
        assert_eq!(
            verify(b"s3cret", Some(&ts), Some(&sig), BODY, now + 301),
            Err(WebhookRejection::Stale)
        );
        assert_eq!(
            verify(b"s3cret", Some(&ts), Some(&sig), BODY, now - 301),
            Err(WebhookRejection::Stale)
        );
        assert_eq!(
            verify(b"s3cret", None, Some(&sig), BODY, now),
            Err(WebhookRejection::MissingHeader)
        );
        assert_eq!(
            verify(b"s3cret", Some("soon"), Some(&sig), BODY, now),
            Err(WebhookRejection::BadTimestamp)
        );
        assert_eq!(
            verify(b"s3cret", Some(&ts), Some("md5=00"), BODY, now),
            Err(WebhookRejection::BadSignatureFormat)
        );
        assert_eq!(
            verify(b"s3cret", Some(&ts), Some("sha256=zz"), BODY, now),
            Err(WebhookRejection::BadSignatureFormat)
        );
        // The key is the secret's bytes, never hex-decoded.
        let hexy = sign(b"abcd", now, BODY);
        assert_eq!(
            verify(&[0xab, 0xcd], Some(&ts), Some(&hexy), BODY, now),
            Err(WebhookRejection::WrongSignature)
        );
    }
}
