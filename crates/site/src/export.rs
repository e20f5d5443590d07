//! CSV and JSON downloads of every number on the site.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::analysis::RunView;
use crate::load::{Outcome, Run};
use crate::stats::Ratio;

/// Rounds to 6 decimals so binary noise (`112.98700000000001`) stays out of the files.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.6}"))
}

fn ratio_fields(r: Option<&Ratio>) -> String {
    match r {
        None => ",,,".to_owned(),
        Some(r) => format!(
            "{:.6},{},{},{}",
            r.value,
            opt(r.ci.map(|c| c.0)),
            opt(r.ci.map(|c| c.1)),
            if r.is_tie() { "true" } else { "false" }
        ),
    }
}

/// `tasks.csv`: one row per task, mode and benchmark, as measured.
pub fn tasks_csv(run: &Run) -> String {
    let mut s = String::from(
        "run_id,instance_type,run,provider,mode,benchmark,category,status,mean_ms,stddev_pct,iterations,rss_mib,source\n",
    );
    for task in &run.tasks {
        let provider = task
            .meta
            .as_ref()
            .map_or("unknown", |m| m.provider.as_str());
        let Outcome::Completed(report) = &task.outcome else {
            let _ = writeln!(
                s,
                "{},{},{},{provider},,,,task_failed,,,,,",
                csv_field(&run.id),
                csv_field(&task.instance_type),
                task.run
            );
            continue;
        };
        let category = |b: &str| {
            task.meta
                .as_ref()
                .map_or("other", |m| m.category_of(b).as_str())
        };
        for ((mode, bench), m) in &report.measurements {
            let _ = writeln!(
                s,
                "{},{},{},{provider},{},{},{},ok,{:.6},{:.6},{},{},{}",
                csv_field(&run.id),
                csv_field(&task.instance_type),
                task.run,
                csv_field(mode),
                csv_field(bench),
                category(bench),
                m.mean_ms,
                m.stddev_pct,
                m.iterations_ms.len(),
                opt(m.rss_mib),
                report.source.label()
            );
        }
        for (mode, bench) in &report.failed {
            let _ = writeln!(
                s,
                "{},{},{},{provider},{},{},{},benchmark_failed,,,,,{}",
                csv_field(&run.id),
                csv_field(&task.instance_type),
                task.run,
                csv_field(mode),
                csv_field(bench),
                category(bench),
                report.source.label()
            );
        }
    }
    s
}

/// `summary.csv`: one row per mode, benchmark and instance type, with intervals and ratios.
pub fn summary_csv(view: &RunView) -> String {
    let mut s = String::from(
        "run_id,mode,benchmark,category,instance_type,provider,mean_ms,ci_low_ms,ci_high_ms,interval_from,runs,between_run_pct,within_run_pct,speed_vs_best,speed_vs_best_ci_low,speed_vs_best_ci_high,tie_with_best,speed_vs_baseline,speed_vs_baseline_ci_low,speed_vs_baseline_ci_high,tie_with_baseline\n",
    );
    for mode in &view.modes {
        for b in &mode.benchmarks {
            for (i, c) in b.cells.iter().enumerate() {
                let Some(c) = c else { continue };
                let t = &view.types[i];
                let ci = c.estimate.time_ci_ms();
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{:.6},{},{},{},{},{},{:.6},{},{}",
                    csv_field(&view.id),
                    csv_field(&mode.mode),
                    csv_field(&b.name),
                    b.category.as_str(),
                    csv_field(&t.name),
                    t.provider,
                    c.estimate.time_ms(),
                    opt(ci.map(|c| c.0)),
                    opt(ci.map(|c| c.1)),
                    c.basis.label(),
                    c.run_means.len(),
                    opt(c.between_run_pct),
                    c.within_run_pct,
                    ratio_fields(Some(&c.vs_best)),
                    ratio_fields(c.vs_baseline.as_ref())
                );
            }
        }
    }
    s
}

/// `geomean.csv`: one row per mode, summary category and instance type.
pub fn geomean_csv(view: &RunView) -> String {
    let mut s = String::from(
        "run_id,mode,category,benchmarks,instance_type,provider,geomean_ms,ci_low_ms,ci_high_ms,speed_vs_fastest,speed_vs_fastest_ci_low,speed_vs_fastest_ci_high,tie_with_fastest,speed_vs_baseline,speed_vs_baseline_ci_low,speed_vs_baseline_ci_high,tie_with_baseline,usd_per_hour,relative_cost\n",
    );
    for mode in &view.modes {
        for summary in &mode.summaries {
            for (i, g) in summary.cells.iter().enumerate() {
                let Some(g) = g else { continue };
                let t = &view.types[i];
                let ci = g.estimate.time_ci_ms();
                let cost = if summary.category == "all" {
                    mode.ranking
                        .iter()
                        .find(|r| r.type_index == i)
                        .and_then(|r| r.relative_cost)
                } else {
                    None
                };
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{:.6},{},{},{},{},{},{}",
                    csv_field(&view.id),
                    csv_field(&mode.mode),
                    summary.category,
                    summary.benchmarks.len(),
                    csv_field(&t.name),
                    t.provider,
                    g.estimate.time_ms(),
                    opt(ci.map(|c| c.0)),
                    opt(ci.map(|c| c.1)),
                    ratio_fields(Some(&g.vs_fastest)),
                    ratio_fields(g.vs_baseline.as_ref()),
                    opt(t.usd_per_hour),
                    opt(cost)
                );
            }
        }
    }
    s
}

#[derive(Serialize)]
struct JsonRun<'a> {
    run_id: &'a str,
    ruby_versions: &'a [String],
    date: Option<&'a str>,
    baseline: Option<&'a str>,
    tasks: Vec<JsonTask<'a>>,
    estimates: Vec<JsonEstimate<'a>>,
    geomeans: Vec<JsonGeomean<'a>>,
}

