//! The closed set of mutations: every state change is one [`Event`], which is the journal
//! record, the input of replay and (later) the mirror feed (architecture.md, STYLE.md 3).
//!
//! Events carry **decided, absolute** outcomes (the new XP total, the new best hearts, the
//! new streak), never deltas or inputs to re-decide, so replay is deterministic and
//! idempotent and does not depend on the clock or the configuration.
//!
//! Compatibility: variants are only ever appended (bincode encodes the variant index);
//! a changed variant gets a new name and the old one stays decodable. The record's
//! format byte (`persist::codec`) versions the encoding as a whole.

use serde::{Deserialize, Serialize};

use crate::content::catalog::{PlanRecord, SubjectRecord};
use crate::players::account::{Device, PlayerRecord, SessionRecord};
use crate::players::audit::AuditRecord;
use crate::progress::completion::CompletionDecision;

/// A streak as stored: absolute values after the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreakState {
    /// Current streak in days.
    pub current: u32,
    /// Longest streak ever.
    pub longest: u32,
    /// Last success day as days since 1970-01-01 in the student's zone.
    pub last_success_day: Option<i32>,
}

/// A lesson completion: progress, subject XP, wallet XP and streak in one event, so XP can
/// never be lost between two stores (progress.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LessonCompleted {
    /// The student.
    pub player_id: String,
    /// Lowercased subject id.
    pub subject_key: String,
    /// The lesson id (original case).
    pub lesson_id: String,
    /// When, unix ms (server clock).
    pub at_ms: i64,
    /// The decided progress outcome (bit, best hearts, new subject XP).
    pub decision: CompletionDecision,
    /// The wallet's XP total after the event.
    pub wallet_total_xp: i64,
    /// The wallet's streak after the event.
    pub streak: StreakState,
}

