//! Minimal base64 (RFC 4648): URL-safe without padding for the opaque feed cursors, and a
//! lenient decoder (standard or URL-safe alphabet, padding optional) for HTTP Basic.

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding.
pub(crate) fn encode_url(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = ((n >> (18 - 6 * i)) & 0x3f) as usize;
            out.push(char::from(URL_SAFE[idx]));
        }
    }
    out
}

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes either alphabet, with or without `=` padding. `None` on any invalid input.
pub(crate) fn decode(input: &str) -> Option<Vec<u8>> {
    let trimmed = input.trim().trim_end_matches('=');
    let bytes = trimmed.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        for i in 0..produced {
            out.push(((n >> (16 - 8 * i)) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "pxsync-sim:inwink-sim-secret",
            "é|ü~~?",
        ] {
            let enc = encode_url(s.as_bytes());
            assert!(!enc.contains('='));
            assert_eq!(decode(&enc).as_deref(), Some(s.as_bytes()));
        }
    }

    #[test]
    fn decodes_standard_alphabet_with_padding() {
        // "pxsync-sim:inwink-sim-secret" as produced by any HTTP client for Basic auth.
        assert_eq!(
            decode("cHhzeW5jLXNpbTppbndpbmstc2ltLXNlY3JldA==").as_deref(),
            Some(&b"pxsync-sim:inwink-sim-secret"[..])
        );
        assert_eq!(decode("Pz8/").as_deref(), Some(&b"???"[..]));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode("a"), None);
        assert_eq!(decode("ab!d"), None);
        assert_eq!(decode("é"), None);
    }
}
