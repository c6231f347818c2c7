//! The NewsAPI source end to end: a spawned sise (`SISE_SOURCES=news`, its own namespace on the
//! real NATS, Redis and PostgreSQL) against the fake NewsAPI (`sise_pipelines::news::fake`,
//! the fixtures of `shared/apis/newsapi.md` byte for byte). Articles reach the `news`
//! projection, `GET /api/v1/news` (instrument, limit, before) and WebSocket subscribers of
//! the tagged instruments; `[Removed]` is dropped, duplicates (tracking parameters, host case,
//! Google-News copies, repeated polls) are one article; 401 and 429 show in `SourceStatus` and
//! back off; garbage, rejected queries and empty days are skipped, counted and recovered from.

mod common;

use std::time::Duration;

use common::*;
use secrecy::SecretString;
use serde_json::{json, Value};
use sise::Stages;
use sise_bus::StreamKind;
use sise_pipelines::news::fake::{FakeNewsApi, Forced};

const T: Duration = Duration::from_secs(30);
const KEY: &str = "FAKE-newsapi-key-3c9e1d";
const BTC: &str = "crypto.upbit.KRW-BTC";
const ECOPRO: &str = "stock.krx.086520";

/// The plan's limit that makes the source ask every 1.2 s (86,400 s / (100,000 × 0.72)).
const FAST_PLAN: u32 = 100_000;

async fn start(fake: &FakeNewsApi, key: Option<&str>) -> TestApp {
    let mut config = test_config(&["news"]);
    config.newsapi_url = fake.url.clone();
    config.newsapi_key = key.map(|k| SecretString::from(k.to_owned()));
    config.newsapi_daily_limit = FAST_PLAN;
    spawn_app(config, Stages::ALL).await
}

async fn news(app: &TestApp, query: &str) -> (u16, Value) {
    app.get(&format!("/api/v1/news{query}")).await
}

async fn news_count(app: &TestApp, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} articles"), T, || async {
        let (s, body) = news(app, "?limit=200").await;
        let list = body["news"].as_array()?.clone();
        (s == 200 && list.len() == n).then_some(list)
    })
    .await
}

fn ecopro_article() -> Value {
    json!({
        "source": {"id": null, "name": "한국경제"},
        "author": "김민수 ",
        "title": "에코프로, 2차전지 강세에 5% 급등 ",
        "description": "에코프로가 외국인 매수세에 힘입어 5% 넘게 올랐다. 코스닥 지수도 상승했다.",
        "url": "https://www.hankyung.com/article/2026031112345?utm_source=newsapi&utm_medium=api",
        "urlToImage": null,
        "publishedAt": "2026-03-11T07:15:00+00:00",
        "content": "에코프로가 11일 코스닥 시장에서&nbsp;5% 상승 마감했다.\r\n외국인이 순매수… [+812 chars]"
    })
}

fn duplicates_and_garbage() -> Vec<Value> {
    vec![
        // The Reuters story again: tracking parameters, upper-case host, fragment, slash.
        json!({
            "source": {"id": "reuters", "name": "Reuters"},
            "author": null,
            "title": "Korean shares edge higher as chipmakers recover",
            "description": null,
            "url": "https://WWW.REUTERS.COM/markets/asia/example-kospi-edges-higher-2026-03-11/?utm_campaign=x#comments",
            "urlToImage": null,
            "publishedAt": "2026-03-11T06:45:12Z",
            "content": null
        }),
        // The CoinDesk story through Google News: another URL, the same title.
        json!({
            "source": {"id": "google-news", "name": "Google News"},
            "author": null,
            "title": "Bitcoin holds above $89,000 as ETF inflows resume - CoinDesk",
            "description": null,
            "url": "https://news.google.com/rss/articles/CBMiExample?oc=5",
            "urlToImage": null,
            "publishedAt": "2026-03-11T03:11:00Z",
            "content": null
        }),
        // Garbage: no URL; a date that is not one; not an object.
        json!({"source": {"id": null, "name": "X"}, "title": "No link", "publishedAt": "2026-03-11T01:00:00Z"}),
        json!({"source": {"id": null, "name": "X"}, "title": "Bad date", "url": "https://x.example/a", "publishedAt": "yesterday"}),
        json!("not an article"),
    ]
}

