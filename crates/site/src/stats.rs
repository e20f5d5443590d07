//! Statistics on log times: estimates with their uncertainty, Welch confidence intervals on
//! ratios, Student's t quantiles. Everything is closed-form, so output is deterministic.

/// The confidence level of every interval on the site.
pub const CONFIDENCE: f64 = 0.95;

/// An estimate of a mean log time (natural log of milliseconds) with the variance of that
/// estimate and its degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogEstimate {
    /// The mean of the log samples.
    pub mean: f64,
    /// The variance of `mean` (sample variance / n); `None` when it cannot be estimated.
    pub var: Option<f64>,
    /// Degrees of freedom of `var`.
    pub df: f64,
}

impl LogEstimate {
    /// The estimate from samples of log times (n-1 sample variance).
    pub fn from_logs(logs: &[f64]) -> Option<Self> {
        if logs.is_empty() {
            return None;
        }
        let n = logs.len() as f64;
        let mean = logs.iter().sum::<f64>() / n;
        let var = (logs.len() >= 2)
            .then(|| logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0) / n);
        Some(Self {
            mean,
            var,
            df: n - 1.0,
        })
    }

    /// The estimated time, the geometric mean of the samples, in milliseconds.
    pub fn time_ms(&self) -> f64 {
        self.mean.exp()
    }

    /// The confidence interval of the time, in milliseconds.
    pub fn time_ci_ms(&self) -> Option<(f64, f64)> {
        let half = t_quantile(self.df)? * self.var?.sqrt();
        Some(((self.mean - half).exp(), (self.mean + half).exp()))
    }

    /// The mean of several estimates (a geometric mean of times), with Welch–Satterthwaite
    /// degrees of freedom, treating the estimates as independent.
    pub fn average(parts: &[LogEstimate]) -> Option<Self> {
        if parts.is_empty() {
            return None;
        }
        let k = parts.len() as f64;
        let mean = parts.iter().map(|p| p.mean).sum::<f64>() / k;
        let vars: Option<Vec<(f64, f64)>> =
            parts.iter().map(|p| p.var.map(|v| (v, p.df))).collect();
        let (var, df) = match vars {
            Some(vars) => {
                let total: f64 = vars.iter().map(|(v, _)| v).sum();
                let denom: f64 = vars.iter().map(|(v, df)| v * v / df).sum();
                let df = if denom > 0.0 {
                    total * total / denom
                } else {
                    vars.iter().map(|(_, df)| df).sum()
                };
                (Some(total / (k * k)), df)
            }
            None => (None, 0.0),
        };
        Some(Self { mean, var, df })
    }
}

/// A speed ratio `reference time / this time` (above 1: faster than the reference) with its
/// confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// The point estimate.
    pub value: f64,
    /// The interval, when both sides have a variance.
    pub ci: Option<(f64, f64)>,
}

impl Ratio {
    /// The ratio of a thing to itself.
    pub const ONE: Ratio = Ratio {
        value: 1.0,
        ci: Some((1.0, 1.0)),
    };

    /// True when the interval contains 1: the difference is not significant.
    pub fn is_tie(&self) -> bool {
        self.ci.is_some_and(|(lo, hi)| lo <= 1.0 && 1.0 <= hi)
    }

    /// True when the interval excludes 1.
    pub fn is_significant(&self) -> bool {
        self.ci.is_some_and(|(lo, hi)| lo > 1.0 || hi < 1.0)
    }
}

/// The speed of `this` relative to `reference`: `time(reference) / time(this)`, with a Welch
/// interval on the difference of the mean logs.
pub fn speed_ratio(this: &LogEstimate, reference: &LogEstimate) -> Ratio {
    let d = reference.mean - this.mean;
    let ci = match (this.var, reference.var) {
        (Some(va), Some(vb)) => {
            let total = va + vb;
            let denom = va * va / this.df + vb * vb / reference.df;
            let df = if denom > 0.0 {
                total * total / denom
            } else {
                this.df + reference.df
            };
            t_quantile(df).map(|t| {
                let half = t * total.sqrt();
                ((d - half).exp(), (d + half).exp())
            })
        }
        _ => None,
    };
    Ratio { value: d.exp(), ci }
}

/// The estimate of `a - b` (a log ratio), with Welch–Satterthwaite degrees of freedom; no
/// variance when either side has none.
pub fn log_difference(a: &LogEstimate, b: &LogEstimate) -> LogEstimate {
    let (var, df) = match (a.var, b.var) {
        (Some(va), Some(vb)) => {
            let total = va + vb;
            let denom = va * va / a.df + vb * vb / b.df;
            let df = if denom > 0.0 {
                total * total / denom
            } else {
                a.df + b.df
            };
            (Some(total), df)
        }
        _ => (None, 0.0),
    };
    LogEstimate {
        mean: a.mean - b.mean,
        var,
        df,
    }
}

