//! KIS wire formats → sise observations, without a panic on any input (`shared/apis/kis.md`).
//!
//! - WebSocket text frames: `<enc>|<tr_id>|<count>|<payload>` with the records' fields joined
//!   by `^` (several records simply concatenated; an empty field is "absent", never zero),
//!   PINGPONG and the JSON control answers (subscribe acks and errors).
//! - REST answers: the `rt_cd`/`msg_cd`/`msg1` envelope (or the OAuth `error_code` shape) and
//!   the payloads of the endpoints sise uses. Every number is a JSON string; only the plain
//!   fields are read (never display strings such as `cpfn_cnnm`).
//!
//! Directions: the sign code (`1`/`2` up, `3` flat, `4`/`5` down) is the source of truth; a
//! signed change or rate that disagrees with it is rejected. Overseas `diff` is unsigned and
//! takes its sign from the code.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use serde_json::Value;

/// Fields per H0STCNT0 record (official samples); older clients list 44.
pub const H0STCNT0_FIELDS: usize = 46;
pub const H0STCNT0_FIELDS_OLD: usize = 44;
/// Fields per HDFSCNT0 record: 26 with RSYM first, 25 in KIS's newest sample.
pub const HDFSCNT0_FIELDS: usize = 26;

/// Why a frame or answer was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("not a KIS frame: {0}")]
    Frame(&'static str),
    #[error("record count {count} does not fit {fields} fields")]
    Count { count: usize, fields: usize },
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("field {0} is not a number")]
    Number(&'static str),
    #[error("field {0} has a bad value")]
    Bad(&'static str),
    #[error("sign code and signed change disagree ({0})")]
    Direction(&'static str),
    #[error("empty answer (wrong venue or unknown symbol)")]
    Empty,
    #[error("not JSON: {0}")]
    Json(String),
}

/// A KIS error code and message, from `msg_cd`/`msg1` or `error_code`/`error_description`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub rt_cd: String,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let msg: String = self.message.chars().take(120).collect();
        write!(f, "{} {}", self.code, msg.trim())
    }
}

impl ApiError {
    /// Expired (EGW00123) or invalid (EGW00121) access token: refresh once, retry once.
    pub fn is_token(&self) -> bool {
        self.code == "EGW00123" || self.code == "EGW00121"
    }
    /// Over the requests-per-second limit.
    pub fn is_rate_limit(&self) -> bool {
        self.code == "EGW00201"
    }
    /// Token issued less than a minute ago (tokenP's 1-per-minute rule).
    pub fn is_token_rate(&self) -> bool {
        self.code == "EGW00133"
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The error in an answer, if it is one: `error_code` (OAuth shape) or `rt_cd` ≠ `"0"`.
pub fn api_error(body: &Value) -> Option<ApiError> {
    if let Some(code) = str_of(body, "error_code").filter(|c| !c.is_empty()) {
        return Some(ApiError {
            rt_cd: String::new(),
            code: code.to_owned(),
            message: str_of(body, "error_description").unwrap_or("").to_owned(),
        });
    }
    match str_of(body, "rt_cd") {
        Some("0") => None,
        Some(rt) => Some(ApiError {
            rt_cd: rt.to_owned(),
            code: str_of(body, "msg_cd").unwrap_or("").to_owned(),
            message: str_of(body, "msg1").unwrap_or("").to_owned(),
        }),
        None => None,
    }
}

/// A KIS number string: `""` → `None`; `"+1.12"`, `"-850"`, `"4112.58"` → the value.
pub fn num(s: &str, field: &'static str) -> Result<Option<f64>, ParseError> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        _ => Err(ParseError::Number(field)),
    }
}

fn req(s: &str, field: &'static str) -> Result<f64, ParseError> {
    num(s, field)?.ok_or(ParseError::Missing(field))
}

fn jnum(v: &Value, field: &'static str) -> Result<Option<f64>, ParseError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => num(s, field),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(ParseError::Number(field)),
    }
}

fn jreq(v: &Value, field: &'static str) -> Result<f64, ParseError> {
    jnum(v, field)?.ok_or(ParseError::Missing(field))
}

fn jstr<'a>(v: &'a Value, field: &'static str) -> &'a str {
    str_of(v, field).unwrap_or("")
}

