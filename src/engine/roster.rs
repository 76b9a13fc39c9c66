//! Roster imports (players.md, api.md "players … import"): a dry run that reports what
//! a CSV roster would do, and the commit that applies all of its rows in ONE journal
//! event ([`Event::RosterImported`]) or none.
//!
//! The commit is shaped so that the admin lock is held only briefly: rows are planned
//! against the current state, their passwords are hashed outside every lock (argon2 is
//! ~19 ms per password at the default cost, so 10,000 rows are minutes of CPU: chunks run
//! on rayon's pool, one core per thread, from a blocking task, never on the async
//! threads), and only then are the admin lock taken, the rows planned again, the
//! event decided, journaled and applied.
//!
//! The commit is an audited admin action: its event is journaled with one
//! `admin_action` record of the import (`action: roster_import`, counts) and one per
//! student it creates or changes (`roster_create` / `roster_update`), so each student's
//! audit log and export show it. Run it inside [`super::audit::scope`] with the request's
//! context (the HTTP job does); without a context the records name the endpoint `cli`.
//!
//! Updates of existing students carry absolute values of the roster-managed fields only
//! (name, plan, grade, stream, zone, password) and are merged into the stored record
//! when applied, so a concurrent login authorizing a first device is never undone. Rows
//! that change a password are also decided under the student's write lock and end the
//! student's sessions in the same event, like an admin password reset.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Code};
use crate::players::account::{self, PlayerRecord, Role};
use crate::players::audit::{AuditKind, AuditRecord, RESULT_OK};
use crate::players::roster::{self, Outcome, ParsedRoster, PasswordPlan, RosterPlan, World};

use super::admin_players::generate_password;
use super::audit::code_name;
use super::idempotency::{IdemRecord, IdemRequest};
use super::roster_report::{
    self, CommitReport, DryRunReport, GeneratedPassword, row_report, summary,
};
use super::{Engine, Event, OpenError};

/// A roster commit as journaled: the decided new students and changes, the sessions
/// the password changes end, and the idempotency record of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterImported {
    /// The admin who imported it (`cli` from the command line).
    pub by: String,
    /// When, unix ms.
    pub at_ms: i64,
    /// New students, whole records.
    pub created: Vec<PlayerRecord>,
    /// Changes of existing students.
    pub updated: Vec<RosterUpdate>,
    /// Token hashes of the sessions ended by password changes.
    pub end_sessions: Vec<[u8; 32]>,
    /// The first answer, stored for idempotent replays (belongs to `by`).
    pub idempotency: Option<IdemRecord>,
}

/// The roster-managed fields of an existing student after the import (absolute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterUpdate {
    /// The student.
    pub player_id: String,
    /// Display name.
    pub display_name: String,
    /// Plan.
    pub plan_id: Option<String>,
    /// Grade.
    pub grade: Option<String>,
    /// Stream.
    pub stream: Option<String>,
    /// IANA time zone.
    pub timezone: String,
    /// A new password hash and whether it must be changed at first login (generated).
    pub password: Option<(String, bool)>,
}

/// Renders the stored answer of an idempotent commit (HTTP status, body) from the
/// redacted report.
pub type RenderAnswer = Box<dyn FnOnce(&CommitReport) -> (u16, Vec<u8>) + Send>;

/// How a commit remembers its idempotency key: the request, and how to render the
/// stored answer (HTTP status, body) from the redacted report.
pub struct IdemAnswer {
    /// The request's key and body hash.
    pub request: IdemRequest,
    /// Renders the stored answer.
    pub answer: RenderAnswer,
}

impl std::fmt::Debug for IdemAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdemAnswer")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// What [`Engine::roster_decide`] hands back.
struct Decided {
    event: Event,
    /// The audit records journaled with the event.
    records: Vec<AuditRecord>,
    report: CommitReport,
    created: usize,
    updated: usize,
    size: usize,
}

