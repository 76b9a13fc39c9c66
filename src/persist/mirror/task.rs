//! The mirror task: connect and migrate, then rounds of "read the queue after the
//! position, re-read those rows from redb, upsert them and the new position in one
//! MariaDB transaction", with exponential backoff on errors and a full
//! resynchronization when the position cannot be trusted (docs/mirror.md).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};

use super::read::{self, Table};
use super::rows::{self, Content};
use super::{CATCHING_UP, Feed, OK, log, sql};
use crate::config::MirrorConfig;
use crate::engine::Engine;

/// Connecting (and migrating) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One round (one MariaDB transaction) may take this long before it is abandoned.
const ROUND_TIMEOUT: Duration = Duration::from_secs(300);
/// When idle, the task re-checks the queue this often even without a wake-up.
const IDLE_RECHECK: Duration = Duration::from_secs(30);

type Error = String;

fn db_err(e: impl std::fmt::Display) -> Error {
    e.to_string()
}

/// Runs the mirror until `shutdown` turns true (or its sender is dropped). Returns at
/// once when no mirror is configured. Never touches the engine's locks: it reads redb
/// and MariaDB only.
pub async fn run(engine: Engine, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let cfg = engine.config().mirror.clone();
    let feed = engine.mirror_feed().clone();
    if !cfg.enabled() {
        return;
    }
    let options = match MySqlConnectOptions::from_str(&cfg.url) {
        Ok(o) => o,
        Err(e) => {
            // The URL itself is a secret: name the problem, not the value.
            tracing::error!(error = %e, "mirror.url cannot be parsed; the mirror is off");
            feed.failed("mirror.url cannot be parsed".into());
            return;
        }
    };
    let mut worker = Worker {
        engine,
        cfg: cfg.clone(),
        feed: feed.clone(),
        options,
        conn: None,
        position: None,
        content: None,
    };
    let initial = Duration::from_millis(cfg.backoff_initial_ms);
    let max = Duration::from_millis(cfg.backoff_max_ms);
    let mut delay = initial;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let step = tokio::select! {
            r = tokio::time::timeout(ROUND_TIMEOUT, worker.step()) => {
                r.unwrap_or_else(|_| Err("round timed out".into()))
            }
            _ = shutdown.changed() => return,
        };
        match step {
            Ok(true) => {
                delay = initial;
            }
            Ok(false) => {
                delay = initial;
                feed.set_state(OK);
                feed.caught_up();
                tokio::select! {
                    _ = feed.notify.notified() => {}
                    _ = tokio::time::sleep(IDLE_RECHECK) => {}
                    _ = shutdown.changed() => return,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "mirror round failed");
                feed.failed(e);
                worker.conn = None;
                worker.position = None;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
                delay = (delay * 2).min(max);
            }
        }
    }
}

struct Worker {
    engine: Engine,
    cfg: MirrorConfig,
    feed: std::sync::Arc<Feed>,
    options: MySqlConnectOptions,
    conn: Option<MySqlConnection>,
    /// The position read from (and written to) MariaDB; `None` = must resynchronize.
    position: Option<Vec<u8>>,
    content: Option<Content>,
}

/// Runs a redb read on a blocking thread.
async fn blocking<T: Send + 'static>(
    engine: &Engine,
    f: impl FnOnce(&redb::Database) -> Result<T, redb::Error> + Send + 'static,
) -> Result<T, Error> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || match engine.inner().store.db().get() {
        Some(db) => f(&db),
        None => Err(redb::Error::DatabaseClosed),
    })
    .await
    .map_err(db_err)?
    .map_err(|e| format!("redb: {e}"))
}

impl Worker {
    /// One unit of work. `Ok(true)`: more may be pending; `Ok(false)`: caught up.
    async fn step(&mut self) -> Result<bool, Error> {
        if self.conn.is_none() {
            let mut conn = tokio::time::timeout(
                CONNECT_TIMEOUT,
                MySqlConnection::connect_with(&self.options),
            )
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(db_err)?;
            sql::MIGRATOR
                .run_direct(None, &mut conn, false)
                .await
                .map_err(db_err)?;
            let seasons = blocking(&self.engine, read::season_ids).await?;
            sql::ensure_partitions(&mut conn, &seasons)
                .await
                .map_err(db_err)?;
            let position = sql::position(&mut conn).await.map_err(db_err)?;
            self.conn = Some(conn);
            let meta = blocking(&self.engine, log::meta).await?;
            self.position = position.filter(|p| {
                let n = log::checkpoint_of(p);
                n > meta.unlogged && n >= meta.pruned && n <= meta.head + 1
            });
            if let Some(p) = &self.position {
                let p = p.clone();
                let pending = blocking(&self.engine, move |db| log::count_after(db, &p)).await?;
                self.feed
                    .reset_pending(pending, self.engine.now().as_millisecond());
            }
            tracing::info!(resync = self.position.is_none(), "mirror connected");
        }
        if self.content.is_none() {
            self.content = Some(self.load_content().await?);
        }
        let Some(position) = self.position.clone() else {
            self.feed.set_state(CATCHING_UP);
            self.full_resync().await?;
            return Ok(true);
        };
        let limit = self.cfg.queue_capacity;
        let p = position.clone();
        let entries = blocking(&self.engine, move |db| log::after(db, &p, limit)).await?;
        let Some(last) = entries.last().cloned() else {
            let n = log::checkpoint_of(&position);
            blocking(&self.engine, move |db| log::prune_below(db, n)).await?;
            self.feed.reset_pending(0, 0);
            return Ok(false);
        };
        self.feed.set_state(CATCHING_UP);
        let sent = self.send(&entries, &last).await?;
        self.position = Some(last);
        self.feed.sent(entries.len() as u64, sent);
        Ok(true)
    }

