//! The HTML pages: askama templates fed with preformatted text, so every number on the site
//! has one fixed format.

use askama::Template;

mod bench;
mod instance_type;
mod run;

use std::collections::BTreeMap;

use crate::analysis::{Cell, FailedBenchmark, FailedTask, ModeName, ModeView, RunView};
use crate::charts::{self, Line};
use crate::load::Problem;
use crate::stats::Ratio;

pub use bench::{BenchTemplate, render_bench};
pub use instance_type::{InstanceTypeTemplate, render_type};
pub use run::{RunIndex, RunIndexTemplate, render_run_index, run_index};

/// Formats a time in ms with a precision that suits its size.
pub fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Formats a percentage.
pub fn fmt_pct(v: f64) -> String {
    format!("{v:.1}%")
}

/// A formatted ratio with its CSS class and tooltip.
#[derive(Debug, Clone, Default)]
pub struct RatioText {
    /// `0.812 [0.790–0.835]`, with `≈` for a tie.
    pub text: String,
    /// `best`, `tie`, `faster`, `slower` or `unknown`.
    pub class: String,
    /// A sort key.
    pub sort: String,
    /// What the number means.
    pub title: String,
}

/// Formats a speed ratio; `is_reference` marks the thing compared against.
pub fn ratio_text(ratio: Option<&Ratio>, is_reference: bool, reference: &str) -> RatioText {
    let Some(r) = ratio else {
        return RatioText {
            text: "—".to_owned(),
            class: "unknown".to_owned(),
            sort: "0".to_owned(),
            title: "no data".to_owned(),
        };
    };
    if is_reference {
        return RatioText {
            text: format!("1.000 ({reference})"),
            class: "best".to_owned(),
            sort: "1".to_owned(),
            title: format!("this is the {reference}"),
        };
    }
    let ci = r.ci.map_or_else(
        || " [no interval]".to_owned(),
        |(lo, hi)| format!(" [{lo:.3}–{hi:.3}]"),
    );
    let (prefix, class, title) = if r.is_tie() {
        (
            "≈ ",
            "tie",
            format!("not significantly different from the {reference} (95% interval contains 1)"),
        )
    } else if r.is_significant() && r.value > 1.0 {
        (
            "",
            "faster",
            format!("significantly faster than the {reference}"),
        )
    } else if r.is_significant() {
        (
            "",
            "slower",
            format!("significantly slower than the {reference}"),
        )
    } else {
        (
            "",
            "unknown",
            "no interval: a single run without per-iteration times".to_owned(),
        )
    };
    RatioText {
        text: format!("{prefix}{:.3}{ci}", r.value),
        class: class.to_owned(),
        sort: format!("{:.6}", r.value),
        title,
    }
}

/// A cell's interval in ms, or a dash.
fn ci_text(cell: &Cell) -> String {
    cell.estimate.time_ci_ms().map_or_else(
        || "—".to_owned(),
        |(lo, hi)| format!("{}–{}", fmt_ms(lo), fmt_ms(hi)),
    )
}

/// Formats an amount of US dollars with a precision that suits its size.
pub fn fmt_usd(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.2}")
    } else if v >= 0.01 {
        format!("{v:.4}")
    } else {
        format!("{v:.6}")
    }
}

/// Formats a large count compactly: `3.21 M`, `812 k`.
pub fn fmt_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A dash for an absent value.
fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "—".to_owned())
}

/// The failures page of a run.
#[derive(Template)]
#[template(path = "failures.html")]
pub struct FailuresTemplate<'a> {
    title: String,
    root: &'static str,
    run_id: &'a str,
    tasks: &'a [FailedTask],
    benchmarks: &'a [FailedBenchmark],
    problems: &'a [Problem],
}

/// Renders the failures page; `problems` are those under this run's folder.
pub fn render_failures(run: &RunView, problems: &[Problem]) -> askama::Result<String> {
    FailuresTemplate {
        title: format!("Failures in run {}", run.id),
        root: "../../",
        run_id: &run.id,
        tasks: &run.failed_tasks,
        benchmarks: &run.failed_benchmarks,
        problems,
    }
    .render()
}

/// A run row of the history page.
pub struct HistoryRun {
    id: String,
    date: String,
    ruby: String,
    types: usize,
    tasks: usize,
    failed: usize,
}

/// A type row of the history page.
pub struct HistoryRow {
    name: String,
    values: Vec<String>,
}