/// Direction of a sign code: +1 up (`1` limit up, `2` up), 0 flat (`3`), −1 down (`4`, `5`).
pub fn sign_dir(code: &str) -> Option<i8> {
    match code.trim() {
        "1" | "2" => Some(1),
        "3" => Some(0),
        "4" | "5" => Some(-1),
        _ => None,
    }
}

/// A signed change checked against its sign code (a zero change fits any code: a limit-up
/// stock can trade at its previous close for an instant only in theory; KIS sends `3` then).
fn signed_checked(
    signed: Option<f64>,
    code: &str,
    field: &'static str,
) -> Result<Option<f64>, ParseError> {
    let (Some(x), Some(d)) = (signed, sign_dir(code)) else {
        return Ok(signed);
    };
    let ok = match d {
        1 => x >= 0.0,
        -1 => x <= 0.0,
        _ => x == 0.0,
    };
    if ok {
        Ok(Some(x))
    } else {
        Err(ParseError::Direction(field))
    }
}

/// An unsigned magnitude given its direction by the sign code.
fn unsigned_with(
    mag: Option<f64>,
    code: &str,
    field: &'static str,
) -> Result<Option<f64>, ParseError> {
    let Some(m) = mag else { return Ok(None) };
    if m < 0.0 {
        return Err(ParseError::Bad(field));
    }
    match sign_dir(code) {
        Some(d) => Ok(Some(m * f64::from(d))),
        None if m == 0.0 => Ok(Some(0.0)),
        None => Err(ParseError::Bad("sign")),
    }
}

/// Seoul (no DST since 1988).
pub fn kst() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!("+9 h is valid"))
}

fn date_of(s: &str, field: &'static str) -> Result<NaiveDate, ParseError> {
    NaiveDate::parse_from_str(s.trim(), "%Y%m%d").map_err(|_| ParseError::Bad(field))
}

fn time_of(s: &str, field: &'static str) -> Result<NaiveTime, ParseError> {
    NaiveTime::parse_from_str(s.trim(), "%H%M%S").map_err(|_| ParseError::Bad(field))
}

/// `yyyyMMdd` + `HHmmss` in Seoul → epoch ms.
pub fn kst_ms(date: &str, time: &str) -> Result<i64, ParseError> {
    let dt = NaiveDateTime::new(date_of(date, "date")?, time_of(time, "time")?);
    kst()
        .from_local_datetime(&dt)
        .single()
        .map(|t| t.timestamp_millis())
        .ok_or(ParseError::Bad("time"))
}

/// `yyyyMMdd` + `HHmmss` in New York (DST-aware) → epoch ms.
pub fn new_york_ms(date: &str, time: &str) -> Result<i64, ParseError> {
    let dt = NaiveDateTime::new(date_of(date, "date")?, time_of(time, "time")?);
    chrono_tz::America::New_York
        .from_local_datetime(&dt)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or(ParseError::Bad("time"))
}

/// `yyyy-MM-dd HH:mm:ss` in Seoul (the token's `access_token_token_expired`) → epoch ms.
pub fn kst_datetime_ms(s: &str) -> Option<i64> {
    let dt = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    kst()
        .from_local_datetime(&dt)
        .single()
        .map(|t| t.timestamp_millis())
}

/// One price observation of a KIS instrument, not yet tied to an instrument id.
#[derive(Debug, Clone, PartialEq)]
pub struct Obs {
    /// The KIS key: a 6-digit code, an index code (`0001`, `.DJI`) or a US ticker.
    pub key: String,
    pub price: f64,
    pub prev_close: Option<f64>,
    /// Signed change against the previous close (KIS's own).
    pub change: Option<f64>,
    /// Signed change rate, a fraction (KIS's own percentage / 100).
    pub change_rate: Option<f64>,
    /// Size of this trade (0 for a quote snapshot).
    pub volume: f64,
    /// The day's cumulative volume as KIS reports it.
    pub day_volume: Option<f64>,
    /// Exchange time, ms (0 when the answer carries none: the caller stamps it).
    pub ts: i64,
    /// Dedup sequence: the accumulated volume for trades and snapshots, the row index for bars.
    pub seq: u64,
}

fn rate_fraction(pct: Option<f64>) -> Option<f64> {
    pct.map(|p| p / 100.0)
}

fn vol_seq(v: Option<f64>) -> u64 {
    v.filter(|x| x.is_finite() && *x >= 0.0)
        .map(|x| x as u64)
        .unwrap_or(0)
}

// ---- WebSocket ------------------------------------------------------------------------------

