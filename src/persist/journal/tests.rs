//! Tests of the journal: round trips, recovery rules (torn tail versus corruption),
//! group commit, fault injection through `FaultyStorage`, and the applied watermark.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tempfile::TempDir;

use super::io::FaultyStorage;
use super::*;

fn config(dir: &Path) -> JournalConfig {
    JournalConfig {
        segment_bytes: 4096,
        ..JournalConfig::new(dir)
    }
}

fn payload(i: u64) -> Vec<u8> {
    let len = 10 + (i * 37 % 90) as usize;
    (0..len).map(|k| (i as usize * 31 + k) as u8).collect()
}

fn open(dir: &Path, after: u64) -> (Journal, Recovered) {
    Journal::open(config(dir), after).expect("open")
}

fn open_faulty(dir: &Path, durability: Durability) -> (Journal, Arc<io::Faults>) {
    let storage = FaultyStorage::default();
    let faults = storage.faults.clone();
    let cfg = JournalConfig {
        durability,
        fsync_interval: Duration::from_millis(100),
        ..config(dir)
    };
    let (j, _) = Journal::open_with_storage(cfg, 0, Arc::new(storage)).expect("open");
    (j, faults)
}

/// Submits `n` payloads, ten at a time so that they group-commit in batches small
/// enough for segments to roll, and returns their seqs.
async fn write_n(j: &Journal, from: u64, n: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    let ids: Vec<u64> = (from..from + n).collect();
    for chunk in ids.chunks(10) {
        let futs: Vec<_> = chunk.iter().map(|&i| j.submit(payload(i))).collect();
        for f in futs {
            seqs.push(f.await.expect("commit").seq);
        }
    }
    seqs
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test]
async fn round_trip_across_segment_rolls() {
    let tmp = TempDir::new().expect("tmp");
    let (j, rec) = open(tmp.path(), 0);
    assert!(rec.records.is_empty());
    assert_eq!(rec.last_seq, 0);
    let seqs = write_n(&j, 1, 300).await;
    assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    let stats = j.stats();
    assert!(stats.segments > 3, "expected rolls, got {stats:?}");
    assert_eq!(stats.durable_seq, 300);
    j.shutdown();
    assert!(segment_files(tmp.path()).len() > 3);

    let (j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.truncated_tail_bytes, 0);
    let expected: Vec<_> = (1..=300).map(|i| (i, payload(i))).collect();
    assert_eq!(rec.records, expected);
    j.shutdown();

    let (_j, rec) = open(tmp.path(), 100);
    assert_eq!(rec.records, expected[100..].to_vec());
    assert_eq!(rec.last_seq, 300);

    let report = scan(tmp.path()).expect("scan");
    assert_eq!(report.records, 300);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(300)));
    assert_eq!(report.torn_tail_bytes, 0);
}

#[tokio::test]
async fn reopen_continues_sequence_numbers() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = open(tmp.path(), 0);
    write_n(&j, 1, 5).await;
    drop(j); // the last handle shuts down
    let (j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.last_seq, 5);
    assert_eq!(j.submit(payload(6)).await.expect("commit").seq, 6);
    assert_eq!(j.applied_watermark(), 6);
}

/// Writes three records (one segment) and returns the file and the last record's offset.
async fn three_records(dir: &Path) -> (PathBuf, usize) {
    let (j, _) = open(dir, 0);
    write_n(&j, 1, 3).await;
    j.shutdown();
    let file = segment_files(dir).pop().expect("segment");
    let len = fs::metadata(&file).expect("meta").len() as usize;
    (file, len - (format::RECORD_OVERHEAD + payload(3).len()))
}

#[tokio::test]
async fn torn_tail_at_every_offset_is_truncated() {
    let tmp = TempDir::new().expect("tmp");
    let (file, last_start) = three_records(tmp.path()).await;
    let full = fs::read(&file).expect("read");
    for cut in last_start + 1..full.len() {
        fs::write(&file, &full[..cut]).expect("write");
        let torn = (cut - last_start) as u64;
        assert_eq!(scan(tmp.path()).expect("scan").torn_tail_bytes, torn);
        assert_eq!(
            fs::metadata(&file).expect("meta").len() as usize,
            cut,
            "scan modified"
        );
        let (j, rec) = open(tmp.path(), 0);
        assert_eq!(rec.truncated_tail_bytes, torn, "cut at {cut}");
        assert_eq!(rec.records.len(), 2);
        assert_eq!(rec.last_seq, 2);
        j.shutdown();
        assert_eq!(
            fs::metadata(&file).expect("meta").len() as usize,
            last_start
        );
    }
    // After the repair, appending continues cleanly.
    let (j, _) = open(tmp.path(), 0);
    assert_eq!(j.submit(payload(3)).await.expect("commit").seq, 3);
    j.shutdown();
    assert_eq!(fs::read(&file).expect("read"), full);
}

