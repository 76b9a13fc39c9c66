//! Review history import (srs.md "Review history import"): a CSV of past reviews with
//! the header `question_id,rating,reviewed_at,duration_ms` (columns in any order),
//! validated with every problem reported, and replayed question by question in time
//! order through the scheduler to rebuild the cards.
//!
//! Cells: `question_id` non-empty, at most 255 characters, no control characters
//! (lowercased, as everywhere); `rating` 1–4; `reviewed_at` RFC 3339 (any offset) or
//! unix milliseconds, not in the future and not before 2020-01-01T00:00:00Z (the
//! earliest time a card stores), floored to the whole second as cards keep times;
//! `duration_ms` empty or a non-negative integer (kept for the record; FSRS does not use
//! it). Problems point at `/rows/{index}/{column}` (index of the data row, from 0; the
//! message names the file's line) or `/header`.

use std::collections::BTreeMap;

use super::queue::QUEUE_EPOCH_MS;
use super::rating::Rating;
use super::scheduler::{Card, Scheduler};

/// The columns of the file.
pub const COLUMNS: [&str; 4] = ["question_id", "rating", "reviewed_at", "duration_ms"];

/// At most this many problems are listed (then one line says how many more).
pub const MAX_PROBLEMS: usize = 1000;

/// Longest question id accepted.
pub const MAX_QUESTION_ID: usize = 255;

/// One validated review of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedReview {
    /// Lowercased question id.
    pub question_id: String,
    /// The answer.
    pub rating: Rating,
    /// When (UTC ms, on a whole second).
    pub reviewed_at_ms: i64,
    /// How long the answer took, if given.
    pub duration_ms: Option<u64>,
}

/// A problem of the file: a JSON pointer and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvProblem {
    /// `/header`, `/rows/{index}` or `/rows/{index}/{column}`.
    pub pointer: String,
    /// What is wrong, naming the line.
    pub message: String,
}

fn problem(pointer: impl Into<String>, message: impl Into<String>) -> CsvProblem {
    CsvProblem {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// Parses and validates a history file read at `now_ms` (UTC ms).
///
/// # Errors
/// Every problem found (at most [`MAX_PROBLEMS`] plus a count of the rest).
pub fn parse_history(text: &[u8], now_ms: i64) -> Result<Vec<ImportedReview>, Vec<CsvProblem>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text);
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![problem("/header", format!("unreadable header: {e}"))]),
    };
    let mut index = [usize::MAX; 4];
    let mut problems = Vec::new();
    for (pos, name) in header.iter().enumerate() {
        let name = name.trim_start_matches('\u{feff}');
        match COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(name)) {
            Some(c) if index[c] == usize::MAX => index[c] = pos,
            Some(_) => problems.push(problem("/header", format!("column `{name}` appears twice"))),
            None => problems.push(problem(
                "/header",
                format!(
                    "unknown column `{name}`; the header is {}",
                    COLUMNS.join(",")
                ),
            )),
        }
    }
    for (c, name) in COLUMNS.iter().enumerate() {
        if index[c] == usize::MAX {
            problems.push(problem("/header", format!("missing column `{name}`")));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut reviews = Vec::new();
    let mut more = 0usize;
    let mut push = |problems: &mut Vec<CsvProblem>, p: CsvProblem| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(p);
        } else {
            more += 1;
        }
    };
    for (row, record) in reader.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                push(
                    &mut problems,
                    problem(format!("/rows/{row}"), format!("line {line}: {e}")),
                );
                // After a malformed record the reader may not be able to go on.
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let cell = |c: usize| record.get(index[c]).unwrap_or("");
        let mut at = |column: &str, message: String| {
            push(
                &mut problems,
                problem(
                    format!("/rows/{row}/{column}"),
                    format!("line {line}: {message}"),
                ),
            );
        };
        let question = cell(0);
        let question_ok = if question.is_empty() {
            at("question_id", "must not be empty".into());
            false
        } else if question.chars().count() > MAX_QUESTION_ID {
            at(
                "question_id",
                format!("must be at most {MAX_QUESTION_ID} characters"),
            );
            false
        } else if question.chars().any(char::is_control) {
            at("question_id", "must not contain control characters".into());
            false
        } else {
            true
        };
        let rating = match cell(1)
            .parse::<u8>()
            .ok()
            .and_then(|r| Rating::try_from(r).ok())
        {
            Some(r) => Some(r),
            None => {
                at(
                    "rating",
                    format!(
                        "`{}` is not 1 (again), 2 (hard), 3 (good) or 4 (easy)",
                        cell(1)
                    ),
                );
                None
            }
        };
        let reviewed_at = match parse_time(cell(2)) {
            Some(ms) if ms > now_ms => {
                at("reviewed_at", format!("`{}` is in the future", cell(2)));
                None
            }
            Some(ms) if ms < QUEUE_EPOCH_MS => {
                at(
                    "reviewed_at",
                    format!("`{}` is before 2020-01-01T00:00:00Z", cell(2)),
                );
                None
            }
            Some(ms) => Some(ms.div_euclid(1000) * 1000),
            None => {
                at(
                    "reviewed_at",
                    format!(
                        "`{}` is neither an RFC 3339 time nor unix milliseconds",
                        cell(2)
                    ),
                );
                None
            }
        };
        let duration = match cell(3) {
            "" => Some(None),
            raw => match raw.parse::<u64>() {
                Ok(ms) => Some(Some(ms)),
                Err(_) => {
                    at(
                        "duration_ms",
                        format!("`{raw}` is not empty or a non-negative integer"),
                    );
                    None
                }
            },
        };
        if let (true, Some(rating), Some(reviewed_at_ms), Some(duration_ms)) =
            (question_ok, rating, reviewed_at, duration)
        {
            reviews.push(ImportedReview {
                question_id: question.to_lowercase(),
                rating,
                reviewed_at_ms,
                duration_ms,
            });
        }
    }
    if problems.is_empty() && reviews.is_empty() {
        problems.push(problem("/rows", "the file has no reviews"));
    }
    if more > 0 {
        problems.push(problem("", format!("…and {more} more problems")));
    }
    if problems.is_empty() {
        Ok(reviews)
    } else {
        Err(problems)
    }
}