/// What one WebSocket text frame turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    /// Realtime records of a TR (`tr_id`, its observations; records that failed are counted
    /// in `bad`).
    Data {
        tr_id: &'a str,
        obs: Vec<Obs>,
        bad: usize,
    },
    /// An encrypted frame (`enc` = 1): order notices, which sise does not use.
    Encrypted(&'a str),
    /// PINGPONG: answer by sending the same text back.
    PingPong,
    /// A control answer (subscribe ack or error).
    Control(Control),
}

/// A JSON control answer of the WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub tr_id: String,
    pub tr_key: String,
    pub rt_cd: String,
    pub msg_cd: String,
    pub msg1: String,
}

/// What a control answer means for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Subscribed,
    Unsubscribed,
    /// `ALREADY IN SUBSCRIBE`: harmless, the key is subscribed.
    Already,
    /// `MAX SUBSCRIBE OVER`: the session's registration cap is reached.
    CapReached,
    /// `ALREADY IN USE appkey`: another session holds the key; the server closes this one.
    InUse,
    /// Any other failure: that (tr_id, tr_key) is not subscribed; the session stays.
    Failed,
}

impl Control {
    pub fn ack(&self) -> Ack {
        let m = self.msg1.to_ascii_uppercase();
        if self.msg_cd == "OPSP8996" || m.contains("ALREADY IN USE") {
            Ack::InUse
        } else if self.msg_cd == "OPSP0008" || m.contains("MAX SUBSCRIBE OVER") {
            Ack::CapReached
        } else if m.contains("ALREADY IN SUBSCRIBE") {
            Ack::Already
        } else if self.rt_cd == "0" && m.contains("UNSUBSCRIBE") {
            Ack::Unsubscribed
        } else if self.rt_cd == "0" {
            Ack::Subscribed
        } else {
            Ack::Failed
        }
    }
}

/// Parse one text frame.
pub fn parse_frame(text: &str) -> Result<Frame<'_>, ParseError> {
    let t = text.trim_end_matches(['\r', '\n']);
    match t.as_bytes().first() {
        Some(b'{') => return parse_control(t),
        Some(b'0') | Some(b'1') => {}
        _ => return Err(ParseError::Frame("neither data nor JSON")),
    }
    let mut parts = t.splitn(4, '|');
    let enc = parts.next().ok_or(ParseError::Frame("no header"))?;
    let tr_id = parts.next().ok_or(ParseError::Frame("no tr_id"))?;
    let count = parts.next().ok_or(ParseError::Frame("no count"))?;
    let payload = parts.next().ok_or(ParseError::Frame("no payload"))?;
    if enc == "1" {
        return Ok(Frame::Encrypted(tr_id));
    }
    if enc != "0" {
        return Err(ParseError::Frame("bad encryption flag"));
    }
    let count: usize = count
        .parse()
        .map_err(|_| ParseError::Frame("bad record count"))?;
    if count == 0 || count > 10_000 {
        return Err(ParseError::Frame("bad record count"));
    }
    let fields: Vec<&str> = payload.split('^').collect();
    let (obs, bad) = match tr_id {
        "H0STCNT0" => {
            let per = if fields.len() == count * H0STCNT0_FIELDS {
                H0STCNT0_FIELDS
            } else if fields.len() == count * H0STCNT0_FIELDS_OLD {
                H0STCNT0_FIELDS_OLD
            } else {
                return Err(ParseError::Count {
                    count,
                    fields: fields.len(),
                });
            };
            records(&fields, per, domestic_trade)
        }
        "HDFSCNT0" => {
            let per = if fields.len() == count * HDFSCNT0_FIELDS {
                HDFSCNT0_FIELDS
            } else if fields.len() == count * (HDFSCNT0_FIELDS - 1) {
                HDFSCNT0_FIELDS - 1
            } else {
                return Err(ParseError::Count {
                    count,
                    fields: fields.len(),
                });
            };
            records(&fields, per, overseas_trade)
        }
        _ => (Vec::new(), 0),
    };
    Ok(Frame::Data { tr_id, obs, bad })
}

fn records(
    fields: &[&str],
    per: usize,
    f: fn(&[&str]) -> Result<Obs, ParseError>,
) -> (Vec<Obs>, usize) {
    let mut obs = Vec::with_capacity(fields.len() / per);
    let mut bad = 0;
    for r in fields.chunks_exact(per) {
        match f(r) {
            Ok(o) => obs.push(o),
            Err(_) => bad += 1,
        }
    }
    (obs, bad)
}

