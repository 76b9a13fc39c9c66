//! Configuration: the embedded commented default (`config.toml`), an optional file given
//! with `--config`, and `MEMORA_SECTION__KEY` environment overrides (operations.md).
//!
//! Loading is layered with `figment`: embedded default ← file ← environment ← `*_FILE`
//! secrets. Every layer is checked against the same structs (`deny_unknown_fields`), so a
//! misspelt key fails at start with a message naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The shipped default configuration, embedded so `memora print-config` can show it.
pub const DEFAULT_TOML: &str = include_str!("../config.toml");

/// Configuration sections; only environment variables naming one of these are read
/// (so `MEMORA_TEST_*` variables used by tests are ignored).
const SECTIONS: &[&str] = &[
    "http",
    "storage",
    "journal",
    "checkpoint",
    "progress",
    "players",
    "auth",
    "rate_limits",
    "log",
    "content",
    "mirror",
    "reconcile",
    "audit",
    "cdn",
];

/// Keys whose values are secrets: redacted by `print-config` (dotted section, key).
const SECRET_KEYS: &[(&str, &str)] = &[
    ("mirror", "url"),
    ("cdn.s3", crate::objstore::SECRET_FIELDS[0]),
    ("cdn.s3", crate::objstore::SECRET_FIELDS[1]),
];

/// The effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[http]`
    pub http: HttpConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[journal]`
    pub journal: JournalSection,
    /// `[checkpoint]`
    pub checkpoint: CheckpointConfig,
    /// `[progress]`
    pub progress: ProgressConfig,
    /// `[players]`
    pub players: PlayersConfig,
    /// `[auth]`
    pub auth: AuthConfig,
    /// `[rate_limits]`
    pub rate_limits: RateLimitsConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[content]`
    pub content: ContentConfig,
    /// `[mirror]`
    pub mirror: MirrorConfig,
    /// `[reconcile]`
    pub reconcile: ReconcileConfig,
    /// `[audit]`
    pub audit: AuditConfig,
    /// `[cdn]`
    pub cdn: CdnConfig,
}

/// `[cdn]`: optional upload of the compiled files and assets to S3-compatible storage
/// (content.md "Compiled files"; `cdn::upload`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnConfig {
    /// Uploads in flight at once.
    pub upload_concurrency: usize,
    /// `Cache-Control` of every uploaded file except the manifests.
    pub cache_control: String,
    /// `Cache-Control` of `plans/{plan}/manifest.json`, the one unversioned entry point.
    pub manifest_cache_control: String,
    /// `[cdn.s3]`: the bucket; an empty `bucket` turns uploads off.
    pub s3: crate::objstore::S3Config,
}

/// `[reconcile]`: the sampled consistency check of memory, redb and the mirror (srs.md
/// "Reconciliation").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Hours between scheduled runs; 0 = only on demand.
    pub interval_hours: u64,
    /// Rows sampled per run (progress rows and cards).
    pub sample_size: usize,
    /// Discrepancy rate above which a run alerts (logs an error), e.g. 0.001 = 0.1%.
    pub alert_rate: f64,
}

// --- audit (issue 3) ---
/// `[audit]`: the audit and interaction logs (players.md "Audit and interaction logs").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Records older than this many days are deleted by the daily retention job.
    pub retention_days: u32,
    /// Client IPs are cleared from records older than this many days.
    pub ip_retention_days: u32,
    /// Records of anonymous or failing requests are journaled together at least this
    /// often, milliseconds (they never wait for an fsync of their own).
    pub flush_interval_ms: u64,
    /// … or as soon as this many are waiting (records per journal event).
    pub batch_max_records: usize,
    /// Most records waiting for a flush; beyond, new ones are dropped and counted (a
    /// journal outage must not exhaust memory).
    pub buffer_max_records: usize,
    /// Period of the retention job, seconds (first run a minute after start).
    pub retention_interval_secs: u64,
}
// --- end audit ---

