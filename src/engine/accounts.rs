//! Accounts in memory (all players, their sessions) and the account operations: create a
//! player, log in, check a bearer token on every request, log out (players.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, Code};
use crate::players::account::{
    self, Device, EndReason, PasswordCost, PlayerRecord, Role, SessionEnd, SessionRecord,
};

use crate::players::audit::{AuditKind, RESULT_OK};

use super::{Engine, Event};

/// A session in memory: the stored record plus when it was last used.
#[derive(Debug)]
pub struct LiveSession {
    /// What is stored.
    pub record: SessionRecord,
    /// Last authenticated request, unix ms; 0 = unknown (loaded from redb, not used since
    /// the restart), whose idle time counts from the engine's opening. In memory only: a
    /// restart forgives the idle time before it rather than journaling an event per
    /// request, but a session left unused after a restart still expires.
    pub last_seen_ms: AtomicI64,
}

/// Every player and session, in memory (small: a few hundred bytes per player).
#[derive(Debug, Default)]
pub struct Accounts {
    players: HashMap<String, Arc<PlayerRecord>>,
    by_email: HashMap<String, String>,
    sessions: HashMap<[u8; 32], LiveSession>,
    /// A student's current session.
    pub(crate) current: HashMap<String, [u8; 32]>,
    /// Every session of a player (ended ones included), so "end all sessions" and a
    /// device's last-seen time do not scan every session.
    by_player: HashMap<String, Vec<[u8; 32]>>,
}

impl Accounts {
    /// Inserts or replaces a player.
    pub fn put_player(&mut self, record: PlayerRecord) {
        if let Some(old) = self.players.get(&record.id)
            && old.email != record.email
        {
            self.by_email.remove(&old.email);
        }
        self.by_email
            .insert(record.email.clone(), record.id.clone());
        self.players.insert(record.id.clone(), Arc::new(record));
    }

    /// A player by id.
    pub fn player(&self, id: &str) -> Option<&Arc<PlayerRecord>> {
        self.players.get(id)
    }

    /// A player by (normalized) email.
    pub fn player_by_email(&self, email: &str) -> Option<&Arc<PlayerRecord>> {
        self.by_email.get(email).and_then(|id| self.players.get(id))
    }

    /// Every player, in no particular order.
    pub fn all_players(&self) -> impl Iterator<Item = &Arc<PlayerRecord>> {
        self.players.values()
    }

    /// Number of players.
    pub fn player_count(&self) -> usize {
        self.players.len()
    }

    /// Whether any admin exists.
    pub fn has_admin(&self) -> bool {
        self.players.values().any(|p| p.role == Role::Admin)
    }

    /// Number of admins that are not disabled.
    pub fn active_admins(&self) -> usize {
        self.players
            .values()
            .filter(|p| p.role == Role::Admin && !p.disabled)
            .count()
    }

    /// Number of students assigned to a plan (case-insensitive).
    pub fn students_on_plan(&self, plan_id: &str) -> usize {
        self.players
            .values()
            .filter(|p| {
                p.plan_id
                    .as_deref()
                    .is_some_and(|id| id.eq_ignore_ascii_case(plan_id))
            })
            .count()
    }

    /// Every player, in no particular order.
    pub fn players(&self) -> impl Iterator<Item = &Arc<PlayerRecord>> {
        self.players.values()
    }

    /// Every session of a player (ended ones included) with its in-memory last-seen
    /// time (unix ms, 0 = not since the restart).
    pub fn sessions_of(&self, player_id: &str) -> Vec<(SessionRecord, i64)> {
        self.by_player
            .get(player_id)
            .into_iter()
            .flatten()
            .filter_map(|h| self.sessions.get(h))
            .map(|s| (s.record.clone(), s.last_seen_ms.load(Ordering::Relaxed)))
            .collect()
    }

