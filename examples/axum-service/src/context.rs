//! The request context and the middleware that builds it.
//!
//! Per request, [`request_context`] builds a [`RequestContext`]: a request
//! id (the client's `x-request-id` if it is sane, else a fresh one), the
//! user (here the `x-user` header: put your authentication there), a clone
//! of the facade, and the read position restored from the `db_pos` cookie.
//! Handlers take the context as an extractor and pass it to
//! [`run_blocking`](diesel_facade::run_blocking).
//!
//! Read-your-writes across requests: when the handler is done with the
//! context (it is dropped), the context reports its final read position to
//! the middleware, which sets the cookie if the position changed (the user
//! wrote) and clears it if the cookie was not a valid position. The token is
//! untrusted when it comes back: `ReadPosition::from_token` parses it
//! strictly, and the facade checks a parsed position against the primary
//! before waiting for it.

use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use diesel::PgConnection;
use diesel_facade::{Facade, ReadPosition, TransactionContext};
use tracing::Instrument;

/// The cookie that carries the read position to the user's next request.
pub const POSITION_COOKIE: &str = "db_pos";

/// The request id header, read from the request and set on every response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Who is asking. A stand-in for real authentication.
pub static USER: HeaderName = HeaderName::from_static("x-user");

/// What the data-access functions get instead of a connection.
#[derive(TransactionContext)]
pub struct RequestContext {
    pub request_id: String,
    pub user: Option<String>,
    #[facade]
    pub db: Facade<PgConnection>,
    /// Where this user's last write is; replica reads wait for it.
    #[read_position]
    pub position: ReadPosition,
    /// Where the position goes when the context is done with.
    report: Arc<OnceLock<Option<String>>>,
}

impl Drop for RequestContext {
    fn drop(&mut self) {
        let _ = self.report.set(self.position.token());
    }
}

/// The context waits in the request's extensions until a handler takes it
/// (extensions must be `Clone`; the context is not, so that its position
/// has one owner).
#[derive(Clone)]
struct ContextSlot(Arc<Mutex<Option<RequestContext>>>);

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ContextSlot>()
            .and_then(|slot| slot.0.lock().ok()?.take())
            .ok_or((
                StatusCode::INTERNAL_SERVER_ERROR,
                "no request context: is the request_context middleware installed?",
            ))
    }
}

/// The middleware: build the context, run the handler in a span named
/// after the request, then set the request id header and the position
/// cookie on the response.
pub async fn request_context(
    State(db): State<Facade<PgConnection>>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = header_token(request.headers(), &REQUEST_ID)
        .unwrap_or_else(|| format!("{:016x}", fastrand::u64(..)));
    let user = header_token(request.headers(), &USER);
    let cookie = position_cookie(request.headers());
    let position = cookie
        .as_deref()
        .and_then(|token| ReadPosition::from_token(token).ok())
        .unwrap_or_default();
    let report = Arc::new(OnceLock::new());
    let ctx = RequestContext {
        request_id: request_id.clone(),
        user,
        db,
        position,
        report: Arc::clone(&report),
    };
    request
        .extensions_mut()
        .insert(ContextSlot(Arc::new(Mutex::new(Some(ctx)))));

    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID.clone(), value);
    }
    // `None`: the context is still alive somewhere (moved into a task that
    // outlives the response); leave the cookie as it is.
    if let Some(outgoing) = report.get() {
        if let Some(value) = cookie_update(cookie.as_deref(), outgoing.as_deref()) {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}

/// The `Set-Cookie` value that moves the client from `incoming` to
/// `outgoing`, if anything changes.
fn cookie_update(incoming: Option<&str>, outgoing: Option<&str>) -> Option<HeaderValue> {
    if incoming == outgoing {
        return None;
    }
    // Add `; Secure` when the service is behind TLS.
    let cookie = match outgoing {
        Some(token) => format!(
            "{POSITION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
            encode_cookie_value(token)
        ),
        None => format!("{POSITION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    };
    HeaderValue::from_str(&cookie).ok()
}

/// A short header value of `[A-Za-z0-9._-]`, or `None`: request ids and
/// user names end up in logs, so nothing else is taken from the client.
fn header_token(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    let sane = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    sane.then(|| value.to_owned())
}

/// The decoded value of the position cookie, if the request has one.
fn position_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == POSITION_COOKIE)
        .map(|(_, value)| decode_cookie_value(value).unwrap_or_default())
}

/// Whether RFC 6265 allows `byte` in a cookie value as it is (`%` is kept
/// for the escapes). A MariaDB GTID list has commas, which it does not.
fn cookie_safe(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E) && byte != b'%'
}

fn encode_cookie_value(token: &str) -> String {
    token
        .bytes()
        .map(|b| {
            if cookie_safe(b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The inverse of [`encode_cookie_value`]; `None` for a malformed escape
/// (the cookie is then treated as invalid, and cleared).
fn decode_cookie_value(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_round_trip_every_token_form() {
        for token in [
            "pg:16/B374D848",
            "gtid:0-1-42,1-2-7",
            "galera:1234",
            "written",
        ] {
            let encoded = encode_cookie_value(token);
            assert!(
                encoded.bytes().all(|b| cookie_safe(b) || b == b'%'),
                "{encoded}"
            );
            assert_eq!(decode_cookie_value(&encoded).as_deref(), Some(token));
        }
        assert_eq!(
            encode_cookie_value("gtid:0-1-42,1-2-7"),
            "gtid:0-1-42%2C1-2-7"
        );
        assert_eq!(decode_cookie_value("pg:%zz"), None);
        assert_eq!(decode_cookie_value("pg:%2"), None);
    }

    #[test]
    fn the_cookie_changes_only_when_the_position_does() {
        assert!(cookie_update(Some("pg:0/1"), Some("pg:0/1")).is_none());
        assert!(cookie_update(None, None).is_none());
        let set = cookie_update(None, Some("pg:0/2")).unwrap();
        assert!(set.to_str().unwrap().starts_with("db_pos=pg:0/2; "));
        let clear = cookie_update(Some("garbage"), None).unwrap();
        assert!(clear.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn only_sane_header_tokens_are_taken() {
        let mut headers = HeaderMap::new();
        headers.insert(USER.clone(), HeaderValue::from_static("alice-1"));
        assert_eq!(header_token(&headers, &USER).as_deref(), Some("alice-1"));
        headers.insert(USER.clone(), HeaderValue::from_static("alice'; --"));
        assert_eq!(header_token(&headers, &USER), None);
    }

    #[test]
    fn the_position_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; db_pos=pg:0/16B3740; b=2"),
        );
        assert_eq!(position_cookie(&headers).as_deref(), Some("pg:0/16B3740"));
        headers.clear();
        headers.append(COOKIE, HeaderValue::from_static("db_pos=%"));
        assert_eq!(position_cookie(&headers).as_deref(), Some(""));
    }
}
