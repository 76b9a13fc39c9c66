//! The one API error type: a stable `code` (api.md) plus RFC 9457 problem details.
//!
//! Engine operations return [`ApiError`]; the HTTP layer renders it as
//! `application/problem+json`. Internal causes are logged, never echoed to clients.

use serde::Serialize;

/// The stable error codes of api.md. Clients switch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Code {
    ValidationFailed,
    PayloadTooLarge,
    Unauthenticated,
    InvalidCredentials,
    PasswordChangeRequired,
    DeviceIdRequired,
    DeviceNotAuthorized,
    DeviceLimit,
    SessionReplaced,
    SessionEnded,
    Forbidden,
    NotFound,
    InvalidSubject,
    InvalidLesson,
    InvalidQuestion,
    NotEnrolled,
    AccessDenied,
    NotUnlocked,
    NoHearts,
    NoActiveSeason,
    Conflict,
    IdempotencyKeyReused,
    RateLimited,
    StorageUnavailable,
    Internal,
}

impl Code {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        use Code::*;
        match self {
            ValidationFailed => 422,
            PayloadTooLarge => 413,
            Unauthenticated | InvalidCredentials | SessionReplaced | SessionEnded => 401,
            DeviceIdRequired => 400,
            PasswordChangeRequired
            | DeviceNotAuthorized
            | Forbidden
            | NotEnrolled
            | AccessDenied => 403,
            NotFound | InvalidSubject | InvalidLesson => 404,
            DeviceLimit | NotUnlocked | NoActiveSeason | Conflict => 409,
            InvalidQuestion | NoHearts | IdempotencyKeyReused => 422,
            RateLimited => 429,
            StorageUnavailable => 503,
            Internal => 500,
        }
    }

    /// A short human title (the problem's `title`).
    pub fn title(self) -> &'static str {
        use Code::*;
        match self {
            ValidationFailed => "The request is not valid",
            PayloadTooLarge => "The request body is too large",
            Unauthenticated => "Authentication required",
            InvalidCredentials => "Invalid email or password",
            PasswordChangeRequired => "Password change required",
            DeviceIdRequired => "Device id required",
            DeviceNotAuthorized => "Device not authorized",
            DeviceLimit => "Device limit reached",
            SessionReplaced => "Another device has logged in",
            SessionEnded => "Session ended",
            Forbidden => "Forbidden",
            NotFound => "Not found",
            InvalidSubject => "Unknown subject",
            InvalidLesson => "Unknown lesson",
            InvalidQuestion => "Unknown question",
            NotEnrolled => "Not enrolled",
            AccessDenied => "Access denied",
            NotUnlocked => "Lesson not unlocked",
            NoHearts => "No hearts left",
            NoActiveSeason => "No active season",
            Conflict => "Conflict",
            IdempotencyKeyReused => "Idempotency key reused with a different request",
            RateLimited => "Too many requests",
            StorageUnavailable => "Storage unavailable",
            Internal => "Internal error",
        }
    }
}

/// One field problem of a 422: a JSON pointer into the request and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// RFC 6901 pointer into the request body ("" for the whole body).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// An API error: what the client is told.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// Stable code.
    pub code: Code,
    /// Human explanation for this occurrence.
    pub detail: String,
    /// Field problems (422).
    pub errors: Vec<FieldProblem>,
    /// Overrides the code's status (400 or 415 for unreadable bodies).
    pub status: Option<u16>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a detail message.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            status: None,
            retry_after: None,
        }
    }

    /// 422 `VALIDATION_FAILED` listing field problems.
    pub fn validation(errors: Vec<FieldProblem>) -> Self {
        let detail = match errors.len() {
            1 => "1 problem in the request".to_owned(),
            n => format!("{n} problems in the request"),
        };
        ApiError {
            errors,
            ..ApiError::new(Code::ValidationFailed, detail)
        }
    }

    /// 422 with one problem.
    pub fn field(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldProblem {
            pointer: pointer.into(),
            message: message.into(),
        }])
    }

    /// 500: the cause is logged here and not shown to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            Code::Internal,
            "An internal error occurred; it has been logged",
        )
    }

    /// 503 `STORAGE_UNAVAILABLE`: the change was not made durable and was not applied.
    pub fn storage(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "journal write failed");
        ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                Code::StorageUnavailable,
                "The change could not be stored durably and was not applied; retry later",
            )
        }
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.code.status())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

/// The body of an `application/problem+json` answer (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// A URI naming the problem type (stable per code).
    #[serde(rename = "type")]
    pub type_: String,
    /// Short title.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// This occurrence.
    pub detail: &'a str,
    /// Stable code.
    pub code: Code,
    /// Field problems.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: &'a [FieldProblem],
}

impl ApiError {
    /// The problem document of this error.
    pub fn problem(&self) -> Problem<'_> {
        let code = serde_json::to_value(self.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Problem {
            type_: format!(
                "https://memora.dev/problems/{}",
                code.to_lowercase().replace('_', "-")
            ),
            title: self.code.title(),
            status: self.http_status(),
            detail: &self.detail,
            code: self.code,
            errors: &self.errors,
        }
    }
}
