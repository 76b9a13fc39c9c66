//! The command line (operations.md "CLI"): `serve`, `import`, `admin create`, `admin
//! import-roster`, `check`, `print-config`, `snapshot`, `restore`, `verify`, `compact`.
//! Commands that open the data directory work on a stopped server; while a server holds
//! it they refuse and name the admin API call to use instead.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};
use crate::engine::accounts::NewPlayer;
use crate::engine::{self, Engine, OpenError};
use crate::persist::store::StoreError;
use crate::players::account::Role;

mod roster;
pub mod snapshots;

/// Memora: a self-hosted learning engine.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Without it the embedded default is used; every key can
    /// also be set as MEMORA_SECTION__KEY.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server until SIGINT/SIGTERM.
    Serve {
        /// Load the demo curriculum, plan and accounts (idempotent) and print how to use them.
        #[arg(long)]
        demo: bool,
    },
    /// Import subject and plan documents (memora.subject/v1, memora.plan/v1) offline.
    Import {
        /// Files to import; subjects are imported before plans.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compile published plans into the static files served at /content/ (all plans,
    /// or one), writing only what changed.
    Build {
        /// Build only this plan.
        #[arg(long, value_name = "ID")]
        plan: Option<String>,
    },
    /// Manage administrators.
    Admin {
        /// What to do.
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Verify the data directory (redb file and journal) without starting.
    Check,
    /// Write a snapshot of the whole state into storage.snapshots_dir: offline on a
    /// stopped server, else through the admin API of the server holding the data
    /// directory (POST /api/v1/admin/snapshots; needs its URL and an admin token).
    Snapshot {
        /// The running server's base URL [default: http://{http.addr}].
        #[arg(long, env = "MEMORA_URL", value_name = "URL")]
        url: Option<String>,
        /// File holding an admin's bearer token (first line), for a running server.
        /// Alternatively set MEMORA_ADMIN_TOKEN.
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
    },
    /// Replace the data directory's state with a snapshot (server stopped). The file is
    /// verified first; the previous state is moved to `pre-restore-<time>/` in the data
    /// directory.
    Restore {
        /// The snapshot file.
        file: PathBuf,
    },
    /// Check a snapshot file (checksum, format, opens it) and print its counts.
    Verify {
        /// The snapshot file.
        file: PathBuf,
    },
    /// Shrink the redb file (server stopped).
    Compact,
    /// Print the effective configuration (secrets redacted).
    PrintConfig,
}

/// `memora admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an administrator. The password comes from --password-file, else a prompt on
    /// a terminal, else the first line of standard input.
    Create {
        /// Login email.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "Administrator")]
        display_name: String,
        /// File holding the password (first line).
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
    },
    /// Import students from a CSV roster (columns email, display_name, plan_id, grade,
    /// stream, timezone, password, reset_password). Reports what each row would do;
    /// with --commit applies every row or none and prints generated passwords once.
    ImportRoster {
        /// The CSV file (UTF-8, header row first).
        file: PathBuf,
        /// Apply the roster (default: dry run, nothing changes).
        #[arg(long)]
        commit: bool,
    },
}

/// Sets up tracing from the configuration (stderr; human or JSON).
pub fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