    /// Removes a player with every session (an erasure); returns the sessions' token
    /// hashes, whose stored rows the next checkpoint deletes.
    pub fn remove_player(&mut self, player_id: &str) -> Vec<[u8; 32]> {
        if let Some(p) = self.players.remove(player_id) {
            self.by_email.remove(&p.email);
        }
        self.current.remove(player_id);
        let hashes = self.by_player.remove(player_id).unwrap_or_default();
        for h in &hashes {
            self.sessions.remove(h);
        }
        hashes
    }

    /// Loads a stored session at start.
    pub fn load_session(&mut self, session: SessionRecord) {
        let is_student = self
            .players
            .get(&session.player_id)
            .is_some_and(|p| p.role == Role::Student);
        if session.ended.is_none() && is_student {
            self.current
                .insert(session.player_id.clone(), session.token_hash);
        }
        self.insert_session(session, 0);
    }

    fn insert_session(&mut self, session: SessionRecord, last_seen_ms: i64) {
        let hashes = self.by_player.entry(session.player_id.clone()).or_default();
        if !hashes.contains(&session.token_hash) {
            hashes.push(session.token_hash);
        }
        self.sessions.insert(
            session.token_hash,
            LiveSession {
                record: session,
                last_seen_ms: AtomicI64::new(last_seen_ms),
            },
        );
    }

    /// A session by token hash.
    pub fn session(&self, hash: &[u8; 32]) -> Option<&SessionRecord> {
        self.sessions.get(hash).map(|s| &s.record)
    }

    /// A session with its in-memory last-seen time.
    pub fn live_session(&self, hash: &[u8; 32]) -> Option<&LiveSession> {
        self.sessions.get(hash)
    }

    /// The stored record of a session, for checkpoints.
    pub fn session_record(&self, hash: &[u8; 32]) -> Option<SessionRecord> {
        self.sessions.get(hash).map(|s| s.record.clone())
    }

    /// Token hashes of a player's sessions that have not ended, optionally bound to one
    /// device.
    pub fn open_sessions(&self, player_id: &str, device: Option<&str>) -> Vec<[u8; 32]> {
        self.by_player
            .get(player_id)
            .into_iter()
            .flatten()
            .filter(|h| {
                self.sessions.get(*h).is_some_and(|s| {
                    s.record.ended.is_none()
                        && device.is_none_or(|d| s.record.device_id.as_deref() == Some(d))
                })
            })
            .copied()
            .collect()
    }

    /// When a player's device was last used (the latest request of any session bound to
    /// it since this process started), unix ms.
    pub fn device_last_seen(&self, player_id: &str, device: &str) -> Option<i64> {
        self.by_player
            .get(player_id)
            .into_iter()
            .flatten()
            .filter_map(|h| self.sessions.get(h))
            .filter(|s| s.record.device_id.as_deref() == Some(device))
            .map(|s| s.last_seen_ms.load(Ordering::Relaxed))
            .filter(|ms| *ms > 0)
            .max()
    }

    /// Ends several sessions at once (admin "log out everywhere", disabling, device
    /// removal, password change).
    pub fn end_sessions(&mut self, hashes: &[[u8; 32]], at_ms: i64) {
        for hash in hashes {
            self.end_session(hash, at_ms);
        }
    }

    /// Applies a login; returns whether the player record changed (a device was added).
    pub fn apply_session_created(
        &mut self,
        session: &SessionRecord,
        new_device: Option<&Device>,
        replaces: Option<[u8; 32]>,
    ) -> bool {
        if let Some(old) = replaces.and_then(|h| self.sessions.get_mut(&h))
            && old.record.ended.is_none()
        {
            old.record.ended = Some(SessionEnd {
                reason: EndReason::Replaced,
                at_ms: session.created_at_ms,
            });
        }
        let mut touched = false;
        if let Some(device) = new_device
            && let Some(player) = self.players.get_mut(&session.player_id)
        {
            let player = Arc::make_mut(player);
            if !player.devices.iter().any(|d| d.id == device.id) {
                player.devices.push(device.clone());
                touched = true;
            }
        }
        self.insert_session(session.clone(), session.created_at_ms);
        let is_student = self
            .players
            .get(&session.player_id)
            .is_some_and(|p| p.role == Role::Student);
        if is_student {
            self.current
                .insert(session.player_id.clone(), session.token_hash);
        }
        touched
    }

