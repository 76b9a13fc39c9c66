//! `memora snapshot | restore FILE | verify FILE | compact` (operations.md "CLI",
//! persistence.md "Snapshots, backup and restore"). `snapshot` works offline on a
//! stopped data directory, or asks the running server that holds it through the admin
//! API; `restore` and `compact` need the server stopped; `verify` only reads a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::ProgressBar;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::engine::snapshots::SnapshotReport;
use crate::engine::{self, Engine, OpenError};
use crate::persist::snapshot::{self, Header, Progress, SnapshotError};
use crate::persist::store::StoreError;

/// How often the CLI polls a snapshot job of a running server.
const POLL: Duration = Duration::from_millis(200);

/// Environment variable with an admin's bearer token, for `memora snapshot` against a
/// running server.
pub const TOKEN_ENV: &str = "MEMORA_ADMIN_TOKEN";

/// A progress bar on a terminal; otherwise one line on stderr per stage.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Bar {
        Bar(crate::progress_bar::bar(0, "snapshot"))
    }
}

impl Progress for Bar {
    fn stage(&self, what: &str, total: u64) {
        if self.0.is_hidden() {
            eprintln!("{what} ({total})");
        }
        self.0.set_prefix(what.to_owned());
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Where `memora snapshot` finds a running server.
#[derive(Debug, Default)]
pub struct Online {
    /// `--url` / `MEMORA_URL`.
    pub url: Option<String>,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
}

/// `memora snapshot`.
///
/// # Errors
/// Whatever prevented the snapshot; nothing is left half-written.
pub fn snapshot(config: &Config, online: Online) -> anyhow::Result<()> {
    let runtime = super::runtime()?;
    let opened = Engine::open(config.clone(), Arc::new(SystemClock));
    let engine = match opened {
        Ok(engine) => engine,
        Err(OpenError::Store(StoreError::Locked { path })) => {
            return runtime.block_on(snapshot_online(config, online, &path));
        }
        Err(e) => return Err(e.into()),
    };
    let _rt = runtime.enter();
    let bar = Bar::new();
    let result = engine.snapshot(&bar);
    drop(bar);
    let closed = engine.shutdown();
    let report = result?;
    closed.map_err(|e| anyhow::anyhow!(e))?;
    print_report(&report, "offline");
    Ok(())
}

fn token(online: &Online) -> anyhow::Result<Option<String>> {
    if let Some(path) = &online.token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(Some(text.lines().next().unwrap_or("").trim().to_owned()));
    }
    Ok(std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty()))
}

fn default_url(config: &Config) -> Option<String> {
    let addr = config.http.addr;
    if addr.port() == 0 {
        return None;
    }
    let ip = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    Some(format!("http://{ip}:{}", addr.port()))
}

/// The problem's `detail` of an error answer, or its body.
async fn problem_detail(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or(body);
    format!("HTTP {status}: {detail}")
}

