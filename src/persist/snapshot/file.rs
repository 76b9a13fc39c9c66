//! Writing a snapshot file from a closed redb file, and verifying one: header, length,
//! SHA-256 of the payload, then the payload opened read-only in place and its counts
//! compared with the header's.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use redb::{ReadOnlyDatabase, ReadableDatabase};
use sha2::{Digest, Sha256};

use super::backend::SliceBackend;
use super::header::{Header, SNAPSHOT_FORMAT};
use super::tables::{count, meta_value};
use super::{Counts, Progress, SnapshotError, redb_err};
use crate::persist::store::STORE_FORMAT;

const CHUNK: usize = 1 << 20;

/// Copies `len` bytes from `input` to `out` (if any), hashing them; reports progress in
/// bytes. Returns the SHA-256 in lowercase hex.
fn stream(
    input: &mut impl Read,
    mut out: Option<&mut dyn Write>,
    len: u64,
    progress: &dyn Progress,
    path: &Path,
) -> Result<String, SnapshotError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(CHUNK);
        input
            .read_exact(&mut buf[..n])
            .map_err(|e| SnapshotError::io(path, e))?;
        hasher.update(&buf[..n]);
        if let Some(out) = out.as_mut() {
            out.write_all(&buf[..n])
                .map_err(|e| SnapshotError::io(path, e))?;
        }
        left -= n as u64;
        progress.advance(n as u64);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Fsyncs a directory so that a rename or creation in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SnapshotError::io(dir, e))
}

/// Writes the snapshot file `target` from the closed redb file `payload`, standing for
/// journal sequence `seq` taken at `created_at`, with `counts`. The file is written under
/// a temporary name, fsynced and renamed, so `target` never holds a partial file.
///
/// # Errors
/// [`SnapshotError::Io`].
pub fn write_file(
    payload: &Path,
    target: &Path,
    seq: u64,
    created_at: &str,
    counts: Counts,
    progress: &dyn Progress,
) -> Result<Header, SnapshotError> {
    let mut input = File::open(payload).map_err(|e| SnapshotError::io(payload, e))?;
    let len = input
        .metadata()
        .map_err(|e| SnapshotError::io(payload, e))?
        .len();
    let mut header = Header {
        format: SNAPSHOT_FORMAT,
        store_format: STORE_FORMAT,
        seq,
        created_at: created_at.to_owned(),
        memora_version: env!("CARGO_PKG_VERSION").to_owned(),
        counts,
        payload_bytes: len,
        // Same length as the real digest: the header is rewritten in place afterwards.
        payload_sha256: "0".repeat(64),
    };
    let tmp = target.with_extension("snap.tmp");
    let file = File::create(&tmp).map_err(|e| SnapshotError::io(&tmp, e))?;
    let mut out = BufWriter::with_capacity(CHUNK, file);
    let offset = header
        .write_to(&mut out)
        .map_err(|e| SnapshotError::io(&tmp, e))?;
    progress.stage("writing the snapshot file", len);
    header.payload_sha256 = stream(&mut input, Some(&mut out), len, progress, payload)?;
    let mut file = out
        .into_inner()
        .map_err(|e| SnapshotError::io(&tmp, e.into_error()))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| SnapshotError::io(&tmp, e))?;
    let rewritten = header
        .write_to(&mut file)
        .map_err(|e| SnapshotError::io(&tmp, e))?;
    if rewritten != offset {
        return Err(SnapshotError::io(
            &tmp,
            std::io::Error::other("the header changed length when its checksum was filled in"),
        ));
    }
    file.sync_all().map_err(|e| SnapshotError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, target).map_err(|e| SnapshotError::io(target, e))?;
    if let Some(dir) = target.parent() {
        sync_dir(dir)?;
    }
    Ok(header)
}

/// A snapshot file that passed [`verify`].
#[derive(Debug, Clone)]
pub struct Verified {
    /// The file.
    pub path: PathBuf,
    /// Its header.
    pub header: Header,
    /// Offset of the payload in the file.
    pub payload_offset: u64,
    /// Length of the whole file.
    pub file_bytes: u64,
}

