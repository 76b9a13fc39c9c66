//! Recovery from a damaged journal, black-box (persistence.md "Recovery", quality.md
//! "torn journal tail, corrupted middle record"): a real `memora serve` is killed, its
//! journal segment is damaged by hand following the framing of `docs/journal.md`, and
//! the restart must either repair a torn tail (with a warning, losing nothing
//! acknowledged) or refuse to start naming the file and offset, modifying nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tokio::task::block_in_place;

use crate::util::scenario::{self, Acked};
use crate::util::{Api, CallError, Server, Session, memora};

/// Checkpoints far apart, so that every record of a test stays in the journal.
const QUIET_CHECKPOINTS: &str =
    "[checkpoint]\nprogress_interval_secs = 3600\nwallet_interval_secs = 3600\n";
/// Segment header length (docs/journal.md "Segment header").
const HEADER_LEN: usize = 24;
/// Record bytes before the payload: len, crc, seq, version.
const RECORD_OVERHEAD: usize = 17;

/// The journal segments of a data dir, oldest first (names sort numerically).
fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = fs::read_dir(data_dir.join("journal"))
        .expect("journal dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("journal-") && n.ends_with(".wal"))
        })
        .collect();
    segs.sort();
    assert!(
        !segs.is_empty(),
        "no journal segment in {}",
        data_dir.display()
    );
    segs
}

/// `(offset, len field)` of every record of a segment, by walking the length fields.
fn record_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = HEADER_LEN;
    while off + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().expect("4 bytes")) as usize;
        assert!(
            off + 8 + len <= bytes.len(),
            "record at {off} overruns the file"
        );
        out.push((off, len));
        off += 8 + len;
    }
    assert_eq!(
        off,
        bytes.len(),
        "the segment does not end on a record boundary"
    );
    out
}

/// Every file under `dir` with its bytes.
fn tree_bytes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(tree_bytes(&path));
        } else {
            out.insert(path.clone(), fs::read(&path).expect("read file"));
        }
    }
    out
}

/// Asserts that the files selected by `which` have the same names and bytes.
fn assert_same_files(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    which: impl Fn(&Path) -> bool,
) {
    let pick = |m: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<PathBuf> {
        m.keys().filter(|p| which(p)).cloned().collect()
    };
    assert_eq!(pick(before), pick(after), "files appeared or disappeared");
    for path in pick(before) {
        assert!(
            before[&path] == after[&path],
            "{} was modified",
            path.display()
        );
    }
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open segment");
    f.write_all(bytes).expect("append");
}

/// The student's session if it survived the restart, else a fresh login.
async fn session_after_restart(api: &Api, old: Session, email: &str) -> Session {
    match api.me(&old).await {
        Ok(_) => old,
        Err(CallError::Status { status: 401, .. }) => scenario::login(api, email).await,
        Err(e) => panic!("{email}: /me after restart: {e}"),
    }
}

