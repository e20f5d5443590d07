//! Operator sessions: a random token in an HttpOnly, SameSite=Strict cookie, its SHA-256 in
//! `operator_sessions` with the expiry (by the database clock) and the session's CSRF token.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::dashboard::html::DashboardError;
use crate::db::sessions;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "rcb_session";

/// How long a login lasts: a working day of watching a run, after which the operator logs in
/// again.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The session of a logged-in operator; extracting it from a request without one answers
/// 303 to `/login`.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    /// The SHA-256 (hex) of the cookie's token, the session's key.
    pub token_sha256: String,
    /// The CSRF token the session's forms carry.
    pub csrf_token: String,
}

impl FromRequestParts<AppState> for OperatorSession {
    type Rejection = DashboardError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        find_session(&parts.headers, state)
            .await?
            .ok_or(DashboardError::LoginRequired)
    }
}

/// The live session the request's cookie names, if any.
pub async fn find_session(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<OperatorSession>, DashboardError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    let session = sessions::get_session(&state.db, &sha256_hex(token)).await?;
    Ok(session.map(|session| OperatorSession {
        token_sha256: session.token_sha256,
        csrf_token: session.csrf_token,
    }))
}

/// The session token of the request's `Cookie` headers.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// A new random token: 32 bytes from a CSPRNG, as hex.
pub fn new_token() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// The SHA-256 of a token, as hex.
pub fn sha256_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether two secrets are equal, in time that depends on neither: both are hashed first, so
/// not even their lengths leak.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}

/// Whether the browser reached us over HTTPS: the reverse proxy that terminates TLS says so
/// with `X-Forwarded-Proto: https`. A client that sends it without a proxy only makes its own
/// cookie stricter.
pub fn request_is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    cookie(token, SESSION_TTL.as_secs(), secure)
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_session_cookie(secure: bool) -> HeaderValue {
    cookie("", 0, secure)
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("a cookie of hex digits is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; rcb_session=abc; b=2".parse().unwrap());
        assert_eq!(session_token(&headers), Some("abc"));
        headers.insert(header::COOKIE, "rcb_session=".parse().unwrap());
        assert_eq!(session_token(&headers), None);
        headers.insert(header::COOKIE, "other_rcb_session=x".parse().unwrap());
        assert_eq!(session_token(&headers), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let plain = session_cookie("t", false);
        assert_eq!(
            plain,
            "rcb_session=t; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict"
        );
        assert!(
            session_cookie("t", true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        let mut headers = HeaderMap::new();
        assert!(!request_is_https(&headers));
        headers.insert("x-forwarded-proto", "HTTPS, http".parse().unwrap());
        assert!(request_is_https(&headers));
    }

    #[test]
    fn tokens_are_random_and_secrets_compare_exactly() {
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 64);
        assert!(secrets_match("pw", "pw"));
        assert!(!secrets_match("pw", "pw "));
        assert!(!secrets_match("", "pw"));
    }
}
