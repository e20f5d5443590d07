//! A run's index: the verdict, the speed and price-performance rankings with the scatter,
//! YJIT's gains, and the benchmark × type matrix of each mode.

use std::collections::BTreeMap;

use askama::Template;

use super::{RatioText, ci_text, fmt_count, fmt_ms, fmt_usd, or_dash, ratio_text};
use crate::analysis::value::ValueRow;
use crate::analysis::yjit::YjitGains;
use crate::analysis::{BenchView, ModeView, RankRow, RunView, SummaryCategory, TypeView};
use crate::charts::{self, Axes, Bar, Point};
use crate::stats::Ratio;
use crate::verdict;

/// A ranking row.
pub struct RankText {
    rank: usize,
    name: String,
    slug: String,
    provider: String,
    vs_fastest: RatioText,
    vs_baseline: RatioText,
    by_category: Vec<RatioText>,
    price: String,
    relative_cost: String,
    flags: Vec<String>,
}

/// A row of the price-performance ranking.
pub struct ValueText {
    rank: usize,
    name: String,
    slug: String,
    provider: String,
    price: String,
    value: RatioText,
    per_dollar: String,
    speed: String,
    pass_cost: String,
    front: bool,
}

/// A benchmark × types matrix cell.
pub struct MatrixCell {
    present: bool,
    mean: String,
    ci: String,
    vs: String,
    class: String,
    sort: String,
    title: String,
}

/// A matrix row.
pub struct MatrixRow {
    name: String,
    slug: String,
    category: String,
    cells: Vec<MatrixCell>,
}

/// One mode on the run index.
pub struct ModeIndex {
    mode: String,
    description: String,
    overall_count: usize,
    coverage_note: Option<String>,
    ranking: Vec<RankText>,
    ranking_chart: String,
    value: Vec<ValueText>,
    scatter: String,
    summary_notes: Vec<String>,
    benchmarks: Vec<MatrixRow>,
}

/// A type's YJIT gain on the run index.
pub struct GainRow {
    name: String,
    slug: String,
    provider: String,
    arch: String,
    gain: RatioText,
    basis: &'static str,
}

/// An architecture's YJIT gain.
pub struct ArchRow {
    arch: &'static str,
    cpus: String,
    types: usize,
    gain: RatioText,
}

/// A benchmark's YJIT gain on each type.
pub struct GainMatrixRow {
    name: String,
    slug: String,
    cells: Vec<RatioText>,
}

/// YJIT's gains on the run index.
pub struct YjitIndex {
    common: String,
    chart: String,
    rows: Vec<GainRow>,
    arches: Vec<ArchRow>,
    answer: String,
    benchmarks: Vec<GainMatrixRow>,
}

/// A type in the run index's list.
pub struct TypeLink {
    name: String,
    slug: String,
    provider: String,
    cpu: String,
    flags: Vec<String>,
}

/// What the run index shows.
pub struct RunIndex {
    id: String,
    summary_line: String,
    verdict: Vec<(String, String)>,
    other_runs: Vec<String>,
    missing_baseline: Option<String>,
    baseline: Option<String>,
    failure_count: usize,
    has_local: bool,
    stand_in: bool,
    has_prices: bool,
    price_notes: Vec<String>,
    modes: Vec<ModeIndex>,
    yjit: Option<YjitIndex>,
    types: Vec<TypeLink>,
}

/// The index of a run (also the site's front page for the latest run).
#[derive(Template)]
#[template(path = "run_index.html")]
pub struct RunIndexTemplate<'a> {
    title: String,
    root: &'a str,
    base: &'a str,
    run: &'a RunIndex,
}

