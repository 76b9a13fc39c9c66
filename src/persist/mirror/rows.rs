//! Turns checkpointed redb records into the mirror's SQL rows (persistence.md table
//! list): decoding, dates as MariaDB literals, best hearts keyed by lesson id, and
//! completion counted against the subject's current lessons. No I/O.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use crate::content::catalog::SubjectRecord;
use crate::players::account::{PlayerRecord, Role};
use crate::players::wallet::{WalletRecord, epoch_day_to_date};
use crate::progress::state::{BestHearts, ProgressRecord};

/// A `players` row (no password hash, devices or grants: reports need none).
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerRow {
    /// Player id.
    pub id: String,
    /// Login email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `student`, `teacher` or `admin`.
    pub role: &'static str,
    /// Plan id.
    pub plan_id: Option<String>,
    /// Grade label.
    pub grade: Option<String>,
    /// Stream label.
    pub stream: Option<String>,
    /// IANA zone.
    pub timezone: String,
    /// `YYYY-MM-DD HH:MM:SS.fff` UTC.
    pub created_at: String,
    /// Disabled account.
    pub disabled: bool,
}

/// A `wallets` row.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletRow {
    /// Player id.
    pub player_id: String,
    /// Total XP.
    pub total_xp: i64,
    /// Stored streak (as of the last success day).
    pub current_streak: u32,
    /// Longest streak.
    pub longest_streak: u32,
    /// `YYYY-MM-DD` in the student's zone.
    pub last_success_date: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS.fff` UTC.
    pub last_played_at: Option<String>,
}

/// A `subject_progress` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressRow {
    /// Player id.
    pub player_id: String,
    /// Subject id (original case when the subject exists, else the stored key).
    pub subject_id: String,
    /// Passed lessons among the subject's current lessons.
    pub passed_lessons: u64,
    /// The subject's lessons (published or not); 0 if the subject is gone.
    pub total_lessons: u64,
    /// `passed / total × 100`, two decimals.
    pub completion_percentage: f64,
    /// XP earned in the subject.
    pub total_xp_earned: u64,
    /// Passed bit indexes, roaring portable serialization (as stored).
    pub passed_bitmap: Vec<u8>,
    /// `{"lesson id": best hearts}` as JSON text.
    pub best_hearts: String,
    /// Last lesson completed.
    pub last_lesson_completed: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS.fff` UTC.
    pub updated_at: String,
}

/// A `content_lessons` row.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonRow {
    /// Lesson id.
    pub id: String,
    /// Subject id.
    pub subject_id: String,
    /// Topic id.
    pub topic_id: String,
    /// Bit index in `passed_bitmap`.
    pub bit_index: u32,
    /// Title.
    pub title: String,
}

/// What the mirror knows of one subject: its `content_subjects` row, its lessons, and
/// the bit → lesson map for progress rows.
#[derive(Debug, Clone, Default)]
pub struct SubjectInfo {
    /// Subject id, original case.
    pub id: String,
    /// Title.
    pub title: String,
    /// Whether published.
    pub is_published: bool,
    /// Lessons with a bit index.
    pub lessons: Vec<LessonRow>,
    /// Bit index → lesson id.
    pub by_bit: HashMap<u32, String>,
    /// Bit indexes of current lessons.
    pub current: RoaringBitmap,
    /// Lowercased question id → (question id, topic id) for card rows.
    pub questions: HashMap<String, (String, String)>,
}

/// The content the mirror joins progress rows with: lowercased subject id → info.
pub type Content = HashMap<String, SubjectInfo>;

/// Why a stored record could not become a row.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct RowError {
    what: String,
    message: String,
}

fn err(what: impl Into<String>, message: impl std::fmt::Display) -> RowError {
    RowError {
        what: what.into(),
        message: message.to_string(),
    }
}

/// An `srs_cards` row.
#[derive(Debug, Clone, PartialEq)]
pub struct CardRow {
    /// Player id.
    pub player_id: String,
    /// Season id.
    pub season_id: String,
    /// Question id (original case when the question still exists).
    pub question_id: String,
    /// 1 learning, 2 review, 3 relearning.
    pub state: u8,
    /// FSRS stability, days.
    pub stability: f64,
    /// FSRS difficulty, 1–10.
    pub difficulty: f64,
    /// `YYYY-MM-DD HH:MM:SS.fff` UTC.
    pub due: String,
    /// Last review, same format.
    pub last_review: Option<String>,
    /// Reviews.
    pub reps: u32,
    /// Lapses.
    pub lapses: u32,
    /// Subject of the question ("" when the question is gone from the content).
    pub subject_id: String,
    /// Topic of the question.
    pub topic_id: Option<String>,
}

