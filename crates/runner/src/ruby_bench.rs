//! ruby-bench as the runner drives it: where its source comes from, the command line for
//! a task's selection, and what its output says (progress, failed benchmarks, categories).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use bytes::Bytes;
use protocol::{Category, Mode, RubyBenchSelection, layout};

/// Where ruby-bench lives inside a benchmark container.
pub const CONTAINER_DIR: &str = "/ruby-bench";

/// Where ruby-bench writes its reports inside a benchmark container.
pub const CONTAINER_OUT_DIR: &str = "/out";

/// A ruby-bench checkout, ready to be copied into benchmark containers.
#[derive(Debug)]
pub struct RubyBenchSource {
    /// The directory on this host.
    pub dir: PathBuf,
    /// Its commit, when known.
    pub commit: Option<String>,
    /// True for ruby-bench-mini, the stand-in (it carries [`layout::RUBY_BENCH_STAND_IN_MARKER`]).
    pub stand_in: bool,
    /// A tar archive of `ruby-bench/` (without `.git`) and an empty `out/`, unpacked at `/`.
    pub archive: Bytes,
    /// Category of each benchmark from `benchmarks.yml` (missing ones are "other").
    pub categories: BTreeMap<String, Category>,
    /// Whether some benchmark has a Gemfile: then Bundler needs the network.
    pub needs_network: bool,
}

impl RubyBenchSource {
    /// Uses a local directory as it is (tests, offline hosts).
    pub fn from_dir(dir: &Path) -> anyhow::Result<Self> {
        let entry = dir.join("run_benchmarks.rb");
        if !entry.is_file() {
            bail!(
                "{} is not a ruby-bench directory: it has no run_benchmarks.rb",
                dir.display()
            );
        }
        // Only a checkout's own root names ruby-bench's commit; a directory inside some
        // other repository (like ruby-bench-mini in this one) would name that one's.
        let commit = if dir.join(".git").exists() {
            git(dir, &["rev-parse", "HEAD"]).ok()
        } else {
            None
        };
        Self::load(dir.to_owned(), commit)
    }

    /// Fetches `url` into `cache_dir` once per host and checks out `commit` (a full or
    /// abbreviated hash on the default branch's history), then uses it. The full hash is
    /// what `meta.json` records.
    pub fn fetch(url: &str, commit: &str, cache_dir: &Path) -> anyhow::Result<Self> {
        let dir = cache_dir.join(format!("ruby-bench-{commit}"));
        let complete = dir.join(".rcb-fetched");
        if !complete.exists() {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("failed to clear {}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            git(&dir, &["init", "--quiet"])?;
            // The whole default branch, not `--depth 1 <sha>`: an abbreviated hash cannot be
            // fetched by name, and servers may refuse unadvertised objects.
            git(&dir, &["fetch", "--quiet", url])?;
            git(&dir, &["checkout", "--quiet", "--detach", commit]).with_context(|| {
                format!("commit {commit} is not on the default branch of {url}")
            })?;
            std::fs::write(&complete, commit)?;
        }
        let full = git(&dir, &["rev-parse", "HEAD"])?;
        Self::load(dir, Some(full))
    }

    fn load(dir: PathBuf, commit: Option<String>) -> anyhow::Result<Self> {
        let categories = match std::fs::read_to_string(dir.join("benchmarks.yml")) {
            Ok(text) => parse_categories(&text),
            Err(_) => BTreeMap::new(),
        };
        let needs_network = has_gemfile(&dir.join("benchmarks"));
        let archive =
            archive(&dir).with_context(|| format!("failed to archive {}", dir.display()))?;
        let stand_in = dir.join(layout::RUBY_BENCH_STAND_IN_MARKER).is_file();
        Ok(Self {
            dir,
            commit,
            stand_in,
            archive,
            categories,
            needs_network,
        })
    }
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("failed to run git; is it installed?")?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn has_gemfile(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            has_gemfile(&path)
        } else {
            path.file_name().is_some_and(|name| name == "Gemfile")
        }
    })
}