fn open_engine(config: &Config, online_alternative: &str) -> anyhow::Result<Engine> {
    match Engine::open(config.clone(), Arc::new(SystemClock)) {
        Ok(engine) => Ok(engine),
        Err(OpenError::Store(StoreError::Locked { path })) => bail!(
            "{} is held by a running Memora server. Stop it first, or do this online: {online_alternative}",
            path.display()
        ),
        Err(e) => Err(e.into()),
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the command reports; `main` prints it and exits non-zero.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::PrintConfig => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Serve { demo } => {
            init_tracing(&config);
            runtime()?.block_on(serve(config, demo))
        }
        Command::Import { files } => {
            init_tracing(&config);
            runtime()?.block_on(import(config, files))
        }
        Command::Admin {
            action:
                AdminAction::Create {
                    email,
                    display_name,
                    password_file,
                },
        } => {
            init_tracing(&config);
            let password = read_password(password_file)?;
            runtime()?.block_on(async move {
                let engine =
                    open_engine(&config, "POST /api/v1/admin/players with role \"admin\"")?;
                let created = engine
                    .create_player(NewPlayer {
                        email,
                        password,
                        display_name,
                        role: Some(Role::Admin),
                        plan_id: None,
                        grade: None,
                        stream: None,
                        timezone: None,
                        grants: Vec::new(),
                    })
                    .await;
                let closed = tokio::task::spawn_blocking(move || engine.shutdown()).await;
                let view = created.map_err(|e| anyhow::anyhow!("{e}{}", field_list(&e)))?;
                closed?.map_err(|e| anyhow::anyhow!(e))?;
                println!("created admin {} ({})", view.email, view.id);
                Ok(())
            })
        }
        Command::Admin {
            action: AdminAction::ImportRoster { file, commit },
        } => {
            init_tracing(&config);
            runtime()?.block_on(roster::import_roster(config, &file, commit))
        }
        Command::Check => check(&config),
        Command::Snapshot { url, token_file } => {
            init_tracing(&config);
            snapshots::snapshot(&config, snapshots::Online { url, token_file })
        }
        Command::Restore { file } => {
            init_tracing(&config);
            snapshots::restore(&config, &file)
        }
        Command::Verify { file } => snapshots::verify(&file),
        Command::Compact => {
            init_tracing(&config);
            snapshots::compact(&config)
        }
        Command::Build { plan } => {
            init_tracing(&config);
            build(&config, plan.as_deref())
        }
    }
}

/// `memora build [--plan ID]`: builds offline from the stored catalog.
fn build(config: &Config, plan: Option<&str>) -> anyhow::Result<()> {
    use crate::cdn::{BuildReport, RealDisk, Writer};
    let engine = open_engine(config, "POST /api/v1/admin/plans/{id}/build")?;
    let catalog = engine.catalog();
    let mut writer = Writer::new(
        config.content.output_dir.clone(),
        Arc::new(RealDisk),
        config.content.min_free_disk_percent,
    );
    let now = engine.now();
    let started = std::time::Instant::now();
    let line = |r: &BuildReport| {
        format!(
            "{} {}: version {}, {} files, {} written, {} unchanged, {} deleted ({} ms)",
            r.outcome,
            r.plan_id,
            r.version.map_or("-".into(), |v| v.to_string()),
            r.write.files,
            r.write.written,
            r.write.unchanged,
            r.write.deleted,
            r.duration_ms
        )
    };
    let result = match plan {
        Some(id) => {
            if catalog.plan(id).is_none() {
                bail!("no plan `{id}`");
            }
            crate::cdn::build_plan(&mut writer, &catalog, id, now).map(|r| {
                println!("{}", line(&r));
            })
        }
        None => {
            let ids = crate::cdn::all_plan_ids(&mut writer, &catalog)?;
            let bar = crate::progress_bar::bar(ids.len() as u64, "building");
            let done = crate::cdn::build_all(&mut writer, &catalog, now, |r| {
                crate::progress_bar::println(&bar, line(r));
                bar.inc(1);
            });
            bar.finish_and_clear();
            done.map(|_| ())
        }
    };
    let closed = engine.shutdown();
    result?;
    closed.map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "built into {} in {} ms",
        config.content.output_dir.display(),
        started.elapsed().as_millis()
    );
    // With `[cdn.s3]`: a full reconciliation of the bucket with the output root.
    if let Some(uploader) = crate::engine::builds::uploader(config) {
        let uploader = uploader.map_err(|e| anyhow::anyhow!("cdn.s3: {e}"))?;
        let report = uploader.flush_blocking()?;
        println!(
            "uploaded to s3://{}: {} files put ({} bytes), {} deleted in {} ms",
            config.cdn.s3.bucket, report.uploaded, report.bytes, report.deleted, report.duration_ms
        );
    }
    Ok(())
}