/// Reads and checks the header and length of the snapshot at `path`.
fn open_checked(path: &Path) -> Result<(File, Header, u64, u64), SnapshotError> {
    let mut file = File::open(path).map_err(|e| SnapshotError::io(path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| SnapshotError::io(path, e))?
        .len();
    let (header, offset) = Header::read_from(&mut file, path, file_len)?;
    let expected = offset.saturating_add(header.payload_bytes);
    if file_len < expected {
        return Err(SnapshotError::Truncated {
            path: path.to_owned(),
            expected,
            found: file_len,
        });
    }
    if file_len > expected {
        return Err(SnapshotError::corrupted(
            path,
            format!("{} unexpected bytes after the payload", file_len - expected),
        ));
    }
    if header.store_format > STORE_FORMAT {
        return Err(SnapshotError::NewerFormat {
            path: path.to_owned(),
            what: "storage",
            found: header.store_format,
            supported: STORE_FORMAT,
        });
    }
    Ok((file, header, offset, file_len))
}

/// Opens the payload of a verified snapshot read-only, in place.
///
/// # Errors
/// [`SnapshotError::Io`] or [`SnapshotError::Corrupted`] when redb cannot open it.
pub fn open_payload(verified: &Verified) -> Result<ReadOnlyDatabase, SnapshotError> {
    let file = File::open(&verified.path).map_err(|e| SnapshotError::io(&verified.path, e))?;
    let backend = SliceBackend::new(file, verified.payload_offset, verified.header.payload_bytes);
    redb::Builder::new()
        .open_read_only_with_backend(backend)
        .map_err(|e| {
            SnapshotError::corrupted(&verified.path, format!("redb cannot open the payload: {e}"))
        })
}

/// Checks the snapshot at `path` completely: magic, format version, header checksum,
/// length, the payload's SHA-256, then opens the payload and compares its counts and
/// sequence with the header. Reads the whole file once; changes nothing.
///
/// # Errors
/// [`SnapshotError::NotASnapshot`], [`SnapshotError::NewerFormat`],
/// [`SnapshotError::Truncated`], [`SnapshotError::Corrupted`] (each naming the file and
/// the problem), [`SnapshotError::Io`].
pub fn verify(path: &Path, progress: &dyn Progress) -> Result<Verified, SnapshotError> {
    let (mut file, header, offset, file_len) = open_checked(path)?;
    progress.stage("checking the checksum", header.payload_bytes);
    let digest = stream(&mut file, None, header.payload_bytes, progress, path)?;
    if digest != header.payload_sha256 {
        return Err(SnapshotError::corrupted(
            path,
            "the payload's SHA-256 does not match the header (the file is damaged)",
        ));
    }
    drop(file);
    let verified = Verified {
        path: path.to_owned(),
        header,
        payload_offset: offset,
        file_bytes: file_len,
    };
    progress.stage("opening the payload", 1);
    let db = open_payload(&verified)?;
    let txn = db.begin_read().map_err(redb_err)?;
    let format = meta_value(&txn, "format")?;
    if format > STORE_FORMAT {
        return Err(SnapshotError::NewerFormat {
            path: path.to_owned(),
            what: "storage",
            found: format,
            supported: STORE_FORMAT,
        });
    }
    let h = &verified.header;
    for key in ["progress_seq", "wallet_seq"] {
        let found = meta_value(&txn, key)?;
        if found != h.seq {
            return Err(SnapshotError::corrupted(
                path,
                format!("the payload's {key} is {found}, the header says {}", h.seq),
            ));
        }
    }
    let counts = count(&txn)?;
    if counts != h.counts {
        return Err(SnapshotError::corrupted(
            path,
            format!("the payload holds {counts}; the header says {}", h.counts),
        ));
    }
    progress.advance(1);
    Ok(verified)
}

/// Copies the payload of a verified snapshot to `dest` (a new file), checking its
/// SHA-256 again on the way, and fsyncs it.
///
/// # Errors
/// [`SnapshotError::Io`], or [`SnapshotError::Corrupted`] when the file changed since
/// it was verified.
pub(crate) fn extract(
    verified: &Verified,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(), SnapshotError> {
    let path = &verified.path;
    let mut file = File::open(path).map_err(|e| SnapshotError::io(path, e))?;
    file.seek(SeekFrom::Start(verified.payload_offset))
        .map_err(|e| SnapshotError::io(path, e))?;
    let out = File::create(dest).map_err(|e| SnapshotError::io(dest, e))?;
    let mut writer = BufWriter::with_capacity(CHUNK, out);
    progress.stage("extracting", verified.header.payload_bytes);
    let digest = stream(
        &mut file,
        Some(&mut writer),
        verified.header.payload_bytes,
        progress,
        path,
    )?;
    let out = writer
        .into_inner()
        .map_err(|e| SnapshotError::io(dest, e.into_error()))?;
    out.sync_all().map_err(|e| SnapshotError::io(dest, e))?;
    if digest != verified.header.payload_sha256 {
        return Err(SnapshotError::corrupted(
            path,
            "the payload changed while it was being restored",
        ));
    }
    Ok(())
}
