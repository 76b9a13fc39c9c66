//! Content hashes and version stamps of compiled files.
//!
//! A compiled file is serialized once *without* its `version` and `generated_at` fields
//! (the "body"); its [`ContentHash`] is taken over that body, so a file whose content did
//! not change keeps its hash across builds (content.md: "the `version`/`generated_at`
//! fields excepted when comparing"). The stamped file is the body with
//! `"version":V,"generated_at":"G",` spliced in right after the opening brace, which makes
//! stripping the stamp back off a prefix operation that needs no JSON parsing.

use std::fmt;

use sha2::{Digest, Sha256};

/// The first 8 bytes of the SHA-256 of a file's body; shown as 16 hex digits in `?v=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 8]);

impl ContentHash {
    /// The hash of a body (an unstamped serialization).
    pub fn of_body(body: &[u8]) -> ContentHash {
        finish(Sha256::new().chain_update(body))
    }

    /// The hash of a stamped file's body, or `None` if `file` does not start with a stamp
    /// as written by [`stamp`] (then it was not written by a build and counts as changed).
    pub fn of_stamped(file: &[u8]) -> Option<ContentHash> {
        let rest = &file[stamp_len(file)?..];
        let hasher = if rest.first() == Some(&b'}') {
            Sha256::new().chain_update(b"{").chain_update(rest)
        } else {
            Sha256::new().chain_update(b"{").chain_update(&rest[1..])
        };
        Some(finish(hasher))
    }
}

fn finish(hasher: Sha256) -> ContentHash {
    let digest = hasher.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    ContentHash(out)
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

const VERSION_KEY: &[u8] = b"{\"version\":";
const GENERATED_KEY: &[u8] = b",\"generated_at\":\"";

/// The body (a serialized JSON object) with `version` and `generated_at` spliced in
/// first. `generated_at` must be an RFC 3339 string without quotes or escapes.
pub fn stamp(body: &[u8], version: i64, generated_at: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(VERSION_KEY);
    out.extend_from_slice(version.to_string().as_bytes());
    out.extend_from_slice(GENERATED_KEY);
    out.extend_from_slice(generated_at.as_bytes());
    out.push(b'"');
    match body {
        [b'{', b'}'] | [] => out.push(b'}'),
        [b'{', rest @ ..] => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        other => out.extend_from_slice(other),
    }
    out
}

/// Length of the stamp prefix of `file`, up to (not including) the `,` or `}` that
/// follows the `generated_at` value.
fn stamp_len(file: &[u8]) -> Option<usize> {
    let after_key = file.strip_prefix(VERSION_KEY)?;
    let digits = after_key
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'-')
        .count();
    let after_version = after_key[digits..].strip_prefix(GENERATED_KEY)?;
    let quote = after_version.iter().position(|b| *b == b'"')?;
    let len = VERSION_KEY.len() + digits + GENERATED_KEY.len() + quote + 1;
    matches!(file.get(len), Some(b',' | b'}')).then_some(len)
}

/// The `version` of a stamped file (e.g. the previous manifest), if it has a stamp.
pub fn stamped_version(file: &[u8]) -> Option<i64> {
    stamp_len(file)?;
    let after_key = file.strip_prefix(VERSION_KEY)?;
    let digits = after_key
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'-')
        .count();
    std::str::from_utf8(&after_key[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamping_keeps_the_body_hash_and_the_version_reads_back() {
        let body = br#"{"id":"a","n":[1,2]}"#;
        let stamped = stamp(body, 1_700_000_000, "2023-11-14T22:13:20Z");
        let v: serde_json::Value = serde_json::from_slice(&stamped).expect("valid JSON");
        assert_eq!(v["version"], 1_700_000_000);
        assert_eq!(v["id"], "a");
        assert_eq!(
            ContentHash::of_stamped(&stamped),
            Some(ContentHash::of_body(body))
        );
        assert_eq!(stamped_version(&stamped), Some(1_700_000_000));
        let empty = stamp(b"{}", 5, "1970-01-01T00:00:05Z");
        assert_eq!(
            ContentHash::of_stamped(&empty),
            Some(ContentHash::of_body(b"{}"))
        );
        assert_eq!(ContentHash::of_stamped(b"{\"id\":1}"), None);
    }
}
