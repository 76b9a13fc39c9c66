//! The write-ahead journal: every state change is appended here, as an opaque payload,
//! and acknowledged only once durable (persistence.md). One writer thread group-commits
//! concurrent submissions; recovery validates every record and truncates only a torn
//! tail. The on-disk format and protocol are described in `docs/journal.md`.

mod applied;
mod error;
mod export;
mod format;
pub mod io;
mod recent;
mod recover;
mod writer;

#[cfg(test)]
mod measure;
#[cfg(test)]
mod tests;

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Sender};
use parking_lot::Mutex;
use tokio::sync::oneshot;

pub use applied::Applied;
pub use error::{CorruptionError, JournalError, OpenError};
pub use export::{last_seq_bound, read_range, write_segment};
pub use format::{MAX_PAYLOAD_BYTES, RECORD_VERSION};
pub use io::{Faults, FaultyStorage, FileStorage, Storage};
pub use recent::{FsyncLatency, RECENT_FSYNCS};
pub use recover::{ScanReport, SegmentSummary, scan};

use applied::Progress;
use recover::Repair;
use writer::{Msg, Writer};

/// When a submission is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// After the fsync of the record's batch: survives a machine crash.
    #[default]
    Strict,
    /// After the write, before the fsync; fsync at least every `fsync_interval`. A
    /// machine crash may lose up to that window of acknowledged records.
    Relaxed,
}

/// How to open the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// Directory of the segment files (created if missing).
    pub dir: PathBuf,
    /// When submissions are acknowledged.
    pub durability: Durability,
    /// Relaxed mode only: the longest time written records stay without fsync.
    pub fsync_interval: Duration,
    /// A new segment is started before a batch would grow the active one past this
    /// many bytes (a single batch larger than this still goes into one segment).
    pub segment_bytes: u64,
}

impl JournalConfig {
    /// Defaults for `dir`: strict, 1 s relaxed fsync interval, 64 MiB segments.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            durability: Durability::Strict,
            fsync_interval: Duration::from_millis(1000),
            segment_bytes: 64 << 20,
        }
    }
}

/// What recovery found, returned by [`Journal::open`].
#[derive(Debug, Default)]
pub struct Recovered {
    /// `(seq, payload)` of every record with `seq > after_seq`, in sequence order; the
    /// engine replays them before serving or checkpointing.
    pub records: Vec<(u64, Vec<u8>)>,
    /// The newest sequence number in use: the last record's, or `after_seq` if no record
    /// is newer. The next submission gets `last_seq + 1`.
    pub last_seq: u64,
    /// Bytes of a torn tail that were truncated (0 if none).
    pub truncated_tail_bytes: u64,
}

/// A durable record: its sequence number and the guard to drop once it is applied.
#[derive(Debug)]
pub struct Committed {
    /// The record's sequence number.
    pub seq: u64,
    /// Drop after the change is applied to memory.
    pub applied: Applied,
}

/// Counters for metrics and `memora check`. Times in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Segment files currently in use.
    pub segments: usize,
    /// Valid bytes in those segments.
    pub bytes: u64,
    /// Highest acknowledged sequence (strict: fsynced; relaxed: written).
    pub durable_seq: u64,
    /// Highest sequence known to be fsynced.
    pub synced_seq: u64,
    /// Batches written since open.
    pub batches: u64,
    /// Records written since open.
    pub records: u64,
    /// Batches refused with [`JournalError::Io`] since open.
    pub failed_batches: u64,
    /// Most records in one batch.
    pub max_batch: usize,
    /// Successful fsyncs since open.
    pub fsyncs: u64,
    /// Duration of the last fsync, µs.
    pub last_fsync_micros: u64,
    /// Exponentially weighted mean fsync duration (weight 1/8), µs.
    pub fsync_micros_ewma: u64,
    /// Longest fsync, µs.
    pub max_fsync_micros: u64,
    /// False after an I/O error until a later batch succeeds.
    pub healthy: bool,
}

#[derive(Debug)]
pub(crate) struct SegMeta {
    first_seq: u64,
    path: PathBuf,
    bytes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Meta {
    segments: Vec<SegMeta>,
    stats: JournalStats,
    recent_fsyncs: recent::RecentFsyncs,
}

/// State shared by the handles, the writer thread and the [`Applied`] guards.
#[derive(Debug)]
pub(crate) struct Shared {
    progress: Mutex<Progress>,
    meta: Mutex<Meta>,
    healthy: AtomicBool,
    closed: AtomicBool,
    /// [`Journal::request_roll`] was called: the next batch starts a new segment.
    roll_requested: AtomicBool,
}

struct Inner {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
    }
}