// --- mirror (issue 5) ---
/// `[mirror]`: the optional MariaDB reporting mirror (persistence.md, docs/mirror.md).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// `mysql://user:pass@host:3306/db`; empty = mirror off. A secret (redacted).
    pub url: String,
    /// Rows per `INSERT … ON DUPLICATE KEY UPDATE` statement.
    pub batch_rows: usize,
    /// Most changed-row keys the mirror takes from its redb queue per round (bounds
    /// its memory and the size of one MariaDB transaction).
    pub queue_capacity: usize,
    /// First retry delay after a MariaDB error, milliseconds (doubles per failure).
    pub backoff_initial_ms: u64,
    /// Longest retry delay, milliseconds.
    pub backoff_max_ms: u64,
}

impl MirrorConfig {
    /// Whether a mirror is configured.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}

impl std::fmt::Debug for MirrorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorConfig")
            .field("url", &if self.enabled() { "<redacted>" } else { "" })
            .field("batch_rows", &self.batch_rows)
            .field("queue_capacity", &self.queue_capacity)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .finish()
    }
}
// --- end mirror ---

/// `[content]`: compiled curriculum files (content.md "Compiled files").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentConfig {
    /// Output root of compiled files, served at `/content/`; empty in the file means
    /// `{storage.data_dir}/cdn`.
    pub output_dir: PathBuf,
    /// Whether `/content/` demands a valid session.
    pub require_auth: bool,
    /// Builds are refused below this much free disk space, percent.
    pub min_free_disk_percent: f64,
    /// Delay between a content change and the build it triggers, milliseconds.
    pub build_debounce_ms: u64,
}

/// `[http]`: the listener and request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address (port 0 = any free port).
    pub addr: SocketAddr,
    /// Largest request body in bytes.
    pub body_limit_bytes: usize,
    /// Largest body for admin content imports, in bytes.
    pub admin_body_limit_bytes: usize,
    /// Request timeout in milliseconds.
    pub request_timeout_ms: u64,
    /// Mount the benchmark baseline route.
    pub bench_routes: bool,
    /// Header naming the client IP behind a trusted proxy ("" = off).
    pub client_ip_header: String,
    /// Peers (IPs or CIDRs) whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<String>,
}

impl HttpConfig {
    /// The trusted proxies as networks (a bare IP is a /32 or /128). Invalid entries are
    /// rejected by validation, so they are skipped here.
    pub fn trusted_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_network(p))
            .collect()
    }
}

fn parse_network(raw: &str) -> Option<ipnet::IpNet> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| raw.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// A duration setting: "off" (or empty) for none, else a friendly or ISO 8601 duration
/// ("12h", "30m", "PT1H"); `Err` when unreadable or not positive.
fn parse_timeout(raw: &str) -> Result<Option<Duration>, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let d: jiff::SignedDuration = raw.parse().map_err(|e| format!("{e}"))?;
    if d.is_negative() || d.is_zero() {
        return Err("must be positive (or \"off\")".into());
    }
    Duration::try_from(d).map(Some).map_err(|e| e.to_string())
}

/// `[storage]`: where data lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The data directory (redb file, journal).
    pub data_dir: PathBuf,
    /// Where snapshots go.
    pub snapshots_dir: PathBuf,
    /// Below this many free bytes on the data dir's file system the engine enters
    /// degraded mode and refuses writes (srs.md "Degraded mode").
    pub min_free_bytes: u64,
    /// How often, in milliseconds, a degraded engine probes whether storage works again
    /// (and a healthy one checks free space).
    pub probe_interval_ms: u64,
    /// Consecutive failed checkpoints after which the engine enters degraded mode
    /// (persistence.md).
    pub checkpoint_failures_before_degraded: u32,
}

/// Journal durability mode (persistence.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// Acknowledge after fsync.
    Strict,
    /// Acknowledge after write; fsync every `fsync_interval_ms`.
    Relaxed,
}

