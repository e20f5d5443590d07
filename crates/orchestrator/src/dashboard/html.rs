//! The `HtmlTemplate` response wrapper (after bors) and the dashboard's errors, answered as
//! HTML pages rather than the API's JSON.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::error::AppError;

/// The Content-Security-Policy of every page: nothing from other origins, no framing. Inline
/// styles are allowed because Turbo's progress bar inserts a `<style>` element.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// A rendered askama template as an HTML response with the dashboard's headers.
pub struct HtmlTemplate<T> {
    status: StatusCode,
    template: T,
}

impl<T: Template> HtmlTemplate<T> {
    /// A 200 page.
    pub fn new(template: T) -> Self {
        Self::with_status(StatusCode::OK, template)
    }

    /// A page with another status (a refused login answers 422, for instance).
    pub fn with_status(status: StatusCode, template: T) -> Self {
        Self { status, template }
    }
}

impl<T: Template> IntoResponse for HtmlTemplate<T> {
    fn into_response(self) -> Response {
        match self.template.render() {
            Ok(html) => {
                let mut response = (self.status, Html(html)).into_response();
                add_page_headers(&mut response);
                response
            }
            Err(err) => {
                tracing::error!(error = %err, "failed to render a dashboard template");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "failed to render the page: the orchestrator logged the cause",
                )
                    .into_response()
            }
        }
    }
}

/// Pages carry CSRF tokens and run state: never cached, never framed. `same-origin` keeps the
/// Referer that the Origin check falls back to.
pub fn add_page_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// The page of a refused or failed dashboard request.
#[derive(Template)]
#[template(path = "dashboard/error.html")]
pub struct ErrorTemplate {
    /// The status, shown as the heading.
    pub status: StatusCode,
    /// What was wrong and how to fix it.
    pub message: String,
}

/// Why a dashboard request did not get its page.
#[derive(Debug)]
pub enum DashboardError {
    /// No valid operator session: 303 to `/login`.
    LoginRequired,
    /// A request the operator can fix (403 for a failed Origin or CSRF check, 404, 409).
    Refused(StatusCode, String),
    /// An unexpected failure; logged, answered 500.
    Internal(anyhow::Error),
}

impl DashboardError {
    /// 403: a state-changing form failed its Origin or CSRF check.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Refused(StatusCode::FORBIDDEN, message.into())
    }
}

impl From<sqlx::Error> for DashboardError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(err).context("database query failed"))
    }
}

impl From<anyhow::Error> for DashboardError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

impl From<AppError> for DashboardError {
    fn from(err: AppError) -> Self {
        if err.status().is_server_error() {
            Self::Internal(anyhow::anyhow!("{err:?}"))
        } else {
            Self::Refused(err.status(), err.message().to_owned())
        }
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        match self {
            Self::LoginRequired => Redirect::to("/login").into_response(),
            Self::Refused(status, message) => {
                HtmlTemplate::with_status(status, ErrorTemplate { status, message }).into_response()
            }
            Self::Internal(err) => {
                tracing::error!(error = ?err, "dashboard request failed");
                let status = StatusCode::INTERNAL_SERVER_ERROR;
                HtmlTemplate::with_status(
                    status,
                    ErrorTemplate {
                        status,
                        message: "internal server error: the orchestrator logged the cause"
                            .to_owned(),
                    },
                )
                .into_response()
            }
        }
    }
}
