//! Reading the audit and interaction logs (`GET /api/v1/admin/audit`, the export):
//! filters by player, kinds and time range, newest first, with an opaque cursor. Reads
//! merge the redb tables with the records applied since the last checkpoint.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::ApiError;
use crate::persist::audit::{ScanIndex, scan};
use crate::players::audit::{AuditKind, AuditRecord, time_key};

use super::Engine;
use super::accounts::rfc3339;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this player's records.
    pub player_id: Option<String>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<AuditKind>,
    /// From this instant (inclusive, unix ms).
    pub since_ms: Option<i64>,
    /// Until this instant (exclusive, unix ms).
    pub until_ms: Option<i64>,
    /// Page size.
    pub limit: usize,
    /// Only records older than this key (from a cursor).
    pub before: Option<[u8; 16]>,
}

impl AuditFilter {
    fn accepts(&self, r: &AuditRecord) -> bool {
        self.player_id
            .as_deref()
            .is_none_or(|p| r.player_id.as_deref() == Some(p))
            && (self.kinds.is_empty() || self.kinds.contains(&r.kind))
            && self.since_ms.is_none_or(|s| r.at_ms >= s)
            && self.until_ms.is_none_or(|u| r.at_ms < u)
    }
}

/// One record as listed.
#[derive(Debug, Clone, Serialize)]
pub struct AuditItem {
    /// The record's id (opaque).
    pub id: String,
    /// Its kind (`login_failed`, `lesson_attempt`, …).
    #[serde(rename = "type")]
    pub kind: AuditKind,
    /// `security` or `interaction`.
    pub log: &'static str,
    /// When (RFC 3339).
    pub at: String,
    /// The player concerned.
    pub player_id: Option<String>,
    /// Who acted, when someone else (an admin).
    pub actor_id: Option<String>,
    /// The device.
    pub device_id: Option<String>,
    /// The client IP (cleared after `audit.ip_retention_days`).
    pub client_ip: Option<String>,
    /// `METHOD /route`.
    pub endpoint: Option<String>,
    /// `ok` or the error code.
    pub result: String,
    /// Kind-specific details.
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl AuditItem {
    fn of(key: &[u8; 16], r: AuditRecord) -> AuditItem {
        AuditItem {
            id: hex::encode(key),
            kind: r.kind,
            log: if r.kind.is_interaction() {
                "interaction"
            } else {
                "security"
            },
            at: rfc3339(r.at_ms),
            actor_id: r.actor_id.filter(|a| Some(a) != r.player_id.as_ref()),
            player_id: r.player_id,
            device_id: r.device_id,
            client_ip: r.client_ip,
            endpoint: r.endpoint,
            result: r.result,
            detail: r
                .detail
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        }
    }
}

/// One page of records, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    /// The records.
    pub items: Vec<AuditItem>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The cursor's key.
    #[serde(skip)]
    pub next_key: Option<[u8; 16]>,
}

/// Decodes a cursor of this listing.
pub fn parse_cursor(raw: &str) -> Option<[u8; 16]> {
    hex::decode(raw).ok()?.try_into().ok()
}

impl Engine {
    /// One page of the logs after journaling what is buffered (so a reader sees every
    /// record of requests answered before theirs). While the journal fails, the records
    /// already journaled are still listed (the log matters most during an incident).
    ///
    /// # Errors
    /// 500 when stored records cannot be read.
    pub async fn audit_page(&self, filter: AuditFilter) -> Result<AuditPage, ApiError> {
        if let Err(e) = self.flush_audit().await {
            tracing::warn!(error = %e, "audit read without the buffered records");
        }
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.audit_page_now(&filter))
            .await
            .map_err(ApiError::internal)?
    }

    /// One page of the logs as they stand (blocking: reads redb).
    ///
    /// # Errors
    /// 500 when stored records cannot be read.
    pub fn audit_page_now(&self, filter: &AuditFilter) -> Result<AuditPage, ApiError> {
        let lo = time_key(filter.since_ms.unwrap_or(i64::MIN), 0);
        let mut hi = time_key(filter.until_ms.unwrap_or(i64::MAX), 0);
        if filter.until_ms.is_none() {
            hi = [0xff; 16];
        }
        if let Some(before) = filter.before {
            hi = hi.min(before);
        }
        let want = |r: &AuditRecord| filter.accepts(r);
        let by = match (&filter.player_id, filter.kinds.as_slice()) {
            (Some(p), _) => ScanIndex::Player(p),
            (None, [kind]) => ScanIndex::Kind(*kind),
            _ => ScanIndex::Time,
        };
        let n = filter.limit.saturating_add(1);
        let stored = scan(&self.inner().store, by, lo, hi, n, want).map_err(ApiError::internal)?;
        let keys: Vec<[u8; 16]> = stored.iter().map(|(k, _)| *k).collect();
        let (pending, overlay) = self.audit_pending(lo, hi, n, &want, &keys);
        let mut merged: BTreeMap<[u8; 16], AuditRecord> = stored.into_iter().collect();
        // Pending versions win: they may have changed (anonymised, IP cleared) since.
        merged.extend(overlay);
        merged.extend(pending);
        let mut items: Vec<([u8; 16], AuditRecord)> = merged
            .into_iter()
            .rev()
            .filter_map(|(k, r)| self.audit_present(r).map(|r| (k, r)))
            .filter(|(_, r)| want(r))
            .take(n)
            .collect();
        let more = items.len() > filter.limit;
        items.truncate(filter.limit);
        let next_key = if more {
            items.last().map(|(k, _)| *k)
        } else {
            None
        };
        Ok(AuditPage {
            items: items
                .into_iter()
                .map(|(k, r)| AuditItem::of(&k, r))
                .collect(),
            next_cursor: next_key.map(hex::encode),
            next_key,
        })
    }
}
