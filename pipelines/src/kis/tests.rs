//! KIS unit tests: every documented frame and answer through the parsers (the fixtures), the
//! token cache against the fake server and the machine's Redis (reuse across instances and
//! restarts, one issue under concurrency, one refresh after an expired-token answer), and the
//! REST client's limiter under a burst and its back-off on over-limit answers.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::fake::{FakeKis, FakeOptions};
use super::parse::*;
use super::rest::{self, Rest, RestError};
use super::token::{Credentials, Kind, TokenError, TokenStore};
use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/", $name))
    };
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture JSON")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn data(text: &str) -> (String, Vec<Obs>, usize) {
    match parse_frame(text).expect("frame") {
        Frame::Data { tr_id, obs, bad } => (tr_id.to_owned(), obs, bad),
        other => panic!("not data: {other:?}"),
    }
}

#[test]
fn h0stcnt0_single_record() {
    let (tr, obs, bad) = data(fixture!("ws_h0stcnt0_068270_single.txt"));
    assert_eq!((tr.as_str(), obs.len(), bad), ("H0STCNT0", 1, 0));
    let o = &obs[0];
    assert_eq!(o.key, "068270");
    assert_eq!(o.price, 181_500.0);
    assert_eq!(o.change, Some(2_600.0));
    assert_eq!(o.prev_close, Some(178_900.0));
    assert!(close(o.change_rate.unwrap(), 0.0145));
    assert_eq!(o.volume, 37.0);
    assert_eq!(o.day_volume, Some(812_345.0));
    assert_eq!(o.seq, 812_345);
    // 2026-03-12 14:30:15 KST = 05:30:15 UTC.
    assert_eq!(o.ts, 1_773_293_415_000);
}

#[test]
fn h0stcnt0_three_records_in_one_frame() {
    let (_, obs, bad) = data(fixture!("ws_h0stcnt0_multi_3records.txt"));
    assert_eq!(bad, 0);
    let keys: Vec<&str> = obs.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["068270", "068270", "086520"]);
    assert_eq!(obs[1].price, 181_600.0);
    assert_eq!(obs[1].volume, 12.0);
    assert_eq!(obs[2].price, 98_400.0);
    assert_eq!(obs[2].day_volume, Some(1_203_344.0));
    assert!(close(obs[2].change_rate.unwrap(), 0.025));
}

#[test]
fn h0stcnt0_empty_field_is_absent_not_an_error() {
    let (_, obs, bad) = data(fixture!("ws_h0stcnt0_068270_empty_field.txt"));
    assert_eq!((obs.len(), bad), (1, 0));
    assert_eq!(obs[0].volume, 25.0);
    // The older 44-field layout is accepted too.
    let text = fixture!("ws_h0stcnt0_068270_single.txt").trim_end();
    let fields: Vec<&str> = text.splitn(4, '|').nth(3).unwrap().split('^').collect();
    let short = format!("0|H0STCNT0|001|{}", fields[..44].join("^"));
    let (_, obs, _) = data(&short);
    assert_eq!(obs.len(), 1);
}

#[test]
fn malformed_frames_are_errors_never_panics() {
    assert!(matches!(
        parse_frame(fixture!("ws_malformed_h0stcnt0_short.txt")),
        Err(ParseError::Count { count: 2, .. })
    ));
    for bad in [
        "",
        "hello",
        "0|H0STCNT0",
        "0|H0STCNT0|abc|x",
        "0|H0STCNT0|000|",
        "0|H0STCNT0|999999999999999999999|x",
        "2|H0STCNT0|001|x",
        "{",
        "{\"body\":{}}",
        "0|H0STCNT0|001|^^^",
        "\u{0}\u{1}|||",
    ] {
        assert!(parse_frame(bad).is_err(), "{bad:?}");
    }
    // A record whose sign code contradicts its change: counted bad, the frame still parses.
    let text = fixture!("ws_h0stcnt0_068270_single.txt").replacen("^2^2600^", "^5^2600^", 1);
    let (_, obs, bad) = data(&text);
    assert_eq!((obs.len(), bad), (0, 1));
    // Price not a number.
    let text = fixture!("ws_h0stcnt0_068270_single.txt").replacen("^181500^", "^1,815^", 1);
    assert_eq!(data(&text).2, 1);
    // An unknown TR parses to nothing; an encrypted one is recognised.
    assert_eq!(data("0|H0STASP0|001|a^b").1.len(), 0);
    assert!(matches!(
        parse_frame("1|H0STCNI0|001|BASE64=="),
        Ok(Frame::Encrypted("H0STCNI0"))
    ));
}

