//! KIS REST (`SISE_KIS_REST_URL`): the quotation endpoints sise uses, within KIS's limits.
//!
//! - Every request waits for the shared rate limiter (governor, `rps` per second, burst 1, so
//!   no wall-clock second ever sees more than `rps` + 1) — one limiter for every endpoint and
//!   every task of the source, as KIS counts all TRs of an app key together.
//! - Over the limit (EGW00201, HTTP 500 or 200): every request pauses ≥ 1 s with jitter, then
//!   the call is retried (at most 3 times).
//! - Expired or invalid token (EGW00123/EGW00121): the token is invalidated (once for all who
//!   saw it) and the call retried once with the new one; a second refusal is an error.
//! - `rt_cd` is checked on every answer, whatever the HTTP status. Error texts carry neither
//!   the URL's query nor a secret.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::time::Instant;

use super::parse::{api_error, ApiError, ParseError};
use super::token::{Kind, TokenError, Tokens};

const TIMEOUT: Duration = Duration::from_secs(10);
const RATE_RETRIES: u32 = 3;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RestError {
    #[error("{path}: KIS error {err}")]
    Api { path: &'static str, err: ApiError },
    #[error("{path}: over the request limit (EGW00201) after {RATE_RETRIES} back-offs")]
    RateLimited { path: &'static str },
    #[error("{path}: {err}")]
    Token { path: &'static str, err: TokenError },
    #[error("{path}: HTTP {status} without a KIS answer")]
    Status { path: &'static str, status: u16 },
    #[error("{path}: request failed: {detail}")]
    Transport { path: &'static str, detail: String },
    #[error("{path}: {err}")]
    Parse { path: &'static str, err: ParseError },
}

impl RestError {
    /// A bounded label for `sise_source_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            RestError::Api { err, .. } if err.is_token() => "token_rejected",
            RestError::Api { .. } => "api_error",
            RestError::RateLimited { .. } => "rate_limited",
            RestError::Token { err, .. } => err.kind(),
            RestError::Status { .. } => "http_status",
            RestError::Transport { .. } => "transport",
            RestError::Parse { .. } => "parse",
        }
    }
}

/// Counters of the REST client (tests, logs).
#[derive(Debug, Default)]
pub struct RestStats {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub token_retries: AtomicU64,
}

/// The REST client: one per source, shared by its tasks.
pub struct Rest {
    http: reqwest::Client,
    base: String,
    tokens: Tokens,
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
    pub stats: RestStats,
}

/// A rate limiter of `rps` requests per second with a burst of one.
pub fn limiter(rps: u32) -> DefaultDirectRateLimiter {
    let rps = std::num::NonZeroU32::new(rps.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(rps).allow_burst(std::num::NonZeroU32::MIN))
}

/// The HTTP client of the KIS source (timeouts on every request).
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("sise/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.without_url().to_string())
}

impl Rest {
    pub fn new(http: reqwest::Client, base: &str, tokens: Tokens, rps: u32) -> Self {
        Rest {
            http,
            base: base.trim_end_matches('/').to_owned(),
            tokens,
            limiter: limiter(rps),
            paused_until: Mutex::new(None),
            stats: RestStats::default(),
        }
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    async fn wait_turn(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        self.limiter.until_ready().await;
    }

    fn pause(&self) {
        let jitter: f64 = rand::random_range(1.0..1.5);
        let until = Instant::now() + Duration::from_secs(1).mul_f64(jitter);
        let mut p = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        *p = Some(p.map_or(until, |t| t.max(until)));
    }

    /// One GET of a TR, with the rate limit, the back-off and the token refresh rules.
    pub async fn call(
        &self,
        path: &'static str,
        tr_id: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, RestError> {
        let mut token_retried = false;
        let mut rate_retries = 0;
        loop {
            self.wait_turn().await;
            let token = self
                .tokens
                .get(Kind::Access)
                .await
                .map_err(|err| RestError::Token { path, err })?;
            let creds = self.tokens.credentials();
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let transport = |e: reqwest::Error| RestError::Transport {
                path,
                detail: e.without_url().to_string(),
            };
            let resp = self
                .http
                .get(format!("{}{}", self.base, path))
                .query(query)
                .header("content-type", "application/json; charset=utf-8")
                .header("authorization", format!("Bearer {}", token.expose_secret()))
                .header("appkey", creds.app_key.expose_secret())
                .header("appsecret", creds.app_secret.expose_secret())
                .header("tr_id", tr_id)
                .header("custtype", "P")
                .send()
                .await
                .map_err(transport)?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(transport)?;
            let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                return Err(RestError::Status { path, status });
            };
            if let Some(err) = api_error(&v) {
                if err.is_rate_limit() {
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    self.pause();
                    rate_retries += 1;
                    if rate_retries > RATE_RETRIES {
                        return Err(RestError::RateLimited { path });
                    }
                    continue;
                }
                if err.is_token() && !token_retried {
                    token_retried = true;
                    self.stats.token_retries.fetch_add(1, Ordering::Relaxed);
                    self.tokens.invalidate(Kind::Access, &token).await;
                    continue;
                }
                return Err(RestError::Api { path, err });
            }
            if status != 200 {
                return Err(RestError::Status { path, status });
            }
            return Ok(v);
        }
    }
}

// ---- the endpoints --------------------------------------------------------------------------

pub const PATH_PRICE: &str = "/uapi/domestic-stock/v1/quotations/inquire-price";
pub const PATH_DAILY: &str = "/uapi/domestic-stock/v1/quotations/inquire-daily-itemchartprice";
pub const PATH_MINUTES: &str = "/uapi/domestic-stock/v1/quotations/inquire-time-itemchartprice";
pub const PATH_INDEX: &str = "/uapi/domestic-stock/v1/quotations/inquire-index-price";
pub const PATH_INDEX_DAILY: &str =
    "/uapi/domestic-stock/v1/quotations/inquire-daily-indexchartprice";
pub const PATH_US_PRICE: &str = "/uapi/overseas-price/v1/quotations/price";
pub const PATH_US_DAILY: &str = "/uapi/overseas-price/v1/quotations/dailyprice";
pub const PATH_US_INDEX: &str = "/uapi/overseas-price/v1/quotations/inquire-daily-chartprice";

pub const TR_PRICE: &str = "FHKST01010100";
pub const TR_DAILY: &str = "FHKST03010100";
pub const TR_MINUTES: &str = "FHKST03010200";
pub const TR_INDEX: &str = "FHPUP02100000";
pub const TR_INDEX_DAILY: &str = "FHKUP03500100";
pub const TR_US_PRICE: &str = "HHDFS00000300";
pub const TR_US_DAILY: &str = "HHDFS76240000";
pub const TR_US_INDEX: &str = "FHKST03030100";

impl Rest {
    /// Current price of a KRX stock.
    pub async fn domestic_price(&self, code: &str) -> Result<Value, RestError> {
        self.call(
            PATH_PRICE,
            TR_PRICE,
            &[("FID_COND_MRKT_DIV_CODE", "J"), ("FID_INPUT_ISCD", code)],
        )
        .await
    }

    /// Daily bars of a KRX stock in `[from, to]` (`yyyyMMdd`), newest first, ≤ 100 rows.
    pub async fn domestic_daily(
        &self,
        code: &str,
        from: &str,
        to: &str,
    ) -> Result<Value, RestError> {
        self.call(
            PATH_DAILY,
            TR_DAILY,
            &[
                ("FID_COND_MRKT_DIV_CODE", "J"),
                ("FID_INPUT_ISCD", code),
                ("FID_INPUT_DATE_1", from),
                ("FID_INPUT_DATE_2", to),
                ("FID_PERIOD_DIV_CODE", "D"),
                ("FID_ORG_ADJ_PRC", "0"),
            ],
        )
        .await
    }

    /// Today's minute bars of a KRX stock up to `hour` (`HHmmss`), newest first, ≤ 30 rows.
    pub async fn domestic_minutes(&self, code: &str, hour: &str) -> Result<Value, RestError> {
        self.call(
            PATH_MINUTES,
            TR_MINUTES,
            &[
                ("FID_ETC_CLS_CODE", ""),
                ("FID_COND_MRKT_DIV_CODE", "J"),
                ("FID_INPUT_ISCD", code),
                ("FID_INPUT_HOUR_1", hour),
                ("FID_PW_DATA_INCU_YN", "Y"),
            ],
        )
        .await
    }

    /// Current value of a KRX index (`0001` KOSPI, `1001` KOSDAQ).
    pub async fn domestic_index(&self, code: &str) -> Result<Value, RestError> {
        self.call(
            PATH_INDEX,
            TR_INDEX,
            &[("FID_COND_MRKT_DIV_CODE", "U"), ("FID_INPUT_ISCD", code)],
        )
        .await
    }

    /// Daily bars of a KRX index.
    pub async fn domestic_index_daily(
        &self,
        code: &str,
        from: &str,
        to: &str,
    ) -> Result<Value, RestError> {
        self.call(
            PATH_INDEX_DAILY,
            TR_INDEX_DAILY,
            &[
                ("FID_COND_MRKT_DIV_CODE", "U"),
                ("FID_INPUT_ISCD", code),
                ("FID_INPUT_DATE_1", from),
                ("FID_INPUT_DATE_2", to),
                ("FID_PERIOD_DIV_CODE", "D"),
            ],
        )
        .await
    }

    /// Current price of a US stock on venue `excd` (`NAS`, `NYS`, `AMS`).
    pub async fn overseas_price(&self, excd: &str, symbol: &str) -> Result<Value, RestError> {
        self.call(
            PATH_US_PRICE,
            TR_US_PRICE,
            &[("AUTH", ""), ("EXCD", excd), ("SYMB", symbol)],
        )
        .await
    }

    /// Daily bars of a US stock up to `bymd` (`yyyyMMdd`, empty = today), ≤ 100 rows.
    pub async fn overseas_daily(
        &self,
        excd: &str,
        symbol: &str,
        bymd: &str,
    ) -> Result<Value, RestError> {
        self.call(
            PATH_US_DAILY,
            TR_US_DAILY,
            &[
                ("AUTH", ""),
                ("EXCD", excd),
                ("SYMB", symbol),
                ("GUBN", "0"),
                ("BYMD", bymd),
                ("MODP", "0"),
            ],
        )
        .await
    }

    /// A US index (`.DJI`, `COMP`): `output1` is its current state, `output2` daily bars.
    pub async fn overseas_index(
        &self,
        code: &str,
        from: &str,
        to: &str,
    ) -> Result<Value, RestError> {
        self.call(
            PATH_US_INDEX,
            TR_US_INDEX,
            &[
                ("FID_COND_MRKT_DIV_CODE", "N"),
                ("FID_INPUT_ISCD", code),
                ("FID_INPUT_DATE_1", from),
                ("FID_INPUT_DATE_2", to),
                ("FID_PERIOD_DIV_CODE", "D"),
            ],
        )
        .await
    }
}
