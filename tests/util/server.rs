//! A `memora serve` child process for black-box tests: config writing, one-time admin
//! creation, readiness detection from the `listening on` stdout line, and the three
//! ways to stop it (SIGKILL, SIGTERM, drop). Crash tests need a real process to kill.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The admin that [`Server::start`] creates in every fresh data dir.
pub const ADMIN_EMAIL: &str = "admin@test.local";
/// That admin's password.
pub const ADMIN_PASSWORD: &str = "admin-password-123";

/// How long a start or restart may take before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful shutdown may take before the test fails.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or stopped) `memora serve` child on an ephemeral port.
pub struct Server {
    /// The data dir this server owns; it survives restarts.
    pub data_dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` of the current process (the port changes on restart).
    pub url: String,
    /// Time from spawn to the `listening on` line, for the latest start.
    pub ready_after: Duration,
    /// Arguments after `serve` (e.g. `--demo`), kept for restarts.
    serve_args: Vec<String>,
}

impl Server {
    /// Writes a config for `data_dir` (ephemeral port, cheap argon2, rate limits off),
    /// merged with `extra_toml` (whose keys win), creates the test admin once per data
    /// dir, and starts the server.
    ///
    /// # Panics
    /// If the config is invalid TOML, `admin create` fails, or the server does not
    /// print its `listening on` line within 20 s (the server log is printed).
    pub fn start(data_dir: &Path, extra_toml: &str) -> Server {
        Server::start_with_args(data_dir, extra_toml, &[])
    }

    /// As [`Server::start`], running `memora serve {serve_args}` (now and on restarts).
    ///
    /// # Panics
    /// As [`Server::start`].
    pub fn start_with_args(data_dir: &Path, extra_toml: &str, serve_args: &[&str]) -> Server {
        fs::create_dir_all(data_dir).expect("create data dir");
        let data_dir = data_dir.canonicalize().expect("canonical data dir");
        let parent = data_dir
            .parent()
            .expect("data dir has a parent")
            .to_path_buf();
        let name = data_dir
            .file_name()
            .expect("data dir has a name")
            .to_string_lossy()
            .into_owned();
        let config_path = parent.join(format!("{name}.memora.toml"));
        let log_path = parent.join(format!("{name}.server.log"));
        fs::write(&config_path, config_text(&data_dir, extra_toml)).expect("write config");

        let marker = parent.join(format!("{name}.admin-created"));
        if !marker.exists() {
            let password_file = parent.join(format!("{name}.admin-password"));
            fs::write(&password_file, ADMIN_PASSWORD).expect("write password file");
            let out = Command::new(env!("CARGO_BIN_EXE_memora"))
                .arg("--config")
                .arg(&config_path)
                .args(["admin", "create", "--email", ADMIN_EMAIL])
                .args(["--display-name", "Test Admin", "--password-file"])
                .arg(&password_file)
                .output()
                .expect("run memora admin create");
            assert!(
                out.status.success(),
                "memora admin create failed ({}):\nstdout: {}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            fs::write(&marker, b"").expect("write admin marker");
        }

        let mut server = Server {
            data_dir,
            config_path,
            log_path,
            child: None,
            url: String::new(),
            ready_after: Duration::ZERO,
            serve_args: serve_args.iter().map(|a| (*a).to_string()).collect(),
        };
        server.spawn();
        server
    }

    /// Spawns `memora serve`, waits for `listening on http://…` and records the URL.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open server log");
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_memora"))
            .arg("--config")
            .arg(&self.config_path)
            .arg("serve")
            .args(&self.serve_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn memora serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        let log_path = self.log_path.clone();
        // The reader keeps draining stdout after readiness so that the child never
        // blocks on a full pipe; later lines go to the log file.
        std::thread::spawn(move || {
            let mut log = OpenOptions::new().append(true).open(&log_path).ok();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "[stdout] {line}");
                }
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        let deadline = started + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("listening on ") {
                        self.url = url.trim_end_matches('/').to_string();
                        self.ready_after = started.elapsed();
                        return;
                    }
                }
                Err(_) => {
                    let status = self.kill9();
                    panic!(
                        "server did not print `listening on` within {READY_TIMEOUT:?} \
                         (exit: {status:?}); log:\n{}",
                        self.log_tail()
                    );
                }
            }
        }
    }

    /// Sends SIGKILL and reaps the process. Returns its exit status (`None` if it was
    /// not running).
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // `Child::kill` is SIGKILL on Unix: no chance to flush or checkpoint.
        let _ = child.kill();
        child.wait().ok()
    }

    /// Sends SIGTERM and waits (bounded) for a graceful exit.
    ///
    /// # Panics
    /// If the server is not running, or does not exit within 30 s (it is then killed).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            matches!(sent, Ok(s) if s.success()),
            "kill -TERM {pid} failed"
        );
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "server ignored SIGTERM for {STOP_TIMEOUT:?}; log:\n{}",
                        self.log_tail()
                    );
                }
            }
        }
    }

    /// Starts the server again on the same data dir and config (after [`kill9`] or
    /// [`terminate`]); returns the time to the `listening on` line.
    ///
    /// [`kill9`]: Server::kill9
    /// [`terminate`]: Server::terminate
    pub fn restart(&mut self) -> Duration {
        self.kill9();
        self.spawn();
        self.ready_after
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The config file this server runs with (for CLI commands on the same data dir).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The current length of the server's log in bytes: pass it to
    /// [`Server::log_since`] to read only what a later start wrote.
    pub fn log_len(&self) -> usize {
        fs::read(&self.log_path).map_or(0, |b| b.len())
    }

    /// The server's log from byte `offset` on, without ANSI colour codes.
    pub fn log_since(&self, offset: usize) -> String {
        let bytes = fs::read(&self.log_path).unwrap_or_default();
        strip_ansi(&String::from_utf8_lossy(
            bytes.get(offset..).unwrap_or_default(),
        ))
    }

    /// The last 60 lines of the server's log (stderr and stdout), for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `text` without ANSI escape sequences (`ESC [ … letter`), so that tests can match
/// `key=value` fields of human-format log lines whatever the colouring.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The base test config merged with `extra_toml`: keys of `extra_toml` override ours,
/// table by table, so a test may add `[http] bench_routes = true` without repeating
/// the address.
pub fn config_text(data_dir: &Path, extra_toml: &str) -> String {
    let base = format!(
        r#"
[http]
addr = "127.0.0.1:0"

[storage]
data_dir = {data_dir:?}

[auth]
argon2_memory_kib = 64
argon2_iterations = 1
argon2_parallelism = 1

[rate_limits]
enabled = false
"#,
        data_dir = data_dir.to_string_lossy()
    );
    let mut table: toml::Table = base.parse().expect("base config is TOML");
    let extra: toml::Table = extra_toml.parse().expect("extra config is TOML");
    merge(&mut table, extra);
    toml::to_string(&table).expect("config serializes")
}

/// Deep-merges `extra` into `base`: tables merge recursively, other values replace.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
