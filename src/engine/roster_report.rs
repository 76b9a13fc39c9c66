//! What a roster import reports (players.md, api.md): the per-row outcome of a dry run
//! or a commit, generated passwords (shown once, redacted afterwards), and the
//! differences between a commit and the dry run of the same file.
//!
//! Dry runs are remembered in memory per (admin, SHA-256 of the file) for
//! [`DRY_RUN_TTL_MS`], so that the commit of the same bytes can say what changed in
//! between (another admin's edits, a plan deleted, a student created meanwhile).

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{ApiError, FieldProblem};
use crate::players::roster::{Change, Outcome, PlannedRow, RosterPlan, RowError};

use super::accounts::rfc3339;

/// How long a dry run is remembered for comparison with its commit (24 h, in ms).
pub const DRY_RUN_TTL_MS: i64 = 24 * 3_600_000;
/// At most this many dry runs are remembered (the oldest go first).
const MAX_DRY_RUNS: usize = 32;
/// What generated passwords read as once they were shown.
pub const REDACTED: &str = "[redacted]";

/// Counts of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Student rows in the file.
    pub rows: usize,
    /// Rows creating a student.
    pub create: usize,
    /// Rows changing a student.
    pub update: usize,
    /// Rows leaving a student as they are.
    pub unchanged: usize,
    /// Rows with problems.
    pub error_rows: usize,
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowReport {
    /// Spreadsheet row (the header is row 1).
    pub row: u32,
    /// Normalized email (as written when it is not valid).
    pub email: String,
    /// `create`, `update`, `unchanged` or `error`.
    #[schema(value_type = String)]
    pub action: &'static str,
    /// The student's id (existing ones; new ones once committed).
    pub player_id: Option<String>,
    /// Changed fields of an existing student (`from`/`to` are absent for the password).
    pub changes: Vec<Change>,
    /// `given`, `generated` or `kept`; absent for error rows.
    #[schema(value_type = Option<String>)]
    pub password: Option<&'static str>,
}

/// `POST /api/v1/admin/players/import` without `commit=true`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DryRunReport {
    /// Always false.
    pub commit: bool,
    /// Counts.
    pub summary: Summary,
    /// Every row, in file order.
    pub rows: Vec<RowReport>,
    /// Every problem, by row.
    pub errors: Vec<RowError>,
}

/// A generated password, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedPassword {
    /// Spreadsheet row.
    pub row: u32,
    /// The student's email.
    pub email: String,
    /// The student's id.
    pub player_id: String,
    /// The password, or `[redacted]` after it was shown.
    pub password: String,
}

/// How a commit compares with the dry run of the same file by the same admin.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunComparison {
    /// Whether such a dry run was found (within 24 h, since the server started).
    pub found: bool,
    /// When it ran.
    pub at: Option<String>,
    /// Rows whose outcome differs from the dry run's.
    pub differences: Vec<Difference>,
}

/// A row whose commit outcome differs from its dry run.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Spreadsheet row.
    pub row: u32,
    /// The student's email.
    pub email: String,
    /// What the dry run said.
    pub dry_run: RowSignature,
    /// What the commit did.
    pub commit: RowSignature,
}

/// The comparable part of a row's outcome: its action and changed fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowSignature {
    /// `create`, `update`, `unchanged` or `error`.
    pub action: &'static str,
    /// Changed fields (updates).
    pub fields: Vec<&'static str>,
}

/// The outcome of a commit: `generated_passwords` hold the passwords until
/// [`CommitReport::redacted`].
#[derive(Debug, Clone, Serialize)]
pub struct CommitReport {
    /// Always true.
    pub commit: bool,
    /// Counts.
    pub summary: Summary,
    /// Every row, in file order, with the new students' ids.
    pub rows: Vec<RowReport>,
    /// Generated passwords (new students with a blank password, `reset_password` rows);
    /// their owners must change them at first login.
    pub generated_passwords: Vec<GeneratedPassword>,
    /// Whether the passwords above were replaced by `[redacted]`.
    pub passwords_redacted: bool,
    /// Differences from the dry run of the same file.
    pub dry_run: DryRunComparison,
}

impl CommitReport {
    /// The same report with every generated password replaced by `[redacted]`.
    pub fn redacted(&self) -> CommitReport {
        let mut copy = self.clone();
        for g in &mut copy.generated_passwords {
            g.password = REDACTED.to_owned();
        }
        copy.passwords_redacted = true;
        copy
    }
}