impl Ratio {
    /// The ratio `exp(estimate)` of an estimated log ratio, with its interval.
    pub fn from_log(estimate: &LogEstimate) -> Ratio {
        let ci = estimate.var.and_then(|var| {
            t_quantile(estimate.df).map(|t| {
                let half = t * var.sqrt();
                ((estimate.mean - half).exp(), (estimate.mean + half).exp())
            })
        });
        Ratio {
            value: estimate.mean.exp(),
            ci,
        }
    }

    /// The ratio multiplied by a known constant (a price ratio), interval included.
    pub fn scaled(self, factor: f64) -> Ratio {
        Ratio {
            value: self.value * factor,
            ci: self.ci.map(|(lo, hi)| (lo * factor, hi * factor)),
        }
    }
}

/// Degrees of freedom are rounded down to a multiple of `1 / DF_STEPS` before taking a
/// quantile, so quantiles can be cached (Welch degrees of freedom are rarely whole numbers).
/// Rounding down widens an interval by a hair, never narrows it.
const DF_STEPS: f64 = 64.0;

/// The two-sided [`CONFIDENCE`] quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile(df: f64) -> Option<f64> {
    if !(df.is_finite() && df > 0.0) {
        return None;
    }
    let steps = (df.min(1e6) * DF_STEPS).floor();
    if steps < 1.0 {
        return exact_t_quantile(df);
    }
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<u64, Option<f64>>> =
            Default::default();
    }
    CACHE.with(|cache| {
        *cache
            .borrow_mut()
            .entry(steps as u64)
            .or_insert_with(|| exact_t_quantile(steps / DF_STEPS))
    })
}

fn exact_t_quantile(df: f64) -> Option<f64> {
    let target = 1.0 - (1.0 - CONFIDENCE) / 2.0;
    // Bracket, then bisect the CDF. The CDF is monotone, so this always converges; 60 halvings
    // of [0, 1024) reach below 1e-15.
    let (mut lo, mut hi) = (0.0_f64, 1024.0_f64);
    if t_cdf(hi, df) < target {
        return None;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// The CDF of Student's t at `t >= 0`: `1 - I_x(df/2, 1/2) / 2` with `x = df / (df + t²)`.
fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    1.0 - 0.5 * incomplete_beta(x, df / 2.0, 0.5)
}

/// The regularized incomplete beta function `I_x(a, b)`, by its continued fraction (evaluated
/// with the modified Lentz method) on whichever side converges fast.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        // Even step, then odd step of the continued fraction.
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        for coefficient in [even, odd] {
            d = 1.0 + coefficient * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + coefficient / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// `ln Γ(x)` for `x > 0`: shifted up with `Γ(x+1) = xΓ(x)`, then Stirling's series.
fn ln_gamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= x.ln();
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
    shift + (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series
}

/// The geometric mean of positive numbers.
pub fn geomean(values: &[f64]) -> Option<f64> {
    (!values.is_empty())
        .then(|| (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

/// The sample standard deviation of `values` in percent of their mean (n-1), for n >= 2.
pub fn relative_sample_stddev_pct(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some(100.0 * var.sqrt() / mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        for (df, expected) in [
            (1.0, 12.7062),
            (2.0, 4.3027),
            (4.0, 2.7764),
            (9.0, 2.2622),
            (30.0, 2.0423),
            (1e6, 1.9600),
        ] {
            let t = t_quantile(df).unwrap();
            assert!((t - expected).abs() < 1e-3, "df {df}: {t} vs {expected}");
        }
        assert_eq!(t_quantile(0.0), None);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!((ln_gamma(5.0) - 24.0_f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn ratios_and_ties() {
        let fast =
            LogEstimate::from_logs(&[100.0_f64.ln(), 101.0_f64.ln(), 99.0_f64.ln()]).unwrap();
        let slow =
            LogEstimate::from_logs(&[200.0_f64.ln(), 202.0_f64.ln(), 198.0_f64.ln()]).unwrap();
        let noisy =
            LogEstimate::from_logs(&[150.0_f64.ln(), 250.0_f64.ln(), 200.0_f64.ln()]).unwrap();
        let r = speed_ratio(&fast, &slow);
        assert!((r.value - 2.0).abs() < 0.01);
        assert!(r.is_significant());
        assert!(speed_ratio(&noisy, &slow).is_tie());
        let single = LogEstimate::from_logs(&[5.0]).unwrap();
        assert_eq!(speed_ratio(&single, &slow).ci, None);
        assert!(!speed_ratio(&single, &slow).is_tie());
    }

    #[test]
    fn geomean_is_not_a_sum() {
        assert!((geomean(&[1.0, 4.0]).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(geomean(&[]), None);
        assert!((relative_sample_stddev_pct(&[9.0, 11.0]).unwrap() - 14.142_135).abs() < 1e-5);
    }
}