/// Archives the checkout as `ruby-bench/` plus an empty, writable `out/`.
fn archive(dir: &Path) -> anyhow::Result<Bytes> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    append_tree(
        &mut builder,
        dir,
        Path::new(CONTAINER_DIR.trim_start_matches('/')),
    )?;
    let mut out = tar::Header::new_gnu();
    out.set_entry_type(tar::EntryType::Directory);
    out.set_mode(0o777);
    out.set_size(0);
    builder.append_data(
        &mut out,
        CONTAINER_OUT_DIR.trim_start_matches('/'),
        std::io::empty(),
    )?;
    Ok(builder.into_inner()?.into())
}

fn append_tree(builder: &mut tar::Builder<Vec<u8>>, dir: &Path, name: &Path) -> anyhow::Result<()> {
    builder.append_dir(name, dir)?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let file_name = entry.file_name();
        // History and earlier local outputs are not needed in the container.
        if file_name == ".git" || file_name == "data" {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            append_tree(builder, &path, &name.join(&file_name))?;
        } else {
            builder.append_path_with_name(&path, name.join(&file_name))?;
        }
    }
    Ok(())
}

/// Reads each benchmark's `category:` from ruby-bench's `benchmarks.yml` (top-level keys
/// are benchmark names). A full YAML parser is not needed for this one shape.
pub fn parse_categories(yaml: &str) -> BTreeMap<String, Category> {
    let mut categories = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in yaml.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('\t') {
            current = line
                .strip_suffix(':')
                .map(|name| name.trim().trim_matches('"').to_owned());
            if let Some(name) = &current {
                categories.insert(name.clone(), Category::Other);
            }
            continue;
        }
        let (Some(name), Some(value)) = (&current, line.trim().strip_prefix("category:")) else {
            continue;
        };
        let category = match value.trim().trim_matches('"') {
            "headline" => Category::Headline,
            "micro" => Category::Micro,
            _ => Category::Other,
        };
        categories.insert(name.clone(), category);
    }
    categories
}

/// Where the container's own cgroup cpuset is recorded, beside the reports.
pub const CGROUP_CPUSET_FILE: &str = "cgroup-cpuset";

/// The command of a benchmark container: it records the cgroup cpuset the kernel really
/// applies to the container (cgroup v2, else v1), then execs ruby-bench.
pub fn container_command(selection: &RubyBenchSelection) -> Vec<String> {
    let record = format!(
        "cat /sys/fs/cgroup/cpuset.cpus.effective /sys/fs/cgroup/cpuset/cpuset.effective_cpus 2>/dev/null | head -n 1 > {CONTAINER_OUT_DIR}/{CGROUP_CPUSET_FILE}; exec \"$@\""
    );
    let mut args = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        record,
        "ruby-bench".to_owned(),
    ];
    args.extend(command(selection));
    args
}

/// The command that runs ruby-bench for a task inside the benchmark container.
pub fn command(selection: &RubyBenchSelection) -> Vec<String> {
    let mut args = vec!["ruby".to_owned(), "run_benchmarks.rb".to_owned()];
    // The first executable is the base of ruby-bench's ratio columns: interp/yjit.
    let mut modes = selection.modes.clone();
    modes.sort_by_key(|mode| match mode {
        Mode::Interp => 0,
        Mode::Yjit => 1,
    });
    for mode in modes {
        args.push("-e".to_owned());
        args.push(match mode {
            Mode::Interp => "interp::ruby".to_owned(),
            Mode::Yjit => "yjit::ruby --yjit".to_owned(),
        });
    }
    if !selection.categories.is_empty() {
        let categories: Vec<&str> = selection
            .categories
            .iter()
            .map(|category| category.as_str())
            .collect();
        args.push(format!("--category={}", categories.join(",")));
    }
    if let Some(warmup) = selection.warmup {
        args.push(format!("--warmup={warmup}"));
    }
    if let Some(bench) = selection.bench {
        args.push(format!("--bench={bench}"));
    }
    args.push("--no-sudo".to_owned());
    args.push("--no-pinning".to_owned());
    args.push(format!(
        "--out-name={CONTAINER_OUT_DIR}/{}",
        layout::RUBY_BENCH_OUT_NAME
    ));
    args.extend(selection.benchmarks.iter().cloned());
    args
}

/// Progress from a `Running benchmark "NAME" (i/n)` line: the name and the percentage done
/// before it started.
pub fn parse_progress(line: &str) -> Option<(String, u8)> {
    let rest = line.trim().strip_prefix("Running benchmark \"")?;
    let (name, rest) = rest.split_once('"')?;
    let counts = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (index, total) = counts.split_once('/')?;
    let index: u64 = index.trim().parse().ok()?;
    let total: u64 = total.trim().parse().ok()?;
    if total == 0 || index == 0 || index > total {
        return None;
    }
    let pct = ((index - 1) * 100 / total) as u8;
    Some((name.to_owned(), pct))
}