/// Normal answers: three good articles (the fixture's two and a Korean one), the `[Removed]`
/// entry dropped, four duplicates merged, three bad entries skipped and counted; the WebSocket
/// subscriber of a tagged instrument gets the news frame; the REST parameters work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_reach_the_projection_the_api_and_subscribers() {
    let fake = FakeNewsApi::start(KEY, 1000).await.expect("fake newsapi");
    // An empty day until the socket below is subscribed.
    fake.always(Some(Forced::Empty));
    let app = start(&fake, Some(KEY)).await;
    let st = source_status(&app, "news", "up", "NewsAPI every 1.2 s").await;
    assert!(!st.to_string().contains(KEY));

    let mut ws = ws_connect(&app).await;
    ws_send(&mut ws, json!({"op": "subscribe", "ids": [BTC]})).await;
    fake.add_article(ecopro_article());
    for a in duplicates_and_garbage() {
        fake.add_article(a);
    }
    fake.always(None);

    // The subscriber of KRW-BTC gets the CoinDesk article, tagged with it.
    let frame = loop {
        let f = ws_next(&mut ws, T).await.expect("a news frame");
        if f["type"] == "news" {
            break f;
        }
    };
    assert_eq!(
        frame["title"],
        "Bitcoin holds above $89,000 as ETF inflows resume"
    );
    assert_eq!(frame["source"], "newsapi");
    assert_eq!(frame["instruments"], json!([BTC]));
    assert_eq!(frame["published"], 1_773_198_600_000_i64);
    assert_eq!(
        frame["url"],
        "https://www.coindesk.com/markets/2026/03/11/example-bitcoin-etf-inflows"
    );

    let list = news_count(&app, 3).await;
    // Newest first.
    let titles: Vec<&str> = list.iter().filter_map(|n| n["title"].as_str()).collect();
    assert_eq!(
        titles,
        [
            "에코프로, 2차전지 강세에 5% 급등",
            "Korean shares edge higher as chipmakers recover",
            "Bitcoin holds above $89,000 as ETF inflows resume",
        ]
    );
    let eco = &list[0];
    assert_eq!(eco["url"], "https://www.hankyung.com/article/2026031112345");
    assert_eq!(eco["language"], "ko");
    assert_eq!(eco["instruments"], json!([ECOPRO, "index.krx.KOSDAQ"]));
    assert_eq!(
        eco["summary"],
        "에코프로가 외국인 매수세에 힘입어 5% 넘게 올랐다. 코스닥 지수도 상승했다."
    );
    assert!(!list.iter().any(|n| n.to_string().contains("[Removed]")));

    // instrument, limit, before.
    let (s, b) = news(&app, &format!("?instrument={BTC}")).await;
    assert_eq!(s, 200);
    assert_eq!(b["news"].as_array().map(Vec::len), Some(1), "{b}");
    let (_, b) = news(&app, &format!("?instrument={ECOPRO}&limit=5")).await;
    assert_eq!(b["news"][0]["id"], eco["id"]);
    let (_, b) = news(&app, "?instrument=stock.us.GOOG").await;
    assert_eq!(b["news"], json!([]));
    let (_, b) = news(&app, "?limit=1").await;
    assert_eq!(b["news"].as_array().map(Vec::len), Some(1));
    assert_eq!(b["news"][0]["id"], eco["id"]);
    let (_, b) = news(&app, &format!("?before={}", eco["published"])).await;
    assert_eq!(b["news"].as_array().map(Vec::len), Some(2), "{b}");
    let (_, b) = news(&app, "?before=1773198600000").await;
    assert_eq!(b["news"], json!([]), "strictly before");
    for (query, status, code) in [
        ("?limit=201", 400, "limit_too_large"),
        ("?limit=0", 400, "bad_parameter"),
        ("?limit=ten", 400, "bad_parameter"),
        ("?before=yesterday", 400, "bad_parameter"),
        ("?before=-5", 400, "bad_parameter"),
        ("?instrument=not-an-id", 400, "bad_instrument_id"),
        ("?instrument=stock.jpx.7203", 404, "unknown_instrument"),
    ] {
        let (s, b) = news(&app, query).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{query}: {b}"
        );
    }

    // Later polls ask other queries and bring the same articles: nothing new is stored.
    let polls = fake.calls();
    wait_for("two more polls", T, || async {
        (fake.calls() >= polls + 2).then_some(())
    })
    .await;
    let stored = app
        .bus
        .stream_messages(StreamKind::News)
        .await
        .expect("stream");
    assert_eq!(stored, 3, "one event per article");
    news_count(&app, 3).await;
    assert_eq!(
        metric(&app, "sise_news_ingested_total", &["source=\"news\""]).await,
        3.0
    );
    assert!(metric(&app, "sise_source_parse_errors_total", &["source=\"news\""]).await >= 3.0);

    // The requests: the key in the header only, the documented parameters, a rotation of
    // queries (markets first, then the instruments).
    let seen = fake.seen();
    assert!(seen.iter().all(|r| r.path == "/v2/everything"));
    assert!(seen
        .iter()
        .all(|r| !r.target.contains(KEY) && !r.target.contains("apiKey")));
    assert!(seen.iter().all(|r| r
        .user_agent
        .as_deref()
        .is_some_and(|u| u.starts_with("sise/"))));
    for r in &seen {
        assert_eq!(r.query.get("pageSize").map(String::as_str), Some("100"));
        assert_eq!(r.query.get("page").map(String::as_str), Some("1"));
        assert_eq!(
            r.query.get("sortBy").map(String::as_str),
            Some("publishedAt")
        );
        assert!(r
            .query
            .get("q")
            .is_some_and(|q| !q.is_empty() && q.len() <= 500));
        assert!(r.query.contains_key("from"));
    }
    let qs: std::collections::HashSet<&str> = seen
        .iter()
        .filter_map(|r| r.query.get("q").map(String::as_str))
        .collect();
    assert!(qs.len() >= 3, "the queries rotate: {qs:?}");
}

