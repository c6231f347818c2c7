//! The Korea Eximbank FX source (`SISE_SOURCES=exim`): the day's 매매기준율 (`deal_bas_r`) of
//! every currency the bank publishes (AP01, `shared/apis/exim.md`) → `fx.spot.<CUR>KRW` ticks
//! for the currencies the registry lists (`fx.spot.USDKRW` by default); every row of the day is
//! parsed and kept.
//!
//! - Rates are comma strings (`"1,452.3"`, `"4,768"`): commas are stripped and the digits parsed
//!   as an exact decimal ([`Decimal`]); never a float from a string with commas.
//! - `JPY(100)` and `IDR(100)` are per 100 units: the tick is per 1 unit (988.4 → 9.884 KRW per
//!   yen), scaled in decimal, not in floating point.
//! - An empty answer (`[]`: weekends, holidays, before ~11:00 KST) is not an error: the source
//!   looks back day by day (up to [`EximSettings::lookback_days`]) and keeps the last business
//!   day's rates, published with that day's time (11:00 KST of that day) — never zero.
//! - The previous close of a day is the previous business day's rate (looked up once).
//! - Result codes 2 (data code), 3 (key) and 4 (daily limit) make the source `down` with the
//!   reason; a non-200, non-JSON or truncated answer is a transient failure, skipped, counted
//!   (`sise_source_parse_errors_total`, `sise_source_errors_total{kind}`) and retried with
//!   capped backoff and jitter.
//! - Calls: at start-up at most 2 × (lookback + 1) = 16, then one or two (today, and the held
//!   day while today's rates are not out) at each of 11:05, 11:30, 12:00 and 15:00 KST on
//!   weekdays (cron jobs of tokio-cron-scheduler, [`crate::schedule`]), plus retries; a hard budget of
//!   [`EximSettings::daily_budget`] = 100 calls per KST day (the bank allows 1,000) is never
//!   exceeded.
//! - The key travels in the query string, so no request URL is ever logged or put in an error
//!   (reqwest errors are stripped of their URL).

use std::time::Duration;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, TimeZone, Utc, Weekday};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sise_bus::{now_ms, InstrumentId, SourceName, SourceState, Tick, SCHEMA_VERSION};
use tokio::time::Instant;

use crate::calendar::Calendar;
use crate::poll::{self, Backoff, Failure};
use crate::schedule::{weekday_times, Schedule};
use crate::source::{Source, SourceContext, StatusBoard};
use crate::PipelineError;

/// The documented endpoint (new host `oapi`).
pub const DEFAULT_URL: &str = "https://oapi.koreaexim.go.kr/site/program/financial/exchangeJSON";

/// How the Eximbank source runs.
#[derive(Debug, Clone)]
pub struct EximSettings {
    /// Full URL up to `exchangeJSON` (`SISE_EXIM_URL`).
    pub url: String,
    /// `EXIM_AUTH_KEY`.
    pub key: Option<SecretString>,
    /// Poll times on weekdays, KST (hour, minute).
    pub slots_kst: Vec<(u32, u32)>,
    /// Days to look back for the last business day (long holidays).
    pub lookback_days: u32,
    /// Most calls per KST day (the bank's limit is 1,000).
    pub daily_budget: u32,
    /// Of every request.
    pub timeout: Duration,
    /// Retry after a transient failure: first delay and cap.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl EximSettings {
    pub fn new(url: &str, key: Option<SecretString>) -> Self {
        EximSettings {
            url: url.trim_end_matches('/').to_owned(),
            key: key.filter(|k| !k.expose_secret().trim().is_empty()),
            slots_kst: vec![(11, 5), (11, 30), (12, 0), (15, 0)],
            lookback_days: 7,
            daily_budget: 100,
            timeout: Duration::from_secs(10),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(30 * 60),
        }
    }
}

/// The Eximbank source.
pub struct Exim {
    settings: EximSettings,
}

