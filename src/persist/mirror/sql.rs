//! The mirror's SQL: migrations, the position row, and batched
//! `INSERT … ON DUPLICATE KEY UPDATE` upserts (idempotent: re-sending a batch leaves the
//! same rows). Every function takes a connection so callers choose the transaction.

use sqlx::mysql::MySqlConnection;
use sqlx::{MySql, QueryBuilder};

use super::rows::{ArchiveRow, AuditRow, CardRow, Content, PlayerRow, ProgressRow, WalletRow};

/// The versioned migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The mirrored position: `(checkpoint number, encoded position)`, if any.
///
/// # Errors
/// The database error.
pub async fn position(conn: &mut MySqlConnection) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT position FROM mirror_state WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Records the mirrored position (inside the transaction of the rows it covers).
///
/// # Errors
/// The database error.
pub async fn set_position(
    conn: &mut MySqlConnection,
    checkpoint_no: u64,
    position: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mirror_state (id, checkpoint_no, position, updated_at) \
         VALUES (1, ?, ?, UTC_TIMESTAMP(3)) \
         ON DUPLICATE KEY UPDATE checkpoint_no = VALUES(checkpoint_no), \
         position = VALUES(position), updated_at = VALUES(updated_at)",
    )
    .bind(checkpoint_no)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Upserts `rows` in statements of `batch` rows.
