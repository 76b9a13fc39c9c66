//! The review scenarios (`reviews`, `due`): their setup — an active season, and for
//! every student `--review-cards` cards of the plan's questions, created through the
//! review history import (one past `good` answer each, so every card is due at the
//! start of a run) — and the two requests, `GET /api/v1/reviews/due` and
//! `POST /api/v1/reviews`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::args::Args;
use crate::client::{Answer, Http, Student, device_id_for};

/// Answers per review submission (at most; fewer when fewer cards are due).
pub const ANSWERS_PER_REVIEW: usize = 5;

/// Makes sure a season is active (creates `bench` if none is), and gives every student
/// `args.review_cards` due cards. Returns the cards' question ids.
///
/// # Errors
/// When the season, the subjects or an import fail.
pub async fn setup(
    http: &Http,
    admin: &str,
    args: &Args,
    subjects: &[String],
    students: &[Student],
) -> anyhow::Result<Vec<String>> {
    let auth = Some((admin, device_id_for("admin")));
    let auth = auth.as_ref().map(|(t, d)| (*t, d.as_str()));
    let seasons = http
        .send(reqwest::Method::GET, "/api/v1/admin/seasons", auth, None)
        .await;
    let active = seasons.json()["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|s| s["is_active"] == true));
    if !active {
        let a = http
            .send(
                reqwest::Method::POST,
                "/api/v1/admin/seasons",
                auth,
                Some(
                    &json!({"id": "bench", "title": "Bench", "start_date": "2020-01-01",
                             "end_date": "2099-12-31", "is_active": true}),
                ),
            )
            .await;
        if !a.is_ok() {
            bail!("cannot create an active season: {}", a.error_key());
        }
    }
    let mut questions = Vec::new();
    for subject in subjects {
        let a = http
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/admin/subjects/{subject}"),
                auth,
                None,
            )
            .await;
        collect_questions(&a.json(), &mut questions);
        if questions.len() >= args.review_cards as usize {
            break;
        }
    }
    questions.truncate(args.review_cards as usize);
    if questions.is_empty() {
        bail!("the plan's subjects have no question stages");
    }
    let csv = history_csv(&questions);
    let limit = Arc::new(Semaphore::new((args.connections as usize).min(16)));
    let mut set = JoinSet::new();
    for s in students {
        let (http, admin, csv, limit, player) = (
            http.clone(),
            admin.to_owned(),
            csv.clone(),
            Arc::clone(&limit),
            s.player_id.clone(),
        );
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            import_one(&http, &admin, &player, &csv).await
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.context("import task")??;
    }
    Ok(questions)
}

/// Every `{"type": "question", "id": …}` stage of a subject document, in order.
pub fn collect_questions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("question")
                && let Some(id) = map.get("id").and_then(Value::as_str)
            {
                out.push(id.to_owned());
            }
            for child in map.values() {
                collect_questions(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_questions(i, out)),
        _ => {}
    }
}

/// One `good` answer two days ago per question: each card is in learning with its
/// 10-minute step long past, so it is due.
fn history_csv(questions: &[String]) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let at = now_ms - 2 * 86_400_000;
    let mut csv = String::from("question_id,rating,reviewed_at,duration_ms\n");
    for q in questions {
        csv.push_str(&format!("{q},3,{at},\n"));
    }
    csv
}

/// Imports `csv` for `player` and waits for the job.
async fn import_one(http: &Http, admin: &str, player: &str, csv: &str) -> anyhow::Result<()> {
    let device = device_id_for("admin");
    let auth = Some((admin, device.as_str()));
    if player.is_empty() {
        bail!("the login answer carried no player_id");
    }
    let a = http
        .send_text(
            &format!("/api/v1/admin/players/{player}/reviews/import"),
            auth,
            "text/csv",
            csv,
        )
        .await;
    if a.status != 202 {
        bail!(
            "import for {player}: {} {}",
            a.error_key(),
            String::from_utf8_lossy(&a.body)
        );
    }
    let job = a.json()["job_id"].as_str().unwrap_or_default().to_owned();
    for _ in 0..6000 {
        let v = http
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/admin/jobs/{job}"),
                auth,
                None,
            )
            .await
            .json();
        match v["state"].as_str() {
            Some("done") => return Ok(()),
            Some("failed") => bail!("import for {player} failed: {}", v["error"]),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    bail!("import for {player} did not finish")
}

/// `GET /api/v1/reviews/due?limit=20`.
pub async fn due(http: &Http, s: &Student) -> Answer {
    let auth = Some((s.token.as_str(), s.device_id.as_str()));
    http.send(
        reqwest::Method::GET,
        "/api/v1/reviews/due?limit=20",
        auth,
        None,
    )
    .await
}

/// The question ids of a due answer's items.
pub fn due_questions(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["question_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /api/v1/reviews` answering `questions` `good`.
pub async fn review(http: &Http, s: &Student, questions: &[String]) -> Answer {
    let auth = Some((s.token.as_str(), s.device_id.as_str()));
    let responses: Vec<Value> = questions
        .iter()
        .map(|q| json!({"question_id": q, "rating": 3}))
        .collect();
    http.send(
        reqwest::Method::POST,
        "/api/v1/reviews",
        auth,
        Some(&json!({"responses": responses})),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_found_anywhere_in_a_subject() {
        let doc = json!({"tracks": [{"units": [{"topics": [{"lessons": [
            {"id": "l1", "stages": [{"type": "video"}, {"type": "question", "id": "q1"}]},
            {"id": "l2", "stages": [{"type": "question", "id": "q2"}]}]}]}]}]});
        let mut out = Vec::new();
        collect_questions(&doc, &mut out);
        assert_eq!(out, ["q1", "q2"]);
        assert_eq!(
            due_questions(&json!({"items": [{"question_id": "a"}, {"x": 1}]})),
            ["a"]
        );
    }
}