#[tokio::test]
async fn bad_checksum_or_zeros_at_the_very_end_is_a_torn_tail() {
    let tmp = TempDir::new().expect("tmp");
    let (file, last_start) = three_records(tmp.path()).await;
    let mut bytes = fs::read(&file).expect("read");
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    bytes.extend_from_slice(&[0u8; 100]);
    fs::write(&file, &bytes).expect("write");
    let (_j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.truncated_tail_bytes, (bytes.len() - last_start) as u64);
    assert_eq!(rec.last_seq, 2);
}

#[tokio::test]
async fn corrupted_middle_record_is_refused_with_file_and_offset() {
    let tmp = TempDir::new().expect("tmp");
    let (file, _) = three_records(tmp.path()).await;
    let clean = fs::read(&file).expect("read");
    let second = format::HEADER_LEN + format::RECORD_OVERHEAD + payload(1).len();
    // A flipped payload byte, then a flipped length byte, of record 2.
    for at in [second + format::RECORD_OVERHEAD + 3, second] {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x40;
        fs::write(&file, &bytes).expect("write");
        let err = Journal::open(config(tmp.path()), 0).expect_err("must refuse");
        let OpenError::Corruption(c) = &err else {
            panic!("expected corruption, got {err}");
        };
        match c {
            CorruptionError::BadChecksum { path, offset }
            | CorruptionError::BadLength { path, offset, .. } => {
                assert_eq!(path, &file);
                assert_eq!(*offset, second as u64);
            }
            other => panic!("unexpected {other}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&file.display().to_string()) && text.contains(&second.to_string()),
            "{text}"
        );
        let scanned = scan(tmp.path()).expect_err("scan must refuse too");
        assert_eq!(scanned.to_string(), text);
        assert_eq!(
            fs::read(&file).expect("read"),
            bytes,
            "nothing was modified"
        );
    }
}

#[tokio::test]
async fn damage_at_the_end_of_a_non_last_segment_is_corruption() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = open(tmp.path(), 0);
    write_n(&j, 1, 200).await;
    j.shutdown();
    let files = segment_files(tmp.path());
    let mut bytes = fs::read(&files[0]).expect("read");
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    fs::write(&files[0], &bytes).expect("write");
    let err = scan(tmp.path()).expect_err("refuse");
    assert!(
        matches!(&err, OpenError::Corruption(CorruptionError::BadChecksum { path, .. }) if *path == files[0]),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_record_version_is_refused_even_at_the_tail() {
    let tmp = TempDir::new().expect("tmp");
    let (file, last_start) = three_records(tmp.path()).await;
    let mut bytes = fs::read(&file).expect("read");
    bytes[last_start + 16] = 9;
    let crc = crc32fast::hash(&bytes[last_start + 8..]);
    bytes[last_start + 4..last_start + 8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&file, &bytes).expect("write");
    let err = Journal::open(config(tmp.path()), 0).expect_err("refuse");
    assert!(
        matches!(&err, OpenError::Corruption(CorruptionError::UnknownVersion { version: 9, offset, .. }) if *offset == last_start as u64),
        "{err}"
    );
}

#[tokio::test]
async fn bad_segment_header_is_refused() {
    let tmp = TempDir::new().expect("tmp");
    let (file, _) = three_records(tmp.path()).await;
    let mut bytes = fs::read(&file).expect("read");
    bytes[8] = 7; // segment format version
    fs::write(&file, &bytes).expect("write");
    let err = scan(tmp.path()).expect_err("refuse");
    assert!(
        err.to_string().contains("unknown segment format version 7"),
        "{err}"
    );
}

#[tokio::test]
async fn sequence_gap_between_segments_is_refused() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = open(tmp.path(), 0);
    write_n(&j, 1, 200).await;
    j.shutdown();
    let files = segment_files(tmp.path());
    assert!(files.len() >= 3);
    fs::remove_file(&files[1]).expect("rm");
    let err = Journal::open(config(tmp.path()), 0).expect_err("refuse");
    assert!(
        matches!(&err, OpenError::Corruption(CorruptionError::SequenceGap { path, offset: 0, .. }) if *path == files[2]),
        "{err}"
    );
    // The first segment starting after the checkpoint + 1 is a gap too.
    fs::remove_file(&files[0]).expect("rm");
    let err = Journal::open(config(tmp.path()), 0).expect_err("refuse");
    assert!(
        matches!(
            &err,
            OpenError::Corruption(CorruptionError::SequenceGap { expected: 1, .. })
        ),
        "{err}"
    );
    // `scan` does not know the checkpoint: the remaining segments are consistent.
    assert!(scan(tmp.path()).is_ok());
}

#[tokio::test]
async fn truncate_through_deletes_only_wholly_covered_segments() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = open(tmp.path(), 0);
    write_n(&j, 1, 300).await;
    let report = scan(tmp.path()).expect("scan");
    let firsts: Vec<u64> = report.segments.iter().map(|s| s.first_seq).collect();
    assert!(firsts.len() >= 4);
    // Covering all but the last record of segment 1 deletes segment 0 only.
    assert_eq!(j.truncate_through(firsts[2] - 2).expect("truncate"), 1);
    assert_eq!(j.truncate_through(firsts[2] - 2).expect("truncate"), 0);
    assert_eq!(j.truncate_through(firsts[2] - 1).expect("truncate"), 1);
    assert_eq!(segment_files(tmp.path()).len(), firsts.len() - 2);
    // Everything covered: the active segment stays.
    let deleted = j.truncate_through(u64::MAX).expect("truncate");
    assert_eq!(deleted, firsts.len() - 3);
    let files = segment_files(tmp.path());
    assert_eq!(
        files,
        vec![format::segment_path(tmp.path(), firsts[firsts.len() - 1])]
    );
    assert_eq!(j.stats().segments, 1);
    j.shutdown();
    let (_j, rec) = open(tmp.path(), 300);
    assert!(rec.records.is_empty());
    assert_eq!(rec.last_seq, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_get_consecutive_distinct_seqs_in_shared_batches() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = Journal::open(JournalConfig::new(tmp.path()), 0).expect("open");
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8u64 {
        let j = j.clone();
        tasks.spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..500 {
                seqs.push(j.submit(payload(t * 1000 + i)).await.expect("commit").seq);
            }
            seqs
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let seqs = r.expect("task");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "per-task order");
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=4000).collect::<Vec<_>>());
    let stats = j.stats();
    assert_eq!(stats.records, 4000);
    assert!(stats.batches < 4000, "no group commit: {stats:?}");
    assert!(stats.max_batch > 1);
    assert_eq!(j.applied_watermark(), 4000);
}