impl Exim {
    pub fn new(settings: EximSettings) -> Self {
        Exim { settings }
    }
}

pub fn source_name() -> SourceName {
    SourceName::parse("exim").unwrap_or_else(|_| unreachable!("\"exim\" is a valid source name"))
}

impl Source for Exim {
    fn name(&self) -> SourceName {
        source_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(self.settings, ctx))
    }
}

/// An exact decimal: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u32,
}

impl Decimal {
    /// Parse `"1,452.3"`, `"4,768"`, `"0"`: commas stripped, digits with at most one `.`.
    pub fn parse(s: &str) -> Option<Decimal> {
        let t = s.trim();
        let mut mantissa: i128 = 0;
        let mut scale = 0u32;
        let mut digits = 0u32;
        let mut dot = false;
        for b in t.bytes() {
            match b {
                b'0'..=b'9' => {
                    mantissa = mantissa
                        .checked_mul(10)?
                        .checked_add(i128::from(b - b'0'))?;
                    digits += 1;
                    if dot {
                        scale += 1;
                    }
                }
                // A thousands separator: only between integer digits.
                b',' if !dot && digits > 0 => {}
                b'.' if !dot => dot = true,
                _ => return None,
            }
        }
        (digits > 0 && scale <= 18 && !t.ends_with(',')).then_some(Decimal { mantissa, scale })
    }

    /// Divided by 10^k, exactly.
    pub fn shifted(self, k: u32) -> Decimal {
        Decimal {
            mantissa: self.mantissa,
            scale: self.scale + k,
        }
    }

    /// `self - other`, exactly.
    pub fn minus(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let a = self
            .mantissa
            .checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other
            .mantissa
            .checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        Some(Decimal {
            mantissa: a.checked_sub(b)?,
            scale,
        })
    }

    /// The nearest f64 (through the decimal text, so `9.884` is the f64 nearest 9.884).
    pub fn to_f64(self) -> f64 {
        format!("{}e-{}", self.mantissa, self.scale)
            .parse()
            .unwrap_or(f64::NAN)
    }

    pub fn is_positive(self) -> bool {
        self.mantissa > 0
    }
}

/// One currency of a day.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    /// `USD`, `JPY` (without the `(100)`), `CNH`…
    pub currency: String,
    /// Units the bank quotes per (`100` for `JPY(100)`, `IDR(100)`).
    pub unit: u32,
    pub name_ko: Option<String>,
    /// 매매기준율 in KRW per `unit`.
    pub deal_bas_r: Decimal,
    pub ttb: Option<Decimal>,
    pub tts: Option<Decimal>,
}

impl Rate {
    /// KRW per one unit of the currency, exact.
    pub fn per_one(&self) -> Decimal {
        // unit is a power of ten (checked at parse).
        self.deal_bas_r.shifted(self.unit.ilog10())
    }
}

/// What an AP01 answer said.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The day's rates (rows that could not be parsed are left out and counted).
    Rates { rates: Vec<Rate>, skipped: u32 },
    /// `[]`: no rates for that day (yet).
    Empty,
    /// `result` 2, 3, 4 (or another code that is not 1).
    Code(i64),
}

#[derive(Deserialize)]
struct Row {
    result: Option<serde_json::Value>,
    cur_unit: Option<String>,
    cur_nm: Option<String>,
    ttb: Option<String>,
    tts: Option<String>,
    deal_bas_r: Option<String>,
}

fn result_code(v: &Option<serde_json::Value>) -> Option<i64> {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `"JPY(100)"` → `("JPY", 100)`; `"USD"` → `("USD", 1)`.
fn currency_unit(s: &str) -> Option<(String, u32)> {
    let (code, unit) = match s.split_once('(') {
        Some((code, rest)) => (code, rest.strip_suffix(')')?.trim().parse::<u32>().ok()?),
        None => (s, 1),
    };
    let code = code.trim();
    let ok = (3..=4).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase());
    let power_of_ten = unit >= 1 && 10u32.pow(unit.ilog10()) == unit;
    (ok && power_of_ten).then(|| (code.to_owned(), unit))
}

