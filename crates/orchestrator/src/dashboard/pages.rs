//! `GET /` (the dashboard) and `GET /dashboard/runs/{id}` (one past run).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::AppState;
use crate::dashboard::html::{DashboardError, HtmlTemplate};
use crate::dashboard::session::OperatorSession;
use crate::dashboard::view::{self, DashboardView, RunView};
use crate::db::{RunId, run_history};

/// The dashboard page. Its parts are the templates `_summary.html`, `_tasks.html` and
/// `_past_runs.html`, which the event stream sends again as Turbo Stream replacements.
#[derive(Template)]
#[template(path = "dashboard/index.html")]
pub struct DashboardTemplate {
    /// What the page shows.
    pub view: DashboardView,
    /// The session's CSRF token, for the stop and logout forms.
    pub csrf_token: String,
}

/// A past run, inside the Turbo Frame `past-run` of the dashboard.
#[derive(Template)]
#[template(path = "dashboard/past_run.html")]
pub struct PastRunTemplate {
    /// The run.
    pub run: RunView,
    /// The session's CSRF token, for the logout form.
    pub csrf_token: String,
}

/// The dashboard of the latest run.
pub async fn get_dashboard(
    State(state): State<AppState>,
    session: OperatorSession,
) -> Result<HtmlTemplate<DashboardTemplate>, DashboardError> {
    let view = view::load_dashboard(&state).await?;
    Ok(HtmlTemplate::new(DashboardTemplate {
        view,
        csrf_token: session.csrf_token,
    }))
}

/// One run by id, with its download link when its archive is ready.
pub async fn get_past_run(
    State(state): State<AppState>,
    session: OperatorSession,
    Path(id): Path<i64>,
) -> Result<HtmlTemplate<PastRunTemplate>, DashboardError> {
    let Some(run) = run_history::get_run(&state.db, RunId(id)).await? else {
        return Err(DashboardError::Refused(
            StatusCode::NOT_FOUND,
            format!("there is no run {id}: pick one from the dashboard's list of past runs"),
        ));
    };
    Ok(HtmlTemplate::new(PastRunTemplate {
        run: view::load_run(&state, run).await?,
        csrf_token: session.csrf_token,
    }))
}
