//! Storage behind a trait, so that tests (the journal's and the engine's degraded-mode
//! tests) can make writes and fsyncs fail or stall on command.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

/// One open segment file, written only by the journal's writer thread.
pub trait SegmentIo: Send {
    /// Appends `buf` at the end of the file (all of it, or an error; on error a prefix
    /// may have been written).
    ///
    /// # Errors
    /// The underlying write error (e.g. `ENOSPC`).
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes every appended byte durable (`fdatasync`).
    ///
    /// # Errors
    /// The underlying fsync error; nothing since the last successful sync is durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Truncates the file to `len` bytes (used to cut off a failed batch).
    ///
    /// # Errors
    /// The underlying error.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// Opens segment files and syncs the directory.
pub trait Storage: Send + Sync + 'static {
    /// Creates (or truncates) the segment at `path`, opened for appending.
    ///
    /// # Errors
    /// The underlying error.
    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>>;
    /// Opens the existing segment at `path` for appending at its end.
    ///
    /// # Errors
    /// The underlying error.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>>;
    /// Makes the directory's entries (created and deleted files) durable.
    ///
    /// # Errors
    /// The underlying error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileStorage;

struct FileSegment(File);

impl SegmentIo for FileSegment {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Storage for FileStorage {
    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        // Reopen in append mode so that writes land at the end even after `set_len`.
        drop(f);
        self.open_append(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>> {
        Ok(Box::new(FileSegment(
            OpenOptions::new().append(true).open(path)?,
        )))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Switches shared by a [`FaultyStorage`] and the test that drives it.
#[derive(Debug, Default)]
pub struct Faults {
    /// Fail this many upcoming appends with `ENOSPC` (after writing half the buffer).
    pub fail_appends: AtomicU32,
    /// Fail this many upcoming syncs with `EIO`.
    pub fail_syncs: AtomicU32,
    /// Fail every `set_len` while true.
    pub fail_set_len: AtomicBool,
    /// Fail every `create` while true.
    pub fail_create: AtomicBool,
    /// Successful syncs so far.
    pub syncs: AtomicU64,
    /// Syncs currently blocked by [`Faults::hold_syncs`].
    pub waiting: AtomicU32,
    held: Mutex<bool>,
    released: Condvar,
}

impl Faults {
    /// While held, every sync blocks (before doing anything) until [`Faults::release_syncs`].
    pub fn hold_syncs(&self) {
        *self.held.lock() = true;
    }
    /// Lets blocked and future syncs proceed.
    pub fn release_syncs(&self) {
        *self.held.lock() = false;
        self.released.notify_all();
    }
    fn wait_unheld(&self) {
        let mut held = self.held.lock();
        if *held {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            while *held {
                self.released.wait(&mut held);
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Real files, with failures and stalls injected through shared [`Faults`].
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    /// The switches; clone the `Arc` to drive them from a test.
    pub faults: Arc<Faults>,
}

struct FaultySegment {
    inner: Box<dyn SegmentIo>,
    faults: Arc<Faults>,
}

impl SegmentIo for FaultySegment {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        if take(&self.faults.fail_appends) {
            // A partial write, as a full disk leaves it.
            self.inner.append(&buf[..buf.len() / 2])?;
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.inner.append(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.faults.wait_unheld();
        if take(&self.faults.fail_syncs) {
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        self.inner.sync()?;
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if self.faults.fail_set_len.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.set_len(len)
    }
}

impl FaultyStorage {
    fn wrap(&self, inner: Box<dyn SegmentIo>) -> Box<dyn SegmentIo> {
        Box::new(FaultySegment {
            inner,
            faults: self.faults.clone(),
        })
    }
}

impl Storage for FaultyStorage {
    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>> {
        if self.faults.fail_create.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28));
        }
        FileStorage.create(path).map(|s| self.wrap(s))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>> {
        FileStorage.open_append(path).map(|s| self.wrap(s))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        FileStorage.sync_dir(dir)
    }
}
