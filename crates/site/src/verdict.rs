//! The verdict at the top of a run: in a few sentences, the fastest type, the best value, the
//! best of each provider, the ties, and what to be careful about.
//!
//! It speaks of one mode ([`RunView::lead_mode`]: YJIT when the run has it) and only says what
//! the intervals support: a type is "the fastest" with the types it is tied with named.

use std::collections::BTreeMap;

use crate::analysis::{ModeView, RunView, TypeView};
use crate::prices::PriceOrigin;
use crate::stats::{self, Ratio};

/// One sentence of the verdict, under a short topic.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictLine {
    /// What the sentence answers, e.g. `Fastest`.
    pub topic: &'static str,
    /// The answer.
    pub text: String,
}

/// The verdict of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Its sentences, in reading order.
    pub lines: Vec<VerdictLine>,
}

impl Verdict {
    /// The verdict as plain text, one `topic: text` line each.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|l| format!("{}: {}\n", l.topic, l.text))
            .collect()
    }
}

/// `1.234× [1.100–1.370]`, or without the interval when there is none.
pub fn times(ratio: &Ratio) -> String {
    match ratio.ci {
        Some((lo, hi)) => format!("{:.2}× [{lo:.2}–{hi:.2}]", ratio.value),
        None => format!("{:.2}× (no interval)", ratio.value),
    }
}