    async fn load_content(&self) -> Result<Content, Error> {
        let subjects = blocking(&self.engine, read::subjects).await?;
        rows::content(&subjects).map_err(db_err)
    }

    /// Sends the rows of queue `entries` and the new position `last` in one transaction.
    async fn send(&mut self, entries: &[Vec<u8>], last: &[u8]) -> Result<u64, Error> {
        let mut players = Vec::new();
        let mut wallets = Vec::new();
        let mut progress = Vec::new();
        let mut cards = Vec::new();
        let mut content_changed = false;
        let mut seasons_changed = false;
        let mut seen = std::collections::HashSet::new();
        for entry in entries {
            let key = log::row_key_of(entry);
            if !seen.insert(key.to_owned()) {
                continue;
            }
            if key == log::CONTENT {
                content_changed = true;
                continue;
            }
            if key == log::SEASONS {
                seasons_changed = true;
                continue;
            }
            let (kind, rest) = key.split_at(key.find('\u{1f}').unwrap_or(0));
            let rest = rest.trim_start_matches('\u{1f}').to_owned();
            match kind.chars().next() {
                Some(log::PLAYER) => players.push(rest),
                Some(log::WALLET) => wallets.push(rest),
                Some(log::PROGRESS) => progress.push(rest),
                Some(log::CARD) => cards.push(rest),
                _ => tracing::warn!(key, "unknown mirror queue key; skipped"),
            }
        }
        if content_changed {
            self.content = Some(self.load_content().await?);
        }
        if seasons_changed {
            // Before the row transaction: ALTER TABLE commits implicitly.
            let seasons = blocking(&self.engine, read::season_ids).await?;
            let conn = self.conn.as_mut().ok_or("not connected")?;
            sql::ensure_partitions(conn, &seasons)
                .await
                .map_err(db_err)?;
        }
        let batch = self.cfg.batch_rows;
        let (rows, missing) = self.read_rows(players, wallets, progress, cards).await?;
        let n = log::checkpoint_of(last);
        let content = self.content.as_ref().filter(|_| content_changed);
        let conn = self.conn.as_mut().ok_or("not connected")?;
        let mut tx = conn.begin().await.map_err(db_err)?;
        if let Some(content) = content {
            sql::replace_content(&mut tx, content, batch)
                .await
                .map_err(db_err)?;
        }
        rows.upsert(&mut tx, batch).await?;
        sql::delete_missing(
            &mut tx,
            &missing.players,
            &missing.wallets,
            &missing.progress,
        )
        .await
        .map_err(db_err)?;
        sql::delete_cards(&mut tx, &missing.cards)
            .await
            .map_err(db_err)?;
        sql::set_position(&mut tx, n, last).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(rows.len() as u64)
    }

    async fn read_rows(
        &self,
        players: Vec<String>,
        wallets: Vec<String>,
        progress: Vec<String>,
        cards: Vec<String>,
    ) -> Result<(Rows, Missing), Error> {
        let (p, w, g, k) = blocking(&self.engine, move |db| {
            Ok((
                read::rows(db, Table::Players, &players)?,
                read::rows(db, Table::Wallets, &wallets)?,
                read::rows(db, Table::Progress, &progress)?,
                read::rows(db, Table::Cards, &cards)?,
            ))
        })
        .await?;
        let mut rows = Rows::default();
        let mut missing = Missing::default();
        self.convert(&mut rows, &mut missing, p, w, g)?;
        self.convert_cards(&mut rows, &mut missing, k)?;
        Ok((rows, missing))
    }

    fn convert_cards(
        &self,
        rows: &mut Rows,
        missing: &mut Missing,
        cards: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), Error> {
        let empty = Content::new();
        let content = self.content.as_ref().unwrap_or(&empty);
        for (key, bytes) in cards {
            match bytes {
                Some(b) => rows
                    .cards
                    .push(rows::card(&key, &b, content).map_err(db_err)?),
                None => {
                    let mut parts = key.splitn(3, '\u{1f}');
                    if let (Some(p), Some(s), Some(q)) = (parts.next(), parts.next(), parts.next())
                    {
                        missing
                            .cards
                            .push((p.to_owned(), s.to_owned(), q.to_owned()));
                    }
                }
            }
        }
        Ok(())
    }

