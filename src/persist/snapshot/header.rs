//! The snapshot header: what a file stands for (journal sequence, time, counts) and how
//! to check its payload (length, SHA-256), behind a magic, a format version and a CRC.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Counts, SnapshotError};

/// Magic bytes at the start of every snapshot file.
pub const MAGIC: [u8; 8] = *b"MEMORASN";
/// Version of the snapshot container this binary writes and reads. A newer binary reads
/// every older version; an older binary refuses a newer file with a message.
pub const SNAPSHOT_FORMAT: u32 = 1;
/// Largest header accepted (a larger length field is damage, not a header).
const MAX_HEADER_BYTES: u32 = 1 << 20;

/// What a snapshot file says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Snapshot container format (equals the version field before the header).
    pub format: u32,
    /// The redb layout version of the payload (`store::STORE_FORMAT` when written).
    pub store_format: u64,
    /// The journal sequence the state stands for: every write acknowledged with a
    /// sequence up to this one is in it, none after.
    pub seq: u64,
    /// When it was taken (RFC 3339 UTC).
    pub created_at: String,
    /// The Memora version that wrote it.
    pub memora_version: String,
    /// Row counts of the payload.
    pub counts: Counts,
    /// Length of the payload in bytes.
    pub payload_bytes: u64,
    /// SHA-256 of the payload, lowercase hex.
    pub payload_sha256: String,
}

impl Header {
    /// Writes the magic, version, header and CRC; returns the bytes written (the offset
    /// of the payload).
    ///
    /// # Errors
    /// The writer's I/O error.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<u64> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let mut buf = Vec::with_capacity(json.len() + 20);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&self.format.to_le_bytes());
        buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
        buf.extend_from_slice(&json);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&buf)?;
        Ok(buf.len() as u64)
    }

    /// Reads and checks the header at the start of `input` (the file at `path`, for
    /// messages); returns it with the payload's offset.
    ///
    /// # Errors
    /// [`SnapshotError::NotASnapshot`] for a wrong magic, [`SnapshotError::NewerFormat`]
    /// for a newer container, [`SnapshotError::Truncated`] when the file ends inside the
    /// header, [`SnapshotError::Corrupted`] for a bad CRC or unreadable JSON.
    pub fn read_from(
        input: &mut impl Read,
        path: &Path,
        file_len: u64,
    ) -> Result<(Header, u64), SnapshotError> {
        let mut fixed = [0u8; 16];
        let have = file_len.min(16) as usize;
        input
            .read_exact(&mut fixed[..have])
            .map_err(|e| SnapshotError::io(path, e))?;
        if have < MAGIC.len() || fixed[..8] != MAGIC {
            return Err(SnapshotError::NotASnapshot {
                path: path.to_owned(),
            });
        }
        if have < 16 {
            return Err(SnapshotError::Truncated {
                path: path.to_owned(),
                expected: 16,
                found: file_len,
            });
        }
        let format = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
        if format > SNAPSHOT_FORMAT {
            return Err(SnapshotError::NewerFormat {
                path: path.to_owned(),
                what: "snapshot",
                found: u64::from(format),
                supported: u64::from(SNAPSHOT_FORMAT),
            });
        }
        if format == 0 {
            return Err(SnapshotError::corrupted(path, "snapshot format 0"));
        }
        let len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]);
        if len > MAX_HEADER_BYTES {
            return Err(SnapshotError::corrupted(
                path,
                format!("impossible header length {len}"),
            ));
        }
        let offset = 16 + u64::from(len) + 4;
        if file_len < offset {
            return Err(SnapshotError::Truncated {
                path: path.to_owned(),
                expected: offset,
                found: file_len,
            });
        }
        let mut rest = vec![0u8; len as usize + 4];
        input
            .read_exact(&mut rest)
            .map_err(|e| SnapshotError::io(path, e))?;
        let (json, crc) = rest.split_at(len as usize);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&fixed);
        hasher.update(json);
        if hasher.finalize().to_le_bytes() != crc {
            return Err(SnapshotError::corrupted(
                path,
                "the header's checksum does not match (the header is damaged)",
            ));
        }
        let header: Header = serde_json::from_slice(json)
            .map_err(|e| SnapshotError::corrupted(path, format!("unreadable header: {e}")))?;
        if header.format != format {
            return Err(SnapshotError::corrupted(
                path,
                format!(
                    "the header says format {} but the file says {format}",
                    header.format
                ),
            ));
        }
        Ok((header, offset))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: SNAPSHOT_FORMAT,
            store_format: 1,
            seq: 42,
            created_at: "2026-11-21T10:15:00Z".into(),
            memora_version: "0.1.0".into(),
            counts: Counts {
                players: 3,
                ..Counts::default()
            },
            payload_bytes: 10,
            payload_sha256: "00".into(),
        }
    }

    fn read(bytes: &[u8]) -> Result<(Header, u64), SnapshotError> {
        Header::read_from(&mut &bytes[..], Path::new("x.snap"), bytes.len() as u64)
    }

    #[test]
    fn round_trips_and_refuses_damage_and_newer_versions() {
        let mut bytes = Vec::new();
        let offset = header().write_to(&mut bytes).unwrap();
        assert_eq!(offset, bytes.len() as u64);
        assert_eq!(read(&bytes).unwrap(), (header(), offset));

        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        let err = read(&flipped).unwrap_err();
        assert!(matches!(err, SnapshotError::Corrupted { .. }), "{err}");

        let err = read(&bytes[..bytes.len() - 2]).unwrap_err();
        assert!(matches!(err, SnapshotError::Truncated { .. }), "{err}");

        let err = read(b"PK\x03\x04 not a snapshot at all").unwrap_err();
        assert!(matches!(err, SnapshotError::NotASnapshot { .. }), "{err}");

        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&(SNAPSHOT_FORMAT + 1).to_le_bytes());
        let err = read(&newer).unwrap_err();
        assert!(matches!(err, SnapshotError::NewerFormat { .. }), "{err}");
        assert!(err.to_string().contains("newer Memora"), "{err}");
    }
}
