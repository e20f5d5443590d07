//! Inline SVG charts. One colour per provider and a direct label on every bar or line, so a
//! chart stays readable with any number of instance types (no palette that repeats).

use std::fmt::Write;

/// Escapes text for XML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colour of a provider; also used by the CSS badges.
pub fn provider_colour(provider: &str) -> &'static str {
    match provider {
        "aws" => "#b85c00",
        "azure" => "#1f63a8",
        "local" => "#6b6b6b",
        _ => "#4d7a2a",
    }
}

/// A key of the provider colours present, in the top right corner.
fn legend<'a>(providers: impl Iterator<Item = &'a str>) -> String {
    let present: std::collections::BTreeSet<&str> = providers.collect();
    let mut s = String::new();
    let mut x = WIDTH - 10.0;
    for provider in present.iter().rev() {
        let width = 7.0 * provider.len() as f64 + 18.0;
        x -= width;
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="28" width="10" height="10" fill="{}" fill-opacity="0.75"/><text class="tick" x="{:.1}" y="37">{}</text>"#,
            provider_colour(provider),
            x + 13.0,
            escape(provider)
        );
    }
    s
}

/// One bar: an instance type's value with its interval and the runs behind it.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The direct label (instance type).
    pub label: String,
    /// Its provider, for the colour.
    pub provider: String,
    /// The bar's length.
    pub value: f64,
    /// The whisker.
    pub ci: Option<(f64, f64)>,
    /// One dot per run.
    pub dots: Vec<f64>,
    /// The text printed after the bar.
    pub value_text: String,
}

const WIDTH: f64 = 760.0;
const LABEL_WIDTH: f64 = 190.0;
const VALUE_WIDTH: f64 = 150.0;
const ROW: f64 = 22.0;
const TOP: f64 = 44.0;

