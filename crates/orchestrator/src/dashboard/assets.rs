//! The dashboard's static files, served by the orchestrator itself (no CDN).

use axum::http::header;
use axum::response::IntoResponse;

/// Where turbo.js is served; the version in the path lets browsers cache it for good.
pub const TURBO_PATH: &str = "/assets/turbo-8.0.23.js";

/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/assets/dashboard.css";

/// `package/dist/turbo.es2017-esm.js` of `@hotwired/turbo` 8.0.23, checked against the npm
/// tarball's integrity and unpacked by `build.rs`; the repository holds no copy.
pub const TURBO_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/turbo.es2017-esm.js"));

/// The dashboard's own stylesheet.
pub const STYLESHEET: &str = include_str!("../../assets/dashboard.css");

/// Serves turbo.js with a year-long, immutable cache: its path changes with its version.
pub async fn get_turbo_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        TURBO_JS,
    )
}

/// Serves the stylesheet; its path does not change with its content, so browsers check again
/// after an hour.
pub async fn get_dashboard_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}
