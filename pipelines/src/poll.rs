//! Shared pieces of the polling (REST) sources `gold` and `exim`: the HTTP client (rustls, a
//! timeout on every request, few redirects), capped exponential backoff with jitter, a
//! failure type whose text never carries a request URL or a key, and cancellable waits.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// An HTTP client for a polled source: every request bounded by `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("sise/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.without_url().to_string())
}

/// Why one request of a polled source failed. Its text is safe to log and to publish: never a
/// URL (the Eximbank key travels in the query string), never a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The answer's HTTP status was not 200; `message` is the server's short error text.
    Status { code: u16, message: String },
    /// No complete answer within the timeout.
    Timeout,
    /// Connection refused, reset, TLS error…
    Network(String),
    /// The body was not the documented shape.
    Parse(String),
}

impl Failure {
    /// A bounded label for `sise_source_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Status { code: 403, .. } => "http_403",
            Failure::Status { code: 429, .. } => "http_429",
            Failure::Status { code, .. } if *code >= 500 => "http_5xx",
            Failure::Status { .. } => "http_4xx",
            Failure::Timeout => "timeout",
            Failure::Network(_) => "network",
            Failure::Parse(_) => "parse",
        }
    }

    /// From a reqwest error, with the URL removed.
    pub fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            return Failure::Timeout;
        }
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        // The root cause says what happened (refused, reset, certificate…).
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        Failure::Network(shorten(&text, 200))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status { code, message } if message.is_empty() => write!(f, "HTTP {code}"),
            Failure::Status { code, message } => write!(f, "HTTP {code} ({message})"),
            Failure::Timeout => write!(f, "no answer within the timeout"),
            Failure::Network(m) => write!(f, "network error: {m}"),
            Failure::Parse(m) => write!(f, "unexpected answer: {m}"),
        }
    }
}

/// At most `max` characters of `s`, on one line.
pub fn shorten(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    one_line.trim().to_owned()
}

/// Remove every occurrence of `secret` from `text` (defence in depth: a server may echo it).
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "***")
    }
}

/// Capped exponential backoff with jitter (×0.75–1.25).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }
    pub fn reset(&mut self) {
        self.failures = 0;
    }
    pub fn failures(&self) -> u32 {
        self.failures
    }
    /// The delay after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let d = self.min.saturating_mul(1u32 << exp).min(self.max);
        let jitter: f64 = rand::random_range(0.75..1.25);
        d.mul_f64(jitter)
    }
}

/// Run `f` unless `cancel` fires first (`None` then).
pub async fn or_cancel<F: Future>(cancel: &CancellationToken, f: F) -> Option<F::Output> {
    tokio::select! {
        _ = cancel.cancelled() => None,
        out = f => Some(out),
    }
}

/// Sleep until `at`; false when cancelled first.
pub async fn sleep_until(cancel: &CancellationToken, at: tokio::time::Instant) -> bool {
    or_cancel(cancel, tokio::time::sleep_until(at))
        .await
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let d: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(750) && d[0] <= Duration::from_millis(1250));
        assert!(d[5] <= Duration::from_secs(10) && d[5] >= Duration::from_secs(6));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1250));
    }

    #[test]
    fn failure_text_and_kinds() {
        let f = Failure::Status {
            code: 429,
            message: "quota".into(),
        };
        assert_eq!(f.kind(), "http_429");
        assert_eq!(f.to_string(), "HTTP 429 (quota)");
        assert_eq!(Failure::Timeout.kind(), "timeout");
        assert_eq!(redact("key=abc&x", "abc"), "key=***&x");
        assert_eq!(shorten("a\nb", 10), "a b");
    }
}