/// Parse an AP01 answer body.
pub fn parse_ap01(body: &[u8]) -> Result<Answer, Failure> {
    let rows: Vec<Row> = serde_json::from_slice(body)
        .map_err(|e| Failure::Parse(poll::shorten(&e.to_string(), 120)))?;
    if rows.is_empty() {
        return Ok(Answer::Empty);
    }
    if let Some(code) = rows
        .iter()
        .filter_map(|r| result_code(&r.result))
        .find(|c| *c != 1)
    {
        return Ok(Answer::Code(code));
    }
    let mut rates = Vec::with_capacity(rows.len());
    let mut skipped = 0;
    for row in rows {
        let parsed = (|| {
            if result_code(&row.result) != Some(1) {
                return None;
            }
            let (currency, unit) = currency_unit(row.cur_unit.as_deref()?)?;
            let deal_bas_r = Decimal::parse(row.deal_bas_r.as_deref()?)?;
            Some(Rate {
                currency,
                unit,
                name_ko: row.cur_nm.clone(),
                deal_bas_r,
                ttb: row.ttb.as_deref().and_then(Decimal::parse),
                tts: row.tts.as_deref().and_then(Decimal::parse),
            })
        })();
        match parsed {
            // The KRW row (`"1"`, ttb/tts `"0"`) is not an exchange rate.
            Some(r) if r.currency == "KRW" => {}
            // Never a zero rate.
            Some(r) if r.deal_bas_r.is_positive() => rates.push(r),
            _ => skipped += 1,
        }
    }
    if rates.is_empty() {
        return Err(Failure::Parse("no usable rate in the answer".into()));
    }
    Ok(Answer::Rates { rates, skipped })
}

fn kst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!("+09:00 is a valid offset"))
}

/// Today in Korea.
pub fn kst_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&kst()).date_naive()
}

/// The exchange time of a day's rates: 11:00 KST of that day (about when they are published;
/// rates seen earlier than that are as of when they were seen).
pub fn as_of_ms(date: NaiveDate) -> i64 {
    date.and_hms_opt(11, 0, 0)
        .and_then(|t| kst().from_local_datetime(&t).single())
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// The next poll time after `now`: the next slot (KST) on a bank business day (the cron
/// schedule's weekdays minus the market calendar's `fx` holidays; used for logs and tests).
pub fn next_slot(now: DateTime<Utc>, slots: &[(u32, u32)]) -> DateTime<Utc> {
    let today = kst_today(now);
    for d in 0..15u64 {
        let Some(date) = today.checked_add_days(Days::new(d)) else {
            break;
        };
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
            || !Calendar::embedded().is_trading_day("fx", date)
        {
            continue;
        }
        let mut times: Vec<DateTime<Utc>> = slots
            .iter()
            .filter_map(|&(h, m)| date.and_hms_opt(h, m, 0))
            .filter_map(|t| kst().from_local_datetime(&t).single())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > now)
            .collect();
        times.sort();
        if let Some(t) = times.first() {
            return *t;
        }
    }
    now + chrono::Duration::hours(24)
}

/// Calls per KST day, capped.
struct Budget {
    day: NaiveDate,
    used: u32,
    limit: u32,
}

impl Budget {
    fn take(&mut self, today: NaiveDate) -> bool {
        if self.day != today {
            self.day = today;
            self.used = 0;
        }
        if self.used >= self.limit {
            return false;
        }
        self.used += 1;
        true
    }
}

/// The rates of one business day.
#[derive(Debug, Clone)]
struct Day {
    date: NaiveDate,
    rates: Vec<Rate>,
    revision: u64,
}

impl Day {
    fn rate(&self, currency: &str) -> Option<&Rate> {
        self.rates.iter().find(|r| r.currency == currency)
    }
}

