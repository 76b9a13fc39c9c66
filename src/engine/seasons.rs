//! Seasons (srs.md "Seasons"): the admin-managed periods that scope SRS data. A season
//! is validated here, journaled as one [`Event::SeasonPut`] carrying the whole record,
//! applied to the in-memory registry and checkpointed with the progress stream.
//!
//! Rules: ids match `^[A-Za-z0-9_-]{1,64}$` and are never renamed; `end_date ≥
//! start_date`; at most one season is active (activating a second → 409 `CONFLICT`);
//! an active season cannot be `auto_archive`.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, FieldProblem};

use super::accounts::rfc3339;
use super::{Engine, Event};

/// A season as stored and journaled (absolute: the whole record after the change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeasonRecord {
    /// The id (case-sensitive, never renamed).
    pub id: String,
    /// Display title.
    pub title: String,
    /// First day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Last day, `YYYY-MM-DD` (≥ `start_date`).
    pub end_date: String,
    /// Whether reviews go to this season (at most one).
    pub is_active: bool,
    /// Whether the daily job archives it once ended and inactive.
    pub auto_archive: bool,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
}

/// The JSON shape of a season in admin answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeasonView {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `YYYY-MM-DD`.
    pub start_date: String,
    /// `YYYY-MM-DD`.
    pub end_date: String,
    /// Active.
    pub is_active: bool,
    /// Archived automatically once ended.
    pub auto_archive: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl SeasonView {
    /// The view of a record.
    pub fn of(r: &SeasonRecord) -> SeasonView {
        SeasonView {
            id: r.id.clone(),
            title: r.title.clone(),
            start_date: r.start_date.clone(),
            end_date: r.end_date.clone(),
            is_active: r.is_active,
            auto_archive: r.auto_archive,
            created_at: rfc3339(r.created_at_ms),
            updated_at: rfc3339(r.updated_at_ms),
        }
    }
}

/// `POST /api/v1/admin/seasons` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSeason {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `YYYY-MM-DD`.
    pub start_date: String,
    /// `YYYY-MM-DD`.
    pub end_date: String,
    /// Default false.
    #[serde(default)]
    pub is_active: bool,
    /// Default false.
    #[serde(default)]
    pub auto_archive: bool,
}

/// `PATCH /api/v1/admin/seasons/{id}` body: every field optional; `id`, if sent, must
/// equal the URL's (ids are never renamed).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeasonPatch {
    /// Must equal the current id.
    pub id: Option<String>,
    /// New title.
    pub title: Option<String>,
    /// New first day.
    pub start_date: Option<String>,
    /// New last day.
    pub end_date: Option<String>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// Auto-archive flag.
    pub auto_archive: Option<bool>,
}

/// The seasons known to the engine, by id.
#[derive(Debug, Default)]
pub struct Seasons {
    by_id: BTreeMap<String, SeasonRecord>,
}

impl Seasons {
    /// The season with `id`.
    pub fn get(&self, id: &str) -> Option<&SeasonRecord> {
        self.by_id.get(id)
    }

    /// The active season, if any.
    pub fn active(&self) -> Option<&SeasonRecord> {
        self.by_id.values().find(|s| s.is_active)
    }

    /// Every season by id.
    pub fn all(&self) -> impl Iterator<Item = &SeasonRecord> {
        self.by_id.values()
    }

