//! The file operations a build needs, behind a trait so that tests can inject a failure
//! half-way through a build (redb's model: storage behind a trait to simulate crashes).
//!
//! [`RealDisk`] writes each batch as content.md asks: every file to a temp file in its
//! own directory, fsync, rename over the target, then fsync the directories. The fsyncs
//! of a batch run on a few threads at once: one at a time, a 16,000-file build would
//! spend ~12 s waiting on the disk; concurrently the file system groups them.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Threads fsyncing one batch.
const SYNC_THREADS: usize = 16;

/// File operations of the writer. Paths are absolute.
pub trait Disk: Send + Sync {
    /// Writes every `(path, bytes)` atomically (temp file in the same directory, fsync,
    /// rename), creating directories as needed. On error some files may have been
    /// replaced and others not; none is ever half-written.
    ///
    /// # Errors
    /// The first I/O error.
    fn write_batch(&self, files: &[(PathBuf, &[u8])]) -> io::Result<()>;

    /// Removes a file; a missing file is not an error.
    ///
    /// # Errors
    /// Any other I/O error.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Free space of the file system holding `path`, in percent of its size.
    ///
    /// # Errors
    /// When `statvfs` fails.
    fn free_percent(&self, path: &Path) -> io::Result<f64>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealDisk;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Suffix marking temp files, so that a build interrupted by a crash can sweep them.
pub const TEMP_MARK: &str = ".tmp-";

fn temp_path(path: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TEMP_MARK}{}-{n}", std::process::id()))
}

impl Disk for RealDisk {
    fn write_batch(&self, files: &[(PathBuf, &[u8])]) -> io::Result<()> {
        let mut dirs = BTreeSet::new();
        for (path, _) in files {
            if let Some(dir) = path.parent()
                && dirs.insert(dir.to_path_buf())
            {
                fs::create_dir_all(dir)?;
            }
        }
        let mut temps = Vec::with_capacity(files.len());
        let written = (|| {
            for (path, bytes) in files {
                let temp = temp_path(path);
                let mut f = File::create(&temp)?;
                temps.push((temp, path));
                f.write_all(bytes)?;
            }
            Ok::<(), io::Error>(())
        })();
        if let Err(e) = written.and_then(|()| sync_all(&temps)) {
            for (temp, _) in &temps {
                let _ = fs::remove_file(temp);
            }
            return Err(e);
        }
        for (temp, path) in &temps {
            fs::rename(temp, path)?;
        }
        for dir in &dirs {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn free_percent(&self, path: &Path) -> io::Result<f64> {
        let mut probe = path.to_path_buf();
        while !probe.exists() {
            if !probe.pop() {
                probe = PathBuf::from(".");
                break;
            }
        }
        let stats = fs4::statvfs(&probe)?;
        if stats.total_space() == 0 {
            return Ok(100.0);
        }
        Ok(stats.available_space() as f64 * 100.0 / stats.total_space() as f64)
    }
}

/// Fsyncs every temp file, on up to [`SYNC_THREADS`] threads.
fn sync_all(temps: &[(PathBuf, &PathBuf)]) -> io::Result<()> {
    if temps.len() < 4 {
        for (temp, _) in temps {
            File::open(temp)?.sync_all()?;
        }
        return Ok(());
    }
    let chunk = temps.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = temps
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    for (temp, _) in part {
                        File::open(temp)?.sync_all()?;
                    }
                    Ok::<(), io::Error>(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| io::Error::other("fsync thread panicked"))??;
        }
        Ok(())
    })
}
