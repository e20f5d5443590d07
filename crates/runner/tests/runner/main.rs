//! The runner against real components: an orchestrator served on 127.0.0.1 over a fresh
//! Postgres database, s3-local, the Docker engine, the Ruby image `cargo xtask images`
//! built and ruby-bench-mini. The cloud metadata lookup runs against a stand-in.

mod harness;
mod metadata;
mod source;
mod tasks;
