//! Every route of the orchestrator, in one place.
//!
//! Routes are registered through [`Routes`], which records each method and path, so that
//! [`endpoints`] lists exactly what the router serves (the test of `openapi.json` compares the
//! two).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};

use crate::AppState;
use crate::auth::{KeyKind, require_operator_key, require_runner_key};
use crate::dashboard::{assets, login, pages, stop, stream};
use crate::extract::MAX_BODY_BYTES;
use crate::routes::{claim, health, openapi, route_not_found, run, tasks, wrong_method};

/// The orchestrator's HTTP app: the API behind bearer authentication, `GET /health`,
/// `GET /openapi.json` and the operator's dashboard (its own session login).
pub fn create_app(state: AppState) -> Router {
    // A route layer runs before the handler's extractors, so authentication (401, 403) is
    // checked before the body (400, 413).
    let operator = operator_routes()
        .router
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_operator_key,
        ));
    let runner = runner_routes()
        .router
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_runner_key,
        ));
    Router::new()
        .merge(operator)
        .merge(runner)
        .merge(public_routes().router)
        .merge(dashboard_routes().router)
        .fallback(route_not_found)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Every method and path the app serves.
pub fn endpoints() -> Vec<(Method, &'static str)> {
    let mut endpoints = operator_routes().endpoints;
    endpoints.extend(runner_routes().endpoints);
    endpoints.extend(public_routes().endpoints);
    endpoints.extend(dashboard_routes().endpoints);
    endpoints
}

/// The endpoints that need a key, with the kind each takes.
pub fn keyed_endpoints() -> Vec<(Method, &'static str, KeyKind)> {
    let keyed = |routes: Routes, kind| {
        routes
            .endpoints
            .into_iter()
            .map(move |(method, path)| (method, path, kind))
    };
    keyed(operator_routes(), KeyKind::Operator)
        .chain(keyed(runner_routes(), KeyKind::Runner))
        .collect()
}

/// The endpoints that need the operator key, `Authorization: Bearer <API_KEY>`.
fn operator_routes() -> Routes {
    Routes::default()
        .post("/run/start", run::start_run)
        .get("/run", run::get_run)
        .post("/run/stop", run::stop_run)
}

/// The endpoints that need the runner key, `Authorization: Bearer <RUNNER_API_KEY>`.
fn runner_routes() -> Routes {
    Routes::default()
        .post("/tasks/claim", claim::claim_task)
        .post("/tasks/{id}/heartbeat", tasks::record_heartbeat)
        .post("/tasks/{id}/complete", tasks::complete_task)
        .post("/tasks/{id}/fail", tasks::fail_task)
        .post("/tasks/{id}/upload-urls", tasks::get_upload_urls)
        .post("/tasks/{id}/release", tasks::release_task)
}

/// The endpoints anyone may call.
fn public_routes() -> Routes {
    Routes::default()
        .get("/health", health::get_health)
        .get("/openapi.json", openapi::get_openapi)
}

/// The dashboard's pages and assets; pages need an operator session (else 303 to `/login`),
/// and their forms a CSRF token and a matching Origin (see `crate::dashboard`).
fn dashboard_routes() -> Routes {
    Routes::default()
        .get("/", pages::get_dashboard)
        .get("/dashboard/runs/{id}", pages::get_past_run)
        .get("/dashboard/stream", stream::stream_dashboard)
        .post("/dashboard/stop", stop::end_run_early)
        .get("/login", login::get_login_page)
        .post("/login", login::log_in_operator)
        .post("/logout", login::log_out_operator)
        .get(assets::TURBO_PATH, assets::get_turbo_js)
        .get(assets::STYLESHEET_PATH, assets::get_dashboard_css)
}

/// A router that remembers what it routes.
#[derive(Default)]
struct Routes {
    router: Router<AppState>,
    endpoints: Vec<(Method, &'static str)>,
}

impl Routes {
    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.route(Method::GET, path, get(handler))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.route(Method::POST, path, post(handler))
    }

    fn route(mut self, method: Method, path: &'static str, route: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, route);
        self.endpoints.push((method, path));
        self
    }
}
