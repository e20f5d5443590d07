//! The site builder's integration tests, in one binary: parsers, whole builds with snapshots,
//! and a headless Chromium check of the built index.

mod browser;
mod build;
mod parse;
