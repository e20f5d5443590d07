//! Bearer authentication of the API endpoints.
//!
//! The scheme name is matched case-insensitively, as RFC 7235 says of every scheme (so
//! `bearer <key>` works too); the key itself is compared exactly. Both keys are hashed with
//! SHA-256 before the constant-time comparison, so neither the content nor the length of the
//! real key leaks through timing.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::{AppError, unauthorized};

/// Answers 401 unless the request carries `Authorization: Bearer <API_KEY>`.
pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    check_authorization(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| value.as_bytes()),
        state.config.api_key.expose(),
    )?;
    Ok(next.run(request).await)
}

/// Checks the raw `Authorization` header value against the API key.
pub fn check_authorization(header: Option<&[u8]>, api_key: &str) -> Result<(), AppError> {
    let Some(header) = header else {
        return Err(unauthorized(
            "missing Authorization header: send Authorization: Bearer <API_KEY>",
        ));
    };
    let token = match header.split_at_checked(7) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => token,
        _ => {
            return Err(unauthorized(
                "the Authorization header must use the Bearer scheme: send Authorization: Bearer <API_KEY>",
            ));
        }
    };
    if keys_match(token, api_key.as_bytes()) {
        Ok(())
    } else {
        Err(unauthorized(
            "wrong API key in the Authorization header: send the orchestrator's API_KEY",
        ))
    }
}

/// Compares two keys in time that depends on neither of them.
fn keys_match(given: &[u8], expected: &[u8]) -> bool {
    let given = Sha256::digest(given);
    let expected = Sha256::digest(expected);
    given.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_passes() {
        let key = "s3cret-key";
        let check = |header: Option<&str>| check_authorization(header.map(str::as_bytes), key);
        assert!(check(Some("Bearer s3cret-key")).is_ok());
        assert!(check(Some("bearer s3cret-key")).is_ok());
        assert!(check(Some("BEARER s3cret-key")).is_ok());
        for wrong in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer s3cret"),
            Some("Bearer s3cret-key2"),
            Some("Bearer  s3cret-key"),
            Some("Bearer s3cret-key "),
            Some("Basic s3cret-key"),
            Some("s3cret-key"),
        ] {
            let err = check(wrong).unwrap_err();
            assert_eq!(
                err.status(),
                axum::http::StatusCode::UNAUTHORIZED,
                "{wrong:?}"
            );
        }
    }
}