/// The currencies of a day the registry does not hold, as instruments the edge lists (so a user
/// can find 유로 or 엔화 and add it): `fx.spot.<CUR>KRW`, named by the bank, per one unit.
fn listings_of(day: &Day, ctx: &SourceContext) -> Vec<(InstrumentId, bytes::Bytes)> {
    day.rates
        .iter()
        .filter_map(|r| {
            let id = InstrumentId::parse(&format!("fx.spot.{}KRW", r.currency)).ok()?;
            if ctx.registry.get(&id).is_some() {
                return None;
            }
            let name_en = format!("{}/KRW", r.currency);
            let name_ko = r
                .name_ko
                .clone()
                .filter(|n| !n.trim().is_empty())
                .map(|n| format!("{n} ({})", r.currency))
                .unwrap_or_else(|| name_en.clone());
            let inst = crate::Instrument {
                class: id.class(),
                venue: id.venue().to_owned(),
                id,
                name_ko,
                name_en,
                currency: "KRW".into(),
                decimals: 2,
                market: "fx".into(),
                sim: None,
            };
            Some((inst.id.clone(), crate::catalog::listing_json(&inst)))
        })
        .collect()
}

/// The `fx.spot.<CUR>KRW` ticks of a day: every currency the bank quotes (the registry's
/// USD/KRW and the others, which the edge lists through [`listings_of`]).
fn ticks_of(day: &Day, prev: Option<&Day>) -> Vec<Tick> {
    // Never in the future (rates out before 11:00 KST are as of their fetch).
    let ts = as_of_ms(day.date).min(now_ms());
    let ymd = u64::try_from(
        day.date.year() * 10_000 + day.date.month() as i32 * 100 + day.date.day() as i32,
    )
    .unwrap_or(0);
    let mut out = Vec::new();
    for r in &day.rates {
        let Ok(id) = InstrumentId::parse(&format!("fx.spot.{}KRW", r.currency)) else {
            continue;
        };
        let price = r.per_one();
        let pc = prev
            .and_then(|p| p.rate(&r.currency))
            .map(Rate::per_one)
            .filter(|d| d.is_positive());
        let change = pc.and_then(|pc| price.minus(pc));
        let tick = Tick {
            v: SCHEMA_VERSION,
            instrument: id,
            price: price.to_f64(),
            prev_close: pc.map(Decimal::to_f64),
            change: change.map(Decimal::to_f64),
            change_rate: match (change, pc) {
                (Some(c), Some(pc)) => Some(c.to_f64() / pc.to_f64()),
                _ => None,
            },
            volume: 0.0,
            day_volume: None,
            ts,
            ingest_ts: now_ms(),
            source: source_name(),
            seq: ymd * 100 + day.revision,
            backfill: false,
            inputs: Vec::new(),
        };
        if tick.validate().is_ok() {
            out.push(tick);
        }
    }
    out
}

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn fetch(&self, key: &SecretString, date: NaiveDate) -> Result<Answer, Failure> {
        let searchdate = date.format("%Y%m%d").to_string();
        let resp = self
            .http
            .get(&self.url)
            .query(&[
                ("authkey", key.expose_secret()),
                ("searchdate", searchdate.as_str()),
                ("data", "AP01"),
            ])
            .send()
            .await
            .map_err(Failure::from_reqwest)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(Failure::from_reqwest)?;
        if status != 200 {
            return Err(Failure::Status {
                code: status,
                message: String::new(),
            });
        }
        parse_ap01(&body)
    }
}

/// What one refresh ended with.
enum Outcome {
    /// Rates held (`failure`: a transient failure on the way, e.g. today's answer was bad).
    Held {
        failure: Option<Failure>,
    },
    /// Nothing held yet, and the last call failed transiently.
    Nothing(Failure),
    /// Nothing in the whole look-back window.
    NothingPublished,
    Code(i64),
    Budget,
    Cancelled,
}