async fn snapshot_online(config: &Config, online: Online, held: &Path) -> anyhow::Result<()> {
    let url = online.url.clone().or_else(|| default_url(config));
    let token = token(&online)?;
    let (Some(url), Some(token)) = (url, token) else {
        bail!(
            "{} is held by a running Memora server. To snapshot it online, give the server's URL \
             (--url or MEMORA_URL; default http://<http.addr>) and an admin's token (--token-file \
             or {TOKEN_ENV}; from POST /api/v1/auth/login): this calls POST /api/v1/admin/snapshots",
            held.display()
        );
    };
    let url = url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let resp = client
        .post(format!("{url}/api/v1/admin/snapshots"))
        .bearer_auth(&token)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if resp.status() != reqwest::StatusCode::ACCEPTED {
        bail!(
            "POST {url}/api/v1/admin/snapshots: {}",
            problem_detail(resp).await
        );
    }
    let job: serde_json::Value = resp.json().await.context("unreadable job answer")?;
    let id = job
        .get("id")
        .and_then(|v| v.as_str())
        .context("the job answer has no id")?
        .to_owned();
    eprintln!("snapshot job {id} started on {url}");
    let bar = Bar::new();
    loop {
        tokio::time::sleep(POLL).await;
        let resp = client
            .get(format!("{url}/api/v1/admin/jobs/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        if !resp.status().is_success() {
            bail!(
                "GET /api/v1/admin/jobs/{id}: {}",
                problem_detail(resp).await
            );
        }
        let view: serde_json::Value = resp.json().await.context("unreadable job answer")?;
        let done = view["progress"]["done"].as_u64().unwrap_or(0);
        if let Some(total) = view["progress"]["total"].as_u64()
            && bar.0.length() != Some(total)
        {
            bar.0.set_length(total);
        }
        bar.0.set_position(done);
        match view["state"].as_str() {
            Some("done") => {
                drop(bar);
                let report: SnapshotReport = serde_json::from_value(view["result"].clone())
                    .context("unreadable snapshot report")?;
                print_report(&report, "online");
                return Ok(());
            }
            Some("failed") => {
                let detail = view["error"]["detail"].as_str().unwrap_or("unknown error");
                bail!("the server's snapshot failed: {detail}");
            }
            _ => {}
        }
    }
}

fn print_report(r: &SnapshotReport, how: &str) {
    println!("snapshot written ({how}): {}", r.file.display());
    println!(
        "  seq {} (checkpoint {} + {} records replayed), taken {}",
        r.seq, r.checkpoint_seq, r.replayed, r.created_at
    );
    println!(
        "  {} bytes in {} ms (checkpoint lock held {} ms){}",
        r.bytes,
        r.duration_ms,
        r.checkpoint_ms,
        if r.verified { ", verified" } else { "" }
    );
    println!("  {}", r.counts);
    if !r.pruned.is_empty() {
        println!("  deleted older snapshots: {}", r.pruned.join(", "));
    }
    if let Some(location) = &r.uploaded {
        println!("  uploaded to {location}");
    }
    if let Some(e) = &r.upload_error {
        println!("  upload failed: {e}");
    }
}

fn print_header(h: &Header, file_bytes: u64) {
    println!(
        "  snapshot format {}, storage format {}, written by memora {}",
        h.format, h.store_format, h.memora_version
    );
    println!("  seq {}, taken {}", h.seq, h.created_at);
    println!("  {file_bytes} bytes, payload SHA-256 {}", h.payload_sha256);
    let c = &h.counts;
    println!("  players: {}", c.players);
    println!(
        "  students with progress: {} ({} progress rows)",
        c.students_with_progress, c.progress_rows
    );
    println!("  wallets: {}", c.wallets);
    println!("  cards: {}", c.cards);
    println!("  seasons: {}", c.seasons);
    println!("  sessions: {}", c.sessions);
    println!("  subjects: {}, plans: {}", c.subjects, c.plans);
    println!("  idempotency records: {}", c.idempotency_records);
    println!("  groups: {}", c.groups);
    println!("  audit records: {}", c.audit_records);
    println!("  archived cards: {}", c.archived_cards);
}

/// `memora verify FILE`.
///
/// # Errors
/// What is wrong with the file (named in the message).
pub fn verify(file: &Path) -> anyhow::Result<()> {
    let bar = Bar::new();
    let verified = snapshot::verify(file, &bar);
    drop(bar);
    let verified = verified?;
    println!("{}: ok", file.display());
    print_header(&verified.header, verified.file_bytes);
    Ok(())
}

/// `memora restore FILE`.
///
/// # Errors
/// A refused file (corrupted, truncated, newer format), a running server, I/O.
pub fn restore(config: &Config, file: &Path) -> anyhow::Result<()> {
    let data_dir = &config.storage.data_dir;
    let bar = Bar::new();
    let result = snapshot::restore(
        &data_dir.join(engine::REDB_FILE),
        &engine::journal_dir(data_dir),
        file,
        jiff::Timestamp::now(),
        &bar,
    );
    drop(bar);
    let report = match result {
        Ok(report) => report,
        Err(
            e @ (SnapshotError::NotASnapshot { .. }
            | SnapshotError::NewerFormat { .. }
            | SnapshotError::Truncated { .. }
            | SnapshotError::Corrupted { .. }
            | SnapshotError::Locked { .. }),
        ) => bail!("{e}; nothing was changed in {}", data_dir.display()),
        Err(e) => bail!("{e}"),
    };
    println!(
        "restored {} into {} ({} ms)",
        file.display(),
        data_dir.display(),
        report.duration_ms
    );
    print_header(
        &report.header,
        std::fs::metadata(file).map_or(0, |m| m.len()),
    );
    if report.restored_seq != report.header.seq {
        println!(
            "  the journal continues after sequence {} (the replaced data directory had gone that far)",
            report.restored_seq
        );
    }
    if let Some(previous) = &report.previous {
        println!("  the previous state was kept in {}", previous.display());
    }
    println!(
        "  compiled content ({}) is not part of a snapshot: run `memora build` before serving",
        config.content.output_dir.display()
    );
    if config.mirror.enabled() {
        println!("  the MariaDB mirror will resynchronize fully when the server starts");
    }
    Ok(())
}

/// `memora compact`.
///
/// # Errors
/// A running server, or redb's error.
pub fn compact(config: &Config) -> anyhow::Result<()> {
    let path = config.storage.data_dir.join(engine::REDB_FILE);
    if !path.exists() {
        bail!("{}: no redb file (nothing stored yet)", path.display());
    }
    let spinner = crate::progress_bar::bar(1, "compacting");
    spinner.set_message(path.display().to_string());
    let result = crate::persist::compact::compact(&path);
    spinner.finish_and_clear();
    match result {
        Ok(r) => {
            println!(
                "compacted {}: {} → {} bytes ({} ms)",
                path.display(),
                r.bytes_before,
                r.bytes_after,
                r.duration_ms
            );
            Ok(())
        }
        Err(StoreError::Locked { path }) => bail!(
            "{} is held by a running Memora server; stop it first (compaction needs the server stopped)",
            path.display()
        ),
        Err(e) => Err(e.into()),
    }
}