    /// Ends a session (logout).
    pub fn end_session(&mut self, hash: &[u8; 32], at_ms: i64) {
        if let Some(s) = self.sessions.get_mut(hash)
            && s.record.ended.is_none()
        {
            s.record.ended = Some(SessionEnd {
                reason: EndReason::Ended,
                at_ms,
            });
            if self.current.get(&s.record.player_id) == Some(hash) {
                self.current.remove(&s.record.player_id);
            }
        }
    }
}

/// An authenticated caller, as established by [`Engine::authenticate`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The player (a snapshot taken at authentication).
    pub player: Arc<PlayerRecord>,
    /// The session's token hash.
    pub token_hash: [u8; 32],
    /// The session's device (students).
    pub device_id: Option<String>,
    /// Session creation, unix ms.
    pub session_created_at_ms: i64,
}

impl Caller {
    /// The caller's role.
    pub fn role(&self) -> Role {
        self.player.role
    }
}

/// `POST /api/v1/admin/players` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlayer {
    /// Login email.
    pub email: String,
    /// Initial password (8–256 characters).
    pub password: String,
    /// Display name (1–100 characters).
    pub display_name: String,
    /// Role (default student).
    #[serde(default)]
    pub role: Option<Role>,
    /// Plan id (must exist).
    #[serde(default)]
    pub plan_id: Option<String>,
    /// Grade label.
    #[serde(default)]
    pub grade: Option<String>,
    /// Stream label.
    #[serde(default)]
    pub stream: Option<String>,
    /// IANA zone (default from config).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Item codes for paid content.
    #[serde(default)]
    pub grants: Vec<String>,
}

/// A player as shown to admins and in `GET /api/v1/me` (no password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlayerView {
    /// Id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Plan.
    pub plan_id: Option<String>,
    /// Grade.
    pub grade: Option<String>,
    /// Stream.
    pub stream: Option<String>,
    /// Time zone.
    pub timezone: String,
    /// Grants.
    pub grants: Vec<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Disabled flag.
    pub disabled: bool,
    /// Devices.
    pub devices: Vec<DeviceView>,
}

/// A device as shown to clients.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    /// Device id.
    pub device_id: String,
    /// Name.
    pub name: String,
    /// When it was authorized (RFC 3339).
    pub added_on: String,
}

/// RFC 3339 UTC for a unix-ms instant.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl PlayerView {
    /// The view of a record.
    pub fn of(p: &PlayerRecord) -> Self {
        PlayerView {
            id: p.id.clone(),
            email: p.email.clone(),
            display_name: p.display_name.clone(),
            role: p.role,
            plan_id: p.plan_id.clone(),
            grade: p.grade.clone(),
            stream: p.stream.clone(),
            timezone: p.timezone.clone(),
            grants: p.grants.clone(),
            created_at: rfc3339(p.created_at_ms),
            disabled: p.disabled,
            devices: p
                .devices
                .iter()
                .map(|d| DeviceView {
                    device_id: d.id.clone(),
                    name: d.name.clone(),
                    added_on: rfc3339(d.added_on_ms),
                })
                .collect(),
        }
    }
}

/// `POST /api/v1/auth/login` answer (players.md).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// The bearer token (shown once; only its hash is stored).
    pub token: String,
    /// Player id.
    pub player_id: String,
    /// Role.
    pub role: Role,
    /// Whether this login authorized the student's first device.
    pub is_first_device: bool,
    /// Number of authorized devices.
    pub devices_authorized: usize,
    /// RFC 3339.
    pub session_created_at: String,
    /// Whether the password must be changed before anything else.
    pub must_change_password: bool,
}

/// A device id header value: a UUID, normalized lowercase hyphenated.
pub fn parse_device_id(raw: Option<&str>) -> Option<String> {
    raw.and_then(|v| Uuid::parse_str(v.trim()).ok())
        .map(|u| u.hyphenated().to_string())
}

