//! The one configuration struct, read from the environment (and a `.env` file if present) or
//! the matching command-line flags, checked at start: a bad value stops `sise` with a clear
//! message before anything connects. Secrets are `SecretString`s and never printed.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use sise_bus::{Namespace, SourceName};

fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

fn url_of(schemes: &'static [&'static str]) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |s: &str| {
        let ok = schemes.iter().any(|p| {
            s.strip_prefix(p)
                .and_then(|rest| rest.strip_prefix("://"))
                .is_some_and(|host| !host.is_empty() && !host.starts_with('/'))
        });
        if ok {
            Ok(s.trim_end_matches('/').to_owned())
        } else {
            Err(format!(
                "expected a URL starting with {}://",
                schemes.join("://, ")
            ))
        }
    }
}

fn namespace(s: &str) -> Result<Namespace, String> {
    Namespace::parse(s).map_err(|e| e.to_string())
}

fn source(s: &str) -> Result<SourceName, String> {
    let name = SourceName::parse(s.trim()).map_err(|e| e.to_string())?;
    const KNOWN: [&str; 8] = [
        "sim", "upbit", "kis", "kiwoom", "gold", "exim", "news", "coinbase",
    ];
    if KNOWN.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(format!(
            "unknown source {s:?} (known: {})",
            KNOWN.join(", ")
        ))
    }
}

/// Everything `sise` reads from its environment.
#[derive(Args, Clone)]
pub struct Config {
    /// NATS server with JetStream.
    #[arg(long, env = "SISE_NATS_URL", default_value = "nats://127.0.0.1:4222", global = true, value_parser = url_of(&["nats", "tls", "ws", "wss"]))]
    pub nats_url: String,

    /// Redis (the `latest` and `status` read models).
    #[arg(long, env = "SISE_REDIS_URL", default_value = "redis://127.0.0.1:6379", global = true, value_parser = url_of(&["redis", "rediss"]))]
    pub redis_url: String,

    /// PostgreSQL (history, news, layouts); may carry a password, so it is kept secret.
    #[arg(long, env = "SISE_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres", global = true, value_parser = secret, hide_default_value = false)]
    pub database_url: SecretString,

    /// Where the edge listens (REST, WebSocket, dashboard); stage-only processes serve /healthz, /readyz, /metrics here.
    #[arg(
        long,
        env = "SISE_HTTP_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub http_addr: SocketAddr,

    /// Namespace of subjects, streams, Redis keys and the PostgreSQL schema: [a-z][a-z0-9_]{0,30}.
    #[arg(long, env = "SISE_NAMESPACE", default_value = "sise", global = true, value_parser = namespace)]
    pub namespace: Namespace,

    /// Enabled sources, comma separated: sim, upbit, kis, kiwoom, gold, exim, news, coinbase.
    #[arg(long, env = "SISE_SOURCES", default_value = "sim", value_delimiter = ',', global = true, value_parser = source)]
    pub sources: Vec<SourceName>,

    /// The dashboard's static export, served from disk at run time.
    #[arg(long, env = "SISE_WEB_DIR", default_value = "web/out", global = true)]
    pub web_dir: PathBuf,

    /// Requests per second per client IP on /api (0 turns the limit off).
    #[arg(long, env = "SISE_RATE_LIMIT", default_value_t = 50, global = true)]
    pub rate_limit: u32,

