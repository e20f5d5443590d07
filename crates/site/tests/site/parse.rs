//! The parsers against every report variant in `tests/fixtures/reports/`.

use std::path::PathBuf;

use site::report::{self, Report, Source};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(name: &str) -> Report {
    report::parse_text(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json(name: &str) -> Report {
    report::parse_json(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn mean(r: &Report, mode: &str, bench: &str) -> f64 {
    r.measurements[&(mode.to_owned(), bench.to_owned())].mean_ms
}

/// The text table rounds what the JSON holds exactly: every number of the table must match
/// the JSON's within the table's rounding (0.05 ms, 0.05 percentage points).
fn assert_table_matches_json(table: &Report, raw: &Report) {
    assert_eq!(table.modes, raw.modes);
    assert!(!table.measurements.is_empty());
    for (key, m) in &table.measurements {
        let exact = raw
            .measurements
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} missing from the JSON"));
        assert!(
            (m.mean_ms - exact.mean_ms).abs() <= 0.051,
            "{key:?}: {} vs {}",
            m.mean_ms,
            exact.mean_ms
        );
        assert!(
            (m.stddev_pct - exact.stddev_pct).abs() <= 0.051,
            "{key:?}: {} vs {}",
            m.stddev_pct,
            exact.stddev_pct
        );
        assert!(m.iterations_ms.is_empty());
        assert!(exact.iterations_ms.len() >= 5);
    }
}

#[test]
fn one_mode() {
    let t = text("one-mode.txt");
    assert_eq!(t.modes, ["ruby"]);
    assert_eq!(t.source, Source::Text);
    assert_eq!(t.measurements.len(), 4);
    assert_eq!(mean(&t, "ruby", "liquid-render"), 117.2);
    assert_eq!(
        t.measurements[&("ruby".to_owned(), "nqueens".to_owned())].stddev_pct,
        2.4
    );
    assert!(t.descriptions["ruby"].starts_with("ruby 3.1.2p20"));
    assert_table_matches_json(&t, &json("one-mode.json"));
}

#[test]
fn two_modes() {
    let t = text("two-modes.txt");
    assert_eq!(t.modes, ["interp", "yjit"]);
    assert_eq!(t.measurements.len(), 8);
    assert_eq!(mean(&t, "yjit", "fib"), 88.4);
    assert_eq!(t.descriptions.len(), 2);
    assert!(t.failed.is_empty());
    let j = json("two-modes.json");
    assert_eq!(j.source, Source::Json);
    assert_eq!(
        j.measurements[&("interp".to_owned(), "fib".to_owned())]
            .iterations_ms
            .len(),
        5
    );
    assert_table_matches_json(&t, &j);
}

#[test]
fn rss_columns_belong_to_the_time_column_before_them() {
    let t = text("rss.txt");
    assert_eq!(t.modes, ["interp", "yjit"]);
    let nqueens = |mode: &str| t.measurements[&(mode.to_owned(), "nqueens".to_owned())].rss_mib;
    assert_eq!(nqueens("interp"), Some(15.5));
    assert_eq!(nqueens("yjit"), Some(20.6));
    assert_table_matches_json(&t, &json("rss.json"));
}

#[test]
fn pvalue_and_star_columns_are_ignored() {
    let t = text("pvalue.txt");
    assert_eq!(t.modes, ["interp", "yjit"]);
    assert_eq!(mean(&t, "interp", "binarytrees"), 448.6);
    assert_table_matches_json(&t, &json("pvalue.json"));
}

#[test]
fn three_executables_with_rss_and_pvalue() {
    let t = text("three-exes-rss-pvalue.txt");
    assert_eq!(t.modes, ["base", "fast", "third"]);
    assert_eq!(t.measurements.len(), 12);
    assert_eq!(
        t.measurements[&("third".to_owned(), "fib".to_owned())].rss_mib,
        Some(19.8)
    );
    assert_table_matches_json(&t, &json("three-exes-rss-pvalue.json"));
}

#[test]
fn failed_rows_are_na_and_missing_from_the_json() {
    let t = text("failed.txt");
    let pairs = |r: &Report| {
        r.failed
            .iter()
            .map(|(m, b)| format!("{b} ({m})"))
            .collect::<Vec<_>>()
    };
    // The text marks whole rows N/A; the JSON knows that nqueens only failed under yjit.
    assert_eq!(
        pairs(&t),
        [
            "fib (interp)",
            "nqueens (interp)",
            "fib (yjit)",
            "nqueens (yjit)"
        ]
    );
    assert_eq!(t.measurements.len(), 4);
    let j = json("failed.json");
    assert_eq!(pairs(&j), ["nqueens (yjit)"]);
    assert!(
        j.failed
            .contains(&("yjit".to_owned(), "nqueens".to_owned()))
    );
    assert!(
        j.measurements
            .contains_key(&("interp".to_owned(), "nqueens".to_owned()))
    );
    assert!(
        !j.measurements.keys().any(|(_, b)| b == "fib"),
        "fib failed everywhere and has no raw data"
    );
}

#[test]
fn the_report_at_the_end_of_stdout_parses_like_the_txt() {
    let stdout = text("failed.stdout.txt");
    let txt = text("failed.txt");
    assert_eq!(stdout.measurements, txt.measurements);
    assert_eq!(stdout.failed, txt.failed);
    assert_eq!(stdout.descriptions, txt.descriptions);
}

#[test]
fn harness_sections_and_gc_summary() {
    let t = text("harness-gc.txt");
    assert_eq!(t.modes, ["interp", "yjit"]);
    let benches: Vec<&str> = t
        .measurements
        .keys()
        .filter(|(m, _)| m == "interp")
        .map(|(_, b)| b.as_str())
        .collect();
    assert_eq!(
        benches,
        ["binarytrees", "fib", "gcbench"],
        "the GC summary's (ms) columns are not times"
    );
    assert_eq!(mean(&t, "interp", "gcbench"), 250.1);
    assert_eq!(mean(&t, "yjit", "binarytrees"), 397.2);
    assert_eq!(
        t.measurements[&("yjit".to_owned(), "binarytrees".to_owned())].stddev_pct,
        22.9
    );
    assert_eq!(t.harness["gcbench"], "harness-gc");
    assert_eq!(t.harness["fib"], "harness");
}

#[test]
fn garbage_is_an_error_with_a_reason() {
    let err =
        report::parse_text("Running benchmark \"fib\" (1/4)\nSegmentation fault\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no ruby-bench results table found"),
        "{err}"
    );
    let bad = "-----  ----------\nbench   ruby (ms)\nfib     fast-ish\n-----  ----------\n";
    let err = report::parse_text(bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 3: cannot read \"fast-ish\" in column \"ruby (ms)\" (expected `mean ± stddev%` or `N/A`)"
    );
    let err = report::parse_json("{\"metadata\": {}}").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("not ruby-bench JSON raw data: missing field `raw_data`"),
        "{err}"
    );
}
