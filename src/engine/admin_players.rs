//! Managing players after creation (players.md, api.md "Admin … players"): devices,
//! "log out everywhere", edits (plan, grade, stream, time zone, name, role, disabled),
//! password changes and resets, grants and XP adjustments.
//!
//! Every change of a player record is one [`Event::PlayerUpdated`] carrying the whole new
//! record and the sessions the change ends, decided under the player's write lock (after
//! the admin lock, the only order in which the two are ever taken), so a crash can never
//! apply one without the other.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ApiError, Code, FieldProblem};
use crate::players::account::{self, Device, PlayerRecord, Role};
use crate::players::audit::{AuditKind, AuditRecord, RESULT_OK};

use super::accounts::{Caller, PlayerView, parse_device_id, rfc3339};
use super::event::XpAdjusted;
use super::{Engine, Event, OpenError, Parts};

/// A device as listed to admins.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceInfo {
    /// The device id (lowercase UUID).
    pub device_id: String,
    /// Its name.
    pub name: String,
    /// When it was authorized (RFC 3339).
    pub added_on: String,
    /// The latest request from it since the server started (RFC 3339), if any.
    pub last_seen: Option<String>,
}

/// `POST /api/v1/admin/players/{id}/devices` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// The client's `X-Device-ID` (a UUID).
    pub device_id: String,
    /// A name, 3–100 characters.
    #[serde(alias = "name")]
    pub device_name: String,
}

/// `PATCH /api/v1/admin/players/{id}` body: absent fields stay as they are; `null`
/// clears the optional ones (`plan_id`, `grade`, `stream`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayerPatch {
    /// New display name (1–100 characters).
    #[serde(default)]
    pub display_name: Option<String>,
    /// New role (ends the player's sessions: privileges changed).
    #[serde(default)]
    pub role: Option<Role>,
    /// New plan (must exist) or `null`.
    #[serde(default, deserialize_with = "present")]
    pub plan_id: Option<Option<String>>,
    /// New grade label (1–64 characters) or `null`.
    #[serde(default, deserialize_with = "present")]
    pub grade: Option<Option<String>>,
    /// New stream label (1–64 characters) or `null`.
    #[serde(default, deserialize_with = "present")]
    pub stream: Option<Option<String>>,
    /// New IANA time zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Disable (ends every session at once) or re-enable.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A present field, possibly `null`: `Some(None)` for `null`, `Some(Some(v))` for a value
/// (an absent field is `None` through `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Which sessions a player change ends.
enum Ends {
    None,
    All,
    AllBut([u8; 32]),
    Device(String),
}

