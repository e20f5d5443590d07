//! ruby-bench's reports: the text table (`.txt`, and the end of stdout) and the JSON raw data.
//!
//! Both parse into a [`Report`]: one [`Measurement`] per executable (mode) and benchmark, plus
//! the (mode, benchmark) pairs that failed. The JSON has every iteration time; the text table
//! has only the mean and the relative standard deviation, so statistics prefer the JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// One benchmark under one executable in one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The mean of the non-warmup iterations, in milliseconds.
    pub mean_ms: f64,
    /// The population standard deviation of those iterations, in percent of the mean.
    pub stddev_pct: f64,
    /// Every non-warmup iteration time in milliseconds; empty when read from a text table.
    pub iterations_ms: Vec<f64>,
    /// The resident set size at the end of the benchmark, in MiB, when reported.
    pub rss_mib: Option<f64>,
}

impl Measurement {
    /// Computes the mean and population standard deviation from iteration times.
    pub fn from_iterations(iterations_ms: Vec<f64>, rss_mib: Option<f64>) -> Option<Self> {
        if iterations_ms.is_empty() || iterations_ms.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
            return None;
        }
        let n = iterations_ms.len() as f64;
        let mean = iterations_ms.iter().sum::<f64>() / n;
        let var = iterations_ms
            .iter()
            .map(|t| (t - mean).powi(2))
            .sum::<f64>()
            / n;
        Some(Self {
            mean_ms: mean,
            stddev_pct: 100.0 * var.sqrt() / mean,
            iterations_ms,
            rss_mib,
        })
    }
}

/// Where a task's numbers were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// ruby-bench's JSON raw data (exact iteration times).
    Json,
    /// A text table (`.txt` report or stdout): means and stddevs only.
    Text,
}

impl Source {
    /// A short label for pages and CSV.
    pub fn label(self) -> &'static str {
        match self {
            Source::Json => "json",
            Source::Text => "txt",
        }
    }
}

/// What one ruby-bench report holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The executables (modes) in the report's order, e.g. `interp`, `yjit`.
    pub modes: Vec<String>,
    /// `ruby -v` of each executable.
    pub descriptions: BTreeMap<String, String>,
    /// The numbers, keyed by (mode, benchmark).
    pub measurements: BTreeMap<(String, String), Measurement>,
    /// (mode, benchmark) pairs that failed (`N/A` cells, or missing from the raw data).
    pub failed: BTreeSet<(String, String)>,
    /// The harness section of each benchmark, when the text report had several.
    pub harness: BTreeMap<String, String>,
    /// Where the numbers came from.
    pub source: Source,
}

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The text holds no ruled table with a `bench` column and `(ms)` columns.
    #[error(
        "no ruby-bench results table found (expected a table ruled by dashes with `bench` and `<mode> (ms)` columns)"
    )]
    NoTable,
    /// A cell of a time column is neither `N/A` nor `mean ± stddev%`.
    #[error(
        "line {line}: cannot read {cell:?} in column {column:?} (expected `mean ± stddev%` or `N/A`)"
    )]
    BadCell {
        /// The 1-based line number.
        line: usize,
        /// The column header.
        column: String,
        /// The cell's text.
        cell: String,
    },
    /// The JSON is not ruby-bench's raw data.
    #[error("not ruby-bench JSON raw data: {0}")]
    Json(String),
}

/// A table cell of a time column.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TimeCell {
    Failed,
    Time { mean_ms: f64, stddev_pct: f64 },
}

fn parse_time_cell(cell: &str) -> Option<TimeCell> {
    if cell == "N/A" {
        return Some(TimeCell::Failed);
    }
    let (mean, stddev) = cell.split_once('±')?;
    let mean_ms = mean.trim().parse().ok()?;
    let stddev_pct = stddev.trim().strip_suffix('%')?.trim().parse().ok()?;
    Some(TimeCell::Time {
        mean_ms,
        stddev_pct,
    })
}

/// True for a rule line: dashes separated by spaces, nothing else.
fn is_rule(line: &str) -> bool {
    line.starts_with('-') && line.chars().all(|c| c == '-' || c == ' ')
}

/// The character spans of the columns of a rule line, as `[start, end)` pairs.
fn column_spans(rule: &[char]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, &c) in rule.iter().enumerate() {
        match (c == '-', start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, rule.len()));
    }
    spans
}

