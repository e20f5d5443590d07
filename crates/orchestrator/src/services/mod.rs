//! Services: what a request asks for, decided between the handlers (which parse the request
//! and answer it) and the queries of [`crate::db`].

pub mod claim;
pub mod runs;
pub mod tasks;
