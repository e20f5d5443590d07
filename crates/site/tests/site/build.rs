//! Whole builds of the committed `fixtures/results/` tree: snapshots of what users read,
//! determinism, unreadable folders, the local provider's label and the CLI's errors.

use std::path::{Path, PathBuf};

use site::{BuildReport, BuildSettings};

/// The committed synthetic results tree.
pub fn fixture_results() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/results")
}

/// A prices file for the fixture's instance types (made-up prices, like the results).
pub const PRICES: &str = "provider,instance_type,region,usd_per_hour
aws,c7i.large,us-east-1,0.0893
aws,c7g.medium,us-east-1,0.0363
aws,c8g.medium,us-east-1,0.0398
azure,Standard_D2pls_v6,eastus,0.0780
azure,Standard_D2als_v6,eastus,0.0860
";

/// Builds `results` into `dir/public` with the fixture prices and a baseline.
pub fn build_into(results: &Path, dir: &Path) -> BuildReport {
    let prices = dir.join("prices.csv");
    std::fs::write(&prices, PRICES).unwrap();
    site::build(&BuildSettings {
        results: results.to_owned(),
        out: dir.join("public"),
        prices: Some(prices),
        baseline: Some("c7g.medium".to_owned()),
        progress: false,
    })
    .unwrap()
}

fn read(dir: &Path, relative: &str) -> String {
    std::fs::read_to_string(dir.join("public").join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn fixture_site_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let report = build_into(&fixture_results(), dir.path());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.runs, report.tasks), (2, 30));
    insta::assert_snapshot!("files", listing(&dir.path().join("public")).join("\n"));
    for (name, file) in [
        ("index_html", "index.html"),
        ("history_html", "history.html"),
        ("bench_fib_html", "runs/1762251123/bench/fib.html"),
        (
            "type_standard_d2als_v6_html",
            "runs/1762251123/type/Standard_D2als_v6.html",
        ),
        ("failures_html", "runs/1762251123/failures.html"),
        ("geomean_csv", "runs/1762251123/geomean.csv"),
        ("summary_csv", "runs/1762251123/summary.csv"),
        ("tasks_csv", "runs/1762251123/tasks.csv"),
    ] {
        insta::assert_snapshot!(name, read(dir.path(), file));
    }
    let json: serde_json::Value =
        serde_json::from_str(&read(dir.path(), "runs/1762251123/results.json")).unwrap();
    insta::assert_json_snapshot!("results_json", json);
}

#[test]
fn without_a_prices_file_runs_use_their_recorded_prices_then_the_shipped_table() {
    let results = site::load::load_results(&fixture_results(), false).unwrap();
    let shipped = site::prices::Prices::shipped();
    let settings = site::analysis::AnalysisSettings::default();
    let verdicts: Vec<String> = results
        .runs
        .iter()
        .map(|run| {
            let view = site::analysis::analyse_run(run, &settings, &shipped);
            format!("run {}\n{}", view.id, site::verdict::verdict(&view).text())
        })
        .collect();
    insta::assert_snapshot!("verdicts", verdicts.join("\n"));
    let dir = tempfile::tempdir().unwrap();
    let report = site::build(&BuildSettings {
        results: fixture_results(),
        out: dir.path().join("public"),
        prices: None,
        baseline: None,
        progress: false,
    })
    .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    for run in ["1733945123", "1762251123"] {
        insta::assert_snapshot!(
            format!("value_csv_{run}"),
            read(dir.path(), &format!("runs/{run}/value.csv"))
        );
    }
    let index = read(dir.path(), "runs/1762251123/index.html");
    assert!(index.contains("Prices of c7g.medium, c8g.medium: AWS Price List API (synthetic fixture), as of 2025-11-04, from the prices the master script recorded at deploy time."), "{index}");
    assert!(index.contains("Prices of c7i.large: hand-entered from the AWS price list, as of 2025-06-01, from the price table shipped with the site builder."));
}

