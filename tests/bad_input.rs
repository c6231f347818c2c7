//! Bad input on every REST parameter and WebSocket op gets the documented error
//! (`{"error":{"code","message"}}` with a 4xx, or an `error` frame), never a panic or a 500,
//! and the server keeps serving afterwards.

mod common;

use std::time::Duration;

use common::*;
use futures::SinkExt;
use serde_json::{json, Value};
use sise::Stages;
use tokio_tungstenite::tungstenite::Message;

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str, what: &str) {
    assert_eq!(status, want_status, "{what}: {body}");
    assert_eq!(body["error"]["code"], want_code, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_parameters() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let many: Vec<String> = (0..201).map(|i| format!("stock.krx.{i:06}")).collect();
    let cases: Vec<(String, u16, &str)> = vec![
        ("/api/v1/quotes".into(), 400, "missing_parameter"),
        ("/api/v1/quotes?ids=".into(), 400, "missing_parameter"),
        ("/api/v1/quotes?ids=,,".into(), 400, "missing_parameter"),
        (
            format!("/api/v1/quotes?ids={}", many.join(",")),
            400,
            "too_many_ids",
        ),
        (
            "/api/v1/quotes?ids=crypto.upbit.KRW-BTC,not-an-id".into(),
            400,
            "bad_instrument_id",
        ),
        (
            "/api/v1/quotes?ids=stock.jpx.7203".into(),
            404,
            "unknown_instrument",
        ),
        (
            "/api/v1/quotes?ids=crypto.upbit.KRW-BTC%3E".into(),
            400,
            "bad_instrument_id",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?interval=2m".into(),
            400,
            "bad_interval",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?interval=1M".into(),
            400,
            "bad_interval",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?from=yesterday".into(),
            400,
            "bad_parameter",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?to=-5".into(),
            400,
            "bad_parameter",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?from=2000&to=1000".into(),
            400,
            "bad_range",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?limit=5001".into(),
            400,
            "limit_too_large",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?limit=0".into(),
            400,
            "bad_parameter",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?limit=ten".into(),
            400,
            "bad_parameter",
        ),
        (
            "/api/v1/candles/crypto.upbit.KRW-BTC?limit=99999999999999999999".into(),
            400,
            "bad_parameter",
        ),
        ("/api/v1/candles/bogus".into(), 400, "bad_instrument_id"),
        (
            "/api/v1/candles/stock.jpx.7203".into(),
            404,
            "unknown_instrument",
        ),
        ("/api/v1/news?instrument=x".into(), 400, "bad_instrument_id"),
        (
            "/api/v1/news?instrument=stock.us.aapl".into(),
            404,
            "unknown_instrument",
        ),
        ("/api/v1/news?limit=201".into(), 400, "limit_too_large"),
        ("/api/v1/news?before=soon".into(), 400, "bad_parameter"),
        ("/api/v1/layouts/zzzz".into(), 404, "unknown_layout"),
        (
            "/api/v1/layouts/0123456789abcdef".into(),
            404,
            "unknown_layout",
        ),
        ("/api/v1/nothing-here".into(), 404, "not_found"),
    ];
    for (path, status, code) in &cases {
        let (s, body) = app.get(path).await;
        assert_error(s, &body, *status, code, path);
    }
    // The good forms of the same routes answer 200.
    for ok in [
        "/api/v1/quotes?ids=crypto.upbit.KRW-BTC",
        "/api/v1/candles/crypto.upbit.KRW-BTC?interval=1h&limit=5000&from=0&to=1000",
        "/api/v1/news?instrument=stock.krx.068270&limit=5",
        "/api/v1/instruments",
        "/api/v1/sources",
        "/api/v1/openapi.json",
        "/healthz",
        "/readyz",
    ] {
        assert_eq!(app.get(ok).await.0, 200, "{ok}");
    }
    let (_, body) = app.get("/api/v1/instruments").await;
    let list = body["instruments"].as_array().unwrap();
    // 20 market instruments, 2 USD references (kimchi premium) and 6 derived ones.
    assert_eq!(list.len(), 28);
    let btc = list
        .iter()
        .find(|i| i["id"] == "crypto.upbit.KRW-BTC")
        .unwrap();
    assert_eq!(
        btc,
        &json!({"id":"crypto.upbit.KRW-BTC","name_ko":"비트코인","name_en":"Bitcoin","class":"crypto",
                "venue":"upbit","currency":"KRW","decimals":0,"market":"crypto"})
    );
    // Method not allowed is JSON too.
    let resp = reqwest::Client::new()
        .delete(format!("{}/api/v1/quotes", app.base))
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    assert_error(
        s,
        &resp.json().await.unwrap(),
        405,
        "method_not_allowed",
        "DELETE quotes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_need_their_secret() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/layouts", app.base);
    let post = |body: String| {
        http.post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    for (body, code) in [
        ("not json".to_string(), "bad_json"),
        ("[1,2]".into(), "bad_layout"),
        ("{\"layout\": 5}".into(), "bad_layout"),
        ("{}".into(), "bad_layout"),
    ] {
        let r = post(body.clone()).await.unwrap();
        let s = r.status().as_u16();
        assert_error(s, &r.json().await.unwrap(), 400, code, &body);
    }
    let huge = json!({"layout": {"pad": "x".repeat(70_000)}}).to_string();
    let r = post(huge).await.unwrap();
    assert_eq!(r.status().as_u16(), 413);

    let layout = json!({"widgets": [{"kind": "quotes", "ids": ["stock.krx.068270"]}], "chart": {"id": "crypto.upbit.KRW-BTC", "interval": "5m"}});
    let r = post(json!({"layout": layout}).to_string()).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["layout"], layout);

    let (s, got) = app.get(&format!("/api/v1/layouts/{id}")).await;
    assert_eq!((s, &got["layout"]), (200, &layout));
    assert!(got.get("secret").is_none(), "the secret is never read back");

    let put_url = format!("{url}/{id}");
    let changed = json!({"layout": {"widgets": []}});
    let r = http.put(&put_url).json(&changed).send().await.unwrap();
    let s = r.status().as_u16();
    assert_error(
        s,
        &r.json().await.unwrap(),
        401,
        "unauthorized",
        "PUT without secret",
    );
    let r = http
        .put(&put_url)
        .bearer_auth("wrong")
        .json(&changed)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(
        s,
        &r.json().await.unwrap(),
        403,
        "forbidden",
        "PUT with a wrong secret",
    );
    let r = http
        .put(format!("{url}/0123456789abcdef"))
        .bearer_auth(&secret)
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http
        .put(&put_url)
        .bearer_auth(&secret)
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, got) = app.get(&format!("/api/v1/layouts/{id}")).await;
    assert_eq!(got["layout"], changed["layout"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let mut config = test_config(&[]);
    config.rate_limit = 2;
    let app = spawn_app(config, Stages::EDGE).await;
    let mut limited = None;
    for _ in 0..20 {
        let r = reqwest::get(format!("{}/api/v1/instruments", app.base))
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a 429 within 20 quick requests at 2/s");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Operations endpoints are not limited.
    assert_eq!(app.get("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ops() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let mut ws = ws_connect(&app).await;
    let t = Duration::from_secs(5);
    let err = |v: Option<Value>| {
        let v = v.expect("a frame");
        assert_eq!(v["type"], "error", "{v}");
        v["code"].as_str().unwrap().to_owned()
    };

    ws.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(err(ws_next(&mut ws, t).await), "bad_message");
    ws_send(&mut ws, json!({"op": "dance"})).await;
    assert_eq!(err(ws_next(&mut ws, t).await), "bad_message");
    ws_send(&mut ws, json!({"op": "subscribe"})).await;
    assert_eq!(err(ws_next(&mut ws, t).await), "bad_message");
    ws_send(
        &mut ws,
        json!({"op": "subscribe", "ids": "crypto.upbit.KRW-BTC"}),
    )
    .await;
    assert_eq!(err(ws_next(&mut ws, t).await), "bad_message");
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(err(ws_next(&mut ws, t).await), "bad_message");
    let many: Vec<String> = (0..201).map(|i| format!("stock.krx.{i:06}")).collect();
    ws_send(&mut ws, json!({"op": "subscribe", "ids": many})).await;
    assert_eq!(err(ws_next(&mut ws, t).await), "too_many_ids");
    ws_send(
        &mut ws,
        json!({"op": "replay", "ids": ["crypto.upbit.KRW-BTC"], "from": 2, "to": 1, "speed": 1}),
    )
    .await;
    assert_eq!(err(ws_next(&mut ws, t).await), "bad_range");

    // Mixed ids: errors for the bad ones, a snapshot for the good one.
    ws_send(
        &mut ws,
        json!({"op": "subscribe", "ids": ["bad id", "stock.jpx.7203", "crypto.upbit.KRW-BTC"]}),
    )
    .await;
    assert_eq!(err(ws_next(&mut ws, t).await), "bad_instrument_id");
    assert_eq!(err(ws_next(&mut ws, t).await), "unknown_instrument");
    let snap = ws_next(&mut ws, t).await.unwrap();
    assert_eq!(snap["type"], "snapshot");
    // Unsubscribing an unknown or malformed id is harmless.
    ws_send(
        &mut ws,
        json!({"op": "unsubscribe", "ids": ["nope", "stock.krx.005930"]}),
    )
    .await;

    // The socket still works: a published tick arrives.
    app.bus
        .publish_tick(&tick(
            "crypto.upbit.KRW-BTC",
            sise_bus::now_ms(),
            130_000_000.0,
            0.1,
            1,
        ))
        .await
        .unwrap();
    let frame = ws_next(&mut ws, t).await.expect("tick after the errors");
    assert_eq!(frame_quotes(&frame)[0]["price"], 130_000_000.0);

    // An oversized message closes that socket; the server stays up for others.
    let big = json!({"op": "subscribe", "ids": ["x".repeat(40_000)]}).to_string();
    let _ = ws.send(Message::Text(big.into())).await;
    let mut closed = false;
    for _ in 0..5 {
        if ws_next(&mut ws, t).await.is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "oversized message closes the socket");
    let mut other = ws_connect(&app).await;
    ws_send(
        &mut other,
        json!({"op": "subscribe", "ids": ["crypto.upbit.KRW-BTC"]}),
    )
    .await;
    assert_eq!(ws_next(&mut other, t).await.unwrap()["type"], "snapshot");

    // A flood of ops is cut off.
    let mut flood = ws_connect(&app).await;
    for _ in 0..200 {
        if flood
            .send(Message::Text(
                json!({"op": "unsubscribe", "ids": []}).to_string().into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut codes = Vec::new();
    while let Some(v) = ws_next(&mut flood, t).await {
        codes.push(v["code"].as_str().unwrap_or("").to_owned());
    }
    assert!(codes.contains(&"rate_limited".to_owned()), "{codes:?}");
}

/// Codes nobody has checked yet (candidates for the `kis` source) are bounded per edge: each
/// costs the source KIS requests, so a client that makes up hundreds gets a clear
/// `too_many_candidates` for those past the bound, over the socket and over REST, and nothing
/// is recorded for them; one already waiting is still accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_waiting_for_their_check_are_bounded() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let max = sise::edge::MAX_PENDING_CANDIDATES;
    let mut ws = ws_connect(&app).await;
    let t = Duration::from_secs(5);
    let codes: Vec<String> = (0..max + 5)
        .map(|i| format!("stock.krx.{:06}", 900_000 + i))
        .collect();
    ws_send(&mut ws, json!({"op": "subscribe", "ids": codes})).await;
    let v = ws_next(&mut ws, t).await.expect("a frame");
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["code"], "too_many_candidates", "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains(&codes[max]), "{message}");
    assert!(!message.contains(&codes[max - 1]), "{message}");
    let snap = ws_next(&mut ws, t).await.expect("the snapshot");
    assert_eq!(snap["type"], "snapshot", "{snap}");
    // No price yet for any of them: absent, never a placeholder.
    assert_eq!(snap["quotes"].as_array().map(Vec::len), Some(0), "{snap}");

    // REST: one already waiting is fine, one more is refused with the same code.
    let (s, body) = app.get(&format!("/api/v1/quotes?ids={}", codes[0])).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = app
        .get(&format!("/api/v1/quotes?ids={}", codes[max + 1]))
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "too_many_candidates", "{body}");
}
