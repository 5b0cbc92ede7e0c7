//! Errors as HTTP statuses.
//!
//! The mapping goes by [`ErrorKind`], never by message: a database message
//! can quote SQL, row values or (in connection errors) a server address,
//! so it goes to the log with the request's span and never into a
//! response. Every body is one of a few fixed JSON objects
//! (`{"error": CODE, "message": TEXT}`); the `x-request-id` response header
//! ties it to the log line.
//!
//! | kind | status |
//! |---|---|
//! | `UniqueViolation` | 409 Conflict |
//! | `PoolTimeout`, `Disconnected` | 503 Service Unavailable, `Retry-After: 1` |
//! | `CommitUnknown` | 500, code `outcome_unknown`: the change may or may not be saved |
//! | `NotFound` | 404 |
//! | anything else | 500, code `internal` |

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use diesel_facade::ErrorKind;
use serde::Serialize;

/// What a handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// From the database, mapped by its kind.
    Database(diesel_facade::Error),
    /// The request asks for something that does not exist.
    NotFound,
    /// The request is well-formed JSON but not a valid request: the text
    /// is fixed by the handler, never taken from the input.
    Invalid(&'static str),
}

impl From<diesel_facade::Error> for ApiError {
    fn from(err: diesel_facade::Error) -> Self {
        ApiError::Database(err)
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        ApiError::Database(err.into())
    }
}

#[derive(Serialize)]
struct Body {
    error: &'static str,
    message: &'static str,
}

fn reply(status: StatusCode, error: &'static str, message: &'static str) -> Response {
    (status, Json(Body { error, message })).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = match self {
            ApiError::NotFound => return reply(StatusCode::NOT_FOUND, "not_found", "no such item"),
            ApiError::Invalid(why) => {
                return reply(StatusCode::UNPROCESSABLE_ENTITY, "invalid", why)
            }
            ApiError::Database(err) => err,
        };
        match err.kind() {
            ErrorKind::UniqueViolation => {
                tracing::info!(error = %err, "conflict");
                reply(
                    StatusCode::CONFLICT,
                    "conflict",
                    "an item with that name already exists",
                )
            }
            ErrorKind::NotFound => reply(StatusCode::NOT_FOUND, "not_found", "no such item"),
            ErrorKind::PoolTimeout | ErrorKind::Disconnected => {
                tracing::warn!(error = %err, "database unavailable");
                let mut response = reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is busy or unreachable; retry shortly",
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            ErrorKind::CommitUnknown => {
                tracing::error!(error = %err, "commit outcome unknown");
                reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "outcome_unknown",
                    "the connection to the database was lost while saving: the change may or \
                     may not have been saved; check before retrying",
                )
            }
            _ => {
                tracing::error!(error = %err, "database error");
                reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel_facade::Error;

    /// A message as bad as a database error can get.
    const LEAKY: &str = "SELECT secret FROM items WHERE name = 'x' \
                         (postgres://app:hunter2@db.internal:5432/app)";

    async fn respond(kind: ErrorKind) -> (StatusCode, Option<String>, String) {
        let response = ApiError::from(Error::new(kind, LEAKY)).into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (
            status,
            retry_after,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn assert_opaque(body: &str) {
        for secret in [
            "SELECT",
            "secret",
            "hunter2",
            "postgres",
            "db.internal",
            "5432",
        ] {
            assert!(!body.contains(secret), "{secret:?} leaked into {body}");
        }
    }

    #[tokio::test]
    async fn every_kind_maps_to_its_status_without_leaking_the_message() {
        let cases = [
            (
                ErrorKind::UniqueViolation,
                StatusCode::CONFLICT,
                None,
                "conflict",
            ),
            (
                ErrorKind::PoolTimeout,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("1"),
                "unavailable",
            ),
            (
                ErrorKind::Disconnected,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("1"),
                "unavailable",
            ),
            (
                ErrorKind::CommitUnknown,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "outcome_unknown",
            ),
            (
                ErrorKind::NotFound,
                StatusCode::NOT_FOUND,
                None,
                "not_found",
            ),
            (
                ErrorKind::Deadlock,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "internal",
            ),
            (
                ErrorKind::Config,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "internal",
            ),
            (
                ErrorKind::Other,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "internal",
            ),
        ];
        for (kind, status, retry_after, code) in cases {
            let (got_status, got_retry_after, body) = respond(kind).await;
            assert_eq!(got_status, status, "{kind:?}");
            assert_eq!(got_retry_after.as_deref(), retry_after, "{kind:?}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"], code, "{kind:?}: {body}");
            assert_opaque(&body);
        }
        let (_, _, body) = respond(ErrorKind::CommitUnknown).await;
        assert!(body.contains("may or may not have been saved"), "{body}");
    }
}
