//! The news source (`SISE_SOURCES=news`): NewsAPI.org's `GET /v2/everything`
//! (`shared/apis/newsapi.md`) → `News` events on `ns.news.newsapi`, which the `news` projection
//! stores in PostgreSQL and the edge pushes to WebSocket subscribers of the tagged instruments.
//!
//! **Queries.** One general markets query plus one per followed instrument of the registry,
//! built from its Korean and English names and ticker ([`tag`]: `"알파벳" OR "구글" OR
//! "Alphabet" OR "Google" OR "GOOG"`), each `searchIn=title,description`, `sortBy=publishedAt`,
//! one page of `pageSize=100` (never page 2: the free plan answers 426 past 100 results), from
//! [`NewsSettings::lookback`] ago. With the 20 default instruments that is 21 queries.
//!
//! **Budget.** The free (Developer) plan allows 100 requests per 24 h. A fifth plus is kept
//! back for restarts and the odd retry (`reserve` = 0.28), so 72 requests a day are planned:
//! one request every 86,400 s / 72 = **20 min** ([`request_interval`]`(100, 0.28)`), which is
//! also the documented client rule ("at most every ~20–30 min, ≤ 72/day including
//! retries"). Each request asks the next query of the rotation, so each of the 21 queries is
//! refreshed every 21 × 20 min = 7 h (NewsAPI's free plan delays articles by 24 h anyway). A
//! failed request spends its slot (never an extra request), quota and key errors wait longer
//! (below), and a hard cap of 72 requests per UTC day is never passed. The rotation position
//! follows the wall clock, so a restart continues it instead of asking the first query again.
//! `SISE_NEWSAPI_DAILY_LIMIT` sets the plan's limit for paid plans (the interval shrinks).
//!
//! **Articles.** `[Removed]` entries are dropped; malformed ones (no title, no http(s) URL, no
//! date) are skipped and counted (`sise_source_parse_errors_total{source="news"}`); URLs are
//! made canonical (tracking parameters, fragments, trailing slash, host case) and the `News` id
//! is the hash of that URL, so the same story fetched twice, or from two queries, is one
//! event (deduplicated here, by the stream's `Nats-Msg-Id`, and by the projection's key);
//! Google-News redirect items are also deduplicated by title. Each article is tagged with the
//! instruments it mentions ([`tag::Tagger`]).
//!
//! **Errors.** Each answer is one of NewsAPI's documented errors
//! (`{"status":"error","code",…}`): 401 `apiKey*` → `down` with the code, next try in 1 h
//! doubling to 24 h; 429 `rateLimited` → `degraded`, next try in 1 h doubling to 12 h (the
//! plan's window); 400/426 (a query NewsAPI rejects) → `degraded`, the rotation moves on; 5xx,
//! timeouts (10 s) and garbage → `degraded` (or `down` before any success), capped backoff
//! with jitter from the interval to 4 h. Every state change is a `SourceStatus`. The key is
//! sent only in the `X-Api-Key` header, never in a URL, a log line, an error or a status.

pub mod article;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod tag;

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use chrono::{Datelike, Utc};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use sise_bus::{now_ms, News, SourceName, SourceState, SCHEMA_VERSION};
use tokio::time::Instant;

use crate::poll::{self, Backoff, Failure};
use crate::schedule::Schedule;
use crate::source::{Source, SourceContext, StatusBoard};
use crate::PipelineError;

use article::{Answer, Article, Skip};
use tag::{Query, Tagger};

/// NewsAPI's documented base.
pub const DEFAULT_URL: &str = "https://newsapi.org/v2";
/// The free (Developer) plan: requests per 24 h.
pub const FREE_REQUESTS_PER_DAY: u32 = 100;
/// The share of the daily limit kept for restarts and retries.
pub const RESERVE: f64 = 0.28;
/// Most ids remembered for deduplication (a few days of every query's articles).
const SEEN_MAX: usize = 20_000;

/// Requests planned per day: the limit less the reserve, at least one.
pub fn planned_per_day(daily_limit: u32, reserve: f64) -> u32 {
    ((f64::from(daily_limit) * (1.0 - reserve.clamp(0.0, 0.9))).floor() as u32).max(1)
}

/// The time between two requests that keeps a day within [`planned_per_day`].
pub fn request_interval(daily_limit: u32, reserve: f64) -> Duration {
    Duration::from_secs_f64(86_400.0 / f64::from(planned_per_day(daily_limit, reserve)))
}

