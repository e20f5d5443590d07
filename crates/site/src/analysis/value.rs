//! Price-performance: speed per dollar with its interval, and the Pareto front of speed and
//! price.
//!
//! A type's cost for the same work is its geometric-mean time × its hourly price; its value
//! relative to the best-value type is the inverse ratio of those costs. Prices are taken as
//! exact, so the interval is the speed ratio's interval scaled by the price ratio.

use crate::analysis::{RankRow, TypeId, TypeView};
use crate::stats::{self, Ratio};

/// Milliseconds in an hour, to turn a time per iteration and a price per hour into
/// iterations per dollar.
const MS_PER_HOUR: f64 = 3_600_000.0;

/// A line of the price-performance ranking.
#[derive(Debug, Clone)]
pub struct ValueRow {
    /// 1-based rank, best value first.
    pub rank: usize,
    /// The instance type.
    pub type_id: TypeId,
    /// Its hourly price.
    pub usd_per_hour: f64,
    /// Speed per dollar relative to the best-value type (1 = best; higher is better).
    pub vs_best_value: Ratio,
    /// Iterations of the geometric-mean benchmark one dollar buys.
    pub iterations_per_usd: f64,
    /// Speed relative to the fastest type (the scatter's vertical axis).
    pub vs_fastest: Ratio,
    /// No other type is both at least as fast and at least as cheap (and better in one).
    pub on_front: bool,
}

/// Ranks the priced types of a speed ranking by speed per dollar.
pub fn rank(ranking: &[RankRow], types: &[TypeView]) -> Vec<ValueRow> {
    let mut priced: Vec<(&RankRow, f64)> = ranking
        .iter()
        .filter_map(|r| Some((r, types[r.type_id.0].usd_per_hour()?)))
        .collect();
    let log_cost = |(r, price): &(&RankRow, f64)| r.overall.estimate.mean + price.ln();
    priced.sort_by(|a, b| {
        log_cost(a)
            .total_cmp(&log_cost(b))
            .then(types[a.0.type_id.0].name.cmp(&types[b.0.type_id.0].name))
    });
    let Some(&(best, best_price)) = priced.first() else {
        return Vec::new();
    };
    priced
        .iter()
        .enumerate()
        .map(|(i, &(row, price))| ValueRow {
            rank: i + 1,
            type_id: row.type_id,
            usd_per_hour: price,
            vs_best_value: if i == 0 {
                Ratio::ONE
            } else {
                stats::speed_ratio(&row.overall.estimate, &best.overall.estimate)
                    .scaled(best_price / price)
            },
            iterations_per_usd: MS_PER_HOUR / (row.overall.estimate.time_ms() * price),
            vs_fastest: row.overall.vs_fastest,
            on_front: !priced.iter().any(|&(other, other_price)| {
                dominates(
                    (other.overall.estimate.mean, other_price),
                    (row.overall.estimate.mean, price),
                )
            }),
        })
        .collect()
}

/// True when `a` (log time, price) is at least as good as `b` on both and better on one.
fn dominates(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 <= b.0 && a.1 <= b.1 && (a.0 < b.0 || a.1 < b.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_keeps_what_nothing_beats_on_both() {
        assert!(dominates((1.0, 1.0), (2.0, 2.0)));
        assert!(dominates((1.0, 1.0), (1.0, 2.0)));
        assert!(!dominates((1.0, 1.0), (1.0, 1.0)));
        assert!(!dominates((1.0, 3.0), (2.0, 2.0)));
    }
}
