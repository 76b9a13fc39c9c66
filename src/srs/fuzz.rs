//! Interval fuzz: the reference schedulers' ranges (py-fsrs 6.3.2 `_get_fuzzed_interval`)
//! with a deterministic draw, so a review gives the same due date on every replica and
//! on every replay of an import.
//!
//! The draw, exactly: `seed = FNV-1a-64(question id as UTF-8 bytes ‖ reps as u32
//! little-endian)` where `reps` is the card's review count *after* this review; `u =
//! (SplitMix64(seed) >> 11) × 2⁻⁵³`, uniform in `[0, 1)`; it replaces py-fsrs's
//! `random()` and everything else follows py-fsrs.

/// Fuzz is applied only to review intervals of at least this many days.
pub const FUZZ_MIN_DAYS: f64 = 2.5;

/// `(start, end, factor)` in days: the fuzz half-width grows by `factor` per day of
/// the interval inside `[start, end)`, on top of one day.
const FUZZ_RANGES: [(f64, f64, f64); 3] = [
    (2.5, 7.0, 0.15),
    (7.0, 20.0, 0.1),
    (20.0, f64::INFINITY, 0.05),
];

/// The inclusive range `(min, max)` in days a review interval of `interval_days` may
/// be fuzzed to, capped at `maximum_interval_days`.
#[must_use]
pub fn fuzz_range(interval_days: u32, maximum_interval_days: u32) -> (u32, u32) {
    let days = f64::from(interval_days);
    let delta = FUZZ_RANGES
        .iter()
        .fold(1.0, |delta, &(start, end, factor)| {
            delta + factor * (days.min(end) - start).max(0.0)
        });
    // Python's round(): half to even.
    let min_ivl = (days - delta).round_ties_even().max(2.0);
    let max_ivl = (days + delta)
        .round_ties_even()
        .min(f64::from(maximum_interval_days));
    let min_ivl = min_ivl.min(max_ivl);
    (as_days(min_ivl), as_days(max_ivl))
}

/// The fuzzed interval in days for a review interval of `interval_days`, drawing from
/// `(question_id, reps)` (module documentation). Intervals under 2.5 days are returned
/// unchanged.
#[must_use]
pub fn fuzz_interval(
    interval_days: u32,
    maximum_interval_days: u32,
    question_id: &str,
    reps: u32,
) -> u32 {
    if f64::from(interval_days) < FUZZ_MIN_DAYS {
        return interval_days;
    }
    let (min_ivl, max_ivl) = fuzz_range(interval_days, maximum_interval_days);
    let u = unit_draw(question_id, reps);
    // As py-fsrs: round(u × (max − min + 1) + min), which can reach max + 1.
    let fuzzed = (u * f64::from(max_ivl - min_ivl + 1) + f64::from(min_ivl)).round_ties_even();
    as_days(fuzzed).min(maximum_interval_days)
}

/// The deterministic uniform draw in `[0, 1)` for `(question_id, reps)`.
#[must_use]
pub fn unit_draw(question_id: &str, reps: u32) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in question_id.bytes().chain(reps.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let bits = splitmix64(hash) >> 11;
    // 53 random bits scaled to [0, 1): exact in f64.
    bits as f64 / (1u64 << 53) as f64
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A whole, non-negative number of days as `u32` (inputs are already rounded and
/// bounded by the maximum interval).
fn as_days(days: f64) -> u32 {
    days.clamp(0.0, f64::from(u32::MAX)) as u32
}