fn problem(pointer: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

fn len_problem(pointer: &str, value: &str, min: usize, max: usize) -> Option<FieldProblem> {
    let n = value.trim().chars().count();
    (n < min || n > max).then(|| problem(pointer, format!("must be {min} to {max} characters")))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(Code::NotFound, format!("no player `{id}`"))
}

/// A generated password: 16 characters from an alphabet without look-alikes (≈ 90 bits).
pub(super) fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Engine {
    /// Applies the events of this module (live and replay); decides nothing.
    pub(super) fn apply_player_admin(&self, event: &Event, parts: Parts) -> Result<(), OpenError> {
        let inner = self.inner();
        match event {
            Event::PlayerUpdated {
                record,
                end_sessions,
                at_ms,
            } if parts.main => {
                let id = record.id.clone();
                let mut accounts = inner.accounts.write();
                accounts.put_player((**record).clone());
                accounts.end_sessions(end_sessions, *at_ms);
                drop(accounts);
                let mut dirty = inner.dirty.lock();
                dirty.players.insert(id);
                dirty.sessions.extend(end_sessions.iter().copied());
            }
            Event::SessionsEnded {
                token_hashes,
                at_ms,
            } if parts.main => {
                inner.accounts.write().end_sessions(token_hashes, *at_ms);
                inner
                    .dirty
                    .lock()
                    .sessions
                    .extend(token_hashes.iter().copied());
            }
            Event::XpAdjusted(adj) if parts.wallet => {
                let student = match inner.students.get(&adj.player_id) {
                    Some(s) => s,
                    None => self.load_student(&adj.player_id)?,
                };
                student.state.write().wallet.total_xp = adj.wallet_total_xp;
                inner
                    .dirty
                    .lock()
                    .wallets
                    .insert(std::sync::Arc::from(adj.player_id.as_str()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Decides and journals a change of one player under the admin lock and the player's
    /// write lock: `decide` gets the current record and returns the new one and which
    /// sessions end.
    async fn update_player(
        &self,
        player_id: &str,
        audit: AuditRecord,
        decide: impl FnOnce(&PlayerRecord) -> Result<(PlayerRecord, Ends), ApiError>,
    ) -> Result<PlayerRecord, ApiError> {
        let _admin = self.inner().admin_write.lock().await;
        if self.player(player_id).is_none() {
            return Err(not_found(player_id));
        }
        let student = self.student(player_id)?;
        let _order = student.write.lock().await;
        let current = self.player(player_id).ok_or_else(|| not_found(player_id))?;
        let (record, ends) = decide(&current)?;
        let end_sessions = {
            let accounts = self.inner().accounts.read();
            match &ends {
                Ends::None => Vec::new(),
                Ends::All => accounts.open_sessions(player_id, None),
                Ends::AllBut(keep) => {
                    let mut all = accounts.open_sessions(player_id, None);
                    all.retain(|h| h != keep);
                    all
                }
                Ends::Device(d) => accounts.open_sessions(player_id, Some(d)),
            }
        };
        let audit = audit.detail("sessions_ended", end_sessions.len());
        self.commit_audited(
            Event::PlayerUpdated {
                record: Box::new(record.clone()),
                end_sessions,
                at_ms: self.now().as_millisecond(),
            },
            vec![audit],
        )
        .await?;
        Ok(record)
    }

    /// A student's devices with `added_on` and last-seen time.
    ///
    /// # Errors
    /// 404 `NOT_FOUND` for an unknown player.
    pub fn list_devices(&self, player_id: &str) -> Result<Vec<DeviceInfo>, ApiError> {
        let accounts = self.inner().accounts.read();
        let player = accounts
            .player(player_id)
            .ok_or_else(|| not_found(player_id))?;
        Ok(player
            .devices
            .iter()
            .map(|d| DeviceInfo {
                device_id: d.id.clone(),
                name: d.name.clone(),
                added_on: rfc3339(d.added_on_ms),
                last_seen: accounts.device_last_seen(player_id, &d.id).map(rfc3339),
            })
            .collect())
    }

    /// Authorizes another device for a student (players.md: at most
    /// `players.max_devices`).
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` (not a UUID, name not 3–100 characters), 404 `NOT_FOUND`,
    /// 409 `CONFLICT` (not a student, already authorized), 409 `DEVICE_LIMIT`.
    pub async fn add_device(
        &self,
        player_id: &str,
        input: NewDevice,
    ) -> Result<DeviceInfo, ApiError> {
        let mut problems = Vec::new();
        let device_id = parse_device_id(Some(&input.device_id));
        if device_id.is_none() {
            problems.push(problem("/device_id", "must be a UUID"));
        }
        problems.extend(len_problem("/device_name", &input.device_name, 3, 100));
        let Some(device_id) = device_id.filter(|_| problems.is_empty()) else {
            return Err(ApiError::validation(problems));
        };
        let max = self.config().players.max_devices as usize;
        let now_ms = self.now().as_millisecond();
        let name = input.device_name.trim().to_owned();
        let id = device_id.clone();
        let audit = self
            .audit_action(AuditKind::DeviceAdded, player_id)
            .device(Some(&device_id))
            .detail("name", &name);
        self.update_player(player_id, audit, move |p| {
            if p.role != Role::Student {
                return Err(ApiError::new(
                    Code::Conflict,
                    "Devices are authorized for students only",
                ));
            }
            if p.devices.iter().any(|d| d.id == id) {
                return Err(ApiError::new(
                    Code::Conflict,
                    "This device is already authorized",
                ));
            }
            if p.devices.len() >= max {
                return Err(ApiError::new(
                    Code::DeviceLimit,
                    format!("A student may have at most {max} devices: remove one first"),
                ));
            }
            let mut next = p.clone();
            next.devices.push(Device {
                id,
                name,
                added_on_ms: now_ms,
            });
            Ok((next, Ends::None))
        })
        .await?;
        Ok(DeviceInfo {
            device_id,
            name: input.device_name.trim().to_owned(),
            added_on: rfc3339(now_ms),
            last_seen: None,
        })
    }

    /// Removes a device and ends the sessions bound to it at once.
    ///
    /// # Errors
    /// 404 `NOT_FOUND` for an unknown player or device.
    pub async fn remove_device(&self, player_id: &str, device_id: &str) -> Result<(), ApiError> {
        let Some(device) = parse_device_id(Some(device_id)) else {
            return Err(ApiError::new(Code::NotFound, "no such device"));
        };
        let audit = self
            .audit_action(AuditKind::DeviceRemoved, player_id)
            .device(Some(&device));
        self.update_player(player_id, audit, move |p| {
            if !p.devices.iter().any(|d| d.id == device) {
                return Err(ApiError::new(Code::NotFound, "no such device"));
            }
            let mut next = p.clone();
            next.devices.retain(|d| d.id != device);
            Ok((next, Ends::Device(device)))
        })
        .await
        .map(|_| ())
    }

    /// Ends every session of a player ("log out everywhere"); returns how many ended.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`; 503 when the journal fails.
    pub async fn logout_everywhere(&self, player_id: &str) -> Result<usize, ApiError> {
        if self.player(player_id).is_none() {
            return Err(not_found(player_id));
        }
        let student = self.student(player_id)?;
        let _order = student.write.lock().await;
        if self.player(player_id).is_none() {
            return Err(not_found(player_id));
        }
        let hashes = self.inner().accounts.read().open_sessions(player_id, None);
        let n = hashes.len();
        let audit = self
            .audit_action(AuditKind::AdminAction, player_id)
            .detail("action", "logout_everywhere")
            .detail("sessions_ended", n);
        self.commit_audited(
            Event::SessionsEnded {
                token_hashes: hashes,
                at_ms: self.now().as_millisecond(),
            },
            vec![audit],
        )
        .await?;
        Ok(n)
    }

    /// Edits a player (validated, all problems reported at once). Disabling or changing
    /// the role ends every session. The last enabled admin can be neither demoted nor
    /// disabled.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED`, 404 `NOT_FOUND`, 409 `CONFLICT` (last admin), 503.
    pub async fn patch_player(
        &self,
        player_id: &str,
        patch: PlayerPatch,
    ) -> Result<PlayerView, ApiError> {
        let mut problems = Vec::new();
        if let Some(name) = &patch.display_name {
            problems.extend(len_problem("/display_name", name, 1, 100));
        }
        for (pointer, value) in [("/grade", &patch.grade), ("/stream", &patch.stream)] {
            if let Some(Some(v)) = value {
                problems.extend(len_problem(pointer, v, 1, 64));
            }
        }
        if let Some(tz) = &patch.timezone
            && jiff::tz::TimeZone::get(tz).is_err()
        {
            problems.push(problem("/timezone", "not a known IANA time zone"));
        }
        if let Some(Some(plan)) = &patch.plan_id
            && self.catalog().plan(plan).is_none()
        {
            problems.push(problem("/plan_id", format!("no plan `{plan}`")));
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        let engine = self.clone();
        let fields: Vec<&str> = [
            ("display_name", patch.display_name.is_some()),
            ("role", patch.role.is_some()),
            ("plan_id", patch.plan_id.is_some()),
            ("grade", patch.grade.is_some()),
            ("stream", patch.stream.is_some()),
            ("timezone", patch.timezone.is_some()),
            ("disabled", patch.disabled.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        let mut audit = self
            .audit_action(AuditKind::AdminAction, player_id)
            .detail("action", "player_updated")
            .detail("fields", fields.join(","));
        if let Some(disabled) = patch.disabled {
            audit = audit.detail("disabled", disabled);
        }
        if let Some(role) = patch.role {
            audit = audit.detail("role", format!("{role:?}").to_lowercase());
        }
        let record = self
            .update_player(player_id, audit, move |p| {
                let mut next = p.clone();
                if let Some(name) = patch.display_name {
                    next.display_name = name.trim().to_owned();
                }
                if let Some(role) = patch.role {
                    next.role = role;
                }
                if let Some(plan) = patch.plan_id {
                    next.plan_id = plan;
                }
                if let Some(grade) = patch.grade {
                    next.grade = grade.map(|g| g.trim().to_owned());
                }
                if let Some(stream) = patch.stream {
                    next.stream = stream.map(|s| s.trim().to_owned());
                }
                if let Some(tz) = patch.timezone {
                    next.timezone = tz;
                }
                if let Some(disabled) = patch.disabled {
                    next.disabled = disabled;
                }
                let was_active_admin = p.role == Role::Admin && !p.disabled;
                let is_active_admin = next.role == Role::Admin && !next.disabled;
                if was_active_admin && !is_active_admin && engine.active_admins() <= 1 {
                    return Err(ApiError::new(
                        Code::Conflict,
                        "This is the last enabled admin: create or enable another first",
                    ));
                }
                let ends = if (next.disabled && !p.disabled) || next.role != p.role {
                    Ends::All
                } else {
                    Ends::None
                };
                Ok((next, ends))
            })
            .await?;
        Ok(PlayerView::of(&record))
    }

    fn active_admins(&self) -> usize {
        self.inner().accounts.read().active_admins()
    }

    /// Changes the caller's own password and ends every other session of the account.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` (current password wrong, new one too short/long or equal
    /// to the current one), 503.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &str,
        new: &str,
    ) -> Result<(), ApiError> {
        let len = new.chars().count();
        if !(8..=256).contains(&len) {
            return Err(ApiError::field(
                "/new_password",
                "must be 8 to 256 characters",
            ));
        }
        if new == current {
            return Err(ApiError::field(
                "/new_password",
                "must differ from the current password",
            ));
        }
        let stored = caller.player.password_hash.clone();
        let (current, new) = (current.to_owned(), new.to_owned());
        let cost = self.password_cost();
        let hash = tokio::task::spawn_blocking(move || {
            if account::verify_password(&current, &stored) {
                account::hash_password(&new, cost)
                    .map(Some)
                    .map_err(|e| e.to_string())
            } else {
                Ok(None)
            }
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::field("/current_password", "does not match"))?;
        let verified = caller.player.password_hash.clone();
        let keep = caller.token_hash;
        let audit = self
            .audit_record(AuditKind::PasswordChanged, RESULT_OK)
            .player(&caller.player.id);
        self.update_player(&caller.player.id, audit, move |p| {
            if p.password_hash != verified {
                return Err(ApiError::new(
                    Code::Conflict,
                    "The password was changed meanwhile; try again",
                ));
            }
            let mut next = p.clone();
            next.password_hash = hash;
            next.must_change_password = false;
            Ok((next, Ends::AllBut(keep)))
        })
        .await
        .map(|_| ())
    }

    /// Resets a player's password to a generated one (returned once, never stored in
    /// clear), sets `must_change_password` and ends every session of the account.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`, 503.
    pub async fn reset_password(&self, player_id: &str) -> Result<String, ApiError> {
        if self.player(player_id).is_none() {
            return Err(not_found(player_id));
        }
        let password = generate_password();
        let cost = self.password_cost().for_generated();
        let clear = password.clone();
        let hash = tokio::task::spawn_blocking(move || account::hash_password(&clear, cost))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        let audit = self
            .audit_action(AuditKind::AdminAction, player_id)
            .detail("action", "password_reset");
        self.update_player(player_id, audit, move |p| {
            let mut next = p.clone();
            next.password_hash = hash;
            next.must_change_password = true;
            Ok((next, Ends::All))
        })
        .await?;
        Ok(password)
    }

    /// Replaces a player's grants (item codes of paid content), deduplicated in order.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` (empty or over-long codes, more than 1000), 404, 503.
    pub async fn put_grants(
        &self,
        player_id: &str,
        grants: Vec<String>,
    ) -> Result<PlayerView, ApiError> {
        let mut problems: Vec<FieldProblem> = grants
            .iter()
            .enumerate()
            .filter_map(|(i, g)| len_problem(&format!("/grants/{i}"), g, 1, 128))
            .collect();
        if grants.len() > 1000 {
            problems.push(problem("/grants", "at most 1000 grants"));
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        let mut unique: Vec<String> = Vec::with_capacity(grants.len());
        for g in grants {
            let g = g.trim().to_owned();
            if !unique.contains(&g) {
                unique.push(g);
            }
        }
        let audit = self
            .audit_action(AuditKind::AdminAction, player_id)
            .detail("action", "grants_replaced")
            .detail("grants", unique.join(","));
        let record = self
            .update_player(player_id, audit, move |p| {
                let mut next = p.clone();
                next.grants = unique;
                Ok((next, Ends::None))
            })
            .await?;
        Ok(PlayerView::of(&record))
    }

    /// Adjusts a wallet's XP by `amount` (−100000…100000, not 0) with a reason; returns
    /// the new total. Audited through the event (who, why, how much).
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED`, 404 `NOT_FOUND`, 503.
    pub async fn adjust_xp(
        &self,
        player_id: &str,
        amount: i64,
        reason: &str,
        by: &Caller,
    ) -> Result<i64, ApiError> {
        let mut problems = Vec::new();
        if amount == 0 || !(-100_000..=100_000).contains(&amount) {
            problems.push(problem(
                "/amount",
                "must be between -100000 and 100000, and not 0",
            ));
        }
        problems.extend(len_problem("/reason", reason, 1, 500));
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        if self.player(player_id).is_none() {
            return Err(not_found(player_id));
        }
        let student = self.student(player_id)?;
        let _order = student.write.lock().await;
        if self.player(player_id).is_none() {
            // Erased while this request waited for the student's lock.
            return Err(not_found(player_id));
        }
        let total = student.state.read().wallet.total_xp.saturating_add(amount);
        let audit = self
            .audit_action(AuditKind::AdminAction, player_id)
            .detail("action", "xp_adjusted")
            .detail("amount", amount)
            .detail("reason", reason.trim())
            .detail("total_xp", total);
        self.commit_audited(
            Event::XpAdjusted(Box::new(XpAdjusted {
                player_id: player_id.to_owned(),
                amount,
                reason: reason.trim().to_owned(),
                by: by.player.id.clone(),
                wallet_total_xp: total,
                at_ms: self.now().as_millisecond(),
            })),
            vec![audit],
        )
        .await?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password();
        assert_eq!(a.chars().count(), 16);
        assert_ne!(a, generate_password());
        assert!(!a.contains(['0', 'O', '1', 'l']));
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let p: PlayerPatch =
            serde_json::from_str(r#"{"grade": null, "stream": "B"}"#).expect("patch");
        assert_eq!(p.grade, Some(None));
        assert_eq!(p.stream, Some(Some("B".into())));
        assert_eq!(p.plan_id, None);
        assert!(serde_json::from_str::<PlayerPatch>(r#"{"email": "x@y"}"#).is_err());
    }
}
