//! Reading the journal back: validates every segment, finds a torn tail, and reports;
//! shared by [`Journal::open`](super::Journal::open) (which repairs the tail) and the
//! read-only [`scan`] behind `memora check`.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{CorruptionError, OpenError};
use super::format::{self, Frame, HEADER_LEN, Header};

/// One segment as found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The segment file.
    pub path: PathBuf,
    /// Sequence number of its first record (from its name and header).
    pub first_seq: u64,
    /// Number of valid records in it.
    pub records: u64,
    /// Valid bytes (header plus whole records), excluding any torn tail.
    pub bytes: u64,
}

/// What [`scan`] found: the journal is readable, possibly with a torn tail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// The segments in sequence order (a last segment with a torn header is not listed
    /// but counted in `torn_tail_bytes`).
    pub segments: Vec<SegmentSummary>,
    /// Total valid records.
    pub records: u64,
    /// Sequence number of the oldest record kept, if any.
    pub first_seq: Option<u64>,
    /// Sequence number of the newest valid record, if any.
    pub last_seq: Option<u64>,
    /// Bytes at the end of the last segment that a crash left half-written; `open`
    /// truncates them, `scan` only reports them.
    pub torn_tail_bytes: u64,
}

/// What `open` must do to the last segment before appending.
#[derive(Debug)]
pub(crate) enum Repair {
    None,
    TruncateTail { path: PathBuf, valid_len: u64 },
    RemoveTornSegment { path: PathBuf },
}

pub(crate) struct Layout {
    pub report: ScanReport,
    pub repair: Repair,
    /// The sequence the next record would take if appended to the last segment.
    pub next_seq: Option<u64>,
}

/// Read-only scan of the journal in `dir` for `memora check`: the same validation as
/// [`Journal::open`](super::Journal::open), modifying nothing. A missing directory is an
/// empty journal. The first segment's start is not checked against a checkpoint
/// (`scan` does not know it): compare [`ScanReport::first_seq`] with the checkpoint
/// sequence.
///
/// # Errors
/// [`OpenError::Io`] if a file cannot be read; [`OpenError::Corruption`] for any damage
/// other than a torn tail, naming the file and byte offset.
pub fn scan(dir: &Path) -> Result<ScanReport, OpenError> {
    if !dir.exists() {
        return Ok(ScanReport::default());
    }
    Ok(read_journal(dir, None, |_, _| {})?.report)
}

/// Lists the segment files of `dir` sorted by first sequence.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, OpenError> {
    let mut segs = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| OpenError::io(dir, e))? {
        let entry = entry.map_err(|e| OpenError::io(dir, e))?;
        let name = entry.file_name();
        let Some(parsed) = name.to_str().and_then(format::parse_segment_name) else {
            continue;
        };
        let path = entry.path();
        let seq = parsed.ok_or_else(|| CorruptionError::BadFileName { path: path.clone() })?;
        segs.push((seq, path));
    }
    segs.sort_unstable_by_key(|s| s.0);
    Ok(segs)
}

/// Validates every segment in `dir`, calling `on_record(seq, payload)` for each valid
/// record in order. With `after_seq`, the first segment must start at or before
/// `after_seq + 1` (records after a checkpoint must all be present).
pub(crate) fn read_journal(
    dir: &Path,
    after_seq: Option<u64>,
    mut on_record: impl FnMut(u64, &[u8]),
) -> Result<Layout, OpenError> {
    let segs = list_segments(dir)?;
    let mut report = ScanReport::default();
    let mut repair = Repair::None;
    let mut expected: Option<u64> = None;
    for (i, (name_seq, path)) in segs.iter().enumerate() {
        let is_last = i + 1 == segs.len();
        let buf = fs::read(path).map_err(|e| OpenError::io(path, e))?;
        let bad_header = |reason: String| CorruptionError::BadHeader {
            path: path.clone(),
            reason,
        };
        match format::decode_header(&buf) {
            Header::Valid(s) if s == *name_seq => {}
            Header::Valid(s) => {
                return Err(bad_header(format!(
                    "header says first sequence {s}, file name says {name_seq}"
                ))
                .into());
            }
            Header::Torn if is_last => {
                report.torn_tail_bytes = buf.len() as u64;
                repair = Repair::RemoveTornSegment { path: path.clone() };
                break;
            }
            Header::Torn => return Err(bad_header("empty or truncated header".into()).into()),
            Header::Bad(reason) => return Err(bad_header(reason).into()),
        }
        let gap = |offset: usize, expected: u64, found: u64| CorruptionError::SequenceGap {
            path: path.clone(),
            offset: offset as u64,
            expected,
            found,
        };
        match (expected, after_seq) {
            (Some(exp), _) if exp != *name_seq => return Err(gap(0, exp, *name_seq).into()),
            (None, Some(a)) if *name_seq > a.saturating_add(1) => {
                return Err(gap(0, a + 1, *name_seq).into());
            }
            _ => {}
        }
        let mut next = *name_seq;
        let mut off = HEADER_LEN;
        let mut records = 0u64;
        loop {
            let frame = format::decode_record(&buf, off);
            let err = match frame {
                Frame::Record {
                    seq,
                    payload,
                    next: after,
                } => {
                    if seq != next {
                        return Err(gap(off, next, seq).into());
                    }
                    on_record(seq, payload);
                    report.first_seq.get_or_insert(seq);
                    report.last_seq = Some(seq);
                    records += 1;
                    next += 1;
                    off = after;
                    continue;
                }
                Frame::End => break,
                Frame::UnknownVersion(version) => {
                    return Err(CorruptionError::UnknownVersion {
                        path: path.clone(),
                        offset: off as u64,
                        version,
                        known: format::RECORD_VERSION,
                    }
                    .into());
                }
                Frame::BadChecksum => CorruptionError::BadChecksum {
                    path: path.clone(),
                    offset: off as u64,
                },
                Frame::BadLength(len) => CorruptionError::BadLength {
                    path: path.clone(),
                    offset: off as u64,
                    len,
                },
                Frame::Short => CorruptionError::BadLength {
                    path: path.clone(),
                    offset: off as u64,
                    len: buf
                        .get(off..off + 4)
                        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                },
            };
            if is_last && !format::valid_record_after(&buf, off + 1, next.saturating_sub(1)) {
                report.torn_tail_bytes = (buf.len() - off) as u64;
                repair = Repair::TruncateTail {
                    path: path.clone(),
                    valid_len: off as u64,
                };
                break;
            }
            return Err(err.into());
        }
        report.records += records;
        report.segments.push(SegmentSummary {
            path: path.clone(),
            first_seq: *name_seq,
            records,
            bytes: off as u64,
        });
        expected = Some(next);
    }
    Ok(Layout {
        report,
        repair,
        next_seq: expected,
    })
}
