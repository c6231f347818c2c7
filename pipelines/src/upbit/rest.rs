//! Upbit's public quotation REST API (`SISE_UPBIT_REST_URL`): market list, ticker snapshot and
//! recent trades, within Upbit's limits.
//!
//! - No `Origin` header and no auth: public quotation only.
//! - Per rate-limit group (whatever `Remaining-Req` names), requests are spaced to stay under
//!   10 per second, and when `sec` reaches 0 the next request of that group waits for the next
//!   one-second window.
//! - 429 → [`RestError::RateLimited`] (the caller backs off ≥ 1 s with jitter and reports
//!   degraded); 418 → [`RestError::Blocked`], and every further call fails fast until the block
//!   (the time named in the answer, else 60 s) is over.
//! - A non-JSON or error body is an error, never data; every request has a timeout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::parse::{
    block_seconds, iso_utc, parse_remaining_req, ErrorBody, RestCandle, RestMarket, RestTicker,
    RestTrade,
};

/// Smallest spacing of two requests of one group (10/s allowed; keep a margin).
const MIN_SPACING: Duration = Duration::from_millis(110);
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("rate limited (429) on {path}")]
    RateLimited {
        path: String,
        retry_after: Option<Duration>,
    },
    #[error("IP blocked by Upbit (418) for {0:?}")]
    Blocked(Duration),
    #[error("HTTP {status} on {path}: {detail}")]
    Status {
        status: u16,
        path: String,
        detail: String,
    },
    #[error("bad answer on {path}: {detail}")]
    Body { path: String, detail: String },
    #[error("request to {path} failed: {detail}")]
    Transport { path: String, detail: String },
}

impl RestError {
    /// A short, bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RestError::RateLimited { .. } => "rate_limited",
            RestError::Blocked(_) => "blocked",
            RestError::Status { .. } => "http_status",
            RestError::Body { .. } => "bad_body",
            RestError::Transport { .. } => "transport",
        }
    }
}

#[derive(Default)]
struct Budgets {
    /// Per group: the earliest time the next request may go.
    next: HashMap<String, Instant>,
    blocked_until: Option<Instant>,
}

/// The REST client. Cheap to share behind an `Arc`.
pub struct Rest {
    http: reqwest::Client,
    base: String,
    budgets: Mutex<Budgets>,
}

impl Rest {
    pub fn new(base: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("sise/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Rest {
            http,
            base: base.trim_end_matches('/').to_owned(),
            budgets: Mutex::new(Budgets::default()),
        })
    }

    /// How long until the current 418 block ends (zero if none).
    pub fn blocked_for(&self) -> Duration {
        let b = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        b.blocked_until
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }

    /// Wait for this group's turn (spacing and `sec=0` windows), then claim it.
    async fn pace(&self, group: &str) {
        let wait_until = {
            let mut b = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let at = b.next.get(group).copied().unwrap_or(now).max(now);
            b.next.insert(group.to_owned(), at + MIN_SPACING);
            at
        };
        tokio::time::sleep_until(wait_until).await;
    }

    fn record_remaining(&self, group_hint: &str, header: Option<&str>) {
        let Some((group, sec)) = header.and_then(parse_remaining_req) else {
            return;
        };
        if sec == 0 {
            let mut b = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
            let at = Instant::now() + Duration::from_millis(1_000);
            for g in [group.as_str(), group_hint] {
                let e = b.next.entry(g.to_owned()).or_insert(at);
                *e = (*e).max(at);
            }
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        group: &str,
        query: &[(&str, String)],
    ) -> Result<T, RestError> {
        let blocked = self.blocked_for();
        if !blocked.is_zero() {
            return Err(RestError::Blocked(blocked));
        }
        self.pace(group).await;
        let url = format!("{}{}", self.base, path);
        let transport = |e: reqwest::Error| RestError::Transport {
            path: path.to_owned(),
            detail: e.without_url().to_string(),
        };
        let resp = self
            .http
            .get(&url)
            .query(query)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers();
        // Header names are case-insensitive (HTTP/2 sends `remaining-req`).
        let remaining = headers
            .get("remaining-req")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        self.record_remaining(group, remaining.as_deref());
        let body = resp.bytes().await.map_err(transport)?;
        match status {
            200..=299 => serde_json::from_slice(&body).map_err(|e| RestError::Body {
                path: path.to_owned(),
                detail: format!("{:?} at column {}", e.classify(), e.column()),
            }),
            429 => Err(RestError::RateLimited {
                path: path.to_owned(),
                retry_after,
            }),
            418 => {
                let named = error_body(&body)
                    .and_then(|e| e.message)
                    .and_then(|m| block_seconds(&m))
                    .map(Duration::from_secs);
                let d = named.or(retry_after).unwrap_or(Duration::from_secs(60));
                let mut b = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
                b.blocked_until = Some(Instant::now() + d);
                Err(RestError::Blocked(d))
            }
            _ => Err(RestError::Status {
                status,
                path: path.to_owned(),
                detail: error_body(&body)
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "no JSON error body".into()),
            }),
        }
    }

    /// `GET /market/all`: every market with its Korean and English names.
    pub async fn markets(&self) -> Result<Vec<RestMarket>, RestError> {
        self.get("/market/all", "market", &[]).await
    }

    /// `GET /ticker?markets=…`: one snapshot per market, in one request.
    pub async fn tickers(&self, markets: &[String]) -> Result<Vec<RestTicker>, RestError> {
        self.get("/ticker", "ticker", &[("markets", markets.join(","))])
            .await
    }

    /// `GET /trades/ticks`: up to `count` trades of a market, newest first, older than `cursor`.
    pub async fn trades(
        &self,
        market: &str,
        count: u32,
        cursor: Option<u64>,
    ) -> Result<Vec<RestTrade>, RestError> {
        let mut q = vec![
            ("market", market.to_owned()),
            ("count", count.clamp(1, 500).to_string()),
        ];
        if let Some(c) = cursor {
            q.push(("cursor", c.to_string()));
        }
        self.get("/trades/ticks", "trade", &q).await
    }
}

impl Rest {
    /// `GET /candles/minutes/1`: up to `count` 1-minute candles of a market ending before `to`
    /// (exclusive, epoch ms), newest first; minutes without a trade have no candle.
    pub async fn minute_candles(
        &self,
        market: &str,
        to: i64,
        count: u32,
    ) -> Result<Vec<RestCandle>, RestError> {
        let to = iso_utc(to).ok_or_else(|| RestError::Body {
            path: "/candles/minutes/1".into(),
            detail: "time out of range".into(),
        })?;
        self.get(
            "/candles/minutes/1",
            "candles",
            &[
                ("market", market.to_owned()),
                ("to", to),
                ("count", count.clamp(1, 200).to_string()),
            ],
        )
        .await
    }

    /// `GET /candles/days`: the market's last `count` Upbit days (each from 09:00 KST), newest
    /// first, the current day included.
    pub async fn day_candles(
        &self,
        market: &str,
        count: u32,
    ) -> Result<Vec<RestCandle>, RestError> {
        self.get(
            "/candles/days",
            "candles",
            &[
                ("market", market.to_owned()),
                ("count", count.clamp(1, 200).to_string()),
            ],
        )
        .await
    }
}

fn error_body(body: &[u8]) -> Option<ErrorBody> {
    #[derive(serde::Deserialize)]
    struct Wrap {
        error: ErrorBody,
    }
    serde_json::from_slice::<Wrap>(body).ok().map(|w| w.error)
}