/// Handle to the write-ahead journal; cheap to clone. The last handle dropped shuts the
/// writer down as [`Journal::shutdown`] does.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens the journal in `config.dir` (creating the directory if needed), validates
    /// every segment, truncates a torn tail of the last segment (logging a warning with
    /// the byte count), and starts the writer thread.
    ///
    /// `after_seq` is the sequence covered by the engine's checkpoints: records after it
    /// are returned for replay, the first segment must not start after `after_seq + 1`,
    /// and new sequence numbers continue from `max(last record, after_seq) + 1` so they
    /// never go backwards. If every record on disk is older than `after_seq`, those
    /// segments are deleted and a fresh segment starts at `after_seq + 1`.
    ///
    /// # Errors
    /// [`OpenError::Corruption`] for any damage other than a torn tail (naming the file
    /// and byte offset); [`OpenError::Io`] if the directory cannot be read or repaired.
    pub fn open(config: JournalConfig, after_seq: u64) -> Result<(Journal, Recovered), OpenError> {
        Self::open_with_storage(config, after_seq, Arc::new(FileStorage))
    }

    /// [`Journal::open`] with segment I/O going through `storage` (tests inject faults
    /// with [`io::FaultyStorage`]). Recovery itself reads the files directly.
    ///
    /// # Errors
    /// As [`Journal::open`].
    pub fn open_with_storage(
        config: JournalConfig,
        after_seq: u64,
        storage: Arc<dyn Storage>,
    ) -> Result<(Journal, Recovered), OpenError> {
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| OpenError::io(&dir, e))?;
        let mut records = Vec::new();
        let layout = recover::read_journal(&dir, Some(after_seq), |seq, payload| {
            if seq > after_seq {
                records.push((seq, payload.to_vec()));
            }
        })?;
        let torn = layout.report.torn_tail_bytes;
        match &layout.repair {
            Repair::None => {}
            Repair::TruncateTail { path, valid_len } => {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| OpenError::io(path, e))?;
                f.set_len(*valid_len)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| OpenError::io(path, e))?;
                tracing::warn!(path = %path.display(), bytes = torn, offset = valid_len,
                    "journal: truncated a torn tail of {torn} bytes (a crash interrupted a write)");
            }
            Repair::RemoveTornSegment { path } => {
                fs::remove_file(path).map_err(|e| OpenError::io(path, e))?;
                storage.sync_dir(&dir).map_err(|e| OpenError::io(&dir, e))?;
                tracing::warn!(path = %path.display(), bytes = torn,
                    "journal: removed a segment with a torn header ({torn} bytes)");
            }
        }

        let journal_end = layout.next_seq.map(|n| n - 1);
        let (seg, len, next_seq, segments) = match (journal_end, layout.report.segments.last()) {
            (Some(end), Some(last)) if end >= after_seq => {
                let seg = storage
                    .open_append(&last.path)
                    .map_err(|e| OpenError::io(&last.path, e))?;
                let segments = layout
                    .report
                    .segments
                    .iter()
                    .map(|s| SegMeta {
                        first_seq: s.first_seq,
                        path: s.path.clone(),
                        bytes: s.bytes,
                    })
                    .collect();
                (seg, last.bytes, end + 1, segments)
            }
            _ => {
                if let Some(end) = journal_end {
                    tracing::warn!(
                        journal_end = end,
                        after_seq,
                        "journal: every record is older than the checkpoint; starting a fresh segment"
                    );
                    for s in &layout.report.segments {
                        fs::remove_file(&s.path).map_err(|e| OpenError::io(&s.path, e))?;
                        storage.sync_dir(&dir).map_err(|e| OpenError::io(&dir, e))?;
                    }
                }
                let first = after_seq + 1;
                let path = format::segment_path(&dir, first);
                let mut seg = storage.create(&path).map_err(|e| OpenError::io(&path, e))?;
                seg.append(&format::encode_header(first))
                    .and_then(|()| seg.sync())
                    .and_then(|()| storage.sync_dir(&dir))
                    .map_err(|e| OpenError::io(&path, e))?;
                let len = format::HEADER_LEN as u64;
                let meta = SegMeta {
                    first_seq: first,
                    path,
                    bytes: len,
                };
                (seg, len, first, vec![meta])
            }
        };
        let last_seq = next_seq - 1;
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress::new(last_seq)),
            meta: Mutex::new(Meta {
                segments,
                stats: JournalStats {
                    synced_seq: last_seq,
                    ..JournalStats::default()
                },
                recent_fsyncs: recent::RecentFsyncs::default(),
            }),
            healthy: AtomicBool::new(true),
            roll_requested: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let (tx, rx) = channel::unbounded();
        let writer = Writer {
            shared: shared.clone(),
            storage: storage.clone(),
            dir: dir.clone(),
            strict: config.durability == Durability::Strict,
            interval: config.fsync_interval,
            segment_bytes: config.segment_bytes,
            seg,
            len,
            synced_len: len,
            next_seq,
            broken: false,
            sync_failed: false,
            must_roll: false,
            last_sync: Instant::now(),
            buf: Vec::with_capacity(64 << 10),
            acks: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("memora-journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| OpenError::io(&dir, e))?;
        let journal = Journal {
            inner: Arc::new(Inner {
                tx,
                shared,
                storage,
                dir,
                thread: Mutex::new(Some(thread)),
            }),
        };
        let recovered = Recovered {
            records,
            last_seq,
            truncated_tail_bytes: torn,
        };
        Ok((journal, recovered))
    }

    /// Hands `payload` to the writer now (submission order is the order of calls) and
    /// returns a future that resolves once the record is durable — strict: after the
    /// fsync of its batch; relaxed: after the write. The future does not borrow `self`.
    /// A journal that failed stays usable: each later batch first tries to repair it,
    /// and is refused with `Io` while that fails.
    ///
    /// # Errors
    /// [`JournalError::Io`] if the batch could not be made durable (nothing of it is
    /// acknowledged), [`JournalError::Closed`] after shutdown,
    /// [`JournalError::TooLarge`] above [`MAX_PAYLOAD_BYTES`].
    pub fn submit(
        &self,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<Committed, JournalError>> + Send + 'static {
        let queued = self.enqueue(payload);
        async move {
            match queued {
                Ok(rx) => rx.await.unwrap_or(Err(JournalError::Closed)),
                Err(e) => Err(e),
            }
        }
    }

    fn enqueue(
        &self,
        payload: Vec<u8>,
    ) -> Result<oneshot::Receiver<Result<Committed, JournalError>>, JournalError> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(JournalError::TooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        if self.inner.shared.closed.load(Ordering::SeqCst) {
            return Err(JournalError::Closed);
        }
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Submit(payload, tx))
            .map_err(|_| JournalError::Closed)?;
        Ok(rx)
    }

    /// Highest acknowledged sequence (strict: fsynced; relaxed: written).
    pub fn durable_seq(&self) -> u64 {
        self.inner.shared.progress.lock().durable_seq
    }

    /// The largest sequence S such that every record ≤ S is durable and its [`Applied`]
    /// guard was dropped. Read it before copying dirty state into a checkpoint, so the
    /// checkpoint never claims a record that is not in memory yet. Right after open it
    /// is [`Recovered::last_seq`]: replay before the first checkpoint.
    pub fn applied_watermark(&self) -> u64 {
        self.inner.shared.progress.lock().watermark()
    }

    /// Deletes the segments whose records all have sequence ≤ `seq` (never the active
    /// segment); blocking file-system work. Returns how many were deleted.
    ///
    /// # Errors
    /// [`JournalError::Io`] if a deletion or the directory fsync failed; segments not
    /// deleted then are found again (and still valid) on the next open.
    pub fn truncate_through(&self, seq: u64) -> Result<usize, JournalError> {
        let doomed: Vec<PathBuf> = {
            let mut meta = self.inner.shared.meta.lock();
            let segs = &meta.segments;
            let mut k = 0;
            while k + 1 < segs.len() && segs[k + 1].first_seq.saturating_sub(1) <= seq {
                k += 1;
            }
            meta.segments.drain(..k).map(|s| s.path).collect()
        };
        // Oldest first, each deletion made durable before the next: a crash then leaves
        // a suffix of segments, never a hole in the sequence.
        for path in &doomed {
            fs::remove_file(path)
                .and_then(|()| self.inner.storage.sync_dir(&self.inner.dir))
                .map_err(|e| JournalError::Io(e.to_string()))?;
        }
        Ok(doomed.len())
    }

    /// Makes the next written batch start a new segment, so that every record written
    /// so far sits in segments a checkpoint can then delete ([`Journal::truncate_through`]
    /// never deletes the active segment). Used by a player's erasure (players.md
    /// "Privacy"): their email and records must not outlive it in the active segment.
    pub fn request_roll(&self) {
        self.inner
            .shared
            .roll_requested
            .store(true, Ordering::SeqCst);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> JournalStats {
        let durable_seq = self.durable_seq();
        let meta = self.inner.shared.meta.lock();
        JournalStats {
            segments: meta.segments.len(),
            bytes: meta.segments.iter().map(|s| s.bytes).sum(),
            durable_seq,
            healthy: self.is_healthy(),
            ..meta.stats.clone()
        }
    }

    /// Percentiles of the last [`RECENT_FSYNCS`] fsyncs.
    pub fn recent_fsyncs(&self) -> FsyncLatency {
        self.inner.shared.meta.lock().recent_fsyncs.latency()
    }

    /// Stops accepting submissions, writes and fsyncs everything already queued, and
    /// joins the writer thread (blocking). Idempotent; later submissions get `Closed`.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// False after an I/O error until a later batch succeeds.
    pub fn is_healthy(&self) -> bool {
        self.inner.shared.healthy.load(Ordering::SeqCst)
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}
