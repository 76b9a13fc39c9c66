//! Latency and error bookkeeping: each connection records into its own [`OpStats`]
//! (no sharing while measuring), and the per-connection records are merged at the end
//! into one [`Summary`] per operation.

use std::collections::BTreeMap;
use std::time::Duration;

/// What one connection saw for one operation.
#[derive(Debug, Default, Clone)]
pub struct OpStats {
    /// Latencies of successful (2xx) requests, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Failed requests by `"{status} {code}"` (or `"transport"`).
    pub errors: BTreeMap<String, u64>,
}

impl OpStats {
    /// Records one successful request.
    pub fn ok(&mut self, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.push(us);
    }

    /// Records one failed request under `key`.
    pub fn error(&mut self, key: String) {
        *self.errors.entry(key).or_default() += 1;
    }

    /// Adds `other`'s records to these.
    pub fn merge(&mut self, other: OpStats) {
        self.latencies_us.extend(other.latencies_us);
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
    }

    /// Sorts the latencies and computes the figures over a measured `window`.
    pub fn summarize(mut self, window: Duration) -> Summary {
        self.latencies_us.sort_unstable();
        let l = &self.latencies_us;
        let secs = window.as_secs_f64();
        Summary {
            count: l.len() as u64,
            rps: if secs > 0.0 {
                l.len() as f64 / secs
            } else {
                0.0
            },
            p50_us: percentile(l, 50.0),
            p95_us: percentile(l, 95.0),
            p99_us: percentile(l, 99.0),
            max_us: l.last().copied().unwrap_or(0),
            errors: self.errors,
        }
    }
}

/// The figures printed for one operation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Successful requests in the window.
    pub count: u64,
    /// Successful requests per second.
    pub rps: f64,
    /// Latency percentiles and maximum of successful requests, microseconds.
    pub p50_us: u32,
    /// 95th percentile.
    pub p95_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// Maximum.
    pub max_us: u32,
    /// Failures by `"{status} {code}"`.
    pub errors: BTreeMap<String, u64>,
}

/// Nearest-rank percentile `p` (0–100] of `sorted` (ascending); 0 when empty.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    // Nearest rank: the smallest value with at least p% of the samples at or below it.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 95.0), 95);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        // Ten samples: p95 and p99 are both the largest one.
        let v: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), 5);
        assert_eq!(percentile(&v, 95.0), 10);
        assert_eq!(percentile(&v, 99.0), 10);
    }

    #[test]
    fn merge_and_summarize() {
        let mut a = OpStats::default();
        let mut b = OpStats::default();
        for us in [300, 100, 200] {
            a.ok(Duration::from_micros(us));
        }
        b.ok(Duration::from_micros(400));
        a.error("409 NOT_UNLOCKED".into());
        b.error("409 NOT_UNLOCKED".into());
        b.error("transport".into());
        a.merge(b);
        let s = a.summarize(Duration::from_secs(2));
        assert_eq!(s.count, 4);
        assert!((s.rps - 2.0).abs() < 1e-9);
        assert_eq!(
            (s.p50_us, s.p95_us, s.p99_us, s.max_us),
            (200, 400, 400, 400)
        );
        assert_eq!(s.errors["409 NOT_UNLOCKED"], 2);
        assert_eq!(s.errors["transport"], 1);
    }

    #[test]
    fn huge_latencies_saturate() {
        let mut a = OpStats::default();
        a.ok(Duration::from_secs(10_000));
        assert_eq!(a.latencies_us, vec![u32::MAX]);
    }
}
