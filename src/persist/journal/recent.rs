//! The most recent fsync durations, for the "recent p50/p99" of `GET
//! /api/v1/admin/engine` (the Prometheus histogram has the long-run distribution).

use std::collections::VecDeque;

/// How many fsyncs are remembered.
pub const RECENT_FSYNCS: usize = 1024;

/// A ring of the last [`RECENT_FSYNCS`] fsync durations, µs.
#[derive(Debug, Default)]
pub(crate) struct RecentFsyncs {
    micros: VecDeque<u64>,
}

/// Percentiles of the recent fsync durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FsyncLatency {
    /// fsyncs the figures cover (at most [`RECENT_FSYNCS`]).
    pub samples: usize,
    /// Median, µs.
    pub p50_micros: u64,
    /// 99th percentile, µs.
    pub p99_micros: u64,
    /// Longest of the samples, µs.
    pub max_micros: u64,
}

impl RecentFsyncs {
    /// Remembers one fsync, forgetting the oldest beyond the capacity.
    pub fn push(&mut self, micros: u64) {
        if self.micros.len() == RECENT_FSYNCS {
            self.micros.pop_front();
        }
        self.micros.push_back(micros);
    }

    /// Nearest-rank percentiles of the remembered fsyncs (zeros when none).
    pub fn latency(&self) -> FsyncLatency {
        let mut sorted: Vec<u64> = self.micros.iter().copied().collect();
        sorted.sort_unstable();
        let rank = |p: usize| -> u64 {
            if sorted.is_empty() {
                return 0;
            }
            let i = (sorted.len() * p).div_ceil(100).max(1) - 1;
            sorted[i.min(sorted.len() - 1)]
        };
        FsyncLatency {
            samples: sorted.len(),
            p50_micros: rank(50),
            p99_micros: rank(99),
            max_micros: sorted.last().copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank_of_the_last_samples() {
        let mut r = RecentFsyncs::default();
        assert_eq!(r.latency(), FsyncLatency::default());
        for us in 1..=100 {
            r.push(us);
        }
        let l = r.latency();
        assert_eq!(
            (l.samples, l.p50_micros, l.p99_micros, l.max_micros),
            (100, 50, 99, 100)
        );
        for _ in 0..RECENT_FSYNCS {
            r.push(7);
        }
        let l = r.latency();
        assert_eq!(
            (l.samples, l.p50_micros, l.p99_micros, l.max_micros),
            (RECENT_FSYNCS, 7, 7, 7)
        );
    }
}