#[tokio::test]
async fn strict_acknowledges_only_after_the_fsync() {
    let tmp = TempDir::new().expect("tmp");
    let (j, faults) = open_faulty(tmp.path(), Durability::Strict);
    faults.hold_syncs();
    let mut f = Box::pin(j.submit(payload(1)));
    wait_until("writer in fsync", || {
        faults.waiting.load(Ordering::SeqCst) == 1
    });
    let early = tokio::time::timeout(Duration::from_millis(50), &mut f).await;
    assert!(early.is_err(), "acknowledged before the fsync");
    assert_eq!(j.durable_seq(), 0);
    faults.release_syncs();
    assert_eq!(f.await.expect("commit").seq, 1);
    assert_eq!(j.durable_seq(), 1);
}

#[tokio::test]
async fn failed_fsync_fails_the_whole_batch_and_seqs_are_reused() {
    let tmp = TempDir::new().expect("tmp");
    let (j, faults) = open_faulty(tmp.path(), Durability::Strict);
    assert_eq!(j.submit(payload(1)).await.expect("commit").seq, 1);
    faults.hold_syncs();
    let a = j.submit(payload(2));
    wait_until("writer in fsync", || {
        faults.waiting.load(Ordering::SeqCst) == 1
    });
    let rest: Vec<_> = (3..6).map(|i| j.submit(payload(i))).collect();
    // Every fsync fails (including the one after cutting the batch off) until reset.
    faults.fail_syncs.store(u32::MAX, Ordering::SeqCst);
    faults.release_syncs();
    assert!(matches!(a.await, Err(JournalError::Io(_))));
    for f in rest {
        assert!(
            matches!(f.await, Err(JournalError::Io(_))),
            "batch member acknowledged"
        );
    }
    faults.fail_syncs.store(0, Ordering::SeqCst);
    assert!(!j.is_healthy());
    let stats = j.stats();
    assert_eq!(stats.failed_batches, 2, "{stats:?}");
    assert_eq!(j.durable_seq(), 1);
    let ok = j.submit(payload(6)).await.expect("commit");
    assert_eq!(ok.seq, 2);
    drop(ok);
    assert!(j.is_healthy());
    j.shutdown();
    let (_j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.records, vec![(1, payload(1)), (2, payload(6))]);
    assert_eq!(rec.truncated_tail_bytes, 0);
}