struct State {
    client: Client,
    key: SecretString,
    s: EximSettings,
    budget: Budget,
    held: Option<Day>,
    prev: Option<Day>,
    /// The held day a previous business day was last looked up for (once per held day).
    prev_tried: Option<NaiveDate>,
    status: StatusBoard,
}

impl State {
    async fn call(
        &mut self,
        ctx: &SourceContext,
        today: NaiveDate,
        date: NaiveDate,
    ) -> Option<Result<Answer, Failure>> {
        if !self.budget.take(today) {
            return Some(Err(Failure::Status {
                code: 0,
                message: "own daily budget".into(),
            }));
        }
        let out = poll::or_cancel(&ctx.cancel, self.client.fetch(&self.key, date)).await?;
        match &out {
            Err(f) => {
                ctx.metrics
                    .errors
                    .with_label_values(&["exim", f.kind()])
                    .inc();
                if matches!(f, Failure::Parse(_)) {
                    ctx.metrics.parse_errors.with_label_values(&["exim"]).inc();
                }
                tracing::warn!(source = "exim", searchdate = %date, error = %f, "Eximbank call failed");
            }
            Ok(Answer::Rates { skipped, .. }) if *skipped > 0 => {
                ctx.metrics
                    .parse_errors
                    .with_label_values(&["exim"])
                    .inc_by(u64::from(*skipped));
            }
            Ok(Answer::Code(c)) => {
                ctx.metrics
                    .errors
                    .with_label_values(&["exim", code_kind(*c)])
                    .inc();
            }
            Ok(_) => {}
        }
        Some(out)
    }

    /// The latest non-empty day from `from` back to `stop` (exclusive), or why not.
    async fn latest_from(
        &mut self,
        ctx: &SourceContext,
        today: NaiveDate,
        from: NaiveDate,
        stop: Option<NaiveDate>,
    ) -> Result<(Option<(NaiveDate, Vec<Rate>)>, Option<Failure>), Outcome> {
        let mut failure = None;
        for d in 0..=u64::from(self.s.lookback_days) {
            let Some(date) = from.checked_sub_days(Days::new(d)) else {
                break;
            };
            if stop.is_some_and(|s| date <= s) {
                break;
            }
            match self.call(ctx, today, date).await {
                None => return Err(Outcome::Cancelled),
                Some(Ok(Answer::Rates { rates, .. })) => return Ok((Some((date, rates)), failure)),
                Some(Ok(Answer::Empty)) => {}
                Some(Ok(Answer::Code(c))) => return Err(Outcome::Code(c)),
                Some(Err(Failure::Status { code: 0, .. })) => return Err(Outcome::Budget),
                Some(Err(f)) => failure = Some(f),
            }
        }
        Ok((None, failure))
    }