#[test]
fn output_is_byte_identical_across_builds() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_into(&fixture_results(), a.path());
    build_into(&fixture_results(), b.path());
    let files = listing(&a.path().join("public"));
    assert_eq!(files, listing(&b.path().join("public")));
    for file in &files {
        assert!(
            read(a.path(), file) == read(b.path(), file),
            "{file} differs between two builds"
        );
    }
    // A rebuild into the same folder replaces it.
    build_into(&fixture_results(), a.path());
    assert_eq!(listing(&a.path().join("public")), files);
}

#[test]
fn unreadable_folders_are_reported_and_the_rest_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    copy_tree(&fixture_results(), &results);
    let run = results.join("1762251123");
    // Garbage instead of a report.
    let garbage = run.join("c6i.large-1");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(
        garbage.join("output.txt"),
        "Running benchmark \"fib\" (1/4)\nKilled\n",
    )
    .unwrap();
    // A broken meta.json beside good data.
    std::fs::write(run.join("c7g.medium-1/meta.json"), "{\"run_id\": ").unwrap();
    // A broken JSON beside a good text report.
    std::fs::write(run.join("c7g.medium-2/ruby-bench.json"), "[1, 2").unwrap();
    let report = build_into(&results, dir.path());
    let problems: Vec<String> = report
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.reason))
        .collect();
    insta::assert_snapshot!("unreadable_problems", problems.join("\n"));
    assert_eq!(report.tasks, 30, "every readable folder is built");
    let failures = read(dir.path(), "runs/1762251123/failures.html");
    assert!(failures.contains("1762251123/c6i.large-1"), "{failures}");
    assert!(failures.contains("unreadable meta.json"));
    let index = read(dir.path(), "index.html");
    assert!(
        index.contains("3 failed tasks, failed benchmarks or unreadable folders")
            || index.contains("failed tasks, failed benchmarks or unreadable folders")
    );
    assert!(index.contains("c7g.medium"));
    let type_page = read(dir.path(), "runs/1762251123/type/c7g.medium.html");
    assert!(
        type_page.contains("completed (text table only)"),
        "the run with a broken JSON fell back to its text report"
    );
}

#[test]
fn local_results_are_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("results/1/local-1cpu-1");
    copy_tree(&fixture_results().join("1762251123/c7g.medium-1"), &task);
    let meta = std::fs::read_to_string(task.join("meta.json")).unwrap();
    let meta = meta
        .replace("\"provider\": \"aws\"", "\"provider\": \"local\"")
        .replace("\"c7g.medium\"", "\"local-1cpu\"");
    std::fs::write(task.join("meta.json"), meta).unwrap();
    let report = site::build(&BuildSettings {
        results: dir.path().join("results"),
        out: dir.path().join("public"),
        prices: None,
        baseline: Some("not-in-this-run".to_owned()),
        progress: false,
    })
    .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let index = read(dir.path(), "index.html");
    assert!(
        index.contains("local Docker — not a cloud machine"),
        "{index}"
    );
    assert!(index.contains("The baseline <code>not-in-this-run</code> has no results in this run"));
    let page = read(dir.path(), "runs/1/type/local-1cpu.html");
    assert!(page.contains("local Docker — not a cloud machine"));
    assert!(page.contains("one run only"));
}

#[test]
fn cli_reports_bad_input_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let site = env!("CARGO_BIN_EXE_site");
    let run = |args: &[&str]| {
        std::process::Command::new(site)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["build", "--results", "no-such-dir"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("site: error: cannot read the results directory no-such-dir:"),
        "{stderr}"
    );
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = run(&["build", "--results", "empty"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no runs under empty"));
    std::fs::write(dir.path().join("prices.csv"), "provider,instance_type\n").unwrap();
    let results = fixture_results();
    let out = run(&[
        "build",
        "--results",
        results.to_str().unwrap(),
        "--prices",
        "prices.csv",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("prices.csv: line 1: expected the header")
    );
    // Refuses to write into a folder it did not create.
    std::fs::create_dir(dir.path().join("precious")).unwrap();
    std::fs::write(dir.path().join("precious/notes.txt"), "mine").unwrap();
    let out = run(&[
        "build",
        "--results",
        results.to_str().unwrap(),
        "--out",
        "precious",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is not empty and was not written by `site build`")
    );
    let out = run(&["build", "--results", results.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("public/index.html").exists());
}
