//! CSV and JSON downloads of every number on the site.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::analysis::{RunView, SummaryCategory};
use crate::load::{Outcome, Run};
use crate::stats::Ratio;

/// Rounds to 6 decimals so binary noise (`112.98700000000001`) stays out of the files.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Every number in the CSV files has 6 decimals.
fn fixed6<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.6}"))
}

/// An absent number is an empty field.
fn opt6<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => fixed6(v, s),
        None => s.serialize_str(""),
    }
}

/// Writes rows as CSV with a header from the row type's field names; `header` is the line
/// written when there is no row (a test holds it equal to the derived one).
fn write_csv<R: Serialize>(
    header: &str,
    rows: impl IntoIterator<Item = R>,
) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut empty = true;
    for row in rows {
        writer.serialize(row)?;
        empty = false;
    }
    let mut text = String::from_utf8(writer.into_inner().map_err(|e| e.into_error())?)?;
    if empty {
        text = format!("{header}\n");
    }
    Ok(text)
}

/// The four columns of a ratio: value, interval, tie.
#[derive(Default)]
struct RatioColumns {
    value: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
    tie: Option<bool>,
}

impl RatioColumns {
    fn of(r: Option<&Ratio>) -> Self {
        r.map_or_else(Self::default, |r| Self {
            value: Some(r.value),
            low: r.ci.map(|c| c.0),
            high: r.ci.map(|c| c.1),
            tie: Some(r.is_tie()),
        })
    }
}

/// The header of `tasks.csv`.
const TASKS_HEADER: &str = "run_id,instance_type,run,provider,mode,benchmark,category,status,mean_ms,stddev_pct,iterations,rss_mib,source";

#[derive(Serialize)]
struct TaskRow<'a> {
    run_id: &'a str,
    instance_type: &'a str,
    run: u32,
    provider: &'a str,
    mode: Option<&'a str>,
    benchmark: Option<&'a str>,
    category: Option<&'static str>,
    status: &'static str,
    #[serde(serialize_with = "opt6")]
    mean_ms: Option<f64>,
    #[serde(serialize_with = "opt6")]
    stddev_pct: Option<f64>,
    iterations: Option<usize>,
    #[serde(serialize_with = "opt6")]
    rss_mib: Option<f64>,
    source: Option<&'static str>,
}

/// `tasks.csv`: one row per task, mode and benchmark, as measured.
pub fn tasks_csv(run: &Run) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for task in &run.tasks {
        let row = TaskRow {
            run_id: &run.id,
            instance_type: &task.instance_type,
            run: task.run,
            provider: task
                .meta
                .as_ref()
                .map_or("unknown", |m| m.provider.as_str()),
            mode: None,
            benchmark: None,
            category: None,
            status: "task_failed",
            mean_ms: None,
            stddev_pct: None,
            iterations: None,
            rss_mib: None,
            source: None,
        };
        let Outcome::Completed(report) = &task.outcome else {
            rows.push(row);
            continue;
        };
        let category = |b: &str| {
            task.meta
                .as_ref()
                .map_or("other", |m| m.category_of(b).as_str())
        };
        for ((mode, bench), m) in &report.measurements {
            rows.push(TaskRow {
                mode: Some(mode),
                benchmark: Some(bench),
                category: Some(category(bench)),
                status: "ok",
                mean_ms: Some(m.mean_ms),
                stddev_pct: Some(m.stddev_pct),
                iterations: Some(m.iterations_ms.len()),
                rss_mib: m.rss_mib,
                source: Some(report.source.label()),
                ..row
            });
        }
        for (mode, bench) in &report.failed {
            rows.push(TaskRow {
                mode: Some(mode),
                benchmark: Some(bench),
                category: Some(category(bench)),
                status: "benchmark_failed",
                source: Some(report.source.label()),
                ..row
            });
        }
    }
    write_csv(TASKS_HEADER, rows)
}

/// The header of `summary.csv`.
const SUMMARY_HEADER: &str = "run_id,mode,benchmark,category,instance_type,provider,mean_ms,ci_low_ms,ci_high_ms,interval_from,runs,between_run_pct,within_run_pct,speed_vs_best,speed_vs_best_ci_low,speed_vs_best_ci_high,tie_with_best,speed_vs_baseline,speed_vs_baseline_ci_low,speed_vs_baseline_ci_high,tie_with_baseline";

#[derive(Serialize)]
struct SummaryRow<'a> {
    run_id: &'a str,
    mode: &'a str,
    benchmark: &'a str,
    category: &'static str,
    instance_type: &'a str,
    provider: &'a str,
    #[serde(serialize_with = "fixed6")]
    mean_ms: f64,
    #[serde(serialize_with = "opt6")]
    ci_low_ms: Option<f64>,
    #[serde(serialize_with = "opt6")]
    ci_high_ms: Option<f64>,
    interval_from: &'static str,
    runs: usize,
    #[serde(serialize_with = "opt6")]
    between_run_pct: Option<f64>,
    #[serde(serialize_with = "fixed6")]
    within_run_pct: f64,
    #[serde(serialize_with = "opt6")]
    speed_vs_best: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_best_ci_low: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_best_ci_high: Option<f64>,
    tie_with_best: Option<bool>,
    #[serde(serialize_with = "opt6")]
    speed_vs_baseline: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_baseline_ci_low: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_baseline_ci_high: Option<f64>,
    tie_with_baseline: Option<bool>,
}

