//! Command-line arguments of `memora-bench`, kept apart from `main` so that their
//! parsing and validation can be unit-tested.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// What each connection does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `GET /api/v1/subjects/{id}/progress`, subjects round-robin.
    Progress,
    /// `GET /api/v1/bench/subjects/{id}/progress`: the same bytes pre-serialized
    /// (needs `http.bench_routes = true`); the denominator of the progress target.
    Baseline,
    /// `POST /api/v1/lessons/{id}/complete`, each student in unlock order.
    Complete,
    /// 60% progress reads, 25% completions, 15% wallet reads.
    Mixed,
    /// `POST /api/v1/auth/login` (argon2 cost as configured on the server).
    Login,
    /// `GET /content/plans/{plan}/topics/{topic}.json`: a compiled topic file of each
    /// subject (found through the plan's manifest), served from the output root.
    Content,
    /// Review sessions: `GET /api/v1/reviews/due?limit=20`, then `POST
    /// /api/v1/reviews` answering up to 5 of the listed cards, per student in turn
    /// (setup gives every student `--review-cards` due cards; needs the admin).
    Reviews,
    /// `GET /api/v1/reviews/due?limit=20` only (same setup as `reviews`).
    Due,
}

impl Scenario {
    /// The name used in the report and the JSON line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Progress => "progress",
            Scenario::Baseline => "baseline",
            Scenario::Complete => "complete",
            Scenario::Mixed => "mixed",
            Scenario::Login => "login",
            Scenario::Content => "content",
            Scenario::Reviews => "reviews",
            Scenario::Due => "due",
        }
    }
}

/// Load generator for a running Memora server: N students on C concurrent
/// connections for D seconds; prints throughput and latency percentiles per operation.
#[derive(Debug, Clone, Parser)]
#[command(name = "memora-bench", version)]
pub struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin email (needed for --setup and to read the plan's subjects).
    #[arg(long, env = "MEMORA_BENCH_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Admin password.
    #[arg(long, env = "MEMORA_BENCH_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Plan the bench students are assigned to.
    #[arg(long, default_value = "fcc-2018")]
    pub plan: String,
    /// Number of students (`bench-{i}@bench.local`, i from 0).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub students: u32,
    /// Concurrent connections (one request in flight on each).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: u32,
    /// Measured seconds (after the warmup).
    #[arg(long, default_value_t = 20.0, value_parser = positive_secs)]
    pub duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2.0, value_parser = non_negative_secs)]
    pub warmup: f64,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Scenario::Progress)]
    pub scenario: Scenario,
    /// Subject for progress/baseline/mixed (default: the plan's subjects round-robin).
    #[arg(long)]
    pub subject: Option<String>,
    /// Create the students if missing (409/422 for existing ones is fine).
    #[arg(long)]
    pub setup: bool,
    /// IANA time zone of students created by --setup.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// Password of the bench students.
    #[arg(long, default_value = "bench-password-1")]
    pub student_password: String,
    /// Seed of the hearts/mix random choices (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cards per student created before a `reviews` or `due` run (the plan's first
    /// questions, all due).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub review_cards: u32,
}

impl Args {
    /// The measured window.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    /// The warmup window.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }

    /// The URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds in (0, 86400]")),
    }
}

fn non_negative_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds in [0, 86400]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("memora-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_documentation() {
        let a = parse(&[]).expect("defaults parse");
        assert_eq!(a.plan, "fcc-2018");
        assert_eq!(a.students, 1000);
        assert_eq!(a.connections, 64);
        assert_eq!(a.duration(), Duration::from_secs(20));
        assert_eq!(a.warmup(), Duration::from_secs(2));
        assert_eq!(a.scenario, Scenario::Progress);
        assert!(!a.setup);
        assert_eq!(a.timezone, "UTC");
    }

    #[test]
    fn every_flag_parses() {
        let a = parse(&[
            "--url",
            "http://h:1/",
            "--admin-email",
            "a@x",
            "--admin-password",
            "pw",
            "--plan",
            "p",
            "--students",
            "10",
            "--connections",
            "4",
            "--duration",
            "1.5",
            "--warmup",
            "0",
            "--scenario",
            "complete",
            "--subject",
            "s",
            "--setup",
            "--timezone",
            "Europe/Paris",
            "--seed",
            "9",
            "--review-cards",
            "50",
        ])
        .expect("parse");
        assert_eq!(a.base_url(), "http://h:1");
        assert_eq!(a.admin_email.as_deref(), Some("a@x"));
        assert_eq!(a.admin_password.as_deref(), Some("pw"));
        assert_eq!((a.students, a.connections), (10, 4));
        assert_eq!(a.duration(), Duration::from_millis(1500));
        assert_eq!(a.warmup(), Duration::ZERO);
        assert_eq!(a.scenario, Scenario::Complete);
        assert_eq!(a.subject.as_deref(), Some("s"));
        assert!(a.setup);
        assert_eq!(a.seed, Some(9));
        assert_eq!(a.review_cards, 50);
        for (flag, s) in [
            ("baseline", Scenario::Baseline),
            ("mixed", Scenario::Mixed),
            ("login", Scenario::Login),
            ("content", Scenario::Content),
            ("reviews", Scenario::Reviews),
            ("due", Scenario::Due),
        ] {
            assert_eq!(parse(&["--scenario", flag]).expect("parse").scenario, s);
            assert_eq!(s.name(), flag);
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["--students", "0"][..],
            &["--connections", "0"],
            &["--duration", "0"],
            &["--duration", "-1"],
            &["--duration", "NaN"],
            &["--warmup", "-1"],
            &["--scenario", "nope"],
            &["--review-cards", "0"],
            &["--unknown"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
