//! Audit and interaction log records (players.md "Audit and interaction logs"): what a
//! security event, an admin action, a lesson attempt or a review answer records, how a
//! record is keyed for time-ordered storage, and the privacy transformations applied to
//! stored records (client IP expiry, anonymisation on erasure). Pure: times are passed in.

use serde::{Deserialize, Serialize};

/// What a record is about. Encoded by variant index (bincode): only ever append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A successful login.
    LoginSuccess,
    /// A refused login (wrong email or password, disabled account).
    LoginFailed,
    /// A student request or login without a usable `X-Device-ID`.
    DeviceIdMissing,
    /// A student request or login from a device that is not authorized.
    DeviceNotAuthorized,
    /// A device was authorized (first login, or by an admin).
    DeviceAdded,
    /// An admin removed a device.
    DeviceRemoved,
    /// A login replaced a student's session, or a replaced session was used.
    SessionReplaced,
    /// A logout.
    Logout,
    /// A request refused by a rate limit.
    RateLimited,
    /// An administrative change (or a refused attempt at one).
    AdminAction,
    /// A player changed their own password.
    PasswordChanged,
    /// A lesson completion attempt, successful or not (interaction log).
    LessonAttempt,
    /// A review answer, or a refused review submission (interaction log).
    ReviewAnswer,
}

impl AuditKind {
    /// Every kind, in variant order.
    pub const ALL: [AuditKind; 13] = [
        AuditKind::LoginSuccess,
        AuditKind::LoginFailed,
        AuditKind::DeviceIdMissing,
        AuditKind::DeviceNotAuthorized,
        AuditKind::DeviceAdded,
        AuditKind::DeviceRemoved,
        AuditKind::SessionReplaced,
        AuditKind::Logout,
        AuditKind::RateLimited,
        AuditKind::AdminAction,
        AuditKind::PasswordChanged,
        AuditKind::LessonAttempt,
        AuditKind::ReviewAnswer,
    ];

    /// The API name (`login_success`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginSuccess => "login_success",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::DeviceIdMissing => "device_id_missing",
            AuditKind::DeviceNotAuthorized => "device_not_authorized",
            AuditKind::DeviceAdded => "device_added",
            AuditKind::DeviceRemoved => "device_removed",
            AuditKind::SessionReplaced => "session_replaced",
            AuditKind::Logout => "logout",
            AuditKind::RateLimited => "rate_limited",
            AuditKind::AdminAction => "admin_action",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::LessonAttempt => "lesson_attempt",
            AuditKind::ReviewAnswer => "review_answer",
        }
    }

    /// The kind named `name` (as [`AuditKind::as_str`] spells it).
    pub fn parse(name: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// A stable small number (the variant index) for index keys.
    pub fn index(self) -> u8 {
        AuditKind::ALL
            .iter()
            .position(|k| *k == self)
            .map_or(u8::MAX, |i| i as u8)
    }

    /// Whether this kind belongs to the interaction log rather than the security log.
    pub fn is_interaction(self) -> bool {
        matches!(self, AuditKind::LessonAttempt | AuditKind::ReviewAnswer)
    }
}

/// The result of a successful action.
pub const RESULT_OK: &str = "ok";

/// One audit or interaction record. Encoded with bincode (positional): a changed shape
/// needs a new record format, never an edited field list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, unix ms (server clock).
    pub at_ms: i64,
    /// What happened.
    pub kind: AuditKind,
    /// The player concerned (the subject of an admin action), if known.
    pub player_id: Option<String>,
    /// Who acted, when it is someone else than `player_id` (the admin).
    pub actor_id: Option<String>,
    /// The device (lowercase UUID, or the raw header value when not a UUID).
    pub device_id: Option<String>,
    /// The client IP, until `audit.ip_retention_days` have passed.
    pub client_ip: Option<String>,
    /// `METHOD /route/pattern`, or `cli` outside HTTP.
    pub endpoint: Option<String>,
    /// `ok`, or the stable error code (`INVALID_CREDENTIALS`, `NOT_UNLOCKED`, …).
    pub result: String,
    /// Kind-specific details (`lesson_id`, `hearts`, `action`, `reason`, …).
    pub detail: Vec<(String, String)>,
}

/// Longest text kept in one field of a record (longer values are cut on a character
/// boundary), so a hostile request cannot make records large.
pub const MAX_FIELD_CHARS: usize = 200;

/// `value` cut to [`MAX_FIELD_CHARS`] characters (on a character boundary).
pub(crate) fn cut(value: &str) -> String {
    match value.char_indices().nth(MAX_FIELD_CHARS) {
        Some((end, _)) => value[..end].to_owned(),
        None => value.to_owned(),
    }
}

impl AuditRecord {
    /// A record of `kind` at `at_ms` with `result` and nothing else.
    pub fn new(kind: AuditKind, at_ms: i64, result: &str) -> AuditRecord {
        AuditRecord {
            at_ms,
            kind,
            player_id: None,
            actor_id: None,
            device_id: None,
            client_ip: None,
            endpoint: None,
            result: cut(result),
            detail: Vec::new(),
        }
    }

