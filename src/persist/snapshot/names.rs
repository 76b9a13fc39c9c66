//! Snapshot file names (`memora-20261121T101500Z-seq000123.snap`: UTC time, then the
//! journal sequence), listing them oldest first, and keeping only the newest N.

use std::path::{Path, PathBuf};

use super::SnapshotError;

/// File extension of snapshot files.
pub const EXTENSION: &str = "snap";
const PREFIX: &str = "memora-";

/// The file name of a snapshot taken at `at` standing for journal sequence `seq`.
pub fn file_name(at: jiff::Timestamp, seq: u64) -> String {
    format!(
        "{PREFIX}{}-seq{seq:06}.{EXTENSION}",
        at.strftime("%Y%m%dT%H%M%SZ")
    )
}

/// A snapshot file found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotName {
    /// The file.
    pub path: PathBuf,
    /// The UTC time part of its name (`20261121T101500Z`).
    pub time: String,
    /// Its journal sequence.
    pub seq: u64,
}

/// Parses a file name made by [`file_name`].
fn parse(name: &str) -> Option<(String, u64)> {
    let rest = name
        .strip_prefix(PREFIX)?
        .strip_suffix(EXTENSION)?
        .strip_suffix('.')?;
    let (time, seq) = rest.split_once("-seq")?;
    let well_formed = time.len() == 16
        && time.as_bytes()[8] == b'T'
        && time.ends_with('Z')
        && time
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit());
    if !well_formed || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((time.to_owned(), seq.parse().ok()?))
}

/// The snapshot files in `dir`, oldest first (by time, then sequence). Other files are
/// ignored; a missing directory has none.
///
/// # Errors
/// [`SnapshotError::Io`] when the directory cannot be read.
pub fn list(dir: &Path) -> Result<Vec<SnapshotName>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SnapshotError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SnapshotError::io(dir, e))?;
        let Some((time, seq)) = entry.file_name().to_str().and_then(parse) else {
            continue;
        };
        out.push(SnapshotName {
            path: entry.path(),
            time,
            seq,
        });
    }
    out.sort_by(|a, b| (&a.time, a.seq).cmp(&(&b.time, b.seq)));
    Ok(out)
}

/// Deletes all but the newest `keep` snapshot files of `dir`; returns the deleted ones.
///
/// # Errors
/// [`SnapshotError::Io`] when listing or a deletion fails (files deleted before stay
/// deleted).
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, SnapshotError> {
    let all = list(dir)?;
    let excess = all.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for old in all.into_iter().take(excess) {
        std::fs::remove_file(&old.path).map_err(|e| SnapshotError::io(&old.path, e))?;
        deleted.push(old.path);
    }
    Ok(deleted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_time_and_sequence() {
        let at: jiff::Timestamp = "2026-11-21T10:15:00.123Z".parse().unwrap();
        let name = file_name(at, 123);
        assert_eq!(name, "memora-20261121T101500Z-seq000123.snap");
        assert_eq!(parse(&name), Some(("20261121T101500Z".into(), 123)));
        assert_eq!(
            parse("memora-20261121T101500Z-seq12345678.snap"),
            Some(("20261121T101500Z".into(), 12_345_678))
        );
        for bad in [
            "memora-20261121T101500Z-seq.snap",
            "memora-2026112XT101500Z-seq1.snap",
            "memora-20261121T101500Z-seq1.snap.tmp",
            "other-20261121T101500Z-seq1.snap",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "memora-20261121T101500Z-seq000010.snap",
            "memora-20261120T101500Z-seq000009.snap",
            "memora-20261122T101500Z-seq000011.snap",
            "memora-20261122T101500Z-seq000012.snap",
            "notes.txt",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let deleted = prune(dir.path(), 2).unwrap();
        let deleted: Vec<_> = deleted
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(deleted, vec![names[1], names[0]]);
        let left: Vec<u64> = list(dir.path()).unwrap().iter().map(|s| s.seq).collect();
        assert_eq!(left, vec![11, 12]);
        assert!(dir.path().join("notes.txt").exists());
        assert!(prune(&dir.path().join("missing"), 1).unwrap().is_empty());
    }
}
