//! Progress reports (api.md "reports"): one row per student with passed and visible
//! lessons, the completion percentage, XP, the streak as it reads today (0 after a
//! missed day) and the last play, for a group, a plan and/or a subject; a teacher sees
//! only the students of their groups.
//!
//! Rows are computed from the same state the student routes read: a student in memory
//! is read under their state lock; one that is not is read from redb **without** being
//! loaded into memory (a report over a whole school must not pin every student), which
//! is exact because a student's events are applied in memory, so a student absent from
//! memory has no change that is not checkpointed. A student loaded meanwhile is read
//! from memory instead.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::content::catalog::Catalog;
use crate::error::{ApiError, FieldProblem};
use crate::players::account::{PlayerRecord, Role};
use crate::players::streak;
use crate::players::wallet::{self, Wallet};
use crate::progress::state::SubjectProgress;
use crate::progress::status;

use super::Engine;
use super::accounts::Caller;
use super::groups::StaffScope;

/// Students read from redb per transaction.
const CHUNK: usize = 512;

/// What a report covers (every filter optional; empty strings count as absent).
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// Only the students of this group (a teacher must teach it).
    pub group_id: Option<String>,
    /// Only the students on this plan.
    pub plan_id: Option<String>,
    /// Count only this subject, and only students enrolled in it (visible in their plan).
    pub subject_id: Option<String>,
}

/// One student's line of a progress report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    /// Player id.
    pub player_id: String,
    /// Login email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// The student's plan.
    pub plan_id: Option<String>,
    /// Grade label.
    pub grade: Option<String>,
    /// Stream label.
    pub stream: Option<String>,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Passed visible lessons of the reported subject(s).
    pub passed_lessons: u32,
    /// Visible lessons of the reported subject(s): the filter's subject, or every
    /// subject of the student's plan.
    pub total_lessons: u32,
    /// passed / total × 100, 2 decimals (0 without lessons).
    pub completion_percentage: f64,
    /// XP earned in the reported subject(s).
    pub xp_earned: u64,
    /// The wallet's XP total (completions, reviews, adjustments).
    pub total_xp: i64,
    /// The streak as it reads today in the student's time zone (0 after a missed day).
    pub current_streak: u32,
    /// Longest streak ever.
    pub longest_streak: u32,
    /// True when the last success was yesterday.
    pub streak_at_risk: bool,
    /// Day of the last counted activity.
    pub last_success_date: Option<Date>,
    /// Last play (RFC 3339 UTC).
    pub last_played_at: Option<Timestamp>,
}

/// One page of a report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportPage {
    /// When the report was computed (RFC 3339 UTC, server clock).
    pub generated_at: Timestamp,
    /// Rows by player id.
    pub items: Vec<ReportRow>,
    /// The last player id of this page when more rows follow (the HTTP layer makes it
    /// opaque).
    pub next_cursor: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Computes rows from a student's progress and wallet.
struct RowMaker<'a> {
    catalog: &'a Catalog,
    subject_id: Option<&'a str>,
    now: Timestamp,
    zones: HashMap<String, TimeZone>,
}

impl RowMaker<'_> {
    fn row(
        &mut self,
        player: &PlayerRecord,
        subjects: &HashMap<Box<str>, SubjectProgress>,
        wallet: &Wallet,
    ) -> ReportRow {
        let plan = player
            .plan_id
            .as_deref()
            .and_then(|p| self.catalog.plan_view(p));
        let views: Vec<_> = match (plan, self.subject_id) {
            (None, _) => Vec::new(),
            (Some(plan), Some(subject)) => plan.subject(subject).into_iter().collect(),
            (Some(plan), None) => plan.subjects.iter().collect(),
        };
        let (mut passed, mut total, mut xp) = (0u32, 0u32, 0u64);
        for view in views {
            let key = view.subject_id().to_ascii_lowercase();
            let summary = match subjects.get(key.as_str()) {
                Some(progress) => {
                    xp += progress.total_xp_earned;
                    status::summary(view, &progress.passed)
                }
                None => status::summary(view, &Default::default()),
            };
            passed += summary.passed_lessons;
            total += summary.total_lessons;
        }
        let tz = self
            .zones
            .entry(player.timezone.clone())
            .or_insert_with(|| TimeZone::get(&player.timezone).unwrap_or(TimeZone::UTC));
        let w = wallet::view(wallet, streak::today_in(tz, self.now));
        ReportRow {
            player_id: player.id.clone(),
            email: player.email.clone(),
            display_name: player.display_name.clone(),
            plan_id: player.plan_id.clone(),
            grade: player.grade.clone(),
            stream: player.stream.clone(),
            disabled: player.disabled,
            passed_lessons: passed,
            total_lessons: total,
            completion_percentage: status::percentage(passed, total),
            xp_earned: xp,
            total_xp: w.total_xp,
            current_streak: w.current_streak,
            longest_streak: w.longest_streak,
            streak_at_risk: w.streak_at_risk,
            last_success_date: w.last_success_date,
            last_played_at: w.last_played_at,
        }
    }
}

