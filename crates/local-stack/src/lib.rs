//! The local provider's stack: Postgres, s3-local, the orchestrator and one runner
//! container per local instance type, on this machine's Docker engine. The same module
//! serves `cargo xtask local up|down`, `cargo xtask e2e-local` and the master script's
//! local path (through `cargo xtask local up`).
//!
//! Every container uses host networking and listens on a free 127.0.0.1 port, so every
//! service is `127.0.0.1:PORT` for everyone: the runner containers, the master script on
//! the host, and the presigned URLs signed for s3-local. Benchmark containers themselves
//! get no network.

mod docker;
mod images;
mod plan;
mod stack;

pub use docker::{check_docker, remove_labelled};
pub use images::{ImageCatalog, catalog};
pub use plan::{RunnerPlan, plan_runners};
pub use stack::{LocalStack, STACK_LABEL, StackOptions};
