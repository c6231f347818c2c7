//! The market calendar: sessions, holidays and special days of each market (`krx`, `us`,
//! `crypto`, `metal`, `fx`), read from the ONE data file the web reads too
//! (`web/src/lib/market-calendar.json`, embedded with `include_str!`).
//!
//! Every decision is made in the market's own time zone (chrono-tz, so New York's daylight saving
//! needs no table) and answered in UTC: [`Calendar::phase`] (pre / open / post / closed),
//! [`Calendar::is_trading_day`], [`Calendar::next_change`], [`Calendar::last_close`], and for pollers
//! [`Calendar::should_poll`] (while a session runs, plus one final snapshot after it ends).
//!
//! A session belongs to the local date it starts on; one whose end is not after its start runs
//! past midnight (spot metals: Sunday 18:00 to Monday 17:00 New York). A holiday closes every
//! session that starts on it; a special day replaces that day's sessions (the 수능 day's 10:00
//! open, the NYSE's 13:00 early closes). An unknown market is closed, never a panic.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::Deserialize;

/// The calendar data file, shared with the web (`web/src/lib/market-clock.ts` imports it).
pub const CALENDAR_JSON: &str = include_str!("../../web/src/lib/market-calendar.json");

/// How far [`Calendar::next_change`] and [`Calendar::last_close`] look (the longest Korean
/// holiday run is well under this).
const SEARCH_DAYS: i64 = 21;

/// The phase of a market at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Extended hours before the regular session (KRX: NXT pre-market; US: pre-market).
    Pre,
    /// The regular session.
    Open,
    /// Extended hours after the regular session (KRX: NXT after-market; US: after-hours).
    Post,
    /// No session: night, weekend, holiday, or an unknown market.
    Closed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pre => "pre",
            Phase::Open => "open",
            Phase::Post => "post",
            Phase::Closed => "closed",
        }
    }

    /// Pre, open or post: prices can move.
    pub fn is_live(self) -> bool {
        !matches!(self, Phase::Closed)
    }

    /// When two sessions of a day overlap at an instant, the regular one wins.
    fn rank(self) -> u8 {
        match self {
            Phase::Open => 3,
            Phase::Pre => 2,
            Phase::Post => 1,
            Phase::Closed => 0,
        }
    }
}

/// Why a calendar file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("market calendar: invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("market calendar: unsupported version {0} (expected 2)")]
    Version(u32),
    #[error("market calendar: market {market}: {what}")]
    Market { market: String, what: String },
}

// ---- the file's shape -------------------------------------------------------------------------

