//! A fake NewsAPI.org on 127.0.0.1 (feature `fake`), speaking `shared/apis/newsapi.md` with
//! its fixtures byte for byte, for the tests of this crate and of the `sise` binary.
//!
//! - `GET /v2/everything` and `GET /v2/top-headlines` (base `url` = `http://127.0.0.1:port/v2`).
//! - The key: header `X-Api-Key`, `Authorization`, or query `apiKey`; none → 401
//!   `apiKeyMissing`, a wrong one → 401 `apiKeyInvalid` (the fixture).
//! - The plan's limit is enforced: more than `daily_limit` requests with one key in 24 h →
//!   429 `rateLimited` (the fixture). No `q`/`sources`/`domains` → 400 `parametersMissing`;
//!   `page × pageSize > 100` → 426 `maximumResultsReached`; `from` older than 30 days → 400
//!   `parameterInvalid`.
//! - A success is `everything_ok.json` (three articles, one `[Removed]`) byte for byte, or,
//!   once a test adds articles, the fixture's articles followed by the added ones.
//! - Tests can force the next answers: any documented error, an empty day, a truncated body,
//!   a 502 page, a slow answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::fake_http::{read_request, write_response};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/", $name)).as_slice()
    };
}

const API_KEY_MISSING: &[u8] = br#"{"status":"error","code":"apiKeyMissing","message":"Your API key is missing. Append this to the URL with the apiKey param, or use the x-api-key HTTP header."}"#;
const UNEXPECTED: &[u8] = br#"{"status":"error","code":"unexpectedError","message":"This shouldn't happen, and if it does then it's our fault, not yours. Try the request again shortly."}"#;

/// A forced answer for the next request.
#[derive(Debug, Clone, PartialEq)]
pub enum Forced {
    /// 401 `apiKeyInvalid`.
    KeyInvalid,
    /// 429 `rateLimited`.
    RateLimited,
    /// 426 `maximumResultsReached`.
    MaximumResults,
    /// 400 `parameterInvalid`.
    ParameterInvalid,
    /// 400 `parametersMissing`.
    ParametersMissing,
    /// 500 `unexpectedError`.
    Unexpected,
    /// 502 with an HTML page (a proxy in front of NewsAPI).
    BadGateway,
    /// 200 with the success body cut short.
    Truncated,
    /// 200 `{"status":"ok","totalResults":0,"articles":[]}` (the empty-day answer).
    Empty,
    /// The normal answer after this delay.
    Slow(Duration),
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
    /// The raw request target (to check that no key travelled in it).
    pub target: String,
    pub user_agent: Option<String>,
    pub status: u16,
}

struct State {
    key: String,
    daily_limit: u32,
    /// Times of the requests per key in the last 24 h.
    calls: HashMap<String, Vec<Instant>>,
    forced: Vec<Forced>,
    /// Answer every request with this (until cleared).
    always: Option<Forced>,
    extra: Vec<Value>,
    seen: Vec<Seen>,
}

/// The running fake.
pub struct FakeNewsApi {
    /// Base as `SISE_NEWSAPI_URL` takes it (`…/v2`).
    pub url: String,
    state: Arc<Mutex<State>>,
    handle: JoinHandle<()>,
}