#[test]
fn hdfscnt0_both_layouts() {
    let (tr, obs, bad) = data(fixture!("ws_hdfscnt0_dnasgoog.txt"));
    assert_eq!((tr.as_str(), obs.len(), bad), ("HDFSCNT0", 1, 0));
    let o = &obs[0];
    assert_eq!(o.key, "GOOG");
    assert!(close(o.price, 301.45));
    assert!(close(o.change.unwrap(), 3.33));
    assert!(close(o.prev_close.unwrap(), 298.12));
    assert!(close(o.change_rate.unwrap(), 0.0112));
    assert_eq!(o.volume, 15.0);
    // 2026-03-12 12:15:00 New York (EDT, UTC−4) = 16:15:00 UTC.
    assert_eq!(o.ts, 1_773_332_100_000);
    // KIS's newest layout without RSYM (25 fields).
    let text = fixture!("ws_hdfscnt0_dnasgoog.txt").replacen("DNASGOOG^", "", 1);
    let (_, obs25, _) = data(&text);
    assert_eq!(obs25, obs);
}

#[test]
fn control_frames() {
    assert_eq!(
        parse_frame(fixture!("ws_pingpong.json")).unwrap(),
        Frame::PingPong
    );
    let ack = |t: &str| match parse_frame(t).unwrap() {
        Frame::Control(c) => (c.ack(), c.tr_key),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        ack(fixture!("ws_ack_subscribe_success.json")),
        (Ack::Subscribed, "068270".into())
    );
    assert_eq!(
        ack(fixture!("ws_ack_already_in_subscribe.json")).0,
        Ack::Already
    );
    assert_eq!(
        ack(fixture!("ws_ack_max_subscribe_over.json")),
        (Ack::CapReached, "005930".into())
    );
    assert_eq!(
        ack(fixture!("ws_ack_already_in_use_appkey.json")).0,
        Ack::InUse
    );
    let unknown = r#"{"header":{"tr_id":"H0STCNT0","tr_key":"999999","encrypt":"N"},"body":{"rt_cd":"9","msg_cd":"OPSP9999","msg1":"invalid tr_key"}}"#;
    assert_eq!(ack(unknown).0, Ack::Failed);
    // Our subscribe message is the documented one.
    let ours = subscribe_message(
        "FAKE-a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "H0STCNT0",
        "068270",
        true,
    );
    assert_eq!(
        json(&ours),
        json(fixture!("ws_subscribe_request_h0stcnt0.json"))
    );
}