/// One H0STCNT0 record (46 or 44 fields).
pub fn domestic_trade(r: &[&str]) -> Result<Obs, ParseError> {
    let code = r[0].trim();
    if code.is_empty() || code.len() > 12 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ParseError::Bad("MKSC_SHRN_ISCD"));
    }
    let price = req(r[2], "STCK_PRPR")?;
    if price <= 0.0 {
        return Err(ParseError::Bad("STCK_PRPR"));
    }
    let sign = r[3];
    let change = signed_checked(num(r[4], "PRDY_VRSS")?, sign, "PRDY_VRSS")?;
    let rate = signed_checked(num(r[5], "PRDY_CTRT")?, sign, "PRDY_CTRT")?;
    let volume = num(r[12], "CNTG_VOL")?.unwrap_or(0.0);
    let day_volume = num(r[13], "ACML_VOL")?;
    if volume < 0.0 || day_volume.is_some_and(|v| v < 0.0) {
        return Err(ParseError::Bad("volume"));
    }
    let ts = kst_ms(r[33], r[1])?;
    Ok(Obs {
        key: code.to_owned(),
        price,
        prev_close: change.map(|c| price - c),
        change,
        change_rate: rate_fraction(rate),
        volume,
        day_volume,
        ts,
        seq: vol_seq(day_volume),
    })
}

/// One HDFSCNT0 record (26 fields with RSYM first, or 25 without).
pub fn overseas_trade(r: &[&str]) -> Result<Obs, ParseError> {
    // 26-field layout: RSYM (`DNASGOOG`) first; 25: SYMB first.
    let r = if r.len() == HDFSCNT0_FIELDS {
        &r[1..]
    } else {
        r
    };
    let symb = r[0].trim();
    if symb.is_empty() || symb.len() > 16 {
        return Err(ParseError::Bad("SYMB"));
    }
    let price = req(r[10], "LAST")?;
    if price <= 0.0 {
        return Err(ParseError::Bad("LAST"));
    }
    let sign = r[11];
    let change = unsigned_with(num(r[12], "DIFF")?.map(f64::abs), sign, "DIFF")?;
    let rate = num(r[13], "RATE")?;
    // The rate's own sign (when written) must agree with the code; unsigned → from the code.
    let rate = match (rate, sign_dir(sign)) {
        (Some(x), Some(d)) if r[13].trim().starts_with(['+', '-']) => {
            signed_checked(Some(x), sign, "RATE")?;
            Some(x.abs() * f64::from(d))
        }
        (Some(x), Some(d)) => Some(x.abs() * f64::from(d)),
        (x, _) => x,
    };
    let volume = num(r[18], "EVOL")?.unwrap_or(0.0);
    let day_volume = num(r[19], "TVOL")?;
    let ts = new_york_ms(r[3], r[4])?;
    Ok(Obs {
        key: symb.to_owned(),
        price,
        prev_close: change.map(|c| price - c),
        change,
        change_rate: rate_fraction(rate),
        volume,
        day_volume,
        ts,
        seq: vol_seq(day_volume),
    })
}

fn parse_control(t: &str) -> Result<Frame<'_>, ParseError> {
    let v: Value = serde_json::from_str(t).map_err(|e| ParseError::Json(e.to_string()))?;
    let header = v.get("header").ok_or(ParseError::Missing("header"))?;
    let tr_id = jstr(header, "tr_id");
    if tr_id == "PINGPONG" {
        return Ok(Frame::PingPong);
    }
    let body = v.get("body").ok_or(ParseError::Missing("body"))?;
    Ok(Frame::Control(Control {
        tr_id: tr_id.to_owned(),
        tr_key: jstr(header, "tr_key").to_owned(),
        rt_cd: jstr(body, "rt_cd").to_owned(),
        msg_cd: jstr(body, "msg_cd").to_owned(),
        msg1: jstr(body, "msg1").to_owned(),
    }))
}

