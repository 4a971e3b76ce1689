//! Telling a reference to a secret from a secret. The prerequisites sheet holds ids and
//! references (`env:NAME`, `secret:name/key`), never a secret; these functions only answer
//! yes or no, so no caller ever has a reason to print the value.

use crate::text::words;

/// `env:NAME` (NAME = letters, digits, `_`, not starting with a digit) or `secret:name/key`
/// (a Kubernetes secret name and one of its keys). The prefix is case-insensitive.
pub(crate) fn is_reference(value: &str) -> bool {
    let v = value.trim();
    if let Some(name) = strip_prefix_ci(v, "env:") {
        let mut chars = name.chars();
        return chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    }
    if let Some(rest) = strip_prefix_ci(v, "secret:") {
        let Some((name, key)) = rest.split_once('/') else {
            return false;
        };
        let name_ok = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        let key_ok = !key.is_empty()
            && key.len() <= 253
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        return name_ok && key_ok;
    }
    false
}

/// Whether the value is written like a reference (even a malformed one).
pub(crate) fn looks_like_reference(value: &str) -> bool {
    let v = value.trim();
    strip_prefix_ci(v, "env:").is_some() || strip_prefix_ci(v, "secret:").is_some()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// Whether a key names something secret ("Référence de la clé API", "client secret",
/// "password", "token"...): its value must then be a reference.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let w = words(key);
    let joined = w.join(" ");
    let has = |x: &str| w.iter().any(|t| t == x);
    has("secret")
        || has("secrets")
        || has("password")
        || has("passwd")
        || has("token")
        || has("jeton")
        || has("apikey")
        || joined.contains("api key")
        || joined.contains("cle api")
        || joined.contains("cle d api")
        || joined.contains("mot de passe")
        || joined.contains("private key")
        || joined.contains("cle privee")
}

fn is_uuid(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether a value looks like a credential: a long random-looking token (mixed letters and
/// digits, as API keys, client secrets and JWTs are), or a URL carrying a password or a
/// token. `id_like` (the value of a key that holds an id) tolerates long lowercase or hex ids.
pub(crate) fn looks_like_secret(value: &str, id_like: bool) -> bool {
    let v = value.trim();
    if v.is_empty() || is_reference(v) {
        return false;
    }
    if let Some((_, rest)) = v.split_once("://") {
        return url_has_credentials(rest);
    }
    if v.chars().count() < 20 || v.chars().any(char::is_whitespace) || is_uuid(v) {
        return false;
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=_-.~:".contains(c))
    {
        return false;
    }
    v.split(['-', '_', '.', '~', ':']).any(|seg| {
        let letters = seg.chars().filter(char::is_ascii_alphabetic).count();
        let digits = seg.chars().filter(char::is_ascii_digit).count();
        let upper = seg.chars().any(|c| c.is_ascii_uppercase());
        let lower = seg.chars().any(|c| c.is_ascii_lowercase());
        let len = seg.chars().count();
        if len < 16 || letters == 0 || digits == 0 {
            return false;
        }
        (upper && lower) || len >= if id_like { 48 } else { 24 }
    })
}

/// `user:password@host`, or a query parameter named like a credential with a value.
fn url_has_credentials(after_scheme: &str) -> bool {
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && userinfo.contains(':')
    {
        return true;
    }
    let Some((_, query)) = after_scheme.split_once('?') else {
        return false;
    };
    query.split(['&', ';']).any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = k.to_ascii_lowercase();
        !v.is_empty()
            && [
                "key",
                "token",
                "secret",
                "password",
                "pwd",
                "sig",
                "signature",
                "auth",
            ]
            .iter()
            .any(|w| k.contains(w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        for ok in [
            "env:PXSYNC_PLANEXPO_API_KEY",
            "ENV:_X1",
            "secret:pxsync-inwink/client-secret",
            "secret:pxsync.inwink/client_secret.txt",
            " env:A ",
        ] {
            assert!(is_reference(ok), "{ok}");
        }
        for bad in [
            "env:",
            "env:1ABC",
            "env:A-B",
            "secret:pxsync",
            "secret:/key",
            "secret:Pxsync/key",
            "secret:-x/key",
            "secret:x/",
            "PXSYNC_PLANEXPO_API_KEY",
            "hunter2",
        ] {
            assert!(!is_reference(bad), "{bad}");
        }
    }

    #[test]
    fn secret_keys() {
        for k in [
            "Référence de la clé API Planexpo",
            "Planexpo API key reference",
            "inwink client secret reference",
            "api_key",
            "Mot de passe",
            "password",
            "Jeton d'accès",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "URL de base Planexpo",
            "inwink client id",
            "ID de l'événement inwink",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn tokens() {
        for s in [
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==",
            "https://user:hunter2@planexpo.example",
            "https://planexpo.example/api?api_key=abc",
        ] {
            assert!(looks_like_secret(s, false), "{s}");
        }
        assert!(looks_like_secret("aB3dE5fG7hJ9kL1mN3pQ5rS7", true));
        for s in [
            "https://organisateur.planexpo.fr",
            "https://organisateur.planexpo.fr/api?event=santexpo-2024",
            "santexpo-2024",
            "salon-international-de-l-agriculture-2026",
            "3f2b8c1e-9d4a-4b6e-8f00-1234567890ab",
            "pxsync-mon-salon",
            "env:PXSYNC_WEBHOOK_SECRET",
            "id-evenement-inwink",
            "4eC39HqLy",
            "",
        ] {
            assert!(!looks_like_secret(s, false), "{s}");
        }
        // A lowercase hex id in an id field passes; the same length in another field does not.
        let hex32 = "0123456789abcdef0123456789abcdef";
        assert!(!looks_like_secret(hex32, true));
        assert!(looks_like_secret(hex32, false));
    }
}
