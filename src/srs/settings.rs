//! The `[srs]` configuration section (srs.md, config.toml): scheduler settings (desired
//! retention, FSRS parameters, learning and relearning steps, maximum interval, fuzz),
//! archive and retention settings (retention period, when the daily and weekly jobs
//! run, archive batch size). Validation names the offending key.
//!
//! Steps are written as friendly durations (`"1m"`, `"10m"`, `"1h 30m"`) and must be
//! whole seconds; `parameters = []` means the FSRS-6 defaults.

use jiff::civil::{Time, Weekday};
use serde::{Deserialize, Serialize};

use super::scheduler::{MAX_STEPS, Scheduler, SchedulerConfig};

/// `[srs]`: scheduling, archive and retention settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsSettings {
    /// Target probability of recall at the due time, strictly between 0 and 1.
    pub desired_retention: f32,
    /// The 21 FSRS-6 parameters; empty = the FSRS-6 defaults.
    pub parameters: Vec<f32>,
    /// Learning steps as durations (`"1m"`); default `["1m", "10m"]`.
    pub learning_steps: Vec<String>,
    /// Relearning steps as durations; default `["10m"]`.
    pub relearning_steps: Vec<String>,
    /// Longest review interval in days (1–36,500).
    pub maximum_interval_days: u32,
    /// Whether review intervals of 2.5 days or more are fuzzed (deterministically).
    pub enable_fuzz: bool,
    /// Archived cards older than this many days are flagged `eligible_for_deletion`
    /// by the weekly job; default 1,095 (3 years).
    pub retention_days: u32,
    /// UTC time of day (`"HH:MM"`) at which the daily auto-archive and the weekly
    /// retention flagging run.
    pub maintenance_time_utc: String,
    /// UTC weekday of the weekly retention flagging (`"sunday"`, … or `"sun"`, …).
    pub retention_weekday: String,
    /// How often the maintenance task looks at the clock, milliseconds. A run that was
    /// missed (server down) happens at the next look.
    pub maintenance_poll_ms: u64,
    /// Cards moved per archive batch (one journal event and one checkpoint each).
    pub archive_batch_cards: usize,
}

impl Default for SrsSettings {
    fn default() -> Self {
        SrsSettings {
            desired_retention: 0.9,
            parameters: Vec::new(),
            learning_steps: vec!["1m".into(), "10m".into()],
            relearning_steps: vec!["10m".into()],
            maximum_interval_days: 36_500,
            enable_fuzz: true,
            retention_days: 1_095,
            maintenance_time_utc: "02:00".into(),
            retention_weekday: "sunday".into(),
            maintenance_poll_ms: 60_000,
            archive_batch_cards: 10_000,
        }
    }
}

/// A `[srs]` value that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct SettingsError {
    /// Dotted key, e.g. `srs.learning_steps`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

fn problem(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        key,
        message: message.into(),
    }
}

/// Longest accepted step: 30 days (steps are minutes or hours in practice).
const MAX_STEP_SECS: i64 = 30 * 86_400;
/// Longest accepted retention period: 100 years.
const MAX_RETENTION_DAYS: u32 = 36_500;

/// Parses one step duration into whole seconds.
fn step_secs(key: &'static str, raw: &str) -> Result<u32, SettingsError> {
    let d: jiff::SignedDuration = raw
        .trim()
        .parse()
        .map_err(|e| problem(key, format!("`{raw}` is not a duration ({e})")))?;
    if d.subsec_nanos() != 0 {
        return Err(problem(key, format!("`{raw}` must be whole seconds")));
    }
    let secs = d.as_secs();
    if !(1..=MAX_STEP_SECS).contains(&secs) {
        return Err(problem(
            key,
            format!("`{raw}` must be between 1 second and 30 days"),
        ));
    }
    u32::try_from(secs).map_err(|_| problem(key, format!("`{raw}` is too long")))
}

fn steps(key: &'static str, raw: &[String]) -> Result<Vec<u32>, SettingsError> {
    if raw.len() > MAX_STEPS {
        return Err(problem(key, format!("at most {MAX_STEPS} steps")));
    }
    raw.iter().map(|s| step_secs(key, s)).collect()
}

impl SrsSettings {
    /// The scheduler settings these describe.
    ///
    /// # Errors
    /// [`SettingsError`] naming the first bad key.
    pub fn scheduler_config(&self) -> Result<SchedulerConfig, SettingsError> {
        let parameters = match self.parameters.len() {
            0 => fsrs::DEFAULT_PARAMETERS,
            21 => {
                let mut p = [0.0; 21];
                p.copy_from_slice(&self.parameters);
                p
            }
            n => {
                return Err(problem(
                    "srs.parameters",
                    format!("needs exactly 21 values (or none for the defaults), got {n}"),
                ));
            }
        };
        if !(1..=36_500).contains(&self.maximum_interval_days) {
            return Err(problem(
                "srs.maximum_interval_days",
                "must be between 1 and 36500",
            ));
        }
        let config = SchedulerConfig {
            desired_retention: self.desired_retention,
            parameters,
            learning_steps_secs: steps("srs.learning_steps", &self.learning_steps)?,
            relearning_steps_secs: steps("srs.relearning_steps", &self.relearning_steps)?,
            maximum_interval_days: self.maximum_interval_days,
            enable_fuzz: self.enable_fuzz,
        };
        Ok(config)
    }