    async fn refresh(&mut self, ctx: &SourceContext, today: NaiveDate) -> Outcome {
        // Today, and back day by day to the day already held.
        let held_date = self.held.as_ref().map(|h| h.date);
        let stop = held_date.and_then(|d| d.checked_sub_days(Days::new(1)));
        let (found, failure) = match self.latest_from(ctx, today, today, stop).await {
            Ok(x) => x,
            Err(o) => return o,
        };
        let mut changed = false;
        if let Some((date, rates)) = found {
            match &mut self.held {
                Some(h) if h.date == date => {
                    if h.rates != rates {
                        h.rates = rates;
                        h.revision += 1;
                        changed = true;
                    }
                }
                Some(h) if h.date > date => {}
                _ => {
                    self.prev = self.held.take();
                    self.held = Some(Day {
                        date,
                        rates,
                        revision: 0,
                    });
                    changed = true;
                }
            }
        }
        let Some(held_date) = self.held.as_ref().map(|h| h.date) else {
            return match failure {
                Some(f) => Outcome::Nothing(f),
                None => Outcome::NothingPublished,
            };
        };
        // The previous business day, for the previous close (once).
        if self.prev.as_ref().is_none_or(|p| p.date >= held_date)
            && self.prev_tried != Some(held_date)
        {
            self.prev_tried = Some(held_date);
            if let Some(from) = held_date.checked_sub_days(Days::new(1)) {
                match self.latest_from(ctx, today, from, None).await {
                    Ok((Some((date, rates)), _)) => {
                        self.prev = Some(Day {
                            date,
                            rates,
                            revision: 0,
                        });
                        changed = true;
                    }
                    Ok((None, _)) => {}
                    Err(Outcome::Cancelled) => return Outcome::Cancelled,
                    // A code or the budget: the held day is still good; say so next round.
                    Err(_) => {}
                }
            }
        }
        if changed || self.status.is_unset() {
            if let Some(h) = &self.held {
                if let Err(e) = ctx.bus.put_listed_all(&listings_of(h, ctx)).await {
                    tracing::warn!(source = "exim", error = %e, "could not list the day's currencies");
                }
                let ticks = ticks_of(h, self.prev.as_ref());
                ctx.publish_ticks("exim", &ticks).await;
            }
        }
        Outcome::Held { failure }
    }

    async fn set(&mut self, ctx: &SourceContext, state: SourceState, detail: String) {
        self.status.set(ctx, state, detail).await;
    }
}

fn code_kind(c: i64) -> &'static str {
    match c {
        2 => "result_2",
        3 => "result_3",
        4 => "result_4",
        _ => "result_other",
    }
}

/// The status text of a result code.
pub fn code_reason(c: i64) -> String {
    match c {
        2 => "Eximbank result 2: DATA code error (the data code was rejected)".into(),
        3 => "Eximbank result 3: authentication key error (check EXIM_AUTH_KEY)".into(),
        4 => "Eximbank result 4: daily call limit reached; next try on the next KST day".into(),
        c => format!("Eximbank result {c}: unknown result code"),
    }
}

