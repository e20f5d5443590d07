//! An instance type's page: provenance, price, runs, and its numbers in each mode.

use askama::Template;

use super::{RatioText, ci_text, fmt_ms, fmt_pct, fmt_usd, ratio_text};
use crate::analysis::{ModeView, RunView, TypeId, TypeView};

/// Provenance facts, joined.
pub struct Facts {
    regions: String,
    cpu_models: String,
    smt: String,
    kernels: String,
    ruby: String,
    commits: String,
    steal: String,
    price: String,
    pass: String,
    yjit: String,
}

/// A run row of a type page.
pub struct TaskRow {
    run: u32,
    status: String,
    cpu_model: String,
    cpu: String,
    kernel: String,
    region: String,
    steal: String,
    median_stddev: String,
    ruby_description: String,
    ruby_bench_commit: String,
    flags: Vec<String>,
}

/// A summary row of a type page.
pub struct SummaryRow {
    category: String,
    count: usize,
    mean: String,
    vs_fastest: RatioText,
    vs_baseline: RatioText,
}

/// A benchmark row of a type page.
pub struct TypeBenchRow {
    name: String,
    slug: String,
    category: String,
    mean: String,
    sort: String,
    ci: String,
    between: String,
    within: String,
    within_class: String,
    vs_best: RatioText,
    vs_baseline: RatioText,
}

/// One mode of a type page.
pub struct TypeMode {
    mode: String,
    summaries: Vec<SummaryRow>,
    rows: Vec<TypeBenchRow>,
}

/// An instance type's page.
#[derive(Template)]
#[template(path = "instance_type.html")]
pub struct InstanceTypeTemplate<'a> {
    title: String,
    root: &'static str,
    run_id: String,
    t: &'a TypeView,
    flags: Vec<String>,
    facts: Facts,
    runs: Vec<TaskRow>,
    has_baseline: bool,
    modes: Vec<TypeMode>,
}

fn joined(values: &[String]) -> String {
    if values.is_empty() {
        "unknown (no meta.json)".to_owned()
    } else {
        values.join("; ")
    }
}

fn facts(run: &RunView, id: TypeId) -> Facts {
    let t = run.type_view(id);
    let smt = if t.runs.iter().all(|r| r.cpu.is_empty()) {
        "unknown".to_owned()
    } else if t.shared_core {
        "shared core: the pinned vCPU has an SMT sibling, so another workload (or another slot) may run on the same physical core and slow this one. How much is measured by cargo xtask bench slots (BENCHMARKS.md): run it on this size to compare one slot alone, both vCPUs busy and one slot per core; SLOT_MODE=core gives each benchmark a core of its own".to_owned()
    } else {
        "own core (no SMT sibling)".to_owned()
    };
    let pass = match (t.pass_seconds, t.pass_cost_usd()) {
        (Some(s), Some(c)) => format!(
            "{s:.0} s per pass of the suite, {} USD per pass",
            fmt_usd(c)
        ),
        (Some(s), None) => format!("{s:.0} s per pass of the suite (no price)"),
        _ => "unknown (no start and end times in meta.json)".to_owned(),
    };
    let yjit = run
        .yjit
        .as_ref()
        .and_then(|g| g.per_type.get(id))
        .map_or_else(
            || "not measured (the run lacks interp or yjit)".to_owned(),
            |g| {
                format!(
                    "{} faster than the interpreter (geometric mean, 95% CI)",
                    crate::verdict::times(&g.gain)
                )
            },
        );
    Facts {
        regions: joined(&t.regions),
        cpu_models: joined(&t.cpu_models),
        smt,
        kernels: joined(&t.kernels),
        ruby: joined(&t.ruby_descriptions),
        commits: joined(&t.ruby_bench_commits),
        steal: t
            .max_steal_pct
            .map_or_else(|| "unknown".to_owned(), fmt_pct),
        price: t.price.as_ref().map_or_else(
            || {
                "no price: not in the --prices file, the run's recorded prices or the shipped table"
                    .to_owned()
            },
            |p| p.provenance(),
        ),
        pass,
        yjit,
    }
}

fn type_mode(run: &RunView, mode: &ModeView, id: TypeId) -> TypeMode {
    let is_baseline = run.is_baseline(id);
    TypeMode {
        mode: mode.mode.to_string(),
        summaries: mode
            .summaries
            .iter()
            .filter_map(|s| {
                let g = s.cells.get(id)?;
                Some(SummaryRow {
                    category: s.category.to_string(),
                    count: s.benchmarks.len(),
                    mean: fmt_ms(g.estimate.time_ms()),
                    vs_fastest: ratio_text(
                        Some(&g.vs_fastest),
                        g.vs_fastest == crate::stats::Ratio::ONE,
                        "fastest",
                    ),
                    vs_baseline: ratio_text(g.vs_baseline.as_ref(), is_baseline, "baseline"),
                })
            })
            .collect(),
        rows: mode
            .benchmarks
            .iter()
            .filter_map(|b| {
                let c = b.cells.get(id)?;
                Some(TypeBenchRow {
                    name: b.name.clone(),
                    slug: b.slug.clone(),
                    category: b.category.as_str().to_owned(),
                    mean: fmt_ms(c.estimate.time_ms()),
                    sort: format!("{:.6}", c.estimate.time_ms()),
                    ci: ci_text(c),
                    between: c.between_run_pct.map_or_else(|| "—".to_owned(), fmt_pct),
                    within: fmt_pct(c.within_run_pct),
                    within_class: if c.within_run_pct > crate::analysis::NOISY_STDDEV_PCT {
                        "noisy".to_owned()
                    } else {
                        String::new()
                    },
                    vs_best: ratio_text(Some(&c.vs_best), b.best == Some(id), "best"),
                    vs_baseline: ratio_text(c.vs_baseline.as_ref(), is_baseline, "baseline"),
                })
            })
            .collect(),
    }
}

/// Renders the page of the instance type `id`.
pub fn render_type(run: &RunView, id: TypeId) -> askama::Result<String> {
    let t = run.type_view(id);
    let runs = t
        .runs
        .iter()
        .map(|r| TaskRow {
            run: r.run,
            status: r.status.clone(),
            cpu_model: r.cpu_model.clone(),
            cpu: r.cpu.clone(),
            kernel: r.kernel.clone(),
            region: r.region.clone(),
            steal: r.steal_pct.map_or_else(|| "—".to_owned(), fmt_pct),
            median_stddev: r.median_stddev_pct.map_or_else(|| "—".to_owned(), fmt_pct),
            ruby_description: r.ruby_description.clone(),
            ruby_bench_commit: r.ruby_bench_commit.clone(),
            flags: r.flags.clone(),
        })
        .collect();
    let mut flags = t.flags();
    if t.runs.len() == 1 {
        flags.push("one run only: intervals come from one machine's iterations and understate machine-to-machine variation".to_owned());
    }
    InstanceTypeTemplate {
        title: t.name.clone(),
        root: "../../../",
        run_id: run.id.clone(),
        t,
        flags,
        facts: facts(run, id),
        runs,
        has_baseline: run.baseline.is_some(),
        modes: run.modes.iter().map(|m| type_mode(run, m, id)).collect(),
    }
    .render()
}
