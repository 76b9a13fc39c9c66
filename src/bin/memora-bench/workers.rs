//! The load itself: one task per connection, each cycling through its share of the
//! students and issuing one request at a time, recording only requests that start
//! inside the measured window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::args::Scenario;
use crate::client::{Answer, Http, Student};
use crate::stats::OpStats;

/// Stats of one connection, by operation name.
pub type Stats = BTreeMap<&'static str, OpStats>;

/// What every worker shares.
pub struct Run {
    /// The scenario.
    pub scenario: Scenario,
    /// Subjects to read or to walk, round-robin.
    pub subjects: Vec<String>,
    /// Question ids of every student's cards (review scenarios).
    pub questions: Vec<String>,
    /// Password for re-logins (login scenario).
    pub password: String,
    /// Requests starting before this are warmup and not recorded.
    pub measure_from: Instant,
    /// No request starts at or after this.
    pub end: Instant,
}

/// One operation a worker may issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Progress,
    Baseline,
    Complete,
    Wallet,
    Login,
    Content,
    Due,
    Review,
}

/// Per-student state of the completion walk.
struct Walker {
    student: Student,
    /// Index into `Run::subjects` of the subject being walked.
    subject: usize,
    /// Subjects found finished (or inaccessible) in a row.
    finished: usize,
    /// The lesson the server suggested last, if known.
    next: Option<String>,
    /// The last lesson completed, replayed once every subject is finished.
    last: Option<String>,
    /// Review scenario: cards listed by the last due query, to answer next.
    listed: Vec<String>,
    /// Review scenario: next card to answer when nothing is listed (round-robin).
    next_card: usize,
    /// Review scenario: whether the last request was the due query.
    due_listed: bool,
}

/// Drives `students` until `run.end`; `index` spreads the students' first subjects and
/// seeds the random choices.
pub async fn worker(
    http: Http,
    students: Vec<Student>,
    run: Arc<Run>,
    index: usize,
    seed: u64,
) -> Stats {
    let mut rng = StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let n_subjects = run.subjects.len().max(1);
    let mut walkers: Vec<Walker> = students
        .into_iter()
        .enumerate()
        .map(|(k, student)| Walker {
            student,
            subject: (index + k) % n_subjects,
            finished: 0,
            next: None,
            last: None,
            listed: Vec::new(),
            next_card: k,
            due_listed: false,
        })
        .collect();
    let mut stats = Stats::new();
    if walkers.is_empty() {
        return stats;
    }
    let mut k: usize = 0;
    let mut idle_rounds = 0;
    while Instant::now() < run.end {
        let w = k % walkers.len();
        k += 1;
        let walker = &mut walkers[w];
        let op = match pick(run.scenario, &mut rng) {
            // A review session: list what is due, then answer it.
            Op::Due if run.scenario == Scenario::Reviews && walker.due_listed => Op::Review,
            op => op,
        };
        let started = Instant::now();
        let issued = match op {
            Op::Complete => step_walk(&http, &run, walker, &mut rng, &mut stats, started).await,
            Op::Due | Op::Review => {
                step_review(&http, &run, walker, op, &mut stats, started).await;
                true
            }
            _ => {
                let subject = run
                    .subjects
                    .get(k % n_subjects)
                    .map(String::as_str)
                    .unwrap_or_default();
                let (name, a) = read(&http, &run, op, &mut walker.student, subject).await;
                record(&mut stats, &run, name, started, &a);
                true
            }
        };
        // Students with nothing left to complete and nothing to replay issue no
        // request; stop instead of spinning when that is true of all of them.
        idle_rounds = if issued { 0 } else { idle_rounds + 1 };
        if idle_rounds > walkers.len() * (n_subjects + 1) {
            break;
        }
    }
    stats
}

/// The operation of this iteration for the scenario (`mixed`: 60/25/15).
fn pick(scenario: Scenario, rng: &mut StdRng) -> Op {
    match scenario {
        Scenario::Progress => Op::Progress,
        Scenario::Baseline => Op::Baseline,
        Scenario::Complete => Op::Complete,
        Scenario::Login => Op::Login,
        Scenario::Content => Op::Content,
        Scenario::Reviews | Scenario::Due => Op::Due,
        Scenario::Mixed => match rng.random_range(0..100) {
            0..60 => Op::Progress,
            60..85 => Op::Complete,
            _ => Op::Wallet,
        },
    }
}