#[test]
fn domestic_rest_answers() {
    let o = domestic_price(&json(fixture!("inquire_price_068270.json"))).unwrap();
    assert_eq!((o.key.as_str(), o.price), ("068270", 181_500.0));
    assert_eq!(o.prev_close, Some(178_900.0));
    assert_eq!(o.change, Some(2_600.0));
    assert!(close(o.change_rate.unwrap(), 0.0145));
    assert_eq!(o.day_volume, Some(812_345.0));
    let o = domestic_price(&json(fixture!("inquire_price_058610.json"))).unwrap();
    assert_eq!(o.change, Some(-850.0));
    assert_eq!(o.prev_close, Some(37_100.0));
    assert!(close(o.change_rate.unwrap(), -0.0229));
    let o = domestic_price(&json(fixture!("inquire_price_086520.json"))).unwrap();
    assert_eq!((o.price, o.change), (98_400.0, Some(2_400.0)));
    let o = domestic_price(&json(fixture!("inquire_price_068270_preopen.json"))).unwrap();
    assert_eq!(
        (o.price, o.change, o.day_volume),
        (178_900.0, Some(0.0), Some(0.0))
    );

    let k = domestic_index(&json(fixture!("index_price_0001_kospi.json")), "0001").unwrap();
    assert!(close(k.price, 4112.58) && close(k.change.unwrap(), 29.37));
    assert!(close(k.prev_close.unwrap(), 4083.21));
    assert!(close(k.change_rate.unwrap(), 0.0072));
    assert_eq!(k.day_volume, Some(312_455_000.0));
    let q = domestic_index(&json(fixture!("index_price_1001_kosdaq.json")), "1001").unwrap();
    assert!(close(q.change.unwrap(), -6.47) && close(q.prev_close.unwrap(), 931.88));

    let (bars, bad) = domestic_daily(&json(fixture!("daily_itemchartprice_068270.json"))).unwrap();
    assert_eq!((bars.len(), bad), (3, 0));
    assert_eq!(bars[0].close, 181_500.0);
    assert_eq!(bars[0].start, kst_ms("20260312", "090000").unwrap());
    assert_eq!(bars[2].volume, 955_012.0);
    let ticks = bars[0].to_obs("068270");
    assert_eq!(ticks.len(), 4);
    assert_eq!(ticks.iter().map(|t| t.volume).sum::<f64>(), 812_345.0);
    assert!(ticks.windows(2).all(|w| w[0].ts < w[1].ts));

    let (m, _) = domestic_minutes(&json(fixture!("time_itemchartprice_068270.json"))).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].start, kst_ms("20260312", "143000").unwrap());
    assert_eq!(m[0].end - m[0].start, 60_000);
    assert_eq!((m[1].close, m[1].volume), (181_400.0, 1_204.0));
    // Empty chart answers, both shapes.
    let empty = serde_json::json!({"rt_cd":"0","output2":[]});
    assert_eq!(domestic_daily(&empty).unwrap().0.len(), 0);
    let blank = serde_json::json!({"rt_cd":"0","output2":[{"stck_bsop_date":"","stck_clpr":"","stck_oprc":"","stck_hgpr":"","stck_lwpr":"","acml_vol":""}]});
    assert_eq!(domestic_daily(&blank).unwrap(), (vec![], 0));
}

#[test]
fn overseas_rest_answers() {
    let g = overseas_price(&json(fixture!("overseas_price_goog_nas.json")), "GOOG").unwrap();
    assert!(close(g.price, 301.45) && close(g.change.unwrap(), 3.33));
    assert!(close(g.prev_close.unwrap(), 298.12));
    assert!(close(g.change_rate.unwrap(), 0.0112));
    let b = overseas_price(&json(fixture!("overseas_price_bmnr_ams.json")), "BMNR").unwrap();
    assert!(close(b.change.unwrap(), -1.87) && close(b.change_rate.unwrap(), -0.0425));
    let f = overseas_price(&json(fixture!("overseas_price_fig_nys.json")), "FIG").unwrap();
    assert!(close(f.price, 38.62) && close(f.prev_close.unwrap(), 37.95));
    assert_eq!(
        overseas_price(
            &json(fixture!("overseas_price_wrong_excd_empty.json")),
            "GOOG"
        ),
        Err(ParseError::Empty)
    );
    // A `+` rate with a falling sign code disagrees: rejected.
    let mut v = json(fixture!("overseas_price_goog_nas.json"));
    v["output"]["sign"] = "5".into();
    assert!(matches!(
        overseas_price(&v, "GOOG"),
        Err(ParseError::Direction(_))
    ));

    let d = overseas_index(&json(fixture!("overseas_index_daily_dji.json")), ".DJI").unwrap();
    assert!(close(d.price, 47_215.36) && close(d.prev_close.unwrap(), 47_002.15));
    assert!(close(d.change.unwrap(), 213.21) && close(d.change_rate.unwrap(), 0.0045));
    let c = overseas_index(&json(fixture!("overseas_index_daily_comp.json")), "COMP").unwrap();
    assert!(close(c.change.unwrap(), -105.52));
    let (bars, _) =
        overseas_index_daily(&json(fixture!("overseas_index_daily_comp.json"))).unwrap();
    assert_eq!(bars.len(), 3);
    assert_eq!(bars[0].start, new_york_ms("20260312", "093000").unwrap());
    let (bars, _) = overseas_daily(&json(fixture!("overseas_dailyprice_goog.json"))).unwrap();
    assert_eq!(bars.len(), 3);
    assert!(close(bars[0].close, 298.12));
    assert_eq!(bars[0].end, new_york_ms("20260311", "160000").unwrap());
}