/// `[journal]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// Strict or relaxed.
    pub durability: DurabilityMode,
    /// Relaxed mode's fsync period, milliseconds.
    pub fsync_interval_ms: u64,
    /// Segment roll size, bytes.
    pub segment_bytes: u64,
}

/// `[checkpoint]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Progress/content/accounts checkpoint period, seconds.
    pub progress_interval_secs: u64,
    /// Wallet checkpoint period, seconds.
    pub wallet_interval_secs: u64,
}

/// `[progress]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressConfig {
    /// XP per heart.
    pub per_heart_xp: u32,
    /// Largest `hearts` value.
    pub max_hearts: u8,
}

/// `[players]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayersConfig {
    /// IANA zone for students created without one.
    pub default_timezone: String,
    /// Devices per student.
    pub max_devices: u32,
    /// Idle time after which a teacher's or admin's session ends ("12h"; "off").
    pub staff_session_idle_timeout: String,
    /// Idle time after which a student's session ends ("off" by default).
    pub session_idle_timeout: String,
}

impl PlayersConfig {
    /// Staff idle timeout; `None` when off. Validated at load.
    pub fn staff_session_idle_timeout(&self) -> Option<Duration> {
        parse_timeout(&self.staff_session_idle_timeout)
            .ok()
            .flatten()
    }

    /// Student idle timeout; `None` when off (the default). Validated at load.
    pub fn session_idle_timeout(&self) -> Option<Duration> {
        parse_timeout(&self.session_idle_timeout).ok().flatten()
    }
}

/// `[auth]`: argon2id cost parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// Passes.
    pub argon2_iterations: u32,
    /// Lanes.
    pub argon2_parallelism: u32,
}

/// `[rate_limits]`: requests per minute per key (players.md "Rate limits").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Master switch.
    pub enabled: bool,
    /// Login attempts per account (normalized email).
    pub login_per_account_per_minute: u32,
    /// Login attempts per client IP.
    pub login_per_ip_per_minute: u32,
    /// Lesson completions per student.
    pub lesson_completions_per_minute: u32,
    /// Review submissions per student.
    pub review_submissions_per_minute: u32,
    /// Wallet and progress reads per student.
    pub reads_per_minute: u32,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Human or JSON.
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive.
    pub level: String,
}

