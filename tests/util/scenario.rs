//! Common opening moves of black-box scenarios: the school curriculum imported over the
//! admin API, students created and logged in, lessons completed along the suggested
//! path. Keeps the recovery, concurrency and shutdown tests about what they check.

use serde_json::Value;

use super::api::{Api, Session, i64_field};
use super::{ADMIN_EMAIL, ADMIN_PASSWORD, device_id_for, fixture, suggested_next};

/// Password of every scenario student.
pub const STUDENT_PASSWORD: &str = "student-password-1";

/// One acknowledged (2xx) completion, as the server answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// The lesson completed.
    pub lesson: String,
    /// Hearts sent.
    pub hearts: u8,
    /// `new_total_xp` of the answer.
    pub new_total_xp: i64,
}

/// Logs in as the test admin and imports `basics`, `chain` and the `school` plan.
///
/// # Panics
/// If the login or an import fails.
pub async fn import_school(api: &Api) -> Session {
    let admin = api
        .login(ADMIN_EMAIL, ADMIN_PASSWORD, &device_id_for(ADMIN_EMAIL))
        .await
        .expect("admin login");
    for name in ["basics.subject.json", "chain.subject.json"] {
        let status = api.put_subject(&admin, &fixture(name)).await;
        assert!(matches!(status, Ok(200 | 201)), "import {name}: {status:?}");
    }
    let status = api.put_plan(&admin, &fixture("school.plan.json")).await;
    assert!(matches!(status, Ok(200 | 201)), "import plan: {status:?}");
    admin
}

/// Creates a student on the `school` plan and logs them in with their stable device.
///
/// # Panics
/// If the creation or the login fails.
pub async fn new_student(api: &Api, admin: &Session, email: &str) -> Session {
    api.create_student(admin, email, STUDENT_PASSWORD, "school")
        .await
        .unwrap_or_else(|e| panic!("create {email}: {e}"));
    login(api, email).await
}

/// Logs a scenario student in again (e.g. after a restart dropped the session).
///
/// # Panics
/// If the login fails.
pub async fn login(api: &Api, email: &str) -> Session {
    api.login(email, STUDENT_PASSWORD, &device_id_for(email))
        .await
        .unwrap_or_else(|e| panic!("login {email}: {e}"))
}

/// Completes `n` lessons of `subject` along the server's suggested path with `hearts`.
///
/// # Panics
/// If a completion is refused or the subject runs out of lessons.
pub async fn complete_suggested(
    api: &Api,
    student: &Session,
    subject: &str,
    n: usize,
    hearts: u8,
) -> Vec<Acked> {
    let mut next = suggested_next(&api.progress(student, subject).await.expect("progress"));
    let mut acked = Vec::new();
    for _ in 0..n {
        let lesson = next.clone().expect("a suggested lesson is left");
        let v: Value = api
            .complete(student, &lesson, hearts)
            .await
            .unwrap_or_else(|e| panic!("complete {lesson}: {e}"));
        next = suggested_next(&v);
        acked.push(Acked {
            lesson,
            hearts,
            new_total_xp: i64_field(&v, "new_total_xp"),
        });
    }
    acked
}

/// Checks that every acknowledged completion of `subject` is on the server: the lesson
/// is passed with at least the acknowledged hearts, and the wallet holds at least the
/// largest acknowledged total.
///
/// # Panics
/// With `who` and the missing completion when one is not there.
pub async fn assert_acked_present(
    api: &Api,
    student: &Session,
    subject: &str,
    acked: &[Acked],
    who: &str,
) {
    let progress = api
        .progress(student, subject)
        .await
        .unwrap_or_else(|e| panic!("{who}: progress: {e}"));
    let states = super::lesson_states(&progress);
    for ack in acked {
        let state = states.get(&ack.lesson);
        assert!(
            matches!(state, Some((status, best)) if status == "passed" && *best >= ack.hearts),
            "{who}: acknowledged {} with {} hearts, now {state:?}",
            ack.lesson,
            ack.hearts
        );
    }
    let wallet = api
        .wallet(student)
        .await
        .unwrap_or_else(|e| panic!("{who}: wallet: {e}"));
    let max_acked = acked.iter().map(|a| a.new_total_xp).max().unwrap_or(0);
    assert!(
        i64_field(&wallet, "total_xp") >= max_acked,
        "{who}: wallet {wallet} below the acknowledged total {max_acked}"
    );
}
