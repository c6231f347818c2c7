//! Which instruments an article mentions, and what to ask NewsAPI for.
//!
//! Every instrument of the registry that a reader follows (not the derived ones, not the USD
//! reference prices of the kimchi premium) gets a list of [`Term`]s: its Korean and English
//! names and its ticker, plus hand-made aliases for the defaults whose names are ambiguous
//! (`금`/`은` are a metal and a particle; `SOL`, `LINK`, `FIG` are words; `Alphabet` is also
//! `Google`/`구글`). Matching is word-boundary aware:
//! - Latin terms must stand alone (`GOOG` does not match `GOOGL`, `Gold` not `Goldman`);
//!   tickers and short names are case-sensitive (`SOL` ≠ `sol`), longer names are not.
//! - Korean terms must start a word (no Hangul right before) but may carry a particle after
//!   (`에코프로가`, `코스피는`).
//!
//! Terms marked `query` also build that instrument's NewsAPI query (`"a" OR "b"`); ambiguous
//! ones only tag.

use sise_bus::{Class, InstrumentId};

use crate::Registry;

/// One way an article can name an instrument.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub text: String,
    pub case_sensitive: bool,
    /// Also sent in the instrument's NewsAPI query.
    pub query: bool,
}

fn q(text: &str) -> Term {
    Term {
        text: text.to_owned(),
        case_sensitive: false,
        query: true,
    }
}
/// Case-sensitive, queried (tickers).
fn qc(text: &str) -> Term {
    Term {
        text: text.to_owned(),
        case_sensitive: true,
        query: true,
    }
}
/// Tag only (too ambiguous to search for), case-insensitive.
fn t(text: &str) -> Term {
    Term {
        text: text.to_owned(),
        case_sensitive: false,
        query: false,
    }
}
/// Tag only, case-sensitive.
fn tc(text: &str) -> Term {
    Term {
        text: text.to_owned(),
        case_sensitive: true,
        query: false,
    }
}

/// Hand-made terms of the default instruments (DESIGN.md, "Instruments").
fn builtin(id: &str) -> Option<Vec<Term>> {
    Some(match id {
        "stock.krx.058610" => vec![q("에스피지"), q("SPG Co"), tc("SPG")],
        "stock.krx.086520" => vec![q("에코프로"), q("EcoPro")],
        "stock.krx.068270" => vec![q("셀트리온"), q("Celltrion")],
        "index.krx.KOSPI" => vec![q("코스피"), q("KOSPI")],
        "index.krx.KOSDAQ" => vec![q("코스닥"), q("KOSDAQ")],
        "index.us.DJI" => vec![q("다우존스"), q("다우지수"), q("Dow Jones"), tc("Dow")],
        "index.us.IXIC" => vec![q("나스닥"), q("Nasdaq")],
        "stock.us.BMNR" => vec![q("비트마인"), q("BitMine"), qc("BMNR")],
        "stock.us.GOOG" => vec![
            q("알파벳"),
            q("구글"),
            q("Alphabet"),
            q("Google"),
            qc("GOOG"),
            tc("GOOGL"),
        ],
        "stock.us.FIG" => vec![q("피그마"), q("Figma"), tc("FIG")],
        "crypto.upbit.KRW-BTC" => vec![q("비트코인"), q("Bitcoin"), qc("BTC")],
        "crypto.upbit.KRW-ETH" => vec![q("이더리움"), q("Ethereum"), qc("ETH"), t("Ether")],
        "crypto.upbit.KRW-SOL" => vec![q("솔라나"), q("Solana"), tc("SOL")],
        "crypto.upbit.KRW-XRP" => vec![q("엑스알피"), q("리플"), qc("XRP"), q("Ripple")],
        "crypto.upbit.KRW-LINK" => vec![q("체인링크"), q("Chainlink"), tc("LINK")],
        "crypto.upbit.KRW-SUI" => vec![t("수이"), qc("Sui"), tc("SUI")],
        "crypto.upbit.KRW-ONDO" => {
            vec![q("온도파이낸스"), q("Ondo Finance"), qc("ONDO"), tc("Ondo")]
        }
        "metal.spot.XAU" => vec![
            q("금값"),
            q("국제 금"),
            t("금 시세"),
            q("gold price"),
            q("gold prices"),
            t("gold"),
            tc("XAU"),
        ],
        "metal.spot.XAG" => vec![
            q("은값"),
            q("silver price"),
            q("silver prices"),
            t("silver"),
            tc("XAG"),
        ],
        "fx.spot.USDKRW" => vec![
            q("원/달러"),
            q("원·달러"),
            q("원달러 환율"),
            q("USD/KRW"),
            q("Korean won"),
        ],
        _ => return None,
    })
}

