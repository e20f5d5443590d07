//! The unauthenticated health endpoint, answered before a request reaches s3s.

use std::future::Future;
use std::pin::Pin;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use s3s::Body;
use s3s::service::S3Service;

/// Path of the health endpoint. Bucket names cannot start with `_`, so it never
/// shadows a bucket (and s3s would refuse it as a bucket name before any route).
pub const HEALTH_PATH: &str = "/_health";

/// The S3 service with `GET /_health` answered `ok` without credentials, for Docker
/// health checks and harnesses that hold no keys.
#[derive(Clone)]
pub(crate) struct WithHealth(pub S3Service);

impl hyper::service::Service<Request<Incoming>> for WithHealth {
    type Response = Response<Body>;
    type Error = s3s::HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        if request.method() == Method::GET && request.uri().path() == HEALTH_PATH {
            return Box::pin(async { Ok(Response::new(Body::from("ok".to_owned()))) });
        }
        let s3 = self.0.clone();
        Box::pin(async move { hyper::service::Service::call(&s3, request).await })
    }
}