#[tokio::test]
async fn partial_write_is_cut_off_before_later_records() {
    let tmp = TempDir::new().expect("tmp");
    let (j, faults) = open_faulty(tmp.path(), Durability::Strict);
    write_n(&j, 1, 3).await;
    faults.fail_appends.store(1, Ordering::SeqCst);
    let err = j.submit(vec![7; 500]).await.expect_err("ENOSPC");
    assert!(err.to_string().contains("os error 28"), "{err}");
    assert_eq!(j.submit(payload(4)).await.expect("commit").seq, 4);
    j.shutdown();
    let (_j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(rec.records.len(), 4);
    assert_eq!(rec.records[3], (4, payload(4)));
}

#[tokio::test]
async fn unrepairable_failure_refuses_until_the_repair_succeeds() {
    let tmp = TempDir::new().expect("tmp");
    let (j, faults) = open_faulty(tmp.path(), Durability::Strict);
    write_n(&j, 1, 2).await;
    faults.fail_set_len.store(true, Ordering::SeqCst);
    faults.fail_appends.store(1, Ordering::SeqCst);
    assert!(j.submit(vec![1; 300]).await.is_err());
    // The half-written batch cannot be cut off: refuse rather than append after it.
    assert!(j.submit(payload(3)).await.is_err());
    assert!(!j.is_healthy());
    faults.fail_set_len.store(false, Ordering::SeqCst);
    assert_eq!(j.submit(payload(3)).await.expect("commit").seq, 3);
    assert!(j.is_healthy());
    j.shutdown();
    let (_j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(
        rec.records.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[tokio::test]
async fn failed_roll_is_retried_without_breaking_continuity() {
    let tmp = TempDir::new().expect("tmp");
    let (j, faults) = open_faulty(tmp.path(), Durability::Strict);
    write_n(&j, 1, 40).await; // fills most of the first 4 KiB segment
    faults.fail_create.store(true, Ordering::SeqCst);
    let mut refused = 0;
    for i in 41..120 {
        if j.submit(payload(i)).await.is_err() {
            refused += 1;
            break;
        }
    }
    assert_eq!(refused, 1, "a roll should have been needed");
    faults.fail_create.store(false, Ordering::SeqCst);
    let seq = j.submit(payload(999)).await.expect("commit").seq;
    j.shutdown();
    let (_j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.last_seq, seq);
    assert_eq!(rec.records.len() as u64, seq);
}

#[tokio::test]
async fn relaxed_acknowledges_before_the_fsync_and_fsyncs_within_the_interval() {
    let tmp = TempDir::new().expect("tmp");
    let (j, faults) = open_faulty(tmp.path(), Durability::Relaxed);
    let syncs_at_open = faults.syncs.load(Ordering::SeqCst);
    faults.hold_syncs();
    let c = tokio::time::timeout(Duration::from_secs(2), j.submit(payload(1)))
        .await
        .expect("relaxed must not wait for the fsync")
        .expect("commit");
    assert_eq!(c.seq, 1);
    let synced = faults.syncs.load(Ordering::SeqCst);
    faults.release_syncs();
    assert_eq!(synced, syncs_at_open);
    let t = Instant::now();
    let c2 = j.submit(payload(2)).await.expect("commit");
    wait_until("periodic fsync", || j.stats().synced_seq >= c2.seq);
    // Interval 100 ms; allow scheduling slack on a busy machine.
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    assert!(faults.syncs.load(Ordering::SeqCst) > syncs_at_open);
}

#[tokio::test]
async fn relaxed_failed_fsync_refuses_until_an_fsync_succeeds() {
    let tmp = TempDir::new().expect("tmp");
    let (j, faults) = open_faulty(tmp.path(), Durability::Relaxed);
    faults.fail_syncs.store(1, Ordering::SeqCst);
    j.submit(payload(1)).await.expect("acked before the fsync");
    wait_until("failed fsync", || !j.is_healthy());
    // The retry of the fsync succeeds, so the next record is accepted.
    assert_eq!(j.submit(payload(2)).await.expect("commit").seq, 2);
    assert!(j.is_healthy());
}

#[tokio::test]
async fn applied_watermark_waits_for_guards() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = open(tmp.path(), 0);
    let c1 = j.submit(payload(1)).await.expect("commit");
    let c2 = j.submit(payload(2)).await.expect("commit");
    drop(c2);
    assert_eq!(j.durable_seq(), 2);
    assert_eq!(j.applied_watermark(), 0, "record 1 is not applied yet");
    drop(c1);
    assert_eq!(j.applied_watermark(), 2);

    // A future dropped before it is ever polled must not hold the watermark back.
    let abandoned = j.submit(payload(3));
    drop(abandoned);
    // Nor one dropped after the writer answered.
    let answered = j.submit(payload(4));
    wait_until("durable", || j.durable_seq() >= 4);
    drop(answered);
    let c5 = j.submit(payload(5)).await.expect("commit");
    assert_eq!(c5.seq, 5);
    wait_until("watermark", || j.applied_watermark() == 4);
    drop(c5);
    assert_eq!(j.applied_watermark(), 5);
}

#[tokio::test]
async fn after_seq_on_an_empty_directory_continues_from_the_checkpoint() {
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("journal");
    let (j, rec) = open(&dir, 41);
    assert_eq!(rec.last_seq, 41);
    assert_eq!(j.applied_watermark(), 41);
    assert_eq!(j.submit(payload(42)).await.expect("commit").seq, 42);
    j.shutdown();
    assert_eq!(segment_files(&dir), vec![format::segment_path(&dir, 42)]);
    assert!(dir.join("journal-00000000000000000042.wal").exists());
    let (j, rec) = open(&dir, 41);
    assert_eq!(rec.records, vec![(42, payload(42))]);
    j.shutdown();
    // A checkpoint beyond the journal's end (relaxed mode lost its unsynced tail):
    // sequence numbers still move forward and the next open is consistent.
    let (j, rec) = open(&dir, 100);
    assert_eq!(rec.last_seq, 100);
    assert_eq!(j.submit(payload(101)).await.expect("commit").seq, 101);
    j.shutdown();
    let (_j, rec) = open(&dir, 100);
    assert_eq!(rec.records, vec![(101, payload(101))]);
}

#[tokio::test]
async fn shutdown_writes_what_was_queued_and_then_refuses() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = open(tmp.path(), 0);
    let queued: Vec<_> = (1..=50).map(|i| j.submit(payload(i))).collect();
    j.shutdown();
    for f in queued {
        f.await.expect("queued before shutdown");
    }
    assert!(matches!(
        j.submit(payload(51)).await,
        Err(JournalError::Closed)
    ));
    let (_j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.records.len(), 50);
}

#[tokio::test]
async fn torn_segment_header_is_removed() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = open(tmp.path(), 0);
    write_n(&j, 1, 3).await;
    j.shutdown();
    let stray = format::segment_path(tmp.path(), 4);
    fs::write(&stray, [0u8; 10]).expect("write");
    let (j, rec) = open(tmp.path(), 0);
    assert_eq!(rec.truncated_tail_bytes, 10);
    assert!(!stray.exists());
    assert_eq!(j.submit(payload(4)).await.expect("commit").seq, 4);
}

#[test]
fn oversized_payload_is_refused_before_the_writer() {
    let tmp = TempDir::new().expect("tmp");
    let (j, _) = open(tmp.path(), 0);
    let err = futures_lite_block_on(j.submit(vec![0; MAX_PAYLOAD_BYTES + 1]));
    assert!(matches!(err, Err(JournalError::TooLarge { .. })));
}

fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever follows the valid records of the last segment, reading never panics and
    /// either keeps every valid record (torn tail) or reports corruption.
    #[test]
    fn arbitrary_tail_bytes_never_lose_valid_records(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let tmp = TempDir::new().expect("tmp");
        let file = format::segment_path(tmp.path(), 1);
        let mut bytes = format::encode_header(1).to_vec();
        for seq in 1..=3 {
            format::encode_record(&mut bytes, seq, &payload(seq));
        }
        bytes.extend_from_slice(&tail);
        fs::write(&file, &bytes).expect("write");
        match scan(tmp.path()) {
            Ok(report) => prop_assert!(report.last_seq >= Some(3)),
            Err(OpenError::Corruption(_)) => {}
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}