#[derive(Deserialize)]
struct FileDoc {
    version: u32,
    markets: BTreeMap<String, FileMarket>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileMarket {
    #[serde(default)]
    name: String,
    time_zone: String,
    #[serde(default)]
    always_open: bool,
    #[serde(default)]
    weekdays: Vec<u32>,
    #[serde(default)]
    sessions: FileSessions,
    #[serde(default)]
    holidays_through: Option<String>,
    #[serde(default)]
    holidays: BTreeMap<String, String>,
    #[serde(default)]
    special: BTreeMap<String, FileSpecial>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSessions {
    pre: Option<[String; 2]>,
    open: Option<[String; 2]>,
    post: Option<[String; 2]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpecial {
    #[serde(default)]
    name: String,
    sessions: FileSessions,
}

// ---- the parsed calendar ----------------------------------------------------------------------

/// One session of a day: its phase and local `[from, to)`; `to <= from` runs past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Session {
    phase: Phase,
    from: NaiveTime,
    to: NaiveTime,
}

#[derive(Debug, Clone)]
struct Special {
    name: String,
    sessions: Vec<Session>,
}

/// One market's rules.
#[derive(Debug, Clone)]
pub struct MarketRules {
    name: String,
    tz: Tz,
    always_open: bool,
    /// `weekdays[d]`: sessions start on ISO weekday `d + 1`.
    weekdays: [bool; 7],
    sessions: Vec<Session>,
    holidays_through: Option<NaiveDate>,
    holidays: HashMap<NaiveDate, String>,
    special: HashMap<NaiveDate, Special>,
}

impl MarketRules {
    /// The market's display name from the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The market's own time zone.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Whether the market never closes (crypto).
    pub fn always_open(&self) -> bool {
        self.always_open
    }

    /// The last local date whose holidays the file knows; later dates follow the weekday rules.
    pub fn holidays_through(&self) -> Option<NaiveDate> {
        self.holidays_through
    }

    /// The sessions that start on local `date` (none on a weekend or holiday).
    fn sessions_on(&self, date: NaiveDate) -> &[Session] {
        if self.always_open || self.holidays.contains_key(&date) {
            return &[];
        }
        if let Some(sp) = self.special.get(&date) {
            return &sp.sessions;
        }
        if !self.weekdays[date.weekday().num_days_from_monday() as usize] {
            return &[];
        }
        &self.sessions
    }

    /// The UTC intervals of the sessions that start on local `date`.
    fn intervals_on(&self, date: NaiveDate) -> impl Iterator<Item = Interval> + '_ {
        self.sessions_on(date).iter().filter_map(move |s| {
            let end_date = if s.to <= s.from {
                date.succ_opt()?
            } else {
                date
            };
            let start = local_to_utc(self.tz, date.and_time(s.from))?;
            let end = local_to_utc(self.tz, end_date.and_time(s.to))?;
            (end > start).then_some(Interval {
                phase: s.phase,
                start,
                end,
            })
        })
    }

    /// Every session interval that starts on a local date in `[from, to]`.
    fn intervals_between(&self, from: NaiveDate, to: NaiveDate) -> Vec<Interval> {
        let mut out = Vec::new();
        let mut d = from;
        while d <= to {
            out.extend(self.intervals_on(d));
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        out
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    fn phase(&self, at: DateTime<Utc>) -> Phase {
        if self.always_open {
            return Phase::Open;
        }
        let today = self.local_date(at);
        // A session that started yesterday may still run (overnight sessions).
        let from = today.pred_opt().unwrap_or(today);
        self.intervals_between(from, today)
            .into_iter()
            .filter(|i| i.start <= at && at < i.end)
            .map(|i| i.phase)
            .max_by_key(|p| p.rank())
            .unwrap_or(Phase::Closed)
    }
}

#[derive(Debug, Clone, Copy)]
struct Interval {
    phase: Phase,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// A local wall-clock time as UTC; in a DST gap the first valid instant after it, in an overlap
/// the earlier one.
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
        LocalResult::None => {
            // Skip forward through the gap (at most a few hours anywhere).
            (1..=4 * 60).find_map(|m| {
                tz.from_local_datetime(&(local + Duration::minutes(m)))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            })
        }
    }
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn parse_sessions(
    f: &FileSessions,
    bad: &dyn Fn(String) -> CalendarError,
) -> Result<Vec<Session>, CalendarError> {
    let mut out = Vec::new();
    for (phase, range) in [
        (Phase::Pre, &f.pre),
        (Phase::Open, &f.open),
        (Phase::Post, &f.post),
    ] {
        let Some([from, to]) = range else { continue };
        let (Some(from_t), Some(to_t)) = (parse_time(from), parse_time(to)) else {
            return Err(bad(format!(
                "{} session [{from:?}, {to:?}] is not HH:MM",
                phase.as_str()
            )));
        };
        if from_t == to_t {
            return Err(bad(format!("{} session is empty ({from})", phase.as_str())));
        }
        out.push(Session {
            phase,
            from: from_t,
            to: to_t,
        });
    }
    Ok(out)
}

fn parse_market(key: &str, m: FileMarket) -> Result<MarketRules, CalendarError> {
    let bad = |what: String| CalendarError::Market {
        market: key.to_owned(),
        what,
    };
    let tz: Tz = m
        .time_zone
        .parse()
        .map_err(|_| bad(format!("unknown time zone {:?}", m.time_zone)))?;
    let mut weekdays = [false; 7];
    for d in &m.weekdays {
        if !(1..=7).contains(d) {
            return Err(bad(format!("weekday {d} is not 1..7")));
        }
        weekdays[(*d - 1) as usize] = true;
    }
    let sessions = parse_sessions(&m.sessions, &bad)?;
    if !m.always_open {
        if sessions.iter().all(|s| s.phase != Phase::Open) {
            return Err(bad("no regular (open) session".into()));
        }
        if !weekdays.iter().any(|d| *d) {
            return Err(bad("no weekdays".into()));
        }
    }
    let holidays_through = match &m.holidays_through {
        Some(s) => Some(
            parse_date(s).ok_or_else(|| bad(format!("holidaysThrough {s:?} is not YYYY-MM-DD")))?,
        ),
        None => None,
    };
    let mut holidays = HashMap::new();
    for (date, name) in m.holidays {
        let d =
            parse_date(&date).ok_or_else(|| bad(format!("holiday {date:?} is not YYYY-MM-DD")))?;
        holidays.insert(d, name);
    }
    let mut special = HashMap::new();
    for (date, sp) in m.special {
        let d = parse_date(&date)
            .ok_or_else(|| bad(format!("special day {date:?} is not YYYY-MM-DD")))?;
        if holidays.contains_key(&d) {
            return Err(bad(format!("{date} is both a holiday and a special day")));
        }
        let sessions = parse_sessions(&sp.sessions, &bad)?;
        if sessions.is_empty() {
            return Err(bad(format!(
                "special day {date} has no sessions (make it a holiday)"
            )));
        }
        special.insert(
            d,
            Special {
                name: sp.name,
                sessions,
            },
        );
    }
    Ok(MarketRules {
        name: m.name,
        tz,
        always_open: m.always_open,
        weekdays,
        sessions,
        holidays_through,
        holidays,
        special,
    })
}

/// All markets' rules.
#[derive(Debug, Clone)]
pub struct Calendar {
    markets: HashMap<String, MarketRules>,
}

impl Calendar {
    /// Parse and validate a calendar file (version 2).
    pub fn parse(json: &str) -> Result<Calendar, CalendarError> {
        let doc: FileDoc = serde_json::from_str(json)?;
        if doc.version != 2 {
            return Err(CalendarError::Version(doc.version));
        }
        let mut markets = HashMap::new();
        for (key, m) in doc.markets {
            let rules = parse_market(&key, m)?;
            markets.insert(key, rules);
        }
        Ok(Calendar { markets })
    }

    /// The repository's calendar, parsed once. The file is checked by this module's tests; were it
    /// ever broken in a build, every market reads as closed (logged), never a panic.
    pub fn embedded() -> &'static Calendar {
        static CAL: OnceLock<Calendar> = OnceLock::new();
        CAL.get_or_init(|| {
            Calendar::parse(CALENDAR_JSON).unwrap_or_else(|e| {
                tracing::error!(error = %e, "the embedded market calendar is invalid; every market reads as closed");
                Calendar {
                    markets: HashMap::new(),
                }
            })
        })
    }

    /// One market's rules, if the calendar knows it.
    pub fn market(&self, market: &str) -> Option<&MarketRules> {
        self.markets.get(market)
    }

    /// The markets the calendar knows.
    pub fn markets(&self) -> impl Iterator<Item = &str> {
        self.markets.keys().map(String::as_str)
    }

    /// The phase of `market` at `at`.
    pub fn phase(&self, market: &str, at: DateTime<Utc>) -> Phase {
        self.market(market).map_or(Phase::Closed, |m| m.phase(at))
    }

    /// The phase at a Unix time in milliseconds.
    pub fn phase_ms(&self, market: &str, at_ms: i64) -> Phase {
        match Utc.timestamp_millis_opt(at_ms).single() {
            Some(at) => self.phase(market, at),
            None => Phase::Closed,
        }
    }

    /// Whether a regular session runs on `date` (a date in the market's own time zone).
    pub fn is_trading_day(&self, market: &str, date: NaiveDate) -> bool {
        match self.market(market) {
            Some(m) if m.always_open => true,
            Some(m) => m.sessions_on(date).iter().any(|s| s.phase == Phase::Open),
            None => false,
        }
    }

    /// Why `date` has no session, if the file says (a holiday's name), or a special day's name.
    pub fn day_note(&self, market: &str, date: NaiveDate) -> Option<&str> {
        let m = self.market(market)?;
        m.holidays
            .get(&date)
            .or_else(|| m.special.get(&date).map(|s| &s.name))
            .map(String::as_str)
    }

    /// The next instant after `at` at which the phase changes (None: always open, unknown, or no
    /// session in the next three weeks).
    pub fn next_change(&self, market: &str, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let m = self.market(market)?;
        if m.always_open {
            return None;
        }
        let now = m.phase(at);
        let today = m.local_date(at);
        let from = today.pred_opt()?;
        let to = today + Duration::days(SEARCH_DAYS);
        let mut edges: Vec<DateTime<Utc>> = m
            .intervals_between(from, to)
            .into_iter()
            .flat_map(|i| [i.start, i.end])
            .filter(|t| *t > at)
            .collect();
        edges.sort_unstable();
        edges.dedup();
        edges.into_iter().find(|t| m.phase(*t) != now)
    }

    /// The most recent end of a regular session at or before `at` (None: always open, unknown).
    pub fn last_close(&self, market: &str, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.last_end(market, at, |p| p == Phase::Open)
    }

    /// The most recent end of any session (pre, open or post) at or before `at`.
    pub fn last_session_end(&self, market: &str, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.last_end(market, at, |p| p != Phase::Closed)
    }

    /// The start of the most recent trading day's first session (pre-market if any) at or before
    /// `at`: a price older than this missed that whole day.
    pub fn last_session_start(&self, market: &str, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let m = self.market(market)?;
        if m.always_open {
            return None;
        }
        let today = m.local_date(at);
        (0..=SEARCH_DAYS).find_map(|back| {
            let d = today - Duration::days(back);
            m.intervals_on(d)
                .map(|i| i.start)
                .filter(|s| *s <= at)
                .min()
        })
    }

    fn last_end(
        &self,
        market: &str,
        at: DateTime<Utc>,
        want: impl Fn(Phase) -> bool,
    ) -> Option<DateTime<Utc>> {
        let m = self.market(market)?;
        if m.always_open {
            return None;
        }
        let today = m.local_date(at);
        let from = today - Duration::days(SEARCH_DAYS);
        m.intervals_between(from, today)
            .into_iter()
            .filter(|i| want(i.phase) && i.end <= at)
            .map(|i| i.end)
            .max()
    }

    /// Whether a poller of `market` should poll at `at`, given its last successful poll: yes while
    /// any session runs (pre, open, post: prices move), and once more after the last session has
    /// ended (the final close snapshot), then not until the next session. Always-open markets
    /// always; unknown markets never.
    pub fn should_poll(
        &self,
        market: &str,
        at: DateTime<Utc>,
        last_poll: Option<DateTime<Utc>>,
    ) -> bool {
        self.should_poll_if(market, at, last_poll, Phase::is_live)
    }

    /// [`Calendar::should_poll`] for the regular session only: while open, and once after the
    /// regular close.
    pub fn should_poll_regular(
        &self,
        market: &str,
        at: DateTime<Utc>,
        last_poll: Option<DateTime<Utc>>,
    ) -> bool {
        self.should_poll_if(market, at, last_poll, |p| p == Phase::Open)
    }

    fn should_poll_if(
        &self,
        market: &str,
        at: DateTime<Utc>,
        last_poll: Option<DateTime<Utc>>,
        live: impl Fn(Phase) -> bool + Copy,
    ) -> bool {
        let Some(m) = self.market(market) else {
            return false;
        };
        if m.always_open || live(m.phase(at)) {
            return true;
        }
        match (self.last_end(market, at, live), last_poll) {
            // The final snapshot: nothing polled since the session ended.
            (Some(end), Some(polled)) => polled < end,
            // Never polled: take one snapshot of the last close.
            (_, None) => true,
            (None, Some(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> &'static Calendar {
        Calendar::embedded()
    }

    /// An instant given as a UTC wall time.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// An instant given as a KST wall time.
    fn kst(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        utc(y, mo, d, h, mi) - Duration::hours(9)
    }

    fn date(y: i32, mo: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap()
    }

    #[test]
    fn the_repository_file_parses_and_knows_every_market() {
        let c = Calendar::parse(CALENDAR_JSON).expect("web/src/lib/market-calendar.json is valid");
        let mut names: Vec<&str> = c.markets().collect();
        names.sort_unstable();
        assert_eq!(names, ["crypto", "fx", "krx", "metal", "us"]);
        // The registry's markets all have a calendar.
        let reg = crate::Registry::builtin().expect("registry");
        for inst in reg.instruments() {
            assert!(
                c.market(&inst.market).is_some(),
                "no calendar for {}",
                inst.market
            );
        }
    }

    #[test]
    fn listed_days_are_session_weekdays_within_the_known_range() {
        // A typo in a date usually lands on a weekend or past holidaysThrough: catch it.
        for key in ["krx", "us", "fx"] {
            let m = cal().market(key).unwrap();
            let through = m.holidays_through().expect("holidaysThrough");
            for d in m.holidays.keys().chain(m.special.keys()) {
                let wd = d.weekday().num_days_from_monday() as usize;
                assert!(m.weekdays[wd], "{key}: {d} is not a session weekday");
                assert!(
                    *d <= through,
                    "{key}: {d} is after holidaysThrough {through}"
                );
            }
        }
        // Bank holidays are KRX closures, except the KRX-only year-end close.
        let (krx, fx) = (cal().market("krx").unwrap(), cal().market("fx").unwrap());
        for d in fx.holidays.keys() {
            assert!(
                krx.holidays.contains_key(d),
                "fx holiday {d} is not a KRX holiday"
            );
        }
        for d in krx.holidays.keys() {
            assert!(
                fx.holidays.contains_key(d) || (d.month(), d.day()) == (12, 31),
                "KRX holiday {d} missing from fx"
            );
        }
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(Calendar::parse("{").is_err());
        assert!(Calendar::parse(r#"{"version":1,"markets":{}}"#).is_err());
        let bad_tz = r#"{"version":2,"markets":{"x":{"timeZone":"Mars/Base","weekdays":[1],"sessions":{"open":["09:00","10:00"]}}}}"#;
        assert!(Calendar::parse(bad_tz).is_err());
        let bad_time = r#"{"version":2,"markets":{"x":{"timeZone":"UTC","weekdays":[1],"sessions":{"open":["9am","10:00"]}}}}"#;
        assert!(Calendar::parse(bad_time).is_err());
        let bad_date = r#"{"version":2,"markets":{"x":{"timeZone":"UTC","weekdays":[1],"sessions":{"open":["09:00","10:00"]},"holidays":{"2026-13-01":"x"}}}}"#;
        assert!(Calendar::parse(bad_date).is_err());
        let no_open = r#"{"version":2,"markets":{"x":{"timeZone":"UTC","weekdays":[1],"sessions":{"pre":["09:00","10:00"]}}}}"#;
        assert!(Calendar::parse(no_open).is_err());
        let bad_day = r#"{"version":2,"markets":{"x":{"timeZone":"UTC","weekdays":[8],"sessions":{"open":["09:00","10:00"]}}}}"#;
        assert!(Calendar::parse(bad_day).is_err());
    }

    #[test]
    fn unknown_market_is_closed_never_a_panic() {
        let at = utc(2026, 11, 24, 1, 0);
        assert_eq!(cal().phase("mars", at), Phase::Closed);
        assert!(!cal().is_trading_day("mars", date(2026, 11, 24)));
        assert_eq!(cal().next_change("mars", at), None);
        assert_eq!(cal().last_close("mars", at), None);
        assert!(!cal().should_poll("mars", at, None));
        assert_eq!(cal().phase_ms("krx", i64::MAX), Phase::Closed);
    }

    #[test]
    fn krx_regular_day_phases() {
        // Tue 2026-11-24.
        let p = |h, m| cal().phase("krx", kst(2026, 11, 24, h, m));
        assert_eq!(p(7, 59), Phase::Closed);
        assert_eq!(p(8, 0), Phase::Pre);
        assert_eq!(p(8, 49), Phase::Pre);
        assert_eq!(p(8, 55), Phase::Closed); // NXT pre-market ended, KRX not yet open
        assert_eq!(p(9, 0), Phase::Open);
        assert_eq!(p(15, 29), Phase::Open);
        assert_eq!(p(15, 30), Phase::Post);
        assert_eq!(p(19, 59), Phase::Post);
        assert_eq!(p(20, 0), Phase::Closed);
        assert_eq!(Phase::Post.as_str(), "post");
    }

    #[test]
    fn krx_weekends_and_holidays_are_closed() {
        // Sat 2026-11-28, Sun 2026-11-29.
        assert_eq!(cal().phase("krx", kst(2026, 11, 28, 10, 0)), Phase::Closed);
        assert_eq!(cal().phase("krx", kst(2026, 11, 29, 10, 0)), Phase::Closed);
        for (m, d) in [
            (1, 1),
            (2, 16),
            (2, 17),
            (2, 18),
            (3, 2),
            (5, 1),
            (5, 5),
            (5, 25),
            (6, 3),
            (7, 17),
            (8, 17),
            (9, 24),
            (9, 25),
            (10, 5),
            (10, 9),
            (12, 25),
            (12, 31),
        ] {
            assert!(
                !cal().is_trading_day("krx", date(2026, m, d)),
                "2026-{m}-{d}"
            );
            assert_eq!(
                cal().phase("krx", kst(2026, m, d, 10, 0)),
                Phase::Closed,
                "2026-{m}-{d}"
            );
            assert_eq!(
                cal().phase("krx", kst(2026, m, d, 8, 10)),
                Phase::Closed,
                "2026-{m}-{d}"
            );
        }
        assert!(cal().is_trading_day("krx", date(2026, 12, 30)));
        assert!(!cal().is_trading_day("krx", date(2027, 1, 1)));
        assert_eq!(
            cal().day_note("krx", date(2026, 12, 31)),
            Some("연말 휴장일")
        );
        // The year-end close: the last close of 2026 is 12-30 15:30 KST, seen from 2027-01-01.
        assert_eq!(
            cal().last_close("krx", kst(2027, 1, 1, 12, 0)),
            Some(kst(2026, 12, 30, 15, 30))
        );
        // ... and the next change after the 12-30 after-market is the 2027-01-04 10:00 open.
        assert_eq!(
            cal().next_change("krx", kst(2026, 12, 30, 21, 0)),
            Some(kst(2027, 1, 4, 10, 0))
        );
    }

    #[test]
    fn krx_first_trading_days_open_at_ten() {
        for (y, m, d) in [(2026, 1, 2), (2027, 1, 4)] {
            assert!(cal().is_trading_day("krx", date(y, m, d)));
            assert_eq!(cal().phase("krx", kst(y, m, d, 8, 10)), Phase::Closed); // no NXT pre-market
            assert_eq!(cal().phase("krx", kst(y, m, d, 9, 30)), Phase::Closed);
            assert_eq!(cal().phase("krx", kst(y, m, d, 10, 0)), Phase::Open);
            assert_eq!(cal().phase("krx", kst(y, m, d, 15, 30)), Phase::Post);
        }
    }

    #[test]
    fn krx_suneung_day_opens_late_and_closes_late() {
        let p = |h, m| cal().phase("krx", kst(2026, 11, 19, h, m));
        assert_eq!(p(8, 10), Phase::Closed); // no NXT pre-market
        assert_eq!(p(9, 30), Phase::Closed);
        assert_eq!(p(10, 0), Phase::Open);
        assert_eq!(p(16, 0), Phase::Open);
        assert_eq!(p(16, 29), Phase::Open);
        assert_eq!(p(16, 31), Phase::Post);
        assert_eq!(p(20, 0), Phase::Closed);
        assert_eq!(
            cal().last_close("krx", kst(2026, 11, 19, 17, 0)),
            Some(kst(2026, 11, 19, 16, 30))
        );
        assert_eq!(
            cal().next_change("krx", kst(2026, 11, 19, 7, 0)),
            Some(kst(2026, 11, 19, 10, 0))
        );
        assert_eq!(
            cal().next_change("krx", kst(2026, 11, 19, 10, 0)),
            Some(kst(2026, 11, 19, 16, 30))
        );
    }

    #[test]
    fn us_sessions_follow_new_york_daylight_saving() {
        // 2026-03-08 (Sunday) DST starts: the Friday before opens 09:30 EST = 14:30 UTC, the
        // Monday after 09:30 EDT = 13:30 UTC.
        assert_eq!(cal().phase("us", utc(2026, 3, 6, 14, 29)), Phase::Pre);
        assert_eq!(cal().phase("us", utc(2026, 3, 6, 14, 30)), Phase::Open);
        assert_eq!(cal().phase("us", utc(2026, 3, 8, 14, 30)), Phase::Closed); // Sunday
        assert_eq!(cal().phase("us", utc(2026, 3, 9, 13, 29)), Phase::Pre);
        assert_eq!(cal().phase("us", utc(2026, 3, 9, 13, 30)), Phase::Open);
        assert_eq!(cal().phase("us", utc(2026, 3, 9, 20, 0)), Phase::Post); // 16:00 EDT
                                                                            // From the Sunday of the switch, the next change is Monday's 04:00 EDT pre-market.
        assert_eq!(
            cal().next_change("us", utc(2026, 3, 8, 12, 0)),
            Some(utc(2026, 3, 9, 8, 0))
        );
        // 2026-11-01 (Sunday) DST ends: Friday 10-30 opens 13:30 UTC, Monday 11-02 14:30 UTC.
        assert_eq!(cal().phase("us", utc(2026, 10, 30, 13, 30)), Phase::Open);
        assert_eq!(cal().phase("us", utc(2026, 11, 2, 13, 30)), Phase::Pre);
        assert_eq!(cal().phase("us", utc(2026, 11, 2, 14, 30)), Phase::Open);
        assert_eq!(cal().phase("us", utc(2026, 11, 2, 21, 0)), Phase::Post); // 16:00 EST
        assert_eq!(
            cal().last_close("us", utc(2026, 11, 2, 12, 0)),
            Some(utc(2026, 10, 30, 20, 0))
        );
    }

    #[test]
    fn us_holidays_and_early_closes() {
        for (m, d) in [
            (1, 1),
            (1, 19),
            (2, 16),
            (4, 3),
            (5, 25),
            (6, 19),
            (7, 3),
            (9, 7),
            (11, 26),
            (12, 25),
        ] {
            assert!(
                !cal().is_trading_day("us", date(2026, m, d)),
                "2026-{m}-{d}"
            );
            // Noon New York (17:00 UTC in winter, 16:00 in summer): closed either way.
            assert_eq!(
                cal().phase("us", utc(2026, m, d, 16, 30)),
                Phase::Closed,
                "2026-{m}-{d}"
            );
        }
        assert!(cal().is_trading_day("us", date(2026, 7, 2)));
        // 2026-11-27 closes 13:00 EST = 18:00 UTC; after-hours until 17:00 EST.
        assert_eq!(cal().phase("us", utc(2026, 11, 27, 17, 59)), Phase::Open);
        assert_eq!(cal().phase("us", utc(2026, 11, 27, 18, 0)), Phase::Post);
        assert_eq!(cal().phase("us", utc(2026, 11, 27, 22, 0)), Phase::Closed);
        assert_eq!(
            cal().last_close("us", utc(2026, 11, 27, 23, 0)),
            Some(utc(2026, 11, 27, 18, 0))
        );
        assert_eq!(cal().phase("us", utc(2026, 12, 24, 18, 30)), Phase::Post);
        assert_eq!(
            cal().next_change("us", utc(2026, 11, 27, 17, 0)),
            Some(utc(2026, 11, 27, 18, 0))
        );
        // Thanksgiving Wednesday night: the next change is Friday's pre-market (04:00 EST).
        assert_eq!(
            cal().next_change("us", utc(2026, 11, 26, 2, 0)),
            Some(utc(2026, 11, 27, 9, 0))
        );
    }

    #[test]
    fn crypto_is_always_open() {
        for at in [
            utc(2026, 11, 28, 3, 0),
            utc(2026, 12, 31, 23, 59),
            utc(2027, 1, 1, 0, 0),
        ] {
            assert_eq!(cal().phase("crypto", at), Phase::Open);
            assert!(cal().should_poll("crypto", at, Some(at)));
        }
        assert!(cal().is_trading_day("crypto", date(2026, 12, 25)));
        assert_eq!(cal().next_change("crypto", utc(2026, 11, 28, 3, 0)), None);
        assert_eq!(cal().last_close("crypto", utc(2026, 11, 28, 3, 0)), None);
    }

    #[test]
    fn metals_run_overnight_sunday_to_friday() {
        // Wed 2026-11-25 03:00 EST open, 17:30 daily break, Sat closed, Sun 18:30 open.
        assert_eq!(cal().phase("metal", utc(2026, 11, 25, 8, 0)), Phase::Open);
        assert_eq!(
            cal().phase("metal", utc(2026, 11, 25, 22, 30)),
            Phase::Closed
        );
        assert_eq!(
            cal().phase("metal", utc(2026, 11, 28, 17, 0)),
            Phase::Closed
        );
        assert_eq!(cal().phase("metal", utc(2026, 11, 29, 23, 30)), Phase::Open);
        // Monday 02:00 EST still belongs to Sunday's session.
        assert_eq!(cal().phase("metal", utc(2026, 11, 30, 7, 0)), Phase::Open);
        // Friday 17:00 EST closes the week.
        assert_eq!(
            cal().last_close("metal", utc(2026, 11, 28, 17, 0)),
            Some(utc(2026, 11, 27, 22, 0))
        );
        assert_eq!(
            cal().next_change("metal", utc(2026, 11, 28, 17, 0)),
            Some(utc(2026, 11, 29, 23, 0))
        );
    }

    #[test]
    fn fx_business_days() {
        assert!(cal().is_trading_day("fx", date(2026, 11, 25)));
        assert!(!cal().is_trading_day("fx", date(2026, 11, 28)));
        assert!(!cal().is_trading_day("fx", date(2026, 9, 25)));
        // Banks work on the KRX-only year-end close.
        assert!(cal().is_trading_day("fx", date(2026, 12, 31)));
        assert_eq!(cal().phase("fx", kst(2026, 11, 19, 9, 30)), Phase::Closed);
        assert_eq!(cal().phase("fx", kst(2026, 11, 19, 10, 30)), Phase::Open);
    }

    #[test]
    fn should_poll_while_live_plus_one_final_snapshot() {
        let c = cal();
        let open = kst(2026, 11, 24, 10, 0);
        assert!(c.should_poll("krx", open, Some(open - Duration::seconds(5))));
        assert!(c.should_poll_regular("krx", open, Some(open)));
        // 16:00: the after-market runs, so a full poller polls; the regular-only poller takes its
        // one snapshot after the 15:30 close, then stops.
        let after = kst(2026, 11, 24, 16, 0);
        assert!(c.should_poll("krx", after, Some(after)));
        assert!(c.should_poll_regular("krx", after, Some(kst(2026, 11, 24, 15, 29))));
        assert!(!c.should_poll_regular("krx", after, Some(kst(2026, 11, 24, 15, 30))));
        // 21:00: the last poll was before the 20:00 end → one final snapshot; then nothing.
        let night = kst(2026, 11, 24, 21, 0);
        assert!(c.should_poll("krx", night, Some(kst(2026, 11, 24, 19, 59))));
        assert!(!c.should_poll("krx", night, Some(kst(2026, 11, 24, 20, 0))));
        // Never polled (a start on a holiday): one snapshot of the last close.
        assert!(c.should_poll("krx", kst(2026, 12, 31, 12, 0), None));
        assert!(!c.should_poll(
            "krx",
            kst(2026, 12, 31, 12, 0),
            Some(kst(2026, 12, 30, 20, 1))
        ));
        // US: the Thanksgiving holiday polls nothing once Wednesday's close was taken.
        assert!(!c.should_poll(
            "us",
            utc(2026, 11, 26, 17, 0),
            Some(utc(2026, 11, 26, 1, 0))
        ));
    }

    #[test]
    fn dst_gap_and_overlap_do_not_panic() {
        // A session at a local time that does not exist (02:30 on the spring-forward night) and
        // one that exists twice (01:30 on the fall-back night).
        let json = r#"{"version":2,"markets":{"x":{"timeZone":"America/New_York","weekdays":[7],
            "sessions":{"open":["01:30","02:30"]}}}}"#;
        let c = Calendar::parse(json).unwrap();
        assert_eq!(c.phase("x", utc(2026, 3, 8, 6, 45)), Phase::Open); // 01:45 EST
        assert_eq!(c.phase("x", utc(2026, 11, 1, 5, 45)), Phase::Open); // 01:45 EDT
        assert!(c.next_change("x", utc(2026, 3, 8, 0, 0)).is_some());
    }
}
