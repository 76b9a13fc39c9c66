//! Accounts: player records, roles, devices, sessions, argon2id password hashes and
//! bearer tokens (players.md "Accounts", "Login, devices and the single session").
//!
//! Records here are what the journal and redb store (bincode 2 serde), so they avoid
//! serde features bincode cannot round-trip (`skip_serializing_if`, `flatten`, untagged).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a player may do (players.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Plays lessons; device and single-session rules apply.
    Student,
    /// Reads reports about the students of their groups.
    Teacher,
    /// Everything.
    Admin,
}

impl Role {
    /// Teachers and admins.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Student)
    }
}

/// An authorized device of a student.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The client's `X-Device-ID` (a UUID, lowercased).
    pub id: String,
    /// A human name ("First device", "Lab PC 3").
    pub name: String,
    /// When it was authorized (unix ms).
    pub added_on_ms: i64,
}

/// A player as stored (journal and redb).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerRecord {
    /// Server-assigned, stable, opaque (`p_` + 20 base32 characters).
    pub id: String,
    /// Login name, stored lowercased (emails compare case-insensitively).
    pub email: String,
    /// Shown to teachers and in apps.
    pub display_name: String,
    /// Student, teacher or admin.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The student's plan (enrolled subjects and access), if any.
    pub plan_id: Option<String>,
    /// Free-form grade label.
    pub grade: Option<String>,
    /// Free-form stream label.
    pub stream: Option<String>,
    /// IANA time zone used for streak days.
    pub timezone: String,
    /// Item codes granted for paid content.
    pub grants: Vec<String>,
    /// Authorized devices (students).
    pub devices: Vec<Device>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Set after a generated password; cleared by a password change.
    pub must_change_password: bool,
}

/// A login session as stored: only the SHA-256 of the token is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// SHA-256 of the bearer token.
    pub token_hash: [u8; 32],
    /// Whose session.
    pub player_id: String,
    /// The device it is bound to (students), lowercased UUID.
    pub device_id: Option<String>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Set once the session is over; kept so the client learns the precise reason.
    pub ended: Option<SessionEnd>,
}

/// Why a session stopped working (players.md: `SESSION_REPLACED`, `SESSION_ENDED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// Replaced by a newer login, or ended (logout, admin, disabled, password change).
    pub reason: EndReason,
    /// When, unix ms.
    pub at_ms: i64,
}

/// The reasons of [`SessionEnd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A newer login of the same student replaced it.
    Replaced,
    /// Logged out or ended by an administrator.
    Ended,
}

/// Normalizes an email for storage and lookup; `None` if it is not plausibly an email
/// (one `@`, non-empty parts, no spaces or control characters, ≤ 254 bytes).
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim();
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    plausible.then(|| email.to_lowercase())
}

/// A new player id: `p_` + 20 lowercase base32 characters (100 random bits).
pub fn new_player_id() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(22);
    id.push_str("p_");
    id.extend(bytes.iter().map(|b| ALPHABET[(b & 31) as usize] as char));
    id
}

/// A new bearer token (256 random bits, hex) and the hash that is stored.
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a bearer token: the only form in which tokens are stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// argon2id cost parameters (config `[auth]`).
#[derive(Debug, Clone, Copy)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// Why a password was refused or could not be hashed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// Too short, too long.
    #[error("password must be 8 to 256 characters")]
    Weak,
    /// The cost parameters are invalid (config validation prevents this).
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Hashes a password with argon2id. CPU-heavy (~19 ms at default cost): call it off the
/// async threads.
///
/// # Errors
/// [`PasswordError::Weak`] for fewer than 8 or more than 256 characters.
pub fn hash_password(password: &str, cost: PasswordCost) -> Result<String, PasswordError> {
    let len = password.chars().count();
    if !(8..=256).contains(&len) {
        return Err(PasswordError::Weak);
    }
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

impl PasswordCost {
    /// The cost for a password the server *generated* (roster imports, admin resets):
    /// at most 1 MiB and one pass, never more than `self`. A generated password is 16
    /// characters drawn uniformly from 55 (≈ 92 bits), which no offline guessing can
    /// exhaust whatever the hash's speed; the memory-hard cost exists to slow the
    /// guessing of *human-chosen* passwords (OWASP Password Storage Cheat Sheet). It
    /// must be changed at the first login (`must_change_password`), and the chosen one
    /// gets the configured cost. This is what lets 10,000 roster rows import in
    /// seconds on a small server. Logins pad the check of such a hash to the full cost
    /// ([`is_cheaper_than`]), so its speed tells nothing about the account.
    pub fn for_generated(self) -> PasswordCost {
        PasswordCost {
            memory_kib: self.memory_kib.min(1024),
            iterations: 1,
            parallelism: 1,
        }
    }
}

/// Whether the stored PHC hash `phc` was made with less memory or fewer passes than
/// `cost` (a generated password's hash): the login then also runs a full-cost check so
/// the answer takes as long as for any other account. False for a malformed hash.
pub fn is_cheaper_than(phc: &str, cost: PasswordCost) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let param = |name: &str| hash.params.get_decimal(name).unwrap_or(u32::MAX);
    param("m") < cost.memory_kib || param("t") < cost.iterations
}

/// Checks a password against a stored PHC hash (the hash carries its own cost).
/// A malformed stored hash verifies as false.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: PasswordCost = PasswordCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn passwords_verify_only_when_equal() {
        let hash = hash_password("correct horse", CHEAP).expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_eq!(hash_password("short", CHEAP), Err(PasswordError::Weak));
    }

    #[test]
    fn generated_passwords_get_a_cheaper_hash_that_is_recognised() {
        let full = PasswordCost {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        };
        let cheap = full.for_generated();
        assert_eq!((cheap.memory_kib, cheap.iterations), (1024, 1));
        assert_eq!(
            CHEAP.for_generated().memory_kib,
            64,
            "never above the configured"
        );
        let hash = hash_password("Generated-Pass-16", cheap).expect("hash");
        assert!(verify_password("Generated-Pass-16", &hash));
        assert!(is_cheaper_than(&hash, full));
        assert!(!is_cheaper_than(&hash, cheap));
        assert!(!is_cheaper_than("not a hash", full));
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(
            normalize_email(" Ana@School.ORG "),
            Some("ana@school.org".into())
        );
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("a@b@c"), None);
        assert_eq!(normalize_email("a b@c"), None);
        assert_eq!(normalize_email("@c"), None);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (t1, h1) = new_token();
        let (t2, h2) = new_token();
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert_eq!(token_hash(&t1), h1);
        assert_ne!(h1, h2);
        let id = new_player_id();
        assert!(id.starts_with("p_") && id.len() == 22);
    }
}