///
/// # Errors
/// The database error.
pub async fn upsert_players(
    conn: &mut MySqlConnection,
    rows: &[PlayerRow],
    batch: usize,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(batch.max(1)) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO players (id, email, display_name, role, plan_id, grade, stream, \
             timezone, created_at, disabled, synced_at) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(&r.id)
                .push_bind(&r.email)
                .push_bind(&r.display_name)
                .push_bind(r.role)
                .push_bind(&r.plan_id)
                .push_bind(&r.grade)
                .push_bind(&r.stream)
                .push_bind(&r.timezone)
                .push_bind(&r.created_at)
                .push_bind(r.disabled)
                .push("UTC_TIMESTAMP(3)");
        });
        qb.push(
            " ON DUPLICATE KEY UPDATE email = VALUES(email), display_name = VALUES(display_name), \
             role = VALUES(role), plan_id = VALUES(plan_id), grade = VALUES(grade), \
             stream = VALUES(stream), timezone = VALUES(timezone), created_at = VALUES(created_at), \
             disabled = VALUES(disabled), synced_at = VALUES(synced_at)",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Upserts `rows` in statements of `batch` rows.
///
/// # Errors
/// The database error.
pub async fn upsert_wallets(
    conn: &mut MySqlConnection,
    rows: &[WalletRow],
    batch: usize,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(batch.max(1)) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO wallets (player_id, total_xp, current_streak, longest_streak, \
             last_success_date, last_played_at, synced_at) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(&r.player_id)
                .push_bind(r.total_xp)
                .push_bind(r.current_streak)
                .push_bind(r.longest_streak)
                .push_bind(&r.last_success_date)
                .push_bind(&r.last_played_at)
                .push("UTC_TIMESTAMP(3)");
        });
        qb.push(
            " ON DUPLICATE KEY UPDATE total_xp = VALUES(total_xp), \
             current_streak = VALUES(current_streak), longest_streak = VALUES(longest_streak), \
             last_success_date = VALUES(last_success_date), \
             last_played_at = VALUES(last_played_at), synced_at = VALUES(synced_at)",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Upserts `rows` in statements of `batch` rows.
///
/// # Errors
/// The database error.
pub async fn upsert_progress(
    conn: &mut MySqlConnection,
    rows: &[ProgressRow],
    batch: usize,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(batch.max(1)) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO subject_progress (player_id, subject_id, passed_lessons, total_lessons, \
             completion_percentage, total_xp_earned, passed_bitmap, best_hearts, \
             last_lesson_completed, updated_at, synced_at) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(&r.player_id)
                .push_bind(&r.subject_id)
                .push_bind(r.passed_lessons)
                .push_bind(r.total_lessons)
                .push_bind(r.completion_percentage)
                .push_bind(r.total_xp_earned)
                .push_bind(&r.passed_bitmap)
                .push_bind(&r.best_hearts)
                .push_bind(&r.last_lesson_completed)
                .push_bind(&r.updated_at)
                .push("UTC_TIMESTAMP(3)");
        });
        qb.push(
            " ON DUPLICATE KEY UPDATE passed_lessons = VALUES(passed_lessons), \
             total_lessons = VALUES(total_lessons), \
             completion_percentage = VALUES(completion_percentage), \
             total_xp_earned = VALUES(total_xp_earned), passed_bitmap = VALUES(passed_bitmap), \
             best_hearts = VALUES(best_hearts), \
             last_lesson_completed = VALUES(last_lesson_completed), \
             updated_at = VALUES(updated_at), synced_at = VALUES(synced_at)",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// `DELETE FROM {table} WHERE {column} IN (…)` for `ids`, 500 per statement.
async fn delete_in<T>(
    conn: &mut MySqlConnection,
    table: &str,
    column: &str,
    ids: &[T],
) -> Result<(), sqlx::Error>
where
    for<'t> &'t T: sqlx::Encode<'t, MySql> + sqlx::Type<MySql>,
{
    for chunk in ids.chunks(500) {
        let mut qb = QueryBuilder::<MySql>::new(format!("DELETE FROM {table} WHERE {column} IN ("));
        let mut list = qb.separated(", ");
        for id in chunk {
            list.push_bind(id);
        }
        qb.push(")");
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes rows whose redb row is gone: `(table, key column, ids)`; progress rows are
/// `(player, subject)` pairs.
///
/// # Errors
/// The database error.
pub async fn delete_missing(
    conn: &mut MySqlConnection,
    players: &[String],
    wallets: &[String],
    progress: &[(String, String)],
) -> Result<(), sqlx::Error> {
    delete_in(conn, "players", "id", players).await?;
    delete_in(conn, "wallets", "player_id", wallets).await?;
    for (player, subject) in progress {
        sqlx::query("DELETE FROM subject_progress WHERE player_id = ? AND subject_id = ?")
            .bind(player)
            .bind(subject)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Upserts `rows` into `srs_cards` in statements of `batch` rows.
///
/// # Errors
/// The database error.
pub async fn upsert_cards(
    conn: &mut MySqlConnection,
    rows: &[CardRow],
    batch: usize,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(batch.max(1)) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO srs_cards (player_id, season_id, question_id, state, stability, \
             difficulty, due, last_review, reps, lapses, subject_id, topic_id, synced_at) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(&r.player_id)
                .push_bind(&r.season_id)
                .push_bind(&r.question_id)
                .push_bind(r.state)
                .push_bind(r.stability)
                .push_bind(r.difficulty)
                .push_bind(&r.due)
                .push_bind(&r.last_review)
                .push_bind(r.reps)
                .push_bind(r.lapses)
                .push_bind(&r.subject_id)
                .push_bind(&r.topic_id)
                .push("UTC_TIMESTAMP(3)");
        });
        qb.push(
            " ON DUPLICATE KEY UPDATE state = VALUES(state), stability = VALUES(stability), \
             difficulty = VALUES(difficulty), due = VALUES(due), \
             last_review = VALUES(last_review), reps = VALUES(reps), lapses = VALUES(lapses), \
             subject_id = VALUES(subject_id), topic_id = VALUES(topic_id), \
             synced_at = VALUES(synced_at)",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes `srs_cards` rows whose redb row is gone: `(player, season, lowercased
/// question id)` (question ids compare case-insensitively here, as in the engine). One
/// statement per (player, season) and 500 questions: an archive batch deletes many.
///
/// # Errors
/// The database error.
pub async fn delete_cards(
    conn: &mut MySqlConnection,
    cards: &[(String, String, String)],
) -> Result<(), sqlx::Error> {
    delete_grouped(conn, "srs_cards", cards).await
}

/// Deletes rows of `table` (`srs_cards` or `srs_cards_archive`) by `(player, season,
/// lowercased question id)`, grouped by (player, season).
async fn delete_grouped(
    conn: &mut MySqlConnection,
    table: &str,
    keys: &[(String, String, String)],
) -> Result<(), sqlx::Error> {
    let mut groups: std::collections::BTreeMap<(&str, &str), Vec<&str>> =
        std::collections::BTreeMap::new();
    for (player, season, question) in keys {
        groups
            .entry((player.as_str(), season.as_str()))
            .or_default()
            .push(question.as_str());
    }
    for ((player, season), questions) in groups {
        for chunk in questions.chunks(500) {
            let mut qb =
                QueryBuilder::<MySql>::new(format!("DELETE FROM {table} WHERE player_id = "));
            qb.push_bind(player);
            qb.push(" AND season_id = ");
            qb.push_bind(season);
            qb.push(" AND LOWER(question_id) IN (");
            let mut list = qb.separated(", ");
            for q in chunk {
                list.push_bind(*q);
            }
            qb.push(")");
            qb.build().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Upserts `rows` into `srs_cards_archive` in statements of `batch` rows.
///
/// # Errors
/// The database error.
pub async fn upsert_archived(
    conn: &mut MySqlConnection,
    rows: &[ArchiveRow],
    batch: usize,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(batch.max(1)) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO srs_cards_archive (player_id, season_id, question_id, state, \
             stability, difficulty, due, last_review, reps, lapses, subject_id, topic_id, \
             archived_at, eligible_for_deletion) ",
        );
        qb.push_values(chunk, |mut b, a| {
            let r = &a.card;
            b.push_bind(&r.player_id)
                .push_bind(&r.season_id)
                .push_bind(&r.question_id)
                .push_bind(r.state)
                .push_bind(r.stability)
                .push_bind(r.difficulty)
                .push_bind(&r.due)
                .push_bind(&r.last_review)
                .push_bind(r.reps)
                .push_bind(r.lapses)
                .push_bind(&r.subject_id)
                .push_bind(&r.topic_id)
                .push_bind(&a.archived_at)
                .push_bind(a.eligible_for_deletion);
        });
        qb.push(
            " ON DUPLICATE KEY UPDATE state = VALUES(state), stability = VALUES(stability), difficulty = VALUES(difficulty), due = VALUES(due), \
             last_review = VALUES(last_review), reps = VALUES(reps), lapses = VALUES(lapses), \
             subject_id = VALUES(subject_id), topic_id = VALUES(topic_id), \
             archived_at = VALUES(archived_at), \
             eligible_for_deletion = VALUES(eligible_for_deletion)",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes `srs_cards_archive` rows whose redb row is gone: `(player, season,
/// lowercased question id)`.
///
/// # Errors
/// The database error.
pub async fn delete_archived(
    conn: &mut MySqlConnection,
    keys: &[(String, String, String)],
) -> Result<(), sqlx::Error> {
    delete_grouped(conn, "srs_cards_archive", keys).await
}

/// The weekly retention flagging: archive rows before `cutoff_ms` become
/// `eligible_for_deletion`.
///
/// # Errors
/// The database error.
pub async fn flag_archived(conn: &mut MySqlConnection, cutoff_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE srs_cards_archive SET eligible_for_deletion = TRUE \
         WHERE archived_at < ? AND eligible_for_deletion = FALSE",
    )
    .bind(super::rows::datetime(cutoff_ms))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A purge: deletes the archive rows archived before `before_ms`, of `season` or of
/// every season.
///
/// # Errors
/// The database error.
pub async fn purge_archived(
    conn: &mut MySqlConnection,
    before_ms: i64,
    season: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let before = super::rows::datetime(before_ms);
    let done = match season {
        Some(season) => {
            sqlx::query("DELETE FROM srs_cards_archive WHERE archived_at < ? AND season_id = ?")
                .bind(before)
                .bind(season)
                .execute(&mut *conn)
                .await?
        }
        None => {
            sqlx::query("DELETE FROM srs_cards_archive WHERE archived_at < ?")
                .bind(before)
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(done.rows_affected())
}

/// An erasure: the erased player's live card rows go (their cards come back under
/// `anon` as ordinary rows) and their archive rows move to `anon`.
///
/// # Errors
/// The database error.
pub async fn rekey_cards(
    conn: &mut MySqlConnection,
    player: &str,
    anon: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM srs_cards WHERE player_id = ?")
        .bind(player)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE srs_cards_archive SET player_id = ? WHERE player_id = ?")
        .bind(anon)
        .bind(player)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The mirrored `srs_cards_archive` row of `(player, season, lowercased question)`:
/// `(archived_at, eligible_for_deletion)`, if any.
///
/// # Errors
/// The database error.
pub async fn archived_row(
    conn: &mut MySqlConnection,
    player: &str,
    season: &str,
    question: &str,
) -> Result<Option<(String, bool)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT CAST(archived_at AS CHAR), eligible_for_deletion FROM srs_cards_archive \
         WHERE player_id = ? AND season_id = ? AND LOWER(question_id) = ?",
    )
    .bind(player)
    .bind(season)
    .bind(question)
    .fetch_optional(&mut *conn)
    .await
}

/// Makes sure `srs_cards` has a `LIST COLUMNS(season_id)` partition for every season
/// in `seasons` (persistence.md): each missing one is split off the default partition
/// as `p<n>` (numbered, since season ids can exceed identifier limits once prefixed).
/// `ALTER TABLE` commits implicitly in MariaDB: call it outside a row transaction.
/// Returns the number of partitions added.
///
/// # Errors
/// The database error.
pub async fn ensure_partitions(
    conn: &mut MySqlConnection,
    seasons: &[String],
) -> Result<usize, sqlx::Error> {
    let existing: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'srs_cards'",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut next = existing
        .iter()
        .filter_map(|(name, _)| name.as_deref()?.strip_prefix('p')?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let described: Vec<String> = existing
        .iter()
        .filter_map(|(_, d)| d.as_deref().map(unquote))
        .collect();
    let mut added = 0;
    for season in seasons {
        if described.iter().any(|d| d == season) {
            continue;
        }
        // Partition values cannot be bound parameters: quote the id as a SQL string
        // literal (season ids are validated printable text; quotes and backslashes are
        // escaped here all the same).
        let literal = format!("'{}'", season.replace('\\', "\\\\").replace('\'', "''"));
        let sql = format!(
            "ALTER TABLE srs_cards REORGANIZE PARTITION pdefault INTO \
             (PARTITION p{next} VALUES IN ({literal}), PARTITION pdefault DEFAULT)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
        tracing::info!(
            season,
            partition = next,
            "mirror: srs_cards partition added"
        );
        next += 1;
        added += 1;
    }
    Ok(added)
}

/// `'2026'` → `2026` (information_schema quotes LIST COLUMNS values).
fn unquote(description: &str) -> String {
    let d = description.trim();
    let d = d
        .strip_prefix('\'')
        .and_then(|d| d.strip_suffix('\''))
        .unwrap_or(d);
    d.replace("''", "'").replace("\\\\", "\\")
}

/// The mirrored `subject_progress` row of `(player, subject)` in the shape of
/// [`ProgressRow`] (without `updated_at`, which reconciliation does not compare), if any.
///
/// # Errors
/// The database error.
pub async fn progress_row(
    conn: &mut MySqlConnection,
    player: &str,
    subject: &str,
) -> Result<Option<ProgressRow>, sqlx::Error> {
    #[allow(clippy::type_complexity)]
    let row: Option<(u64, u64, u64, Vec<u8>, String, Option<String>)> = sqlx::query_as(
        "SELECT passed_lessons, total_lessons, total_xp_earned, passed_bitmap, \
         CAST(best_hearts AS CHAR), last_lesson_completed FROM subject_progress \
         WHERE player_id = ? AND subject_id = ?",
    )
    .bind(player)
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(
        row.map(|(passed, total, xp, bitmap, hearts, last)| ProgressRow {
            player_id: player.to_owned(),
            subject_id: subject.to_owned(),
            passed_lessons: passed,
            total_lessons: total,
            completion_percentage: 0.0,
            total_xp_earned: xp,
            passed_bitmap: bitmap,
            best_hearts: hearts,
            last_lesson_completed: last,
            updated_at: String::new(),
        }),
    )
}

/// The mirrored `srs_cards` row of `(player, season, lowercased question)`, if any.
///
/// # Errors
/// The database error.
pub async fn card_row(
    conn: &mut MySqlConnection,
    player: &str,
    season: &str,
    question: &str,
) -> Result<Option<CardRow>, sqlx::Error> {
    #[allow(clippy::type_complexity)]
    let row: Option<(
        String,
        u8,
        f64,
        f64,
        String,
        Option<String>,
        u32,
        u32,
        String,
        Option<String>,
    )> = sqlx::query_as(
        "SELECT question_id, state, stability, difficulty, CAST(due AS CHAR), \
             CAST(last_review AS CHAR), reps, lapses, subject_id, topic_id FROM srs_cards \
             WHERE player_id = ? AND season_id = ? AND LOWER(question_id) = ?",
    )
    .bind(player)
    .bind(season)
    .bind(question)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(
        |(
            question_id,
            state,
            stability,
            difficulty,
            due,
            last_review,
            reps,
            lapses,
            subject_id,
            topic_id,
        )| {
            CardRow {
                player_id: player.to_owned(),
                season_id: season.to_owned(),
                question_id,
                state,
                stability,
                difficulty,
                due,
                last_review,
                reps,
                lapses,
                subject_id,
                topic_id,
            }
        },
    ))
}

/// Replaces the content tables with `content` (small: one row per subject and lesson).
///
/// # Errors
/// The database error.
pub async fn replace_content(
    conn: &mut MySqlConnection,
    content: &Content,
    batch: usize,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM content_lessons")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM content_subjects")
        .execute(&mut *conn)
        .await?;
    let subjects: Vec<_> = content.values().collect();
    for chunk in subjects.chunks(batch.max(1)) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO content_subjects (id, title, is_published, lesson_count) ",
        );
        qb.push_values(chunk, |mut b, s| {
            b.push_bind(&s.id)
                .push_bind(&s.title)
                .push_bind(s.is_published)
                .push_bind(s.lessons.len() as u64);
        });
        qb.build().execute(&mut *conn).await?;
    }
    let lessons: Vec<_> = content.values().flat_map(|s| &s.lessons).collect();
    for chunk in lessons.chunks(batch.max(1)) {
        let mut qb = QueryBuilder::<MySql>::new(
            "INSERT INTO content_lessons (id, subject_id, topic_id, bit_index, title) ",
        );
        qb.push_values(chunk, |mut b, l| {
            b.push_bind(&l.id)
                .push_bind(&l.subject_id)
                .push_bind(&l.topic_id)
                .push_bind(l.bit_index)
                .push_bind(&l.title);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The two audit tables: `(interaction, name)`.
const AUDIT_TABLES: [(bool, &str); 2] = [(false, "security_events"), (true, "interaction_log")];

/// Upserts audit rows into `security_events` / `interaction_log` in statements of
/// `batch` rows (a re-sent row overwrites itself: erasure and IP expiry rewrite rows).
///
/// # Errors
/// The database error.
pub async fn upsert_audit(
    conn: &mut MySqlConnection,
    rows: &[AuditRow],
    batch: usize,
) -> Result<(), sqlx::Error> {
    for (interaction, table) in AUDIT_TABLES {
        let mine: Vec<&AuditRow> = rows
            .iter()
            .filter(|r| r.interaction == interaction)
            .collect();
        for chunk in mine.chunks(batch.max(1)) {
            let mut qb = QueryBuilder::<MySql>::new(format!(
                "INSERT INTO {table} (id, at, kind, player_id, actor_id, device_id, client_ip, \
                 endpoint, result, detail, synced_at) "
            ));
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(&r.at)
                    .push_bind(r.kind)
                    .push_bind(&r.player_id)
                    .push_bind(&r.actor_id)
                    .push_bind(&r.device_id)
                    .push_bind(&r.client_ip)
                    .push_bind(&r.endpoint)
                    .push_bind(&r.result)
                    .push_bind(&r.detail)
                    .push("UTC_TIMESTAMP(3)");
            });
            qb.push(
                " ON DUPLICATE KEY UPDATE at = VALUES(at), kind = VALUES(kind), \
                 player_id = VALUES(player_id), actor_id = VALUES(actor_id), \
                 device_id = VALUES(device_id), client_ip = VALUES(client_ip), \
                 endpoint = VALUES(endpoint), result = VALUES(result), \
                 detail = VALUES(detail), synced_at = VALUES(synced_at)",
            );
            qb.build().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Deletes the audit rows of records gone from redb (by record id, from both tables).
///
/// # Errors
/// The database error.
pub async fn delete_audit(conn: &mut MySqlConnection, ids: &[u64]) -> Result<(), sqlx::Error> {
    for (_, table) in AUDIT_TABLES {
        delete_in(conn, table, "id", ids).await?;
    }
    Ok(())
}

/// Applies redb's audit retention marks (unix ms; 0 = none yet): rows older than
/// `deleted_before_ms` are deleted and client IPs older than `ip_cleared_before_ms`
/// cleared, as `persist::audit` did in redb.
///
/// # Errors
/// The database error.
pub async fn audit_retention(
    conn: &mut MySqlConnection,
    deleted_before_ms: i64,
    ip_cleared_before_ms: i64,
) -> Result<(), sqlx::Error> {
    for (_, table) in AUDIT_TABLES {
        if deleted_before_ms > 0 {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE at < ?"
            )))
            .bind(super::rows::datetime(deleted_before_ms))
            .execute(&mut *conn)
            .await?;
        }
        if ip_cleared_before_ms > 0 {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET client_ip = NULL WHERE at < ? AND client_ip IS NOT NULL"
            )))
            .bind(super::rows::datetime(ip_cleared_before_ms))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
