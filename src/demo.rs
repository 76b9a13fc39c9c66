//! `serve --demo`: idempotently loads the embedded demo curriculum and plan, a demo admin
//! and a demo student, and prints credentials and `curl` lines (operations.md).

use crate::engine::Engine;
use crate::engine::accounts::NewPlayer;
use crate::players::account::Role;

/// The demo subject document (`src/demo/demo.subject.json`).
pub const DEMO_SUBJECT: &str = include_str!("demo/demo.subject.json");
/// The demo plan document (`src/demo/demo.plan.json`).
pub const DEMO_PLAN: &str = include_str!("demo/demo.plan.json");
/// Demo admin login.
pub const ADMIN_EMAIL: &str = "admin@demo.memora";
/// Demo student login.
pub const STUDENT_EMAIL: &str = "student@demo.memora";
/// Demo password of both accounts (printed at start; a demo is not for production).
pub const PASSWORD: &str = "memora-demo";

/// Loads the demo content and accounts if missing. Returns the demo plan id.
///
/// # Errors
/// A message when the embedded documents do not import (a bug) or the journal fails.
pub async fn load(engine: &Engine) -> Result<String, String> {
    let subject = engine
        .put_subject(None, DEMO_SUBJECT.as_bytes())
        .await
        .map_err(|e| format!("demo subject: {e} {:?}", e.errors))?;
    tracing::debug!(subject = %subject.id, "demo subject loaded");
    let plan = engine
        .put_plan(None, DEMO_PLAN.as_bytes())
        .await
        .map_err(|e| format!("demo plan: {e} {:?}", e.errors))?;
    // An active season, so that answers create review cards (srs.md). Only when no
    // season exists yet: an installation that already has seasons keeps its own.
    if engine.seasons().is_empty() {
        let year = engine.now().to_zoned(jiff::tz::TimeZone::UTC).year();
        engine
            .create_season(crate::engine::seasons::NewSeason {
                id: "demo".into(),
                title: "Demo season".into(),
                start_date: format!("{year}-01-01"),
                end_date: format!("{}-12-31", year + 1),
                is_active: true,
                auto_archive: false,
            })
            .await
            .map_err(|e| format!("demo season: {e}"))?;
    }
    for (email, name, role) in [
        (ADMIN_EMAIL, "Demo Admin", Role::Admin),
        (STUDENT_EMAIL, "Demo Student", Role::Student),
    ] {
        if engine.player_by_email(email).is_some() {
            continue;
        }
        engine
            .create_player(NewPlayer {
                email: email.into(),
                password: PASSWORD.into(),
                display_name: name.into(),
                role: Some(role),
                plan_id: (role == Role::Student).then(|| plan.id.clone()),
                grade: None,
                stream: None,
                timezone: None,
                grants: Vec::new(),
            })
            .await
            .map_err(|e| format!("demo account {email}: {e}"))?;
    }
    Ok(plan.id)
}

/// The walkthrough printed by `serve --demo`: `first_lesson` is `(lesson id, its first
/// question id)`.
pub fn instructions(base: &str, subject_id: &str, first_lesson: Option<(&str, &str)>) -> String {
    let (lesson, question) = first_lesson.unwrap_or(("LESSON_ID", "QUESTION_ID"));
    format!(
        r#"
Memora demo is running at {base}
  admin:   {ADMIN_EMAIL} / {PASSWORD}
  student: {STUDENT_EMAIL} / {PASSWORD}

Try it (a student sends a device id; the first device is authorized automatically):
  DEV=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen)
  TOKEN=$(curl -s {base}/api/v1/auth/login -H 'content-type: application/json' -H "x-device-id: $DEV" \
      -d '{{"email":"{STUDENT_EMAIL}","password":"{PASSWORD}"}}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
  curl -s {base}/api/v1/subjects/{subject_id}/progress -H "authorization: Bearer $TOKEN" -H "x-device-id: $DEV"
  curl -s {base}/api/v1/lessons/{lesson}/complete -H "authorization: Bearer $TOKEN" -H "x-device-id: $DEV" \
      -H 'content-type: application/json' -d '{{"hearts":4,"answers":[{{"question_id":"{question}","rating":3}}]}}'
  curl -s {base}/api/v1/wallet -H "authorization: Bearer $TOKEN" -H "x-device-id: $DEV"
  curl -s {base}/api/v1/reviews/due -H "authorization: Bearer $TOKEN" -H "x-device-id: $DEV"
  # The answer created a review card; it is due in a minute (learning step 1), then:
  curl -s {base}/api/v1/reviews -H "authorization: Bearer $TOKEN" -H "x-device-id: $DEV" \
      -H 'content-type: application/json' -d '{{"responses":[{{"question_id":"{question}","rating":3}}]}}'

"#
    )
}
