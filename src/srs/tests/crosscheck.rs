//! Cross-check against py-fsrs 6.3.2 (srs.md): thousands of generated review histories
//! — all four ratings, same-day repeats, answers at the due time, gaps around 24 hours,
//! long gaps, several parameter sets and step settings — replayed through our
//! scheduler and through `tests/fsrs_reference/replay.py`; after every answer the
//! state and step must be equal, stability within 1e-3 relative, difficulty within
//! 1e-3, and the due time equal (fuzz off), except ±1 day where the unrounded interval
//! lies on a .5-day boundary (f32 against f64: within `raw × (2 × stability deviation +
//! 1e-5)` of the .5). Skipped, with one line saying so, when
//! `python3` cannot import fsrs 6.3.2.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::T0;
use crate::srs::scheduler::DAY_MS;
use crate::srs::{Card, Rating, Scheduler, SchedulerConfig};

const HISTORIES: usize = 4_000;
const REFERENCE_VERSION: &str = "6.3.2";
/// Fixed, so that a failure reproduces.
const SEED: u64 = 0x0005_eedf_5a5a_2026;

/// SplitMix64: a small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range_i64(&mut self, low: i64, high: i64) -> i64 {
        low + i64::try_from(self.below(u64::try_from(high - low).unwrap_or(1))).unwrap_or(0)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The parameter sets and step settings exercised.
fn configs(rng: &mut Rng) -> Vec<SchedulerConfig> {
    let base = SchedulerConfig {
        enable_fuzz: false,
        ..SchedulerConfig::default()
    };
    let mut frozen = fsrs::DEFAULT_PARAMETERS;
    frozen[17] = 0.0;
    frozen[18] = 0.0;
    frozen[19] = 0.0;
    // fsrs-rs's FSRS-5 test parameters, as 21 values (no short-term w19, decay 0.5).
    let fsrs5 = [
        0.684_542_2,
        1.679_082_5,
        4.734_942_4,
        10.042_885,
        7.441_023_3,
        0.642_197_97,
        1.071_918,
        0.002_519_525_4,
        1.432_437,
        0.1544,
        0.869_276_6,
        2.069_675_2,
        0.0953,
        0.2975,
        2.469_124_8,
        0.195_420_35,
        3.201_072,
        0.180_462_61,
        0.121_442_534,
        0.0,
        0.5,
    ];
    let mut out = vec![
        base.clone(),
        SchedulerConfig {
            parameters: frozen,
            desired_retention: 0.8,
            ..base.clone()
        },
        SchedulerConfig {
            parameters: fsrs5,
            desired_retention: 0.95,
            learning_steps_secs: vec![30],
            relearning_steps_secs: vec![600, 1800],
            ..base.clone()
        },
        SchedulerConfig {
            learning_steps_secs: vec![],
            relearning_steps_secs: vec![],
            maximum_interval_days: 365,
            ..base.clone()
        },
        SchedulerConfig {
            learning_steps_secs: vec![60, 600, 3600],
            desired_retention: 0.7,
            ..base.clone()
        },
    ];
    // Random parameters: each a ±30% jitter of the default, kept inside py-fsrs's bounds
    // by Scheduler::new (a refused set is simply redrawn).
    while out.len() < 9 {
        let mut parameters = fsrs::DEFAULT_PARAMETERS;
        for w in &mut parameters {
            *w *= 0.7 + 0.6 * rng.unit();
        }
        let config = SchedulerConfig {
            parameters,
            desired_retention: 0.75 + 0.2 * rng.unit(),
            ..base.clone()
        };
        if Scheduler::new(config.clone()).is_ok() {
            out.push(config);
        }
    }
    out
}

/// One history: answers and the cards our scheduler produced after each.
struct History {
    config: usize,
    reviews: Vec<(Rating, i64)>,
    cards: Vec<Card>,
}

fn generate(rng: &mut Rng, schedulers: &[Scheduler], config: usize) -> History {
    let s = &schedulers[config];
    let len = 1 + rng.below(30) as usize;
    let mut at = T0 + rng.range_i64(0, DAY_MS);
    let mut card: Option<Card> = None;
    let mut reviews = Vec::with_capacity(len);
    let mut cards = Vec::with_capacity(len);
    for i in 0..len {
        if i > 0 {
            let due = card.map_or(at, |c| c.due_ms);
            at = match rng.below(10) {
                // Same-day repeats, seconds to hours apart.
                0..=2 => at + rng.range_i64(0, 6 * 3_600_000),
                // When due, or a little late.
                3..=5 => due.max(at) + rng.range_i64(0, 2 * 3_600_000),
                // Days later.
                6 | 7 => at + rng.range_i64(DAY_MS, 60 * DAY_MS),
                // Right around a whole number of days.
                8 => at + DAY_MS * rng.range_i64(1, 4) + rng.range_i64(-2_000, 2_000),
                // Long gaps, up to ten years.
                _ => at + rng.range_i64(100 * DAY_MS, 3_650 * DAY_MS),
            };
        }
        let rating = Rating::ALL[rng.below(4) as usize];
        let next = s.review(card.as_ref(), rating, at, "q");
        reviews.push((rating, at));
        cards.push(next);
        card = Some(next);
    }
    History {
        config,
        reviews,
        cards,
    }
}

