//! Runs one `memora` CLI command to completion with a time limit, capturing its output:
//! the CLI tests and the recovery tests (a server that must refuse to start) need the
//! exit status and the messages, and must never hang the suite.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long one CLI command may run before the test fails.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished command left behind.
#[derive(Debug)]
pub struct CliRun {
    /// Its exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded and without ANSI colour codes.
    pub stderr: String,
}

impl CliRun {
    /// Standard output and standard error together, for "the message says …" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for CliRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `memora [--config config] args…` with `env` added to the environment (any
/// inherited `MEMORA_*` variable is removed first, so the test decides) and stdin closed.
///
/// # Panics
/// If the binary cannot be spawned, or it runs longer than 30 s (it is then killed).
pub fn memora<A: AsRef<OsStr>>(config: Option<&Path>, args: &[A], env: &[(&str, &str)]) -> CliRun {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memora"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MEMORA_") {
            cmd.env_remove(key);
        }
    }
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn memora");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for memora") {
            Some(status) => break status,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("memora did not finish within {CLI_TIMEOUT:?}");
            }
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    CliRun {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: super::server::strip_ansi(&String::from_utf8_lossy(&stderr)),
    }
}
