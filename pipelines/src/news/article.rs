//! NewsAPI answers (`shared/apis/newsapi.md` §4–5): the success body, the error body, and one
//! article turned into a clean [`Article`]: titles and texts trimmed, the `… [+N chars]`
//! marker stripped when present, line ends normalised, HTML entities decoded, `[Removed]`
//! entries dropped, and the URL made canonical (its hash is the `News` id).

use chrono::DateTime;
use serde::Deserialize;
use sha2::Digest;

/// A NewsAPI success or error body (`status` says which).
#[derive(Debug, Deserialize)]
pub struct Answer {
    pub status: String,
    #[serde(rename = "totalResults")]
    pub total_results: Option<u64>,
    #[serde(default)]
    pub articles: Vec<serde_json::Value>,
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawSource {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawArticle {
    source: Option<RawSource>,
    title: Option<String>,
    description: Option<String>,
    url: Option<String>,
    #[serde(rename = "urlToImage")]
    url_to_image: Option<String>,
    #[serde(rename = "publishedAt")]
    published_at: Option<String>,
    content: Option<String>,
}

/// One usable article.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// Hex of the first 16 bytes of SHA-256 of the canonical URL.
    pub id: String,
    pub title: String,
    pub summary: Option<String>,
    /// The canonical URL.
    pub url: String,
    pub image: Option<String>,
    /// Epoch ms.
    pub published: i64,
    /// The publisher (`source.name`).
    pub publisher: Option<String>,
    /// `source.id` is `google-news`: a redirect link, deduplicated by title too.
    pub aggregator: bool,
    /// `ko` when the text has Hangul, `en` when it is plain Latin text, else unknown.
    pub language: Option<String>,
    /// Title, summary and content, for tagging.
    pub text: String,
}

/// Why one article was not used.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// `[Removed]` (NewsAPI took it down): dropped, not an error.
    Removed,
    /// Not the documented shape (no title, no URL, no date…): skipped and counted.
    Bad(String),
}

/// Turn one entry of `articles` into an [`Article`].
pub fn parse_article(v: &serde_json::Value) -> Result<Article, Skip> {
    let raw: RawArticle =
        serde_json::from_value(v.clone()).map_err(|e| Skip::Bad(short(&e.to_string())))?;
    let title = raw.title.as_deref().map(clean).unwrap_or_default();
    if title == "[Removed]"
        || raw
            .source
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .is_some_and(|n| n.trim() == "[Removed]")
        || raw.url.as_deref().is_some_and(|u| {
            u.trim()
                .trim_end_matches('/')
                .eq_ignore_ascii_case("https://removed.com")
        })
    {
        return Err(Skip::Removed);
    }
    if title.is_empty() {
        return Err(Skip::Bad("article without a title".into()));
    }
    let url = raw
        .url
        .as_deref()
        .and_then(canonical_url)
        .ok_or_else(|| Skip::Bad("article without a usable http(s) url".into()))?;
    let published = raw
        .published_at
        .as_deref()
        .and_then(parse_time)
        .filter(|t| *t > 0)
        .ok_or_else(|| Skip::Bad("article without a usable publishedAt".into()))?;
    let description = raw
        .description
        .as_deref()
        .map(clean)
        .filter(|d| !d.is_empty() && d != "[Removed]");
    let content = raw
        .content
        .as_deref()
        .map(|c| clean(strip_marker(c)))
        .filter(|c| !c.is_empty() && c != "[Removed]");
    let summary = description.clone().or_else(|| content.clone());
    let image = raw
        .url_to_image
        .as_deref()
        .map(str::trim)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_owned);
    let (publisher, aggregator) = match &raw.source {
        Some(s) => (
            s.name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            s.id.as_deref() == Some("google-news"),
        ),
        None => (None, false),
    };
    let mut text = title.clone();
    for part in [&description, &content].into_iter().flatten() {
        text.push('\n');
        text.push_str(part);
    }
    Ok(Article {
        id: id_of(&url),
        language: language_of(&text),
        title,
        summary,
        url,
        image,
        published,
        publisher,
        aggregator,
        text,
    })
}

/// The `News` id of a canonical URL.
pub fn id_of(canonical: &str) -> String {
    hex::encode(&sha2::Sha256::digest(canonical.as_bytes())[..16])
}