/// A step of 1, 2 or 5 times a power of ten giving about `target` ticks up to `max`.
fn tick_step(max: f64, target: f64) -> f64 {
    let raw = max / target;
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

fn tick_text(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else if step >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A horizontal bar chart with confidence whiskers and run dots, one row per bar.
pub fn bar_chart(
    id: &str,
    title: &str,
    axis_label: &str,
    bars: &[Bar],
    reference: Option<f64>,
) -> String {
    let plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let height = TOP + ROW * bars.len() as f64 + 48.0;
    let max = bars
        .iter()
        .flat_map(|b| {
            std::iter::once(b.value)
                .chain(b.ci.map(|c| c.1))
                .chain(b.dots.iter().copied())
        })
        .chain(reference)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let step = tick_step(max, 5.0);
    let axis_max = (max / step).ceil() * step;
    let x = |v: f64| LABEL_WIDTH + plot * (v / axis_max).clamp(0.0, 1.0);
    let mut s = String::new();
    svg_open(&mut s, id, title, height);
    let bottom = TOP + ROW * bars.len() as f64;
    s.push_str(&legend(bars.iter().map(|b| b.provider.as_str())));
    let mut tick = 0.0;
    while tick <= axis_max + step / 2.0 {
        let tx = x(tick);
        let _ = write!(
            s,
            r##"<line class="grid" x1="{tx:.1}" y1="{TOP:.1}" x2="{tx:.1}" y2="{bottom:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"##,
            ty = bottom + 14.0,
            label = tick_text(tick, step)
        );
        tick += step;
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let colour = provider_colour(&bar.provider);
        let _ = write!(
            s,
            r#"<text class="bar-label" x="{lx:.1}" y="{ty:.1}" text-anchor="end">{label}</text><rect x="{LABEL_WIDTH:.1}" y="{ry:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}" fill-opacity="0.75"><title>{label}: {vt}</title></rect>"#,
            lx = LABEL_WIDTH - 6.0,
            ty = y + ROW * 0.68,
            label = escape(&bar.label),
            ry = y + 4.0,
            w = (x(bar.value) - LABEL_WIDTH).max(0.5),
            h = ROW - 8.0,
            vt = escape(&bar.value_text)
        );
        if let Some((lo, hi)) = bar.ci {
            let cy = y + ROW / 2.0;
            let _ = write!(
                s,
                r#"<path class="whisker" d="M{a:.1} {cy:.1}H{b:.1}M{a:.1} {t:.1}V{u:.1}M{b:.1} {t:.1}V{u:.1}"/>"#,
                a = x(lo),
                b = x(hi),
                t = cy - 5.0,
                u = cy + 5.0
            );
        }
        for dot in &bar.dots {
            let _ = write!(
                s,
                r#"<circle class="dot" cx="{:.1}" cy="{:.1}" r="2.6"/>"#,
                x(*dot),
                y + ROW / 2.0
            );
        }
        let _ = write!(
            s,
            r#"<text class="bar-value" x="{vx:.1}" y="{ty:.1}">{vt}</text>"#,
            vx = WIDTH - VALUE_WIDTH + 6.0,
            ty = y + ROW * 0.68,
            vt = escape(&bar.value_text)
        );
    }
    if let Some(r) = reference {
        let rx = x(r);
        let _ = write!(
            s,
            r#"<line class="reference" x1="{rx:.1}" y1="{a:.1}" x2="{rx:.1}" y2="{bottom:.1}"/>"#,
            a = TOP - 4.0
        );
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LABEL_WIDTH:.1}" y1="{bottom:.1}" x2="{r:.1}" y2="{bottom:.1}"/><text class="axis-label" x="{cx:.1}" y="{ly:.1}" text-anchor="middle">{a}</text></svg>"#,
        r = LABEL_WIDTH + plot,
        cx = LABEL_WIDTH + plot / 2.0,
        ly = bottom + 34.0,
        a = escape(axis_label)
    );
    s
}

/// Direct labels at the lines' last points `(y, label, colour)`, nudged apart so they never
/// overlap.
fn line_labels(s: &mut String, mut labels: Vec<(f64, String, &str)>, x: f64) {
    labels.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut last = f64::NEG_INFINITY;
    for (py, label, colour) in labels {
        let ly = (py + 4.0).max(last + 12.0);
        last = ly;
        let _ = write!(
            s,
            r#"<text class="line-label" x="{x:.1}" y="{ly:.1}" fill="{colour}">{}</text>"#,
            escape(&label)
        );
    }
}

/// One line of a line chart: an instance type's value per x position (None = no data).
#[derive(Debug, Clone)]
pub struct Line {
    /// The direct label at the line's last point.
    pub label: String,
    /// Its provider, for the colour.
    pub provider: String,
    /// One value per x label.
    pub values: Vec<Option<f64>>,
}

/// A line chart over categorical x positions, each line labelled at its last point.
pub fn line_chart(
    id: &str,
    title: &str,
    x_labels: &[String],
    y_label: &str,
    lines: &[Line],
) -> String {
    let (left, right, top, plot_h) = (70.0, 200.0, 40.0, 300.0);
    let plot_w = WIDTH - left - right;
    let height = top + plot_h + 70.0;
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten().copied())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let step = tick_step(max, 5.0);
    let axis_max = (max / step).ceil() * step;
    let n = x_labels.len().max(1);
    let x = |i: usize| {
        left + if n == 1 {
            plot_w / 2.0
        } else {
            plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + plot_h * (1.0 - v / axis_max);
    let mut s = String::new();
    svg_open(&mut s, id, title, height);
    let mut tick = 0.0;
    while tick <= axis_max + step / 2.0 {
        let ty = y(tick);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{left:.1}" y1="{ty:.1}" x2="{r:.1}" y2="{ty:.1}"/><text class="tick" x="{tx:.1}" y="{tty:.1}" text-anchor="end">{label}</text>"#,
            r = left + plot_w,
            tx = left - 6.0,
            tty = ty + 4.0,
            label = tick_text(tick, step)
        );
        tick += step;
    }
    for (i, label) in x_labels.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(i),
            top + plot_h + 16.0,
            escape(label)
        );
    }
    let mut labels: Vec<(f64, String, &str)> = Vec::new();
    for line in lines {
        let colour = provider_colour(&line.provider);
        let points: Vec<(f64, f64)> = line
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (x(i), y(v))))
            .collect();
        let d: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(k, (px, py))| format!("{}{px:.1} {py:.1}", if k == 0 { 'M' } else { 'L' }))
            .collect();
        let _ = write!(
            s,
            r#"<path class="line" d="{}" stroke="{colour}"><title>{}</title></path>"#,
            d.join(""),
            escape(&line.label)
        );
        for (px, py) in &points {
            let _ = write!(
                s,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{colour}"/>"#
            );
        }
        if let Some((_, py)) = points.last() {
            labels.push((*py, line.label.clone(), colour));
        }
    }
    line_labels(&mut s, labels, left + plot_w + 8.0);
    let _ = write!(
        s,
        r#"<line class="axis" x1="{left:.1}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}"/><line class="axis" x1="{left:.1}" y1="{top:.1}" x2="{left:.1}" y2="{b:.1}"/><text class="axis-label" x="{cx:.1}" y="{xl:.1}" text-anchor="middle">run (date, Ruby)</text><text class="axis-label" transform="translate(16 {cy:.1}) rotate(-90)" text-anchor="middle">{yl}</text></svg>"#,
        b = top + plot_h,
        r = left + plot_w,
        cx = left + plot_w / 2.0,
        xl = top + plot_h + 40.0,
        cy = top + plot_h / 2.0,
        yl = escape(y_label)
    );
    s
}