/// Why the configuration could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A layer did not fit the schema (figment names the key and the source).
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A value is of the right type but out of range.
    #[error("invalid configuration: `{key}`: {message}")]
    Value {
        /// Dotted key, e.g. `journal.fsync_interval_ms`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads the effective configuration: embedded default, then `file` if given, then
    /// `MEMORA_*` variables from `env` (pass `std::env::vars()`), then `*_FILE` secrets.
    /// Relative paths are resolved against the file's directory (or the current directory).
    ///
    /// # Errors
    /// [`ConfigError`] naming the offending key or file.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        let base_dir = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                figment = figment.merge(Toml::string(&text));
                path.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."))
            }
            None => PathBuf::from("."),
        };
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("MEMORA_"))
            .collect();
        let plain: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| !k.ends_with("_FILE") && is_config_var(k))
            .cloned()
            .collect();
        // Explicit pairs (not figment's Env provider) so tests can pass their own map.
        for (k, v) in &plain {
            figment = figment.merge(Serialized::default(&env_key(k), parse_env_value(v)));
        }
        for (k, path) in env.iter().filter(|(k, _)| k.ends_with("_FILE")) {
            let stripped = &k[..k.len() - "_FILE".len()];
            if !is_config_var(stripped) {
                continue;
            }
            let value = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: PathBuf::from(path),
                source,
            })?;
            figment = figment.merge(Serialized::default(
                &env_key(stripped),
                value.trim_end_matches(['\r', '\n']).to_owned(),
            ));
        }
        let mut config: Config = figment.extract().map_err(Box::new)?;
        config.resolve_paths(&base_dir);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        if self.content.output_dir.as_os_str().is_empty() {
            self.content.output_dir = self.storage.data_dir.join("cdn");
        }
        for path in [
            &mut self.storage.data_dir,
            &mut self.storage.snapshots_dir,
            &mut self.content.output_dir,
        ] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Range checks that the types cannot express.
    fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, key: &'static str, message: &str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Value {
                    key,
                    message: message.to_owned(),
                })
            }
        };
        check(
            self.http.body_limit_bytes >= 1024,
            "http.body_limit_bytes",
            "must be at least 1024",
        )?;
        check(
            self.http.admin_body_limit_bytes >= self.http.body_limit_bytes,
            "http.admin_body_limit_bytes",
            "must be at least http.body_limit_bytes",
        )?;
        check(
            self.http.request_timeout_ms >= 100,
            "http.request_timeout_ms",
            "must be at least 100",
        )?;
        check(
            (1..=1_000_000).contains(&self.reconcile.sample_size),
            "reconcile.sample_size",
            "must be between 1 and 1000000",
        )?;
        check(
            (0.0..=1.0).contains(&self.reconcile.alert_rate),
            "reconcile.alert_rate",
            "must be between 0 and 1",
        )?;
        check(
            (10..=600_000).contains(&self.storage.probe_interval_ms),
            "storage.probe_interval_ms",
            "must be between 10 and 600000",
        )?;
        check(
            self.storage.checkpoint_failures_before_degraded >= 1,
            "storage.checkpoint_failures_before_degraded",
            "must be at least 1",
        )?;
        check(
            (1..=60_000).contains(&self.journal.fsync_interval_ms),
            "journal.fsync_interval_ms",
            "must be between 1 and 60000",
        )?;
        check(
            self.journal.segment_bytes >= 4096,
            "journal.segment_bytes",
            "must be at least 4096",
        )?;
        check(
            self.checkpoint.progress_interval_secs >= 1,
            "checkpoint.progress_interval_secs",
            "must be at least 1",
        )?;
        check(
            self.checkpoint.wallet_interval_secs >= 1,
            "checkpoint.wallet_interval_secs",
            "must be at least 1",
        )?;
        check(
            (1..=15).contains(&self.progress.max_hearts),
            "progress.max_hearts",
            "must be between 1 and 15",
        )?;
        check(
            self.progress.per_heart_xp <= 10_000,
            "progress.per_heart_xp",
            "must be at most 10000",
        )?;
        check(
            jiff::tz::TimeZone::get(&self.players.default_timezone).is_ok(),
            "players.default_timezone",
            "not a known IANA time zone",
        )?;
        check(
            (1..=100).contains(&self.players.max_devices),
            "players.max_devices",
            "must be between 1 and 100",
        )?;
        for (key, value) in [
            (
                "players.staff_session_idle_timeout",
                &self.players.staff_session_idle_timeout,
            ),
            (
                "players.session_idle_timeout",
                &self.players.session_idle_timeout,
            ),
        ] {
            parse_timeout(value).map_err(|message| ConfigError::Value { key, message })?;
        }
        for proxy in &self.http.trusted_proxies {
            check(
                parse_network(proxy).is_some(),
                "http.trusted_proxies",
                &format!("`{proxy}` is not an IP address or CIDR network"),
            )?;
        }
        check(
            self.http.client_ip_header.is_empty()
                || axum::http::HeaderName::from_bytes(self.http.client_ip_header.as_bytes())
                    .is_ok(),
            "http.client_ip_header",
            "not a valid header name",
        )?;
        let a = &self.audit;
        check(
            (1..=36_500).contains(&a.retention_days),
            "audit.retention_days",
            "must be between 1 and 36500",
        )?;
        check(
            (1..=a.retention_days).contains(&a.ip_retention_days),
            "audit.ip_retention_days",
            "must be between 1 and audit.retention_days",
        )?;
        check(
            (10..=60_000).contains(&a.flush_interval_ms),
            "audit.flush_interval_ms",
            "must be between 10 and 60000",
        )?;
        check(
            (1..=crate::players::audit::MAX_RECORDS_PER_EVENT).contains(&a.batch_max_records),
            "audit.batch_max_records",
            "must be between 1 and 65536",
        )?;
        check(
            a.buffer_max_records >= a.batch_max_records,
            "audit.buffer_max_records",
            "must be at least audit.batch_max_records",
        )?;
        check(
            a.retention_interval_secs >= 60,
            "audit.retention_interval_secs",
            "must be at least 60",
        )?;
        let r = &self.rate_limits;
        for (key, value) in [
            (
                "rate_limits.login_per_account_per_minute",
                r.login_per_account_per_minute,
            ),
            (
                "rate_limits.login_per_ip_per_minute",
                r.login_per_ip_per_minute,
            ),
            (
                "rate_limits.lesson_completions_per_minute",
                r.lesson_completions_per_minute,
            ),
            (
                "rate_limits.review_submissions_per_minute",
                r.review_submissions_per_minute,
            ),
            ("rate_limits.reads_per_minute", r.reads_per_minute),
        ] {
            check(
                (1..=1_000_000).contains(&value),
                key,
                "must be between 1 and 1000000",
            )?;
        }
        check(
            self.auth.argon2_memory_kib >= 8 * self.auth.argon2_parallelism.max(1),
            "auth.argon2_memory_kib",
            "must be at least 8 × argon2_parallelism",
        )?;
        check(
            self.auth.argon2_iterations >= 1,
            "auth.argon2_iterations",
            "must be at least 1",
        )?;
        check(
            (1..=16).contains(&self.auth.argon2_parallelism),
            "auth.argon2_parallelism",
            "must be between 1 and 16",
        )?;
        check(
            (0.0..100.0).contains(&self.content.min_free_disk_percent),
            "content.min_free_disk_percent",
            "must be at least 0 and below 100",
        )?;
        // --- mirror (issue 5) ---
        check(
            !self.mirror.enabled()
                || self.mirror.url.starts_with("mysql://")
                || self.mirror.url.starts_with("mariadb://"),
            "mirror.url",
            "must start with mysql:// (or be empty to turn the mirror off)",
        )?;
        check(
            (1..=10_000).contains(&self.mirror.batch_rows),
            "mirror.batch_rows",
            "must be between 1 and 10000",
        )?;
        check(
            self.mirror.queue_capacity >= self.mirror.batch_rows,
            "mirror.queue_capacity",
            "must be at least mirror.batch_rows",
        )?;
        check(
            self.mirror.backoff_initial_ms >= 1
                && self.mirror.backoff_max_ms >= self.mirror.backoff_initial_ms,
            "mirror.backoff_max_ms",
            "backoff_initial_ms must be at least 1 and backoff_max_ms at least backoff_initial_ms",
        )?;
        // --- end mirror ---
        check(
            (1..=256).contains(&self.cdn.upload_concurrency),
            "cdn.upload_concurrency",
            "must be between 1 and 256",
        )?;
        for (key, value) in [
            ("cdn.cache_control", &self.cdn.cache_control),
            (
                "cdn.manifest_cache_control",
                &self.cdn.manifest_cache_control,
            ),
        ] {
            check(
                axum::http::HeaderValue::from_str(value).is_ok(),
                key,
                "not a valid header value",
            )?;
        }
        if let Some((field, message)) = self.cdn.s3.problem() {
            return Err(ConfigError::Value {
                key: match field {
                    "endpoint" => "cdn.s3.endpoint",
                    "region" => "cdn.s3.region",
                    "prefix" => "cdn.s3.prefix",
                    "secret_access_key" => "cdn.s3.secret_access_key",
                    _ => "cdn.s3.bucket",
                },
                message,
            });
        }
        check(
            tracing_subscriber::EnvFilter::try_new(&self.log.level).is_ok(),
            "log.level",
            "not a valid tracing filter",
        )?;
        Ok(())
    }

    /// Request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.http.request_timeout_ms)
    }

    /// The effective configuration as TOML, secrets replaced by `"<redacted>"`.
    pub fn to_redacted_toml(&self) -> String {
        let mut value = match toml::Value::try_from(self) {
            Ok(v) => v,
            Err(e) => return format!("# cannot render configuration: {e}\n"),
        };
        for (section, key) in SECRET_KEYS {
            let mut table = Some(&mut value);
            for part in section.split('.') {
                table = table.and_then(|t| t.get_mut(part));
            }
            if let Some(v) = table
                .and_then(|s| s.as_table_mut())
                .and_then(|t| t.get_mut(*key))
                && v.as_str().is_some_and(|s| !s.is_empty())
            {
                *v = toml::Value::String("<redacted>".into());
            }
        }
        toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Whether `MEMORA_X__Y` names a known section.
fn is_config_var(var: &str) -> bool {
    var.strip_prefix("MEMORA_")
        .and_then(|rest| rest.split_once("__"))
        .is_some_and(|(section, _)| SECTIONS.contains(&section.to_ascii_lowercase().as_str()))
}

/// `MEMORA_JOURNAL__DURABILITY` → `journal.durability`.
fn env_key(var: &str) -> String {
    var.trim_start_matches("MEMORA_")
        .to_ascii_lowercase()
        .replace("__", ".")
}

/// Environment values are typed like TOML scalars (`true`, `42`), else taken as strings.
fn parse_env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_default_loads_and_validates() {
        let c = Config::load(None, env(&[])).expect("default config");
        assert_eq!(c.journal.durability, DurabilityMode::Strict);
        assert_eq!(c.checkpoint.progress_interval_secs, 30);
        assert_eq!(c.checkpoint.wallet_interval_secs, 900);
        assert_eq!(c.storage.data_dir, PathBuf::from("./storage"));
    }

    #[test]
    fn environment_overrides_and_unrelated_variables_are_ignored() {
        let c = Config::load(
            None,
            env(&[
                ("MEMORA_JOURNAL__DURABILITY", "relaxed"),
                ("MEMORA_HTTP__BENCH_ROUTES", "true"),
                ("MEMORA_PROGRESS__PER_HEART_XP", "7"),
                ("MEMORA_TEST_MARIADB_URL", "mysql://x"),
                ("PATH", "/bin"),
            ]),
        )
        .expect("config");
        assert_eq!(c.journal.durability, DurabilityMode::Relaxed);
        assert!(c.http.bench_routes);
        assert_eq!(c.progress.per_heart_xp, 7);
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[journal]\ndurabilty = \"strict\"\n").expect("write");
        let err = Config::load(Some(&path), env(&[])).expect_err("must fail");
        assert!(err.to_string().contains("durabilty"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = Config::load(None, env(&[("MEMORA_JOURNAL__DURABILITY", "sometimes")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("durability"), "{err}");
        let err = Config::load(
            None,
            env(&[("MEMORA_PLAYERS__DEFAULT_TIMEZONE", "Mars/Base")]),
        )
        .expect_err("must fail");
        assert!(
            err.to_string().contains("players.default_timezone"),
            "{err}"
        );
    }

    #[test]
    fn timeouts_proxies_and_limits_are_validated() {
        let c = Config::load(None, env(&[])).expect("config");
        assert_eq!(
            c.players.staff_session_idle_timeout(),
            Some(Duration::from_secs(12 * 3600))
        );
        assert_eq!(c.players.session_idle_timeout(), None);
        assert_eq!(c.rate_limits.login_per_account_per_minute, 5);
        let c = Config::load(
            None,
            env(&[
                ("MEMORA_PLAYERS__SESSION_IDLE_TIMEOUT", "30m"),
                (
                    "MEMORA_HTTP__TRUSTED_PROXIES",
                    "[\"10.0.0.0/8\", \"127.0.0.1\"]",
                ),
            ]),
        )
        .expect("config");
        assert_eq!(
            c.players.session_idle_timeout(),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(c.http.trusted_networks().len(), 2);
        for (var, value, key) in [
            (
                "MEMORA_PLAYERS__STAFF_SESSION_IDLE_TIMEOUT",
                "soon",
                "players.staff_session_idle_timeout",
            ),
            (
                "MEMORA_HTTP__TRUSTED_PROXIES",
                "[\"not-an-ip\"]",
                "http.trusted_proxies",
            ),
            (
                "MEMORA_RATE_LIMITS__READS_PER_MINUTE",
                "0",
                "rate_limits.reads_per_minute",
            ),
        ] {
            let err = Config::load(None, env(&[(var, value)])).expect_err(var);
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[storage]\ndata_dir = \"data\"\n").expect("write");
        let c = Config::load(Some(&path), env(&[])).expect("config");
        assert_eq!(c.storage.data_dir, dir.path().join("data"));
    }

    #[test]
    fn file_variables_supply_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("tz");
        std::fs::write(&secret, "Europe/Paris\n").expect("write");
        let c = Config::load(
            None,
            env(&[(
                "MEMORA_PLAYERS__DEFAULT_TIMEZONE_FILE",
                secret.to_str().expect("utf8"),
            )]),
        )
        .expect("config");
        assert_eq!(c.players.default_timezone, "Europe/Paris");
    }

    #[test]
    fn mirror_url_comes_from_a_file_and_is_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("url");
        std::fs::write(&secret, "mysql://u:hunter2@db:3306/r\n").expect("write");
        let c = Config::load(
            None,
            env(&[("MEMORA_MIRROR__URL_FILE", secret.to_str().expect("utf8"))]),
        )
        .expect("config");
        assert_eq!(c.mirror.url, "mysql://u:hunter2@db:3306/r");
        assert!(!c.to_redacted_toml().contains("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let err = Config::load(None, env(&[("MEMORA_MIRROR__URL", "postgres://x")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("mirror.url"), "{err}");
    }

    #[test]
    fn s3_keys_come_from_env_and_files_and_are_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("s3-secret");
        std::fs::write(&secret, "wJalrXUtnFEMI-secret\n").expect("write");
        let c = Config::load(
            None,
            env(&[
                ("MEMORA_CDN__S3__BUCKET", "school-cdn"),
                ("MEMORA_CDN__S3__ENDPOINT", "http://127.0.0.1:9000"),
                ("MEMORA_CDN__S3__ACCESS_KEY_ID", "AKIDEXAMPLE"),
                (
                    "MEMORA_CDN__S3__SECRET_ACCESS_KEY_FILE",
                    secret.to_str().expect("utf8"),
                ),
            ]),
        )
        .expect("config");
        assert!(c.cdn.s3.enabled());
        assert_eq!(c.cdn.s3.secret_access_key, "wJalrXUtnFEMI-secret");
        let printed = c.to_redacted_toml();
        assert!(printed.contains("school-cdn"), "{printed}");
        for secret in ["AKIDEXAMPLE", "wJalrXUtnFEMI"] {
            assert!(!printed.contains(secret), "{printed}");
            assert!(!format!("{c:?}").contains(secret));
        }
        let err = Config::load(
            None,
            env(&[
                ("MEMORA_CDN__S3__BUCKET", "b"),
                ("MEMORA_CDN__S3__ENDPOINT", "http://s3.example.com"),
            ]),
        )
        .expect_err("plain http to a remote host");
        assert!(err.to_string().contains("cdn.s3.endpoint"), "{err}");
        let off = Config::load(None, env(&[])).expect("config");
        assert!(!off.cdn.s3.enabled());
        assert_eq!(off.cdn.cache_control, "public, max-age=300");
    }

    #[test]
    fn printed_config_round_trips() {
        let c = Config::load(None, env(&[])).expect("config");
        let printed = c.to_redacted_toml();
        let back: Config = toml::from_str(&printed).expect("printed config parses");
        assert_eq!(back.http.addr, c.http.addr);
    }
}