    /// Stores a record (create or replace).
    pub fn put(&mut self, record: SeasonRecord) {
        self.by_id.insert(record.id.clone(), record);
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_date(pointer: &str, value: &str, problems: &mut Vec<FieldProblem>) -> Option<Date> {
    match value.parse::<Date>() {
        Ok(d) if d.to_string() == value => Some(d),
        _ => {
            problems.push(FieldProblem {
                pointer: pointer.to_owned(),
                message: format!("`{value}` is not a date of the form YYYY-MM-DD"),
            });
            None
        }
    }
}

/// Checks a complete record's own rules (every problem at once).
fn validate(record: &SeasonRecord) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    if !valid_id(&record.id) {
        problems.push(FieldProblem {
            pointer: "/id".into(),
            message: "must match ^[A-Za-z0-9_-]{1,64}$".into(),
        });
    }
    if record.title.trim().is_empty() || record.title.chars().count() > 200 {
        problems.push(FieldProblem {
            pointer: "/title".into(),
            message: "must be 1 to 200 characters".into(),
        });
    }
    let start = parse_date("/start_date", &record.start_date, &mut problems);
    let end = parse_date("/end_date", &record.end_date, &mut problems);
    if matches!((start, end), (Some(start), Some(end)) if end < start) {
        problems.push(FieldProblem {
            pointer: "/end_date".into(),
            message: "must not be before start_date".into(),
        });
    }
    if record.is_active && record.auto_archive {
        problems.push(FieldProblem {
            pointer: "/auto_archive".into(),
            message: "an active season cannot be auto_archive".into(),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(problems))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(Code::NotFound, format!("no season `{id}`"))
}

impl Engine {
    /// Every season, by id.
    pub fn seasons(&self) -> Vec<SeasonRecord> {
        self.inner().srs.seasons.read().all().cloned().collect()
    }

    /// One season.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`.
    pub fn season(&self, id: &str) -> Result<SeasonRecord, ApiError> {
        self.inner()
            .srs
            .seasons
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// The active season, if any.
    pub fn active_season(&self) -> Option<SeasonRecord> {
        self.inner().srs.seasons.read().active().cloned()
    }

    /// Creates a season.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` (every problem), 409 `CONFLICT` (id taken, or another
    /// season active), 503 `STORAGE_UNAVAILABLE`.
    pub async fn create_season(&self, new: NewSeason) -> Result<SeasonRecord, ApiError> {
        let now = self.now().as_millisecond();
        let record = SeasonRecord {
            id: new.id,
            title: new.title,
            start_date: new.start_date,
            end_date: new.end_date,
            is_active: new.is_active,
            auto_archive: new.auto_archive,
            created_at_ms: now,
            updated_at_ms: now,
        };
        validate(&record)?;
        let _order = self.inner().admin_write.lock().await;
        {
            let seasons = self.inner().srs.seasons.read();
            if seasons.get(&record.id).is_some() {
                return Err(ApiError::new(
                    Code::Conflict,
                    format!("a season `{}` already exists", record.id),
                ));
            }
            check_single_active(&seasons, &record)?;
        }
        self.commit_and_apply(Event::SeasonPut(record.clone()))
            .await?;
        Ok(record)
    }

    /// Changes a season.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`, 422 `VALIDATION_FAILED` (including a rename), 409 `CONFLICT`
    /// (another season active), 503 `STORAGE_UNAVAILABLE`.
    pub async fn patch_season(
        &self,
        id: &str,
        patch: SeasonPatch,
    ) -> Result<SeasonRecord, ApiError> {
        if patch.id.as_deref().is_some_and(|new_id| new_id != id) {
            return Err(ApiError::field("/id", "season ids cannot be renamed"));
        }
        let _order = self.inner().admin_write.lock().await;
        let mut record = self.season(id)?;
        if let Some(v) = patch.title {
            record.title = v;
        }
        if let Some(v) = patch.start_date {
            record.start_date = v;
        }
        if let Some(v) = patch.end_date {
            record.end_date = v;
        }
        if let Some(v) = patch.is_active {
            record.is_active = v;
        }
        if let Some(v) = patch.auto_archive {
            record.auto_archive = v;
        }
        validate(&record)?;
        check_single_active(&self.inner().srs.seasons.read(), &record)?;
        record.updated_at_ms = self.now().as_millisecond();
        self.commit_and_apply(Event::SeasonPut(record.clone()))
            .await?;
        Ok(record)
    }

    /// Applies a durable [`Event::SeasonPut`].
    pub(super) fn apply_season_put(&self, record: &SeasonRecord) {
        let srs = &self.inner().srs;
        srs.seasons.write().put(record.clone());
        srs.dirty.lock().seasons = true;
    }
}

fn check_single_active(seasons: &Seasons, record: &SeasonRecord) -> Result<(), ApiError> {
    if !record.is_active {
        return Ok(());
    }
    match seasons.active() {
        Some(other) if other.id != record.id => Err(ApiError::new(
            Code::Conflict,
            format!(
                "season `{}` is active; deactivate it before activating `{}`",
                other.id, record.id
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, start: &str, end: &str, active: bool, auto: bool) -> SeasonRecord {
        SeasonRecord {
            id: id.into(),
            title: "T".into(),
            start_date: start.into(),
            end_date: end.into(),
            is_active: active,
            auto_archive: auto,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn season_rules_report_every_problem() {
        assert!(validate(&record("2026", "2026-09-01", "2027-06-30", true, false)).is_ok());
        let e = validate(&record("bad id", "2026-09-01", "2026-08-01", true, true))
            .expect_err("invalid");
        let pointers: Vec<_> = e.errors.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(pointers, ["/id", "/end_date", "/auto_archive"]);
        let e = validate(&record("a", "2026-9-1", "x", false, false)).expect_err("dates");
        assert_eq!(e.errors.len(), 2);
        assert!(!valid_id(&"a".repeat(65)));
        assert!(valid_id("A_z-9"));
    }
}
