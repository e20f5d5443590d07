//! The site builder's integration tests, in one binary: parsers, whole builds with snapshots,
//! fish/prices.fish on captured price API answers, and a headless Chromium check of the site.

mod browser;
mod build;
mod parse;
mod prices_api;