#[test]
fn error_answers_and_tokens() {
    let e = api_error(&json(fixture!("error_egw00123_expired_token.json"))).unwrap();
    assert!(e.is_token() && e.code == "EGW00123");
    let e = api_error(&json(fixture!("error_egw00201_rate_limit.json"))).unwrap();
    assert!(e.is_rate_limit());
    let e = api_error(&json(fixture!("error_domestic_unknown_code.json"))).unwrap();
    assert_eq!((e.rt_cd.as_str(), e.code.as_str()), ("1", "MCA01011"));
    let e = api_error(&json(fixture!("token_error_egw00133_rate.json"))).unwrap();
    assert!(e.is_token_rate());
    let e = api_error(&json(fixture!("token_error_invalid_appkey.json"))).unwrap();
    assert_eq!(e.code, "EGW00103");
    assert!(api_error(&json(fixture!("inquire_price_068270.json"))).is_none());
    assert!(api_error(&json(fixture!("token_ok.json"))).is_none());
    let t = token_answer(&json(fixture!("token_ok.json"))).unwrap();
    assert_eq!(t.expires_in, Some(86_400));
    // 2026-03-13 08:12:44 KST = 2026-03-12 23:12:44 UTC.
    assert_eq!(t.expires_at_ms, Some(1_773_357_164_000));
    assert!(approval_answer(&json(fixture!("approval_ok.json")))
        .unwrap()
        .starts_with("FAKE-"));
}

#[test]
fn venues_are_data() {
    let v = Venues::builtin();
    let id = |s: &str| InstrumentId::parse(s).unwrap();
    assert_eq!(
        v.target(&id("index.krx.KOSPI")),
        Some(Target::KrxIndex("0001".into()))
    );
    assert_eq!(
        v.target(&id("index.us.IXIC")),
        Some(Target::UsIndex("COMP".into()))
    );
    assert_eq!(
        v.target(&id("stock.us.BMNR")),
        Some(Target::UsStock {
            symbol: "BMNR".into(),
            excd: Some("AMS".into())
        })
    );
    assert_eq!(
        v.target(&id("stock.krx.068270")),
        Some(Target::KrxStock("068270".into()))
    );
    assert_eq!(v.target(&id("crypto.upbit.KRW-BTC")), None);
    assert_eq!(
        v.extra("005930").unwrap().1,
        Target::KrxStock("005930".into())
    );
    assert_eq!(
        v.extra("tsla:nas").unwrap().1,
        Target::UsStock {
            symbol: "TSLA".into(),
            excd: Some("NAS".into())
        }
    );
    assert_eq!(
        v.extra("TSLA").unwrap().1,
        Target::UsStock {
            symbol: "TSLA".into(),
            excd: None
        }
    );
    assert!(v.extra("").is_none());
}

// ---- token cache and REST client against the fake and Redis -------------------------------------

