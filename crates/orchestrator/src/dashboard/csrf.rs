//! The checks of every form that changes state: the request's Origin (or, without one, its
//! Referer) must name this host, and the form must carry the session's CSRF token.
//!
//! `SameSite=Strict` already keeps the session cookie off cross-site requests; these checks
//! also refuse same-site attacks (another port or subdomain) and requests with forged tokens.

use axum::http::{HeaderMap, header};
use serde::Deserialize;

use crate::dashboard::html::DashboardError;
use crate::dashboard::session::{OperatorSession, secrets_match};

/// The body of a form that carries only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token, from the form's hidden field.
    #[serde(default)]
    pub csrf_token: String,
}

/// Refuses a request whose Origin is not this host. Browsers send `Origin` with every POST;
/// when it is absent, the `Referer` must be present and name this host instead.
pub fn check_origin(headers: &HeaderMap) -> Result<(), DashboardError> {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| DashboardError::forbidden("the request has no Host header"))?;
    let (what, url) = match headers.get(header::ORIGIN) {
        Some(origin) => ("Origin", origin),
        None => match headers.get(header::REFERER) {
            Some(referer) => ("Referer", referer),
            None => {
                return Err(DashboardError::forbidden(
                    "the form came without an Origin or Referer header: submit it from the dashboard's own page",
                ));
            }
        },
    };
    let authority = url.to_str().ok().and_then(authority_of);
    if authority.is_some_and(|authority| authority.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(DashboardError::forbidden(format!(
            "the form was sent from another site ({what} {}) than this one ({host}): submit it from the dashboard's own page",
            String::from_utf8_lossy(url.as_bytes())
        )))
    }
}

/// The `host[:port]` of an `http(s)://host[:port][/...]` URL.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty() && !authority.contains('@')).then_some(authority)
}

/// Refuses a form without the session's CSRF token.
pub fn check_csrf_token(session: &OperatorSession, given: &str) -> Result<(), DashboardError> {
    if !given.is_empty() && secrets_match(given, &session.csrf_token) {
        Ok(())
    } else {
        Err(DashboardError::forbidden(
            "the form's CSRF token is missing or out of date: reload the dashboard and try again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_this_host_passes_the_origin_check() {
        let ok = [
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ]),
            headers(&[("host", "rcb.example"), ("origin", "https://RCB.example")]),
            headers(&[
                ("host", "rcb.example"),
                ("referer", "https://rcb.example/x?y"),
            ]),
        ];
        for headers in ok {
            assert!(check_origin(&headers).is_ok(), "{headers:?}");
        }
        let refused = [
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9090"),
            ]),
            headers(&[("host", "rcb.example"), ("origin", "null")]),
            headers(&[("host", "rcb.example"), ("origin", "https://evil.example")]),
            headers(&[
                ("host", "rcb.example"),
                ("origin", "https://rcb.example@evil"),
            ]),
            headers(&[("host", "rcb.example")]),
            headers(&[("origin", "https://rcb.example")]),
            headers(&[
                ("host", "rcb.example"),
                ("referer", "https://evil.example/"),
            ]),
            // A present Origin decides even when the Referer would pass.
            headers(&[
                ("host", "rcb.example"),
                ("origin", "https://evil.example"),
                ("referer", "https://rcb.example/"),
            ]),
        ];
        for headers in refused {
            assert!(check_origin(&headers).is_err(), "{headers:?}");
        }
    }
}
