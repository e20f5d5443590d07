//! The system through its scripts: the Fish master script against the real local stack
//! (Postgres, s3-local and the orchestrator in the containers `cargo xtask images` built),
//! with a scripted runner speaking the task API where a test needs failures on cue.

mod cloud;
mod deploy_images;
mod faults;
mod harness;
mod hosts;
mod lab;
mod master;
mod moto;
mod rehearsal;
mod runs;
mod scripted_runner;
