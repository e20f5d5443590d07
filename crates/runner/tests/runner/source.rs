//! Fetching ruby-bench once per host from a git URL (a local repository stands in for
//! GitHub), pinned to a full or abbreviated commit.

use std::path::Path;
use std::process::Command;

use runner::ruby_bench::RubyBenchSource;

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn a_pinned_commit_is_fetched_once_and_recorded_in_full() {
    let upstream = tempfile::tempdir().unwrap();
    git(
        upstream.path(),
        &["init", "--quiet", "--initial-branch=main"],
    );
    std::fs::write(upstream.path().join("run_benchmarks.rb"), "puts 'old'\n").unwrap();
    std::fs::write(
        upstream.path().join("benchmarks.yml"),
        "fib:\n  category: micro\n",
    )
    .unwrap();
    git(upstream.path(), &["add", "."]);
    git(upstream.path(), &["commit", "--quiet", "-m", "pinned"]);
    let pinned = git(upstream.path(), &["rev-parse", "HEAD"]);
    std::fs::write(upstream.path().join("run_benchmarks.rb"), "puts 'new'\n").unwrap();
    git(upstream.path(), &["commit", "--quiet", "-am", "later"]);

    let cache = tempfile::tempdir().unwrap();
    let url = format!("file://{}", upstream.path().display());
    let source = RubyBenchSource::fetch(&url, &pinned[..7], cache.path()).unwrap();
    assert_eq!(source.commit.as_deref(), Some(pinned.as_str()));
    assert_eq!(
        std::fs::read_to_string(source.dir.join("run_benchmarks.rb")).unwrap(),
        "puts 'old'\n"
    );
    assert_eq!(source.categories["fib"], protocol::Category::Micro);
    assert!(!source.needs_network);

    // Once per host: a second fetch reuses the checkout, even with the upstream gone.
    drop(upstream);
    let again = RubyBenchSource::fetch(&url, &pinned[..7], cache.path()).unwrap();
    assert_eq!(again.commit.as_deref(), Some(pinned.as_str()));

    let missing =
        RubyBenchSource::fetch(&url, "0000000", tempfile::tempdir().unwrap().path()).unwrap_err();
    assert!(format!("{missing:#}").contains("git fetch"), "{missing:#}");
}

#[test]
fn a_directory_inside_another_repository_has_no_commit_of_its_own() {
    let mini = crate::harness::ruby_bench_mini();
    let source = RubyBenchSource::from_dir(&mini).unwrap();
    assert_eq!(
        source.commit, None,
        "ruby-bench-mini must not report this project's commit"
    );
    assert_eq!(
        source.categories["liquid-render"],
        protocol::Category::Headline
    );
    let not_ruby_bench = RubyBenchSource::from_dir(Path::new("/tmp")).unwrap_err();
    assert!(
        not_ruby_bench.to_string().contains("no run_benchmarks.rb"),
        "{not_ruby_bench}"
    );
}