/// A wrong key: 401 `apiKeyInvalid` → the source is down and says why (never the key), and it
/// does not ask again within the hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_down_and_backs_off() {
    let fake = FakeNewsApi::start(KEY, 1000).await.expect("fake newsapi");
    let wrong = "FAKE-wrong-key-0000";
    let app = start(&fake, Some(wrong)).await;
    let st = source_status(&app, "news", "down", "apiKeyInvalid").await;
    let detail = st["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("refused the key") && detail.contains("next try in"),
        "{detail}"
    );
    let (_, all) = app.get("/api/v1/sources").await;
    assert!(!all.to_string().contains(wrong), "{all}");
    // Several schedule fires later (1.2 s each): still one request.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(fake.calls(), 1, "no retry before the key backoff");
    assert!(
        metric(
            &app,
            "sise_source_errors_total",
            &["source=\"news\"", "kind=\"http_4xx\""]
        )
        .await
            >= 1.0
    );
}

/// Over the plan's limit (the fake enforces it; 1 request here): 429 `rateLimited` → degraded
/// with the reason, and no more requests until the quota backoff is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answer_degrades_and_backs_off() {
    let fake = FakeNewsApi::start(KEY, 1).await.expect("fake newsapi");
    let app = start(&fake, Some(KEY)).await;
    news_count(&app, 2).await;
    let st = source_status(&app, "news", "degraded", "rateLimited").await;
    let detail = st["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("request limit reached") && detail.contains("next try in"),
        "{detail}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        fake.calls(),
        2,
        "no request after the 429 within its backoff"
    );
    assert!(
        metric(
            &app,
            "sise_source_errors_total",
            &["source=\"news\"", "kind=\"http_429\""]
        )
        .await
            >= 1.0
    );
}

/// A truncated body, a 502 page, a 500, a rejected query (400, 426) and an empty day: each is
/// skipped and counted, the state says so, and the source recovers and publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_errors_and_empty_days_are_skipped_and_recovered_from() {
    let fake = FakeNewsApi::start(KEY, 1000).await.expect("fake newsapi");
    fake.force(&[
        Forced::Truncated,
        Forced::ParameterInvalid,
        Forced::MaximumResults,
        Forced::BadGateway,
        Forced::Empty,
    ]);
    let app = start(&fake, Some(KEY)).await;
    source_status(&app, "news", "down", "unexpected answer").await;
    source_status(&app, "news", "degraded", "parameterInvalid").await;
    source_status(&app, "news", "degraded", "maximumResultsReached").await;
    // Never a success yet: a 502 is "down".
    source_status(&app, "news", "down", "HTTP 502").await;
    // The empty day is a success with nothing in it; then the fixture's articles.
    source_status(&app, "news", "up", "NewsAPI every").await;
    news_count(&app, 2).await;
    assert!(metric(&app, "sise_source_parse_errors_total", &["source=\"news\""]).await >= 1.0);
    assert!(
        metric(
            &app,
            "sise_source_errors_total",
            &["source=\"news\"", "kind=\"http_5xx\""]
        )
        .await
            >= 1.0
    );
    assert!(
        metric(
            &app,
            "sise_source_errors_total",
            &["source=\"news\"", "kind=\"http_4xx\""]
        )
        .await
            >= 2.0
    );
}

/// No key: the source says so and never calls NewsAPI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_is_down_without_requests() {
    let fake = FakeNewsApi::start(KEY, 1000).await.expect("fake newsapi");
    let app = start(&fake, None).await;
    source_status(&app, "news", "down", "no NEWSAPI_KEY set").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.calls(), 0);
}
