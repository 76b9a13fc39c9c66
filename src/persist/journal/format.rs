//! The on-disk format: segment names, the segment header and record framing
//! (`docs/journal.md` describes the same bytes in prose).

use std::path::{Path, PathBuf};

/// The record format version this binary writes and reads.
pub const RECORD_VERSION: u8 = 1;
/// The segment header format version this binary writes and reads.
pub const SEGMENT_VERSION: u32 = 1;
/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MEMORAWL";
/// Segment header: magic (8) + segment version u32 LE (4) + reserved u32 (4) + first seq u64 LE (8).
pub const HEADER_LEN: usize = 24;
/// Fixed part of a record before the payload: len u32 + crc u32 + seq u64 + version u8.
pub const RECORD_OVERHEAD: usize = 17;
/// Bytes counted by a record's length field besides the payload: seq u64 + version u8.
const LEN_FIXED: usize = 9;
/// Largest payload accepted, in bytes (16 MiB): a length field above this is damage.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

const NAME_PREFIX: &str = "journal-";
const NAME_SUFFIX: &str = ".wal";
const NAME_DIGITS: usize = 20;

/// The path of the segment whose first record has sequence `first_seq`.
pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!(
        "{NAME_PREFIX}{first_seq:0NAME_DIGITS$}{NAME_SUFFIX}"
    ))
}

/// Classifies a directory entry name: `None` if it is not a segment at all,
/// `Some(None)` if it looks like one but does not parse, `Some(Some(seq))` otherwise.
pub fn parse_segment_name(name: &str) -> Option<Option<u64>> {
    let digits = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(None);
    }
    Some(digits.parse().ok())
}

/// The header bytes of a segment starting at `first_seq`.
pub fn encode_header(first_seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    h
}

/// What a segment's first bytes say.
#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    /// A valid header naming the segment's first sequence.
    Valid(u64),
    /// Shorter than a header, or all zeros: what a crash while creating the file leaves.
    Torn,
    /// Wrong magic, unknown version: the reason in words.
    Bad(String),
}

/// Reads the header at the start of `buf` (a whole segment file).
pub fn decode_header(buf: &[u8]) -> Header {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Header::Torn;
    };
    if h.iter().all(|&b| b == 0) {
        return Header::Torn;
    }
    if h[..8] != SEGMENT_MAGIC {
        return Header::Bad("wrong magic bytes (not a Memora journal segment)".into());
    }
    let version = u32_at(h, 8);
    if version != SEGMENT_VERSION {
        return Header::Bad(format!(
            "unknown segment format version {version} (this binary reads version {SEGMENT_VERSION}; upgrade Memora)"
        ));
    }
    Header::Valid(u64_at(h, 16))
}

/// Appends one framed record to `buf` without intermediate allocation.
pub fn encode_record(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = (LEN_FIXED + payload.len()) as u32;
    let start = buf.len();
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.push(RECORD_VERSION);
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The outcome of reading one record frame at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A valid record; `next` is the offset just after it.
    Record {
        /// The record's sequence number.
        seq: u64,
        /// The payload bytes.
        payload: &'a [u8],
        /// Offset of the following frame.
        next: usize,
    },
    /// Nothing left: the offset is exactly the end of the buffer.
    End,
    /// The buffer ends inside the frame (a partial write).
    Short,
    /// The length field is impossible.
    BadLength(u32),
    /// The checksum does not match.
    BadChecksum,
    /// Checksum fine, but the version byte is unknown.
    UnknownVersion(u8),
}

/// Reads the record frame starting at `off` in `buf`.
pub fn decode_record(buf: &[u8], off: usize) -> Frame<'_> {
    let rest = buf.get(off..).unwrap_or_default();
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < 8 {
        return Frame::Short;
    }
    let len = u32_at(rest, 0);
    let body_len = len as usize;
    if !(LEN_FIXED..=LEN_FIXED + MAX_PAYLOAD_BYTES).contains(&body_len) {
        return Frame::BadLength(len);
    }
    let Some(body) = rest.get(8..8 + body_len) else {
        return Frame::Short;
    };
    if crc32fast::hash(body) != u32_at(rest, 4) {
        return Frame::BadChecksum;
    }
    if body[8] != RECORD_VERSION {
        return Frame::UnknownVersion(body[8]);
    }
    Frame::Record {
        seq: u64_at(body, 0),
        payload: &body[LEN_FIXED..],
        next: off + 8 + body_len,
    }
}

/// Whether any valid record with a sequence above `after` starts somewhere in
/// `buf[from..]`: decides if damage at the end of the last segment is a torn tail
/// (nothing valid follows) or corruption (valid data follows). Cheap fields are checked
/// before the CRC so that scanning garbage stays linear in practice.
pub fn valid_record_after(buf: &[u8], from: usize, after: u64) -> bool {
    let end = buf.len().saturating_sub(RECORD_OVERHEAD - 1);
    (from..end).any(|off| {
        let rest = &buf[off..];
        let len = u32_at(rest, 0) as usize;
        let seq = u64_at(rest, 8);
        len >= LEN_FIXED
            && len <= rest.len() - 8
            && rest[16] == RECORD_VERSION
            && seq > after
            && seq - after <= buf.len() as u64
            && matches!(decode_record(buf, off), Frame::Record { .. })
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}