/// A point of a scatter chart: an instance type's price and speed.
#[derive(Debug, Clone)]
pub struct Point {
    /// The direct label (instance type).
    pub label: String,
    /// Its provider, for the colour.
    pub provider: String,
    /// Horizontal position (price per hour).
    pub x: f64,
    /// Vertical position (relative speed).
    pub y: f64,
    /// The vertical whisker.
    pub y_ci: Option<(f64, f64)>,
    /// Drawn ringed and joined by the front line.
    pub on_front: bool,
}

/// The axes of a chart: a title and each axis's label.
#[derive(Debug, Clone, Copy)]
pub struct Axes<'a> {
    /// The chart's id (for the SVG element and its title).
    pub id: &'a str,
    /// The title above the chart.
    pub title: &'a str,
    /// The horizontal axis's label.
    pub x_label: &'a str,
    /// The vertical axis's label.
    pub y_label: &'a str,
}

/// A linear scale from data to pixels over round ticks.
struct Scale {
    lo: f64,
    hi: f64,
    step: f64,
    from: f64,
    to: f64,
}

impl Scale {
    /// A scale covering `[lo, hi]` with about five round ticks, mapped onto `[from, to]`.
    fn new(lo: f64, hi: f64, from: f64, to: f64) -> Self {
        let span = (hi - lo).max(f64::MIN_POSITIVE);
        let step = tick_step(span, 5.0);
        let lo = (lo / step).floor() * step;
        let hi = ((hi / step).ceil() * step).max(lo + step);
        Self {
            lo,
            hi,
            step,
            from,
            to,
        }
    }

    fn at(&self, v: f64) -> f64 {
        self.from + (self.to - self.from) * ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }

    fn ticks(&self) -> impl Iterator<Item = f64> + '_ {
        let count = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=count).map(|i| self.lo + self.step * i as f64)
    }
}

fn svg_open(s: &mut String, id: &str, title: &str, height: f64) {
    let _ = write!(
        s,
        r#"<svg class="chart" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0} {height:.0}" width="{WIDTH:.0}" height="{height:.0}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">{t}</title><text class="chart-title" x="{cx:.1}" y="20" text-anchor="middle">{t}</text>"#,
        t = escape(title),
        cx = WIDTH / 2.0
    );
}

/// Places direct labels beside points, trying a few offsets so they do not overlap.
struct LabelPlacer {
    placed: Vec<(f64, f64, f64, f64)>,
}

impl LabelPlacer {
    /// Roughly the width of a character of the tick font, in pixels.
    const CHAR_WIDTH: f64 = 6.4;

    fn place(&mut self, px: f64, py: f64, text: &str) -> (f64, f64, &'static str) {
        let width = Self::CHAR_WIDTH * text.chars().count() as f64;
        let offsets = [
            (8.0, 4.0, false),
            (8.0, -9.0, false),
            (8.0, 17.0, false),
            (-8.0, 4.0, true),
            (-8.0, -9.0, true),
            (-8.0, 17.0, true),
            (8.0, 30.0, false),
            (8.0, -22.0, false),
        ];
        let boxed = |(dx, dy, left): (f64, f64, bool)| {
            let x0 = if left { px + dx - width } else { px + dx };
            (x0, py + dy - 10.0, x0 + width, py + dy + 2.0)
        };
        let free = |b: &(f64, f64, f64, f64)| {
            b.0 >= 0.0
                && b.2 <= WIDTH
                && !self
                    .placed
                    .iter()
                    .any(|p| b.0 < p.2 && p.0 < b.2 && b.1 < p.3 && p.1 < b.3)
        };
        let chosen = offsets
            .into_iter()
            .find(|o| free(&boxed(*o)))
            .unwrap_or(offsets[0]);
        self.placed.push(boxed(chosen));
        let (dx, dy, left) = chosen;
        (px + dx, py + dy, if left { "end" } else { "start" })
    }
}

