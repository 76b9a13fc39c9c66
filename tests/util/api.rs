//! A thin async client for the HTTP contract (api.md, progress.md, players.md), so
//! that black-box tests read as scenarios rather than as request plumbing.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

/// Why a call did not give a 2xx answer.
#[derive(Debug, Clone)]
pub enum CallError {
    /// No HTTP answer at all (refused, reset, timed out): e.g. the server was killed.
    Transport(String),
    /// An HTTP answer outside 2xx; `code` is the problem+json `code` when present.
    Status {
        /// HTTP status.
        status: u16,
        /// Stable error code, or "" when the body was not a problem document.
        code: String,
        /// The raw body, for messages.
        body: String,
    },
}

impl CallError {
    /// The stable error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Status { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "transport error: {e}"),
            CallError::Status { status, body, .. } => write!(f, "HTTP {status}: {body}"),
        }
    }
}

/// A logged-in caller: bearer token plus the device id it logged in with.
#[derive(Debug, Clone)]
pub struct Session {
    /// Bearer token.
    pub token: String,
    /// The `X-Device-ID` sent with every request (students must keep it stable).
    pub device_id: String,
    /// The player's id as the server gave it.
    pub player_id: String,
}

/// The HTTP client bound to one server URL; cheap to clone.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`, without trailing slash.
    pub base: String,
}

