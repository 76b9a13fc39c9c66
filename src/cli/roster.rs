//! `memora admin import-roster FILE [--commit]`: the roster import of players.md on a
//! stopped server's data directory — the dry-run report by default, the commit with
//! `--commit` (a progress bar on a terminal, plain progress lines otherwise), generated
//! passwords printed once on standard output.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};

use crate::config::Config;
use crate::engine::Engine;
use crate::engine::roster::file_sha;
use crate::engine::roster_report::{RowReport, Summary};
use crate::players::roster::RowError;

/// Who the journal names as the importer of a command-line roster.
const BY: &str = "cli";

fn describe(r: &RowReport) -> String {
    let mut line = format!("row {}: {} {}", r.row, r.action, r.email);
    if !r.changes.is_empty() {
        let changes: Vec<String> = r
            .changes
            .iter()
            .map(|c| match (c.field, &c.from, &c.to) {
                ("password", _, _) => "password".to_owned(),
                (field, from, to) => format!(
                    "{field} {} -> {}",
                    from.as_deref().unwrap_or("(none)"),
                    to.as_deref().unwrap_or("(none)")
                ),
            })
            .collect();
        line.push_str(&format!(": {}", changes.join(", ")));
    }
    if r.action == "create" {
        line.push_str(&format!(" (password {})", r.password.unwrap_or("-")));
    }
    line
}

fn problem_lines(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.column.is_empty() {
                format!("\n  row {}: {}", e.row, e.message)
            } else {
                format!("\n  row {}, {}: {}", e.row, e.column, e.message)
            }
        })
        .collect()
}

fn counts(s: &Summary) -> String {
    format!(
        "{} rows: {} to create, {} to update, {} unchanged, {} with problems",
        s.rows, s.create, s.update, s.unchanged, s.error_rows
    )
}

/// Runs the command on the data directory of `config`.
///
/// # Errors
/// The file cannot be read, a server holds the data directory, the roster has problems
/// (nothing is imported then), or the journal fails.
pub async fn import_roster(config: Config, file: &Path, commit: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let engine = super::open_engine(
        &config,
        "POST /api/v1/admin/players/import with Content-Type: text/csv (add ?commit=true to apply)",
    )?;
    let outcome = if commit {
        run_commit(&engine, &bytes).await
    } else {
        run_dry(&engine, &bytes)
    };
    // A failed commit's audit record is buffered: journal it before closing.
    if let Err(e) = engine.flush_audit().await {
        tracing::warn!(error = %e.detail, "audit records not journaled");
    }
    let closed = tokio::task::spawn_blocking(move || engine.shutdown()).await?;
    outcome?;
    closed.map_err(|e| anyhow::anyhow!(e))
}

fn run_dry(engine: &Engine, bytes: &[u8]) -> anyhow::Result<()> {
    let report = engine.roster_dry_run(bytes, BY);
    for r in &report.rows {
        println!("{}", describe(r));
    }
    println!("dry run: {}; nothing was changed", counts(&report.summary));
    if !report.errors.is_empty() {
        bail!(
            "{} problem(s); nothing would be imported:{}",
            report.errors.len(),
            problem_lines(&report.errors)
        );
    }
    println!("run again with --commit to apply");
    Ok(())
}

async fn run_commit(engine: &Engine, bytes: &[u8]) -> anyhow::Result<()> {
    let parsed = match engine.roster_validate(bytes) {
        Ok(parsed) => parsed,
        Err(_) => {
            let report = engine.roster_dry_run(bytes, BY);
            bail!(
                "{} problem(s); nothing was imported:{}",
                report.errors.len(),
                problem_lines(&report.errors)
            );
        }
    };
    let total = parsed.rows.len() as u64;
    let bar = crate::progress_bar::bar(total, "importing");
    let done = AtomicU64::new(0);
    let step = (total / 10).max(1);
    let progress = |n: u64| {
        bar.inc(n);
        let before = done.fetch_add(n, Ordering::Relaxed);
        let after = before + n;
        // Without a terminal: a plain line every tenth of the rows.
        if bar.is_hidden() && n > 0 && (after / step != before / step || after == total) {
            eprintln!("importing: {after}/{total} rows");
        }
    };
    let started = std::time::Instant::now();
    let report = engine
        .roster_commit(
            std::sync::Arc::new(parsed),
            file_sha(bytes),
            BY,
            None,
            &progress,
        )
        .await;
    bar.finish_and_clear();
    let report = report.map_err(|e| {
        let fields: String = e
            .errors
            .iter()
            .map(|p| format!("\n  {}: {}", p.pointer, p.message))
            .collect();
        anyhow::anyhow!("{}{fields}", e.detail)
    })?;
    let s = &report.summary;
    println!(
        "imported {} rows in {} ms: {} created, {} updated, {} unchanged",
        s.rows,
        started.elapsed().as_millis(),
        s.create,
        s.update,
        s.unchanged
    );
    if !report.generated_passwords.is_empty() {
        println!("generated passwords (shown once; each must be changed at the first login):");
        println!("email,password");
        for g in &report.generated_passwords {
            println!("{},{}", g.email, g.password);
        }
    }
    Ok(())
}