/// Cuts a line into cells at the rule's column boundaries. A cell runs from its column's start
/// to the next column's start, so right-aligned cells wider than expected are still whole.
/// Boundaries count characters, not bytes: `±` is two bytes in UTF-8.
fn split_cells(line: &str, spans: &[(usize, usize)]) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    spans
        .iter()
        .enumerate()
        .map(|(i, &(start, _))| {
            let end = spans.get(i + 1).map_or(chars.len(), |next| next.0);
            let (start, end) = (start.min(chars.len()), end.min(chars.len()));
            chars[start..end]
                .iter()
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .collect()
}

/// Reads ruby-bench's text report, alone (`.txt`) or at the end of its stdout.
///
/// Every ruled table whose header has a `bench` column and `<mode> (ms)` columns contributes
/// rows; a title line right above a table (`harness-gc:`) names the harness of its rows;
/// `GC summary` tables and every other column (ratios, p-values, stars) are ignored.
pub fn parse_text(text: &str) -> Result<Report, ReportError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut report = Report {
        modes: Vec::new(),
        descriptions: BTreeMap::new(),
        measurements: BTreeMap::new(),
        failed: BTreeSet::new(),
        harness: BTreeMap::new(),
        source: Source::Text,
    };
    let mut i = 0;
    let mut title: Option<&str> = None;
    let mut found = false;
    while i < lines.len() {
        let line = lines[i];
        if !is_rule(line) {
            if !line.trim().is_empty() {
                title = Some(line.trim());
            }
            if !found && let Some((name, desc)) = line.split_once(": ") {
                let simple = !name.is_empty() && !name.contains(char::is_whitespace);
                if simple && desc.starts_with("ruby ") {
                    report
                        .descriptions
                        .insert(name.to_owned(), desc.trim().to_owned());
                }
            }
            i += 1;
            continue;
        }
        // A table: rule, header, rows, rule.
        let rule_at = i;
        let rule: Vec<char> = line.chars().collect();
        let spans = column_spans(&rule);
        let end = (i + 1..lines.len())
            .find(|&j| is_rule(lines[j]))
            .unwrap_or(lines.len());
        let table_title = title.take();
        let header = lines.get(i + 1).map(|h| split_cells(h, &spans));
        i = end + 1;
        let Some(header) = header else { continue };
        if table_title.is_some_and(|t| t.starts_with("GC summary"))
            || header.first().map(String::as_str) != Some("bench")
        {
            continue;
        }
        let harness = table_title
            .and_then(|t| t.strip_suffix(':'))
            .filter(|t| t.starts_with("harness"))
            .map(str::to_owned);
        // Time columns are `<mode> (ms)`; an `RSS (MiB)` column belongs to the time column
        // before it.
        let mut time_columns = Vec::new();
        let mut rss_columns = BTreeMap::new();
        for (c, name) in header.iter().enumerate() {
            if let Some(mode) = name.strip_suffix(" (ms)") {
                time_columns.push((c, mode.to_owned()));
            } else if name == "RSS (MiB)"
                && let Some((_, mode)) = time_columns.last()
            {
                rss_columns.insert(mode.clone(), c);
            }
        }
        if time_columns.is_empty() {
            continue;
        }
        found = true;
        for (_, mode) in &time_columns {
            if !report.modes.contains(mode) {
                report.modes.push(mode.clone());
            }
        }
        for (j, row_line) in lines.iter().enumerate().take(end).skip(rule_at + 2) {
            if row_line.trim().is_empty() {
                continue;
            }
            let cells = split_cells(row_line, &spans);
            let bench = cells[0].clone();
            if let Some(h) = &harness {
                report.harness.insert(bench.clone(), h.clone());
            }
            for (c, mode) in &time_columns {
                let cell = cells.get(*c).map(String::as_str).unwrap_or("");
                let key = (mode.clone(), bench.clone());
                match parse_time_cell(cell) {
                    Some(TimeCell::Failed) => {
                        report.failed.insert(key);
                    }
                    Some(TimeCell::Time {
                        mean_ms,
                        stddev_pct,
                    }) => {
                        let rss_mib = rss_columns
                            .get(mode)
                            .and_then(|&rc| cells.get(rc))
                            .and_then(|s| s.parse().ok());
                        report.measurements.insert(
                            key,
                            Measurement {
                                mean_ms,
                                stddev_pct,
                                iterations_ms: Vec::new(),
                                rss_mib,
                            },
                        );
                    }
                    None => {
                        return Err(ReportError::BadCell {
                            line: j + 1,
                            column: header[*c].clone(),
                            cell: cell.to_owned(),
                        });
                    }
                }
            }
        }
    }
    if !found {
        return Err(ReportError::NoTable);
    }
    Ok(report)
}

#[derive(Deserialize)]
struct RawReport {
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    raw_data: BTreeMap<String, BTreeMap<String, RawBench>>,
}

