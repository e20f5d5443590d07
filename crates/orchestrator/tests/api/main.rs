//! The orchestrator's API, called in-process against a fresh Postgres database per test and a
//! real s3-local, plus the tests that need real TCP (concurrent claimers) or the database layer
//! directly (compare-and-set interleaving).

mod archive;
mod auth;
mod bad_input;
mod claim;
mod claim_plan;
mod concurrency;
mod dashboard;
mod dashboard_browser;
mod fuzz;
mod harness;
mod heartbeat_timeout;
mod openapi;
mod presign;
mod reliability;
mod run;
mod serve;
mod stop;
mod tasks;
