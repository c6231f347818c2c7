//! The KIS access token (`POST /oauth2/tokenP`) and WebSocket approval key
//! (`POST /oauth2/Approval`), issued rarely and shared through Redis.
//!
//! - Cached in Redis under the namespace (`ns:source:kis:<kind>:<key hash>`, JSON with the
//!   expiry), so several `sise ingest` processes share one token and a restart reuses it.
//! - Issuing is guarded by a Redis key set with `SET NX PX <spacing>` and never released early:
//!   whoever sets it issues, everyone else waits for the token to appear in Redis, and no two
//!   issues of one key are ever closer than the spacing (61 s: KIS allows 1 per minute).
//! - Refreshed ahead of expiry (`refresh_margin`, 1 h); a token inside the margin but still
//!   valid keeps being used while another process holds the guard.
//! - [`TokenStore::invalidate`] drops a token a data call found expired (EGW00123/EGW00121),
//!   only if it is still the cached one, so many callers that saw the same stale token cause
//!   exactly one new issue.
//! - Without Redis the cache is per process (same spacing rule, logged once).
//!
//! Secrets (app key, secret, token, approval key) never appear in an error or log line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use sise_bus::now_ms;
use tokio::time::Instant;

use super::parse::{api_error, approval_answer, token_answer, ApiError};