/// How the news source runs.
#[derive(Debug, Clone)]
pub struct NewsSettings {
    /// Base up to `/v2` (`SISE_NEWSAPI_URL`).
    pub url: String,
    /// `NEWSAPI_KEY`; without it the source reports `down` and asks nothing.
    pub key: Option<SecretString>,
    /// The plan's requests per 24 h (`SISE_NEWSAPI_DAILY_LIMIT`, free plan: 100).
    pub daily_limit: u32,
    /// Between requests (from the limit, see [`request_interval`]).
    pub interval: Duration,
    /// Of every request.
    pub timeout: Duration,
    /// `from` = now − lookback (the free plan searches about a month back).
    pub lookback: Duration,
    /// Waits after a key error (401) and after the quota answer (429): first and cap.
    pub key_retry: (Duration, Duration),
    pub quota_retry: (Duration, Duration),
}

impl NewsSettings {
    pub fn new(url: &str, key: Option<SecretString>, daily_limit: u32) -> Self {
        let daily_limit = daily_limit.max(1);
        NewsSettings {
            url: url.trim_end_matches('/').to_owned(),
            key: key.filter(|k| !k.expose_secret().trim().is_empty()),
            daily_limit,
            interval: request_interval(daily_limit, RESERVE),
            timeout: Duration::from_secs(10),
            lookback: Duration::from_secs(7 * 86_400),
            key_retry: (Duration::from_secs(3600), Duration::from_secs(24 * 3600)),
            quota_retry: (Duration::from_secs(3600), Duration::from_secs(12 * 3600)),
        }
    }
}

/// The NewsAPI source.
pub struct NewsSource {
    settings: NewsSettings,
}

impl NewsSource {
    pub fn new(settings: NewsSettings) -> Self {
        NewsSource { settings }
    }
}

/// The configured source (`SISE_SOURCES=news`) and its status row.
pub fn source_name() -> SourceName {
    SourceName::parse("news").unwrap_or_else(|_| unreachable!("\"news\" is a valid source name"))
}

/// The `source` of the articles (the provider).
pub fn provider_name() -> SourceName {
    SourceName::parse("newsapi")
        .unwrap_or_else(|_| unreachable!("\"newsapi\" is a valid source name"))
}

impl Source for NewsSource {
    fn name(&self) -> SourceName {
        source_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(self.settings, ctx))
    }
}

/// What one request ended in.
#[derive(Debug)]
pub enum Outcome {
    /// `status: ok`, with its articles (raw, parsed one by one later).
    Ok(Answer),
    /// A documented error body or another failure; `code` is NewsAPI's when it sent one.
    Err {
        failure: Failure,
        code: Option<String>,
    },
}

/// Parse a NewsAPI answer of HTTP `status`.
pub fn parse_answer(status: u16, body: &[u8]) -> Outcome {
    let parsed: Result<Answer, _> = serde_json::from_slice(body);
    match parsed {
        Ok(a) if status == 200 && a.status == "ok" => Outcome::Ok(a),
        Ok(a) if a.status == "error" || status != 200 => {
            let code = a.code.clone().map(|c| poll::shorten(&c, 40));
            let message = match (&a.code, &a.message) {
                (Some(c), Some(m)) => {
                    format!("{}: {}", poll::shorten(c, 40), poll::shorten(m, 160))
                }
                (Some(c), None) => poll::shorten(c, 40),
                (None, Some(m)) => poll::shorten(m, 160),
                (None, None) => String::new(),
            };
            Outcome::Err {
                failure: if status == 200 {
                    Failure::Parse(format!("status error with HTTP 200 ({message})"))
                } else {
                    Failure::Status {
                        code: status,
                        message,
                    }
                },
                code,
            }
        }
        Ok(a) => Outcome::Err {
            failure: Failure::Parse(format!("status {:?}", poll::shorten(&a.status, 20))),
            code: None,
        },
        Err(e) if status == 200 => Outcome::Err {
            failure: Failure::Parse(poll::shorten(&e.to_string(), 120)),
            code: None,
        },
        Err(_) => Outcome::Err {
            failure: Failure::Status {
                code: status,
                message: String::new(),
            },
            code: None,
        },
    }
}

