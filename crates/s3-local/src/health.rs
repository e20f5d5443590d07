//! The unauthenticated health endpoint, served beside the S3 API.

use hyper::http::Extensions;
use hyper::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

/// Path of the health endpoint. Bucket names cannot start with `_`, so it never
/// shadows a bucket.
pub const HEALTH_PATH: &str = "/_health";

/// Answers `GET /_health` with `ok`, without credentials.
pub(crate) struct HealthRoute;

#[async_trait::async_trait]
impl S3Route for HealthRoute {
    fn is_match(&self, method: &Method, uri: &Uri, _: &HeaderMap, _: &mut Extensions) -> bool {
        method == Method::GET && uri.path() == HEALTH_PATH
    }

    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        // Health checks come from Docker and test harnesses that hold no keys.
        Ok(())
    }

    async fn call(&self, _req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        Ok(S3Response::new(Body::from("ok".to_owned())))
    }
}