/// Starts a server, imports the school, creates one student and completes `n` lessons.
async fn scenario_with_completions(
    data_dir: &Path,
    email: &str,
    n: usize,
) -> (Server, Session, Vec<Acked>) {
    let server = block_in_place(|| Server::start(data_dir, QUIET_CHECKPOINTS));
    let api = Api::new(&server.url);
    let admin = scenario::import_school(&api).await;
    let student = scenario::new_student(&api, &admin, email).await;
    let acked = scenario::complete_suggested(&api, &student, "chain", n, 4).await;
    (server, student, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_truncated_with_a_warning_and_nothing_acknowledged_is_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let email = "torn@test.local";
    let (mut server, student, mut acked) =
        scenario_with_completions(&tmp.path().join("data"), email, 5).await;
    block_in_place(|| server.kill9());

    // Round 1: half a record, as a crash in the middle of a batch's write leaves it: a
    // length field promising 100 payload bytes, a checksum, and only 20 bytes more.
    let seg = segments(&server.data_dir).pop().expect("a segment");
    let good_len = fs::metadata(&seg).expect("segment").len();
    let mut half = Vec::new();
    half.extend_from_slice(&(9u32 + 100).to_le_bytes());
    half.extend_from_slice(&0xDEAD_BEEF_u32.to_le_bytes());
    half.extend_from_slice(&[0x5A; 20]);
    append(&seg, &half);

    let log_at = server.log_len();
    block_in_place(|| server.restart());
    let log = server.log_since(log_at);
    assert!(
        log.contains(&format!("truncated a torn tail of {} bytes", half.len()))
            && log.contains("WARN"),
        "no warning about the {} torn bytes; log:\n{log}",
        half.len()
    );
    assert!(
        log.contains(&format!("truncated_tail_bytes={}", half.len())),
        "the `recovered` line does not report the torn bytes; log:\n{log}"
    );
    assert_eq!(
        fs::metadata(&seg).expect("segment").len(),
        good_len,
        "the torn tail was not cut back to the last whole record"
    );
    let api = Api::new(&server.url);
    let student = session_after_restart(&api, student, email).await;
    scenario::assert_acked_present(&api, &student, "chain", &acked, "after a torn record").await;

    // Round 2: plain garbage after more acknowledged work.
    acked.extend(scenario::complete_suggested(&api, &student, "chain", 3, 5).await);
    block_in_place(|| server.kill9());
    let seg = segments(&server.data_dir).pop().expect("a segment");
    let garbage = [0xAB_u8; 37];
    append(&seg, &garbage);
    let log_at = server.log_len();
    block_in_place(|| server.restart());
    let log = server.log_since(log_at);
    assert!(
        log.contains(&format!("truncated a torn tail of {} bytes", garbage.len())),
        "no warning about the {} garbage bytes; log:\n{log}",
        garbage.len()
    );
    let api = Api::new(&server.url);
    let student = session_after_restart(&api, student, email).await;
    scenario::assert_acked_present(&api, &student, "chain", &acked, "after garbage").await;
    assert_eq!(acked.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_middle_record_refuses_to_start_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let email = "corrupt@test.local";
    let (mut server, _student, acked) =
        scenario_with_completions(&tmp.path().join("data"), email, 5).await;
    block_in_place(|| server.kill9());

    // Flip one payload byte of an early record that has valid records after it.
    let seg = segments(&server.data_dir).pop().expect("a segment");
    let original = fs::read(&seg).expect("segment");
    let records = record_offsets(&original);
    assert!(
        records.len() >= 8,
        "expected the imports and completions in the last segment, found {} records",
        records.len()
    );
    let (offset, len) = records[1];
    let flip_at = offset + RECORD_OVERHEAD + (len - 9) / 2;
    let mut damaged = original.clone();
    damaged[flip_at] ^= 0xFF;
    fs::write(&seg, &damaged).expect("write damaged segment");
    let before = tree_bytes(&server.data_dir);

    let file = seg.display().to_string();
    let at = format!("byte offset {offset}");
    let serve = block_in_place(|| memora(Some(server.config_path()), &["serve"], &[]));
    assert!(
        !serve.status.success(),
        "serve started on a corrupt journal:\n{serve}"
    );
    assert!(
        serve.stderr.contains(&file) && serve.stderr.contains(&at),
        "serve's error does not name {file} and `{at}`:\n{serve}"
    );
    assert!(
        !serve.stdout.contains("listening on"),
        "serve listened before refusing:\n{serve}"
    );

    let check = block_in_place(|| memora(Some(server.config_path()), &["check"], &[]));
    assert!(
        !check.status.success(),
        "check passed a corrupt journal:\n{check}"
    );
    assert!(
        check.all().contains(&file) && check.all().contains(&at),
        "check's error does not name {file} and `{at}`:\n{check}"
    );

    // The journal, the damaged evidence, is untouched by the refused start and by
    // check. (The refused start opened redb first, and redb repairs its own file after
    // the kill; `check` opens it read-only and so changes nothing at all.)
    let after_serve = tree_bytes(&server.data_dir);
    assert_same_files(&before, &after_serve, |p| {
        p.starts_with(server.data_dir.join("journal"))
    });
    let check_again = block_in_place(|| memora(Some(server.config_path()), &["check"], &[]));
    assert!(
        !check_again.status.success(),
        "second check:\n{check_again}"
    );
    assert_same_files(&after_serve, &tree_bytes(&server.data_dir), |_| true);

    // Repairing the byte by hand brings everything back: nothing was dropped.
    fs::write(&seg, &original).expect("restore segment");
    block_in_place(|| server.restart());
    let api = Api::new(&server.url);
    let student = scenario::login(&api, email).await;
    scenario::assert_acked_present(&api, &student, "chain", &acked, "after repair").await;
}