fn ranking_chart(run: &RunView, mode: &ModeView) -> String {
    let bars: Vec<Bar> = mode
        .ranking
        .iter()
        .map(|r| {
            let t = run.type_view(r.type_id);
            Bar {
                label: t.name.clone(),
                provider: t.provider.clone(),
                value: r.overall.vs_fastest.value,
                ci: r.overall.vs_fastest.ci,
                dots: Vec::new(),
                value_text: format!("{:.3}", r.overall.vs_fastest.value),
            }
        })
        .collect();
    charts::bar_chart(
        &format!("ranking-{}", mode.mode),
        &format!(
            "Speed relative to the fastest instance type ({}, geometric mean)",
            mode.mode
        ),
        "relative speed (fastest = 1, higher is better; whiskers: 95% CI)",
        &bars,
        Some(1.0),
    )
}

fn scatter(run: &RunView, mode: &ModeView) -> String {
    let points: Vec<Point> = mode
        .value_ranking
        .iter()
        .map(|v| {
            let t = run.type_view(v.type_id);
            Point {
                label: t.name.clone(),
                provider: t.provider.clone(),
                x: v.usd_per_hour,
                y: v.vs_fastest.value,
                y_ci: v.vs_fastest.ci,
                on_front: v.on_front,
            }
        })
        .collect();
    charts::scatter_chart(
        Axes {
            id: &format!("scatter-{}", mode.mode),
            title: &format!(
                "Speed × price ({}): ringed points and the dashed line are the Pareto front",
                mode.mode
            ),
            x_label: "on-demand price, USD per hour (left is cheaper)",
            y_label: "speed vs fastest (higher is better)",
        },
        &points,
    )
}

fn rank_text(run: &RunView, r: &RankRow) -> RankText {
    let t = run.type_view(r.type_id);
    RankText {
        rank: r.rank,
        name: t.name.clone(),
        slug: t.slug.clone(),
        provider: t.provider.clone(),
        vs_fastest: ratio_text(Some(&r.overall.vs_fastest), r.rank == 1, "fastest"),
        vs_baseline: ratio_text(
            r.overall.vs_baseline.as_ref(),
            run.is_baseline(r.type_id),
            "baseline",
        ),
        by_category: SummaryCategory::PARTS
            .iter()
            .map(|c| {
                let ratio = r.by_category.get(c);
                ratio_text(ratio, ratio.is_some_and(|c| *c == Ratio::ONE), "fastest")
            })
            .collect(),
        price: or_dash(t.usd_per_hour().map(|p| format!("{p:.4}"))),
        relative_cost: or_dash(r.relative_cost.map(|c| format!("{c:.2}"))),
        flags: t.flags(),
    }
}

fn value_text(run: &RunView, v: &ValueRow) -> ValueText {
    let t = run.type_view(v.type_id);
    ValueText {
        rank: v.rank,
        name: t.name.clone(),
        slug: t.slug.clone(),
        provider: t.provider.clone(),
        price: format!("{:.4}", v.usd_per_hour),
        value: ratio_text(Some(&v.vs_best_value), v.rank == 1, "best value"),
        per_dollar: fmt_count(v.iterations_per_usd),
        speed: format!("{:.3}", v.vs_fastest.value),
        pass_cost: or_dash(t.pass_cost_usd().map(fmt_usd)),
        front: v.on_front,
    }
}

fn matrix_row(b: &BenchView, run: &RunView) -> MatrixRow {
    MatrixRow {
        name: b.name.clone(),
        slug: b.slug.clone(),
        category: b.category.as_str().to_owned(),
        cells: run
            .type_ids()
            .map(|id| match b.cells.get(id) {
                Some(c) => {
                    let r = ratio_text(Some(&c.vs_best), b.best == Some(id), "best");
                    MatrixCell {
                        present: true,
                        mean: fmt_ms(c.estimate.time_ms()),
                        ci: ci_text(c),
                        vs: r.text,
                        class: r.class,
                        sort: format!("{:.6}", c.estimate.time_ms()),
                        title: r.title,
                    }
                }
                None => MatrixCell {
                    present: false,
                    mean: "failed / no data".to_owned(),
                    ci: String::new(),
                    vs: String::new(),
                    class: "missing".to_owned(),
                    sort: "1e99".to_owned(),
                    title: "no result".to_owned(),
                },
            })
            .collect(),
    }
}

