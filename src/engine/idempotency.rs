//! Idempotency keys (api.md): a retried POST with the same `Idempotency-Key` and the
//! same body gets the first answer back without being applied again.
//!
//! A key is scoped to (caller, method, concrete path). The first 2xx answer is stored
//! **in the same journal event as the change** (an [`IdemRecord`] inside the event), so
//! after a crash the record and the change are either both replayed or both lost.
//! Records live with the student's state (lazy-loaded and checkpointed with it) and are
//! kept [`IDEMPOTENCY_TTL_MS`]; older ones are treated as absent and expired from redb
//! by the checkpoint.
//!
//! Two checks: a fast one before the operation (replay, reuse, or in flight → 409), and
//! one again under the student's write lock, which is what makes a duplicate that slips
//! past the first (e.g. after its twin's client hung up) see the stored answer.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Code};

use super::Engine;
use super::students::{Student, StudentState};

/// How long a stored answer is kept: 24 hours, in milliseconds.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3_600_000;

/// A stored first answer, as journaled and checkpointed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemRecord {
    /// `"{METHOD} {path}\x1f{key}"` (the caller is the student the record belongs to).
    pub scope: String,
    /// SHA-256 of the request body bytes.
    pub body_sha256: [u8; 32],
    /// HTTP status of the first answer (2xx).
    pub status: u16,
    /// Body of the first answer (JSON bytes).
    pub body: Vec<u8>,
    /// When it was answered, unix ms.
    pub at_ms: i64,
}

/// An idempotent request: its scope within the caller and its body's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRequest {
    /// `"{METHOD} {path}\x1f{key}"`.
    pub scope: String,
    /// SHA-256 of the body bytes.
    pub body_sha256: [u8; 32],
}

impl IdemRequest {
    /// Validates `key` (1–255 printable ASCII characters) and hashes `body`.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` for a malformed key.
    pub fn new(method: &str, path: &str, key: &str, body: &[u8]) -> Result<IdemRequest, ApiError> {
        let printable = key.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if key.is_empty() || key.len() > 255 || !printable {
            return Err(ApiError::new(
                Code::ValidationFailed,
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
            ));
        }
        Ok(IdemRequest {
            scope: format!("{method} {path}\u{1f}{key}"),
            body_sha256: Sha256::digest(body).into(),
        })
    }

    /// The record of this request's first answer.
    pub fn record(&self, status: u16, body: Vec<u8>, at_ms: i64) -> IdemRecord {
        IdemRecord {
            scope: self.scope.clone(),
            body_sha256: self.body_sha256,
            status,
            body,
            at_ms,
        }
    }
}

/// An answer that is either freshly decided, or the stored first answer of an earlier
/// request with the same idempotency key.
#[derive(Debug)]
pub enum Replied<T> {
    /// Decided and applied by this request.
    Fresh(T),
    /// Replayed: nothing was applied.
    Stored {
        /// The first answer's status.
        status: u16,
        /// The first answer's body.
        body: Vec<u8>,
    },
}

/// Marks a request in flight until dropped (then a duplicate is evaluated again).
#[derive(Debug)]
pub struct InFlight {
    student: Arc<Student>,
    scope: Box<str>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.student.state.write().srs.in_flight.remove(&self.scope);
    }
}

/// What the fast check found.
#[derive(Debug)]
pub enum Begin {
    /// Go on; the request is marked in flight while the guard lives.
    Proceed(InFlight),
    /// The stored first answer.
    Stored {
        /// Its status.
        status: u16,
        /// Its body.
        body: Vec<u8>,
    },
}

/// The stored answer for `req` in `state`, if any and still kept at `now_ms`.
///
/// # Errors
/// 422 `IDEMPOTENCY_KEY_REUSED` when the key was used with another body.
fn stored(
    state: &StudentState,
    req: &IdemRequest,
    now_ms: i64,
) -> Result<Option<(u16, Vec<u8>)>, ApiError> {
    match state.srs.idempotency.get(req.scope.as_str()) {
        Some(r) if r.at_ms > now_ms - IDEMPOTENCY_TTL_MS => {
            if r.body_sha256 == req.body_sha256 {
                Ok(Some((r.status, r.body.clone())))
            } else {
                Err(ApiError::new(
                    Code::IdempotencyKeyReused,
                    "This Idempotency-Key was already used with a different request body",
                ))
            }
        }
        _ => Ok(None),
    }
}

impl Engine {
    /// The fast check before an idempotent operation of `player_id`.
    ///
    /// # Errors
    /// 422 `IDEMPOTENCY_KEY_REUSED`, 409 `CONFLICT` while a duplicate is in flight, 500
    /// when the student cannot be loaded.
    pub fn idempotency_begin(&self, player_id: &str, req: &IdemRequest) -> Result<Begin, ApiError> {
        let student = self.student(player_id)?;
        let now_ms = self.now().as_millisecond();
        let mut state = student.state.write();
        if let Some((status, body)) = stored(&state, req, now_ms)? {
            return Ok(Begin::Stored { status, body });
        }
        if !state
            .srs
            .in_flight
            .insert(req.scope.clone().into_boxed_str())
        {
            return Err(ApiError::new(
                Code::Conflict,
                "A request with this Idempotency-Key is still being processed",
            ));
        }
        drop(state);
        Ok(Begin::Proceed(InFlight {
            student,
            scope: req.scope.clone().into_boxed_str(),
        }))
    }

    /// The check under the student's write lock: the stored answer if an earlier
    /// request with this key was applied meanwhile.
    ///
    /// # Errors
    /// 422 `IDEMPOTENCY_KEY_REUSED`.
    pub(crate) fn idempotency_recheck(
        &self,
        student: &Student,
        req: Option<&IdemRequest>,
    ) -> Result<Option<(u16, Vec<u8>)>, ApiError> {
        match req {
            Some(req) => stored(&student.state.read(), req, self.now().as_millisecond()),
            None => Ok(None),
        }
    }

    /// Stores a durable record in the student's state (dropping records past their
    /// time) and marks it for the next checkpoint.
    pub(super) fn apply_idempotency(
        &self,
        player_id: &Arc<str>,
        state: &mut StudentState,
        record: &IdemRecord,
    ) {
        let cutoff = record.at_ms - IDEMPOTENCY_TTL_MS;
        state.srs.idempotency.retain(|_, r| r.at_ms > cutoff);
        state
            .srs
            .idempotency
            .insert(record.scope.clone().into_boxed_str(), record.clone());
        self.inner()
            .srs
            .dirty
            .lock()
            .idempotency
            .insert((player_id.clone(), record.scope.clone().into_boxed_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated_and_scoped() {
        let a = IdemRequest::new("POST", "/api/v1/reviews", "k-1", b"{}").expect("valid");
        let b = IdemRequest::new("POST", "/api/v1/reviews", "k-1", b"{ }").expect("valid");
        assert_eq!(a.scope, b.scope);
        assert_ne!(a.body_sha256, b.body_sha256);
        assert!(IdemRequest::new("POST", "/x", "", b"").is_err());
        assert!(IdemRequest::new("POST", "/x", &"k".repeat(256), b"").is_err());
        assert!(IdemRequest::new("POST", "/x", "tab\there", b"").is_err());
        assert!(IdemRequest::new("POST", "/x", &"k".repeat(255), b"").is_ok());
    }
}
