//! YJIT's gain over the interpreter: `interp time / yjit time` per benchmark and instance type,
//! as a geometric mean per type, and per CPU architecture (does YJIT help Arm more than x86?).
//!
//! Both modes run in the same task, so a run's two numbers for a benchmark come from one
//! machine: with two or more runs the gain's interval comes from the spread of the per-run
//! gains (a paired comparison, which keeps the machine's own speed out of the interval). With
//! one run, the two modes' estimates are compared as independent.

use std::collections::{BTreeMap, BTreeSet};

use crate::analysis::{Arch, BenchView, Cell, ModeName, ModeView, PerType, TypeId, TypeView};
use crate::stats::{self, LogEstimate, Ratio};

/// YJIT's gains in one run.
#[derive(Debug, Clone)]
pub struct YjitGains {
    /// Per benchmark that both modes ran, in the interpreter's order.
    pub benchmarks: Vec<BenchGain>,
    /// The benchmarks the per-type geometric means cover (common to every type in both modes).
    pub common: Vec<String>,
    /// Each type's geometric-mean gain over `common`.
    pub per_type: PerType<TypeGain>,
    /// Per architecture: the geometric mean of its types' gains.
    pub by_arch: Vec<ArchGain>,
    /// Arm's gain divided by x86's, when the run has both.
    pub arm_vs_x86: Option<Ratio>,
}

/// One benchmark's gain on each type.
#[derive(Debug, Clone)]
pub struct BenchGain {
    /// The benchmark.
    pub name: String,
    /// Its page's slug.
    pub slug: String,
    /// The gain per type (interp time / yjit time; above 1: YJIT is faster).
    pub gains: PerType<Ratio>,
}

/// A type's geometric-mean gain.
#[derive(Debug, Clone)]
pub struct TypeGain {
    /// The estimate of the mean log gain.
    pub log: LogEstimate,
    /// The gain with its interval.
    pub gain: Ratio,
    /// True when the interval comes from two or more paired runs.
    pub paired: bool,
}

/// An architecture's gain.
#[derive(Debug, Clone)]
pub struct ArchGain {
    /// The architecture.
    pub arch: Arch,
    /// Its types.
    pub types: Vec<TypeId>,
    /// Their CPU models.
    pub cpu_models: Vec<String>,
    /// The geometric mean of the types' gains.
    pub gain: Ratio,
    log: LogEstimate,
}

/// The gains, when the run has both an `interp` and a `yjit` mode with a benchmark in common.
pub fn gains(modes: &[ModeView], types: &[TypeView]) -> Option<YjitGains> {
    let interp = modes.iter().find(|m| m.mode == ModeName::Interp)?;
    let yjit = modes.iter().find(|m| m.mode == ModeName::Yjit)?;
    let pairs: Vec<(&BenchView, &BenchView)> = interp
        .benchmarks
        .iter()
        .filter_map(|b| Some((b, yjit.benchmark(&b.name)?)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let benchmarks = pairs
        .iter()
        .map(|(i, y)| BenchGain {
            name: i.name.clone(),
            slug: i.slug.clone(),
            gains: PerType::from_fn(types.len(), |id| {
                log_gain(i.cells.get(id)?, y.cells.get(id)?).map(|l| Ratio::from_log(&l))
            }),
        })
        .collect();
    let in_both = |m: &ModeView| -> BTreeSet<String> {
        m.overall()
            .map(|s| s.benchmarks.iter().cloned().collect())
            .unwrap_or_default()
    };
    let yjit_common = in_both(yjit);
    let common: Vec<String> = in_both(interp)
        .into_iter()
        .filter(|b| yjit_common.contains(b))
        .collect();
    let common_pairs: Vec<&(&BenchView, &BenchView)> = pairs
        .iter()
        .filter(|(i, _)| common.contains(&i.name))
        .collect();
    let per_type = PerType::from_fn(types.len(), |id| type_gain(&common_pairs, id));
    let by_arch = arch_gains(&per_type, types);
    let arch_log = |arch: Arch| by_arch.iter().find(|a| a.arch == arch).map(|a| a.log);
    let arm_vs_x86 = arch_log(Arch::Arm)
        .zip(arch_log(Arch::X86))
        .map(|(arm, x86)| Ratio::from_log(&stats::log_difference(&arm, &x86)));
    Some(YjitGains {
        benchmarks,
        common,
        per_type,
        by_arch,
        arm_vs_x86,
    })
}

/// The log gain on one benchmark: paired per run when two or more runs have both modes.
fn log_gain(interp: &Cell, yjit: &Cell) -> Option<LogEstimate> {
    let yjit_runs: BTreeMap<u32, f64> = yjit.run_means().collect();
    let paired: Vec<f64> = interp
        .run_means()
        .filter_map(|(run, ms)| Some(ms.ln() - yjit_runs.get(&run)?.ln()))
        .collect();
    if paired.len() >= 2 {
        LogEstimate::from_logs(&paired)
    } else {
        Some(stats::log_difference(&interp.estimate, &yjit.estimate))
    }
}

/// A type's geometric-mean gain over the common benchmarks: each run's mean log gain, when two
/// or more runs have every common benchmark in both modes; else the benchmarks' gains combined
/// as independent.
fn type_gain(pairs: &[&(&BenchView, &BenchView)], id: TypeId) -> Option<TypeGain> {
    let cells: Vec<(&Cell, &Cell)> = pairs
        .iter()
        .map(|(i, y)| Some((i.cells.get(id)?, y.cells.get(id)?)))
        .collect::<Option<_>>()?;
    if cells.is_empty() {
        return None;
    }
    let mut per_run: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for (interp, yjit) in &cells {
        let yjit_runs: BTreeMap<u32, f64> = yjit.run_means().collect();
        for (run, ms) in interp.run_means() {
            if let Some(y) = yjit_runs.get(&run) {
                per_run.entry(run).or_default().push(ms.ln() - y.ln());
            }
        }
    }
    let scores: Vec<f64> = per_run
        .values()
        .filter(|gains| gains.len() == cells.len())
        .map(|gains| gains.iter().sum::<f64>() / gains.len() as f64)
        .collect();
    let (log, paired) = if scores.len() >= 2 {
        (LogEstimate::from_logs(&scores)?, true)
    } else {
        let parts: Vec<LogEstimate> = cells
            .iter()
            .map(|(i, y)| stats::log_difference(&i.estimate, &y.estimate))
            .collect();
        (LogEstimate::average(&parts)?, false)
    };
    Some(TypeGain {
        gain: Ratio::from_log(&log),
        log,
        paired,
    })
}

fn arch_gains(per_type: &PerType<TypeGain>, types: &[TypeView]) -> Vec<ArchGain> {
    let mut groups: BTreeMap<Arch, Vec<(TypeId, &TypeGain)>> = BTreeMap::new();
    for (id, gain) in per_type.iter() {
        if let Some(arch) = types[id.0].arch {
            groups.entry(arch).or_default().push((id, gain));
        }
    }
    groups
        .into_iter()
        .filter_map(|(arch, members)| {
            let log =
                LogEstimate::average(&members.iter().map(|(_, g)| g.log).collect::<Vec<_>>())?;
            let cpu_models: BTreeSet<String> = members
                .iter()
                .flat_map(|(id, _)| types[id.0].cpu_models.iter().cloned())
                .collect();
            Some(ArchGain {
                arch,
                types: members.iter().map(|(id, _)| *id).collect(),
                cpu_models: cpu_models.into_iter().collect(),
                gain: Ratio::from_log(&log),
                log,
            })
        })
        .collect()
}