fn reference_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import fsrs, importlib.metadata as m; print(m.version('fsrs'))",
        ])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        return Err("python3 cannot import fsrs".to_owned());
    }
    if version != REFERENCE_VERSION {
        return Err(format!(
            "fsrs {version} installed, {REFERENCE_VERSION} needed"
        ));
    }
    Ok(())
}

fn run_reference(request: &Value) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fsrs_reference/replay.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start replay.py");
    // replay.py reads all of stdin before writing, so writing first cannot deadlock.
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write histories");
    let out = child.wait_with_output().expect("replay.py output");
    assert!(out.status.success(), "replay.py failed");
    serde_json::from_slice(&out.stdout).expect("replay.py JSON")
}

#[test]
fn scheduler_agrees_with_py_fsrs() {
    if let Err(why) = reference_available() {
        println!("skipped: py-fsrs cross-check ({why}; `pip install fsrs==6.3.2` to run it)");
        return;
    }
    let mut rng = Rng(SEED);
    let configs = configs(&mut rng);
    let schedulers: Vec<Scheduler> = configs
        .iter()
        .map(|c| Scheduler::new(c.clone()).expect("valid"))
        .collect();
    let histories: Vec<History> = (0..HISTORIES)
        .map(|i| generate(&mut rng, &schedulers, i % configs.len()))
        .collect();
    let request = json!({
        "cases": histories.iter().map(|h| json!({
            "config": configs[h.config],
            "reviews": h.reviews.iter().map(|&(r, at)| json!([r.as_u8(), at])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let response = run_reference(&request);
    let results = response["results"].as_array().expect("results");
    assert_eq!(results.len(), histories.len());

    let mut compared = 0usize;
    let mut boundary_days = 0usize;
    let mut capped = 0usize;
    let (mut max_s, mut max_d) = (0f64, 0f64);
    let mut failures = Vec::new();
    'histories: for (n, (h, reference)) in histories.iter().zip(results).enumerate() {
        let reference = reference.as_array().expect("per review");
        for (i, (ours, theirs)) in h.cards.iter().zip(reference).enumerate() {
            let f = |k: &str| theirs[k].as_f64().expect(k);
            let (s, d) = (f("stability"), f("difficulty"));
            if s > 36_500.0 {
                // The fsrs crate caps stability at 36,500 days; py-fsrs does not.
                capped += 1;
                continue 'histories;
            }
            compared += 1;
            let ds = (f64::from(ours.stability) - s).abs() / s;
            let dd = (f64::from(ours.difficulty) - d).abs();
            max_s = max_s.max(ds);
            max_d = max_d.max(dd);
            let state = theirs["state"].as_u64().expect("state");
            let step = theirs["step"].as_u64().expect("step");
            let due = theirs["due_ms"].as_i64().expect("due");
            let mut ok = ds <= 1e-3
                && dd <= 1e-3
                && u64::from(ours.state.as_u8()) == state
                && u64::from(ours.step) == step;
            if ok && ours.due_ms != due {
                let raw = theirs["raw_interval"].as_f64().unwrap_or(0.0);
                // On a boundary: the .5 lies within the f32-vs-f64 deviation of the
                // interval — this answer's stability deviation (intervals are
                // proportional to stability) plus the f32 rounding of the crate's
                // interval formula (a power of 1/decay: 1e-5 relative bounds it).
                let half = (raw.fract() - 0.5).abs() <= raw * (2.0 * ds + 1e-5);
                ok = half && (ours.due_ms - due).abs() == DAY_MS;
                boundary_days += usize::from(ok);
            }
            if !ok && failures.len() < 5 {
                failures.push(format!(
                    "history {n} (config {}), answer {i}: ours {ours:?}, py-fsrs {theirs}\n  answers {:?}",
                    h.config, h.reviews
                ));
            }
            if !ok && failures.len() >= 5 {
                break 'histories;
            }
        }
    }
    println!(
        "py-fsrs cross-check: {HISTORIES} histories, {compared} answers compared, max stability \
         deviation {max_s:.2e} (relative), max difficulty deviation {max_d:.2e}, {boundary_days} \
         due times off by one day on a .5-day boundary, {capped} histories cut where py-fsrs \
         stability passed 36,500 days"
    );
    assert!(
        failures.is_empty(),
        "disagreements:\n{}",
        failures.join("\n")
    );
    assert!(
        compared > HISTORIES * 5,
        "too few answers compared: {compared}"
    );
}