/// Remembers ids (and aggregator title keys) already published, bounded.
struct Seen {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    fn new() -> Self {
        Seen {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }
    fn contains(&self, k: &str) -> bool {
        self.set.contains(k)
    }
    fn insert(&mut self, k: String) {
        if self.set.insert(k.clone()) {
            self.order.push_back(k);
            while self.order.len() > SEEN_MAX {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// The news events of one answer: removed dropped, bad skipped (counted by the caller), the
/// rest deduplicated against `seen` and tagged.
struct Harvest {
    news: Vec<News>,
    removed: usize,
    bad: usize,
    duplicates: usize,
}

fn harvest(articles: &[serde_json::Value], tagger: &Tagger, seen: &mut Seen) -> Harvest {
    let mut h = Harvest {
        news: Vec::new(),
        removed: 0,
        bad: 0,
        duplicates: 0,
    };
    for raw in articles {
        let a: Article = match article::parse_article(raw) {
            Ok(a) => a,
            Err(Skip::Removed) => {
                h.removed += 1;
                continue;
            }
            Err(Skip::Bad(why)) => {
                h.bad += 1;
                tracing::debug!(source = "news", why = %why, "article skipped");
                continue;
            }
        };
        let title_key = format!("title:{}", article::title_key(&a.title));
        if seen.contains(&a.id) || (a.aggregator && seen.contains(&title_key)) {
            h.duplicates += 1;
            continue;
        }
        seen.insert(a.id.clone());
        seen.insert(title_key);
        let instruments = tagger.tag(&a.text);
        h.news.push(News {
            v: SCHEMA_VERSION,
            id: a.id,
            source: provider_name(),
            title: a.title,
            summary: a.summary,
            url: a.url,
            image: a.image,
            published: a.published,
            language: a.language,
            instruments,
        });
    }
    h
}

struct Client {
    http: reqwest::Client,
    s: NewsSettings,
}

impl Client {
    async fn everything(&self, key: &SecretString, q: &Query) -> Outcome {
        let from = Utc::now() - chrono::Duration::from_std(self.s.lookback).unwrap_or_default();
        let req = self
            .http
            .get(format!("{}/everything", self.s.url))
            .header("X-Api-Key", key.expose_secret())
            .query(&[
                ("q", q.q.as_str()),
                ("searchIn", "title,description"),
                ("sortBy", "publishedAt"),
                ("pageSize", "100"),
                ("page", "1"),
                ("from", &from.format("%Y-%m-%dT%H:%M:%S").to_string()),
            ]);
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Err {
                    failure: Failure::from_reqwest(e),
                    code: None,
                }
            }
        };
        let status = resp.status().as_u16();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Err {
                    failure: Failure::from_reqwest(e),
                    code: None,
                }
            }
        };
        match parse_answer(status, &body) {
            Outcome::Err {
                failure: Failure::Status { code, message },
                code: c,
            } => Outcome::Err {
                // Defence in depth: a server may echo the key.
                failure: Failure::Status {
                    code,
                    message: poll::redact(&message, key.expose_secret()),
                },
                code: c,
            },
            other => other,
        }
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}

fn up_detail(s: &NewsSettings, queries: usize) -> String {
    format!(
        "NewsAPI every {} ({} of {} requests/day), {queries} queries, each every {}",
        minutes(s.interval),
        planned_per_day(s.daily_limit, RESERVE),
        s.daily_limit,
        minutes(s.interval.saturating_mul(queries as u32)),
    )
}

fn count_failure(ctx: &SourceContext, f: &Failure) {
    ctx.metrics
        .errors
        .with_label_values(&["news", f.kind()])
        .inc();
    if matches!(f, Failure::Parse(_)) {
        ctx.metrics.parse_errors.with_label_values(&["news"]).inc();
    }
}

async fn run(s: NewsSettings, ctx: SourceContext) -> Result<(), PipelineError> {
    let mut board = StatusBoard::new(source_name());
    let Some(key) = s.key.clone() else {
        board
            .set(
                &ctx,
                SourceState::Down,
                "no NEWSAPI_KEY set: NewsAPI is not asked",
            )
            .await;
        ctx.cancel.cancelled().await;
        return Ok(());
    };
    let http = poll::client(s.timeout).map_err(|message| PipelineError::Config {
        source_name: "news".into(),
        message,
    })?;
    let client = Client { http, s: s.clone() };
    let tagger = Tagger::new(&ctx.registry);
    let queries = tag::queries(&tagger);
    let mut schedule =
        Schedule::every(s.interval)
            .await
            .map_err(|message| PipelineError::Config {
                source_name: "news".into(),
                message,
            })?;
    let planned = planned_per_day(s.daily_limit, RESERVE);
    // The rotation follows the wall clock, so a restart continues it.
    let interval_ms = s.interval.as_millis().max(1) as i64;
    let mut round = (now_ms() / interval_ms) as usize;
    let mut seen = Seen::new();
    let mut not_before = Instant::now();
    let mut key_backoff = Backoff::new(s.key_retry.0, s.key_retry.1);
    let mut quota_backoff = Backoff::new(s.quota_retry.0, s.quota_retry.1);
    let mut other_backoff = Backoff::new(s.interval, Duration::from_secs(4 * 3600));
    let mut ever_ok = false;
    // (UTC day, requests sent that day): the hard cap.
    let mut today = (Utc::now().num_days_from_ce(), 0u32);
    tracing::info!(
        source = "news",
        every = %minutes(s.interval),
        queries = queries.len(),
        planned_per_day = planned,
        "NewsAPI source starting"
    );

    loop {
        let day = Utc::now().num_days_from_ce();
        if today.0 != day {
            today = (day, 0);
        }
        if Instant::now() >= not_before && today.1 < planned {
            let q = &queries[round % queries.len()];
            round = round.wrapping_add(1);
            today.1 += 1;
            let outcome = match poll::or_cancel(&ctx.cancel, client.everything(&key, q)).await {
                None => return board.stopped(&ctx, schedule).await,
                Some(o) => o,
            };
            ctx.metrics.frames.with_label_values(&["news"]).inc();
            match outcome {
                Outcome::Ok(answer) => {
                    let h = harvest(&answer.articles, &tagger, &mut seen);
                    if h.bad > 0 {
                        ctx.metrics
                            .parse_errors
                            .with_label_values(&["news"])
                            .inc_by(h.bad as u64);
                        ctx.metrics
                            .errors
                            .with_label_values(&["news", "bad_article"])
                            .inc_by(h.bad as u64);
                    }
                    let mut published = 0u64;
                    for n in &h.news {
                        match ctx.bus.publish_news(n).await {
                            Ok(stored) if !stored.duplicate => published += 1,
                            Ok(_) => {}
                            Err(e) => {
                                ctx.metrics
                                    .errors
                                    .with_label_values(&["news", "publish"])
                                    .inc();
                                tracing::warn!(source = "news", error = %e, "publishing news failed");
                            }
                        }
                    }
                    ctx.metrics
                        .news
                        .with_label_values(&["news"])
                        .inc_by(published);
                    tracing::info!(
                        source = "news",
                        query = %q.label,
                        total = answer.total_results.unwrap_or(0),
                        articles = answer.articles.len(),
                        published,
                        removed = h.removed,
                        skipped = h.bad,
                        duplicates = h.duplicates,
                        "NewsAPI answer"
                    );
                    ever_ok = true;
                    key_backoff.reset();
                    quota_backoff.reset();
                    other_backoff.reset();
                    board
                        .set(&ctx, SourceState::Up, up_detail(&s, queries.len()))
                        .await;
                }
                Outcome::Err { failure, code } => {
                    count_failure(&ctx, &failure);
                    tracing::warn!(source = "news", query = %q.label, error = %failure, "NewsAPI request failed");
                    let code = code.unwrap_or_default();
                    let (state, wait, detail) = match &failure {
                        Failure::Status { code: 401, .. } => {
                            let w = key_backoff.next_delay();
                            (
                                SourceState::Down,
                                w,
                                format!(
                                    "NewsAPI refused the key: {failure}; next try in {}",
                                    minutes(w)
                                ),
                            )
                        }
                        Failure::Status { code: 429, .. } => {
                            let w = quota_backoff.next_delay();
                            (
                                SourceState::Degraded,
                                w,
                                format!(
                                    "NewsAPI request limit reached: {failure}; next try in {}",
                                    minutes(w)
                                ),
                            )
                        }
                        Failure::Status {
                            code: 400 | 426, ..
                        } => (
                            SourceState::Degraded,
                            Duration::ZERO,
                            format!("NewsAPI rejected the query for {}: {failure}", q.label),
                        ),
                        _ => {
                            let w = other_backoff.next_delay();
                            (
                                if ever_ok {
                                    SourceState::Degraded
                                } else {
                                    SourceState::Down
                                },
                                w,
                                format!("NewsAPI failed: {failure}; next try in {}", minutes(w)),
                            )
                        }
                    };
                    if !code.is_empty() {
                        tracing::debug!(source = "news", code = %code, "NewsAPI error code");
                    }
                    not_before = Instant::now() + wait;
                    board.set(&ctx, state, detail).await;
                }
            }
        } else if today.1 >= planned {
            tracing::debug!(
                source = "news",
                planned,
                "daily request budget spent; waiting for the next UTC day"
            );
        }

        tokio::select! {
            _ = ctx.cancel.cancelled() => return board.stopped(&ctx, schedule).await,
            _ = schedule.fired() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("fixtures/", $name)).as_slice()
        };
    }