/// RFC 3339 or unix milliseconds → UTC ms.
fn parse_time(raw: &str) -> Option<i64> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse::<i64>().ok();
    }
    raw.parse::<jiff::Timestamp>()
        .ok()
        .map(jiff::Timestamp::as_millisecond)
}

/// The card of each question of `reviews`, rebuilt by answering its reviews in time
/// order (file order among equal times) through `scheduler`, starting from no card;
/// with the number of reviews replayed. Ordered by question id.
#[must_use]
pub fn replay(scheduler: &Scheduler, reviews: &[ImportedReview]) -> Vec<(String, Card, usize)> {
    let mut by_question: BTreeMap<&str, Vec<&ImportedReview>> = BTreeMap::new();
    for r in reviews {
        by_question.entry(&r.question_id).or_default().push(r);
    }
    by_question
        .into_iter()
        .filter_map(|(question, mut history)| {
            history.sort_by_key(|r| r.reviewed_at_ms);
            let card = history.iter().fold(None, |card: Option<Card>, r| {
                Some(scheduler.review(card.as_ref(), r.rating, r.reviewed_at_ms, question))
            })?;
            Some((question.to_owned(), card, history.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srs::SchedulerConfig;

    /// 2026-11-21T09:00:00Z.
    const NOW: i64 = 1_795_251_600_000;

    #[test]
    fn a_good_file_is_read_in_any_column_order() {
        let text = "rating,question_id,duration_ms,reviewed_at\n\
                    3,JS-Q-1,,2026-11-01T10:00:00.750Z\n\
                    1, js-q-2 ,1200,1793000000000\n\
                    4,js-q-1,900,2026-11-02T10:00:00+02:00\n";
        let rows = parse_history(text.as_bytes(), NOW).expect("valid");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].question_id, "js-q-1");
        assert_eq!(rows[0].reviewed_at_ms % 1000, 0, "floored to the second");
        assert_eq!(rows[1].question_id, "js-q-2");
        assert_eq!(rows[1].reviewed_at_ms, 1_793_000_000_000);
        assert_eq!(rows[1].duration_ms, Some(1200));
        assert_eq!(rows[2].rating, Rating::Easy);
    }

    #[test]
    fn every_problem_is_reported_with_its_cell() {
        let text = "question_id,rating,reviewed_at,duration_ms\n\
                    ,5,yesterday,-1\n\
                    q,3,2030-01-01T00:00:00Z,\n\
                    q,3\n\
                    q,2,2019-12-31T23:59:59Z,\n";
        let problems = parse_history(text.as_bytes(), NOW).expect_err("invalid");
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/rows/0/question_id",
                "/rows/0/rating",
                "/rows/0/reviewed_at",
                "/rows/0/duration_ms",
                "/rows/1/reviewed_at",
                "/rows/2",
                "/rows/3/reviewed_at",
            ]
        );
        assert!(problems[0].message.starts_with("line 2:"), "{problems:?}");
        assert!(problems[5].message.starts_with("line 4:"), "{problems:?}");
    }

    #[test]
    fn header_problems_are_reported_before_rows() {
        let problems =
            parse_history(b"question_id,grade,reviewed_at\nq,3,1\n", NOW).expect_err("header");
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(problems.len(), 3, "{messages:?}");
        assert!(problems.iter().all(|p| p.pointer == "/header"));
        let empty =
            parse_history(b"question_id,rating,reviewed_at,duration_ms\n", NOW).expect_err("empty");
        assert_eq!(empty[0].pointer, "/rows");
    }

    #[test]
    fn replay_follows_time_order_per_question() {
        let scheduler = Scheduler::new(SchedulerConfig {
            enable_fuzz: false,
            ..SchedulerConfig::default()
        })
        .expect("scheduler");
        let day = 86_400_000;
        let t0 = NOW - 30 * day;
        let review = |q: &str, rating, at| ImportedReview {
            question_id: q.into(),
            rating,
            reviewed_at_ms: at,
            duration_ms: None,
        };
        // Out of order in the file.
        let rows = vec![
            review("b", Rating::Good, t0 + 5 * day),
            review("a", Rating::Good, t0),
            review("b", Rating::Again, t0),
            review("a", Rating::Easy, t0 + day),
        ];
        let cards = replay(&scheduler, &rows);
        assert_eq!(cards.len(), 2);
        let mut expected_a = scheduler.review(None, Rating::Good, t0, "a");
        expected_a = scheduler.review(Some(&expected_a), Rating::Easy, t0 + day, "a");
        assert_eq!(cards[0], ("a".to_owned(), expected_a, 2));
        let mut expected_b = scheduler.review(None, Rating::Again, t0, "b");
        expected_b = scheduler.review(Some(&expected_b), Rating::Good, t0 + 5 * day, "b");
        assert_eq!(cards[1], ("b".to_owned(), expected_b, 2));
    }
}
