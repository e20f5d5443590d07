//! The results website: reads a `results/` tree and writes a static site with statistics,
//! inline SVG charts and CSV/JSON downloads.
//!
//! - [`load`]: finds and reads task folders, reporting what it cannot read.
//! - [`report`]: parses ruby-bench's text table and JSON raw data.
//! - [`stats`]: log-time estimates, Welch intervals, t quantiles.
//! - [`analysis`]: per-run views: estimates, ratios, ties, geomeans, provenance, flags.
//! - [`prices`]: the price tables; [`analysis::value`]: price-performance; [`analysis::yjit`]: YJIT's gains;
//!   [`verdict`]: the run's answer in words.
//! - [`charts`], [`pages`], [`export`]: SVG, HTML and CSV/JSON output.
//! - [`build`]: the whole build.
//!
//! The build benchmark and its synthetic results tree live in `crates/bench` (`cargo xtask bench
//! site`), out of the production binary.

pub mod analysis;
pub mod build;
pub mod charts;
pub mod export;
pub mod load;
pub mod pages;
pub mod prices;
pub mod report;
pub mod stats;
pub mod verdict;

pub use build::{BuildReport, BuildSettings, build};