impl Drop for FakeNewsApi {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl FakeNewsApi {
    /// A fake that accepts `key` and allows `daily_limit` requests per 24 h (free plan: 100).
    pub async fn start(key: &str, daily_limit: u32) -> std::io::Result<FakeNewsApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            key: key.to_owned(),
            daily_limit,
            calls: HashMap::new(),
            forced: Vec::new(),
            always: None,
            extra: Vec::new(),
            seen: Vec::new(),
        }));
        let st = state.clone();
        let handle = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve(st.clone(), s));
            }
        });
        Ok(FakeNewsApi {
            url: format!("http://{addr}/v2"),
            state,
            handle,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answer the next requests with these, in order.
    pub fn force(&self, answers: &[Forced]) {
        self.lock().forced.extend_from_slice(answers);
    }

    /// Answer every request with this (`None`: back to normal).
    pub fn always(&self, answer: Option<Forced>) {
        self.lock().always = answer;
    }

    /// Add an article (a JSON object in NewsAPI's shape) after the fixture's.
    pub fn add_article(&self, article: Value) {
        self.lock().extra.push(article);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests so far.
    pub fn calls(&self) -> usize {
        self.lock().seen.len()
    }
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    delay: Option<Duration>,
}

fn reply(status: u16, body: &[u8]) -> Reply {
    Reply {
        status,
        content_type: "application/json; charset=utf-8",
        body: body.to_vec(),
        delay: None,
    }
}

fn ok_body(extra: &[Value]) -> Vec<u8> {
    let fixture = fixture!("everything_ok.json");
    if extra.is_empty() {
        return fixture.to_vec();
    }
    let mut v: Value = serde_json::from_slice(fixture).unwrap_or(Value::Null);
    if let Some(list) = v.get_mut("articles").and_then(Value::as_array_mut) {
        list.extend(extra.iter().cloned());
        let n = list.len();
        v["totalResults"] = Value::from(n);
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

fn forced_reply(f: &Forced, extra: &[Value]) -> Reply {
    match f {
        Forced::KeyInvalid => reply(401, fixture!("error_401_apikeyinvalid.json")),
        Forced::RateLimited => reply(429, fixture!("error_429_ratelimited.json")),
        Forced::MaximumResults => reply(426, fixture!("error_426_maximumresultsreached.json")),
        Forced::ParameterInvalid => reply(400, fixture!("error_400_parameterinvalid.json")),
        Forced::ParametersMissing => reply(400, fixture!("error_400_parametersmissing.json")),
        Forced::Unexpected => reply(500, UNEXPECTED),
        Forced::BadGateway => Reply {
            status: 502,
            content_type: "text/html",
            body: b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
            delay: None,
        },
        Forced::Truncated => {
            let body = ok_body(extra);
            reply(200, &body[..body.len().min(90)])
        }
        Forced::Empty => reply(200, fixture!("top_headlines_kr_empty.json")),
        Forced::Slow(d) => Reply {
            delay: Some(*d),
            ..reply(200, &ok_body(extra))
        },
    }
}

fn route(
    st: &mut State,
    path: &str,
    q: &HashMap<String, String>,
    headers: &HashMap<String, String>,
) -> Reply {
    if path != "/v2/everything" && path != "/v2/top-headlines" {
        return reply(
            404,
            br#"{"status":"error","code":"routeNotFound","message":"Route not found."}"#,
        );
    }
    let key = headers
        .get("x-api-key")
        .or_else(|| headers.get("authorization"))
        .or_else(|| q.get("apiKey"))
        .cloned();
    let Some(key) = key else {
        return reply(401, API_KEY_MISSING);
    };
    if key != st.key {
        return reply(401, fixture!("error_401_apikeyinvalid.json"));
    }
    // The plan's window: requests of this key in the last 24 h.
    let now = Instant::now();
    let limit = st.daily_limit;
    let calls = st.calls.entry(key).or_default();
    calls.retain(|t| now.duration_since(*t) < Duration::from_secs(86_400));
    if calls.len() as u32 >= limit {
        return reply(429, fixture!("error_429_ratelimited.json"));
    }
    calls.push(now);
    let forced = if st.forced.is_empty() {
        st.always.clone()
    } else {
        Some(st.forced.remove(0))
    };
    if let Some(f) = forced {
        return forced_reply(&f, &st.extra);
    }
    let everything = path == "/v2/everything";
    if everything
        && !["q", "sources", "domains", "qInTitle"]
            .iter()
            .any(|k| q.contains_key(*k))
    {
        return reply(400, fixture!("error_400_parametersmissing.json"));
    }
    let num = |k: &str, d: u64| q.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let page_size = num("pageSize", if everything { 100 } else { 20 });
    if num("page", 1) * page_size > 100 || page_size > 100 {
        return reply(426, fixture!("error_426_maximumresultsreached.json"));
    }
    if let Some(from) = q.get("from") {
        let t = chrono::NaiveDateTime::parse_from_str(from, "%Y-%m-%dT%H:%M:%S")
            .map(|t| t.and_utc())
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
            });
        match t {
            Ok(t) if chrono::Utc::now() - t > chrono::Duration::days(30) => {
                return reply(400, fixture!("error_400_parameterinvalid.json"));
            }
            Ok(_) => {}
            Err(_) => return reply(400, fixture!("error_400_parameterinvalid.json")),
        }
    }
    if !everything {
        // Country coverage has shrunk: nothing useful (doc §3).
        return reply(200, fixture!("top_headlines_kr_empty.json"));
    }
    reply(200, &ok_body(&st.extra))
}

async fn serve(state: Arc<Mutex<State>>, mut s: TcpStream) {
    let mut buf = Vec::with_capacity(2048);
    while let Some(req) = read_request(&mut s, &mut buf).await {
        let r = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let r = route(&mut st, &req.path, &req.query, &req.headers);
            st.seen.push(Seen {
                path: req.path.clone(),
                query: req.query.clone(),
                target: req.target.clone(),
                user_agent: req.headers.get("user-agent").cloned(),
                status: r.status,
            });
            r
        };
        if let Some(d) = r.delay {
            tokio::time::sleep(d).await;
        }
        if !write_response(&mut s, r.status, r.content_type, "", &r.body).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_the_documented_rules() {
        let mut st = State {
            key: "FAKE-KEY".into(),
            daily_limit: 2,
            calls: HashMap::new(),
            forced: Vec::new(),
            always: None,
            extra: Vec::new(),
            seen: Vec::new(),
        };
        let h = |k: &str| HashMap::from([("x-api-key".to_owned(), k.to_owned())]);
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert_eq!(
            route(&mut st, "/v2/everything", &q(&[]), &HashMap::new()).status,
            401
        );
        assert_eq!(
            route(&mut st, "/v2/everything", &q(&[]), &h("nope")).status,
            401
        );
        assert_eq!(
            route(&mut st, "/v2/everything", &q(&[]), &h("FAKE-KEY")).status,
            400
        );
        let ok = route(&mut st, "/v2/everything", &q(&[("q", "x")]), &h("FAKE-KEY"));
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body, fixture!("everything_ok.json"));
        // The plan's limit (2 here) is enforced.
        assert_eq!(
            route(&mut st, "/v2/everything", &q(&[("q", "x")]), &h("FAKE-KEY")).status,
            429
        );
        st.daily_limit = 100;
        let deep = q(&[("q", "x"), ("page", "2"), ("pageSize", "100")]);
        assert_eq!(
            route(&mut st, "/v2/everything", &deep, &h("FAKE-KEY")).status,
            426
        );
        let old = q(&[("q", "x"), ("from", "2001-01-01")]);
        assert_eq!(
            route(&mut st, "/v2/everything", &old, &h("FAKE-KEY")).status,
            400
        );
        st.forced.push(Forced::Empty);
        let e = route(&mut st, "/v2/everything", &q(&[("q", "x")]), &h("FAKE-KEY"));
        assert_eq!(
            (e.status, e.body.as_slice()),
            (200, fixture!("top_headlines_kr_empty.json"))
        );
    }
}
