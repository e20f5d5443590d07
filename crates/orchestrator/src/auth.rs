//! Bearer authentication of the API endpoints, with two kinds of key.
//!
//! The operator key (`API_KEY`: the master script) starts, stops and reads runs; the runner
//! key (`RUNNER_API_KEY`: every runner host) claims tasks and reports on the tasks it holds.
//! Neither opens the other's endpoints: a known key of the wrong kind is a 403 that says which
//! key the endpoint takes, any other key a 401.
//!
//! The scheme name is matched case-insensitively, as RFC 7235 says of every scheme (so
//! `bearer <key>` works too); the key itself is compared exactly. Keys are hashed with
//! SHA-256 before the constant-time comparison, so neither the content nor the length of the
//! real keys leaks through timing.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::{AppError, forbidden, unauthorized};
use crate::settings::Secret;

/// Who a key belongs to, and so which endpoints it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The master script and whoever runs it: start, stop and read runs.
    Operator,
    /// Runner hosts: claim tasks, and heartbeat, complete, fail, release and get upload URLs
    /// for the tasks they hold.
    Runner,
}

impl KeyKind {
    /// The setting that holds a key of this kind.
    pub fn setting(self) -> &'static str {
        match self {
            Self::Operator => "API_KEY",
            Self::Runner => "RUNNER_API_KEY",
        }
    }

    /// Who holds a key of this kind, for messages.
    fn holder(self) -> &'static str {
        match self {
            Self::Operator => "the operator key",
            Self::Runner => "a runner key",
        }
    }
}

/// The two keys the orchestrator knows.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    /// The operator key (`API_KEY`).
    pub operator: Secret,
    /// The runner key (`RUNNER_API_KEY`).
    pub runner: Secret,
}

impl ApiKeys {
    /// Both keys; refused when they are the same, which would give runners the operator's
    /// rights.
    pub fn new(operator: Secret, runner: Secret) -> Result<Self, &'static str> {
        if operator.expose() == runner.expose() {
            return Err(
                "RUNNER_API_KEY must differ from API_KEY: runner hosts get only the runner key",
            );
        }
        Ok(Self { operator, runner })
    }

    fn get(&self, kind: KeyKind) -> &Secret {
        match kind {
            KeyKind::Operator => &self.operator,
            KeyKind::Runner => &self.runner,
        }
    }
}

/// Answers 401 or 403 unless the request carries `Authorization: Bearer <API_KEY>`.
pub async fn require_operator_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    require(&state, KeyKind::Operator, request, next).await
}

/// Answers 401 or 403 unless the request carries `Authorization: Bearer <RUNNER_API_KEY>`.
pub async fn require_runner_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    require(&state, KeyKind::Runner, request, next).await
}

async fn require(
    state: &AppState,
    wanted: KeyKind,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    check_authorization(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| value.as_bytes()),
        &state.config.keys,
        wanted,
    )?;
    Ok(next.run(request).await)
}

/// Checks the raw `Authorization` header value for a key of the `wanted` kind.
pub fn check_authorization(
    header: Option<&[u8]>,
    keys: &ApiKeys,
    wanted: KeyKind,
) -> Result<(), AppError> {
    let setting = wanted.setting();
    let Some(header) = header else {
        return Err(unauthorized(format!(
            "missing Authorization header: send Authorization: Bearer <{setting}>"
        )));
    };
    let token = match header.split_at_checked(7) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => token,
        _ => {
            return Err(unauthorized(format!(
                "the Authorization header must use the Bearer scheme: send Authorization: Bearer <{setting}>"
            )));
        }
    };
    // Both comparisons always run, so the time does not tell which kind a key is.
    let is_wanted = keys_match(token, keys.get(wanted).expose().as_bytes());
    let other = match wanted {
        KeyKind::Operator => KeyKind::Runner,
        KeyKind::Runner => KeyKind::Operator,
    };
    let is_other = keys_match(token, keys.get(other).expose().as_bytes());
    if is_wanted {
        Ok(())
    } else if is_other {
        Err(forbidden(format!(
            "this endpoint takes {} ({setting}), not {}",
            wanted.holder(),
            other.holder()
        )))
    } else {
        Err(unauthorized(format!(
            "wrong API key in the Authorization header: send the orchestrator's {setting}"
        )))
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
    use axum::http::StatusCode;

    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new("s3cret-key".parse().unwrap(), "runner-key".parse().unwrap()).unwrap()
    }

    #[test]
    fn only_the_exact_key_passes() {
        let keys = keys();
        let check = |header: Option<&str>| {
            check_authorization(header.map(str::as_bytes), &keys, KeyKind::Operator)
        };
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
            assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
        }
    }

    #[test]
    fn a_key_of_the_other_kind_is_forbidden() {
        let keys = keys();
        let check =
            |header: &str, wanted| check_authorization(Some(header.as_bytes()), &keys, wanted);
        assert!(check("Bearer runner-key", KeyKind::Runner).is_ok());
        let err = check("Bearer runner-key", KeyKind::Operator).unwrap_err();
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            err.message(),
            "this endpoint takes the operator key (API_KEY), not a runner key"
        );
        let err = check("Bearer s3cret-key", KeyKind::Runner).unwrap_err();
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            err.message(),
            "this endpoint takes a runner key (RUNNER_API_KEY), not the operator key"
        );
        let err = check("Bearer nobody", KeyKind::Runner).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn the_two_keys_must_differ() {
        let same = ApiKeys::new("k".parse().unwrap(), "k".parse().unwrap());
        assert!(same.unwrap_err().contains("must differ"));
    }
}