/// One read-like request (everything but the walk); returns its operation name.
async fn read(
    http: &Http,
    run: &Run,
    op: Op,
    s: &mut Student,
    subject: &str,
) -> (&'static str, Answer) {
    let auth = Some((s.token.as_str(), s.device_id.as_str()));
    match op {
        Op::Progress | Op::Complete | Op::Due | Op::Review => {
            let path = format!("/api/v1/subjects/{subject}/progress");
            (
                "progress",
                http.send(reqwest::Method::GET, &path, auth, None).await,
            )
        }
        Op::Baseline => {
            let path = format!("/api/v1/bench/subjects/{subject}/progress");
            (
                "baseline",
                http.send(reqwest::Method::GET, &path, auth, None).await,
            )
        }
        Op::Wallet => (
            "wallet",
            http.send(reqwest::Method::GET, "/api/v1/wallet", auth, None)
                .await,
        ),
        Op::Content => {
            // `subject` holds a content path for this scenario (see `content_paths`).
            let path = format!("/content/{subject}");
            (
                "content",
                http.send(reqwest::Method::GET, &path, None, None).await,
            )
        }
        Op::Login => {
            let a = http.login(&s.email, &run.password, &s.device_id).await;
            if let Some(t) = a.json().get("token").and_then(Value::as_str) {
                s.token = t.to_string();
            }
            ("login", a)
        }
    }
}

/// One request of a review session: the due query (remembering what it listed), or a
/// submission answering up to [`crate::reviews::ANSWERS_PER_REVIEW`] listed cards (or,
/// when none is listed, the student's next cards round-robin: answered early, they are
/// rescheduled without XP).
async fn step_review(
    http: &Http,
    run: &Run,
    w: &mut Walker,
    op: Op,
    stats: &mut Stats,
    started: Instant,
) {
    if op == Op::Due {
        let a = crate::reviews::due(http, &w.student).await;
        record(stats, run, "due", started, &a);
        w.listed = crate::reviews::due_questions(&a.json());
        w.due_listed = true;
        return;
    }
    let mut answer: Vec<String> = w
        .listed
        .drain(..w.listed.len().min(crate::reviews::ANSWERS_PER_REVIEW))
        .collect();
    if answer.is_empty() && !run.questions.is_empty() {
        for _ in 0..crate::reviews::ANSWERS_PER_REVIEW.min(run.questions.len()) {
            answer.push(run.questions[w.next_card % run.questions.len()].clone());
            w.next_card += 1;
        }
    }
    let a = crate::reviews::review(http, &w.student, &answer).await;
    record(stats, run, "review", started, &a);
    w.due_listed = false;
}

/// One step of a student's walk in unlock order: refresh the suggestion from progress
/// when unknown, else complete the suggested lesson (or replay the last one when every
/// subject is finished). Returns whether a request was issued.
async fn step_walk(
    http: &Http,
    run: &Run,
    w: &mut Walker,
    rng: &mut StdRng,
    stats: &mut Stats,
    started: Instant,
) -> bool {
    let n = run.subjects.len();
    let all_finished = w.finished >= n;
    if w.next.is_none() && !all_finished {
        let path = format!("/api/v1/subjects/{}/progress", run.subjects[w.subject]);
        let auth = Some((w.student.token.as_str(), w.student.device_id.as_str()));
        let a = http.send(reqwest::Method::GET, &path, auth, None).await;
        record(stats, run, "refresh", started, &a);
        let progress = a.json();
        w.next = suggestion(&progress);
        if w.next.is_none() {
            // A finished subject still offers replays of its passed lessons.
            w.last = w.last.take().or_else(|| first_passed(&progress));
            w.finished += 1;
            w.subject = (w.subject + 1) % n.max(1);
        } else {
            w.finished = 0;
        }
        return true;
    }
    let Some(lesson) = w.next.clone().or_else(|| w.last.clone()) else {
        return false;
    };
    let hearts: u8 = rng.random_range(1..=5);
    let path = format!("/api/v1/lessons/{lesson}/complete");
    let auth = Some((w.student.token.as_str(), w.student.device_id.as_str()));
    let a = http
        .send(
            reqwest::Method::POST,
            &path,
            auth,
            Some(&json!({ "hearts": hearts })),
        )
        .await;
    record(stats, run, "complete", started, &a);
    if a.is_ok() {
        w.last = Some(lesson);
        w.next = suggestion(&a.json());
        if w.next.is_none() && !all_finished {
            w.finished += 1;
            w.subject = (w.subject + 1) % n.max(1);
        }
    } else {
        // NOT_UNLOCKED and friends: ask progress again before the next completion.
        w.next = None;
        if all_finished {
            w.last = None;
        }
    }
    true
}