async fn run(s: EximSettings, ctx: SourceContext) -> Result<(), PipelineError> {
    let Some(key) = s.key.clone() else {
        ctx.status(
            &source_name(),
            SourceState::Down,
            "EXIM_AUTH_KEY is not set: no Eximbank rates",
        )
        .await;
        tracing::warn!(
            source = "exim",
            "EXIM_AUTH_KEY is not set; the exim source is idle"
        );
        ctx.cancel.cancelled().await;
        return Ok(());
    };
    let http = poll::client(s.timeout).map_err(|message| PipelineError::Config {
        source_name: "exim".into(),
        message,
    })?;
    let mut st = State {
        client: Client {
            http,
            url: s.url.clone(),
        },
        key,
        budget: Budget {
            day: kst_today(Utc::now()),
            used: 0,
            limit: s.daily_budget,
        },
        s,
        held: None,
        prev: None,
        prev_tried: None,
        status: StatusBoard::new(source_name()),
    };
    let mut backoff = Backoff::new(st.s.retry_min, st.s.retry_max);
    let mut schedule = match Schedule::cron(&weekday_times(&st.s.slots_kst), kst()).await {
        Ok(s) => s,
        Err(message) => {
            st.set(&ctx, SourceState::Down, message.clone()).await;
            return Err(PipelineError::Config {
                source_name: "exim".into(),
                message,
            });
        }
    };
    tracing::info!(source = "exim", slots = ?st.s.slots_kst, budget = st.s.daily_budget, "Eximbank source starting");
    loop {
        let now = Utc::now();
        let today = kst_today(now);
        let outcome = st.refresh(&ctx, today).await;
        // A retry before the next scheduled poll, after a transient failure.
        let mut retry: Option<Duration> = None;
        match outcome {
            Outcome::Cancelled => break,
            Outcome::Held { failure } => {
                let date = st.held.as_ref().map_or(today, |h| h.date);
                let detail = match &failure {
                    Some(f) => {
                        retry = Some(backoff.next_delay());
                        format!("Eximbank answer failed ({f}); keeping the rates of {date}")
                    }
                    None if date == today => {
                        backoff.reset();
                        format!("rates of {date}")
                    }
                    None => {
                        backoff.reset();
                        format!("rates of {date} (the last business day; none published for {today} yet)")
                    }
                };
                let state = if failure.is_some() {
                    SourceState::Degraded
                } else {
                    SourceState::Up
                };
                st.set(&ctx, state, detail).await;
            }
            Outcome::Nothing(f) => {
                retry = Some(backoff.next_delay());
                st.set(
                    &ctx,
                    SourceState::Down,
                    format!("Eximbank answer failed: {f}; no rates yet"),
                )
                .await;
            }
            Outcome::NothingPublished => {
                let days = st.s.lookback_days;
                st.set(
                    &ctx,
                    SourceState::Degraded,
                    format!("no Eximbank rates published in the last {days} days"),
                )
                .await;
            }
            Outcome::Code(c) => {
                let mut detail = code_reason(c);
                if let Some(h) = &st.held {
                    detail = format!("{detail}; keeping the rates of {}", h.date);
                }
                st.set(&ctx, SourceState::Down, detail).await;
            }
            Outcome::Budget => {
                let limit = st.s.daily_budget;
                st.set(
                    &ctx,
                    SourceState::Degraded,
                    format!("own budget of {limit} calls for today (KST) used; waiting for the next poll time"),
                )
                .await;
            }
        }
        tracing::debug!(source = "exim", next_poll = %next_slot(Utc::now(), &st.s.slots_kst), retry_in = ?retry, "waiting");
        let retry_at = retry.map(|d| Instant::now() + d);
        // A scheduled fire on a bank holiday (the market calendar's `fx` days) polls nothing:
        // Eximbank publishes no rates then, and the held rates stay the last business day's.
        let cancelled = loop {
            tokio::select! {
                _ = ctx.cancel.cancelled() => break true,
                _ = schedule.fired() => {
                    if Calendar::embedded().is_trading_day("fx", kst_today(Utc::now())) {
                        break false;
                    }
                    tracing::debug!(source = "exim", "bank holiday (market calendar): no poll");
                }
                _ = async {
                    match retry_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => break false,
            }
        };
        if cancelled {
            break;
        }
    }
    schedule.stop().await;
    st.set(&ctx, SourceState::Down, "stopped".into()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/exim/",
                $name
            ))
            .as_slice()
        };
    }

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn comma_strings_parse_exactly() {
        assert_eq!(
            d("1,452.3"),
            Decimal {
                mantissa: 14523,
                scale: 1
            }
        );
        assert_eq!(d("4,768").to_f64(), 4768.0);
        assert_eq!(d("1,437.77").to_f64(), 1437.77);
        assert_eq!(d("0").mantissa, 0);
        assert_eq!(d("988.4").shifted(2).to_f64(), 9.884);
        for bad in [
            "", ",", "1,", ",1", "1.2.3", "1e3", "-1", "1 000", "abc", "1.,2",
        ] {
            assert!(Decimal::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(d("1,452.3").minus(d("1,448.9")).unwrap().to_f64(), 3.4);
    }

    #[test]
    fn a_business_day() {
        let Answer::Rates { rates, skipped } =
            parse_ap01(fixture!("ap01_20260312_ok.json")).unwrap()
        else {
            panic!("rates expected")
        };
        assert_eq!(skipped, 0);
        // 15 rows minus KRW.
        assert_eq!(rates.len(), 14);
        let get = |c: &str| rates.iter().find(|r| r.currency == c).unwrap();
        assert_eq!(get("USD").per_one().to_f64(), 1452.3);
        assert_eq!(get("USD").ttb.unwrap().to_f64(), 1437.77);
        assert_eq!(get("JPY").unit, 100);
        assert_eq!(get("JPY").per_one().to_f64(), 9.884);
        assert_eq!(get("IDR").per_one().to_f64(), 0.0877);
        assert_eq!(get("KWD").tts.unwrap().to_f64(), 4768.0);
        assert_eq!(get("BND").deal_bas_r, get("SGD").deal_bas_r);
        assert_eq!(get("CNH").name_ko.as_deref(), Some("위안화"));
        assert!(rates.iter().all(|r| r.currency != "KRW"));
    }

    #[test]
    fn empty_codes_and_garbage() {
        assert_eq!(
            parse_ap01(fixture!("ap01_weekend_empty.json")).unwrap(),
            Answer::Empty
        );
        assert_eq!(
            parse_ap01(fixture!("ap01_result2_data_code_error.json")).unwrap(),
            Answer::Code(2)
        );
        assert_eq!(
            parse_ap01(fixture!("ap01_result3_auth_error.json")).unwrap(),
            Answer::Code(3)
        );
        assert_eq!(
            parse_ap01(fixture!("ap01_result4_daily_limit.json")).unwrap(),
            Answer::Code(4)
        );
        assert!(matches!(
            parse_ap01(fixture!("ap01_malformed_truncated.txt")),
            Err(Failure::Parse(_))
        ));
        assert!(parse_ap01(b"<html>maintenance</html>").is_err());
        // One bad row is skipped and counted, the rest kept.
        let body = br#"[{"result":1,"cur_unit":"USD","deal_bas_r":"1,452.3"},
                        {"result":1,"cur_unit":"EUR","deal_bas_r":"n/a"},
                        {"result":1,"cur_unit":"GBP","deal_bas_r":"0"}]"#;
        let Answer::Rates { rates, skipped } = parse_ap01(body).unwrap() else {
            panic!()
        };
        assert_eq!((rates.len(), skipped), (1, 2));
    }

    #[test]
    fn schedule_and_as_of() {
        // Thursday 2026-03-12 10:00 KST → 11:05 KST the same day.
        let now = Utc.with_ymd_and_hms(2026, 3, 12, 1, 0, 0).unwrap();
        let slots = [(11, 5), (11, 30), (12, 0), (15, 0)];
        assert_eq!(
            next_slot(now, &slots),
            Utc.with_ymd_and_hms(2026, 3, 12, 2, 5, 0).unwrap()
        );
        // Friday 16:00 KST → Monday 11:05 KST.
        let fri = Utc.with_ymd_and_hms(2026, 3, 13, 7, 0, 0).unwrap();
        assert_eq!(
            next_slot(fri, &slots),
            Utc.with_ymd_and_hms(2026, 3, 16, 2, 5, 0).unwrap()
        );
        // Wednesday 2026-09-23 16:00 KST → Monday 09-28 11:05 KST (추석 holidays 24th, 25th).
        let chuseok = Utc.with_ymd_and_hms(2026, 9, 23, 7, 0, 0).unwrap();
        assert_eq!(
            next_slot(chuseok, &slots),
            Utc.with_ymd_and_hms(2026, 9, 28, 2, 5, 0).unwrap()
        );
        let day = NaiveDate::from_ymd_opt(2026, 3, 12).unwrap();
        assert_eq!(as_of_ms(day), 1_773_280_800_000);
        // 2026-03-12 00:30 KST is still the 11th in UTC, the 12th in Korea.
        let early = Utc.with_ymd_and_hms(2026, 3, 11, 15, 30, 0).unwrap();
        assert_eq!(kst_today(early), day);
    }

    #[test]
    fn budget_resets_each_day() {
        let d1 = NaiveDate::from_ymd_opt(2026, 3, 12).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2026, 3, 13).unwrap();
        let mut b = Budget {
            day: d1,
            used: 0,
            limit: 2,
        };
        assert!(b.take(d1) && b.take(d1) && !b.take(d1));
        assert!(b.take(d2));
    }
}