fn redis_url() -> String {
    std::env::var("SISE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn redis() -> redis::aio::ConnectionManager {
    redis::Client::open(redis_url())
        .expect("redis url")
        .get_connection_manager()
        .await
        .expect("redis")
}

/// A unique key prefix, deleted on drop.
struct Prefix(String);

impl Prefix {
    fn new() -> Self {
        Prefix(format!(
            "test_kis_{:016x}:source:kis:cred",
            rand::random::<u64>()
        ))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let p = self.0.clone();
        let _ = std::thread::spawn(move || {
            let Ok(c) = redis::Client::open(redis_url()) else {
                return;
            };
            let Ok(mut conn) = c.get_connection() else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{p}*"))
                .query(&mut conn)
                .unwrap_or_default();
            for k in keys {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(k).query(&mut conn);
            }
        })
        .join();
    }
}

fn creds(fake: &FakeKis) -> Credentials {
    Credentials {
        app_key: SecretString::from(fake.options().app_key.clone()),
        app_secret: SecretString::from(fake.options().app_secret.clone()),
    }
}

async fn store(fake: &FakeKis, prefix: &Prefix, spacing: Duration) -> Arc<TokenStore> {
    Arc::new(TokenStore::new(
        rest::http_client().unwrap(),
        &fake.rest_url,
        creds(fake),
        Some(redis().await),
        &prefix.0,
        spacing,
        Duration::from_secs(3600),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_issued_once_and_shared_across_processes_and_restarts() {
    let fake = FakeKis::start(FakeOptions::default()).await.unwrap();
    let prefix = Prefix::new();
    let spacing = Duration::from_secs(61);
    // Two "processes" asking at once, many times each.
    let a = store(&fake, &prefix, spacing).await;
    let b = store(&fake, &prefix, spacing).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        set.spawn(async move {
            s.get(Kind::Access)
                .await
                .map(|t| t.expose_secret().to_owned())
        });
    }
    let mut tokens = Vec::new();
    while let Some(r) = set.join_next().await {
        tokens.push(r.unwrap().expect("token"));
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one token for everyone");
    let st = fake.stats();
    assert_eq!(
        (st.token_requests, st.tokens_issued, st.token_rate_rejected),
        (1, 1, 0)
    );
    // A restart: a new store on the same Redis reuses it, no request at all.
    drop(a);
    let c = store(&fake, &prefix, spacing).await;
    let t = c.get(Kind::Access).await.unwrap();
    assert_eq!(t.expose_secret(), tokens[0]);
    assert_eq!(fake.stats().token_requests, 1);
    // The approval key likewise.
    let k1 = b.get(Kind::Approval).await.unwrap();
    let k2 = c.get(Kind::Approval).await.unwrap();
    assert_eq!(k1.expose_secret(), k2.expose_secret());
    assert_eq!(fake.stats().approvals_issued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_answer_triggers_exactly_one_refresh() {
    let fake = FakeKis::start(FakeOptions {
        token_window: Duration::from_millis(500),
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let prefix = Prefix::new();
    let tokens = store(&fake, &prefix, Duration::from_millis(600)).await;
    let rest = Arc::new(Rest::new(
        rest::http_client().unwrap(),
        &fake.rest_url,
        tokens.clone(),
        50,
    ));
    rest.domestic_price("068270").await.expect("first call");
    let first = fake.current_token().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    fake.expire_token();
    // Several calls see the expired token at once: one refresh, every call succeeds.
    let mut set = tokio::task::JoinSet::new();
    for code in ["068270", "058610", "086520", "068270"] {
        let r = rest.clone();
        set.spawn(async move { r.domestic_price(code).await });
    }
    while let Some(r) = set.join_next().await {
        let v = r.unwrap().expect("call after refresh");
        assert!(domestic_price(&v).is_ok());
    }
    let st = fake.stats();
    assert_eq!(st.tokens_issued, 2, "{st:?}");
    assert_eq!(st.token_rate_rejected, 0);
    assert_ne!(fake.current_token().unwrap(), first);
    assert_eq!(tokens.stats.invalidated.load(Ordering::Relaxed), 1);
    // A second expiry inside the issue spacing: the refresh waits for the spacing, never
    // hitting EGW00133.
    fake.expire_token();
    rest.domestic_price("068270")
        .await
        .expect("after second expiry");
    assert_eq!(fake.stats().token_rate_rejected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_refused_without_leaking_them() {
    let fake = FakeKis::start(FakeOptions::default()).await.unwrap();
    let prefix = Prefix::new();
    let wrong = Credentials {
        app_key: SecretString::from("WRONG-KEY-123".to_owned()),
        app_secret: SecretString::from("WRONG-SECRET-456".to_owned()),
    };
    let s = TokenStore::new(
        rest::http_client().unwrap(),
        &fake.rest_url,
        wrong,
        Some(redis().await),
        &prefix.0,
        Duration::from_secs(61),
        Duration::from_secs(3600),
    );
    let e = s.get(Kind::Access).await.unwrap_err();
    assert!(matches!(e, TokenError::Refused { .. }), "{e}");
    let text = format!("{e} {e:?}");
    assert!(text.contains("EGW00103"), "{text}");
    assert!(!text.contains("WRONG-KEY-123") && !text.contains("WRONG-SECRET-456"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_keeps_a_burst_under_the_limit() {
    let fake = FakeKis::start(FakeOptions {
        rest_per_second: 10,
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let prefix = Prefix::new();
    let tokens = store(&fake, &prefix, Duration::from_secs(61)).await;
    let rest = Arc::new(Rest::new(
        rest::http_client().unwrap(),
        &fake.rest_url,
        tokens,
        10,
    ));
    let started = std::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..40 {
        let r = rest.clone();
        set.spawn(async move {
            let code = ["068270", "058610", "086520"][i % 3];
            r.domestic_price(code).await
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().expect("every call answered");
    }
    let st = fake.stats();
    assert_eq!(st.rate_limited, 0, "{st:?}");
    assert!(st.peak_per_second <= 10, "peak {}", st.peak_per_second);
    assert!(started.elapsed() >= Duration::from_millis(3_500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_answers_back_off_then_succeed() {
    let fake = FakeKis::start(FakeOptions::default()).await.unwrap();
    let prefix = Prefix::new();
    let tokens = store(&fake, &prefix, Duration::from_secs(61)).await;
    let rest = Rest::new(rest::http_client().unwrap(), &fake.rest_url, tokens, 18);
    rest.domestic_index("0001").await.expect("warm");
    fake.force_rate_limit(2);
    let t0 = std::time::Instant::now();
    let v = rest.domestic_index("0001").await.expect("after back-off");
    assert!(domestic_index(&v, "0001").is_ok());
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(rest.stats.rate_limited.load(Ordering::Relaxed), 2);
    // Beyond the retries: an error naming the limit.
    fake.force_rate_limit(10);
    let e = rest.domestic_index("0001").await.unwrap_err();
    assert!(matches!(e, RestError::RateLimited { .. }), "{e}");
    // Unknown code and wrong venue: errors, not data.
    fake.force_rate_limit(0);
    let e = rest.domestic_price("999999").await.unwrap_err();
    assert!(matches!(e, RestError::Api { .. }), "{e}");
    let v = rest.overseas_price("NYS", "GOOG").await.unwrap();
    assert_eq!(overseas_price(&v, "GOOG"), Err(ParseError::Empty));
}

// ---- market-hours gating (a driven clock, no sleeps) ----------------------------------------

/// Drive `gate` for `market` from `from` to `to` (KST) in 30 s steps, polling whenever it is
/// due (every poll answers); the times polled.
fn drive(gate: &mut PollGate, market: &'static str, from: &str, to: &str) -> Vec<DateTime<Utc>> {
    let kst = |t: &str| {
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_local_timezone(parse::kst())
            .unwrap()
            .with_timezone(&Utc)
    };
    let (mut now, end) = (kst(from), kst(to));
    let mut polled = Vec::new();
    while now < end {
        if gate.due(market, now) {
            gate.polled(market, now);
            polled.push(now);
        }
        now += chrono::Duration::seconds(30);
    }
    polled
}

fn kst_hm(t: DateTime<Utc>) -> String {
    t.with_timezone(&parse::kst())
        .format("%a %H:%M")
        .to_string()
}

/// KRX with the calendar: polled through Friday's sessions (NXT pre 08:00–08:50, regular
/// 09:00–15:30, NXT post to 20:00), one close snapshot right after each session ends and
/// nothing between; nothing over the weekend; nothing on a holiday (Christmas) after its one
/// snapshot of the last close; polled again on Monday from 08:00. Off: polled always.
#[test]
fn krx_is_polled_in_session_once_after_the_close_and_never_while_closed() {
    let start = chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
        .unwrap()
        .and_hms_opt(7, 0, 0)
        .unwrap()
        .and_local_timezone(parse::kst())
        .unwrap()
        .with_timezone(&Utc);
    // Started before Friday's pre-market (the start snapshot counts).
    let mut gate = PollGate::started(true, start);
    let early = drive(&mut gate, "krx", "2026-12-04 07:00", "2026-12-04 08:00");
    assert!(
        early.is_empty(),
        "closed before 08:00: {:?}",
        early.iter().map(|t| kst_hm(*t)).collect::<Vec<_>>()
    );
    let day = drive(&mut gate, "krx", "2026-12-04 08:00", "2026-12-04 20:00");
    // 08:00–08:50 and 09:00–20:00 every step, plus one snapshot after the pre-market ends.
    assert_eq!(day.len(), 100 + 1 + 1320, "{}", day.len());
    let gap: Vec<String> = day
        .iter()
        .map(|t| kst_hm(*t))
        .filter(|t| t.as_str() > "Fri 08:49" && t.as_str() < "Fri 09:00")
        .collect();
    assert_eq!(gap, ["Fri 08:50"], "one snapshot after the pre-market ends");
    // After the last session: exactly one close snapshot, at once; then nothing all weekend.
    let night = drive(&mut gate, "krx", "2026-12-04 20:00", "2026-12-07 08:00");
    assert_eq!(
        night.iter().map(|t| kst_hm(*t)).collect::<Vec<_>>(),
        ["Fri 20:00"],
        "exactly one close snapshot"
    );
    let monday = drive(&mut gate, "krx", "2026-12-07 08:00", "2026-12-07 08:10");
    assert_eq!(monday.len(), 20, "open again on Monday");
    assert_eq!(kst_hm(monday[0]), "Mon 08:00");

    // A holiday (2026-12-25, a Friday), started that morning: the start snapshot only.
    let xmas = chrono::NaiveDate::from_ymd_opt(2026, 12, 25)
        .unwrap()
        .and_hms_opt(6, 0, 0)
        .unwrap()
        .and_local_timezone(parse::kst())
        .unwrap()
        .with_timezone(&Utc);
    let mut gate = PollGate::started(true, xmas);
    assert!(drive(&mut gate, "krx", "2026-12-25 06:00", "2026-12-28 07:59").is_empty());

    // Market hours off (demos, tests): due at every step.
    let mut gate = PollGate::started(false, start);
    assert_eq!(
        drive(&mut gate, "krx", "2026-12-05 12:00", "2026-12-05 13:00").len(),
        120
    );
}

/// The US market follows New York's sessions (04:00–20:00 NY, i.e. 18:00–10:00 KST in
/// winter): one close snapshot after Friday's post-market, none over the weekend.
#[test]
fn us_is_polled_on_new_york_hours_with_one_close_snapshot() {
    let start = chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_local_timezone(parse::kst())
        .unwrap()
        .with_timezone(&Utc);
    let mut gate = PollGate::started(true, start);
    // Friday 12:00–18:00 KST = 22:00 Thu – 04:00 Fri NY: closed.
    assert!(drive(&mut gate, "us", "2026-12-04 12:00", "2026-12-04 18:00").is_empty());
    let session = drive(&mut gate, "us", "2026-12-04 18:00", "2026-12-05 10:00");
    assert_eq!(session.len(), 16 * 120, "04:00–20:00 New York");
    let after = drive(&mut gate, "us", "2026-12-05 10:00", "2026-12-07 17:59");
    assert_eq!(
        after.iter().map(|t| kst_hm(*t)).collect::<Vec<_>>(),
        ["Sat 10:00"],
        "one close snapshot after 20:00 New York, then the weekend"
    );
}