/// A `srs_cards` row from a stored card; `key` is `player␟season␟question`.
///
/// # Errors
/// A malformed key or an undecodable record.
pub fn card(key: &str, bytes: &[u8], content: &Content) -> Result<CardRow, RowError> {
    let mut parts = key.splitn(3, '\u{1f}');
    let (Some(player), Some(season), Some(question)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(err(format!("card {key}"), "malformed key"));
    };
    let c: crate::srs::Card =
        crate::persist::codec::decode(bytes).map_err(|e| err(format!("card {key}"), e))?;
    let found = content.values().find_map(|s| {
        s.questions
            .get(question)
            .map(|(q, topic)| (q.clone(), s.id.clone(), topic.clone()))
    });
    let (question_id, subject_id, topic_id) = match found {
        Some((q, subject, topic)) => (q, subject, Some(topic)),
        None => (question.to_owned(), String::new(), None),
    };
    Ok(CardRow {
        player_id: player.to_owned(),
        season_id: season.to_owned(),
        question_id,
        state: c.state.as_u8(),
        stability: f64::from(c.stability),
        difficulty: f64::from(c.difficulty),
        due: datetime(c.due_ms),
        last_review: c.last_review_ms.map(datetime),
        reps: c.reps,
        lapses: c.lapses,
        subject_id,
        topic_id,
    })
}

/// An `srs_cards_archive` row: the card's columns plus when it was archived.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveRow {
    /// The card's columns.
    pub card: CardRow,
    /// `YYYY-MM-DD HH:MM:SS.fff` UTC.
    pub archived_at: String,
    /// Archived before the retention cutoff in force.
    pub eligible_for_deletion: bool,
}

/// An `srs_cards_archive` row from a stored archive row; `key` is
/// `season␟player␟question` (the archive table's order), `bytes` `[archived_at_ms: i64
/// BE][card]`, `cutoff_ms` the retention cutoff (none before the first flagging).
///
/// # Errors
/// A malformed key or value, or an undecodable card.
pub fn archived_card(
    key: &str,
    bytes: &[u8],
    content: &Content,
    cutoff_ms: Option<i64>,
) -> Result<ArchiveRow, RowError> {
    let mut parts = key.splitn(3, '\u{1f}');
    let (Some(season), Some(player), Some(question)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(err(format!("archived card {key}"), "malformed key"));
    };
    let Some((at, card_bytes)) = bytes.split_first_chunk::<8>() else {
        return Err(err(format!("archived card {key}"), "value too short"));
    };
    let at_ms = i64::from_be_bytes(*at);
    let card = card(
        &format!("{player}\u{1f}{season}\u{1f}{question}"),
        card_bytes,
        content,
    )?;
    Ok(ArchiveRow {
        card,
        archived_at: datetime(at_ms),
        eligible_for_deletion: cutoff_ms.is_some_and(|c| at_ms < c),
    })
}

/// Unix milliseconds as a MariaDB `DATETIME(3)` literal (UTC).
pub fn datetime(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        Err(_) => "1970-01-01 00:00:00.000".to_owned(),
    }
}

/// The content info of stored subject records.
///
/// # Errors
/// A record that does not decode or whose document does not parse.
pub fn content(subjects: &[(String, Vec<u8>)]) -> Result<Content, RowError> {
    let mut out = Content::new();
    for (key, bytes) in subjects {
        let record: SubjectRecord =
            crate::persist::codec::decode(bytes).map_err(|e| err(format!("subject {key}"), e))?;
        let doc = record
            .document()
            .map_err(|e| err(format!("subject {key}"), e))?;
        let mut info = SubjectInfo {
            id: record.id.clone(),
            title: doc.title.clone(),
            is_published: doc.is_published,
            ..SubjectInfo::default()
        };
        for topic in doc
            .tracks
            .iter()
            .flat_map(|t| &t.units)
            .flat_map(|u| &u.topics)
        {
            for lesson in &topic.lessons {
                for stage in &lesson.stages {
                    if let Some(q) = &stage.id
                        && stage.kind == crate::content::model::StageType::Question
                    {
                        info.questions
                            .insert(q.to_ascii_lowercase(), (q.clone(), topic.id.clone()));
                    }
                }
                let Some(bit) = record.bit_index(&lesson.id.to_ascii_lowercase()) else {
                    continue;
                };
                info.by_bit.insert(bit, lesson.id.clone());
                info.current.insert(bit);
                info.lessons.push(LessonRow {
                    id: lesson.id.clone(),
                    subject_id: record.id.clone(),
                    topic_id: topic.id.clone(),
                    bit_index: bit,
                    title: lesson.title.clone(),
                });
            }
        }
        out.insert(key.clone(), info);
    }
    Ok(out)
}

/// A `players` row from a stored player record.
///
/// # Errors
/// An undecodable record.
pub fn player(id: &str, bytes: &[u8]) -> Result<PlayerRow, RowError> {
    let p: PlayerRecord =
        crate::persist::codec::decode(bytes).map_err(|e| err(format!("player {id}"), e))?;
    Ok(PlayerRow {
        id: p.id,
        email: p.email,
        display_name: p.display_name,
        role: match p.role {
            Role::Student => "student",
            Role::Teacher => "teacher",
            Role::Admin => "admin",
        },
        plan_id: p.plan_id,
        grade: p.grade,
        stream: p.stream,
        timezone: p.timezone,
        created_at: datetime(p.created_at_ms),
        disabled: p.disabled,
    })
}

