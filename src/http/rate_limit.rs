//! Rate limits (players.md "Rate limits") with `governor`: login per account and per
//! client IP, lesson completions, review submissions, and wallet/progress reads per
//! student; 429 `RATE_LIMITED` with `Retry-After` and `X-RateLimit-Limit/Remaining/Reset`.
//! Admins are exempt from all but login; `rate_limits.enabled = false` disables all.
//!
//! The limiters read time through the engine's injected [`Clock`](crate::clock::Clock),
//! so tests drive them with the same fake clock as everything else — no sleeps.
//! `X-RateLimit-Reset` is the number of seconds until the bucket is full again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::{Config, HttpConfig};
use crate::error::{ApiError, Code};
use crate::players::account::Role;

use super::AppState;

/// governor's view of the engine clock: time since the Unix epoch.
#[derive(Clone)]
pub struct EngineClock(Arc<dyn crate::clock::Clock>);

impl governor::clock::Clock for EngineClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let us = self.0.now().as_microsecond();
        Duration::from_micros(u64::try_from(us).unwrap_or(0))
    }
}

type Limiter<K> = RateLimiter<K, DashMapStateStore<K>, EngineClock, StateInformationMiddleware>;

/// The endpoint groups limited per student.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `POST /api/v1/lessons/{id}/complete`.
    Completions,
    /// `POST /api/v1/reviews`.
    Reviews,
    /// `GET /api/v1/wallet`, `GET /api/v1/subjects/{id}/progress`.
    Reads,
}

/// The state of a bucket after an allowed request, for the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Requests per minute.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
}

/// A refused request: rendered as 429 `RATE_LIMITED` with `Retry-After` and the
/// `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The bucket's state (remaining 0).
    pub allowance: Allowance,
    /// Seconds until one more request is allowed.
    pub retry_secs: u64,
}

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let (limit, retry) = (self.allowance.limit, self.retry_secs);
        let mut response = super::problem(ApiError {
            retry_after: Some(retry),
            ..ApiError::new(
                Code::RateLimited,
                format!("Too many requests: at most {limit} per minute; retry in {retry} s"),
            )
        });
        set_headers(response.headers_mut(), self.allowance);
        response
    }
}