impl Api {
    /// A client for `base` with a 10 s per-request timeout, so a killed server never
    /// hangs a test.
    pub fn new(base: &str) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .expect("reqwest client");
        Api {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Sends one request and decodes a 2xx JSON body (`Value::Null` when empty).
    ///
    /// # Errors
    /// [`CallError::Transport`] without an answer, [`CallError::Status`] otherwise.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        session: Option<&Session>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), CallError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(s) = session {
            req = req
                .bearer_auth(&s.token)
                .header("X-Device-ID", &s.device_id);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        if (200..300).contains(&status) {
            let value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).map_err(|e| CallError::Status {
                    status,
                    code: "BAD_JSON".into(),
                    body: format!("{e}: {}", String::from_utf8_lossy(&bytes)),
                })?
            };
            Ok((status, value))
        } else {
            let body = String::from_utf8_lossy(&bytes).into_owned();
            let code = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            Err(CallError::Status { status, code, body })
        }
    }

    /// `GET path` with a session.
    async fn get(&self, path: &str, s: &Session) -> Result<Value, CallError> {
        Ok(self
            .call(reqwest::Method::GET, path, Some(s), None)
            .await?
            .1)
    }

    /// `GET path` without credentials; returns the status (0 when unreachable).
    pub async fn status_of(&self, path: &str) -> u16 {
        match self.call(reqwest::Method::GET, path, None, None).await {
            Ok((status, _)) => status,
            Err(CallError::Status { status, .. }) => status,
            Err(CallError::Transport(_)) => 0,
        }
    }

    /// Polls `/readyz` until 200 or `timeout`; returns whether it became ready.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.status_of("/readyz").await == 200 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// `POST /api/v1/auth/login` with `X-Device-ID: device_id`.
    ///
    /// # Errors
    /// As [`Api::call`]; e.g. 401 `INVALID_CREDENTIALS`, 403 `DEVICE_NOT_AUTHORIZED`.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_id: &str,
    ) -> Result<Session, CallError> {
        let resp = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .header("X-Device-ID", device_id)
            .json(&json!({"email": email, "password": password, "device_name": "test device"}))
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        if status != 200 {
            let code = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            return Err(CallError::Status { status, code, body });
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| CallError::Status {
            status,
            code: "BAD_JSON".into(),
            body: format!("{e}: {body}"),
        })?;
        Ok(Session {
            token: str_field(&v, "token"),
            player_id: str_field(&v, "player_id"),
            device_id: device_id.to_string(),
        })
    }

    /// `PUT /api/v1/admin/subjects/{id}` with the document; returns 200 or 201.
    ///
    /// # Errors
    /// As [`Api::call`]; 422 `VALIDATION_FAILED` for a bad document.
    pub async fn put_subject(&self, admin: &Session, doc: &Value) -> Result<u16, CallError> {
        let path = format!("/api/v1/admin/subjects/{}", str_field(doc, "id"));
        Ok(self
            .call(reqwest::Method::PUT, &path, Some(admin), Some(doc))
            .await?
            .0)
    }

    /// `PUT /api/v1/admin/plans/{id}` with the document; returns 200 or 201.
    ///
    /// # Errors
    /// As [`Api::call`].
    pub async fn put_plan(&self, admin: &Session, doc: &Value) -> Result<u16, CallError> {
        let path = format!("/api/v1/admin/plans/{}", str_field(doc, "id"));
        Ok(self
            .call(reqwest::Method::PUT, &path, Some(admin), Some(doc))
            .await?
            .0)
    }

    /// `POST /api/v1/admin/players` for a student on `plan_id`; returns the new id.
    ///
    /// # Errors
    /// As [`Api::call`]; e.g. 409 `CONFLICT` for a taken email.
    pub async fn create_student(
        &self,
        admin: &Session,
        email: &str,
        password: &str,
        plan_id: &str,
    ) -> Result<String, CallError> {
        let body = json!({
            "email": email, "password": password, "display_name": email,
            "plan_id": plan_id, "timezone": "UTC",
        });
        let (_, v) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/admin/players",
                Some(admin),
                Some(&body),
            )
            .await?;
        Ok(str_field(&v, "id"))
    }

    /// `GET /api/v1/subjects/{subject}/progress`.
    ///
    /// # Errors
    /// As [`Api::call`].
    pub async fn progress(&self, s: &Session, subject: &str) -> Result<Value, CallError> {
        self.get(&format!("/api/v1/subjects/{subject}/progress"), s)
            .await
    }

    /// `POST /api/v1/lessons/{lesson}/complete {hearts}`.
    ///
    /// # Errors
    /// As [`Api::call`]; e.g. 409 `NOT_UNLOCKED`.
    pub async fn complete(
        &self,
        s: &Session,
        lesson: &str,
        hearts: u8,
    ) -> Result<Value, CallError> {
        let path = format!("/api/v1/lessons/{lesson}/complete");
        let body = json!({ "hearts": hearts });
        Ok(self
            .call(reqwest::Method::POST, &path, Some(s), Some(&body))
            .await?
            .1)
    }

    /// `GET /api/v1/wallet`.
    ///
    /// # Errors
    /// As [`Api::call`].
    pub async fn wallet(&self, s: &Session) -> Result<Value, CallError> {
        self.get("/api/v1/wallet", s).await
    }

    /// `GET /api/v1/me`.
    ///
    /// # Errors
    /// As [`Api::call`].
    pub async fn me(&self, s: &Session) -> Result<Value, CallError> {
        self.get("/api/v1/me", s).await
    }
}

/// A string field of a JSON object, or "" (the assertion that reads it will say more).
pub fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// An integer field of a JSON object, or 0.
pub fn i64_field(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or_default()
}

/// `(status, code)` of a call: `(2xx, "")` on success.
pub fn outcome(r: Result<(u16, Value), CallError>) -> (u16, String) {
    match r {
        Ok((status, _)) => (status, String::new()),
        Err(CallError::Status { status, code, .. }) => (status, code),
        Err(e) => panic!("transport error: {e}"),
    }
}

/// `(status, code)` of a call (see [`outcome`]).
pub async fn call(
    api: &Api,
    m: Method,
    path: &str,
    s: Option<&Session>,
    body: Option<Value>,
) -> (u16, String) {
    outcome(api.call(m, path, s, body.as_ref()).await)
}

/// The JSON body of a call that must succeed (panics with the method and path).
pub async fn ok(api: &Api, m: Method, path: &str, s: &Session, body: Option<Value>) -> Value {
    match api.call(m.clone(), path, Some(s), body.as_ref()).await {
        Ok((_, v)) => v,
        Err(e) => panic!("{m} {path}: {e}"),
    }
}
