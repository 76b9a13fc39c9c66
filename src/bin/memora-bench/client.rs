//! The HTTP side of the bench: one shared connection pool, students' credentials, and
//! a request helper that times each call and classifies its outcome.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A student as the bench drives it.
#[derive(Debug, Clone)]
pub struct Student {
    /// `bench-{i}@bench.local`.
    pub email: String,
    /// Stable per email, because a student may only add their first device alone.
    pub device_id: String,
    /// Bearer token after login (empty before).
    pub token: String,
    /// The player's id, from the login answer (empty before).
    pub player_id: String,
}

impl Student {
    /// The `i`-th bench student.
    pub fn nth(i: u32) -> Student {
        let email = format!("bench-{i}@bench.local");
        Student {
            device_id: device_id_for(&email),
            email,
            token: String::new(),
            player_id: String::new(),
        }
    }
}

/// The outcome of one timed request.
pub struct Answer {
    /// HTTP status, 0 when no answer arrived.
    pub status: u16,
    /// Wall time from send to the end of the body.
    pub latency: Duration,
    /// The body (empty on transport errors).
    pub body: Vec<u8>,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The key errors are counted under: `"{status} {code}"`, or `"transport"`.
    pub fn error_key(&self) -> String {
        if self.status == 0 {
            return "transport".to_string();
        }
        let code = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string));
        match code {
            Some(code) => format!("{} {code}", self.status),
            None => self.status.to_string(),
        }
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The shared client: one pool for all connections, sized so that every worker keeps
/// its connection alive.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    /// A client for `base` keeping up to `connections` idle connections.
    ///
    /// # Errors
    /// If the TLS-less client cannot be built.
    pub fn new(base: &str, connections: usize) -> anyhow::Result<Http> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("build HTTP client")?;
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// Sends one request and times it to the end of the body. Never fails: transport
    /// errors come back as status 0.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some((token, device)) = auth {
            if !token.is_empty() {
                req = req.bearer_auth(token);
            }
            req = req.header("X-Device-ID", device);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let start = Instant::now();
        let (status, body) = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(b) => (status, b.to_vec()),
                    Err(_) => (0, Vec::new()),
                }
            }
            Err(_) => (0, Vec::new()),
        };
        Answer {
            status,
            latency: start.elapsed(),
            body,
        }
    }

    /// Logs in with `X-Device-ID: device` and returns the answer (token inside).
    pub async fn login(&self, email: &str, password: &str, device: &str) -> Answer {
        let body = json!({"email": email, "password": password, "device_name": "memora-bench"});
        self.send(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            Some(("", device)),
            Some(&body),
        )
        .await
    }

    /// Logs in and returns the token.
    ///
    /// # Errors
    /// Any answer other than 200 with a `token`.
    pub async fn token(&self, email: &str, password: &str, device: &str) -> anyhow::Result<String> {
        self.session(email, password, device)
            .await
            .map(|(token, _)| token)
    }

    /// Logs in and returns the token and the player id.
    ///
    /// # Errors
    /// Any answer other than 200 with a `token`.
    pub async fn session(
        &self,
        email: &str,
        password: &str,
        device: &str,
    ) -> anyhow::Result<(String, String)> {
        let a = self.login(email, password, device).await;
        if !a.is_ok() {
            bail!(
                "login {email}: {} {}",
                a.error_key(),
                String::from_utf8_lossy(&a.body)
            );
        }
        let v = a.json();
        let token = v
            .get("token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("login {email}: no token in the answer"))?;
        let player = v
            .get("player_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok((token, player))
    }

    /// Sends a text body (e.g. CSV) with `content_type`, timed like [`Http::send`].
    pub async fn send_text(
        &self,
        path: &str,
        auth: Option<(&str, &str)>,
        content_type: &str,
        body: &str,
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type)
            .body(body.to_owned());
        if let Some((token, device)) = auth {
            req = req.bearer_auth(token).header("X-Device-ID", device);
        }
        let start = Instant::now();
        let (status, body) = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (
                    status,
                    resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                )
            }
            Err(_) => (0, Vec::new()),
        };
        Answer {
            status,
            latency: start.elapsed(),
            body,
        }
    }
}

/// A stable v4-shaped UUID derived from `email` (FNV-1a, spread to 128 bits), so that
/// repeated bench runs log in from the same authorized device.
pub fn device_id_for(email: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in email.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let lo = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&h.to_le_bytes());
    bytes[8..].copy_from_slice(&lo.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn students_have_stable_distinct_devices() {
        let a = Student::nth(3);
        assert_eq!(a.email, "bench-3@bench.local");
        assert_eq!(a.device_id, Student::nth(3).device_id);
        assert_ne!(a.device_id, Student::nth(4).device_id);
        let u = uuid::Uuid::parse_str(&a.device_id).expect("uuid");
        assert_eq!(u.get_version_num(), 4);
    }

    #[test]
    fn error_keys() {
        let a = Answer {
            status: 409,
            latency: Duration::ZERO,
            body: br#"{"code":"NOT_UNLOCKED","status":409}"#.to_vec(),
        };
        assert_eq!(a.error_key(), "409 NOT_UNLOCKED");
        let a = Answer {
            status: 502,
            latency: Duration::ZERO,
            body: b"bad gateway".to_vec(),
        };
        assert_eq!(a.error_key(), "502");
        let a = Answer {
            status: 0,
            latency: Duration::ZERO,
            body: Vec::new(),
        };
        assert_eq!(a.error_key(), "transport");
    }
}