/// A scatter chart with a direct label on every point and the points on the front joined by a
/// line (for speed against price: the Pareto front, which no other type beats on both).
pub fn scatter_chart(axes: Axes<'_>, points: &[Point]) -> String {
    let (left, right, top, plot_h) = (70.0, 40.0, 48.0, 340.0);
    let height = top + plot_h + 60.0;
    let max_x = points.iter().map(|p| p.x).fold(0.0_f64, f64::max) * 1.1;
    let max_y = points
        .iter()
        .flat_map(|p| std::iter::once(p.y).chain(p.y_ci.map(|c| c.1)))
        .fold(0.0_f64, f64::max);
    let x = Scale::new(0.0, max_x, left, WIDTH - right);
    let y = Scale::new(0.0, max_y, top + plot_h, top);
    let mut s = String::new();
    svg_open(&mut s, axes.id, axes.title, height);
    s.push_str(&legend(points.iter().map(|p| p.provider.as_str())));
    for tick in x.ticks() {
        let tx = x.at(tick);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{tx:.1}" y1="{top:.1}" x2="{tx:.1}" y2="{b:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"#,
            b = top + plot_h,
            ty = top + plot_h + 14.0,
            label = tick_text(tick, x.step)
        );
    }
    for tick in y.ticks() {
        let ty = y.at(tick);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{left:.1}" y1="{ty:.1}" x2="{r:.1}" y2="{ty:.1}"/><text class="tick" x="{tx:.1}" y="{tty:.1}" text-anchor="end">{label}</text>"#,
            r = WIDTH - right,
            tx = left - 6.0,
            tty = ty + 4.0,
            label = tick_text(tick, y.step)
        );
    }
    let mut front: Vec<&Point> = points.iter().filter(|p| p.on_front).collect();
    front.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    if front.len() >= 2 {
        let d: Vec<String> = front
            .iter()
            .enumerate()
            .map(|(k, p)| {
                format!(
                    "{}{:.1} {:.1}",
                    if k == 0 { 'M' } else { 'L' },
                    x.at(p.x),
                    y.at(p.y)
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<path class="front" d="{}"><title>Pareto front</title></path>"#,
            d.join("")
        );
    }
    let mut labels = LabelPlacer { placed: Vec::new() };
    for p in points {
        let (px, py) = (x.at(p.x), y.at(p.y));
        if let Some((lo, hi)) = p.y_ci {
            let _ = write!(
                s,
                r#"<path class="whisker" d="M{px:.1} {a:.1}V{b:.1}"/>"#,
                a = y.at(lo),
                b = y.at(hi)
            );
        }
        let _ = write!(
            s,
            r#"<circle class="{class}" cx="{px:.1}" cy="{py:.1}" r="5" fill="{colour}"><title>{label}: {x:.4} USD/hour, speed {y:.3}</title></circle>"#,
            class = if p.on_front {
                "point front-point"
            } else {
                "point"
            },
            colour = provider_colour(&p.provider),
            label = escape(&p.label),
            x = p.x,
            y = p.y
        );
        let (lx, ly, anchor) = labels.place(px, py, &p.label);
        let _ = write!(
            s,
            r#"<text class="point-label" x="{lx:.1}" y="{ly:.1}" text-anchor="{anchor}">{}</text>"#,
            escape(&p.label)
        );
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{left:.1}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}"/><line class="axis" x1="{left:.1}" y1="{top:.1}" x2="{left:.1}" y2="{b:.1}"/><text class="axis-label" x="{cx:.1}" y="{xl:.1}" text-anchor="middle">{xt}</text><text class="axis-label" transform="translate(16 {cy:.1}) rotate(-90)" text-anchor="middle">{yt}</text></svg>"#,
        b = top + plot_h,
        r = WIDTH - right,
        cx = left + (WIDTH - left - right) / 2.0,
        xl = top + plot_h + 36.0,
        cy = top + plot_h / 2.0,
        xt = escape(axes.x_label),
        yt = escape(axes.y_label)
    );
    s
}

/// One row of a strip plot: an instance type's iterations, one group per run.
#[derive(Debug, Clone)]
pub struct Strip {
    /// The direct label (instance type).
    pub label: String,
    /// Its provider, for the colour.
    pub provider: String,
    /// Each run's iteration times.
    pub runs: Vec<Vec<f64>>,
}