/// Query parameters that only track the reader, never select the article.
fn tracking(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("utm_")
        || matches!(
            k.as_str(),
            "fbclid"
                | "gclid"
                | "dclid"
                | "msclkid"
                | "mc_cid"
                | "mc_eid"
                | "igshid"
                | "yclid"
                | "_ga"
                | "ref"
                | "ref_src"
                | "cmpid"
                | "ocid"
                | "smid"
                | "taid"
                | "guccounter"
                | "guce_referrer"
                | "guce_referrer_sig"
        )
}

/// The canonical form of an article URL: http(s) only, host lower-case (the parser does it),
/// default port, fragment, tracking parameters and a trailing slash removed, the remaining
/// parameters kept in their order. `None` for anything that is not an http(s) URL.
pub fn canonical_url(raw: &str) -> Option<String> {
    let mut u = reqwest::Url::parse(raw.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return None;
    }
    u.set_fragment(None);
    // `Url` drops a scheme's default port itself; user info never identifies an article.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !tracking(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    let path = u.path().to_owned();
    if path.len() > 1 && path.ends_with('/') {
        u.set_path(path.trim_end_matches('/'));
    }
    let mut s = u.to_string();
    // `https://host/` and `https://host` are one page.
    if u.path() == "/" && u.query().is_none() {
        s.pop();
    }
    Some(s)
}

/// RFC 3339, leniently (`Z`, `+00:00`, fractional seconds, a missing zone read as UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// Remove a trailing `… [+N chars]` (or `... [+N chars]`) marker, when there is one.
pub fn strip_marker(s: &str) -> &str {
    let t = s.trim_end();
    let Some(open) = t.rfind("[+") else {
        return s;
    };
    let tail = &t[open + 2..];
    let ok = tail
        .strip_suffix(" chars]")
        .is_some_and(|n| !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return s;
    }
    let before = t[..open].trim_end();
    before
        .strip_suffix('…')
        .or_else(|| before.strip_suffix("..."))
        .unwrap_or(before)
        .trim_end()
}