    /// Sets the player concerned.
    #[must_use]
    pub fn player(mut self, player_id: &str) -> AuditRecord {
        self.player_id = Some(cut(player_id));
        self
    }

    /// Sets (or clears) the device.
    #[must_use]
    pub fn device(mut self, device_id: Option<&str>) -> AuditRecord {
        self.device_id = device_id.map(cut);
        self
    }

    /// Adds a detail.
    #[must_use]
    pub fn detail(mut self, key: &str, value: impl ToString) -> AuditRecord {
        self.detail.push((key.to_owned(), cut(&value.to_string())));
        self
    }

    /// The value of detail `key`, if any.
    pub fn detail_value(&self, key: &str) -> Option<&str> {
        self.detail
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Forgets the client IP (after `audit.ip_retention_days`); whether it changed.
    pub fn clear_ip(&mut self) -> bool {
        self.client_ip.take().is_some()
    }

    /// Anonymises a record about the erased `player_id`: the player (and the actor, if
    /// it was them) becomes `anon_id`, and the device, client IP and any typed email are
    /// dropped. Records not about them are left alone; returns whether this one was.
    pub fn anonymise(&mut self, player_id: &str, anon_id: &str) -> bool {
        if self.player_id.as_deref() != Some(player_id) {
            return false;
        }
        self.player_id = Some(anon_id.to_owned());
        if self.actor_id.as_deref() == Some(player_id) {
            self.actor_id = Some(anon_id.to_owned());
        }
        self.device_id = None;
        self.client_ip = None;
        self.detail.retain(|(k, _)| k != "email");
        true
    }
}

/// A record's storage key: the time (sign bit flipped, so negative times sort first)
/// then the record id, both big-endian: byte order is time order.
pub fn time_key(at_ms: i64, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&((at_ms as u64) ^ (1 << 63)).to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

/// The time and id of a [`time_key`]; `None` for a slice of the wrong length.
pub fn split_time_key(key: &[u8]) -> Option<(i64, u64)> {
    let time: [u8; 8] = key.get(..8)?.try_into().ok()?;
    let id: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    (key.len() == 16).then(|| {
        (
            (u64::from_be_bytes(time) ^ (1 << 63)) as i64,
            u64::from_be_bytes(id),
        )
    })
}

/// The id of the `index`-th record carried by the journal record `seq`: ids are derived
/// from the journal, so replaying an event gives its records the same keys again.
pub fn record_id(seq: u64, index: usize) -> u64 {
    (seq << 16) | (index as u64 & 0xffff)
}

/// Most records one journal event may carry (see [`record_id`]).
pub const MAX_RECORDS_PER_EVENT: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name_and_index() {
        for (i, kind) in AuditKind::ALL.into_iter().enumerate() {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
            assert_eq!(usize::from(kind.index()), i);
            let json = serde_json::to_value(kind).expect("json");
            assert_eq!(json, kind.as_str());
        }
        assert_eq!(AuditKind::parse("nope"), None);
    }

    #[test]
    fn time_keys_sort_by_time_then_id() {
        let keys = [
            time_key(-5, 9),
            time_key(0, 0),
            time_key(0, 1),
            time_key(1_700_000_000_000, 0),
            time_key(1_700_000_000_001, 0),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(split_time_key(&keys[0]), Some((-5, 9)));
        assert_eq!(split_time_key(&keys[3]), Some((1_700_000_000_000, 0)));
        assert_eq!(split_time_key(&[0; 15]), None);
        assert!(record_id(7, 0) > record_id(6, 65_535));
    }

    #[test]
    fn fields_are_cut_and_privacy_transformations_apply() {
        let long = "é".repeat(MAX_FIELD_CHARS + 10);
        let mut r = AuditRecord::new(AuditKind::LoginFailed, 1, "INVALID_CREDENTIALS")
            .player("p_1")
            .device(Some("dev"))
            .detail("email", &long)
            .detail("reason", "wrong_password");
        assert_eq!(
            r.detail_value("email").map(|v| v.chars().count()),
            Some(MAX_FIELD_CHARS)
        );
        r.client_ip = Some("10.0.0.1".into());
        assert!(r.clear_ip());
        assert!(!r.clear_ip());
        r.client_ip = Some("10.0.0.1".into());
        r.actor_id = Some("p_1".into());
        assert!(!r.anonymise("p_2", "anon_x"));
        assert!(r.client_ip.is_some());
        assert!(r.anonymise("p_1", "anon_x"));
        assert_eq!(r.player_id.as_deref(), Some("anon_x"));
        assert_eq!(r.actor_id.as_deref(), Some("anon_x"));
        assert_eq!((&r.device_id, &r.client_ip), (&None, &None));
        assert_eq!(r.detail_value("email"), None);
        assert_eq!(r.detail_value("reason"), Some("wrong_password"));
    }
}