/// A `wallets` row from a stored wallet record.
///
/// # Errors
/// An undecodable record.
pub fn wallet(player_id: &str, bytes: &[u8]) -> Result<WalletRow, RowError> {
    let w: WalletRecord =
        crate::persist::codec::decode(bytes).map_err(|e| err(format!("wallet {player_id}"), e))?;
    Ok(WalletRow {
        player_id: player_id.to_owned(),
        total_xp: w.total_xp,
        current_streak: w.current_streak,
        longest_streak: w.longest_streak,
        last_success_date: w
            .last_success_day
            .and_then(epoch_day_to_date)
            .map(|d| d.to_string()),
        last_played_at: w.last_played_at_ms.map(datetime),
    })
}

/// A `subject_progress` row from a stored progress record, joined with `content`.
///
/// # Errors
/// An undecodable record or bitmap.
pub fn progress(
    player_id: &str,
    subject_key: &str,
    bytes: &[u8],
    content: &Content,
) -> Result<ProgressRow, RowError> {
    let what = || format!("progress {player_id}/{subject_key}");
    let r: ProgressRecord = crate::persist::codec::decode(bytes).map_err(|e| err(what(), e))?;
    let passed =
        RoaringBitmap::deserialize_from(r.passed.as_slice()).map_err(|e| err(what(), e))?;
    let info = content.get(subject_key);
    let (passed_lessons, total_lessons) = match info {
        Some(i) => ((&passed & &i.current).len(), i.current.len()),
        None => (passed.len(), 0),
    };
    let completion_percentage = if total_lessons == 0 {
        0.0
    } else {
        (passed_lessons as f64 * 10_000.0 / total_lessons as f64).round() / 100.0
    };
    let mut hearts = serde_json::Map::new();
    for (bit, h) in BestHearts::from_bytes(&r.best_hearts).iter() {
        let lesson = info
            .and_then(|i| i.by_bit.get(&bit).cloned())
            .unwrap_or_else(|| format!("#{bit}"));
        hearts.insert(lesson, serde_json::Value::from(h));
    }
    Ok(ProgressRow {
        player_id: player_id.to_owned(),
        subject_id: info.map_or_else(|| subject_key.to_owned(), |i| i.id.clone()),
        passed_lessons,
        total_lessons,
        completion_percentage,
        total_xp_earned: r.total_xp_earned,
        passed_bitmap: r.passed,
        best_hearts: serde_json::Value::Object(hearts).to_string(),
        last_lesson_completed: r.last_lesson_completed,
        updated_at: datetime(r.updated_at_ms),
    })
}

/// A `security_events` or `interaction_log` row (players.md "Audit and interaction
/// logs"; which table by [`AuditKind::is_interaction`](crate::players::audit::AuditKind)).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Record id (unique; derived from the journal sequence).
    pub id: u64,
    /// Whether it goes to `interaction_log` (else `security_events`).
    pub interaction: bool,
    /// `YYYY-MM-DD HH:MM:SS.fff` UTC.
    pub at: String,
    /// API name of the kind (`login_failed`, `lesson_attempt`, …).
    pub kind: &'static str,
    /// The player concerned.
    pub player_id: Option<String>,
    /// Who acted, when someone else.
    pub actor_id: Option<String>,
    /// Device id.
    pub device_id: Option<String>,
    /// Client IP (until `audit.ip_retention_days`).
    pub client_ip: Option<String>,
    /// `METHOD /route/pattern` or `cli`.
    pub endpoint: Option<String>,
    /// `ok` or the error code.
    pub result: String,
    /// The details as a JSON object of strings.
    pub detail: String,
}

/// The mirror row of the audit record stored under `time_key`.
pub fn audit(time_key: &[u8; 16], record: &crate::players::audit::AuditRecord) -> AuditRow {
    let id = crate::players::audit::split_time_key(time_key).map_or(0, |(_, id)| id);
    let detail: serde_json::Map<String, serde_json::Value> = record
        .detail
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    use crate::players::audit::cut;
    // Columns hold at most 200 characters (`migrations/0002`), the records' own limit.
    let text = |v: &Option<String>| v.as_deref().map(cut);
    AuditRow {
        id,
        interaction: record.kind.is_interaction(),
        at: datetime(record.at_ms),
        kind: record.kind.as_str(),
        player_id: text(&record.player_id),
        actor_id: text(&record.actor_id),
        device_id: text(&record.device_id),
        client_ip: text(&record.client_ip),
        endpoint: text(&record.endpoint),
        result: cut(&record.result),
        detail: serde_json::Value::Object(detail).to_string(),
    }
}
