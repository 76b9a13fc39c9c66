//! The one encoding of everything written to disk: a format-version byte followed by
//! bincode 2 (serde, standard config). The version byte lets a later release migrate or
//! switch encodings (architecture.md: "keep a format-version byte in every record").

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Current format version of records written by this binary.
pub const RECORD_FORMAT: u8 = 1;

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is empty (no version byte).
    #[error("empty record")]
    Empty,
    /// Written by a newer binary (or garbage): refuse rather than guess.
    #[error(
        "record format version {found} is not supported (this binary reads up to {RECORD_FORMAT})"
    )]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// The bytes do not decode as the expected type.
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// Encodes `value` as `[RECORD_FORMAT][bincode]`.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT];
    // Encoding into a Vec only fails for types serde cannot describe to bincode, which
    // is a programming error caught by the round-trip tests of every record type.
    match bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard()) {
        Ok(_) => out,
        Err(e) => panic!("record type cannot be encoded with bincode: {e}"),
    }
}

/// Decodes bytes written by [`encode`].
///
/// # Errors
/// [`DecodeError`] for an empty record, an unknown version byte or malformed bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != RECORD_FORMAT {
        return Err(DecodeError::UnknownVersion { found: version });
    }
    let (value, used) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            body.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let v = (String::from("a"), 7u64, Some(vec![1u8, 2]));
        let bytes = encode(&v);
        assert_eq!(bytes[0], RECORD_FORMAT);
        let back: (String, u64, Option<Vec<u8>>) = decode(&bytes).expect("decode");
        assert_eq!(back, v);
        assert_eq!(decode::<u8>(&[]), Err(DecodeError::Empty));
        let mut newer = bytes.clone();
        newer[0] = RECORD_FORMAT + 1;
        assert_eq!(
            decode::<(String, u64, Option<Vec<u8>>)>(&newer),
            Err(DecodeError::UnknownVersion {
                found: RECORD_FORMAT + 1
            })
        );
        let mut longer = bytes;
        longer.push(0);
        assert!(matches!(
            decode::<(String, u64, Option<Vec<u8>>)>(&longer),
            Err(DecodeError::Malformed(_))
        ));
    }
}