/// A strip plot: every iteration as a dot, one row per instance type, runs offset a little
/// vertically, so the spread behind a mean is visible.
pub fn strip_chart(axes: Axes<'_>, strips: &[Strip]) -> String {
    let row = 26.0;
    let height = TOP + row * strips.len() as f64 + 48.0;
    let all = strips.iter().flat_map(|s| s.runs.iter().flatten().copied());
    let (lo, hi) = all.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(hi * 0.001);
    let x = Scale::new((lo - pad).max(0.0), hi + pad, LABEL_WIDTH, WIDTH - 30.0);
    let bottom = TOP + row * strips.len() as f64;
    let mut s = String::new();
    svg_open(&mut s, axes.id, axes.title, height);
    s.push_str(&legend(strips.iter().map(|b| b.provider.as_str())));
    for tick in x.ticks() {
        let tx = x.at(tick);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{tx:.1}" y1="{TOP:.1}" x2="{tx:.1}" y2="{bottom:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"#,
            ty = bottom + 14.0,
            label = tick_text(tick, x.step)
        );
    }
    for (i, strip) in strips.iter().enumerate() {
        let cy = TOP + row * i as f64 + row / 2.0;
        let _ = write!(
            s,
            r#"<text class="bar-label" x="{lx:.1}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            lx = LABEL_WIDTH - 6.0,
            ty = cy + 4.0,
            label = escape(&strip.label)
        );
        if strip.runs.iter().all(Vec::is_empty) {
            let _ = write!(
                s,
                r#"<text class="tick" x="{:.1}" y="{:.1}">no iterations (text report only)</text>"#,
                LABEL_WIDTH + 4.0,
                cy + 4.0
            );
            continue;
        }
        let spread = (strip.runs.len().max(1) - 1) as f64;
        // Whole pixels, each drawn once: a dot is 4.5 px wide, so finer positions change
        // nothing a reader sees, and pages with hundreds of types stay small.
        let mut dots = std::collections::BTreeSet::new();
        for (k, run) in strip.runs.iter().enumerate() {
            let ry = cy + (k as f64 - spread / 2.0) * (16.0 / spread.max(1.0)).min(5.0);
            for v in run {
                dots.insert((x.at(*v).round() as i64, ry.round() as i64));
            }
        }
        let mut d = String::new();
        for (dx, dy) in dots {
            let _ = write!(d, "M{dx} {dy}h0");
        }
        let _ = write!(
            s,
            r#"<path class="strip" d="{d}" stroke="{}"><title>{}</title></path>"#,
            provider_colour(&strip.provider),
            escape(&strip.label)
        );
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LABEL_WIDTH:.1}" y1="{bottom:.1}" x2="{r:.1}" y2="{bottom:.1}"/><text class="axis-label" x="{cx:.1}" y="{ly:.1}" text-anchor="middle">{a}</text></svg>"#,
        r = WIDTH - 30.0,
        cx = LABEL_WIDTH + (WIDTH - 30.0 - LABEL_WIDTH) / 2.0,
        ly = bottom + 34.0,
        a = escape(axes.x_label)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(430.0, 5.0), 100.0);
        assert_eq!(tick_step(1.0, 5.0), 0.2);
        assert_eq!(tick_step(7.0, 5.0), 2.0);
    }

    #[test]
    fn labels_are_escaped() {
        let svg = bar_chart(
            "c",
            "a <b>",
            "ms",
            &[Bar {
                label: "x&y".to_owned(),
                provider: "aws".to_owned(),
                value: 2.0,
                ci: Some((1.5, 2.5)),
                dots: vec![1.9, 2.1],
                value_text: "2.0".to_owned(),
            }],
            None,
        );
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("x&amp;y"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn scatter_and_strips_label_every_type_and_draw_the_front() {
        let axes = Axes {
            id: "s",
            title: "t",
            x_label: "USD/hour",
            y_label: "speed",
        };
        let point = |label: &str, x: f64, y: f64, on_front: bool| Point {
            label: label.to_owned(),
            provider: "aws".to_owned(),
            x,
            y,
            y_ci: Some((y * 0.9, y * 1.1)),
            on_front,
        };
        let svg = scatter_chart(
            axes,
            &[
                point("cheap", 0.03, 0.6, true),
                point("fast", 0.09, 1.0, true),
                point("neither", 0.1, 0.5, false),
            ],
        );
        for label in ["cheap", "fast", "neither"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{svg}");
        }
        assert_eq!(svg.matches("front-point").count(), 2);
        assert!(svg.contains(r#"<path class="front""#) && !svg.contains("NaN"));
        let svg = strip_chart(
            axes,
            &[Strip {
                label: "a".to_owned(),
                provider: "azure".to_owned(),
                runs: vec![vec![10.0, 11.0], vec![12.0]],
            }],
        );
        assert_eq!(svg.matches("h0").count(), 3);
        assert!(!svg.contains("NaN"));
    }
}
