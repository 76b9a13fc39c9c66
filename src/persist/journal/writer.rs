//! The single writer thread: group commit (one write and one fsync per batch), segment
//! rolls, and the repair rules after a failed write or fsync.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError};
use tokio::sync::oneshot;

use super::applied::Applied;
use super::format::{self, HEADER_LEN};
use super::io::{SegmentIo, Storage};
use super::{Committed, JournalError, SegMeta, Shared};

/// Most records acknowledged by one fsync.
const MAX_BATCH_RECORDS: usize = 4096;
/// A batch stops growing past this many encoded bytes.
const MAX_BATCH_BYTES: usize = 8 << 20;

pub(crate) type Ack = oneshot::Sender<Result<Committed, JournalError>>;

/// A request to the writer thread.
pub(crate) enum Msg {
    Submit(Vec<u8>, Ack),
    Shutdown,
}

pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub storage: Arc<dyn Storage>,
    pub dir: PathBuf,
    pub strict: bool,
    pub interval: Duration,
    pub segment_bytes: u64,
    pub seg: Box<dyn SegmentIo>,
    /// Valid bytes in the active segment: header plus whole, successfully written records.
    pub len: u64,
    /// Bytes of the active segment known to be durable.
    pub synced_len: u64,
    pub next_seq: u64,
    /// A failed batch may have left bytes past `len`: truncate and fsync before writing.
    pub broken: bool,
    /// Relaxed mode: the last fsync failed; retry it before accepting more.
    pub sync_failed: bool,
    /// A segment roll failed half-way: retry it (same file name) before writing.
    pub must_roll: bool,
    pub last_sync: Instant,
    pub buf: Vec<u8>,
    pub acks: Vec<Ack>,
}

