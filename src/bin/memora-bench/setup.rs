//! Preparing a run: admin login, creating the bench students (`--setup`), logging
//! every student in with bounded concurrency, and finding the subjects to read.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::args::Args;
use crate::client::{Http, Student, device_id_for};

/// Logs the admin in, if credentials were given.
///
/// # Errors
/// When credentials were given but the login failed.
pub async fn admin_token(http: &Http, args: &Args) -> anyhow::Result<Option<String>> {
    match (&args.admin_email, &args.admin_password) {
        (Some(email), Some(password)) => Ok(Some(
            http.token(email, password, &device_id_for(email)).await?,
        )),
        (None, None) => Ok(None),
        _ => bail!("--admin-email and --admin-password go together"),
    }
}

/// Creates students `0..args.students` on `args.plan`; existing ones (409/422) are
/// counted, not errors. Returns (created, existing).
///
/// # Errors
/// Any other answer (the first one is reported).
pub async fn create_students(http: &Http, admin: &str, args: &Args) -> anyhow::Result<(u32, u32)> {
    let limit = Arc::new(Semaphore::new(args.connections as usize));
    let mut set = JoinSet::new();
    for i in 0..args.students {
        let http = http.clone();
        let admin = admin.to_string();
        let limit = Arc::clone(&limit);
        let body = json!({
            "email": Student::nth(i).email,
            "password": args.student_password,
            "display_name": format!("Bench student {i}"),
            "plan_id": args.plan,
            "timezone": args.timezone,
        });
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let a = http
                .send(
                    reqwest::Method::POST,
                    "/api/v1/admin/players",
                    Some((&admin, &device_id_for("admin"))),
                    Some(&body),
                )
                .await;
            (i, a)
        });
    }
    let (mut created, mut existing) = (0, 0);
    while let Some(joined) = set.join_next().await {
        let (i, a) = joined.context("create task")?;
        match a.status {
            200 | 201 => created += 1,
            409 | 422 => existing += 1,
            _ => bail!(
                "create bench-{i}: {} {}",
                a.error_key(),
                String::from_utf8_lossy(&a.body)
            ),
        }
    }
    Ok((created, existing))
}

/// Logs every student in (`args.connections` at a time) and returns them with tokens,
/// in index order.
///
/// # Errors
/// The first failed login (a missing student suggests `--setup`).
pub async fn login_all(http: &Http, args: &Args) -> anyhow::Result<Vec<Student>> {
    let limit = Arc::new(Semaphore::new(args.connections as usize));
    let mut set = JoinSet::new();
    for i in 0..args.students {
        let http = http.clone();
        let limit = Arc::clone(&limit);
        let password = args.student_password.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let mut s = Student::nth(i);
            let session = http.session(&s.email, &password, &s.device_id).await;
            session.map(|(token, player_id)| {
                s.token = token;
                s.player_id = player_id;
                (i, s)
            })
        });
    }
    let mut out: Vec<Option<Student>> = vec![None; args.students as usize];
    while let Some(joined) = set.join_next().await {
        let (i, s) = joined
            .context("login task")?
            .context("student login failed (run with --setup to create the students)")?;
        out[i as usize] = Some(s);
    }
    Ok(out.into_iter().flatten().collect())
}

/// The subjects to read: `--subject`, else the plan document's `subjects` (admin
/// read), else the first student's `GET /api/v1/me`.
///
/// # Errors
/// When no subject can be found.
pub async fn subjects(
    http: &Http,
    args: &Args,
    admin: Option<&str>,
    first: Option<&Student>,
) -> anyhow::Result<Vec<String>> {
    if let Some(s) = &args.subject {
        return Ok(vec![s.clone()]);
    }
    if let Some(admin) = admin {
        let a = http
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/admin/plans/{}", args.plan),
                Some((admin, &device_id_for("admin"))),
                None,
            )
            .await;
        let found = subject_ids(a.json().get("subjects"));
        if a.is_ok() && !found.is_empty() {
            return Ok(found);
        }
    }
    if let Some(s) = first {
        let a = http
            .send(
                reqwest::Method::GET,
                "/api/v1/me",
                Some((&s.token, &s.device_id)),
                None,
            )
            .await;
        let me = a.json();
        for key in ["subjects", "enrolled_subjects"] {
            let found = subject_ids(me.get(key).or_else(|| me.pointer(&format!("/plan/{key}"))));
            if !found.is_empty() {
                return Ok(found);
            }
        }
    }
    bail!("could not find the plan's subjects; pass --subject ID")
}

/// Subject ids from an array of strings or of objects with an `id`.
pub fn subject_ids(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    item.as_str()
                        .or_else(|| item.get("id").and_then(Value::as_str))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// For the `content` scenario: the first topic file of every subject of the plan's
/// compiled manifest (`/content/plans/{plan}/manifest.json` → `hierarchy_url` →
/// `topic_url`), as paths below `/content/` with their `?v=` query.
///
/// # Errors
/// When the manifest or a hierarchy file cannot be read (the plan not built yet).
pub async fn content_paths(http: &Http, plan: &str) -> anyhow::Result<Vec<String>> {
    let manifest_path = format!("/content/plans/{}/manifest.json", plan.to_ascii_lowercase());
    let manifest = http
        .send(reqwest::Method::GET, &manifest_path, None, None)
        .await;
    if manifest.status != 200 {
        anyhow::bail!(
            "GET {manifest_path} answered {}: build the plan first (`memora build` or POST /api/v1/admin/plans/{plan}/build)",
            manifest.status
        );
    }
    let mut paths = Vec::new();
    let subjects = manifest.json()["subjects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for subject in subjects {
        let Some(h) = subject["hierarchy_url"].as_str() else {
            continue;
        };
        let hierarchy = http
            .send(reqwest::Method::GET, &format!("/content/{h}"), None, None)
            .await
            .json();
        let first_topic = hierarchy["tracks"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["units"].as_array().into_iter().flatten())
            .flat_map(|u| u["topics"].as_array().into_iter().flatten())
            .find_map(|t| t["topic_url"].as_str().map(str::to_owned));
        paths.extend(first_topic);
    }
    if paths.is_empty() {
        anyhow::bail!("the manifest of plan {plan} lists no topic files");
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids_from_strings_or_objects() {
        assert_eq!(
            subject_ids(Some(&json!(["a", "b"]))),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(
            subject_ids(Some(&json!([{"id": "a", "title": "A"}, {"x": 1}]))),
            vec!["a".to_string()]
        );
        assert!(subject_ids(Some(&json!({"a": 1}))).is_empty());
        assert!(subject_ids(None).is_empty());
    }
}
