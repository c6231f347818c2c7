//! Dashboard layouts: plain PostgreSQL rows (JSONB) written by the edge.
//!
//! `POST` creates a layout and answers its id and a secret (shown once; only its SHA-256 is
//! stored). `GET` is open to anyone with the id (a shared link opens read-only); `PUT` needs
//! `Authorization: Bearer <secret>`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use rand::RngExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;

/// Largest layout body accepted.
pub const MAX_LAYOUT_BYTES: usize = 64 * 1024;

fn random_token(bytes: usize) -> String {
    let mut rng = rand::rng();
    let raw: Vec<u8> = (0..bytes).map(|_| rng.random::<u8>()).collect();
    hex::encode(raw)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of two hex digests.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn layout_of(body: &Bytes) -> Result<Value, ApiError> {
    if body.len() > MAX_LAYOUT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a layout is at most {MAX_LAYOUT_BYTES} bytes"),
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("bad_json", format!("body is not JSON: {e}")))?;
    match v {
        Value::Object(mut m) => match m.remove("layout") {
            Some(l @ Value::Object(_)) => Ok(l),
            _ => Err(ApiError::bad_request(
                "bad_layout",
                "body must be {\"layout\": {…}}",
            )),
        },
        _ => Err(ApiError::bad_request(
            "bad_layout",
            "body must be {\"layout\": {…}}",
        )),
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::not_found("unknown_layout", "no such layout"))
    }
}

pub async fn create(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let layout = layout_of(&body)?;
    let id = random_token(8);
    let secret = random_token(24);
    let (updated,): (i64,) = sqlx::query_as(
        "INSERT INTO layouts (id, secret_hash, layout) VALUES ($1, $2, $3)
         RETURNING (extract(epoch FROM updated_at) * 1000)::bigint",
    )
    .bind(&id)
    .bind(hash(&secret))
    .bind(&layout)
    .fetch_one(&app.pg)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "secret": secret, "layout": layout, "updated": updated })),
    ))
}

pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_id(&id)?;
    let row: Option<(Value, i64)> = sqlx::query_as(
        "SELECT layout, (extract(epoch FROM updated_at) * 1000)::bigint FROM layouts WHERE id = $1",
    )
    .bind(&id)
    .fetch_optional(&app.pg)
    .await?;
    let (layout, updated) =
        row.ok_or_else(|| ApiError::not_found("unknown_layout", "no such layout"))?;
    Ok(Json(
        json!({ "id": id, "layout": layout, "updated": updated }),
    ))
}

pub async fn put(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    check_id(&id)?;
    let secret = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "changing a layout needs Authorization: Bearer <secret>",
            )
        })?;
    let layout = layout_of(&body)?;
    let row: Option<(String,)> = sqlx::query_as("SELECT secret_hash FROM layouts WHERE id = $1")
        .bind(&id)
        .fetch_optional(&app.pg)
        .await?;
    let (stored,) = row.ok_or_else(|| ApiError::not_found("unknown_layout", "no such layout"))?;
    if !same(&stored, &hash(secret)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this secret does not own the layout (a shared link is read-only)",
        ));
    }
    let (updated,): (i64,) = sqlx::query_as(
        "UPDATE layouts SET layout = $2, updated_at = now() WHERE id = $1
         RETURNING (extract(epoch FROM updated_at) * 1000)::bigint",
    )
    .bind(&id)
    .bind(&layout)
    .fetch_one(&app.pg)
    .await?;
    Ok(Json(
        json!({ "id": id, "layout": layout, "updated": updated }),
    ))
}