/// The report row and signature of a planned row.
pub fn row_report(r: &PlannedRow) -> RowReport {
    let (player_id, changes, password) = match &r.outcome {
        Outcome::Create { password, .. } => (None, Vec::new(), Some(password.label())),
        Outcome::Update {
            player_id,
            changes,
            password,
            ..
        } => (
            Some(player_id.clone()),
            changes.clone(),
            Some(password.label()),
        ),
        Outcome::Unchanged { player_id } => (Some(player_id.clone()), Vec::new(), Some("kept")),
        Outcome::Error => (None, Vec::new(), None),
    };
    RowReport {
        row: r.row,
        email: r.email.clone(),
        action: r.outcome.action(),
        player_id,
        changes,
        password,
    }
}

fn signature(r: &RowReport) -> RowSignature {
    RowSignature {
        action: r.action,
        fields: r.changes.iter().map(|c| c.field).collect(),
    }
}

/// Counts of a plan.
pub fn summary(rows: &[RowReport]) -> Summary {
    let mut s = Summary {
        rows: rows.len(),
        ..Summary::default()
    };
    for r in rows {
        match r.action {
            "create" => s.create += 1,
            "update" => s.update += 1,
            "unchanged" => s.unchanged += 1,
            _ => s.error_rows += 1,
        }
    }
    s
}

/// The dry-run report of a plan.
pub fn dry_run_report(plan: &RosterPlan) -> DryRunReport {
    let rows: Vec<RowReport> = plan.rows.iter().map(row_report).collect();
    DryRunReport {
        commit: false,
        summary: summary(&rows),
        rows,
        errors: plan.errors.clone(),
    }
}

/// 422 `VALIDATION_FAILED` listing every problem, pointers `/rows/{row}/{column}`.
pub fn validation_error(errors: &[RowError]) -> ApiError {
    let problems = errors
        .iter()
        .map(|e| FieldProblem {
            pointer: if e.column.is_empty() {
                format!("/rows/{}", e.row)
            } else {
                format!(
                    "/rows/{}/{}",
                    e.row,
                    e.column.replace('~', "~0").replace('/', "~1")
                )
            },
            message: e.message.clone(),
        })
        .collect();
    let mut error = ApiError::validation(problems);
    error.detail = format!(
        "{} problem(s) in the roster; nothing was imported (run without commit=true for the full report)",
        errors.len()
    );
    error
}

struct Memo {
    by: String,
    sha: [u8; 32],
    at_ms: i64,
    rows: Vec<(u32, RowSignature)>,
}

/// Remembered dry runs (engine state).
#[derive(Default)]
pub struct DryRuns {
    memos: Mutex<VecDeque<Memo>>,
}

impl std::fmt::Debug for DryRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DryRuns").finish_non_exhaustive()
    }
}

impl DryRuns {
    /// Remembers the dry run of file `sha` by `by` at `at_ms`.
    pub fn remember(&self, by: &str, sha: [u8; 32], at_ms: i64, report: &DryRunReport) {
        let rows = report.rows.iter().map(|r| (r.row, signature(r))).collect();
        let mut memos = self.memos.lock();
        memos.retain(|m| !(m.by == by && m.sha == sha) && m.at_ms > at_ms - DRY_RUN_TTL_MS);
        memos.push_back(Memo {
            by: by.to_owned(),
            sha,
            at_ms,
            rows,
        });
        while memos.len() > MAX_DRY_RUNS {
            memos.pop_front();
        }
    }

    /// Compares a commit's rows with the latest dry run of the same file by `by`.
    pub fn compare(
        &self,
        by: &str,
        sha: [u8; 32],
        now_ms: i64,
        rows: &[RowReport],
    ) -> DryRunComparison {
        let memos = self.memos.lock();
        let Some(memo) = memos
            .iter()
            .rev()
            .find(|m| m.by == by && m.sha == sha && m.at_ms > now_ms - DRY_RUN_TTL_MS)
        else {
            return DryRunComparison {
                found: false,
                at: None,
                differences: Vec::new(),
            };
        };
        let by_row: std::collections::HashMap<u32, &RowSignature> =
            memo.rows.iter().map(|(row, s)| (*row, s)).collect();
        let differences = rows
            .iter()
            .filter_map(|r| {
                let now = signature(r);
                let before = by_row
                    .get(&r.row)
                    .map(|s| (*s).clone())
                    .unwrap_or(RowSignature {
                        action: "absent",
                        fields: Vec::new(),
                    });
                (before != now).then(|| Difference {
                    row: r.row,
                    email: r.email.clone(),
                    dry_run: before,
                    commit: now,
                })
            })
            .collect();
        DryRunComparison {
            found: true,
            at: Some(rfc3339(memo.at_ms)),
            differences,
        }
    }
}
