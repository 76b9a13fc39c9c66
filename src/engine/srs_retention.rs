//! Archive status and retention (srs.md "Archive and retention"): the counts of
//! `GET /api/v1/admin/seasons/{id}/archive-status`, the weekly retention flagging and
//! the admin purge. The archive runs are in `srs_archive_ops.rs`, the events in
//! `srs_archive.rs`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::persist::codec;
use crate::persist::srs_archive::ArchivePurge;
use crate::players::audit::{AuditKind, RESULT_OK};
use crate::srs::Card;

use super::srs_archive::{ArchiveFlagged, ArchivePurged};
use super::{Engine, Event};

/// `GET /api/v1/admin/seasons/{id}/archive-status`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArchiveStatus {
    /// Season id.
    pub season: String,
    /// Whether it is the active season.
    pub is_active: bool,
    /// Whether the daily job archives it once ended.
    pub auto_archive: bool,
    /// Its last day.
    pub end_date: String,
    /// Cards still live (in memory or the live table).
    pub live_cards: u64,
    /// Cards in the archive.
    pub archived_cards: u64,
    /// Archived cards older than the retention period at the last flagging.
    pub eligible_for_deletion: u64,
}

/// `POST /api/v1/admin/archive/purge` body.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Must be `true`.
    #[serde(default)]
    pub confirm: bool,
    /// Only this season's eligible cards (default: every season's).
    #[serde(default)]
    pub season_id: Option<String>,
}

/// The answer of a purge.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PurgeOutcome {
    /// The season purged, or null for all.
    pub season_id: Option<String>,
    /// Archived cards deleted.
    pub purged_cards: u64,
    /// The retention cutoff applied (RFC 3339), null when nothing was ever flagged.
    pub archived_before: Option<String>,
}

/// What the weekly flagging did.
#[derive(Debug, Clone, Serialize)]
pub struct FlagOutcome {
    /// The cutoff now in force (unix ms).
    pub eligible_before_ms: i64,
    /// Archived cards eligible for deletion, all seasons.
    pub eligible_cards: u64,
}

impl Engine {
    /// (archived, eligible for deletion) cards of `season`: redb counts adjusted by what
    /// is journaled but not yet checkpointed. Blocking (redb).
    fn archived_counts(&self, season: &str) -> Result<(u64, u64), ApiError> {
        let stored = self
            .inner()
            .store
            .archive_counts()
            .map_err(ApiError::internal)?;
        let pending = self.pending_archive_view(season);
        let purged = |at: i64| {
            pending
                .purges
                .iter()
                .any(|p| at < p.before_ms && p.season.as_deref().is_none_or(|s| s == season))
        };
        let mut by_at: BTreeMap<i64, u64> = BTreeMap::new();
        for (s, count) in stored {
            if s == season && !purged(count.archived_at_ms) {
                *by_at.entry(count.archived_at_ms).or_default() += count.cards;
            }
        }
        // A pending move replaces the card's archive row if it has one (a card archived,
        // re-created and archived again): count it once, at its new time.
        let keys: Vec<(String, String)> = pending
            .moves
            .keys()
            .map(|(p, q)| (p.to_string(), q.to_string()))
            .collect();
        let existing = self
            .inner()
            .store
            .archived_at_of(season, &keys)
            .map_err(ApiError::internal)?;
        // `keys()` and `values()` of an unchanged map walk the same order.
        for (&at, old) in pending.moves.values().zip(existing) {
            if let Some(old) = old.filter(|old| !purged(*old))
                && let Some(n) = by_at.get_mut(&old)
            {
                *n = n.saturating_sub(1);
            }
            *by_at.entry(at).or_default() += 1;
        }
        let archived = by_at.values().sum();
        let eligible = pending
            .eligible_before_ms
            .map_or(0, |cutoff| by_at.range(..cutoff).map(|(_, n)| n).sum());
        Ok((archived, eligible))
    }

    /// The archive status of a season. Blocking (redb reads): call it from a blocking
    /// thread.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`, 500.
    pub fn archive_status(&self, season_id: &str) -> Result<ArchiveStatus, ApiError> {
        let season = self.season(season_id)?;
        let live_cards = self.live_cards(season_id)?;
        let (archived_cards, eligible_for_deletion) = self.archived_counts(season_id)?;
        Ok(ArchiveStatus {
            season: season.id,
            is_active: season.is_active,
            auto_archive: season.auto_archive,
            end_date: season.end_date,
            live_cards,
            archived_cards,
            eligible_for_deletion,
        })
    }