fn is_hangul(c: char) -> bool {
    ('\u{ac00}'..='\u{d7a3}').contains(&c) || ('\u{3131}'..='\u{318e}').contains(&c)
}

/// Terms from the registry's names and symbol, for instruments without hand-made ones.
fn generic(inst: &crate::Instrument) -> Vec<Term> {
    let mut out = Vec::new();
    let ko = inst
        .name_ko
        .split(['(', ')'])
        .next()
        .unwrap_or_default()
        .trim();
    if ko.chars().count() >= 2 {
        out.push(q(ko));
    }
    let en = inst.name_en.trim();
    if en.len() >= 5 {
        out.push(q(en));
    } else if !en.is_empty() {
        out.push(qc(en));
    }
    let symbol = inst.id.symbol();
    let ticker = match (inst.class, symbol.split_once('-')) {
        (Class::Crypto, Some((_, base))) => Some(base),
        (Class::Stock, None) if inst.venue != "krx" => Some(symbol),
        _ => None,
    };
    if let Some(t) = ticker.filter(|t| t.len() >= 3 && *t != en) {
        out.push(qc(t));
    }
    out
}

/// The venue of the USD reference prices (not news subjects of their own).
pub const REFERENCE_VENUES: [&str; 1] = ["coinbase"];

/// An instrument and its terms.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: InstrumentId,
    pub name_en: String,
    pub terms: Vec<Term>,
}

/// The matcher over every followed instrument.
#[derive(Debug, Clone)]
pub struct Tagger {
    subjects: Vec<Subject>,
}

impl Tagger {
    pub fn new(registry: &Registry) -> Self {
        let subjects = registry
            .instruments()
            .iter()
            .filter(|i| i.class != Class::Derived && !REFERENCE_VENUES.contains(&i.venue.as_str()))
            .map(|i| Subject {
                id: i.id.clone(),
                name_en: i.name_en.clone(),
                terms: builtin(i.id.as_str()).unwrap_or_else(|| generic(i)),
            })
            .filter(|s| !s.terms.is_empty())
            .collect();
        Tagger { subjects }
    }

    pub fn subjects(&self) -> &[Subject] {
        &self.subjects
    }

    /// The instruments `text` mentions, in registry order.
    pub fn tag(&self, text: &str) -> Vec<InstrumentId> {
        let lower = text.to_ascii_lowercase();
        self.subjects
            .iter()
            .filter(|s| s.terms.iter().any(|t| mentions(text, &lower, t)))
            .map(|s| s.id.clone())
            .collect()
    }
}

