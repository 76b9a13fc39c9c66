//! Unit tests of roster parsing and planning: shapes, every problem with its row and
//! column, and the create / update / unchanged decisions with blank and absent cells.

use super::*;

fn student(id: &str, email: &str) -> PlayerRecord {
    PlayerRecord {
        id: id.into(),
        email: email.into(),
        display_name: "Bo Old".into(),
        role: Role::Student,
        password_hash: "$argon2id$x".into(),
        plan_id: Some("school".into()),
        grade: Some("7".into()),
        stream: Some("A".into()),
        timezone: "Europe/Paris".into(),
        grants: vec![],
        devices: vec![],
        created_at_ms: 0,
        disabled: false,
        must_change_password: false,
    }
}

fn run(csv: &str, players: &[PlayerRecord]) -> RosterPlan {
    let parsed = parse(csv.as_bytes());
    let lookup = |email: &str| players.iter().find(|p| p.email == email).cloned();
    let plans = |id: &str| {
        id.eq_ignore_ascii_case("school")
            .then(|| "school".to_owned())
    };
    let tz = |tz: &str| ["UTC", "Europe/Paris", "Asia/Tokyo"].contains(&tz);
    plan(
        &parsed,
        &World {
            player: &lookup,
            plan: &plans,
            timezone_ok: &tz,
            default_timezone: "UTC",
        },
    )
}

fn errors(plan: &RosterPlan) -> Vec<(u32, &str)> {
    plan.errors
        .iter()
        .map(|e| (e.row, e.column.as_str()))
        .collect()
}