    /// The validated scheduler.
    ///
    /// # Errors
    /// [`SettingsError`] naming the first bad key (the scheduler's own checks report
    /// `srs.parameters` or `srs.desired_retention`).
    pub fn scheduler(&self) -> Result<Scheduler, SettingsError> {
        let config = self.scheduler_config()?;
        Scheduler::new(config).map_err(|e| {
            let key = if e.problems.iter().any(|p| p.contains("desired_retention")) {
                "srs.desired_retention"
            } else {
                "srs.parameters"
            };
            problem(key, e.problems.join("; "))
        })
    }

    /// The daily maintenance time (UTC).
    ///
    /// # Errors
    /// [`SettingsError`] for `srs.maintenance_time_utc`.
    pub fn maintenance_time(&self) -> Result<Time, SettingsError> {
        let raw = self.maintenance_time_utc.trim();
        let ok = raw.len() == 5 && raw.as_bytes()[2] == b':';
        let time = ok
            .then(|| Time::strptime("%H:%M", raw).ok())
            .flatten()
            .ok_or_else(|| {
                problem(
                    "srs.maintenance_time_utc",
                    format!("`{raw}` is not a time of day HH:MM"),
                )
            })?;
        Ok(time)
    }

    /// The weekday of the retention flagging.
    ///
    /// # Errors
    /// [`SettingsError`] for `srs.retention_weekday`.
    pub fn retention_weekday(&self) -> Result<Weekday, SettingsError> {
        let raw = self.retention_weekday.trim().to_ascii_lowercase();
        let day = match raw.get(..3).filter(|_| raw.len() == 3 || full_day(&raw)) {
            Some("mon") => Weekday::Monday,
            Some("tue") => Weekday::Tuesday,
            Some("wed") => Weekday::Wednesday,
            Some("thu") => Weekday::Thursday,
            Some("fri") => Weekday::Friday,
            Some("sat") => Weekday::Saturday,
            Some("sun") => Weekday::Sunday,
            _ => {
                return Err(problem(
                    "srs.retention_weekday",
                    format!("`{}` is not a weekday", self.retention_weekday),
                ));
            }
        };
        Ok(day)
    }

    /// Checks every key.
    ///
    /// # Errors
    /// [`SettingsError`] naming the first bad key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.scheduler()?;
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention_days) {
            return Err(problem(
                "srs.retention_days",
                format!("must be between 1 and {MAX_RETENTION_DAYS}"),
            ));
        }
        self.maintenance_time()?;
        self.retention_weekday()?;
        if !(10..=86_400_000).contains(&self.maintenance_poll_ms) {
            return Err(problem(
                "srs.maintenance_poll_ms",
                "must be between 10 and 86400000",
            ));
        }
        if !(1..=100_000).contains(&self.archive_batch_cards) {
            return Err(problem(
                "srs.archive_batch_cards",
                "must be between 1 and 100000",
            ));
        }
        Ok(())
    }
}

fn full_day(raw: &str) -> bool {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .contains(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_scheduler_defaults() {
        let s = SrsSettings::default();
        s.validate().expect("valid");
        assert_eq!(
            s.scheduler_config().expect("config"),
            SchedulerConfig::default()
        );
        assert_eq!(s.retention_weekday(), Ok(Weekday::Sunday));
        assert_eq!(s.maintenance_time(), Ok(Time::constant(2, 0, 0, 0)));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(SrsSettings, &str)> = vec![
            (
                SrsSettings {
                    learning_steps: vec!["1m".into(), "soon".into()],
                    ..SrsSettings::default()
                },
                "srs.learning_steps",
            ),
            (
                SrsSettings {
                    relearning_steps: vec!["1.5s".into()],
                    ..SrsSettings::default()
                },
                "srs.relearning_steps",
            ),
            (
                SrsSettings {
                    parameters: vec![1.0; 3],
                    ..SrsSettings::default()
                },
                "srs.parameters",
            ),
            (
                SrsSettings {
                    parameters: vec![1000.0; 21],
                    ..SrsSettings::default()
                },
                "srs.parameters",
            ),
            (
                SrsSettings {
                    desired_retention: 1.0,
                    ..SrsSettings::default()
                },
                "srs.desired_retention",
            ),
            (
                SrsSettings {
                    maximum_interval_days: 0,
                    ..SrsSettings::default()
                },
                "srs.maximum_interval_days",
            ),
            (
                SrsSettings {
                    retention_days: 0,
                    ..SrsSettings::default()
                },
                "srs.retention_days",
            ),
            (
                SrsSettings {
                    maintenance_time_utc: "2am".into(),
                    ..SrsSettings::default()
                },
                "srs.maintenance_time_utc",
            ),
            (
                SrsSettings {
                    retention_weekday: "someday".into(),
                    ..SrsSettings::default()
                },
                "srs.retention_weekday",
            ),
            (
                SrsSettings {
                    archive_batch_cards: 0,
                    ..SrsSettings::default()
                },
                "srs.archive_batch_cards",
            ),
        ];
        for (settings, key) in cases {
            let err = settings.validate().expect_err(key);
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn steps_and_parameters_are_read() {
        let mut params = fsrs::DEFAULT_PARAMETERS.to_vec();
        params[0] = 0.5;
        let s = SrsSettings {
            learning_steps: vec!["30s".into(), "1h 30m".into()],
            relearning_steps: vec![],
            parameters: params.clone(),
            enable_fuzz: false,
            retention_weekday: "Mon".into(),
            ..SrsSettings::default()
        };
        let c = s.scheduler_config().expect("config");
        assert_eq!(c.learning_steps_secs, [30, 5400]);
        assert!(c.relearning_steps_secs.is_empty());
        assert_eq!(c.parameters.to_vec(), params);
        assert!(!c.enable_fuzz);
        assert_eq!(s.retention_weekday(), Ok(Weekday::Monday));
    }
}