/// `summary.csv`: one row per mode, benchmark and instance type, with intervals and ratios.
pub fn summary_csv(view: &RunView) -> anyhow::Result<String> {
    let rows = view.modes.iter().flat_map(|mode| {
        mode.benchmarks.iter().flat_map(move |b| {
            b.cells.iter().map(move |(id, c)| {
                let t = view.type_view(id);
                let ci = c.estimate.time_ci_ms();
                let (best, baseline) = (
                    RatioColumns::of(Some(&c.vs_best)),
                    RatioColumns::of(c.vs_baseline.as_ref()),
                );
                SummaryRow {
                    run_id: &view.id,
                    mode: mode.mode.as_str(),
                    benchmark: &b.name,
                    category: b.category.as_str(),
                    instance_type: &t.name,
                    provider: &t.provider,
                    mean_ms: c.estimate.time_ms(),
                    ci_low_ms: ci.map(|c| c.0),
                    ci_high_ms: ci.map(|c| c.1),
                    interval_from: c.basis.label(),
                    runs: c.runs.len(),
                    between_run_pct: c.between_run_pct,
                    within_run_pct: c.within_run_pct,
                    speed_vs_best: best.value,
                    speed_vs_best_ci_low: best.low,
                    speed_vs_best_ci_high: best.high,
                    tie_with_best: best.tie,
                    speed_vs_baseline: baseline.value,
                    speed_vs_baseline_ci_low: baseline.low,
                    speed_vs_baseline_ci_high: baseline.high,
                    tie_with_baseline: baseline.tie,
                }
            })
        })
    });
    write_csv(SUMMARY_HEADER, rows)
}

/// The header of `geomean.csv`.
const GEOMEAN_HEADER: &str = "run_id,mode,category,benchmarks,instance_type,provider,geomean_ms,ci_low_ms,ci_high_ms,speed_vs_fastest,speed_vs_fastest_ci_low,speed_vs_fastest_ci_high,tie_with_fastest,speed_vs_baseline,speed_vs_baseline_ci_low,speed_vs_baseline_ci_high,tie_with_baseline,usd_per_hour,relative_cost";

#[derive(Serialize)]
struct GeomeanRow<'a> {
    run_id: &'a str,
    mode: &'a str,
    category: &'static str,
    benchmarks: usize,
    instance_type: &'a str,
    provider: &'a str,
    #[serde(serialize_with = "fixed6")]
    geomean_ms: f64,
    #[serde(serialize_with = "opt6")]
    ci_low_ms: Option<f64>,
    #[serde(serialize_with = "opt6")]
    ci_high_ms: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_fastest: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_fastest_ci_low: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_fastest_ci_high: Option<f64>,
    tie_with_fastest: Option<bool>,
    #[serde(serialize_with = "opt6")]
    speed_vs_baseline: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_baseline_ci_low: Option<f64>,
    #[serde(serialize_with = "opt6")]
    speed_vs_baseline_ci_high: Option<f64>,
    tie_with_baseline: Option<bool>,
    #[serde(serialize_with = "opt6")]
    usd_per_hour: Option<f64>,
    #[serde(serialize_with = "opt6")]
    relative_cost: Option<f64>,
}

/// `geomean.csv`: one row per mode, summary category and instance type.
pub fn geomean_csv(view: &RunView) -> anyhow::Result<String> {
    let rows = view.modes.iter().flat_map(|mode| {
        mode.summaries.iter().flat_map(move |summary| {
            summary.cells.iter().map(move |(id, g)| {
                let t = view.type_view(id);
                let ci = g.estimate.time_ci_ms();
                let cost = (summary.category == SummaryCategory::All)
                    .then(|| mode.ranking.iter().find(|r| r.type_id == id))
                    .flatten()
                    .and_then(|r| r.relative_cost);
                let (fastest, baseline) = (
                    RatioColumns::of(Some(&g.vs_fastest)),
                    RatioColumns::of(g.vs_baseline.as_ref()),
                );
                GeomeanRow {
                    run_id: &view.id,
                    mode: mode.mode.as_str(),
                    category: summary.category.as_str(),
                    benchmarks: summary.benchmarks.len(),
                    instance_type: &t.name,
                    provider: &t.provider,
                    geomean_ms: g.estimate.time_ms(),
                    ci_low_ms: ci.map(|c| c.0),
                    ci_high_ms: ci.map(|c| c.1),
                    speed_vs_fastest: fastest.value,
                    speed_vs_fastest_ci_low: fastest.low,
                    speed_vs_fastest_ci_high: fastest.high,
                    tie_with_fastest: fastest.tie,
                    speed_vs_baseline: baseline.value,
                    speed_vs_baseline_ci_low: baseline.low,
                    speed_vs_baseline_ci_high: baseline.high,
                    tie_with_baseline: baseline.tie,
                    usd_per_hour: t.usd_per_hour(),
                    relative_cost: cost,
                }
            })
        })
    });
    write_csv(GEOMEAN_HEADER, rows)
}