/// One mode of the history page.
pub struct HistoryMode {
    mode: String,
    note: String,
    chart: String,
    rows: Vec<HistoryRow>,
}

/// The page of runs over time and Ruby versions.
#[derive(Template)]
#[template(path = "history.html")]
pub struct HistoryTemplate {
    title: String,
    root: &'static str,
    runs: Vec<HistoryRun>,
    labels: Vec<String>,
    modes: Vec<HistoryMode>,
}

/// Renders the history page: for each mode, each type's geometric mean over the benchmarks that
/// every run's summary covers, run by run.
pub fn render_history(runs: &[RunView]) -> askama::Result<String> {
    let labels: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} ({}, Ruby {})",
                r.id,
                r.date.as_deref().unwrap_or("date unknown"),
                r.ruby_versions.join("/")
            )
        })
        .collect();
    let mut mode_names: Vec<ModeName> = Vec::new();
    for r in runs {
        for m in &r.modes {
            if !mode_names.contains(&m.mode) {
                mode_names.push(m.mode.clone());
            }
        }
    }
    let modes = mode_names
        .iter()
        .map(|mode| history_mode(runs, mode))
        .collect();
    HistoryTemplate {
        title: "Runs over time".to_owned(),
        root: "",
        runs: runs
            .iter()
            .map(|r| HistoryRun {
                id: r.id.clone(),
                date: r.date.clone().unwrap_or_else(|| "unknown".to_owned()),
                ruby: r.ruby_versions.join(", "),
                types: r.types.len(),
                tasks: r.types.iter().map(|t| t.runs.len()).sum(),
                failed: r.failed_tasks.len(),
            })
            .collect(),
        labels,
        modes,
    }
    .render()
}

/// The benchmarks in the overall summary of every run that has `mode`.
fn common_benchmarks(runs: &[RunView], mode: &ModeName) -> Vec<String> {
    let mut common: Option<Vec<String>> = None;
    for r in runs {
        let Some(all) = r
            .modes
            .iter()
            .find(|m| &m.mode == mode)
            .and_then(ModeView::overall)
        else {
            continue;
        };
        common = Some(match common {
            None => all.benchmarks.clone(),
            Some(c) => c
                .into_iter()
                .filter(|b| all.benchmarks.contains(b))
                .collect(),
        });
    }
    common.unwrap_or_default()
}

fn history_mode(runs: &[RunView], mode: &ModeName) -> HistoryMode {
    let common = common_benchmarks(runs, mode);
    let mut providers = BTreeMap::new();
    let mut table: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for (k, r) in runs.iter().enumerate() {
        let Some(m) = r.modes.iter().find(|m| &m.mode == mode) else {
            continue;
        };
        for (id, t) in r.types_with_ids() {
            let logs: Option<Vec<f64>> = common
                .iter()
                .map(|b| m.benchmark(b)?.cells.get(id).map(|c| c.estimate.mean))
                .collect();
            let value = logs
                .filter(|l| !l.is_empty())
                .map(|l| (l.iter().sum::<f64>() / l.len() as f64).exp());
            providers.insert(t.name.clone(), t.provider.clone());
            table
                .entry(t.name.clone())
                .or_insert_with(|| vec![None; runs.len()])[k] = value;
        }
    }
    let lines: Vec<Line> = table
        .iter()
        .map(|(name, values)| Line {
            label: name.clone(),
            provider: providers[name].clone(),
            values: values.clone(),
        })
        .collect();
    let short_labels: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} · Ruby {}",
                r.date.as_deref().unwrap_or(&r.id),
                r.ruby_versions.join("/")
            )
        })
        .collect();
    HistoryMode {
        mode: mode.to_string(),
        note: if common.is_empty() {
            "No benchmark is common to every run in this mode.".to_owned()
        } else {
            format!(
                "Geometric mean of the time per iteration over the benchmarks every run covers ({}), in ms; lower is better.",
                common.join(", ")
            )
        },
        chart: charts::line_chart(
            &format!("history-{mode}"),
            &format!("Geometric-mean time per run ({mode})"),
            &short_labels,
            "geometric mean, ms per iteration (lower is better)",
            &lines,
        ),
        rows: table
            .into_iter()
            .map(|(name, values)| HistoryRow {
                name,
                values: values
                    .into_iter()
                    .map(|v| v.map_or_else(|| "—".to_owned(), fmt_ms))
                    .collect(),
            })
            .collect(),
    }
}