fn field_list(e: &crate::error::ApiError) -> String {
    e.errors
        .iter()
        .map(|p| {
            format!(
                "\n  {}: {}",
                if p.pointer.is_empty() {
                    "/"
                } else {
                    &p.pointer
                },
                p.message
            )
        })
        .collect()
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn read_password(file: Option<PathBuf>) -> anyhow::Result<String> {
    let raw = if let Some(path) = file {
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")?
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    };
    Ok(raw.lines().next().unwrap_or("").to_owned())
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let socket = std::net::TcpListener::bind(config.http.addr)
        .with_context(|| format!("cannot listen on {} (http.addr)", config.http.addr))?;
    socket.set_nonblocking(true)?;
    let addr = socket.local_addr()?;
    // Health probes are answered on a clone of the socket while the journal replays.
    let probes = tokio::net::TcpListener::from_std(socket.try_clone()?)?;
    let listener = tokio::net::TcpListener::from_std(socket)?;
    let (recovered_tx, recovered_rx) = tokio::sync::oneshot::channel::<()>();
    let probe_server = tokio::spawn(
        axum::serve(probes, crate::http::recovering_router())
            .with_graceful_shutdown(async move {
                let _ = recovered_rx.await;
            })
            .into_future(),
    );
    let opened = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            open_engine(
                &config,
                "nothing: a server is already running on this data directory",
            )
        })
        .await?
    };
    let _ = recovered_tx.send(());
    let _ = probe_server.await;
    let engine = opened?;
    let recovery = engine.recovery();
    tracing::info!(
        replayed = recovery.replayed,
        truncated_tail_bytes = recovery.truncated_tail_bytes,
        duration_ms = recovery.duration_ms,
        data_dir = %config.storage.data_dir.display(),
        "recovered"
    );
    let base = format!("http://{addr}");
    if demo {
        crate::demo::load(&engine)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let catalog = engine.catalog();
        let view = catalog.plan_view("demo");
        let subject = view.and_then(|v| v.subjects.first().cloned());
        let first = subject.as_ref().and_then(|s| {
            s.lessons.first().map(|&i| {
                let lesson = s.nodes[i as usize].id.to_string();
                let question = s
                    .question_lesson
                    .iter()
                    .filter(|&(_, &l)| l == i)
                    .map(|(q, _)| q.to_string())
                    .min()
                    .unwrap_or_default();
                (lesson, question)
            })
        });
        let subject_id = subject
            .map(|s| s.subject_id().to_string())
            .unwrap_or_default();
        eprintln!(
            "{}",
            crate::demo::instructions(
                &base,
                &subject_id,
                first.as_ref().map(|(l, q)| (l.as_str(), q.as_str()))
            )
        );
    } else if !engine.has_admin() {
        eprintln!(
            "No administrator exists yet. Stop the server and run:\n  memora admin create --email you@school.org\n(or start with --demo to try Memora with demo data)"
        );
    }
    println!("listening on {base}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    crate::app::serve(engine, listener, crate::app::shutdown_signal()).await
}