/// The header of `value.csv`.
const VALUE_HEADER: &str = "run_id,mode,rank,instance_type,provider,usd_per_hour,price_region,price_source,price_as_of,price_from,speed_vs_fastest,value_vs_best,value_vs_best_ci_low,value_vs_best_ci_high,tie_with_best_value,iterations_per_usd,on_pareto_front,pass_seconds,usd_per_pass";

#[derive(Serialize)]
struct ValueCsvRow<'a> {
    run_id: &'a str,
    mode: &'a str,
    rank: usize,
    instance_type: &'a str,
    provider: &'a str,
    #[serde(serialize_with = "fixed6")]
    usd_per_hour: f64,
    price_region: &'a str,
    price_source: &'a str,
    price_as_of: Option<&'a str>,
    price_from: &'static str,
    #[serde(serialize_with = "fixed6")]
    speed_vs_fastest: f64,
    #[serde(serialize_with = "opt6")]
    value_vs_best: Option<f64>,
    #[serde(serialize_with = "opt6")]
    value_vs_best_ci_low: Option<f64>,
    #[serde(serialize_with = "opt6")]
    value_vs_best_ci_high: Option<f64>,
    tie_with_best_value: Option<bool>,
    #[serde(serialize_with = "fixed6")]
    iterations_per_usd: f64,
    on_pareto_front: bool,
    #[serde(serialize_with = "opt6")]
    pass_seconds: Option<f64>,
    #[serde(serialize_with = "opt6")]
    usd_per_pass: Option<f64>,
}

/// `value.csv`: the price-performance ranking of each mode, with where each price came from.
pub fn value_csv(view: &RunView) -> anyhow::Result<String> {
    let rows = view.modes.iter().flat_map(|mode| {
        mode.value_ranking.iter().filter_map(move |row| {
            let t = view.type_view(row.type_id);
            let price = t.price.as_ref()?;
            let value = RatioColumns::of(Some(&row.vs_best_value));
            Some(ValueCsvRow {
                run_id: &view.id,
                mode: mode.mode.as_str(),
                rank: row.rank,
                instance_type: &t.name,
                provider: &t.provider,
                usd_per_hour: row.usd_per_hour,
                price_region: &price.region,
                price_source: &price.source,
                price_as_of: price.as_of.as_deref(),
                price_from: price.origin.label(),
                speed_vs_fastest: row.vs_fastest.value,
                value_vs_best: value.value,
                value_vs_best_ci_low: value.low,
                value_vs_best_ci_high: value.high,
                tie_with_best_value: value.tie,
                iterations_per_usd: row.iterations_per_usd,
                on_pareto_front: row.on_front,
                pass_seconds: t.pass_seconds,
                usd_per_pass: t.pass_cost_usd(),
            })
        })
    });
    write_csv(VALUE_HEADER, rows)
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
    category: &'static str,
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
            for (id, c) in b.cells.iter() {
                estimates.push(JsonEstimate {
                    mode: mode.mode.as_str(),
                    benchmark: &b.name,
                    category: b.category.as_str(),
                    instance_type: &view.type_view(id).name,
                    mean_ms: round6(c.estimate.time_ms()),
                    ci_ms: c.estimate.time_ci_ms().map(|(a, b)| [round6(a), round6(b)]),
                    interval_from: c.basis.label(),
                    run_means_ms: c.run_means().map(|(r, m)| (r, round6(m))).collect(),
                    between_run_pct: c.between_run_pct.map(round6),
                    within_run_pct: round6(c.within_run_pct),
                    speed_vs_best: json_ratio(&c.vs_best),
                    speed_vs_baseline: c.vs_baseline.as_ref().map(json_ratio),
                });
            }
        }
        for s in &mode.summaries {
            for (id, g) in s.cells.iter() {
                geomeans.push(JsonGeomean {
                    mode: mode.mode.as_str(),
                    category: s.category.as_str(),
                    benchmarks: &s.benchmarks,
                    instance_type: &view.type_view(id).name,
                    geomean_ms: round6(g.estimate.time_ms()),
                    ci_ms: g.estimate.time_ci_ms().map(|(a, b)| [round6(a), round6(b)]),
                    speed_vs_fastest: json_ratio(&g.vs_fastest),
                    speed_vs_baseline: g.vs_baseline.as_ref().map(json_ratio),
                    usd_per_hour: view.type_view(id).usd_per_hour(),
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