fn names<'a>(types: impl Iterator<Item = &'a TypeView>) -> String {
    types
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the verdict of a run.
pub fn verdict(run: &RunView) -> Verdict {
    let Some(mode) = run.lead_mode().filter(|m| !m.ranking.is_empty()) else {
        return Verdict {
            lines: vec![VerdictLine {
                topic: "Verdict",
                text: "none: no benchmark has results in this run".to_owned(),
            }],
        };
    };
    let mut lines = vec![
        fastest(run, mode),
        best_value(run, mode),
        best_per_provider(run, mode),
        ties(run, mode),
    ];
    lines.extend(yjit(run));
    lines.push(careful(run, mode));
    Verdict { lines }
}

fn fastest(run: &RunView, mode: &ModeView) -> VerdictLine {
    let top = &mode.ranking[0];
    let tied: Vec<&TypeView> = mode.ranking[1..]
        .iter()
        .filter(|r| r.overall.vs_fastest.is_tie())
        .map(|r| run.type_view(r.type_id))
        .collect();
    let count = mode.overall().map_or(0, |s| s.benchmarks.len());
    let mut text = format!(
        "{} ({} mode, geometric mean over {count} benchmarks)",
        run.type_view(top.type_id).name,
        mode.mode
    );
    if tied.is_empty() {
        if let Some(second) = mode.ranking.get(1) {
            text.push_str(&format!(
                "; the runner-up {} runs at {} of its speed",
                run.type_view(second.type_id).name,
                times(&second.overall.vs_fastest)
            ));
        }
    } else {
        text.push_str(&format!(
            ", but not significantly faster than {}",
            names(tied.into_iter())
        ));
    }
    VerdictLine {
        topic: "Fastest",
        text,
    }
}

fn best_value(run: &RunView, mode: &ModeView) -> VerdictLine {
    let Some(best) = mode.value_ranking.first() else {
        return VerdictLine {
            topic: "Best value",
            text: "unknown: no price for any ranked type".to_owned(),
        };
    };
    let t = run.type_view(best.type_id);
    let price = t.price.as_ref().expect("value rows are priced");
    let dated = price
        .as_of
        .as_ref()
        .map_or_else(|| "undated".to_owned(), |d| format!("as of {d}"));
    let mut text = format!(
        "{} at {:.4} USD/hour (price {dated}, from {})",
        t.name,
        best.usd_per_hour,
        price.origin.describe()
    );
    if let Some(second) = mode.value_ranking.get(1) {
        let inverse = Ratio {
            value: 1.0 / second.vs_best_value.value,
            ci: second.vs_best_value.ci.map(|(lo, hi)| (1.0 / hi, 1.0 / lo)),
        };
        let verb = if second.vs_best_value.is_tie() {
            "tied with"
        } else {
            "ahead of"
        };
        text.push_str(&format!(
            ", {verb} {}: {} its speed per dollar",
            run.type_view(second.type_id).name,
            times(&inverse)
        ));
    }
    VerdictLine {
        topic: "Best value",
        text,
    }
}

fn best_per_provider(run: &RunView, mode: &ModeView) -> VerdictLine {
    let mut fastest: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &mode.ranking {
        let t = run.type_view(r.type_id);
        fastest
            .entry(t.provider.as_str())
            .or_insert(t.name.as_str());
    }
    let mut value: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &mode.value_ranking {
        let t = run.type_view(r.type_id);
        value.entry(t.provider.as_str()).or_insert(t.name.as_str());
    }
    let parts: Vec<String> = fastest
        .iter()
        .map(|(provider, name)| match value.get(provider) {
            Some(v) if v == name => format!("{provider}: {name} (fastest and best value)"),
            Some(v) => format!("{provider}: {name} (fastest), {v} (best value)"),
            None => format!("{provider}: {name} (fastest)"),
        })
        .collect();
    VerdictLine {
        topic: "Best of each provider",
        text: parts.join("; "),
    }
}

fn ties(run: &RunView, mode: &ModeView) -> VerdictLine {
    let tied: Vec<String> = mode
        .ranking
        .windows(2)
        .filter_map(|pair| {
            let ratio = stats::speed_ratio(&pair[1].overall.estimate, &pair[0].overall.estimate);
            ratio.is_tie().then(|| {
                format!(
                    "{} ≈ {} ({})",
                    run.type_view(pair[0].type_id).name,
                    run.type_view(pair[1].type_id).name,
                    times(&ratio)
                )
            })
        })
        .collect();
    VerdictLine {
        topic: "Tied",
        text: if tied.is_empty() {
            "no two neighbours in the ranking: each step is significant at 95%".to_owned()
        } else {
            format!(
                "{} (neighbours in the ranking whose 95% interval contains 1)",
                tied.join("; ")
            )
        },
    }
}

fn yjit(run: &RunView) -> Option<VerdictLine> {
    let gains = run.yjit.as_ref()?;
    let per_arch: Vec<String> = gains
        .by_arch
        .iter()
        .map(|a| format!("{} {}", a.arch.as_str(), times(&a.gain)))
        .collect();
    if per_arch.is_empty() {
        return None;
    }
    let mut text = format!("faster than the interpreter: {}", per_arch.join(", "));
    if let Some(r) = &gains.arm_vs_x86 {
        text.push_str(&if r.is_tie() {
            format!(
                "; no significant difference between Arm and x86 ({})",
                times(r)
            )
        } else if r.value > 1.0 {
            format!("; it helps Arm more ({} x86's gain)", times(r))
        } else {
            format!("; it helps x86 more (Arm gets {} x86's gain)", times(r))
        });
    }
    Some(VerdictLine {
        topic: "YJIT",
        text,
    })
}

fn careful(run: &RunView, mode: &ModeView) -> VerdictLine {
    let with = |keep: fn(&TypeView) -> bool| names(run.types.iter().filter(|t| keep(t)));
    let mut notes = Vec::new();
    let shared = with(|t| t.shared_core);
    if !shared.is_empty() {
        notes.push(format!("shared cores (SMT) on {shared}"));
    }
    let noisy = with(|t| t.noisy);
    if !noisy.is_empty() {
        notes.push(format!("noisy runs on {noisy}"));
    }
    let steal = with(|t| {
        t.max_steal_pct
            .is_some_and(|s| s > crate::analysis::STEAL_PCT)
    });
    if !steal.is_empty() {
        notes.push(format!("CPU steal on {steal}"));
    }
    let stand_in = with(|t| t.stand_in);
    if !stand_in.is_empty() {
        notes.push(format!(
            "{stand_in} measured with ruby-bench-mini, a stand-in: its numbers are not ruby-bench's"
        ));
    }
    let local = with(TypeView::is_local);
    if !local.is_empty() {
        notes.push(format!(
            "local Docker results ({local}), not cloud machines"
        ));
    }
    let single = with(|t| t.runs.len() == 1);
    if !single.is_empty() {
        notes.push(format!("one run only on {single}"));
    }
    if mode.coverage.is_partial() {
        notes.push(format!(
            "{} left out of the ranking (no benchmark in common with the others)",
            names(mode.coverage.left_out.iter().map(|id| run.type_view(*id)))
        ));
    }
    let shipped = with(|t| {
        t.price
            .as_ref()
            .is_some_and(|p| p.origin == PriceOrigin::Shipped)
    });
    if !shipped.is_empty() {
        notes.push(format!(
            "prices of {shipped} from the shipped table, not recorded for this run"
        ));
    }
    let unpriced = with(|t| t.price.is_none());
    if !unpriced.is_empty() {
        notes.push(format!("no price for {unpriced}"));
    }
    if !run.failed_tasks.is_empty() {
        notes.push(format!("{} failed tasks", run.failed_tasks.len()));
    }
    VerdictLine {
        topic: "Careful",
        text: if notes.is_empty() {
            "nothing flagged".to_owned()
        } else {
            notes.join("; ")
        },
    }
}
