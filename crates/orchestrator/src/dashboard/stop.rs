//! `POST /dashboard/stop`: the dashboard's "End run early" button.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::HeaderMap;
use axum::response::Redirect;

use crate::AppState;
use crate::dashboard::csrf::{CsrfForm, check_csrf_token, check_origin};
use crate::dashboard::html::DashboardError;
use crate::dashboard::session::OperatorSession;
use crate::lifecycle;

/// Ends the running run early through the same [`lifecycle::stop_run`] as `POST /run/stop`,
/// after the Origin and CSRF checks; 303 back to the dashboard, whose event stream then shows
/// the run stopping and, once the archive is built, complete.
pub async fn end_run_early(
    State(state): State<AppState>,
    session: OperatorSession,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Redirect, DashboardError> {
    check_origin(&headers)?;
    let token = form.map(|Form(form)| form.csrf_token).unwrap_or_default();
    check_csrf_token(&session, &token)?;
    let stopped = lifecycle::stop_run(&state).await?;
    tracing::info!(
        run_id = stopped.run_id,
        "the operator ended the run early from the dashboard"
    );
    Ok(Redirect::to("/"))
}