/// `suggested_next_lesson_id` of a progress answer or of a completion's `progress`.
pub fn suggestion(v: &Value) -> Option<String> {
    v.get("suggested_next_lesson_id")
        .or_else(|| v.pointer("/progress/suggested_next_lesson_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The first lesson node with status `passed` in a progress answer's tree.
pub fn first_passed(v: &Value) -> Option<String> {
    fn walk(node: &Value) -> Option<String> {
        let is_lesson = node.get("type").and_then(Value::as_str) == Some("lesson");
        let passed = node.get("status").and_then(Value::as_str) == Some("passed");
        if is_lesson && passed {
            return node.get("id").and_then(Value::as_str).map(str::to_string);
        }
        node.get("children")
            .and_then(Value::as_array)?
            .iter()
            .find_map(walk)
    }
    walk(v.get("root")?)
}

/// Records `a` under `name` if the request started in the measured window.
fn record(stats: &mut Stats, run: &Run, name: &'static str, started: Instant, a: &Answer) {
    if started < run.measure_from || started >= run.end {
        return;
    }
    let s = stats.entry(name).or_default();
    if a.is_ok() {
        s.ok(a.latency);
    } else {
        s.error(a.error_key());
    }
}

/// Deals students to `connections` workers (student i to worker i mod C); with fewer
/// students than connections, workers share students so that every connection works.
pub fn deal(students: &[Student], connections: usize) -> Vec<Vec<Student>> {
    let mut buckets: Vec<Vec<Student>> = vec![Vec::new(); connections];
    for (i, s) in students.iter().enumerate() {
        buckets[i % connections].push(s.clone());
    }
    if !students.is_empty() {
        for (w, bucket) in buckets.iter_mut().enumerate() {
            if bucket.is_empty() {
                bucket.push(students[w % students.len()].clone());
            }
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_at_top_level_or_nested() {
        assert_eq!(
            suggestion(&json!({"suggested_next_lesson_id": "a"})).as_deref(),
            Some("a")
        );
        assert_eq!(
            suggestion(&json!({"progress": {"suggested_next_lesson_id": "b"}})).as_deref(),
            Some("b")
        );
        assert_eq!(suggestion(&json!({"suggested_next_lesson_id": null})), None);
    }

    #[test]
    fn first_passed_lesson_of_a_tree() {
        let v = json!({"root": {"type": "subject", "status": "passed", "children": [
            {"type": "topic", "status": "passed", "children": [
                {"id": "l1", "type": "lesson", "status": "passed"}]}]}});
        assert_eq!(first_passed(&v).as_deref(), Some("l1"));
        assert_eq!(first_passed(&json!({"root": {"type": "subject"}})), None);
    }

    #[test]
    fn dealing_covers_every_student_and_connection() {
        let students: Vec<Student> = (0..10).map(Student::nth).collect();
        let b = deal(&students, 4);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 2, 2]);
        let b = deal(&students[..2], 4);
        assert!(b.iter().all(|x| x.len() == 1));
        assert_eq!(b[3][0].email, "bench-1@bench.local");
    }

    #[test]
    fn mixed_uses_all_three_operations() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = BTreeMap::new();
        for _ in 0..10_000 {
            *seen
                .entry(format!("{:?}", pick(Scenario::Mixed, &mut rng)))
                .or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 3);
        assert!((5_500..6_500).contains(&seen["Progress"]), "{seen:?}");
    }
}