    #[test]
    fn budget_arithmetic() {
        assert_eq!(planned_per_day(100, RESERVE), 72);
        assert_eq!(request_interval(100, RESERVE), Duration::from_secs(1200));
        // 21 queries (20 defaults + markets): each every 7 h.
        assert_eq!(request_interval(100, RESERVE).as_secs() * 21, 7 * 3600);
        assert_eq!(planned_per_day(1, RESERVE), 1);
        let s = NewsSettings::new(DEFAULT_URL, Some("FAKE-NEWS-KEY".into()), 100);
        assert_eq!(s.interval, Duration::from_secs(1200));
        assert!(!format!("{s:?}").contains("FAKE-NEWS-KEY"));
        assert!(NewsSettings::new(DEFAULT_URL, Some(" ".into()), 100)
            .key
            .is_none());
        assert_eq!(
            up_detail(&s, 21),
            "NewsAPI every 20 min (72 of 100 requests/day), 21 queries, each every 7.0 h"
        );
    }

    #[test]
    fn documented_errors() {
        let err = |status, body| match parse_answer(status, body) {
            Outcome::Err { failure, code } => (failure, code),
            Outcome::Ok(_) => panic!("not an error"),
        };
        let (f, c) = err(401, fixture!("error_401_apikeyinvalid.json"));
        assert_eq!(c.as_deref(), Some("apiKeyInvalid"));
        assert_eq!(f.kind(), "http_4xx");
        assert!(f
            .to_string()
            .starts_with("HTTP 401 (apiKeyInvalid: Your API key is invalid"));
        let (f, c) = err(429, fixture!("error_429_ratelimited.json"));
        assert_eq!((f.kind(), c.as_deref()), ("http_429", Some("rateLimited")));
        let (_, c) = err(426, fixture!("error_426_maximumresultsreached.json"));
        assert_eq!(c.as_deref(), Some("maximumResultsReached"));
        let (_, c) = err(400, fixture!("error_400_parameterinvalid.json"));
        assert_eq!(c.as_deref(), Some("parameterInvalid"));
        let (_, c) = err(400, fixture!("error_400_parametersmissing.json"));
        assert_eq!(c.as_deref(), Some("parametersMissing"));
        let (f, _) = err(200, b"{\"status\":\"ok\",\"articles\":[{");
        assert_eq!(f.kind(), "parse");
        let (f, _) = err(502, b"<html>bad gateway</html>");
        assert_eq!(f.to_string(), "HTTP 502");
        match parse_answer(200, fixture!("top_headlines_kr_empty.json")) {
            Outcome::Ok(a) => assert!(a.articles.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn harvest_drops_removed_dedups_and_tags() {
        let tagger = Tagger::new(&crate::Registry::builtin().unwrap());
        let Outcome::Ok(a) = parse_answer(200, fixture!("everything_ok.json")) else {
            panic!("ok fixture");
        };
        let mut seen = Seen::new();
        let h = harvest(&a.articles, &tagger, &mut seen);
        assert_eq!((h.news.len(), h.removed, h.bad), (2, 1, 0));
        let btc = &h.news[1];
        assert_eq!(btc.source.as_str(), "newsapi");
        assert_eq!(
            btc.instruments
                .iter()
                .map(|i| i.as_str())
                .collect::<Vec<_>>(),
            ["crypto.upbit.KRW-BTC"]
        );
        // The same answer again: all duplicates.
        let again = harvest(&a.articles, &tagger, &mut seen);
        assert_eq!((again.news.len(), again.duplicates), (0, 2));
        // The same story with tracking parameters and another host case: a duplicate.
        let dup = serde_json::json!({
            "source": {"id": null, "name": "Reuters"},
            "title": "Korean shares edge higher as chipmakers recover",
            "url": "https://WWW.REUTERS.com/markets/asia/example-kospi-edges-higher-2026-03-11/?utm_source=newsapi#x",
            "publishedAt": "2026-03-11T06:45:12Z"
        });
        let bad = serde_json::json!({"title": "no url", "publishedAt": "2026-03-11T06:45:12Z"});
        let h = harvest(&[dup, bad], &tagger, &mut seen);
        assert_eq!((h.news.len(), h.duplicates, h.bad), (0, 1, 1));
    }
}