impl Engine {
    /// The students a report covers, by id: students (role student now) within the
    /// caller's scope, of the group, on the plan, enrolled in the subject.
    ///
    /// # Errors
    /// 404 `NOT_FOUND` for a group that is unknown or that a teacher does not teach; 422
    /// `VALIDATION_FAILED` for an unknown plan or subject (pointers `/plan_id`,
    /// `/subject_id`).
    pub fn report_students(
        &self,
        caller: &Caller,
        scope: &StaffScope,
        filter: &ReportFilter,
    ) -> Result<Vec<Arc<PlayerRecord>>, ApiError> {
        let catalog = self.catalog();
        let mut problems = Vec::new();
        let plan_id = present(&filter.plan_id);
        if let Some(p) = plan_id
            && catalog.plan(p).is_none()
        {
            problems.push(FieldProblem {
                pointer: "/plan_id".into(),
                message: format!("no plan `{p}`"),
            });
        }
        let subject_id = present(&filter.subject_id);
        if let Some(s) = subject_id
            && catalog.subject(s).is_none()
        {
            problems.push(FieldProblem {
                pointer: "/subject_id".into(),
                message: format!("no subject `{s}`"),
            });
        }
        let group = match present(&filter.group_id) {
            Some(g) => Some(self.group_for(caller, g)?),
            None => None,
        };
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        let keep = |p: &PlayerRecord| {
            p.role == Role::Student
                && scope.allows(&p.id)
                && plan_id.is_none_or(|want| {
                    p.plan_id
                        .as_deref()
                        .is_some_and(|have| have.eq_ignore_ascii_case(want))
                })
                && subject_id.is_none_or(|s| {
                    p.plan_id
                        .as_deref()
                        .and_then(|plan| catalog.plan_view(plan))
                        .is_some_and(|plan| plan.subject(s).is_some())
                })
        };
        let accounts = self.inner().accounts.read();
        let mut players: Vec<Arc<PlayerRecord>> = match &group {
            Some(g) => g
                .student_ids
                .iter()
                .filter_map(|id| accounts.player(id))
                .filter(|p| keep(p))
                .cloned()
                .collect(),
            None => match scope {
                StaffScope::All => accounts
                    .all_players()
                    .filter(|p| keep(p))
                    .cloned()
                    .collect(),
                // A teacher's students: no need to look at the whole school.
                StaffScope::Students(ids) => ids
                    .iter()
                    .filter_map(|id| accounts.player(id))
                    .filter(|p| keep(p))
                    .cloned()
                    .collect(),
            },
        };
        drop(accounts);
        players.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        players.dedup_by(|a, b| a.id == b.id);
        Ok(players)
    }

    /// Report rows for `players`, in their order, counting `subject_id` only when given.
    /// Blocking (may read redb): call it from a blocking thread.
    ///
    /// # Errors
    /// 500 when stored rows cannot be read or decoded.
    pub fn report_rows(
        &self,
        players: &[Arc<PlayerRecord>],
        subject_id: Option<&str>,
    ) -> Result<Vec<ReportRow>, ApiError> {
        let catalog = self.catalog();
        let mut maker = RowMaker {
            catalog: &catalog,
            subject_id: subject_id.filter(|s| !s.is_empty()),
            now: self.now(),
            zones: HashMap::new(),
        };
        let students = &self.inner().students;
        let mut out = Vec::with_capacity(players.len());
        for chunk in players.chunks(CHUNK) {
            let mut rows: Vec<Option<ReportRow>> = chunk
                .iter()
                .map(|p| {
                    students.get(&p.id).map(|s| {
                        let state = s.state.read();
                        maker.row(p, &state.subjects, &state.wallet)
                    })
                })
                .collect();
            let absent: Vec<usize> = (0..chunk.len()).filter(|&i| rows[i].is_none()).collect();
            if !absent.is_empty() {
                let ids: Vec<&str> = absent.iter().map(|&i| chunk[i].id.as_str()).collect();
                let stored = self
                    .inner()
                    .store
                    .students(&ids)
                    .map_err(ApiError::internal)?;
                for (&i, (progress, wallet)) in absent.iter().zip(stored) {
                    let player = &chunk[i];
                    // Loaded (and maybe changed) since the check above: memory is newer.
                    let row = match students.get(&player.id) {
                        Some(s) => {
                            let state = s.state.read();
                            maker.row(player, &state.subjects, &state.wallet)
                        }
                        None => {
                            let state = super::decode_student(&player.id, progress, wallet)
                                .map_err(ApiError::internal)?;
                            maker.row(player, &state.subjects, &state.wallet)
                        }
                    };
                    rows[i] = Some(row);
                }
            }
            out.extend(rows.into_iter().flatten());
        }
        Ok(out)
    }

    /// A page of the progress report: `limit` rows after player id `after` (every row
    /// when `limit` is `None`). Blocking (may read redb).
    ///
    /// # Errors
    /// As [`Engine::report_students`] and [`Engine::report_rows`].
    pub fn progress_report(
        &self,
        caller: &Caller,
        scope: &StaffScope,
        filter: &ReportFilter,
        limit: Option<usize>,
        after: Option<&str>,
    ) -> Result<ReportPage, ApiError> {
        let generated_at = self.now();
        let players = self.report_students(caller, scope, filter)?;
        let start = after.map_or(0, |a| players.partition_point(|p| p.id.as_str() <= a));
        let rest = &players[start..];
        let (page, more) = match limit {
            Some(n) if rest.len() > n => (&rest[..n], true),
            _ => (rest, false),
        };
        let items = self.report_rows(page, present(&filter.subject_id))?;
        Ok(ReportPage {
            generated_at,
            next_cursor: more.then(|| page.last().map(|p| p.id.clone())).flatten(),
            items,
        })
    }
}
