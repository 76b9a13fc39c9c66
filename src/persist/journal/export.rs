//! Records in and out of a journal directory for snapshots (`persist::snapshot`): a
//! snapshot copies the records its checkpoint did not cover from the *live* journal,
//! writes them into a fresh segment next to its copy of the redb file, and replays them
//! there; a restore needs an upper bound of the sequence numbers an old journal used.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::error::OpenError;
use super::format::{self, HEADER_LEN, RECORD_OVERHEAD};
use super::recover;

/// The records with `after < seq <= through` of the journal in `dir`, in order. Safe
/// while the writer appends: records up to the durable sequence are complete on disk,
/// and a partly written batch beyond them reads as a torn tail, which is ignored here.
///
/// # Errors
/// [`OpenError`] when the journal cannot be read, is damaged, or lacks one of the
/// records asked for (they must all be durable already).
pub fn read_range(dir: &Path, after: u64, through: u64) -> Result<Vec<(u64, Vec<u8>)>, OpenError> {
    let mut out = Vec::new();
    if through <= after {
        return Ok(out);
    }
    recover::read_journal(dir, Some(after), |seq, payload| {
        if seq > after && seq <= through {
            out.push((seq, payload.to_vec()));
        }
    })?;
    let complete = out.len() as u64 == through - after
        && out.first().is_some_and(|r| r.0 == after + 1)
        && out.last().is_some_and(|r| r.0 == through);
    if !complete {
        return Err(OpenError::io(
            dir,
            std::io::Error::other(format!(
                "records {} to {through} should all be in the journal; found {}",
                after + 1,
                out.len()
            )),
        ));
    }
    Ok(out)
}

/// Writes `records` (consecutive sequence numbers) as one new segment in `dir`
/// (created if needed), fsynced with its directory. An empty slice writes nothing.
///
/// # Errors
/// An I/O error, or `InvalidInput` when the sequence numbers are not consecutive.
pub fn write_segment(dir: &Path, records: &[(u64, Vec<u8>)]) -> std::io::Result<()> {
    let Some(first) = records.first().map(|r| r.0) else {
        return Ok(());
    };
    if records
        .iter()
        .enumerate()
        .any(|(i, r)| r.0 != first + i as u64)
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "journal records to export are not consecutive",
        ));
    }
    fs::create_dir_all(dir)?;
    let mut buf = Vec::with_capacity(
        HEADER_LEN
            + records
                .iter()
                .map(|r| r.1.len() + RECORD_OVERHEAD)
                .sum::<usize>(),
    );
    buf.extend_from_slice(&format::encode_header(first));
    for (seq, payload) in records {
        format::encode_record(&mut buf, *seq, payload);
    }
    let path = format::segment_path(dir, first);
    let mut file = fs::File::create(&path)?;
    file.write_all(&buf)?;
    file.sync_all()?;
    fs::File::open(dir)?.sync_all()
}

/// An upper bound of the last sequence number used by the journal in `dir`, read from
/// segment names and sizes only (every record takes at least 17 bytes), so that it works
/// on a damaged journal too. 0 for a missing or empty journal.
///
/// # Errors
/// [`OpenError`] when the directory cannot be listed.
pub fn last_seq_bound(dir: &Path) -> Result<u64, OpenError> {
    if !dir.exists() {
        return Ok(0);
    }
    let mut bound = 0u64;
    for (first, path) in recover::list_segments(dir)? {
        let len = fs::metadata(&path)
            .map_err(|e| OpenError::io(&path, e))?
            .len();
        let records = len.saturating_sub(HEADER_LEN as u64) / RECORD_OVERHEAD as u64;
        bound = bound.max(first.saturating_add(records));
    }
    Ok(bound)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exported_records_read_back_and_bound_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<(u64, Vec<u8>)> = (5..=9).map(|s| (s, vec![s as u8; 3])).collect();
        write_segment(dir.path(), &records).unwrap();
        assert_eq!(read_range(dir.path(), 4, 9).unwrap(), records);
        assert_eq!(
            read_range(dir.path(), 6, 8).unwrap(),
            records[2..4].to_vec()
        );
        assert!(read_range(dir.path(), 6, 6).unwrap().is_empty());
        let err = read_range(dir.path(), 4, 12).unwrap_err();
        assert!(err.to_string().contains("records 5 to 12"), "{err}");
        let bound = last_seq_bound(dir.path()).unwrap();
        assert!(bound >= 9, "{bound}");
        assert_eq!(last_seq_bound(&dir.path().join("none")).unwrap(), 0);
        let gap = [(1, vec![1]), (3, vec![3])];
        assert!(write_segment(&dir.path().join("gap"), &gap).is_err());
    }
}