fn check_len(
    pointer: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Option<crate::error::FieldProblem> {
    let n = value.trim().chars().count();
    (n < min || n > max).then(|| crate::error::FieldProblem {
        pointer: pointer.to_owned(),
        message: format!("must be {min} to {max} characters"),
    })
}

impl Engine {
    /// The configured argon2id cost.
    pub(crate) fn password_cost(&self) -> PasswordCost {
        let a = &self.inner().config.auth;
        PasswordCost {
            memory_kib: a.argon2_memory_kib,
            iterations: a.argon2_iterations,
            parallelism: a.argon2_parallelism,
        }
    }

    /// Creates a player (admin API, CLI, demo). Validates every field and reports all
    /// problems at once.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` (with field problems), 409 `CONFLICT` for a taken email,
    /// 503 when the journal fails.
    pub async fn create_player(&self, input: NewPlayer) -> Result<PlayerView, ApiError> {
        let mut problems = Vec::new();
        let email = account::normalize_email(&input.email);
        if email.is_none() {
            problems.push(crate::error::FieldProblem {
                pointer: "/email".into(),
                message: "not a valid email address".into(),
            });
        }
        problems.extend(check_len("/display_name", &input.display_name, 1, 100));
        let pw_len = input.password.chars().count();
        if !(8..=256).contains(&pw_len) {
            problems.push(crate::error::FieldProblem {
                pointer: "/password".into(),
                message: "must be 8 to 256 characters".into(),
            });
        }
        let timezone = input
            .timezone
            .clone()
            .unwrap_or_else(|| self.config().players.default_timezone.clone());
        if jiff::tz::TimeZone::get(&timezone).is_err() {
            problems.push(crate::error::FieldProblem {
                pointer: "/timezone".into(),
                message: "not a known IANA time zone".into(),
            });
        }
        if let Some(plan) = &input.plan_id
            && self.catalog().plan(plan).is_none()
        {
            problems.push(crate::error::FieldProblem {
                pointer: "/plan_id".into(),
                message: format!("no plan `{plan}`"),
            });
        }
        for (field, value) in [("/grade", &input.grade), ("/stream", &input.stream)] {
            if let Some(v) = value {
                problems.extend(check_len(field, v, 1, 64));
            }
        }
        for (i, g) in input.grants.iter().enumerate() {
            problems.extend(check_len(&format!("/grants/{i}"), g, 1, 128));
        }
        let Some(email) = email.filter(|_| problems.is_empty()) else {
            return Err(ApiError::validation(problems));
        };
        let cost = self.password_cost();
        let password = input.password.clone();
        let hash = tokio::task::spawn_blocking(move || account::hash_password(&password, cost))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::field("/password", e.to_string()))?;

        let _order = self.inner().admin_write.lock().await;
        if self
            .inner()
            .accounts
            .read()
            .player_by_email(&email)
            .is_some()
        {
            return Err(ApiError::new(
                Code::Conflict,
                format!("a player with email {email} already exists"),
            ));
        }
        let record = PlayerRecord {
            id: account::new_player_id(),
            email,
            display_name: input.display_name.trim().to_owned(),
            role: input.role.unwrap_or(Role::Student),
            password_hash: hash,
            plan_id: input.plan_id.clone(),
            grade: input.grade.clone(),
            stream: input.stream.clone(),
            timezone,
            grants: input.grants.clone(),
            devices: Vec::new(),
            created_at_ms: self.now().as_millisecond(),
            disabled: false,
            must_change_password: false,
        };
        let view = PlayerView::of(&record);
        let audit = self
            .audit_action(AuditKind::AdminAction, &record.id)
            .detail("action", "player_created")
            .detail("role", format!("{:?}", record.role).to_lowercase());
        self.commit_audited(Event::PlayerPut(Box::new(record)), vec![audit])
            .await?;
        Ok(view)
    }

    /// A player by id, for admins.
    pub fn player(&self, id: &str) -> Option<Arc<PlayerRecord>> {
        self.inner().accounts.read().player(id).cloned()
    }

    /// Whether any admin exists (serve prints how to create one otherwise).
    pub fn has_admin(&self) -> bool {
        self.inner().accounts.read().has_admin()
    }

    /// A player by email.
    pub fn player_by_email(&self, email: &str) -> Option<Arc<PlayerRecord>> {
        let email = account::normalize_email(email)?;
        self.inner()
            .accounts
            .read()
            .player_by_email(&email)
            .cloned()
    }

    /// Logs in (players.md "Login"): checks the password (similar time for unknown
    /// emails), the device for students (first device authorized automatically), and
    /// creates a session replacing a student's previous one.
    ///
    /// # Errors
    /// 401 `INVALID_CREDENTIALS`, 400 `DEVICE_ID_REQUIRED`, 403 `DEVICE_NOT_AUTHORIZED`,
    /// 503 when the journal fails.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_header: Option<&str>,
        device_name: Option<&str>,
    ) -> Result<LoginResponse, ApiError> {
        let player = self.player_by_email(email);
        let stored_hash = player
            .as_ref()
            .map(|p| p.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash());
        let password = password.to_owned();
        // A generated password's hash is cheaper (`PasswordCost::for_generated`): check
        // against the full-cost dummy too, so the time says nothing about the account.
        let pad =
            account::is_cheaper_than(&stored_hash, self.password_cost()).then(|| self.dummy_hash());
        let ok = tokio::task::spawn_blocking(move || {
            let ok = account::verify_password(&password, &stored_hash);
            if let Some(dummy) = pad {
                let _ = account::verify_password(&password, &dummy);
            }
            ok
        })
        .await
        .map_err(ApiError::internal)?;
        let invalid = || ApiError::new(Code::InvalidCredentials, "Invalid email or password");
        let player = match player {
            Some(p) if ok && !p.disabled => p,
            other => {
                let failed = self.audit_record(AuditKind::LoginFailed, "INVALID_CREDENTIALS");
                self.audit_later(match &other {
                    Some(p) => failed.player(&p.id).detail(
                        "reason",
                        if p.disabled {
                            "disabled"
                        } else {
                            "wrong_password"
                        },
                    ),
                    None => failed
                        .detail("reason", "unknown_email")
                        .detail("email", email.trim()),
                });
                return Err(invalid());
            }
        };
        let is_student = player.role == Role::Student;
        let device_id = if is_student {
            match parse_device_id(device_header) {
                Some(d) => Some(d),
                None => {
                    self.audit_later(
                        self.audit_record(AuditKind::DeviceIdMissing, "DEVICE_ID_REQUIRED")
                            .player(&player.id),
                    );
                    return Err(ApiError::new(
                        Code::DeviceIdRequired,
                        "Students must send an X-Device-ID header holding a UUID",
                    ));
                }
            }
        } else {
            None
        };

        // Order this login with the student's other writes.
        let student = self.student(&player.id)?;
        let _order = student.write.lock().await;
        let (player, previous) = {
            let accounts = self.inner().accounts.read();
            let p = accounts.player(&player.id).cloned().ok_or_else(invalid)?;
            let prev = accounts.current.get(&p.id).copied();
            (p, prev)
        };
        let now_ms = self.now().as_millisecond();
        let mut new_device = None;
        let mut is_first_device = false;
        if let Some(device) = &device_id {
            if player.devices.is_empty() {
                is_first_device = true;
                new_device = Some(Device {
                    id: device.clone(),
                    name: device_name
                        .map(str::trim)
                        .filter(|n| (3..=100).contains(&n.chars().count()))
                        .unwrap_or("First device")
                        .to_owned(),
                    added_on_ms: now_ms,
                });
            } else if !player.devices.iter().any(|d| &d.id == device) {
                self.audit_later(
                    self.audit_record(AuditKind::DeviceNotAuthorized, "DEVICE_NOT_AUTHORIZED")
                        .player(&player.id)
                        .device(Some(device)),
                );
                return Err(ApiError::new(
                    Code::DeviceNotAuthorized,
                    "This device is not authorized: contact your administrator to authorize this device",
                ));
            }
        }
        let (token, token_hash) = account::new_token();
        let session = SessionRecord {
            token_hash,
            player_id: player.id.clone(),
            device_id: device_id.clone(),
            created_at_ms: now_ms,
            ended: None,
        };
        let devices_authorized = player.devices.len() + usize::from(new_device.is_some());
        let replaces = if is_student { previous } else { None };
        let mut audit = vec![
            self.audit_record(AuditKind::LoginSuccess, RESULT_OK)
                .player(&player.id)
                .device(device_id.as_deref()),
        ];
        if let Some(device) = &new_device {
            audit.push(
                self.audit_record(AuditKind::DeviceAdded, RESULT_OK)
                    .player(&player.id)
                    .device(Some(&device.id))
                    .detail("first_device", true)
                    .detail("name", &device.name),
            );
        }
        if let Some(old) = replaces {
            let old_device = self
                .inner()
                .accounts
                .read()
                .session(&old)
                .and_then(|s| s.device_id.clone());
            audit.push(
                self.audit_record(AuditKind::SessionReplaced, RESULT_OK)
                    .player(&player.id)
                    .device(device_id.as_deref())
                    .detail("replaced_device", old_device.as_deref().unwrap_or("-")),
            );
        }
        self.commit_audited(
            Event::SessionCreated {
                session,
                new_device,
                replaces,
            },
            audit,
        )
        .await?;
        Ok(LoginResponse {
            token,
            player_id: player.id.clone(),
            role: player.role,
            is_first_device,
            devices_authorized,
            session_created_at: rfc3339(now_ms),
            must_change_password: player.must_change_password,
        })
    }

    /// Checks a bearer token and, for students, the device (players.md, in order: token
    /// known → device header present → device authorized and the session's → session
    /// current). An in-memory lookup.
    ///
    /// # Errors
    /// 401 `UNAUTHENTICATED` / `SESSION_REPLACED` / `SESSION_ENDED`, 400
    /// `DEVICE_ID_REQUIRED`, 403 `DEVICE_NOT_AUTHORIZED`.
    pub fn authenticate(
        &self,
        token: &str,
        device_header: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let hash = account::token_hash(token);
        let accounts = self.inner().accounts.read();
        let unauthenticated = || {
            ApiError::new(
                Code::Unauthenticated,
                "Missing, unknown or expired bearer token",
            )
        };
        let live = accounts.live_session(&hash).ok_or_else(unauthenticated)?;
        let session = &live.record;
        let player = accounts
            .player(&session.player_id)
            .ok_or_else(unauthenticated)?
            .clone();
        if player.role == Role::Student {
            let Some(device) = parse_device_id(device_header) else {
                self.audit_later(
                    self.audit_record(AuditKind::DeviceIdMissing, "DEVICE_ID_REQUIRED")
                        .player(&player.id),
                );
                return Err(ApiError::new(
                    Code::DeviceIdRequired,
                    "Send the X-Device-ID header (a UUID)",
                ));
            };
            let authorized = player.devices.iter().any(|d| d.id == device);
            if !authorized || session.device_id.as_deref() != Some(device.as_str()) {
                self.audit_later(
                    self.audit_record(AuditKind::DeviceNotAuthorized, "DEVICE_NOT_AUTHORIZED")
                        .player(&player.id)
                        .device(Some(&device)),
                );
                return Err(ApiError::new(
                    Code::DeviceNotAuthorized,
                    "This device is not authorized for this session",
                ));
            }
        }
        match session.ended {
            Some(SessionEnd {
                reason: EndReason::Replaced,
                ..
            }) => {
                self.audit_later(
                    self.audit_record(AuditKind::SessionReplaced, "SESSION_REPLACED")
                        .player(&player.id),
                );
                return Err(ApiError::new(
                    Code::SessionReplaced,
                    "Another device has logged in",
                ));
            }
            Some(_) => return Err(ApiError::new(Code::SessionEnded, "This session has ended")),
            None => {}
        }
        if player.disabled {
            return Err(ApiError::new(
                Code::SessionEnded,
                "This account is disabled",
            ));
        }
        let now_ms = self.now().as_millisecond();
        let players = &self.config().players;
        let idle_limit = if player.role == Role::Student {
            players.session_idle_timeout()
        } else {
            players.staff_session_idle_timeout()
        };
        let last_seen = match live.last_seen_ms.load(Ordering::Relaxed) {
            0 => self.inner().opened_at_ms,
            ms => ms,
        };
        if let Some(limit) = idle_limit
            && now_ms.saturating_sub(last_seen)
                > i64::try_from(limit.as_millis()).unwrap_or(i64::MAX)
        {
            // Not journaled: the session stays idle (last-seen is not advanced by a
            // refused request); see `LiveSession` for restarts.
            return Err(ApiError::new(
                Code::SessionEnded,
                "This session ended after a period of inactivity",
            ));
        }
        live.last_seen_ms.fetch_max(now_ms, Ordering::Relaxed);
        let caller = Caller {
            token_hash: hash,
            device_id: session.device_id.clone(),
            session_created_at_ms: session.created_at_ms,
            player,
        };
        drop(accounts);
        super::audit::set_actor(&caller.player.id);
        if caller.player.role == Role::Student {
            self.touch_last_played(&caller.player.id, now_ms);
        }
        Ok(caller)
    }

    /// Advances a student's `last_played_at` (players.md "Wallet") at minute precision:
    /// in memory, the wallet marked dirty for its checkpoint — never a journal event per
    /// request. A crash can lose the latest value (up to a wallet checkpoint period).
    fn touch_last_played(&self, player_id: &str, now_ms: i64) {
        const PRECISION_MS: i64 = 60_000;
        let minute = now_ms - now_ms.rem_euclid(PRECISION_MS);
        let Ok(student) = self.student(player_id) else {
            return;
        };
        {
            let stale = |at: Option<i64>| at.is_none_or(|at| at < minute);
            if !stale(student.state.read().wallet.last_played_at_ms) {
                return;
            }
            let mut state = student.state.write();
            if !stale(state.wallet.last_played_at_ms) {
                return;
            }
            state.wallet.last_played_at_ms = Some(minute);
        }
        self.inner()
            .dirty
            .lock()
            .wallets
            .insert(Arc::from(player_id));
    }

    /// The player and role behind an open session's bearer token, without the device and
    /// idle checks of [`Engine::authenticate`] (rate limiting keys on it).
    pub fn session_owner(&self, token: &str) -> Option<(String, Role)> {
        let accounts = self.inner().accounts.read();
        let session = accounts
            .session(&account::token_hash(token))
            .filter(|s| s.ended.is_none())?;
        let player = accounts.player(&session.player_id)?;
        Some((player.id.clone(), player.role))
    }

    /// Ends the caller's session.
    ///
    /// # Errors
    /// 503 when the journal fails.
    pub async fn logout(&self, caller: &Caller) -> Result<(), ApiError> {
        let student = self.student(&caller.player.id)?;
        let _order = student.write.lock().await;
        let audit = self
            .audit_record(AuditKind::Logout, RESULT_OK)
            .player(&caller.player.id)
            .device(caller.device_id.as_deref());
        self.commit_audited(
            Event::SessionEnded {
                token_hash: caller.token_hash,
                at_ms: self.now().as_millisecond(),
            },
            vec![audit],
        )
        .await
    }
}

impl Engine {
    /// A valid argon2id hash of a random password at the configured cost, verified
    /// against for unknown emails so that "no such account" and "wrong password" take
    /// similar time (players.md).
    fn dummy_hash(&self) -> String {
        let cost = self.password_cost();
        self.inner()
            .dummy_hash
            .get_or_init(|| {
                let (random, _) = account::new_token();
                account::hash_password(&random, cost).unwrap_or_default()
            })
            .clone()
    }
}