/// Every mutation of the engine's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A subject was imported or replaced (validated, bit indexes assigned).
    SubjectPut(SubjectRecord),
    /// A subject was deleted (no plan referenced it).
    SubjectDeleted {
        /// The subject id.
        id: String,
    },
    /// A plan was imported or replaced.
    PlanPut(PlanRecord),
    /// A plan was deleted.
    PlanDeleted {
        /// The plan id.
        id: String,
    },
    /// A player was created or replaced as a whole (admin edits).
    PlayerPut(Box<PlayerRecord>),
    /// A login: the new session, the device authorized with it (a student's first
    /// device), and the session it replaces (a student's previous one).
    SessionCreated {
        /// The new session.
        session: SessionRecord,
        /// A device authorized by this login, if any.
        new_device: Option<Device>,
        /// Token hash of the replaced session, if any.
        replaces: Option<[u8; 32]>,
    },
    /// A session ended (logout).
    SessionEnded {
        /// Token hash.
        token_hash: [u8; 32],
        /// When, unix ms.
        at_ms: i64,
    },
    /// A lesson completion.
    LessonCompleted(Box<LessonCompleted>),
    /// A player record replaced as a whole, with the sessions the change ends (admin
    /// edits, device changes, password changes and resets). One event, so a crash cannot
    /// keep alive a session that the change ended.
    PlayerUpdated {
        /// The whole new record.
        record: Box<PlayerRecord>,
        /// Token hashes of the sessions ended by this change.
        end_sessions: Vec<[u8; 32]>,
        /// When, unix ms.
        at_ms: i64,
    },
    /// Several sessions ended at once (admin "log out everywhere").
    SessionsEnded {
        /// Token hashes.
        token_hashes: Vec<[u8; 32]>,
        /// When, unix ms.
        at_ms: i64,
    },
    /// An admin's XP adjustment of a wallet (players.md "Wallet").
    XpAdjusted(Box<XpAdjusted>),
    // --- SRS (issue 6): appended, never reorder ---
    /// A season was created or changed (the whole record after the change).
    SeasonPut(super::seasons::SeasonRecord),
    /// A lesson completion with the cards its answers created and/or an idempotency
    /// record.
    LessonCompletedV2(Box<super::srs_ops::LessonCompletedV2>),
    /// A review session: cards, wallet XP and streak, idempotency record.
    ReviewsSubmitted(Box<super::srs_ops::ReviewsSubmitted>),
    /// A probe write of degraded mode (engine/degraded.rs): changes nothing.
    StorageProbe {
        /// When, unix ms.
        at_ms: i64,
    },
    // --- audit and privacy (issue 3): appended, never reorder ---
    /// A change together with the audit records of its request, in one journal record so
    /// that both are durable together (engine/audit.rs).
    Audited {
        /// The change.
        event: Box<Event>,
        /// Its audit and interaction records.
        records: Vec<AuditRecord>,
    },
    /// Audit records of anonymous or failing requests, journaled together.
    AuditBatch(Vec<AuditRecord>),
    /// The audit retention job: records older than `delete_before_ms` are deleted, client
    /// IPs of records older than `clear_ip_before_ms` cleared.
    AuditExpired {
        /// Unix ms.
        delete_before_ms: i64,
        /// Unix ms.
        clear_ip_before_ms: i64,
    },
    /// A player was erased (players.md "Privacy").
    PlayerErased(Box<PlayerErased>),
    /// An admin reset a student's progress in one subject.
    ProgressReset(Box<ProgressReset>),
    // --- groups (issue 3 item 9): appended, never reorder ---
    /// A group (class) was created or changed (the whole record after the change).
    GroupPut(super::groups::GroupRecord),
    /// A group was deleted.
    GroupDeleted {
        /// The group id.
        id: String,
    },
    // --- SRS archive, retention and import (issue 6): appended, never reorder ---
    /// A batch of cards moved to the archive, with their states.
    CardsArchived(Box<super::srs_archive::CardsArchived>),
    /// The weekly retention flagging raised the eligible-for-deletion cutoff.
    ArchiveFlagged(super::srs_archive::ArchiveFlagged),
    /// An admin purged archived cards eligible for deletion.
    ArchivePurged(Box<super::srs_archive::ArchivePurged>),
    /// A review history import: the rebuilt cards replace the imported questions' cards.
    CardsImported(Box<super::srs_import::CardsImported>),
    // --- roster (issue 3 item 4): appended, never reorder ---
    /// A roster import's commit: every new student and change in one event (all rows
    /// or none), with the sessions its password changes end (engine/roster.rs).
    RosterImported(Box<super::roster::RosterImported>),
}

/// An erasure: the player's account, devices and sessions are deleted; progress, cards
/// and wallet are kept under `anon_id`, which nothing links back to the player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerErased {
    /// The erased player.
    pub player_id: String,
    /// The random anonymous id their progress is kept under.
    pub anon_id: String,
    /// When, unix ms.
    pub at_ms: i64,
}

/// A progress reset: the subject's passed lessons, best hearts and subject XP are
/// cleared (the wallet keeps its XP; cards stay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressReset {
    /// The student.
    pub player_id: String,
    /// Lowercased subject id.
    pub subject_key: String,
    /// When, unix ms.
    pub at_ms: i64,
}

/// An admin XP adjustment: the decided new total, with who and why for the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XpAdjusted {
    /// The student.
    pub player_id: String,
    /// The requested change (−100000…100000).
    pub amount: i64,
    /// The admin's reason.
    pub reason: String,
    /// The admin who made it.
    pub by: String,
    /// The wallet's XP total after the event (an adjustment may take it below 0).
    pub wallet_total_xp: i64,
    /// When, unix ms.
    pub at_ms: i64,
}

impl Event {
    /// Whether this event belongs to the wallet checkpoint stream (15 min) as well as to
    /// the progress stream (30 s).
    pub fn touches_wallet(&self) -> bool {
        if let Event::Audited { event, .. } = self {
            return event.touches_wallet();
        }
        matches!(
            self,
            Event::LessonCompleted(_)
                | Event::XpAdjusted(_)
                | Event::LessonCompletedV2(_)
                | Event::ReviewsSubmitted(_)
                | Event::PlayerErased(_)
        )
    }
}