    /// Raises the retention cutoff to now − `srs.retention_days` (the weekly job).
    ///
    /// # Errors
    /// 503 `STORAGE_UNAVAILABLE`, 500.
    pub async fn flag_retention(&self) -> Result<FlagOutcome, ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let now = self.now().as_millisecond();
        let cutoff = now - i64::from(self.config().srs.retention_days) * crate::srs::DAY_MS;
        let current = self.archive_eligible_before();
        // Journal only when some archived card becomes eligible.
        let newly = self
            .blocking(move |e| {
                let counts = e
                    .inner()
                    .store
                    .archive_counts()
                    .map_err(ApiError::internal)?;
                Ok(counts.iter().any(|(_, c)| {
                    c.archived_at_ms < cutoff && current.is_none_or(|old| c.archived_at_ms >= old)
                }))
            })
            .await?;
        if newly {
            self.commit_and_apply(Event::ArchiveFlagged(ArchiveFlagged {
                before_ms: cutoff,
                at_ms: now,
            }))
            .await?;
        }
        let eligible_before_ms = self.archive_eligible_before().unwrap_or(cutoff);
        let eligible_cards = self
            .blocking(move |e| {
                let seasons: Vec<String> = e.seasons().into_iter().map(|s| s.id).collect();
                let mut n = 0;
                for s in seasons {
                    n += e.archived_counts(&s)?.1;
                }
                Ok(n)
            })
            .await?;
        Ok(FlagOutcome {
            eligible_before_ms,
            eligible_cards,
        })
    }

    /// Deletes the archived cards eligible for deletion, of one season or all.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` without `confirm: true`, 404 `NOT_FOUND` (season), 503
    /// `STORAGE_UNAVAILABLE`, 500.
    pub async fn purge_archive(
        &self,
        request: PurgeRequest,
        by: &str,
    ) -> Result<PurgeOutcome, ApiError> {
        if !request.confirm {
            return Err(ApiError::field(
                "/confirm",
                "must be true: purging deletes archived cards for good",
            ));
        }
        let seasons: Vec<String> = match &request.season_id {
            Some(id) => vec![self.season(id)?.id],
            None => self.seasons().into_iter().map(|s| s.id).collect(),
        };
        let _order = self.inner().admin_write.lock().await;
        let Some(before_ms) = self.archive_eligible_before() else {
            return Ok(PurgeOutcome {
                season_id: request.season_id,
                purged_cards: 0,
                archived_before: None,
            });
        };
        let counted = seasons.clone();
        let purged_cards = self
            .blocking(move |e| {
                let mut n = 0;
                for s in counted {
                    n += e.archived_counts(&s)?.1;
                }
                Ok(n)
            })
            .await?;
        if purged_cards > 0 {
            let mut audit = self
                .audit_record(AuditKind::AdminAction, RESULT_OK)
                .detail("action", "archive_purged")
                .detail("purged_cards", purged_cards)
                .detail("archived_before", super::accounts::rfc3339(before_ms));
            if let Some(season) = &request.season_id {
                audit = audit.detail("season", season.as_str());
            }
            self.commit_audited(
                Event::ArchivePurged(Box::new(ArchivePurged {
                    season: request.season_id.clone(),
                    before_ms,
                    at_ms: self.now().as_millisecond(),
                    by: by.to_owned(),
                })),
                vec![audit],
            )
            .await?;
            // The rows go at the next checkpoint; start it now rather than in 30 s.
            let engine = self.clone();
            tokio::spawn(async move {
                let _ = tokio::task::spawn_blocking(move || engine.checkpoint(true, false)).await;
            });
        }
        Ok(PurgeOutcome {
            season_id: request.season_id,
            purged_cards,
            archived_before: Some(super::accounts::rfc3339(before_ms)),
        })
    }

    /// Archived cards of one player in one season (question id, archived at in unix
    /// ms, card), as checkpointed plus pending moves; for support and tests. Blocking.
    ///
    /// # Errors
    /// 500.
    pub fn archived_cards_of(
        &self,
        player_id: &str,
        season: &str,
    ) -> Result<Vec<(String, i64, Card)>, ApiError> {
        let mut out: HashMap<String, (i64, Card)> = HashMap::new();
        for (question, at, bytes) in self
            .inner()
            .store
            .archived_cards(season, player_id)
            .map_err(ApiError::internal)?
        {
            let card: Card = codec::decode(&bytes).map_err(ApiError::internal)?;
            out.insert(question, (at, card));
        }
        for (question, at, card) in self.pending_moves_of(player_id, season) {
            out.insert(question, (at, card));
        }
        let purges: Vec<ArchivePurge> = self.pending_archive_view(season).purges;
        let mut rows: Vec<(String, i64, Card)> = out
            .into_iter()
            .filter(|(_, (at, _))| {
                !purges
                    .iter()
                    .any(|p| *at < p.before_ms && p.season.as_deref().is_none_or(|s| s == season))
            })
            .map(|(q, (at, card))| (q, at, card))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rows)
    }
}