#[derive(Deserialize)]
struct RawBench {
    bench: Vec<f64>,
    #[serde(default)]
    rss: Option<f64>,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Reads ruby-bench's JSON raw data: per-iteration times in seconds per executable and
/// benchmark. A benchmark present under one executable and missing under another failed there.
pub fn parse_json(text: &str) -> Result<Report, ReportError> {
    let raw: RawReport =
        serde_json::from_str(text).map_err(|e| ReportError::Json(e.to_string()))?;
    if raw.raw_data.is_empty() {
        return Err(ReportError::Json("`raw_data` is empty".to_owned()));
    }
    let mut modes: Vec<String> = raw.metadata.keys().cloned().collect();
    for mode in raw.raw_data.keys() {
        if !modes.contains(mode) {
            modes.push(mode.clone());
        }
    }
    let all_benchmarks: BTreeSet<&String> = raw.raw_data.values().flat_map(|b| b.keys()).collect();
    let mut report = Report {
        modes: modes.clone(),
        descriptions: raw.metadata.clone(),
        measurements: BTreeMap::new(),
        failed: BTreeSet::new(),
        harness: BTreeMap::new(),
        source: Source::Json,
    };
    for mode in &modes {
        let benches = raw.raw_data.get(mode);
        for &bench in &all_benchmarks {
            let key = (mode.clone(), bench.clone());
            let measurement = benches.and_then(|b| b.get(bench)).and_then(|b| {
                let ms = b.bench.iter().map(|s| s * 1000.0).collect();
                Measurement::from_iterations(ms, b.rss.map(|r| r / MIB))
            });
            match measurement {
                Some(m) => {
                    report.measurements.insert(key, m);
                }
                None => {
                    report.failed.insert(key);
                }
            }
        }
    }
    Ok(report)
}

/// How many error lines of one failed benchmark are kept.
pub const ERROR_LINES: usize = 20;

/// The error lines ruby-bench's stdout shows for each of `failed`: every line of the
/// benchmark's `Running benchmark "NAME"` sections that is not progress (command, `ruby -v`,
/// iteration times, RSS, average).
pub fn benchmark_errors(stdout: &str, failed: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut errors: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut current: Option<&str> = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("Running benchmark \"") {
            current = rest
                .split_once('"')
                .map(|(name, _)| name)
                .filter(|n| failed.contains(*n));
            continue;
        }
        if line.starts_with("Total time spent benchmarking") {
            current = None;
        }
        let Some(name) = current else { continue };
        let trimmed = line.trim_start();
        let progress = trimmed.is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with("itr:")
            || trimmed.starts_with("+ ")
            || trimmed.starts_with("ruby ")
            || trimmed.starts_with("RSS:")
            || trimmed.starts_with("MAXRSS:")
            || trimmed.starts_with("Average of");
        let lines = errors.entry(name.to_owned()).or_default();
        if !progress && lines.len() < ERROR_LINES {
            lines.push(line);
        }
    }
    errors
        .into_iter()
        .filter(|(_, lines)| !lines.is_empty())
        .map(|(name, lines)| (name, lines.join("\n")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_failed_benchmarks_come_from_their_sections() {
        let stdout = "Running benchmark \"fib\" (1/2)\n+ ruby -I harness fib.rb\nruby 3.4.7\nitr:   time\n #1:  331ms\nharness.rb: in `run': boom (RuntimeError)\nBenchmark \"fib\" failed with yjit (exit status 1)\nRunning benchmark \"nbody\" (2/2)\n #1:  12ms\nTotal time spent benchmarking: 2s\n";
        let failed: BTreeSet<String> = ["fib".to_owned()].into();
        let errors = benchmark_errors(stdout, &failed);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors["fib"],
            "harness.rb: in `run': boom (RuntimeError)\nBenchmark \"fib\" failed with yjit (exit status 1)"
        );
    }

    #[test]
    fn cells_split_on_characters_not_bytes() {
        let rule: Vec<char> = "-----  ------------".chars().collect();
        let spans = column_spans(&rule);
        assert_eq!(spans, [(0, 5), (7, 19)]);
        assert_eq!(
            split_cells("fib    339.7 ± 13.3%", &spans),
            ["fib", "339.7 ± 13.3%"]
        );
        assert_eq!(
            parse_time_cell("339.7 ± 13.3%"),
            Some(TimeCell::Time {
                mean_ms: 339.7,
                stddev_pct: 13.3
            })
        );
        assert_eq!(parse_time_cell("N/A"), Some(TimeCell::Failed));
        assert_eq!(parse_time_cell("1.543 (***)"), None);
    }
}