/// What [`Engine::roster_decide`] decides from.
struct DecideInput {
    /// The final plan (under the admin lock).
    plan: RosterPlan,
    /// Hashed passwords by row.
    hashed: HashMap<u32, Hashed>,
    /// Sessions ended by password changes.
    end_sessions: Vec<[u8; 32]>,
    /// The request's audit record template (actor, client IP, endpoint).
    audit: AuditRecord,
}

/// A password decided before the admin lock: its hash, and the clear text when it was
/// generated (to be shown once).
struct Hashed {
    hash: String,
    generated: Option<String>,
}

/// Hashes per blocking task: big enough to keep every rayon thread busy, small enough
/// for steady progress.
fn chunk_len() -> usize {
    (rayon::current_num_threads() * 16).max(32)
}

/// SHA-256 of a roster file (dry runs are remembered by it).
pub fn file_sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Engine {
    /// Plans a parsed roster against the current players and catalog.
    fn roster_plan(&self, parsed: &ParsedRoster) -> RosterPlan {
        let catalog = self.catalog();
        let accounts = self.inner().accounts.read();
        let player = |email: &str| accounts.player_by_email(email).cloned();
        let plan = |id: &str| catalog.plan(id).map(|p| p.id.clone());
        let timezone_ok = |tz: &str| jiff::tz::TimeZone::get(tz).is_ok();
        roster::plan(
            parsed,
            &World {
                player: &player,
                plan: &plan,
                timezone_ok: &timezone_ok,
                default_timezone: &self.config().players.default_timezone,
            },
        )
    }

    /// The dry run of a roster by admin `by`: per row what would happen, and every
    /// problem. Changes nothing; remembered so the commit of the same file can report
    /// differences.
    pub fn roster_dry_run(&self, csv: &[u8], by: &str) -> DryRunReport {
        let plan = self.roster_plan(&roster::parse(csv));
        let report = roster_report::dry_run_report(&plan);
        self.inner().roster_dry_runs.remember(
            by,
            file_sha(csv),
            self.now().as_millisecond(),
            &report,
        );
        report
    }

    /// Parses and checks a roster before a commit.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` listing every problem (pointers `/rows/{row}/{column}`).
    pub fn roster_validate(&self, csv: &[u8]) -> Result<ParsedRoster, ApiError> {
        let parsed = roster::parse(csv);
        let plan = self.roster_plan(&parsed);
        if plan.errors.is_empty() {
            Ok(parsed)
        } else {
            Err(roster_report::validation_error(&plan.errors))
        }
    }

    /// Commits a validated roster by `by` (file hash `sha`): hashes the passwords on all
    /// cores, then under the admin lock plans the rows again and journals every change in
    /// one event. `progress(n)` is called as rows are done. Returns the report with the
    /// generated passwords in clear. Work proportional to the rows (planning, building
    /// the event and the report) runs on blocking threads, never on the async ones.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` when the state changed so that a row is now wrong
    /// (nothing is applied), 409 `CONFLICT` when the idempotency key was used meanwhile,
    /// 503 when the journal fails.
    pub async fn roster_commit(
        &self,
        parsed: Arc<ParsedRoster>,
        sha: [u8; 32],
        by: &str,
        idem: Option<IdemAnswer>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<CommitReport, ApiError> {
        let result = self.roster_apply(parsed, sha, by, idem, progress).await;
        if let Err(e) = &result {
            // A commit that applied nothing is audited too (buffered: it never waits).
            self.audit_later(
                self.audit_record(AuditKind::AdminAction, &code_name(e.code))
                    .detail("action", "roster_import")
                    .detail("file_sha256", hex::encode(sha)),
            );
        }
        result
    }

    /// [`Engine::roster_commit`] without the audit record of a failure.
    async fn roster_apply(
        &self,
        parsed: Arc<ParsedRoster>,
        sha: [u8; 32],
        by: &str,
        idem: Option<IdemAnswer>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<CommitReport, ApiError> {
        // Degraded mode: refuse before minutes of hashing rather than after.
        self.check_writable()?;
        let first = self.plan_off_thread(&parsed).await?;
        if !first.errors.is_empty() {
            return Err(roster_report::validation_error(&first.errors));
        }
        let started = std::time::Instant::now();
        let mut hashed = self
            .hash_roster_passwords(&first, &parsed, progress)
            .await?;
        let hashing_ms = started.elapsed().as_millis();

        let _admin = self.inner().admin_write.lock().await;
        let locked = std::time::Instant::now();
        let plan = self.plan_off_thread(&parsed).await?;
        if !plan.errors.is_empty() {
            return Err(roster_report::validation_error(&plan.errors));
        }
        if let Some(idem) = &idem {
            let admin = self.student(by)?;
            if self
                .idempotency_recheck(&admin, Some(&idem.request))?
                .is_some()
            {
                return Err(ApiError::new(
                    Code::Conflict,
                    "This roster was already imported with this Idempotency-Key",
                ));
            }
        }
        // Rows whose outcome changed while hashing may need a password not hashed yet
        // (a student deleted meanwhile is created again): rare, hashed here.
        let missing: Vec<_> = plan
            .rows
            .iter()
            .filter(|r| needs_password(&r.outcome) && !hashed.contains_key(&r.row))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let extra = RosterPlan {
                rows: missing,
                errors: Vec::new(),
            };
            hashed.extend(self.hash_roster_passwords(&extra, &parsed, &|_| {}).await?);
        }

        // Students whose password changes: ordered with their own writes (logins).
        let mut students = Vec::new();
        for r in &plan.rows {
            if let Outcome::Update {
                player_id,
                password,
                ..
            } = &r.outcome
                && *password != PasswordPlan::Keep
            {
                students.push((player_id.clone(), self.student(player_id)?));
            }
        }
        let mut _orders = Vec::with_capacity(students.len());
        for (_, student) in &students {
            _orders.push(student.write.lock().await);
        }
        let end_sessions: Vec<[u8; 32]> = {
            let accounts = self.inner().accounts.read();
            students
                .iter()
                .flat_map(|(id, _)| accounts.open_sessions(id, None))
                .collect()
        };

        // Read here: the request's context is task-local, absent on blocking threads.
        let audit = self.audit_record(AuditKind::AdminAction, RESULT_OK);
        let decided = {
            let engine = self.clone();
            let by = by.to_owned();
            tokio::task::spawn_blocking(move || {
                let input = DecideInput {
                    plan,
                    hashed,
                    end_sessions,
                    audit,
                };
                engine.roster_decide(input, &by, sha, idem)
            })
            .await
            .map_err(ApiError::internal)??
        };
        let Decided {
            event,
            records,
            report,
            created,
            updated,
            size,
        } = decided;
        self.commit_audited(event, records).await?;
        tracing::info!(
            rows = report.summary.rows,
            created,
            updated,
            hashing_ms = hashing_ms as u64,
            locked_ms = locked.elapsed().as_millis() as u64,
            event_bytes = size,
            "roster imported"
        );
        Ok(report)
    }

    /// Decides the event, its audit records and the report of a commit from the final
    /// plan and the hashed passwords (under the admin lock, on a blocking thread).
    fn roster_decide(
        &self,
        input: DecideInput,
        by: &str,
        sha: [u8; 32],
        idem: Option<IdemAnswer>,
    ) -> Result<Decided, ApiError> {
        let DecideInput {
            plan,
            mut hashed,
            end_sessions,
            audit,
        } = input;
        let now_ms = self.now().as_millisecond();
        // One record per student touched, then the import's own record.
        let mut records = Vec::new();
        let about = |player_id: &str, action: &str, row: u32| {
            let mut record = audit.clone().player(player_id);
            if record.actor_id.as_deref() != Some(player_id) {
                record.device_id = None;
            }
            record.detail("action", action).detail("row", row)
        };
        let mut event = RosterImported {
            by: by.to_owned(),
            at_ms: now_ms,
            created: Vec::new(),
            updated: Vec::new(),
            end_sessions,
            idempotency: None,
        };
        let mut rows = Vec::with_capacity(plan.rows.len());
        let mut generated = Vec::new();
        for r in &plan.rows {
            let mut report = row_report(r);
            let password = hashed.remove(&r.row);
            match &r.outcome {
                Outcome::Create { target, .. } => {
                    let password = password.ok_or_else(|| ApiError::internal("unhashed row"))?;
                    let id = account::new_player_id();
                    report.player_id = Some(id.clone());
                    if let Some(clear) = &password.generated {
                        generated.push(GeneratedPassword {
                            row: r.row,
                            email: r.email.clone(),
                            player_id: id.clone(),
                            password: clear.clone(),
                        });
                    }
                    records.push(about(&id, "roster_create", r.row));
                    event.created.push(PlayerRecord {
                        id,
                        email: r.email.clone(),
                        display_name: target.display_name.clone(),
                        role: Role::Student,
                        password_hash: password.hash,
                        plan_id: target.plan_id.clone(),
                        grade: target.grade.clone(),
                        stream: target.stream.clone(),
                        timezone: target.timezone.clone(),
                        grants: Vec::new(),
                        devices: Vec::new(),
                        created_at_ms: now_ms,
                        disabled: false,
                        must_change_password: password.generated.is_some(),
                    });
                }
                Outcome::Update {
                    player_id,
                    target,
                    password: plan_password,
                    ..
                } => {
                    let password = match plan_password {
                        PasswordPlan::Keep => None,
                        _ => Some(password.ok_or_else(|| ApiError::internal("unhashed row"))?),
                    };
                    if let Some(clear) = password.as_ref().and_then(|p| p.generated.clone()) {
                        generated.push(GeneratedPassword {
                            row: r.row,
                            email: r.email.clone(),
                            player_id: player_id.clone(),
                            password: clear,
                        });
                    }
                    let fields: Vec<&str> = report.changes.iter().map(|c| c.field).collect();
                    records.push(
                        about(player_id, "roster_update", r.row).detail("fields", fields.join(",")),
                    );
                    event.updated.push(RosterUpdate {
                        player_id: player_id.clone(),
                        display_name: target.display_name.clone(),
                        plan_id: target.plan_id.clone(),
                        grade: target.grade.clone(),
                        stream: target.stream.clone(),
                        timezone: target.timezone.clone(),
                        password: password.map(|p| (p.hash, p.generated.is_some())),
                    });
                }
                Outcome::Unchanged { .. } | Outcome::Error => {}
            }
            rows.push(report);
        }
        let report = CommitReport {
            commit: true,
            summary: summary(&rows),
            dry_run: self.inner().roster_dry_runs.compare(by, sha, now_ms, &rows),
            rows,
            generated_passwords: generated,
            passwords_redacted: false,
        };
        if let Some(idem) = idem {
            let (status, body) = (idem.answer)(&report.redacted());
            event.idempotency = Some(idem.request.record(status, body, now_ms));
        }
        let (created, updated) = (event.created.len(), event.updated.len());
        records.push(
            audit
                .clone()
                .detail("action", "roster_import")
                .detail("rows", report.summary.rows)
                .detail("created", created)
                .detail("updated", updated)
                .detail("unchanged", report.summary.unchanged)
                .detail("file_sha256", hex::encode(sha)),
        );
        let event = Event::RosterImported(Box::new(event));
        // One journal record holds the whole import with its audit records: refuse
        // clearly rather than fail in the journal (long names and emails can reach the
        // limit before MAX_ROWS). The wrapper adds a few bytes to the two parts.
        let size = crate::persist::codec::encode(&event).len()
            + crate::persist::codec::encode(&records).len()
            + 16;
        if size > crate::persist::journal::MAX_PAYLOAD_BYTES {
            return Err(ApiError::field(
                "/rows",
                format!("this roster makes a {size}-byte journal record; split the file"),
            ));
        }
        Ok(Decided {
            event,
            records,
            report,
            created,
            updated,
            size,
        })
    }

    /// Plans a roster on a blocking thread (linear in its rows).
    async fn plan_off_thread(&self, parsed: &Arc<ParsedRoster>) -> Result<RosterPlan, ApiError> {
        let engine = self.clone();
        let parsed = parsed.clone();
        tokio::task::spawn_blocking(move || engine.roster_plan(&parsed))
            .await
            .map_err(ApiError::internal)
    }

    /// Hashes the passwords a plan needs (given ones, and generated ones made here) on
    /// rayon's pool from blocking tasks, chunk by chunk, reporting rows as they are done.
    async fn hash_roster_passwords(
        &self,
        plan: &RosterPlan,
        parsed: &ParsedRoster,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<HashMap<u32, Hashed>, ApiError> {
        let given: HashMap<u32, &roster::Secret> = parsed
            .rows
            .iter()
            .filter_map(|r| r.password.as_ref().map(|p| (r.row, p)))
            .collect();
        let mut work: Vec<(u32, String, bool)> = Vec::new();
        let mut without = 0u64;
        for r in &plan.rows {
            if !needs_password(&r.outcome) {
                without += 1;
                continue;
            }
            match given.get(&r.row) {
                Some(secret) => work.push((r.row, secret.0.clone(), false)),
                None => work.push((r.row, generate_password(), true)),
            }
        }
        progress(without);
        let cost = self.password_cost();
        let mut out = HashMap::with_capacity(work.len());
        let mut rest = work;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(chunk_len()));
            let chunk = std::mem::replace(&mut rest, tail);
            let n = chunk.len() as u64;
            let done = tokio::task::spawn_blocking(move || {
                chunk
                    .into_par_iter()
                    .map(|(row, clear, generated)| {
                        let cost = if generated {
                            cost.for_generated()
                        } else {
                            cost
                        };
                        let hash = account::hash_password(&clear, cost)?;
                        Ok((
                            row,
                            Hashed {
                                hash,
                                generated: generated.then_some(clear),
                            },
                        ))
                    })
                    .collect::<Result<Vec<_>, account::PasswordError>>()
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
            out.extend(done);
            progress(n);
        }
        Ok(out)
    }

    /// Applies a durable [`RosterImported`] (live and replay); decides nothing.
    pub(super) fn apply_roster(&self, r: &RosterImported) -> Result<(), OpenError> {
        let inner = self.inner();
        let mut touched = Vec::with_capacity(r.created.len() + r.updated.len());
        {
            let mut accounts = inner.accounts.write();
            for record in &r.created {
                touched.push(record.id.clone());
                accounts.put_player(record.clone());
            }
            for u in &r.updated {
                let Some(current) = accounts.player(&u.player_id) else {
                    continue;
                };
                let mut next = PlayerRecord::clone(current);
                next.display_name.clone_from(&u.display_name);
                next.plan_id.clone_from(&u.plan_id);
                next.grade.clone_from(&u.grade);
                next.stream.clone_from(&u.stream);
                next.timezone.clone_from(&u.timezone);
                if let Some((hash, must_change)) = &u.password {
                    next.password_hash.clone_from(hash);
                    next.must_change_password = *must_change;
                }
                touched.push(u.player_id.clone());
                accounts.put_player(next);
            }
            accounts.end_sessions(&r.end_sessions, r.at_ms);
        }
        {
            let mut dirty = inner.dirty.lock();
            dirty.players.extend(touched);
            dirty.sessions.extend(r.end_sessions.iter().copied());
        }
        if let Some(record) = &r.idempotency {
            let admin = match inner.students.get(&r.by) {
                Some(s) => s,
                None => self.load_student(&r.by)?,
            };
            let key: Arc<str> = Arc::from(r.by.as_str());
            let mut state = admin.state.write();
            self.apply_idempotency(&key, &mut state, record);
        }
        Ok(())
    }
}

fn needs_password(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Create { .. } => true,
        Outcome::Update { password, .. } => *password != PasswordPlan::Keep,
        Outcome::Unchanged { .. } | Outcome::Error => false,
    }
}