/// The app key pair.
#[derive(Clone)]
pub struct Credentials {
    pub app_key: SecretString,
    pub app_secret: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// Which credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The REST access token (`tokenP`).
    Access,
    /// The WebSocket approval key (`Approval`).
    Approval,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "token",
            Kind::Approval => "approval",
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Cached {
    token: String,
    expires_ms: i64,
    issued_ms: i64,
}

/// Why a credential could not be had. Its text carries no secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("KIS refused the {what} request: {err}")]
    Refused { what: &'static str, err: ApiError },
    #[error("KIS {what} request failed: {detail}")]
    Transport { what: &'static str, detail: String },
    #[error("KIS {what} answer: HTTP {status}, {detail}")]
    Status {
        what: &'static str,
        status: u16,
        detail: String,
    },
    #[error("no {what} within {waited_s} s (another process holds the issue guard)")]
    Timeout { what: &'static str, waited_s: u64 },
}

impl TokenError {
    pub fn kind(&self) -> &'static str {
        match self {
            TokenError::Refused { .. } => "token_refused",
            TokenError::Transport { .. } => "token_transport",
            TokenError::Status { .. } => "token_status",
            TokenError::Timeout { .. } => "token_timeout",
        }
    }
}

/// Counters (for tests and logs).
#[derive(Debug, Default)]
pub struct TokenStats {
    /// Issue requests this process sent, by kind.
    pub access_issued: AtomicU64,
    pub approval_issued: AtomicU64,
    /// Tokens dropped after a data call found them expired or invalid.
    pub invalidated: AtomicU64,
}

/// The shared credential cache of one app key.
pub struct TokenStore {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
    redis: Option<ConnectionManager>,
    /// `ns:source:kis:<kind>:<hash>`; the guard adds `:issue`.
    keys: HashMap<Kind, String>,
    issue_spacing: Duration,
    refresh_margin: Duration,
    /// Serializes look-ups and issues inside this process; holds what it knows.
    local: tokio::sync::Mutex<Local>,
    pub stats: TokenStats,
}

#[derive(Default)]
struct Local {
    cached: HashMap<Kind, Cached>,
    /// When this process last issued (the guard when Redis is unreachable).
    last_issue: HashMap<Kind, Instant>,
}

impl TokenStore {
    /// `key_prefix` is the namespace's key for the source (`ns:source:kis`).
    pub fn new(
        http: reqwest::Client,
        base: &str,
        creds: Credentials,
        redis: Option<ConnectionManager>,
        key_prefix: &str,
        issue_spacing: Duration,
        refresh_margin: Duration,
    ) -> Self {
        let hash = sha2::Sha256::digest(creds.app_key.expose_secret().as_bytes());
        let short = hex::encode(&hash[..8]);
        let keys = [Kind::Access, Kind::Approval]
            .into_iter()
            .map(|k| (k, format!("{key_prefix}:{}:{short}", k.as_str())))
            .collect();
        TokenStore {
            http,
            base: base.trim_end_matches('/').to_owned(),
            creds,
            redis,
            keys,
            issue_spacing,
            refresh_margin,
            local: tokio::sync::Mutex::new(Local::default()),
            stats: TokenStats::default(),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    fn key(&self, kind: Kind) -> &str {
        self.keys.get(&kind).map(String::as_str).unwrap_or("")
    }

    async fn redis_get(&self, kind: Kind) -> Option<Cached> {
        let mut r = self.redis.clone()?;
        let got: redis::RedisResult<Option<String>> = redis::cmd("GET")
            .arg(self.key(kind))
            .query_async(&mut r)
            .await;
        match got {
            Ok(Some(s)) => serde_json::from_str(&s).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(source = "kis", error = %e, "token cache: Redis read failed");
                None
            }
        }
    }

    async fn redis_put(&self, kind: Kind, c: &Cached) {
        let Some(mut r) = self.redis.clone() else {
            return;
        };
        let ttl = (c.expires_ms - now_ms()).max(1_000);
        let Ok(json) = serde_json::to_string(c) else {
            return;
        };
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(self.key(kind))
            .arg(json)
            .arg("PX")
            .arg(ttl)
            .query_async(&mut r)
            .await;
        if let Err(e) = set {
            tracing::warn!(source = "kis", error = %e, "token cache: Redis write failed");
        }
    }

    /// Take the issue guard: true when this process may issue now.
    async fn take_guard(&self, kind: Kind, local: &mut Local) -> bool {
        let spacing_ms = self.issue_spacing.as_millis().max(1) as u64;
        if let Some(mut r) = self.redis.clone() {
            let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(format!("{}:issue", self.key(kind)))
                .arg(std::process::id())
                .arg("NX")
                .arg("PX")
                .arg(spacing_ms)
                .query_async(&mut r)
                .await;
            match set {
                Ok(v) => return v.is_some(),
                Err(e) => {
                    tracing::warn!(source = "kis", error = %e, "token cache: Redis unreachable; guarding the issue in this process only");
                }
            }
        }
        local
            .last_issue
            .get(&kind)
            .is_none_or(|t| t.elapsed() >= self.issue_spacing)
    }

    fn usable(&self, c: &Cached, with_margin: bool) -> bool {
        let margin = if with_margin {
            self.refresh_margin.as_millis() as i64
        } else {
            5_000
        };
        c.expires_ms - margin > now_ms()
    }

    /// A valid credential of `kind`: cached (this process, then Redis) or newly issued.
    pub async fn get(&self, kind: Kind) -> Result<SecretString, TokenError> {
        let what = kind.as_str();
        let mut local = self.local.lock().await;
        let started = Instant::now();
        // Another process issuing answers within a second or two; longer means its issue
        // failed and the guard blocks until the spacing is over: fail fast, the caller retries.
        let max_wait = self.issue_spacing.min(Duration::from_secs(5));
        loop {
            if let Some(c) = local.cached.get(&kind) {
                if self.usable(c, true) {
                    return Ok(SecretString::from(c.token.clone()));
                }
            }
            if let Some(c) = self.redis_get(kind).await {
                let fresh = self.usable(&c, true);
                let token = c.token.clone();
                local.cached.insert(kind, c);
                if fresh {
                    return Ok(SecretString::from(token));
                }
            }
            if self.take_guard(kind, &mut local).await {
                local.last_issue.insert(kind, Instant::now());
                let c = self.issue(kind).await?;
                self.redis_put(kind, &c).await;
                let token = c.token.clone();
                local.cached.insert(kind, c);
                return Ok(SecretString::from(token));
            }
            // Someone issued within the spacing (or is issuing): a still-valid old token
            // serves meanwhile; else wait for the new one to appear in Redis.
            if let Some(c) = local.cached.get(&kind) {
                if self.usable(c, false) {
                    return Ok(SecretString::from(c.token.clone()));
                }
            }
            if started.elapsed() > max_wait {
                return Err(TokenError::Timeout {
                    what,
                    waited_s: started.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Drop `stale` (a data call said it expired or is invalid) if it is still the cached one;
    /// the next [`TokenStore::get`] then issues a new one (once, whoever asks first).
    pub async fn invalidate(&self, kind: Kind, stale: &SecretString) {
        let mut local = self.local.lock().await;
        let same = |c: &Cached| c.token == stale.expose_secret();
        if local.cached.get(&kind).is_some_and(same) {
            local.cached.remove(&kind);
            self.stats.invalidated.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                source = "kis",
                kind = kind.as_str(),
                "credential rejected as expired; refreshing once"
            );
        }
        if self.redis_get(kind).await.as_ref().is_some_and(same) {
            if let Some(mut r) = self.redis.clone() {
                let _: redis::RedisResult<()> = redis::cmd("DEL")
                    .arg(self.key(kind))
                    .query_async(&mut r)
                    .await;
            }
        }
    }

    async fn issue(&self, kind: Kind) -> Result<Cached, TokenError> {
        let what = kind.as_str();
        let (path, body) = match kind {
            Kind::Access => (
                "/oauth2/tokenP",
                serde_json::json!({
                    "grant_type": "client_credentials",
                    "appkey": self.creds.app_key.expose_secret(),
                    "appsecret": self.creds.app_secret.expose_secret(),
                }),
            ),
            Kind::Approval => (
                "/oauth2/Approval",
                serde_json::json!({
                    "grant_type": "client_credentials",
                    "appkey": self.creds.app_key.expose_secret(),
                    "secretkey": self.creds.app_secret.expose_secret(),
                }),
            ),
        };
        match kind {
            Kind::Access => &self.stats.access_issued,
            Kind::Approval => &self.stats.approval_issued,
        }
        .fetch_add(1, Ordering::Relaxed);
        tracing::info!(source = "kis", kind = what, "issuing a new KIS credential");
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/json; charset=UTF-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| TokenError::Transport {
                what,
                detail: e.without_url().to_string(),
            })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| TokenError::Transport {
            what,
            detail: e.without_url().to_string(),
        })?;
        let v: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => {
                return Err(TokenError::Status {
                    what,
                    status,
                    detail: "no JSON body".into(),
                })
            }
        };
        if let Some(err) = api_error(&v) {
            let err = ApiError {
                message: self.scrub(&err.message),
                ..err
            };
            return Err(TokenError::Refused { what, err });
        }
        if status != 200 {
            return Err(TokenError::Status {
                what,
                status,
                detail: "unexpected status".into(),
            });
        }
        let now = now_ms();
        let bad = |e: super::parse::ParseError| TokenError::Status {
            what,
            status,
            detail: e.to_string(),
        };
        match kind {
            Kind::Access => {
                let t = token_answer(&v).map_err(bad)?;
                let rel = t.expires_in.filter(|s| *s > 0).map(|s| now + s * 1000);
                // The earlier of the two expiries, unless the absolute one is already past
                // (a clock skew): then the relative one.
                let expires_ms = match (t.expires_at_ms.filter(|e| *e > now), rel) {
                    (Some(a), Some(r)) => a.min(r),
                    (Some(a), None) => a,
                    (None, Some(r)) => r,
                    (None, None) => now + 86_400_000,
                };
                Ok(Cached {
                    token: t.access_token,
                    expires_ms,
                    issued_ms: now,
                })
            }
            Kind::Approval => Ok(Cached {
                token: approval_answer(&v).map_err(bad)?,
                expires_ms: now + 86_400_000,
                issued_ms: now,
            }),
        }
    }

    fn scrub(&self, text: &str) -> String {
        let t = crate::poll::redact(text, self.creds.app_key.expose_secret());
        crate::poll::redact(&t, self.creds.app_secret.expose_secret())
    }
}

/// Shareable handle.
pub type Tokens = Arc<TokenStore>;