    /// Seed of the simulated market (same seed, same walk).
    #[arg(
        long,
        env = "SISE_SIM_SEED",
        default_value_t = 20_260_312,
        global = true
    )]
    pub sim_seed: u64,

    /// How long the TICKS stream keeps ticks (days, file storage).
    #[arg(long, env = "SISE_TICKS_MAX_AGE_DAYS", default_value_t = 30, global = true, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub ticks_max_age_days: u32,

    /// Replay: how far (seconds) a tick's stream time may lie after its exchange time and still be
    /// found by a time-range replay (a replay scans stream time [from - slack, to + slack]).
    #[arg(long, env = "SISE_REPLAY_SLACK_SECS", default_value_t = 300, global = true, value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    pub replay_slack_secs: u64,

    /// An instrument registry file to use instead of the built-in pipelines/instruments.toml.
    #[arg(long, env = "SISE_INSTRUMENTS", global = true)]
    pub instruments: Option<PathBuf>,

    /// Most events a projection applies in one transaction.
    #[arg(long, env = "SISE_PROJECTION_BATCH", default_value_t = 1_000, global = true, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub projection_batch: u32,

    /// Most WebSocket clients the edge holds at once.
    #[arg(
        long,
        env = "SISE_WS_MAX_CLIENTS",
        default_value_t = 10_000,
        global = true
    )]
    pub ws_max_clients: usize,

    // ---- outside sources: keys (secret) and base URLs -----------------------------------
    #[arg(long, env = "KIS_APP_KEY", global = true, value_parser = secret, hide_env_values = true)]
    pub kis_app_key: Option<SecretString>,
    #[arg(long, env = "KIS_APP_SECRET", global = true, value_parser = secret, hide_env_values = true)]
    pub kis_app_secret: Option<SecretString>,
    #[arg(long, env = "KIWOOM_APP_KEY", global = true, value_parser = secret, hide_env_values = true)]
    pub kiwoom_app_key: Option<SecretString>,
    #[arg(long, env = "KIWOOM_SECRET_KEY", global = true, value_parser = secret, hide_env_values = true)]
    pub kiwoom_secret_key: Option<SecretString>,
    #[arg(long, env = "GOLDAPI_KEY", global = true, value_parser = secret, hide_env_values = true)]
    pub goldapi_key: Option<SecretString>,
    #[arg(long, env = "EXIM_AUTH_KEY", global = true, value_parser = secret, hide_env_values = true)]
    pub exim_auth_key: Option<SecretString>,
    #[arg(long, env = "NEWSAPI_KEY", global = true, value_parser = secret, hide_env_values = true)]
    pub newsapi_key: Option<SecretString>,

    #[arg(long, env = "SISE_UPBIT_REST_URL", default_value = "https://api.upbit.com/v1", global = true, value_parser = url_of(&["http", "https"]))]
    pub upbit_rest_url: String,
    #[arg(long, env = "SISE_UPBIT_WS_URL", default_value = "wss://api.upbit.com/websocket/v1", global = true, value_parser = url_of(&["ws", "wss"]))]
    pub upbit_ws_url: String,
    #[arg(long, env = "SISE_KIS_REST_URL", default_value = "https://openapi.koreainvestment.com:9443", global = true, value_parser = url_of(&["http", "https"]))]
    pub kis_rest_url: String,
    #[arg(long, env = "SISE_KIS_WS_URL", default_value = "ws://ops.koreainvestment.com:21000", global = true, value_parser = url_of(&["ws", "wss"]))]
    pub kis_ws_url: String,
    /// KIS REST requests per second, all endpoints together (KIS: 20 real, about 2 paper).
    #[arg(long, env = "SISE_KIS_RPS", default_value_t = 18, global = true, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub kis_rps: u32,
    /// KIS WebSocket registrations per session (measured 41; unconfirmed by KIS).
    #[arg(long, env = "SISE_KIS_WS_MAX_SUBSCRIPTIONS", default_value_t = 41, global = true, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub kis_ws_max_subscriptions: u32,
    /// KIS REST poll interval, milliseconds (indices, US, KRX stocks not on the WebSocket).
    #[arg(long, env = "SISE_KIS_POLL_MS", default_value_t = 3_000, global = true, value_parser = clap::value_parser!(u64).range(200..=3_600_000))]
    pub kis_poll_ms: u64,
    /// Poll KIS only while the market calendar has a session (false: around the clock).
    #[arg(long, env = "SISE_KIS_MARKET_HOURS", default_value_t = true, global = true, action = clap::ArgAction::Set)]
    pub kis_market_hours: bool,
    /// More KIS instruments, comma separated: `005930` (KRX), `TSLA` or `TSLA:NAS` (US).
    #[arg(long, env = "SISE_KIS_SYMBOLS", value_delimiter = ',', global = true)]
    pub kis_symbols: Vec<String>,
    #[arg(long, env = "SISE_KIWOOM_REST_URL", default_value = "https://api.kiwoom.com", global = true, value_parser = url_of(&["http", "https"]))]
    pub kiwoom_rest_url: String,
    #[arg(long, env = "SISE_GOLDAPI_URL", default_value = "https://www.goldapi.io/api", global = true, value_parser = url_of(&["http", "https"]))]
    pub goldapi_url: String,
    #[arg(long, env = "SISE_GOLD_FALLBACK_URL", default_value = "https://api.gold-api.com", global = true, value_parser = url_of(&["http", "https"]))]
    pub gold_fallback_url: String,
    #[arg(long, env = "SISE_EXIM_URL", default_value = "https://oapi.koreaexim.go.kr/site/program/financial/exchangeJSON", global = true, value_parser = url_of(&["http", "https"]))]
    pub exim_url: String,
    #[arg(long, env = "SISE_NEWSAPI_URL", default_value = "https://newsapi.org/v2", global = true, value_parser = url_of(&["http", "https"]))]
    pub newsapi_url: String,
    /// The NewsAPI plan's requests per 24 h (free plan: 100); the news source spends 72 % of it.
    #[arg(long, env = "SISE_NEWSAPI_DAILY_LIMIT", default_value_t = 100, global = true, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub newsapi_daily_limit: u32,
    /// Coinbase Exchange public REST (the kimchi premium's USD prices; source `coinbase`).
    #[arg(long, env = "SISE_COINBASE_URL", default_value = "https://api.exchange.coinbase.com", global = true, value_parser = url_of(&["http", "https"]))]
    pub coinbase_url: String,
}