/// Every limiter of the server.
pub struct RateLimits {
    enabled: bool,
    clock: EngineClock,
    login_account: Limiter<String>,
    login_ip: Limiter<IpAddr>,
    completions: Limiter<String>,
    reviews: Limiter<String>,
    reads: Limiter<String>,
    checks: AtomicU64,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32, clock: &EngineClock) -> Limiter<K> {
    let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    RateLimiter::dashmap_with_clock(Quota::per_minute(n), clock.clone())
        .with_middleware::<StateInformationMiddleware>()
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateLimits {
    /// The limiters of `config.rate_limits`, reading time from `clock`.
    pub fn new(config: &Config, clock: Arc<dyn crate::clock::Clock>) -> RateLimits {
        let r = &config.rate_limits;
        let clock = EngineClock(clock);
        RateLimits {
            enabled: r.enabled,
            login_account: limiter(r.login_per_account_per_minute, &clock),
            login_ip: limiter(r.login_per_ip_per_minute, &clock),
            completions: limiter(r.lesson_completions_per_minute, &clock),
            reviews: limiter(r.review_submissions_per_minute, &clock),
            reads: limiter(r.reads_per_minute, &clock),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &Limiter<K>,
        key: &K,
    ) -> Result<Allowance, Limited> {
        // Forget keys whose buckets are full again now and then, so memory stays bounded
        // by the keys active within a minute.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
        }
        match limiter.check_key(key) {
            Ok(snapshot) => {
                let quota = snapshot.quota();
                let limit = quota.burst_size().get();
                let remaining = snapshot.remaining_burst_capacity();
                let missing = limit.saturating_sub(remaining + 1);
                Ok(Allowance {
                    limit,
                    remaining,
                    reset_secs: ceil_secs(quota.replenish_interval() * missing),
                })
            }
            Err(not_until) => {
                use governor::clock::Clock as _;
                let wait = not_until.wait_time_from(self.clock.now());
                let quota = not_until.quota();
                let limit = quota.burst_size().get();
                let retry = ceil_secs(wait).max(1);
                Err(Limited {
                    allowance: Allowance {
                        limit,
                        remaining: 0,
                        reset_secs: ceil_secs(quota.burst_size_replenished_in()).max(retry),
                    },
                    retry_secs: retry,
                })
            }
        }
    }

    /// Counts a login attempt for the client IP and the account (`email` as typed; it is
    /// normalized here so case does not split the bucket).
    ///
    /// # Errors
    /// [`Limited`]: the 429 answer to send.
    pub fn check_login(&self, ip: IpAddr, email: &str) -> Result<(), Limited> {
        if !self.enabled {
            return Ok(());
        }
        self.check(&self.login_ip, &ip)?;
        self.check_account(email)
    }

    /// Counts a password attempt against an account's login bucket only (a password
    /// change guesses the current password like a login).
    ///
    /// # Errors
    /// [`Limited`]: the 429 answer to send.
    pub fn check_account(&self, email: &str) -> Result<(), Limited> {
        if !self.enabled {
            return Ok(());
        }
        let account = crate::players::account::normalize_email(email)
            .unwrap_or_else(|| email.trim().to_lowercase());
        self.check(&self.login_account, &account).map(|_| ())
    }

    /// Counts a request of `group` for a player; `None` when limits are off.
    ///
    /// # Errors
    /// [`Limited`]: the 429 answer to send.
    pub fn check_player(
        &self,
        group: Group,
        player_id: &str,
    ) -> Result<Option<Allowance>, Limited> {
        if !self.enabled {
            return Ok(None);
        }
        let limiter = match group {
            Group::Completions => &self.completions,
            Group::Reviews => &self.reviews,
            Group::Reads => &self.reads,
        };
        self.check(limiter, &player_id.to_owned()).map(Some)
    }
}

fn set_headers(headers: &mut HeaderMap, a: Allowance) {
    for (name, value) in [
        ("x-ratelimit-limit", u64::from(a.limit)),
        ("x-ratelimit-remaining", u64::from(a.remaining)),
        ("x-ratelimit-reset", a.reset_secs),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

async fn limit(state: AppState, group: Group, req: Request<Body>, next: Next) -> Response {
    let owner = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| state.engine.session_owner(token.trim()));
    // Unknown tokens are refused by the handler; admins are exempt.
    let Some((player_id, _)) = owner.filter(|(_, role)| *role != Role::Admin) else {
        return next.run(req).await;
    };
    match state.limits.check_player(group, &player_id) {
        Ok(allowance) => {
            let mut response = next.run(req).await;
            if let Some(a) = allowance {
                set_headers(response.headers_mut(), a);
            }
            response
        }
        Err(limited) => {
            let engine = &state.engine;
            engine.audit_later(
                engine
                    .audit_record(
                        crate::players::audit::AuditKind::RateLimited,
                        "RATE_LIMITED",
                    )
                    .player(&player_id)
                    .detail("group", format!("{group:?}").to_lowercase()),
            );
            limited.into_response()
        }
    }
}

/// Middleware limiting lesson completions per student.
pub async fn completions(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    limit(state, Group::Completions, req, next).await
}

/// Middleware limiting review submissions per student.
pub async fn reviews(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    limit(state, Group::Reviews, req, next).await
}

/// Middleware limiting wallet and progress reads per student.
pub async fn reads(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    limit(state, Group::Reads, req, next).await
}

/// The client's IP: the socket peer, or — when the peer is a trusted proxy and
/// `http.client_ip_header` is set — the rightmost address of that header that is not a
/// trusted proxy itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// [`ClientIp`] from a peer address and the request headers.
pub fn client_ip(config: &HttpConfig, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if config.client_ip_header.is_empty() {
        return peer;
    }
    let trusted = config.trusted_networks();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all(config.client_ip_header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(client_ip(
            &state.engine.config().http,
            peer,
            &parts.headers,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::load(
            None,
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .expect("config")
    }

    #[test]
    fn buckets_refill_with_the_injected_clock() {
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().expect("ts"));
        let limits = RateLimits::new(&config(&[]), Arc::new(clock.clone()));
        for i in 0..10u32 {
            let a = limits
                .check_player(Group::Completions, "p")
                .expect("allowed")
                .expect("enabled");
            assert_eq!((a.limit, a.remaining), (10, 9 - i));
        }
        let refused = limits
            .check_player(Group::Completions, "p")
            .expect_err("11th refused")
            .into_response();
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "6");
        assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
        // Another student has a bucket of their own.
        assert!(limits.check_player(Group::Completions, "q").is_ok());
        clock.advance(Duration::from_secs(6));
        assert!(limits.check_player(Group::Completions, "p").is_ok());
        assert!(limits.check_player(Group::Completions, "p").is_err());
    }

    #[test]
    fn login_counts_per_account_case_insensitively_and_per_ip() {
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().expect("ts"));
        let limits = RateLimits::new(&config(&[]), Arc::new(clock));
        let ip: IpAddr = "10.1.2.3".parse().expect("ip");
        for _ in 0..5 {
            assert!(limits.check_login(ip, "Ana@School.org").is_ok());
        }
        assert!(limits.check_login(ip, "ana@school.org").is_err());
        assert!(limits.check_login(ip, "bo@school.org").is_ok());
    }

    #[test]
    fn disabled_limits_allow_everything() {
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().expect("ts"));
        let limits = RateLimits::new(
            &config(&[("MEMORA_RATE_LIMITS__ENABLED", "false")]),
            Arc::new(clock),
        );
        for _ in 0..100 {
            assert_eq!(limits.check_player(Group::Reads, "p").ok(), Some(None));
        }
    }

    #[test]
    fn proxy_header_is_believed_only_from_trusted_peers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.2"),
        );
        let peer: IpAddr = "10.0.0.1".parse().expect("ip");
        let off = config(&[]);
        assert_eq!(client_ip(&off.http, Some(peer), &headers), peer);
        let on = config(&[
            ("MEMORA_HTTP__CLIENT_IP_HEADER", "X-Forwarded-For"),
            ("MEMORA_HTTP__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
        ]);
        let client: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(client_ip(&on.http, Some(peer), &headers), client);
        let stranger: IpAddr = "198.51.100.7".parse().expect("ip");
        assert_eq!(client_ip(&on.http, Some(stranger), &headers), stranger);
    }
}