#[test]
fn rows_are_created_updated_or_unchanged() {
    let bo = student("p_bo", "bo@school.org");
    let csv = "email,display_name,plan_id,grade,stream,timezone,password\n\
               Ana@School.org,Ana,SCHOOL,7,B,Asia/Tokyo,\n\
               bo@school.org,Bo Old,school,8,A,,\n\
               cy@school.org,Cy,,,,,secret-pass-1\n";
    let plan = run(csv, &[bo]);
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let [ana, bo, cy] = &plan.rows[..] else {
        panic!("{:?}", plan.rows)
    };
    assert_eq!((ana.row, ana.email.as_str()), (2, "ana@school.org"));
    match &ana.outcome {
        Outcome::Create { target, password } => {
            assert_eq!(target.plan_id.as_deref(), Some("school"));
            assert_eq!(target.timezone, "Asia/Tokyo");
            assert_eq!(*password, PasswordPlan::Generate);
        }
        other => panic!("{other:?}"),
    }
    match &bo.outcome {
        Outcome::Update {
            changes, password, ..
        } => {
            let fields: Vec<_> = changes.iter().map(|c| c.field).collect();
            assert_eq!(fields, ["grade"]);
            assert_eq!(changes[0].to.as_deref(), Some("8"));
            assert_eq!(*password, PasswordPlan::Keep);
        }
        other => panic!("{other:?}"),
    }
    match &cy.outcome {
        Outcome::Create { target, password } => {
            assert_eq!(target.timezone, "UTC");
            assert_eq!(target.plan_id, None);
            assert_eq!(
                *password,
                PasswordPlan::Given(Secret("secret-pass-1".into()))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn absent_columns_keep_and_blank_cells_clear() {
    let bo = student("p_bo", "bo@school.org");
    // No plan/timezone columns: kept. Blank stream: cleared.
    let plan = run(
        "email,display_name,grade,stream\nbo@school.org,Bo Old,7,\n",
        std::slice::from_ref(&bo),
    );
    match &plan.rows[0].outcome {
        Outcome::Update {
            target, changes, ..
        } => {
            assert_eq!(target.plan_id.as_deref(), Some("school"));
            assert_eq!(target.timezone, "Europe/Paris");
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].field, "stream");
            assert_eq!(changes[0].from.as_deref(), Some("A"));
            assert_eq!(changes[0].to, None);
        }
        other => panic!("{other:?}"),
    }
    let same = run(
        "Email;Display Name;Grade\nBO@school.org;Bo Old;7\n",
        std::slice::from_ref(&bo),
    );
    assert_eq!(
        same.rows[0].outcome,
        Outcome::Unchanged {
            player_id: "p_bo".into()
        }
    );
    // A password for an existing student is applied only with reset_password.
    let kept = run(
        "email,display_name,password\nbo@school.org,Bo Old,new-password-1\n",
        std::slice::from_ref(&bo),
    );
    assert!(matches!(kept.rows[0].outcome, Outcome::Unchanged { .. }));
    let given = run(
        "email,display_name,password,reset_password\nbo@school.org,Bo Old,new-password-1,1\n",
        std::slice::from_ref(&bo),
    );
    match &given.rows[0].outcome {
        Outcome::Update { password, .. } => {
            assert_eq!(
                *password,
                PasswordPlan::Given(Secret("new-password-1".into()))
            );
        }
        other => panic!("{other:?}"),
    }
    let reset = run(
        "email,display_name,reset_password\nbo@school.org,Bo Old,yes\n",
        &[bo],
    );
    match &reset.rows[0].outcome {
        Outcome::Update {
            changes, password, ..
        } => {
            assert_eq!(changes[0].field, "password");
            assert_eq!(*password, PasswordPlan::Generate);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_problem_is_reported_with_row_and_column() {
    let mut admin = student("p_ad", "boss@school.org");
    admin.role = Role::Admin;
    let csv = "email,display_name,plan_id,grade,timezone,password,reset_password\n\
               not-an-email,Ana,school,7,UTC,,\n\
               ok@school.org,,nope,,Mars/Base,short,\n\
               OK@school.org,Dup,,,,,\n\
               boss@school.org,Boss,,,,,maybe\n\
               x@school.org,X,,12345678901234567890123456789012345678901234567890123456789012345,,,\n\
               y@school.org,Y\n";
    let plan = run(csv, &[admin]);
    assert_eq!(
        errors(&plan),
        [
            (2, "email"),
            (3, "display_name"),
            (3, "password"),
            (3, "plan_id"),
            (3, "timezone"),
            (4, "email"),
            (5, "reset_password"),
            (5, "email"),
            (6, "grade"),
            (7, ""),
        ]
    );
    assert!(
        plan.errors[5].message.contains("row 3"),
        "{:?}",
        plan.errors[5]
    );
    assert_eq!(plan.rows.len(), 6);
    assert!(plan.rows.iter().all(|r| r.outcome == Outcome::Error));
    assert_eq!(plan.rows[0].email, "not-an-email");
}

#[test]
fn headers_are_checked_and_blank_lines_skipped() {
    let plan = run("email,name,email\n", &[]);
    assert_eq!(
        errors(&plan),
        [(1, "name"), (1, "email"), (1, "display_name")]
    );
    assert_eq!(errors(&run("", &[])), [(1, "")]);
    assert_eq!(errors(&run("email,display_name\n,\n", &[])), [(1, "")]);
    let bom = run("\u{feff}email\tdisplay_name\nana@s.org\tAna\n\t\n", &[]);
    assert!(bom.errors.is_empty(), "{:?}", bom.errors);
    assert_eq!(bom.rows.len(), 1);
}

#[test]
fn passwords_are_not_trimmed_and_never_debug_printed() {
    let plan = run(
        "email,display_name,password\nana@s.org,Ana, spaced pw \n",
        &[],
    );
    match &plan.rows[0].outcome {
        Outcome::Create { password, .. } => {
            assert_eq!(*password, PasswordPlan::Given(Secret(" spaced pw ".into())));
            assert!(!format!("{password:?}").contains("spaced"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn too_many_rows_are_refused() {
    let mut csv = String::from("email,display_name\n");
    for i in 0..=MAX_ROWS {
        csv.push_str(&format!("s{i}@school.org,S {i}\n"));
    }
    let plan = run(&csv, &[]);
    assert_eq!(plan.errors.len(), 1);
    assert!(plan.errors[0].message.contains("split the file"));
}
