//! A throughput measurement that doubles as a smoke test: 64 concurrent submitters of
//! 100-byte payloads in strict mode, plus the raw fsync latency of the disk. It runs for
//! 0.2 s by default; `MEMORA_JOURNAL_MEASURE_SECS=3 cargo test --release --lib
//! persist::journal::measure -- --nocapture` gives the figures quoted in `docs/journal.md`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{Journal, JournalConfig};

fn measure_secs() -> f64 {
    std::env::var("MEMORA_JOURNAL_MEASURE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.2)
}

/// Median and 99th percentile of `write(100 B) + fdatasync` on a file in `dir`, µs.
fn raw_fsync_micros(dir: &std::path::Path, rounds: usize) -> (u64, u64) {
    let mut f = std::fs::File::create(dir.join("fsync-probe")).expect("create");
    let mut times: Vec<u64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&[7u8; 100]).expect("write");
            f.sync_data().expect("sync");
            t.elapsed().as_micros() as u64
        })
        .collect();
    times.sort_unstable();
    (times[rounds / 2], times[rounds * 99 / 100])
}

#[test]
fn strict_throughput_with_64_submitters() {
    let tmp = TempDir::new().expect("tmp");
    let (fsync_p50, fsync_p99) = raw_fsync_micros(tmp.path(), 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (journal, _) = Journal::open(JournalConfig::new(tmp.path().join("j")), 0).expect("open");
    let done = Arc::new(AtomicU64::new(0));
    let run_for = Duration::from_secs_f64(measure_secs());
    let started = Instant::now();
    rt.block_on(async {
        let deadline = started + run_for;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (j, done) = (journal.clone(), done.clone());
            tasks.spawn(async move {
                while Instant::now() < deadline {
                    let c = j.submit(vec![42u8; 100]).await.expect("commit");
                    drop(c.applied);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats = journal.stats();
    let n = done.load(Ordering::Relaxed);
    println!(
        "journal strict, 64 submitters, 100 B payloads: {:.0} records/s over {elapsed:.1} s; \
         {} batches, mean batch {:.1}, max batch {}; journal fsync ewma {} µs, max {} µs; \
         raw disk write+fdatasync p50 {fsync_p50} µs, p99 {fsync_p99} µs",
        n as f64 / elapsed,
        stats.batches,
        stats.records as f64 / stats.batches.max(1) as f64,
        stats.max_batch,
        stats.fsync_micros_ewma,
        stats.max_fsync_micros,
    );
    assert!(n > 0);
    assert_eq!(stats.records, n);
    assert_eq!(journal.applied_watermark(), n);
}
