//! Query-string parsing with the API's own errors (a bad parameter is a clear 400 naming it).

use std::collections::HashMap;

use super::error::ApiError;

/// The decoded query string; the last value of a repeated key wins.
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Self {
        Params(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A parameter, with an empty value treated as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// An epoch-ms time parameter.
    pub fn time(&self, key: &'static str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|t| (0..=253_402_300_799_999).contains(t))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "bad_parameter",
                            format!("{key} must be a time in Unix epoch milliseconds, got {v:?}"),
                        )
                    })
            })
            .transpose()
    }

    /// A limit in `1..=max`, `default` when absent.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n > i64::from(max) => Err(ApiError::bad_request(
                    "limit_too_large",
                    format!("limit {n} is over the maximum of {max}"),
                )),
                Ok(n) if n >= 1 => Ok(n as u32),
                _ => Err(ApiError::bad_request(
                    "bad_parameter",
                    format!("limit must be a whole number from 1 to {max}, got {v:?}"),
                )),
            },
        }
    }
}