#[derive(Serialize)]
struct JsonTask<'a> {
    folder: &'a str,
    instance_type: &'a str,
    run: u32,
    meta: Option<&'a protocol::TaskMeta>,
    status: &'static str,
    source: Option<&'static str>,
    error: Option<&'a protocol::ErrorInfo>,
    /// mode → benchmark → numbers.
    results: BTreeMap<&'a str, BTreeMap<&'a str, JsonMeasurement>>,
    failed: Vec<[&'a str; 2]>,
}

/// A task's numbers for one benchmark. Per-iteration times stay out: with ruby-bench's
/// defaults they would make the file ten times larger, and they are in each task's
/// `ruby-bench.json` in the results archive.
#[derive(Serialize)]
struct JsonMeasurement {
    mean_ms: f64,
    stddev_pct: f64,
    iterations: usize,
    rss_mib: Option<f64>,
}

#[derive(Serialize)]
struct JsonRatio {
    value: f64,
    ci: Option<[f64; 2]>,
    tie: bool,
}

fn json_ratio(r: &Ratio) -> JsonRatio {
    JsonRatio {
        value: round6(r.value),
        ci: r.ci.map(|(a, b)| [round6(a), round6(b)]),
        tie: r.is_tie(),
    }
}

#[derive(Serialize)]
struct JsonEstimate<'a> {
    mode: &'a str,
    benchmark: &'a str,
    category: &'static str,
    instance_type: &'a str,
    mean_ms: f64,
    ci_ms: Option<[f64; 2]>,
    interval_from: &'static str,
    run_means_ms: Vec<(u32, f64)>,
    between_run_pct: Option<f64>,
    within_run_pct: f64,
    speed_vs_best: JsonRatio,
    speed_vs_baseline: Option<JsonRatio>,
}

#[derive(Serialize)]
struct JsonGeomean<'a> {
    mode: &'a str,
    category: &'a str,
    benchmarks: &'a [String],
    instance_type: &'a str,
    geomean_ms: f64,
    ci_ms: Option<[f64; 2]>,
    speed_vs_fastest: JsonRatio,
    speed_vs_baseline: Option<JsonRatio>,
    usd_per_hour: Option<f64>,
}

/// `results.json`: every task with its meta and numbers, every estimate and summary.
pub fn results_json(run: &Run, view: &RunView) -> String {
    let tasks = run
        .tasks
        .iter()
        .map(|t| {
            let mut results: BTreeMap<&str, BTreeMap<&str, JsonMeasurement>> = BTreeMap::new();
            let (status, source, error, failed) = match &t.outcome {
                Outcome::Completed(r) => {
                    for ((mode, bench), m) in &r.measurements {
                        results.entry(mode).or_default().insert(
                            bench,
                            JsonMeasurement {
                                mean_ms: round6(m.mean_ms),
                                stddev_pct: round6(m.stddev_pct),
                                iterations: m.iterations_ms.len(),
                                rss_mib: m.rss_mib.map(round6),
                            },
                        );
                    }
                    let failed = r
                        .failed
                        .iter()
                        .map(|(m, b)| [m.as_str(), b.as_str()])
                        .collect();
                    ("completed", Some(r.source.label()), None, failed)
                }
                Outcome::Failed { error, .. } => ("failed", None, error.as_ref(), Vec::new()),
            };
            JsonTask {
                folder: &t.folder,
                instance_type: &t.instance_type,
                run: t.run,
                meta: t.meta.as_ref(),
                status,
                source,
                error,
                results,
                failed,
            }
        })
        .collect();
    let mut estimates = Vec::new();
    let mut geomeans = Vec::new();
    for mode in &view.modes {
        for b in &mode.benchmarks {
            for (i, c) in b.cells.iter().enumerate() {
                let Some(c) = c else { continue };
                estimates.push(JsonEstimate {
                    mode: &mode.mode,
                    benchmark: &b.name,
                    category: b.category.as_str(),
                    instance_type: &view.types[i].name,
                    mean_ms: round6(c.estimate.time_ms()),
                    ci_ms: c.estimate.time_ci_ms().map(|(a, b)| [round6(a), round6(b)]),
                    interval_from: c.basis.label(),
                    run_means_ms: c.run_means.iter().map(|(r, m)| (*r, round6(*m))).collect(),
                    between_run_pct: c.between_run_pct.map(round6),
                    within_run_pct: round6(c.within_run_pct),
                    speed_vs_best: json_ratio(&c.vs_best),
                    speed_vs_baseline: c.vs_baseline.as_ref().map(json_ratio),
                });
            }
        }
        for s in &mode.summaries {
            for (i, g) in s.cells.iter().enumerate() {
                let Some(g) = g else { continue };
                geomeans.push(JsonGeomean {
                    mode: &mode.mode,
                    category: &s.category,
                    benchmarks: &s.benchmarks,
                    instance_type: &view.types[i].name,
                    geomean_ms: round6(g.estimate.time_ms()),
                    ci_ms: g.estimate.time_ci_ms().map(|(a, b)| [round6(a), round6(b)]),
                    speed_vs_fastest: json_ratio(&g.vs_fastest),
                    speed_vs_baseline: g.vs_baseline.as_ref().map(json_ratio),
                    usd_per_hour: view.types[i].usd_per_hour,
                });
            }
        }
    }
    let doc = JsonRun {
        run_id: &view.id,
        ruby_versions: &view.ruby_versions,
        date: view.date.as_deref(),
        baseline: view.baseline.as_deref(),
        tasks,
        estimates,
        geomeans,
    };
    let mut text = serde_json::to_string(&doc).expect("plain data serializes");
    text.push('\n');
    text
}
