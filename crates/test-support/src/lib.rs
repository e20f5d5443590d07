//! Real-component test harness. Postgres and s3-local run in containers started with
//! testcontainers from the images `cargo xtask images` builds (never pulled), published
//! on 127.0.0.1 only, labelled with the project's label, and removed when the test
//! process exits. Each test gets a fresh database and, when it asks, a fresh bucket.
//! [`TestOrchestrator`] (feature `orchestrator`, on by default) is the orchestrator's app on
//! them, in-process or served, for every test and benchmark that needs one.
//!
//! The containers are shared by all tests of one test binary: they are started once on
//! a runtime of their own, because each `#[tokio::test]` has a runtime that ends with
//! the test.

pub mod browser;
mod containers;
#[cfg(feature = "orchestrator")]
mod orchestrator;
mod postgres;
pub mod python;
mod s3;

#[cfg(feature = "orchestrator")]
pub use self::orchestrator::{
    DEFAULT_API_KEY, DEFAULT_RUNNER_KEY, TestOrchestrator, TestOrchestratorBuilder,
};
pub use containers::session_label;
pub use local_stack::{ImageCatalog, catalog, check_docker};
pub use postgres::{TestDatabase, fresh_database};
pub use s3::{S3Server, TestBucket, fresh_bucket, s3_server};