/// Whether `text` (and its ASCII-lower-cased copy, same byte offsets) mentions `term`.
pub fn mentions(text: &str, lower: &str, term: &Term) -> bool {
    let korean = term.text.chars().any(is_hangul);
    let (hay, needle) = if term.case_sensitive || korean {
        (text, term.text.clone())
    } else {
        (lower, term.text.to_ascii_lowercase())
    };
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(at) = hay[from..].find(&needle) {
        let start = from + at;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let ok = if korean {
            before.is_none_or(|c| !is_hangul(c) && !c.is_ascii_alphanumeric())
        } else {
            let word = |c: char| c.is_alphanumeric() && !is_hangul(c);
            before.is_none_or(|c| !word(c)) && after.is_none_or(|c| !word(c))
        };
        if ok {
            return true;
        }
        // Next char boundary after `start`.
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// One NewsAPI query: what to send, and what it is about (for logs and statuses).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// An instrument id, or `markets` for the general one.
    pub label: String,
    /// The `q` parameter (at most 500 characters).
    pub q: String,
}

/// The general markets query.
pub const MARKETS_Q: &str = "\"stock market\" OR \"Wall Street\" OR \"Federal Reserve\" OR \"Bank of Korea\" OR \"Korean stocks\" OR \"한국은행\" OR \"증시\" OR \"crypto market\"";

fn quote_terms(terms: &[&str]) -> String {
    let mut q = String::new();
    for t in terms {
        let term = format!("\"{}\"", t.replace('"', ""));
        if q.len() + term.len() + 4 > 500 {
            break;
        }
        if !q.is_empty() {
            q.push_str(" OR ");
        }
        q.push_str(&term);
    }
    q
}

/// The queries of one rotation: the general markets query first, then one per instrument.
pub fn queries(tagger: &Tagger) -> Vec<Query> {
    let mut out = vec![Query {
        label: "markets".into(),
        q: MARKETS_Q.into(),
    }];
    for s in tagger.subjects() {
        let terms: Vec<&str> = s
            .terms
            .iter()
            .filter(|t| t.query)
            .map(|t| t.text.as_str())
            .collect();
        if terms.is_empty() {
            continue;
        }
        out.push(Query {
            label: s.id.to_string(),
            q: quote_terms(&terms),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagger() -> Tagger {
        Tagger::new(&Registry::builtin().unwrap())
    }

    fn tags(text: &str) -> Vec<String> {
        tagger()
            .tag(text)
            .into_iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn names_tickers_and_word_boundaries() {
        assert_eq!(
            tags("Alphabet shares rise as Google unveils AI chip"),
            ["stock.us.GOOG"]
        );
        assert_eq!(tags("구글, 새 AI 칩 공개"), ["stock.us.GOOG"]);
        assert_eq!(tags("GOOG up 2% premarket"), ["stock.us.GOOG"]);
        // GOOGL is the A share: still Alphabet; but not inside another word.
        assert_eq!(tags("GOOGL and GOOG diverge"), ["stock.us.GOOG"]);
        assert!(tags("GOOGX fund, googly eyes").is_empty());
        assert!(tags("Goldman Sachs raises targets").is_empty());
        assert_eq!(tags("Gold rallies to a record"), ["metal.spot.XAU"]);
        assert_eq!(tags("국제 금값 사상 최고"), ["metal.spot.XAU"]);
        // 은 as a particle is not silver; 은값 is.
        assert!(tags("시장은 관망세").is_empty());
        assert_eq!(tags("은값 급등"), ["metal.spot.XAG"]);
        // Korean names take particles after them, not Hangul before them.
        assert_eq!(tags("에코프로가 5% 올랐다"), ["stock.krx.086520"]);
        assert!(tags("대에코프로").is_empty());
        assert_eq!(
            tags("코스피는 하락, 코스닥은 상승"),
            ["index.krx.KOSPI", "index.krx.KOSDAQ"]
        );
        // Tickers are case-sensitive; SOL the word is not Solana.
        assert!(tags("the sol of the matter, a link to it, a fig tree").is_empty());
        assert_eq!(
            tags("SOL and ETH rebound"),
            ["crypto.upbit.KRW-ETH", "crypto.upbit.KRW-SOL"]
        );
        assert_eq!(
            tags("Bitcoin holds above $89,000 as ETF inflows resume"),
            ["crypto.upbit.KRW-BTC"]
        );
        assert_eq!(tags("리플 소송 종결"), ["crypto.upbit.KRW-XRP"]);
        assert_eq!(
            tags("Dow Jones and Nasdaq close higher"),
            ["index.us.DJI", "index.us.IXIC"]
        );
        assert_eq!(tags("원/달러 환율 1,450원 돌파"), ["fx.spot.USDKRW"]);
        assert!(tags("Korean shares edge higher").is_empty());
    }

    #[test]
    fn one_query_per_instrument_and_one_for_the_markets() {
        let t = tagger();
        let qs = queries(&t);
        assert_eq!(qs[0].label, "markets");
        // 20 followed defaults (no derived, no USD references) + markets.
        assert_eq!(qs.len(), 21, "{qs:?}");
        let goog = qs.iter().find(|q| q.label == "stock.us.GOOG").unwrap();
        assert_eq!(
            goog.q,
            "\"알파벳\" OR \"구글\" OR \"Alphabet\" OR \"Google\" OR \"GOOG\""
        );
        let fig = qs.iter().find(|q| q.label == "stock.us.FIG").unwrap();
        assert!(!fig.q.contains("\"FIG\""), "ambiguous tickers only tag");
        assert!(qs.iter().all(|q| q.q.len() <= 500 && !q.q.is_empty()));
    }

    #[test]
    fn generic_terms_for_other_instruments() {
        let r = Registry::from_toml(
            r#"
            [markets.us]
            name_ko = "미국"
            name_en = "US"
            timezone = "America/New_York"
            [[instruments]]
            id = "stock.us.NVDA"
            name_ko = "엔비디아"
            name_en = "NVIDIA"
            class = "stock"
            venue = "us"
            currency = "USD"
            decimals = 2
            market = "us"
            "#,
        )
        .unwrap();
        let t = Tagger::new(&r);
        let tag = |s: &str| t.tag(s).len();
        assert_eq!(tag("엔비디아 실적 발표"), 1);
        assert_eq!(tag("Nvidia beats estimates"), 1);
        assert_eq!(tag("NVDA slips"), 1);
        assert_eq!(tag("nvda slips"), 0);
    }
}