fn coverage_note(run: &RunView, mode: &ModeView) -> Option<String> {
    if mode.ranking.is_empty() {
        return Some(
            "No instance type has a result in this mode, so there is no ranking.".to_owned(),
        );
    }
    mode.coverage.is_partial().then(|| {
        let left_out: Vec<&str> = mode
            .coverage
            .left_out
            .iter()
            .map(|id| run.type_view(*id).name.as_str())
            .collect();
        format!(
            "No benchmark is common to every instance type. The ranking covers the {} types that share the most benchmarks; left out: {}.",
            mode.coverage.types.len(),
            left_out.join(", ")
        )
    })
}

fn mode_index(run: &RunView, mode: &ModeView) -> ModeIndex {
    ModeIndex {
        mode: mode.mode.to_string(),
        description: mode.mode.describe(),
        overall_count: mode.overall().map_or(0, |s| s.benchmarks.len()),
        coverage_note: coverage_note(run, mode),
        ranking: mode.ranking.iter().map(|r| rank_text(run, r)).collect(),
        ranking_chart: if mode.ranking.is_empty() {
            String::new()
        } else {
            ranking_chart(run, mode)
        },
        value: mode
            .value_ranking
            .iter()
            .map(|v| value_text(run, v))
            .collect(),
        scatter: if mode.value_ranking.is_empty() {
            String::new()
        } else {
            scatter(run, mode)
        },
        summary_notes: mode
            .summaries
            .iter()
            .map(|s| {
                format!(
                    "{} geometric mean over: {}.",
                    s.category,
                    s.benchmarks.join(", ")
                )
            })
            .collect(),
        benchmarks: mode.benchmarks.iter().map(|b| matrix_row(b, run)).collect(),
    }
}

fn yjit_answer(gains: &YjitGains) -> String {
    let Some(r) = &gains.arm_vs_x86 else {
        return "This run does not have both Arm and x86 types with a gain, so it cannot say whether YJIT helps one more.".to_owned();
    };
    let ratio = verdict::times(r);
    if r.is_tie() {
        format!(
            "Does YJIT help Arm more than x86? Not measurably: Arm's gain is {ratio} x86's, an interval that contains 1."
        )
    } else if r.value > 1.0 {
        format!("Does YJIT help Arm more than x86? Yes: Arm's gain is {ratio} x86's.")
    } else {
        format!(
            "Does YJIT help Arm more than x86? No, x86 gains more: Arm's gain is {ratio} x86's."
        )
    }
}

fn yjit_index(run: &RunView, gains: &YjitGains) -> YjitIndex {
    let mut ordered: Vec<_> = gains.per_type.iter().collect();
    ordered.sort_by(|(_, a), (_, b)| b.gain.value.total_cmp(&a.gain.value));
    let bars: Vec<Bar> = ordered
        .iter()
        .map(|(id, g)| {
            let t = run.type_view(*id);
            Bar {
                label: t.name.clone(),
                provider: t.provider.clone(),
                value: g.gain.value,
                ci: g.gain.ci,
                dots: Vec::new(),
                value_text: format!("{:.2}×", g.gain.value),
            }
        })
        .collect();
    YjitIndex {
        common: gains.common.join(", "),
        chart: charts::bar_chart(
            "yjit-gain",
            "YJIT's gain over the interpreter (interp time / yjit time, geometric mean)",
            "gain (1 = no gain, higher is better; whiskers: 95% CI)",
            &bars,
            Some(1.0),
        ),
        rows: ordered
            .iter()
            .map(|(id, g)| {
                let t = run.type_view(*id);
                GainRow {
                    name: t.name.clone(),
                    slug: t.slug.clone(),
                    provider: t.provider.clone(),
                    arch: t.arch.map_or("unknown", |a| a.as_str()).to_owned(),
                    gain: ratio_text(Some(&g.gain), false, "interpreter"),
                    basis: if g.paired {
                        "paired runs"
                    } else {
                        "one run: modes compared as independent"
                    },
                }
            })
            .collect(),
        arches: gains
            .by_arch
            .iter()
            .map(|a| ArchRow {
                arch: a.arch.as_str(),
                cpus: a.cpu_models.join(", "),
                types: a.types.len(),
                gain: ratio_text(Some(&a.gain), false, "interpreter"),
            })
            .collect(),
        answer: yjit_answer(gains),
        benchmarks: gains
            .benchmarks
            .iter()
            .map(|b| GainMatrixRow {
                name: b.name.clone(),
                slug: b.slug.clone(),
                cells: run
                    .type_ids()
                    .map(|id| ratio_text(b.gains.get(id), false, "interpreter"))
                    .collect(),
            })
            .collect(),
    }
}