/// Trim, normalise line ends (`\r\n`, `\r` → `\n`), collapse runs of spaces, decode entities.
pub fn clean(s: &str) -> String {
    let s = decode_entities(&s.replace("\r\n", "\n").replace('\r', "\n"));
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.trim().chars() {
        if c == ' ' || c == '\t' || c == '\u{a0}' {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

/// Decode the HTML entities news text carries (`&amp;`, `&quot;`, `&#39;`, `&#x2019;`…).
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let decoded = tail.find(';').filter(|end| *end <= 10).and_then(|end| {
            let name = &tail[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                "hellip" => Some('…'),
                "mdash" => Some('—'),
                "ndash" => Some('–'),
                "lsquo" => Some('‘'),
                "rsquo" => Some('’'),
                "ldquo" => Some('“'),
                "rdquo" => Some('”'),
                n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                    .ok()
                    .and_then(char::from_u32),
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn language_of(text: &str) -> Option<String> {
    let hangul = text
        .chars()
        .any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c) || ('\u{3131}'..='\u{318e}').contains(&c));
    if hangul {
        return Some("ko".into());
    }
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let ascii = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    (letters > 0 && ascii * 10 >= letters * 9).then(|| "en".into())
}

/// A title for deduplicating aggregator items: without ` - Publisher`, lower case, words only.
pub fn title_key(title: &str) -> String {
    let base = match title.rsplit_once(" - ") {
        Some((head, tail)) if tail.len() <= 60 && !head.is_empty() => head,
        _ => title,
    };
    base.chars()
        .filter_map(|c| {
            if c.is_alphanumeric() {
                Some(c.to_lowercase().next().unwrap_or(c))
            } else if c.is_whitespace() {
                Some(' ')
            } else {
                None
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn short(s: &str) -> String {
    crate::poll::shorten(s, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = include_bytes!("fixtures/everything_ok.json");

    #[test]
    fn the_fixture_parses_and_the_removed_entry_is_dropped() {
        let a: Answer = serde_json::from_slice(OK).unwrap();
        assert_eq!(a.status, "ok");
        assert_eq!(a.total_results, Some(3));
        let parsed: Vec<Result<Article, Skip>> = a.articles.iter().map(parse_article).collect();
        let reuters = parsed[0].as_ref().unwrap();
        assert_eq!(
            reuters.title,
            "Korean shares edge higher as chipmakers recover"
        );
        assert_eq!(
            reuters.url,
            "https://www.reuters.com/markets/asia/example-kospi-edges-higher-2026-03-11"
        );
        assert_eq!(reuters.published, 1_773_211_512_000);
        assert_eq!(reuters.publisher.as_deref(), Some("Reuters"));
        assert_eq!(reuters.language.as_deref(), Some("en"));
        assert!(reuters.image.is_some());
        let coindesk = parsed[1].as_ref().unwrap();
        // Fractional seconds parse; no description and no content: no summary.
        assert_eq!(coindesk.published, 1_773_198_600_000);
        assert_eq!(coindesk.summary, None);
        assert_eq!(coindesk.image, None);
        assert_eq!(parsed[2], Err(Skip::Removed));
        let ids: Vec<&str> = parsed.iter().flatten().map(|a| a.id.as_str()).collect();
        assert_eq!(ids[0].len(), 32);
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn canonical_urls() {
        let c = |s| canonical_url(s).unwrap();
        let base = "https://www.reuters.com/markets/a-b";
        assert_eq!(c("https://WWW.Reuters.COM/markets/a-b/"), base);
        assert_eq!(c("https://www.reuters.com:443/markets/a-b#top"), base);
        assert_eq!(
            c("https://www.reuters.com/markets/a-b?utm_source=x&utm_medium=rss&fbclid=1"),
            base
        );
        assert_eq!(
            c("https://news.example.com/view?id=42&utm_campaign=z&page=2"),
            "https://news.example.com/view?id=42&page=2"
        );
        assert_eq!(c("https://Example.com/"), "https://example.com");
        // Case of the path is kept (it can select the page).
        assert_eq!(c("https://x.com/A/b"), "https://x.com/A/b");
        assert!(canonical_url("javascript:alert(1)").is_none());
        assert!(canonical_url("not a url").is_none());
        assert!(canonical_url("ftp://x.com/file").is_none());
        assert_eq!(
            id_of(&c("https://www.reuters.com/markets/a-b/?utm_source=x")),
            id_of(base)
        );
    }

    #[test]
    fn texts_are_cleaned() {
        assert_eq!(
            strip_marker("South Korean shares rose… [+2141 chars]"),
            "South Korean shares rose"
        );
        assert_eq!(strip_marker("Ends plainly... [+12 chars]"), "Ends plainly");
        assert_eq!(
            strip_marker("Please verify you are a human"),
            "Please verify you are a human"
        );
        assert_eq!(strip_marker("[+x chars] odd"), "[+x chars] odd");
        assert_eq!(
            clean("  AT&amp;T &quot;up&quot;\r\nit&#39;s &#x2019; ok  "),
            "AT&T \"up\"\nit's ’ ok"
        );
        assert_eq!(decode_entities("a & b &unknown; c"), "a & b &unknown; c");
        assert_eq!(
            title_key("Bitcoin holds above $89,000 - CoinDesk"),
            "bitcoin holds above 89000"
        );
    }

    #[test]
    fn bad_articles_are_skipped_not_fatal() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert!(matches!(
            parse_article(&v(r#"{"title":"x","url":"https://a.com/x"}"#)),
            Err(Skip::Bad(_))
        ));
        assert!(matches!(
            parse_article(&v(
                r#"{"title":"x","url":"nope","publishedAt":"2026-03-11T00:00:00Z"}"#
            )),
            Err(Skip::Bad(_))
        ));
        assert!(matches!(
            parse_article(&v(r#"{"title":7}"#)),
            Err(Skip::Bad(_))
        ));
        assert!(matches!(parse_article(&v("[1,2]")), Err(Skip::Bad(_))));
        let ko = parse_article(&v(
            r#"{"source":{"id":"google-news","name":"Google News"},"title":"  에코프로, 2차전지 강세에 5% 상승 - 한국경제 ","url":"https://news.google.com/rss/articles/CBMi?oc=5","publishedAt":"2026-03-11T01:02:03+00:00","description":null,"content":null}"#,
        ))
        .unwrap();
        assert_eq!(ko.title, "에코프로, 2차전지 강세에 5% 상승 - 한국경제");
        assert_eq!(ko.language.as_deref(), Some("ko"));
        assert!(ko.aggregator);
        assert_eq!(ko.published, 1_773_190_923_000);
    }
}
