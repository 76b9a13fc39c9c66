//! Request extractors: the authenticated caller (bearer token + device), and strict JSON
//! bodies (content type checked, unknown fields rejected, problems with JSON pointers).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::engine::accounts::Caller;
use crate::engine::groups::StaffScope;
use crate::error::{ApiError, Code};
use crate::players::account::Role;

use super::AppState;

/// Header carrying a student's device id (players.md).
pub const DEVICE_HEADER: &str = "x-device-id";

/// An authenticated caller of any role.
pub struct Auth(pub Caller);

/// An authenticated admin.
pub struct AdminAuth(pub Caller);

/// An authenticated staff member (admin or teacher) with the students they may read
/// about: for the read-only (R) admin routes of api.md. Students get 403 `FORBIDDEN`.
///
/// Handlers about one student call `scope.check(&player_id)?` (404 `NOT_FOUND`, the
/// same answer as an unknown id) before reading; lists filter with `scope.allows(id)`.
pub struct StaffAuth(pub Caller, pub StaffScope);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The raw `X-Device-ID` header, if present and readable.
pub fn device_header(parts: &Parts) -> Option<&str> {
    parts.headers.get(DEVICE_HEADER)?.to_str().ok()
}

/// The routes open to a caller who must change their password (players.md): the
/// password change itself, logout and the session read.
fn allowed_before_password_change(parts: &Parts) -> bool {
    use axum::http::Method;
    matches!(
        (&parts.method, parts.uri.path()),
        (&Method::POST, "/api/v1/auth/password")
            | (&Method::POST, "/api/v1/auth/logout")
            | (&Method::GET, "/api/v1/auth/session")
    )
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| {
            super::problem(ApiError::new(
                Code::Unauthenticated,
                "Send `Authorization: Bearer <token>` (from POST /api/v1/auth/login)",
            ))
        })?;
        let caller = state
            .engine
            .authenticate(token, device_header(parts))
            .map_err(super::problem)?;
        if caller.player.must_change_password && !allowed_before_password_change(parts) {
            return Err(super::problem(ApiError::new(
                Code::PasswordChangeRequired,
                "Change your password first (POST /api/v1/auth/password)",
            )));
        }
        parts
            .extensions
            .insert(super::PlayerId(caller.player.id.clone()));
        Ok(Auth(caller))
    }
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Auth(caller) = Auth::from_request_parts(parts, state).await?;
        if caller.role() != Role::Admin {
            return Err(super::problem(ApiError::new(
                Code::Forbidden,
                "This route is for administrators",
            )));
        }
        Ok(AdminAuth(caller))
    }
}

impl FromRequestParts<AppState> for StaffAuth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Auth(caller) = Auth::from_request_parts(parts, state).await?;
        if !caller.role().is_staff() {
            return Err(super::problem(ApiError::new(
                Code::Forbidden,
                "This route is for teachers and administrators",
            )));
        }
        let scope = state.engine.staff_scope(&caller);
        Ok(StaffAuth(caller, scope))
    }
}

/// A JSON body parsed strictly into `T` (which should `deny_unknown_fields`).
pub struct StrictJson<T>(pub T);

/// Checks the content type of a JSON body: absent or `application/json` (any
/// parameters) is accepted, anything else is 415.
///
/// # Errors
/// 415 `VALIDATION_FAILED`.
pub fn check_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    match headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(ct) => {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
            {
                Ok(())
            } else {
                Err(ApiError {
                    status: Some(415),
                    ..ApiError::new(
                        Code::ValidationFailed,
                        format!("expected Content-Type: application/json, got `{ct}`"),
                    )
                })
            }
        }
    }
}

/// Parses JSON bytes into `T`, mapping syntax errors to 400 and shape errors to 422 with
/// the JSON pointer of the offending field.
///
/// # Errors
/// 400 or 422 `VALIDATION_FAILED`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let inner = err.inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError {
                    status: Some(400),
                    ..ApiError::new(Code::ValidationFailed, format!("malformed JSON: {inner}"))
                });
            }
            let mut pointer = String::new();
            for segment in err.path().iter() {
                use serde_path_to_error::Segment;
                let part = match segment {
                    Segment::Seq { index } => index.to_string(),
                    Segment::Map { key } => key.replace('~', "~0").replace('/', "~1"),
                    Segment::Enum { variant } => variant.clone(),
                    Segment::Unknown => continue,
                };
                pointer.push('/');
                pointer.push_str(&part);
            }
            Err(ApiError::field(pointer, inner.to_string()))
        }
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for StrictJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers()).map_err(super::problem)?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| super::body_rejection(e.into_response()))?;
        parse_json(&bytes).map(StrictJson).map_err(super::problem)
    }
}

/// A strict JSON body together with its raw bytes (for the `Idempotency-Key` body
/// hash, api.md): same checks and errors as [`StrictJson`].
pub struct JsonWithBytes<T>(pub T, pub Bytes);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonWithBytes<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers()).map_err(super::problem)?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| super::body_rejection(e.into_response()))?;
        let value = parse_json(&bytes).map_err(super::problem)?;
        Ok(JsonWithBytes(value, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        hearts: u8,
        nested: Option<Vec<Inner>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        id: String,
    }

    #[test]
    fn json_problems_carry_pointers_and_statuses() {
        let e = parse_json::<Body>(b"{").expect_err("syntax");
        assert_eq!(e.http_status(), 400);
        let e = parse_json::<Body>(br#"{"hearts": "x"}"#).expect_err("type");
        assert_eq!(e.http_status(), 422);
        assert_eq!(e.errors[0].pointer, "/hearts");
        let e = parse_json::<Body>(br#"{"hearts": 1, "nested": [{"id": "a", "extra": 1}]}"#)
            .expect_err("unknown field");
        assert_eq!(e.errors[0].pointer, "/nested/0/extra");
        assert!(
            e.errors[0].message.contains("extra"),
            "{}",
            e.errors[0].message
        );
        let e = parse_json::<Body>(br#"{"hearts": 300}"#).expect_err("range");
        assert_eq!(e.errors[0].pointer, "/hearts");
        assert!(parse_json::<Body>(br#"{"hearts": 3}"#).is_ok());
    }
}