/// The subscribe (`register` true) or unsubscribe message, as KIS documents it.
pub fn subscribe_message(approval_key: &str, tr_id: &str, tr_key: &str, register: bool) -> String {
    serde_json::json!({
        "header": {
            "approval_key": approval_key,
            "custtype": "P",
            "tr_type": if register { "1" } else { "2" },
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
    })
    .to_string()
}

// ---- REST -----------------------------------------------------------------------------------

fn output<'a>(body: &'a Value, key: &'static str) -> Result<&'a Value, ParseError> {
    match body.get(key) {
        Some(v) if v.is_object() => Ok(v),
        _ => Err(ParseError::Missing(key)),
    }
}

/// `inquire-price` (FHKST01010100) `output` → a quote snapshot (ts 0: the caller stamps it).
pub fn domestic_price(body: &Value) -> Result<Obs, ParseError> {
    let o = output(body, "output")?;
    let code = jstr(o, "stck_shrn_iscd");
    let price = jnum(o, "stck_prpr")?.ok_or(ParseError::Empty)?;
    if price <= 0.0 {
        return Err(ParseError::Bad("stck_prpr"));
    }
    let sign = jstr(o, "prdy_vrss_sign");
    let change = signed_checked(jnum(o, "prdy_vrss")?, sign, "prdy_vrss")?;
    let rate = signed_checked(jnum(o, "prdy_ctrt")?, sign, "prdy_ctrt")?;
    let prev_close = jnum(o, "stck_sdpr")?
        .filter(|p| *p > 0.0)
        .or(change.map(|c| price - c));
    let day_volume = jnum(o, "acml_vol")?;
    Ok(Obs {
        key: code.to_owned(),
        price,
        prev_close,
        change,
        change_rate: rate_fraction(rate),
        volume: 0.0,
        day_volume,
        ts: 0,
        seq: vol_seq(day_volume),
    })
}

/// `inquire-index-price` (FHPUP02100000) `output` → a quote snapshot. KIS reports the index
/// volume in thousands of shares; `day_volume` is in shares.
pub fn domestic_index(body: &Value, code: &str) -> Result<Obs, ParseError> {
    let o = output(body, "output")?;
    let price = jnum(o, "bstp_nmix_prpr")?.ok_or(ParseError::Empty)?;
    if price <= 0.0 {
        return Err(ParseError::Bad("bstp_nmix_prpr"));
    }
    let sign = jstr(o, "prdy_vrss_sign");
    let change = signed_checked(jnum(o, "bstp_nmix_prdy_vrss")?, sign, "bstp_nmix_prdy_vrss")?;
    let rate = signed_checked(jnum(o, "bstp_nmix_prdy_ctrt")?, sign, "bstp_nmix_prdy_ctrt")?;
    let day_volume = jnum(o, "acml_vol")?.map(|v| v * 1000.0);
    Ok(Obs {
        key: code.to_owned(),
        price,
        prev_close: change.map(|c| round2(price - c)),
        change,
        change_rate: rate_fraction(rate),
        volume: 0.0,
        day_volume,
        ts: 0,
        seq: vol_seq(day_volume),
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round_to(x: f64, decimals: u32) -> f64 {
    let p = 10f64.powi(decimals.min(10) as i32);
    (x * p).round() / p
}

/// Overseas `price` (HHDFS00000300) `output` → a quote snapshot. An all-empty answer (wrong
/// `EXCD` or unknown symbol) is [`ParseError::Empty`].
pub fn overseas_price(body: &Value, symbol: &str) -> Result<Obs, ParseError> {
    let o = output(body, "output")?;
    let Some(price) = jnum(o, "last")? else {
        return Err(ParseError::Empty);
    };
    if price <= 0.0 {
        return Err(ParseError::Bad("last"));
    }
    let zdiv = jnum(o, "zdiv")?.unwrap_or(4.0).clamp(0.0, 8.0) as u32;
    let sign = jstr(o, "sign");
    let rate_raw = jstr(o, "rate");
    let rate = num(rate_raw, "rate")?;
    if rate_raw.trim().starts_with(['+', '-']) {
        signed_checked(rate, sign, "rate")?;
    }
    let change = unsigned_with(jnum(o, "diff")?, sign, "diff")?.map(|c| round_to(c, zdiv));
    let rate = match (rate, sign_dir(sign)) {
        (Some(x), Some(d)) => Some(x.abs() * f64::from(d)),
        (x, _) => x,
    };
    let prev_close = jnum(o, "base")?
        .filter(|p| *p > 0.0)
        .or(change.map(|c| round_to(price - c, zdiv)));
    let day_volume = jnum(o, "tvol")?;
    Ok(Obs {
        key: symbol.to_owned(),
        price,
        prev_close,
        change,
        change_rate: rate_fraction(rate),
        volume: 0.0,
        day_volume,
        ts: 0,
        seq: vol_seq(day_volume),
    })
}

/// Overseas index `inquire-daily-chartprice` (FHKST03030100) `output1` → the index's current
/// state (the only current value KIS serves for `.DJI` and `COMP`).
pub fn overseas_index(body: &Value, code: &str) -> Result<Obs, ParseError> {
    let o = output(body, "output1")?;
    let Some(price) = jnum(o, "ovrs_nmix_prpr")? else {
        return Err(ParseError::Empty);
    };
    if price <= 0.0 {
        return Err(ParseError::Bad("ovrs_nmix_prpr"));
    }
    let sign = jstr(o, "prdy_vrss_sign");
    let change = signed_checked(jnum(o, "ovrs_nmix_prdy_vrss")?, sign, "ovrs_nmix_prdy_vrss")?;
    let rate = signed_checked(jnum(o, "prdy_ctrt")?, sign, "prdy_ctrt")?;
    let prev_close = jnum(o, "ovrs_nmix_prdy_clpr")?
        .filter(|p| *p > 0.0)
        .or(change.map(|c| round2(price - c)));
    let day_volume = jnum(o, "acml_vol")?;
    Ok(Obs {
        key: code.to_owned(),
        price,
        prev_close,
        change,
        change_rate: rate_fraction(rate),
        volume: 0.0,
        day_volume,
        ts: 0,
        seq: vol_seq(day_volume),
    })
}

/// One bar of a chart endpoint: start and end of its period (ms), OHLC and volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub start: i64,
    pub end: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl Bar {
    /// Four ticks that rebuild this bar's OHLCV in `history`: open at the start, high, low,
    /// close at the end; the whole volume on the close (so candle volume is the bar's).
    pub fn to_obs(&self, key: &str) -> Vec<Obs> {
        let span = (self.end - self.start).max(4);
        let at = [
            self.start,
            self.start + 1,
            self.start + 2,
            self.start + span - 1,
        ];
        let px = [self.open, self.high, self.low, self.close];
        (0..4)
            .map(|k| Obs {
                key: key.to_owned(),
                price: px[k],
                prev_close: None,
                change: None,
                change_rate: None,
                volume: if k == 3 { self.volume } else { 0.0 },
                day_volume: None,
                ts: at[k],
                seq: k as u64,
            })
            .collect()
    }

    fn checked(self, field: &'static str) -> Result<Bar, ParseError> {
        let ok = [self.open, self.high, self.low, self.close]
            .iter()
            .all(|p| p.is_finite() && *p > 0.0)
            && self.volume >= 0.0
            && self.end > self.start;
        if ok {
            Ok(self)
        } else {
            Err(ParseError::Bad(field))
        }
    }
}

fn rows(body: &Value) -> Result<&[Value], ParseError> {
    match body.get("output2") {
        Some(Value::Array(a)) => Ok(a),
        None | Some(Value::Null) => Ok(&[]),
        Some(_) => Err(ParseError::Bad("output2")),
    }
}

fn all_empty(row: &Value) -> bool {
    row.as_object()
        .is_some_and(|m| m.values().all(|v| v.as_str().is_some_and(str::is_empty)))
}

/// Parsed bars and how many rows were bad (logged and counted by the caller).
pub type Bars = (Vec<Bar>, usize);

/// Rows of a chart answer (newest first, as KIS sends them). Rows of empty strings (a range
/// without trading days) are skipped; bad rows are counted.
fn bars_of(
    body: &Value,
    f: impl Fn(&Value) -> Result<Bar, ParseError>,
) -> Result<Bars, ParseError> {
    let mut out = Vec::new();
    let mut bad = 0;
    for row in rows(body)? {
        if all_empty(row) {
            continue;
        }
        match f(row) {
            Ok(b) => out.push(b),
            Err(_) => bad += 1,
        }
    }
    Ok((out, bad))
}

/// KRX regular session of a date, KST: 09:00–15:30.
fn krx_day(date: &str) -> Result<(i64, i64), ParseError> {
    Ok((kst_ms(date, "090000")?, kst_ms(date, "153000")?))
}

/// US regular session of a date, New York: 09:30–16:00.
fn us_day(date: &str) -> Result<(i64, i64), ParseError> {
    Ok((new_york_ms(date, "093000")?, new_york_ms(date, "160000")?))
}

/// Domestic daily bars (`inquire-daily-itemchartprice`, FHKST03010100).
pub fn domestic_daily(body: &Value) -> Result<Bars, ParseError> {
    bars_of(body, |r| {
        let (start, end) = krx_day(jstr(r, "stck_bsop_date"))?;
        Bar {
            start,
            end,
            open: jreq(r, "stck_oprc")?,
            high: jreq(r, "stck_hgpr")?,
            low: jreq(r, "stck_lwpr")?,
            close: jreq(r, "stck_clpr")?,
            volume: jnum(r, "acml_vol")?.unwrap_or(0.0),
        }
        .checked("daily bar")
    })
}

/// Domestic index daily bars (`inquire-daily-indexchartprice`, FHKUP03500100); volume in
/// thousands of shares → shares.
pub fn domestic_index_daily(body: &Value) -> Result<Bars, ParseError> {
    bars_of(body, |r| {
        let (start, end) = krx_day(jstr(r, "stck_bsop_date"))?;
        Bar {
            start,
            end,
            open: jreq(r, "bstp_nmix_oprc")?,
            high: jreq(r, "bstp_nmix_hgpr")?,
            low: jreq(r, "bstp_nmix_lwpr")?,
            close: jreq(r, "bstp_nmix_prpr")?,
            volume: jnum(r, "acml_vol")?.unwrap_or(0.0) * 1000.0,
        }
        .checked("index daily bar")
    })
}

/// Today's minute bars (`inquire-time-itemchartprice`, FHKST03010200): `stck_cntg_hour` is the
/// minute's start, `cntg_vol` its volume.
pub fn domestic_minutes(body: &Value) -> Result<Bars, ParseError> {
    bars_of(body, |r| {
        let start = kst_ms(jstr(r, "stck_bsop_date"), jstr(r, "stck_cntg_hour"))?;
        Bar {
            start,
            end: start + 60_000,
            open: jreq(r, "stck_oprc")?,
            high: jreq(r, "stck_hgpr")?,
            low: jreq(r, "stck_lwpr")?,
            close: jreq(r, "stck_prpr")?,
            volume: jnum(r, "cntg_vol")?.unwrap_or(0.0),
        }
        .checked("minute bar")
    })
}

/// Overseas stock daily bars (`dailyprice`, HHDFS76240000); `xymd` is the New York date.
pub fn overseas_daily(body: &Value) -> Result<Bars, ParseError> {
    bars_of(body, |r| {
        let (start, end) = us_day(jstr(r, "xymd"))?;
        Bar {
            start,
            end,
            open: jreq(r, "open")?,
            high: jreq(r, "high")?,
            low: jreq(r, "low")?,
            close: jreq(r, "clos")?,
            volume: jnum(r, "tvol")?.unwrap_or(0.0),
        }
        .checked("overseas daily bar")
    })
}

/// Overseas index daily bars (`inquire-daily-chartprice`, FHKST03030100).
pub fn overseas_index_daily(body: &Value) -> Result<Bars, ParseError> {
    bars_of(body, |r| {
        let (start, end) = us_day(jstr(r, "stck_bsop_date"))?;
        Bar {
            start,
            end,
            open: jreq(r, "ovrs_nmix_oprc")?,
            high: jreq(r, "ovrs_nmix_hgpr")?,
            low: jreq(r, "ovrs_nmix_lwpr")?,
            close: jreq(r, "ovrs_nmix_prpr")?,
            volume: jnum(r, "acml_vol")?.unwrap_or(0.0),
        }
        .checked("overseas index daily bar")
    })
}

/// A tokenP answer: the token, its validity in seconds and the absolute expiry (KST).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenAnswer {
    pub access_token: String,
    pub expires_in: Option<i64>,
    pub expires_at_ms: Option<i64>,
}

pub fn token_answer(body: &Value) -> Result<TokenAnswer, ParseError> {
    let token = jstr(body, "access_token");
    if token.is_empty() {
        return Err(ParseError::Missing("access_token"));
    }
    let expires_in = match body.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(TokenAnswer {
        access_token: token.to_owned(),
        expires_in,
        expires_at_ms: kst_datetime_ms(jstr(body, "access_token_token_expired")),
    })
}

pub fn approval_answer(body: &Value) -> Result<String, ParseError> {
    let key = jstr(body, "approval_key");
    if key.is_empty() {
        return Err(ParseError::Missing("approval_key"));
    }
    Ok(key.to_owned())
}
