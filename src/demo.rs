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

/// The walkthrough printed by `serve --demo`.
pub fn instructions(base: &str, subject_id: &str, first_lesson: Option<&str>) -> String {
    let lesson = first_lesson.unwrap_or("LESSON_ID");
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
      -H 'content-type: application/json' -d '{{"hearts":4}}'
  curl -s {base}/api/v1/wallet -H "authorization: Bearer $TOKEN" -H "x-device-id: $DEV"
"#
    )
}
