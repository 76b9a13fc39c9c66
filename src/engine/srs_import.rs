//! Review history import in the engine (srs.md "Review history import"): the file is
//! validated before anything is accepted (a bad file changes nothing), then a job
//! rebuilds the imported questions' cards by replaying their history through the
//! scheduler (`srs::import`) and journals them as [`CardsImported`] events carrying the
//! decided cards, which replace the existing cards of those questions in the season.
//!
//! The job holds the student's write lock while it journals, so it is ordered with the
//! student's review sessions. Large imports are journaled in events of at most
//! [`IMPORT_EVENT_CARDS`] cards; a crash between two of them leaves the first part
//! imported, and importing the same file again gives the same cards (the replay is
//! deterministic).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, FieldProblem};
use crate::players::audit::AuditKind;
use crate::srs::import::{self, ImportedReview};

use super::jobs::JobHandle;
use super::srs_ops::{CardWrite, on_seconds};
use super::{Engine, Event};

/// Most cards per journaled import event.
pub const IMPORT_EVENT_CARDS: usize = 10_000;

/// A review history import: the rebuilt cards of one player in one season.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardsImported {
    /// The student.
    pub player_id: String,
    /// The season.
    pub season: String,
    /// When (unix ms).
    pub at_ms: i64,
    /// The rebuilt cards; each replaces the question's card in the season.
    pub cards: Vec<CardWrite>,
    /// The admin who imported (player id), for the audit.
    pub by: String,
}

/// A validated import, reserved against archiving its season until dropped.
#[derive(Debug)]
pub struct PreparedImport {
    engine: Engine,
    player_id: String,
    season: String,
    reviews: Vec<ImportedReview>,
    by: String,
}

impl Drop for PreparedImport {
    fn drop(&mut self) {
        let mut busy = self.engine.inner().srs.archive.busy.lock();
        if let Some(n) = busy.importing.get_mut(&self.season) {
            *n -= 1;
            if *n == 0 {
                busy.importing.remove(&self.season);
            }
        }
    }
}

impl PreparedImport {
    /// The season imported into.
    pub fn season(&self) -> &str {
        &self.season
    }
}

/// The result of an import job.
#[derive(Debug, Clone, Serialize)]
pub struct ImportOutcome {
    /// The student.
    pub player_id: String,
    /// The season.
    pub season: String,
    /// Reviews replayed (rows of the file).
    pub reviews: usize,
    /// Cards rebuilt (distinct questions).
    pub cards: usize,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

impl Engine {
    /// Checks an import request and reserves its season: the player must exist, the
    /// season (`season_id`, default the active one) must exist and not be being
    /// archived, and the file must be valid (every problem reported).
    ///
    /// # Errors
    /// 404 `NOT_FOUND` (player, season), 409 `NO_ACTIVE_SEASON`, 409 `CONFLICT` (the
    /// season is being archived), 422 `VALIDATION_FAILED` (the file).
    pub fn prepare_review_import(
        &self,
        player_id: &str,
        season_id: Option<&str>,
        body: &[u8],
        by: &str,
    ) -> Result<PreparedImport, ApiError> {
        if self.player(player_id).is_none() {
            return Err(ApiError::new(
                Code::NotFound,
                format!("no player `{player_id}`"),
            ));
        }
        let season = match season_id {
            Some(id) => self.season(id)?,
            None => self.active_season().ok_or_else(|| {
                ApiError::new(
                    Code::NoActiveSeason,
                    "No season is active: name one with `season_id`",
                )
            })?,
        };
        let now_ms = self.now().as_millisecond();
        let reviews = import::parse_history(body, now_ms).map_err(|problems| {
            ApiError::validation(
                problems
                    .into_iter()
                    .map(|p| FieldProblem {
                        pointer: p.pointer,
                        message: p.message,
                    })
                    .collect(),
            )
        })?;
        let mut busy = self.inner().srs.archive.busy.lock();
        if busy.archiving.contains_key(&season.id) {
            return Err(ApiError::new(
                Code::Conflict,
                format!(
                    "season `{}` is being archived; import after the archive job",
                    season.id
                ),
            ));
        }
        *busy.importing.entry(season.id.clone()).or_default() += 1;
        Ok(PreparedImport {
            engine: self.clone(),
            player_id: player_id.to_owned(),
            season: season.id,
            reviews,
            by: by.to_owned(),
        })
    }

    /// Runs a prepared import (the job's work): replays the history, then journals and
    /// applies the rebuilt cards under the student's write lock.
    ///
    /// # Errors
    /// 503 `STORAGE_UNAVAILABLE`, 500.
    pub async fn run_review_import(
        &self,
        mut prepared: PreparedImport,
        handle: Option<JobHandle>,
    ) -> Result<ImportOutcome, ApiError> {
        let started = Instant::now();
        let engine = self.clone();
        let rows = prepared.reviews.len();
        let history = std::mem::take(&mut prepared.reviews);
        let cards = tokio::task::spawn_blocking(move || {
            import::replay(&engine.inner().srs.scheduler, &history)
        })
        .await
        .map_err(ApiError::internal)?;
        if let Some(h) = &handle {
            h.set_total(cards.len() as u64);
        }
        let student = self.student(&prepared.player_id)?;
        let _order = student.write.lock().await;
        let total = cards.len();
        let mut writes: Vec<CardWrite> = cards
            .into_iter()
            .map(|(question_id, card, _)| CardWrite {
                question_id,
                card: on_seconds(card),
            })
            .collect();
        // The import is audited once, with its first event.
        let mut audit = Some(
            self.audit_action(AuditKind::AdminAction, &prepared.player_id)
                .detail("action", "reviews_imported")
                .detail("season", prepared.season.as_str())
                .detail("reviews", rows)
                .detail("cards", total),
        );
        while !writes.is_empty() {
            let rest = writes.split_off(writes.len().min(IMPORT_EVENT_CARDS));
            let n = writes.len() as u64;
            let event = CardsImported {
                player_id: prepared.player_id.clone(),
                season: prepared.season.clone(),
                at_ms: self.now().as_millisecond(),
                cards: std::mem::replace(&mut writes, rest),
                by: prepared.by.clone(),
            };
            self.commit_audited(
                Event::CardsImported(Box::new(event)),
                audit.take().into_iter().collect(),
            )
            .await?;
            if let Some(h) = &handle {
                h.advance(n);
            }
        }
        Ok(ImportOutcome {
            player_id: prepared.player_id.clone(),
            season: prepared.season.clone(),
            reviews: rows,
            cards: total,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}