impl Writer {
    /// Runs until shutdown or until every `Journal` handle is gone.
    pub fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let first = if !self.strict && self.len > self.synced_len {
                match rx.recv_deadline(self.last_sync + self.interval) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.sync_relaxed();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            let mut stop = self.take(first);
            while !stop && !self.batch_full() {
                match rx.try_recv() {
                    Ok(m) => stop = self.take(m),
                    Err(_) => break,
                }
            }
            self.commit();
            if stop {
                // Everything queued before the shutdown request is still written.
                while let Ok(m) = rx.try_recv() {
                    self.take(m);
                    if self.batch_full() {
                        self.commit();
                    }
                }
                self.commit();
                break;
            }
            if !self.strict
                && self.len > self.synced_len
                && self.last_sync.elapsed() >= self.interval
            {
                self.sync_relaxed();
            }
        }
        if self.len > self.synced_len {
            self.sync_relaxed();
        }
    }

    fn batch_full(&self) -> bool {
        self.acks.len() >= MAX_BATCH_RECORDS || self.buf.len() >= MAX_BATCH_BYTES
    }

    /// Encodes a submission into the batch buffer; returns true for a shutdown request.
    fn take(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Submit(payload, ack) => {
                let seq = self.next_seq + self.acks.len() as u64;
                format::encode_record(&mut self.buf, seq, &payload);
                self.acks.push(ack);
                false
            }
            Msg::Shutdown => true,
        }
    }

    /// Writes the batch with one append and (strict) one fsync, then acknowledges it.
    fn commit(&mut self) {
        if self.acks.is_empty() {
            return;
        }
        let first = self.next_seq;
        let n = self.acks.len();
        if let Err(e) = self.prepare(first) {
            return self.fail(&e);
        }
        let start = self.len;
        let mut res = self.seg.append(&self.buf);
        if res.is_ok() && self.strict {
            res = self.timed_sync();
        }
        if let Err(e) = res {
            self.rollback(start);
            return self.fail(&e);
        }
        self.len += self.buf.len() as u64;
        self.next_seq += n as u64;
        let last = self.next_seq - 1;
        if self.strict {
            self.synced_len = self.len;
        }
        // Durable state is published before any acknowledgement is sent, so that an
        // acknowledged record is always visible to `durable_seq`/`applied_watermark`.
        self.shared.progress.lock().publish(first, n);
        self.shared.healthy.store(true, Ordering::SeqCst);
        crate::observe::journal_batch(n);
        {
            let mut meta = self.shared.meta.lock();
            meta.stats.batches += 1;
            meta.stats.records += n as u64;
            meta.stats.max_batch = meta.stats.max_batch.max(n);
            if self.strict {
                meta.stats.synced_seq = last;
            }
            if let Some(active) = meta.segments.last_mut() {
                active.bytes = self.len;
            }
        }
        for (i, ack) in self.acks.drain(..).enumerate() {
            let seq = first + i as u64;
            let committed = Committed {
                seq,
                applied: Applied {
                    shared: self.shared.clone(),
                    seq,
                },
            };
            // A dropped receiver returns the value, whose guard then marks it applied.
            let _ = ack.send(Ok(committed));
        }
        self.buf.clear();
    }

    /// Restores a clean state after earlier failures and rolls the segment if needed.
    fn prepare(&mut self, first: u64) -> io::Result<()> {
        if self.broken {
            self.seg.set_len(self.len)?;
            self.timed_sync()?;
            self.synced_len = self.len;
            self.broken = false;
            self.sync_failed = false;
        }
        if self.sync_failed {
            self.sync_relaxed();
            if self.sync_failed {
                return Err(io::Error::other("retrying the failed fsync failed"));
            }
        }
        let would_be = self.len + self.buf.len() as u64;
        if self.shared.roll_requested.swap(false, Ordering::SeqCst) && self.len > HEADER_LEN as u64
        {
            self.must_roll = true;
        }
        if self.must_roll || (self.len > HEADER_LEN as u64 && would_be > self.segment_bytes) {
            self.roll(first)?;
        }
        Ok(())
    }

    /// Starts a new segment whose first record is `first`. The header is fsynced and the
    /// directory entry made durable before any record goes into it.
    fn roll(&mut self, first: u64) -> io::Result<()> {
        if self.len > self.synced_len {
            self.sync_relaxed();
            if self.sync_failed {
                return Err(io::Error::other("fsync before segment roll failed"));
            }
        }
        self.must_roll = true;
        let path = format::segment_path(&self.dir, first);
        let mut seg = self.storage.create(&path)?;
        seg.append(&format::encode_header(first))?;
        seg.sync()?;
        self.storage.sync_dir(&self.dir)?;
        self.seg = seg;
        self.len = HEADER_LEN as u64;
        self.synced_len = self.len;
        self.must_roll = false;
        self.shared.meta.lock().segments.push(SegMeta {
            first_seq: first,
            path,
            bytes: self.len,
        });
        Ok(())
    }

    /// Cuts a failed batch off the file so that no later record follows its bytes.
    fn rollback(&mut self, start: u64) {
        self.len = start;
        let res = self.seg.set_len(start).and_then(|()| self.seg.sync());
        match res {
            Ok(()) => self.synced_len = start,
            Err(e) => {
                tracing::error!(error = %e, "journal: cannot truncate a failed batch; retrying before the next write");
                self.broken = true;
            }
        }
    }

    fn fail(&mut self, e: &io::Error) {
        let was_healthy = self.shared.healthy.swap(false, Ordering::SeqCst);
        if was_healthy {
            tracing::error!(error = %e, "journal: write failed, records refused");
        }
        self.shared.meta.lock().stats.failed_batches += 1;
        crate::observe::journal_failed_batch();
        let err = JournalError::Io(e.to_string());
        for ack in self.acks.drain(..) {
            let _ = ack.send(Err(err.clone()));
        }
        self.buf.clear();
    }

    /// Relaxed mode's periodic fsync (also before rolls and at shutdown).
    fn sync_relaxed(&mut self) {
        let target = self.len;
        let last = self.next_seq - 1;
        match self.timed_sync() {
            Ok(()) => {
                self.synced_len = target;
                self.sync_failed = false;
                self.shared.meta.lock().stats.synced_seq = last;
            }
            Err(e) => {
                if !self.sync_failed {
                    tracing::error!(error = %e, "journal: fsync failed");
                }
                self.sync_failed = true;
                self.shared.healthy.store(false, Ordering::SeqCst);
            }
        }
        // Also after a failure: retry after one interval rather than spin on a bad disk.
        self.last_sync = Instant::now();
    }

    fn timed_sync(&mut self) -> io::Result<()> {
        let t = Instant::now();
        self.seg.sync()?;
        let took = t.elapsed();
        crate::observe::journal_fsync(took);
        let micros = took.as_micros() as u64;
        let mut meta = self.shared.meta.lock();
        meta.recent_fsyncs.push(micros);
        let s = &mut meta.stats;
        s.fsyncs += 1;
        s.last_fsync_micros = micros;
        s.fsync_micros_ewma = if s.fsyncs == 1 {
            micros
        } else {
            (s.fsync_micros_ewma * 7 + micros) / 8
        };
        s.max_fsync_micros = s.max_fsync_micros.max(micros);
        Ok(())
    }
}
