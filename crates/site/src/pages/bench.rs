//! A benchmark's page: per mode, the bar chart with intervals, the strip plot of every
//! iteration, and the table.

use askama::Template;

use super::{RatioText, ci_text, fmt_ms, fmt_pct, ratio_text};
use crate::analysis::{BenchView, Cell, ModeView, RunView, TypeId};
use crate::charts::{self, Axes, Bar, Strip};

/// A row of a benchmark page.
pub struct BenchRow {
    name: String,
    slug: String,
    provider: String,
    mean: String,
    sort: String,
    ci: String,
    runs: String,
    between: String,
    within: String,
    basis: String,
    vs_best: RatioText,
    vs_baseline: RatioText,
}

/// One mode of a benchmark page.
pub struct BenchMode {
    mode: String,
    present: bool,
    chart: String,
    strips: String,
    rows: Vec<BenchRow>,
    failed: Vec<(String, String)>,
}

/// A benchmark's page.
#[derive(Template)]
#[template(path = "bench.html")]
pub struct BenchTemplate {
    title: String,
    root: &'static str,
    run_id: String,
    name: String,
    category: String,
    has_baseline: bool,
    modes: Vec<BenchMode>,
}

fn bench_row(run: &RunView, b: &BenchView, id: TypeId, c: &Cell) -> BenchRow {
    let t = run.type_view(id);
    BenchRow {
        name: t.name.clone(),
        slug: t.slug.clone(),
        provider: t.provider.clone(),
        mean: fmt_ms(c.estimate.time_ms()),
        sort: format!("{:.6}", c.estimate.time_ms()),
        ci: ci_text(c),
        runs: c
            .run_means()
            .map(|(r, m)| format!("#{r}: {}", fmt_ms(m)))
            .collect::<Vec<_>>()
            .join(", "),
        between: c.between_run_pct.map_or_else(|| "—".to_owned(), fmt_pct),
        within: fmt_pct(c.within_run_pct),
        basis: c.basis.label().to_owned(),
        vs_best: ratio_text(Some(&c.vs_best), b.best == Some(id), "best"),
        vs_baseline: ratio_text(c.vs_baseline.as_ref(), run.is_baseline(id), "baseline"),
    }
}

fn bench_mode(run: &RunView, mode: &ModeView, name: &str) -> BenchMode {
    let failed: Vec<(String, String)> = run
        .failed_benchmarks
        .iter()
        .filter(|f| f.benchmark == name && f.mode == mode.mode.as_str())
        .map(|f| (f.folder.clone(), f.error.clone()))
        .collect();
    let Some(b) = mode.benchmark(name) else {
        return BenchMode {
            mode: mode.mode.to_string(),
            present: false,
            chart: String::new(),
            strips: String::new(),
            rows: Vec::new(),
            failed,
        };
    };
    let mut order: Vec<(TypeId, &Cell)> = b.cells.iter().collect();
    order.sort_by(|(x, cx), (y, cy)| {
        cx.estimate
            .mean
            .total_cmp(&cy.estimate.mean)
            .then(run.type_view(*x).name.cmp(&run.type_view(*y).name))
    });
    let bars: Vec<Bar> = order
        .iter()
        .map(|(id, c)| Bar {
            label: run.type_view(*id).name.clone(),
            provider: run.type_view(*id).provider.clone(),
            value: c.estimate.time_ms(),
            ci: c.estimate.time_ci_ms(),
            dots: c.run_means().map(|(_, m)| m).collect(),
            value_text: format!("{} ms", fmt_ms(c.estimate.time_ms())),
        })
        .collect();
    let strips: Vec<Strip> = order
        .iter()
        .map(|(id, c)| Strip {
            label: run.type_view(*id).name.clone(),
            provider: run.type_view(*id).provider.clone(),
            runs: c.runs.iter().map(|r| r.iterations_ms.clone()).collect(),
        })
        .collect();
    BenchMode {
        mode: mode.mode.to_string(),
        present: true,
        chart: charts::bar_chart(
            &format!("bench-{}", mode.mode),
            &format!("{name} ({}): mean time per iteration", mode.mode),
            "milliseconds per iteration (lower is better; whiskers: 95% CI; dots: runs)",
            &bars,
            None,
        ),
        strips: charts::strip_chart(
            Axes {
                id: &format!("strips-{}", mode.mode),
                title: &format!("{name} ({}): every timed iteration", mode.mode),
                x_label: "milliseconds per iteration (one dot each; one row of dots per run)",
                y_label: "",
            },
            &strips,
        ),
        rows: order
            .iter()
            .map(|(id, c)| bench_row(run, b, *id, c))
            .collect(),
        failed,
    }
}

/// Renders the page of the benchmark `name`.
pub fn render_bench(run: &RunView, name: &str) -> askama::Result<String> {
    let category = run
        .modes
        .iter()
        .filter_map(|m| m.benchmark(name))
        .next_back()
        .map_or_else(String::new, |b| b.category.as_str().to_owned());
    BenchTemplate {
        title: name.to_owned(),
        root: "../../../",
        run_id: run.id.clone(),
        name: name.to_owned(),
        category,
        has_baseline: run.baseline.is_some(),
        modes: run
            .modes
            .iter()
            .map(|mode| bench_mode(run, mode, name))
            .collect(),
    }
    .render()
}