    fn convert(
        &self,
        rows: &mut Rows,
        missing: &mut Missing,
        players: Vec<(String, Option<Vec<u8>>)>,
        wallets: Vec<(String, Option<Vec<u8>>)>,
        progress: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), Error> {
        let empty = Content::new();
        let content = self.content.as_ref().unwrap_or(&empty);
        for (id, bytes) in players {
            match bytes {
                Some(b) => rows.players.push(rows::player(&id, &b).map_err(db_err)?),
                None => missing.players.push(id),
            }
        }
        for (id, bytes) in wallets {
            match bytes {
                Some(b) => rows.wallets.push(rows::wallet(&id, &b).map_err(db_err)?),
                None => missing.wallets.push(id),
            }
        }
        for (key, bytes) in progress {
            let (player, subject) = key.split_once('\u{1f}').unwrap_or((key.as_str(), ""));
            match bytes {
                Some(b) => rows
                    .progress
                    .push(rows::progress(player, subject, &b, content).map_err(db_err)?),
                None => {
                    let subject = content
                        .get(subject)
                        .map_or_else(|| subject.to_owned(), |i| i.id.clone());
                    missing.progress.push((player.to_owned(), subject));
                }
            }
        }
        Ok(())
    }

    /// Copies every row of redb, then sets the position after the queue's head as read
    /// *before* copying (so every queued checkpoint up to it is covered by the copy).
    async fn full_resync(&mut self) -> Result<(), Error> {
        let meta = blocking(&self.engine, log::meta).await?;
        tracing::info!(head = meta.head, "mirror: full resynchronization from redb");
        let content = self.load_content().await?;
        self.content = Some(content);
        let batch = self.cfg.batch_rows;
        {
            let conn = self.conn.as_mut().ok_or("not connected")?;
            let mut tx = conn.begin().await.map_err(db_err)?;
            if let Some(content) = &self.content {
                sql::replace_content(&mut tx, content, batch)
                    .await
                    .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
        }
        let chunk = self.cfg.queue_capacity;
        let mut sent = 0u64;
        for table in [
            Table::Players,
            Table::Wallets,
            Table::Progress,
            Table::Cards,
        ] {
            let mut after: Option<String> = None;
            loop {
                let a = after.clone();
                let part = blocking(&self.engine, move |db| {
                    read::scan(db, table, a.as_deref(), chunk)
                })
                .await?;
                let Some((last_key, _)) = part.last() else {
                    break;
                };
                after = Some(last_key.clone());
                let mut rows = Rows::default();
                let mut missing = Missing::default();
                let part: Vec<_> = part.into_iter().map(|(k, v)| (k, Some(v))).collect();
                match table {
                    Table::Players => {
                        self.convert(&mut rows, &mut missing, part, vec![], vec![])?
                    }
                    Table::Wallets => {
                        self.convert(&mut rows, &mut missing, vec![], part, vec![])?
                    }
                    Table::Progress => {
                        self.convert(&mut rows, &mut missing, vec![], vec![], part)?
                    }
                    Table::Cards => self.convert_cards(&mut rows, &mut missing, part)?,
                }
                let conn = self.conn.as_mut().ok_or("not connected")?;
                let mut tx = conn.begin().await.map_err(db_err)?;
                rows.upsert(&mut tx, batch).await?;
                tx.commit().await.map_err(db_err)?;
                sent += rows.len() as u64;
                self.feed.sent(0, rows.len() as u64);
            }
        }
        let n = meta.head + 1;
        let position = log::position_before(n);
        let conn = self.conn.as_mut().ok_or("not connected")?;
        sql::set_position(conn, n, &position)
            .await
            .map_err(db_err)?;
        let p = position.clone();
        let pending = blocking(&self.engine, move |db| log::count_after(db, &p)).await?;
        self.feed
            .reset_pending(pending, self.engine.now().as_millisecond());
        self.position = Some(position);
        tracing::info!(rows = sent, "mirror: full resynchronization done");
        Ok(())
    }
}

#[derive(Default)]
struct Rows {
    players: Vec<rows::PlayerRow>,
    wallets: Vec<rows::WalletRow>,
    progress: Vec<rows::ProgressRow>,
    cards: Vec<rows::CardRow>,
}

impl Rows {
    fn len(&self) -> usize {
        self.players.len() + self.wallets.len() + self.progress.len() + self.cards.len()
    }

    /// Upserts every row, players then wallets then progress, in `batch`-row statements.
    async fn upsert(&self, tx: &mut MySqlConnection, batch: usize) -> Result<(), Error> {
        sql::upsert_players(tx, &self.players, batch)
            .await
            .map_err(db_err)?;
        sql::upsert_wallets(tx, &self.wallets, batch)
            .await
            .map_err(db_err)?;
        sql::upsert_progress(tx, &self.progress, batch)
            .await
            .map_err(db_err)?;
        sql::upsert_cards(tx, &self.cards, batch)
            .await
            .map_err(db_err)
    }
}

#[derive(Default)]
struct Missing {
    players: Vec<String>,
    wallets: Vec<String>,
    progress: Vec<(String, String)>,
    cards: Vec<(String, String, String)>,
}
