//! `GET /login`, `POST /login` and `POST /logout`.
//!
//! Logging in is Origin-checked but carries no CSRF token: there is no session yet to tie one
//! to, and a forged login could only log the forger's victim in with the real password.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::dashboard::csrf::{CsrfForm, check_csrf_token, check_origin};
use crate::dashboard::html::{DashboardError, HtmlTemplate};
use crate::dashboard::session::{
    OperatorSession, SESSION_TTL, cleared_session_cookie, find_session, new_token,
    request_is_https, secrets_match, session_cookie, sha256_hex,
};
use crate::db::sessions;

/// The login page.
#[derive(Template)]
#[template(path = "dashboard/login.html")]
pub struct LoginTemplate {
    /// Whether `OPERATOR_PASSWORD` is set; without it the page says how to set it.
    pub enabled: bool,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The operator password.
    #[serde(default)]
    pub password: String,
}

/// Shows the login form, or goes to the dashboard when already logged in.
pub async fn get_login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, DashboardError> {
    if find_session(&headers, &state).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(HtmlTemplate::new(LoginTemplate {
        enabled: state.dashboard.operator_password.is_some(),
        error: None,
    })
    .into_response())
}

/// Checks the password and starts a session: 303 to the dashboard, or the login page again
/// with 422 (wrong password) or 403 (no password configured, or another site's form).
pub async fn log_in_operator(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, DashboardError> {
    check_origin(&headers)?;
    let Some(expected) = &state.dashboard.operator_password else {
        return Ok(HtmlTemplate::with_status(
            StatusCode::FORBIDDEN,
            LoginTemplate {
                enabled: false,
                error: None,
            },
        )
        .into_response());
    };
    let password = form.map(|Form(form)| form.password).unwrap_or_default();
    if !secrets_match(&password, expected.expose()) {
        tracing::warn!("a dashboard login with a wrong password was refused");
        return Ok(HtmlTemplate::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            LoginTemplate {
                enabled: true,
                error: Some("wrong password: use the orchestrator's OPERATOR_PASSWORD".to_owned()),
            },
        )
        .into_response());
    }
    sessions::delete_expired_sessions(&state.db).await?;
    let token = new_token();
    let ttl = i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX);
    sessions::insert_session(&state.db, &sha256_hex(&token), &new_token(), ttl).await?;
    tracing::info!("an operator logged in to the dashboard");
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(&token, request_is_https(&headers)),
        )],
        Redirect::to("/"),
    )
        .into_response())
}

/// Ends the session: 303 to the login page.
pub async fn log_out_operator(
    State(state): State<AppState>,
    session: OperatorSession,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, DashboardError> {
    check_origin(&headers)?;
    let token = form.map(|Form(form)| form.csrf_token).unwrap_or_default();
    check_csrf_token(&session, &token)?;
    sessions::delete_session(&state.db, &session.token_sha256).await?;
    Ok((
        [(
            header::SET_COOKIE,
            cleared_session_cookie(request_is_https(&headers)),
        )],
        Redirect::to("/login"),
    )
        .into_response())
}
