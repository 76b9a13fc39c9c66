//! `GET /api/v1/admin/reports/progress?group_id=&plan_id=&subject_id=` (api.md
//! "reports", R): per student passed, total, %, XP, streak and last play, as paginated
//! JSON, or as one CSV document with `Accept: text/csv` (the whole report, for
//! spreadsheets). A teacher sees only the students of their groups.

use std::borrow::Cow;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::reports::{ReportFilter, ReportRow};
use crate::error::ApiError;

use super::extract::StaffAuth;
use super::groups::{cursor_after, page_params};
use super::{AppState, json, problem};

/// This module's routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(progress))
}

/// The CSV columns, in order: the JSON row's fields.
pub const CSV_COLUMNS: [&str; 17] = [
    "player_id",
    "email",
    "display_name",
    "plan_id",
    "grade",
    "stream",
    "disabled",
    "passed_lessons",
    "total_lessons",
    "completion_percentage",
    "xp_earned",
    "total_xp",
    "current_streak",
    "longest_streak",
    "streak_at_risk",
    "last_success_date",
    "last_played_at",
];

/// The report's query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Only this group's students.
    pub group_id: Option<String>,
    /// Only students on this plan.
    pub plan_id: Option<String>,
    /// Count only this subject (students enrolled in it).
    pub subject_id: Option<String>,
    /// JSON only: 1–500, default 50.
    pub limit: Option<String>,
    /// JSON only: from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Whether the client asked for CSV: the first media range of `Accept` that names CSV
/// or JSON (or a wildcard) decides; JSON by default.
pub fn wants_csv(headers: &HeaderMap) -> bool {
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mime = range
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match mime.as_str() {
                "text/csv" => return true,
                "application/json" | "application/*" | "*/*" => return false,
                _ => {}
            }
        }
    }
    false
}

/// A text cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR
/// first) gets a leading `'`, so a display name cannot execute in a teacher's
/// spreadsheet (OWASP "CSV injection").
fn cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The report as CSV (RFC 4180, header row first).
///
/// # Errors
/// 500 if writing fails (it writes to memory).
pub fn to_csv(rows: &[ReportRow]) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(64 + rows.len() * 160));
    out.write_record(CSV_COLUMNS).map_err(ApiError::internal)?;
    for r in rows {
        let opt = |v: &Option<String>| v.as_deref().map(cell).unwrap_or_default().into_owned();
        let record: [String; 17] = [
            cell(&r.player_id).into_owned(),
            cell(&r.email).into_owned(),
            cell(&r.display_name).into_owned(),
            opt(&r.plan_id),
            opt(&r.grade),
            opt(&r.stream),
            r.disabled.to_string(),
            r.passed_lessons.to_string(),
            r.total_lessons.to_string(),
            // Formatted as in the JSON answer (`30.0`, not `30`).
            serde_json::Number::from_f64(r.completion_percentage)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            r.xp_earned.to_string(),
            r.total_xp.to_string(),
            r.current_streak.to_string(),
            r.longest_streak.to_string(),
            r.streak_at_risk.to_string(),
            r.last_success_date
                .map(|d| d.to_string())
                .unwrap_or_default(),
            r.last_played_at.map(|t| t.to_string()).unwrap_or_default(),
        ];
        out.write_record(&record).map_err(ApiError::internal)?;
    }
    out.into_inner().map_err(ApiError::internal)
}

/// `GET /api/v1/admin/reports/progress`: JSON `{generated_at, items, next_cursor}`, or
/// CSV with `Accept: text/csv`. 404 for a group the caller may not read, 422 for an
/// unknown plan or subject or a bad `limit`/`cursor`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/reports/progress",
    operation_id = "progress_report",
    tag = "admin: reports",
    summary = "Progress per student: passed, total, %, XP, streak, last played (JSON or CSV)",
    security(("bearer" = ["admin"]), ("bearer" = ["teacher"])),
    params(ReportParams),
    responses(
        (status = 200, description = "`{generated_at, items, next_cursor}`, or CSV with `Accept: text/csv`", content((Object = "application/json"), (String = "text/csv"))),
        (status = 404, description = "`NOT_FOUND`: a group the caller may not read"),
        (status = 422, description = "`VALIDATION_FAILED`: unknown plan or subject, bad limit or cursor"),
    )
)]
pub async fn progress(
    State(state): State<AppState>,
    StaffAuth(caller, scope): StaffAuth,
    headers: HeaderMap,
    query: Result<Query<ReportParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(ApiError::field("", "unknown or malformed query parameters"));
    };
    let csv = wants_csv(&headers);
    let (limit, after) = if csv {
        (None, None)
    } else {
        match page_params(q.limit.as_deref(), q.cursor.as_deref()) {
            Ok((limit, after)) => (Some(limit), after),
            Err(e) => return problem(e),
        }
    };
    let filter = ReportFilter {
        group_id: q.group_id,
        plan_id: q.plan_id,
        subject_id: q.subject_id,
    };
    let engine = state.engine.clone();
    let computed = tokio::task::spawn_blocking(move || {
        engine.progress_report(&caller, &scope, &filter, limit, after.as_deref())
    })
    .await
    .map_err(ApiError::internal)
    .and_then(|r| r);
    let mut page = match computed {
        Ok(page) => page,
        Err(e) => return problem(e),
    };
    if !csv {
        page.next_cursor = page.next_cursor.as_deref().map(cursor_after);
        return json(StatusCode::OK, &page);
    }
    let body = match to_csv(&page.items) {
        Ok(body) => body,
        Err(e) => return problem(e),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let name = format!(
        "attachment; filename=\"progress-{}.csv\"",
        page.generated_at.strftime("%Y-%m-%d")
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn accept_chooses_csv_only_when_asked_first() {
        assert!(!wants_csv(&HeaderMap::new()));
        assert!(wants_csv(&accept("text/csv")));
        assert!(wants_csv(&accept("Text/CSV; charset=utf-8")));
        assert!(wants_csv(&accept("text/html, text/csv;q=0.9, */*;q=0.1")));
        assert!(!wants_csv(&accept("application/json, text/csv")));
        assert!(!wants_csv(&accept("*/*")));
    }

    #[test]
    fn formula_cells_are_neutralized_and_quoting_is_rfc4180() {
        let row = ReportRow {
            player_id: "p_1".into(),
            email: "a@b.test".into(),
            display_name: "=HYPERLINK(\"x\"), \"Bob\"".into(),
            plan_id: None,
            grade: Some("-3".into()),
            stream: None,
            disabled: false,
            passed_lessons: 1,
            total_lessons: 8,
            completion_percentage: 12.5,
            xp_earned: 40,
            total_xp: 40,
            current_streak: 0,
            longest_streak: 2,
            streak_at_risk: false,
            last_success_date: None,
            last_played_at: None,
        };
        let text = String::from_utf8(to_csv(&[row]).expect("csv")).expect("utf8");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(CSV_COLUMNS.join(",").as_str()));
        assert_eq!(
            lines.next(),
            Some(
                r#"p_1,a@b.test,"'=HYPERLINK(""x""), ""Bob""",,'-3,,false,1,8,12.5,40,40,0,2,false,,"#
            )
        );
        // An empty report still has its header.
        let empty = String::from_utf8(to_csv(&[]).expect("csv")).expect("utf8");
        assert_eq!(empty.trim_end(), CSV_COLUMNS.join(","));
    }
}