/// Benchmarks whose row in the report shows `N/A` in some column.
pub fn failed_benchmarks(report: &str) -> Vec<String> {
    report_rows(report)
        .into_iter()
        .filter(|(_, failed)| *failed)
        .map(|(name, _)| name)
        .collect()
}

/// Every benchmark named in the report's tables.
pub fn benchmark_names(report: &str) -> Vec<String> {
    report_rows(report)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// The rows of the report's tables: each benchmark and whether some cell is `N/A`.
fn report_rows(report: &str) -> Vec<(String, bool)> {
    let mut rows: Vec<(String, bool)> = Vec::new();
    let mut rules = 0;
    let mut header_seen = false;
    for line in report.lines() {
        if is_rule(line) {
            rules += 1;
            header_seen = false;
            continue;
        }
        // Rows sit between the first and second rule of each table, after the header.
        if rules % 2 == 1 {
            if !header_seen {
                header_seen = true;
                continue;
            }
            let mut cells = line
                .split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty());
            let Some(name) = cells.next() else { continue };
            let failed = cells.any(|cell| cell == "N/A");
            match rows.iter_mut().find(|(known, _)| known == name) {
                Some(row) => row.1 |= failed,
                None => rows.push((name.to_owned(), failed)),
            }
        }
    }
    rows
}

fn is_rule(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && line.chars().all(|c| c == '-' || c == ' ') && line.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_come_from_benchmarks_yml() {
        let yaml = "#\n# Headline\n#\nliquid-render:\n  desc: x\n  category: headline\n  synthetic:\n    interp_ms: 1\nbinarytrees:\n  desc: y\nfib:\n  category: micro\n";
        let categories = parse_categories(yaml);
        assert_eq!(categories["liquid-render"], Category::Headline);
        assert_eq!(categories["binarytrees"], Category::Other);
        assert_eq!(categories["fib"], Category::Micro);
        assert_eq!(categories.len(), 3);
    }

    #[test]
    fn the_command_follows_the_selection() {
        let selection = RubyBenchSelection {
            benchmarks: vec!["fib".into(), "/^liquid/".into()],
            categories: vec![Category::Headline],
            warmup: Some(2),
            bench: Some(5),
            modes: vec![Mode::Yjit, Mode::Interp],
        };
        assert_eq!(
            command(&selection),
            [
                "ruby",
                "run_benchmarks.rb",
                "-e",
                "interp::ruby",
                "-e",
                "yjit::ruby --yjit",
                "--category=headline",
                "--warmup=2",
                "--bench=5",
                "--no-sudo",
                "--no-pinning",
                "--out-name=/out/ruby-bench",
                "fib",
                "/^liquid/",
            ]
        );
    }

    #[test]
    fn progress_lines_give_the_benchmark_and_percentage() {
        assert_eq!(
            parse_progress("Running benchmark \"fib\" (2/4)"),
            Some(("fib".into(), 25))
        );
        assert_eq!(
            parse_progress("Running benchmark \"a-b\" (1/1)\r"),
            Some(("a-b".into(), 0))
        );
        assert_eq!(parse_progress("itr:   time"), None);
        assert_eq!(parse_progress("Running benchmark \"x\" (5/4)"), None);
    }

    #[test]
    fn failed_benchmarks_are_the_na_rows() {
        let report = "interp: ruby 3.1.2\nyjit: ruby 3.1.2 +YJIT\n\n\
-------------  -------------  -------------  ------------  -----------\n\
bench            interp (ms)      yjit (ms)  yjit 1st itr  interp/yjit\n\
nqueens                  N/A            N/A           N/A          N/A\n\
liquid-render  118.0 ± 1.0%    70.0 ± 2.0%         1.600        1.686\n\
fib                   N/A      50.0 ± 1.0%           N/A          N/A\n\
-------------  -------------  -------------  ------------  -----------\n\
Legend:\n- interp/yjit: ratio\n";
        assert_eq!(failed_benchmarks(report), ["nqueens", "fib"]);
        assert!(failed_benchmarks("no table here").is_empty());
    }
}
