//! The HTTP/1.1 wire of the fake servers (Upbit, NewsAPI, Coinbase): read one request head off a
//! keep-alive connection, write one answer with exactly the status line and headers the real
//! service sends. Hand-rolled on purpose: the fakes must control every byte (header spelling,
//! `Remaining-Req`, a truncated body), which a full HTTP server would normalise.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest request head a fake reads; a longer one drops the connection.
const MAX_HEAD: usize = 32 * 1024;

/// One request head (GET only: the fakes' APIs take no body).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The request target as sent (`/v1/ticker?markets=KRW-BTC`).
    pub target: String,
    /// The target's path.
    pub path: String,
    /// The query, percent-decoded (`+` is a space).
    pub query: HashMap<String, String>,
    /// Header names lower-cased, values trimmed.
    pub headers: HashMap<String, String>,
}

/// Read the next request head from `s` (`buf` carries bytes read past it between calls).
/// `None` when the peer closed, the read failed or the head is too long.
pub async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 2048];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    Some(parse_head(&head))
}

/// Parse a request head (request line and header lines).
pub fn parse_head(head: &str) -> Request {
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    Request {
        path: path.to_owned(),
        target: target.clone(),
        query,
        headers,
    }
}

/// Write one answer: status line, `content-type`, `content-length`, then `extra_headers` (each
/// line ending in `\r\n`) and the body. False when the peer is gone.
pub async fn write_response(
    s: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> bool {
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra_headers}\r\n",
        reason(status),
        body.len()
    );
    s.write_all(head.as_bytes()).await.is_ok() && s.write_all(body).await.is_ok()
}

/// The reason phrase of a status the fakes send.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        418 => "I'm a teapot",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Decode `%XX` escapes and `+` (a space) of a query component; a bad escape stays as it is.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        assert_eq!(
            percent_decode("%22a%22+OR+%EA%B5%AC%EA%B8%80"),
            "\"a\" OR 구글"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz1"), "%zz1");
    }

    #[test]
    fn parses_a_head() {
        let r = parse_head(
            "GET /v1/candles/minutes/1?market=KRW-BTC&count=200 HTTP/1.1\r\nHost: x\r\nUser-Agent: sise\r\n\r\n",
        );
        assert_eq!(r.path, "/v1/candles/minutes/1");
        assert_eq!(r.target, "/v1/candles/minutes/1?market=KRW-BTC&count=200");
        assert_eq!(r.query.get("market").map(String::as_str), Some("KRW-BTC"));
        assert_eq!(r.query.get("count").map(String::as_str), Some("200"));
        assert_eq!(
            r.headers.get("user-agent").map(String::as_str),
            Some("sise")
        );
        let bare = parse_head("GET / HTTP/1.1\r\n\r\n");
        assert_eq!((bare.path.as_str(), bare.query.len()), ("/", 0));
    }
}