/// Where the prices came from, grouped by table, source and date, and the types without one.
fn price_notes(run: &RunView) -> Vec<String> {
    let mut groups: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for t in &run.types {
        if let Some(p) = &t.price {
            let dated = p
                .as_of
                .as_ref()
                .map_or_else(|| "undated".to_owned(), |d| format!("as of {d}"));
            let origin = p.origin.describe();
            // A file without a source column names its table as the source.
            let source = if p.source == origin {
                dated
            } else {
                format!("{}, {dated}", p.source)
            };
            groups
                .entry((origin.to_owned(), source))
                .or_default()
                .push(&t.name);
        }
    }
    let mut notes: Vec<String> = groups
        .into_iter()
        .map(|((origin, source), types)| {
            format!("Prices of {}: {source}, from {origin}.", types.join(", "))
        })
        .collect();
    let unpriced: Vec<&str> = run
        .types
        .iter()
        .filter(|t| t.price.is_none())
        .map(|t| t.name.as_str())
        .collect();
    if !unpriced.is_empty() {
        notes.push(format!(
            "No price for {}: pass --prices FILE to add one.",
            unpriced.join(", ")
        ));
    }
    notes
}

/// Builds the run index's text.
pub fn run_index(run: &RunView, all_runs: &[String], failure_count: usize) -> RunIndex {
    let tasks: usize = run.types.iter().map(|t| t.runs.len()).sum();
    RunIndex {
        id: run.id.clone(),
        summary_line: format!(
            "{}Ruby {}; {} instance types, {} tasks.",
            run.date
                .as_ref()
                .map_or_else(String::new, |d| format!("Started {d}. ")),
            if run.ruby_versions.is_empty() {
                "unknown".to_owned()
            } else {
                run.ruby_versions.join(", ")
            },
            run.types.len(),
            tasks
        ),
        verdict: verdict::verdict(run)
            .lines
            .into_iter()
            .map(|l| (l.topic.to_owned(), l.text))
            .collect(),
        other_runs: all_runs.iter().filter(|r| **r != run.id).cloned().collect(),
        missing_baseline: run.missing_baseline.clone(),
        baseline: run.baseline.clone(),
        failure_count,
        has_local: run.types.iter().any(TypeView::is_local),
        stand_in: run.types.iter().any(|t| t.stand_in),
        has_prices: run.types.iter().any(|t| t.price.is_some()),
        price_notes: price_notes(run),
        modes: run.modes.iter().map(|m| mode_index(run, m)).collect(),
        yjit: run.yjit.as_ref().map(|g| yjit_index(run, g)),
        types: run
            .types
            .iter()
            .map(|t| TypeLink {
                name: t.name.clone(),
                slug: t.slug.clone(),
                provider: t.provider.clone(),
                cpu: t.cpu_models.join(", "),
                flags: t.flags(),
            })
            .collect(),
    }
}

/// Renders the index of a run; `root` leads to the site root, `base` to the run's folder.
pub fn render_run_index(index: &RunIndex, root: &str, base: &str) -> askama::Result<String> {
    RunIndexTemplate {
        title: format!("Run {}", index.id),
        root,
        base,
        run: index,
    }
    .render()
}
