//! Architecture invariants that reviews forget (STYLE.md rules 2 and 5,
//! ARCHITECTURE.md): the domain folders are pure — no async runtime, storage, HTTP,
//! locks, file or network I/O, or clock reads — and every source file opens with a
//! `//!` comment saying why it exists. Checked by reading the sources.

use std::fs;
use std::path::{Path, PathBuf};

/// The pure domain folders.
const DOMAIN: [&str; 4] = ["src/content", "src/progress", "src/players", "src/srs"];

/// What a domain file must not mention (outside comments), and why.
const FORBIDDEN: [(&str, &str); 12] = [
    ("tokio", "async runtime"),
    ("redb", "storage"),
    ("axum", "HTTP"),
    ("parking_lot", "locks belong to the engine"),
    ("std::fs", "file I/O"),
    ("std::net", "network I/O"),
    ("Mutex", "locks belong to the engine"),
    ("RwLock", "locks belong to the engine"),
    ("Timestamp::now", "clock read: time is passed in"),
    ("SystemTime::now", "clock read: time is passed in"),
    ("Instant::now", "clock read: time is passed in"),
    ("Zoned::now", "clock read: time is passed in"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Unit-test files compiled only under `#[cfg(test)]`: a `tests.rs`, or anything below
/// a `tests/` folder. They may read fixtures from disk and time themselves.
fn is_test_only(path: &Path) -> bool {
    path.file_stem().is_some_and(|s| s == "tests")
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The module owning the `tests` directory or file `path` belongs to must declare it
/// `#[cfg(test)] mod tests;`, or the exemption above would be a loophole.
fn assert_declared_cfg_test(path: &Path) {
    let mut dir = path.parent().expect("parent");
    while dir.file_name().is_some_and(|n| n == "tests") {
        dir = dir.parent().expect("parent");
    }
    let owner = if path.file_stem().is_some_and(|s| s == "tests") && !path.ends_with("tests/mod.rs")
    {
        // `streak/tests.rs` belongs to `streak.rs`.
        dir.with_extension("rs")
    } else {
        dir.join("mod.rs")
    };
    let owner = if owner.exists() {
        owner
    } else {
        dir.with_extension("rs")
    };
    let text = fs::read_to_string(&owner).unwrap_or_else(|e| panic!("{}: {e}", owner.display()));
    assert!(
        text.contains("#[cfg(test)]\nmod tests;"),
        "{} is exempt as test-only, but {} does not declare `#[cfg(test)] mod tests;`",
        path.display(),
        owner.display()
    );
}

/// The code of a line without its `//` comment (good enough for this codebase: no
/// string literal in the domain contains `//` before a forbidden word).
fn code_of(line: &str) -> &str {
    line.split("//").next().unwrap_or_default()
}

#[test]
fn domain_modules_do_no_io_take_no_locks_and_read_no_clock() {
    let mut violations = Vec::new();
    let mut checked = 0;
    for folder in DOMAIN {
        let mut files = Vec::new();
        rust_files(&root().join(folder), &mut files);
        let top = root().join(format!("{folder}.rs"));
        if top.exists() {
            files.push(top);
        }
        for path in files {
            if is_test_only(&path) {
                assert_declared_cfg_test(&path);
                continue;
            }
            checked += 1;
            let text = fs::read_to_string(&path).expect("read source");
            for (n, line) in text.lines().enumerate() {
                let code = code_of(line);
                for (word, why) in FORBIDDEN {
                    if code.contains(word) {
                        violations.push(format!(
                            "{}:{}: `{word}` ({why}): {}",
                            path.strip_prefix(root()).unwrap_or(&path).display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked >= 15,
        "only {checked} domain files found: wrong folders?"
    );
    assert!(
        violations.is_empty(),
        "domain modules must stay pure (STYLE.md rule 2):\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_source_file_starts_with_a_module_comment() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        if root().join(dir).exists() {
            rust_files(&root().join(dir), &mut files);
        }
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|p| {
            !fs::read_to_string(p)
                .expect("read source")
                .trim_start()
                .starts_with("//!")
        })
        .map(|p| p.strip_prefix(root()).unwrap_or(p).display().to_string())
        .collect();
    assert!(files.len() > 40, "only {} files found", files.len());
    assert!(
        missing.is_empty(),
        "files without a leading `//!` comment (STYLE.md rule 5):\n{}",
        missing.join("\n")
    );
}