async fn import(config: Config, files: Vec<PathBuf>) -> anyhow::Result<()> {
    let mut docs = Vec::new();
    for path in files {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let is_plan = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("format")
                    .and_then(|f| f.as_str())
                    .map(|f| f.starts_with("memora.plan/"))
            })
            .unwrap_or(false);
        docs.push((is_plan, path, bytes));
    }
    docs.sort_by_key(|(is_plan, _, _)| *is_plan);
    let engine = open_engine(
        &config,
        "PUT /api/v1/admin/subjects/{id} and PUT /api/v1/admin/plans/{id}",
    )?;
    let bar = crate::progress_bar::bar(docs.len() as u64, "importing");
    let started = std::time::Instant::now();
    let mut failed = 0;
    for (is_plan, path, bytes) in &docs {
        bar.set_message(path.display().to_string());
        let result = if *is_plan {
            engine.put_plan(None, bytes).await
        } else {
            engine.put_subject(None, bytes).await
        };
        match result {
            Ok(outcome) => crate::progress_bar::println(
                &bar,
                format!(
                    "{} {} {}{}",
                    if outcome.created {
                        "created"
                    } else {
                        "replaced"
                    },
                    if *is_plan { "plan" } else { "subject" },
                    outcome.id,
                    outcome
                        .lessons
                        .map(|n| format!(" ({n} lessons)"))
                        .unwrap_or_default()
                ),
            ),
            Err(e) => {
                failed += 1;
                crate::progress_bar::println(
                    &bar,
                    format!("{}: {}{}", path.display(), e.detail, field_list(&e)),
                );
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let closed = tokio::task::spawn_blocking(move || engine.shutdown()).await?;
    closed.map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "imported {} of {} documents in {} ms",
        docs.len() - failed,
        docs.len(),
        started.elapsed().as_millis()
    );
    if failed > 0 {
        bail!("{failed} document(s) were rejected; nothing of them was stored");
    }
    Ok(())
}

fn check(config: &Config) -> anyhow::Result<()> {
    use crate::persist::store::Inspection;
    let data_dir = &config.storage.data_dir;
    let redb_path = data_dir.join(engine::REDB_FILE);
    // Read-only: a check must not change the files it reports on.
    let mut covered = None;
    match crate::persist::store::inspect(&redb_path) {
        Ok(Inspection::Readable(meta, counts)) => {
            covered = Some(meta.progress_seq.min(meta.wallet_seq));
            println!("redb {}: ok", redb_path.display());
            println!(
                "  checkpoints: progress seq {}, wallets seq {}",
                meta.progress_seq, meta.wallet_seq
            );
            println!(
                "  rows: {} subjects, {} plans, {} players, {} sessions, {} progress, {} wallets",
                counts.subjects,
                counts.plans,
                counts.players,
                counts.sessions,
                counts.progress,
                counts.wallets
            );
        }
        Ok(Inspection::Absent) => println!(
            "redb {}: absent (empty data directory)",
            redb_path.display()
        ),
        Ok(Inspection::NeedsRepair) => println!(
            "redb {}: not closed cleanly (the server stopped abruptly); the next start repairs it",
            redb_path.display()
        ),
        Err(StoreError::Locked { path }) => bail!(
            "{} is held by a running Memora server; `memora check` needs it stopped (GET /readyz reports a running server's health)",
            path.display()
        ),
        Err(e) => bail!("{e}"),
    }
    let dir = engine::journal_dir(data_dir);
    if !dir.exists() {
        println!("journal {}: absent (nothing to replay)", dir.display());
        return Ok(());
    }
    match crate::persist::journal::scan(&dir) {
        Ok(report) => {
            // Records after the older checkpoint must all be present: the first segment
            // may start at or before it, never after (a gap would lose writes).
            if let (Some(first), Some(covered)) = (report.first_seq, covered)
                && first > covered + 1
            {
                bail!(
                    "journal {}: starts at sequence {first} but the checkpoints cover only up to {covered}: records {} to {} are missing",
                    dir.display(),
                    covered + 1,
                    first - 1
                );
            }
            println!("journal {}: ok", dir.display());
            println!(
                "  {} segment(s), {} record(s), seq {} to {}, torn tail {} bytes",
                report.segments.len(),
                report.records,
                report.first_seq.map_or("-".into(), |s| s.to_string()),
                report.last_seq.map_or("-".into(), |s| s.to_string()),
                report.torn_tail_bytes
            );
            Ok(())
        }
        Err(e) => bail!("journal {}: {e}", dir.display()),
    }
}