impl Config {
    /// The database URL (for the connection only; never log it).
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    /// A configuration with every default, for tests and benches (no environment read).
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        <Only as clap::Parser>::parse_from(["sise"]).config
    }
}

fn redact_url(url: &str) -> String {
    // scheme://user:password@host → scheme://user:***@host
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |k: &Option<SecretString>| if k.is_some() { "set" } else { "unset" };
        f.debug_struct("Config")
            .field("nats_url", &self.nats_url)
            .field("redis_url", &redact_url(&self.redis_url))
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
            .field("http_addr", &self.http_addr)
            .field("namespace", &self.namespace.as_str())
            .field("sources", &self.sources)
            .field("web_dir", &self.web_dir)
            .field("rate_limit", &self.rate_limit)
            .field("kis_app_key", &set(&self.kis_app_key))
            .field("kiwoom_app_key", &set(&self.kiwoom_app_key))
            .field("goldapi_key", &set(&self.goldapi_key))
            .field("exim_auth_key", &set(&self.exim_auth_key))
            .field("newsapi_key", &set(&self.newsapi_key))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let mut c = Config::defaults();
        c.database_url = SecretString::from("postgres://u:hunter2@db/x".to_owned());
        c.newsapi_key = Some(SecretString::from("FAKE-SECRET-KEY".to_owned()));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("FAKE-SECRET-KEY"),
            "{shown}"
        );
        assert!(shown.contains("u:***@db"));
    }

    #[test]
    fn validators() {
        assert!(
            url_of(&["http", "https"])("https://api.upbit.com/v1/").unwrap()
                == "https://api.upbit.com/v1"
        );
        assert!(url_of(&["http", "https"])("ftp://x").is_err());
        assert!(url_of(&["http", "https"])("https://").is_err());
        assert!(source("upbit").is_ok());
        assert!(source("bloomberg").is_err());
        assert!(namespace("Bad-Name").is_err());
    }
}
