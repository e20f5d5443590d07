//! Reading a `results/` tree: `results/<run-id>/<instance_type>-<run>/`.
//!
//! Data files are found by extension: the JSON raw data is any `.json` other than `meta.json`
//! and `error.json`; the text report any `.txt` other than `output.txt`, with `output.txt`
//! (whose end repeats the report) as the last resort. A folder that cannot be read becomes a
//! [`Problem`] with its path and reason; everything else is still built.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol::layout::{ERROR_JSON, META_JSON, OUTPUT_TXT, parse_task_folder};
use protocol::{ErrorInfo, TaskMeta};

use crate::prices::{PriceOrigin, Prices, RECORDED_FILE};
use crate::report::{self, Report};

/// How many lines of `output.txt` a failed task shows.
pub const OUTPUT_TAIL_LINES: usize = 30;

/// Something the builder could not read, with the path and the reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The file or folder, as given under the results directory.
    pub path: String,
    /// What was wrong.
    pub reason: String,
}

/// One task folder.
#[derive(Debug, Clone)]
pub struct Task {
    /// The folder name, `<instance_type>-<run>`.
    pub folder: String,
    /// The instance type (from the folder name).
    pub instance_type: String,
    /// The run number (from the folder name).
    pub run: u32,
    /// `meta.json`, when present and readable.
    pub meta: Option<TaskMeta>,
    /// What `output.txt` shows for each failed benchmark of a completed task.
    pub benchmark_errors: std::collections::BTreeMap<String, String>,
    /// What the task produced.
    pub outcome: Outcome,
}

/// A completed or failed task.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// ruby-bench printed its report.
    Completed(Report),
    /// No report came out.
    Failed {
        /// `error.json`, when readable.
        error: Option<ErrorInfo>,
        /// The last lines of `output.txt`.
        output_tail: String,
    },
}

/// One `results/<run-id>/` folder.
#[derive(Debug, Clone)]
pub struct Run {
    /// The folder name (the run id).
    pub id: String,
    /// Its tasks, sorted by instance type and run.
    pub tasks: Vec<Task>,
    /// The prices the master script recorded at deploy time (`prices.csv`), when readable.
    pub prices: Option<Prices>,
}

/// Everything read from a results directory.
#[derive(Debug, Clone)]
pub struct Results {
    /// The runs, oldest first (numeric ids compare as numbers).
    pub runs: Vec<Run>,
    /// What could not be read.
    pub problems: Vec<Problem>,
}

/// Reads every run under `dir`. Fails only when `dir` itself cannot be listed or holds no run;
/// unreadable task folders become problems. With `progress`, reports on stderr.
pub fn load_results(dir: &Path, progress: bool) -> anyhow::Result<Results> {
    let mut run_dirs = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read the results directory {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            run_dirs.push(path);
        }
    }
    run_dirs.sort_by_key(|p| run_sort_key(&file_name(p)));
    let mut jobs: Vec<(usize, PathBuf)> = Vec::new();
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    for (r, run_dir) in run_dirs.iter().enumerate() {
        let (prices, problem) = load_recorded_prices(dir, run_dir);
        problems.extend(problem);
        runs.push(Run {
            id: file_name(run_dir),
            tasks: Vec::new(),
            prices,
        });
        let mut folders: Vec<PathBuf> = std::fs::read_dir(run_dir)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", run_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        folders.sort();
        jobs.extend(folders.into_iter().map(|f| (r, f)));
    }
    if runs.is_empty() {
        anyhow::bail!(
            "no runs under {}: expected folders <run-id>/<instance_type>-<run>/ as the master script unpacks them",
            dir.display()
        );
    }
    let loaded = load_parallel(dir, &jobs, progress);
    for ((r, _), (task, mut task_problems)) in jobs.iter().zip(loaded) {
        problems.append(&mut task_problems);
        if let Some(task) = task {
            runs[*r].tasks.push(task);
        }
    }
    for run in &mut runs {
        run.tasks
            .sort_by(|a, b| (&a.instance_type, a.run).cmp(&(&b.instance_type, b.run)));
    }
    problems.sort();
    Ok(Results { runs, problems })
}

type Loaded = (Option<Task>, Vec<Problem>);

/// Reads `<run>/prices.csv` when it exists; an unreadable file is a problem, and the run is
/// priced from the other tables.
fn load_recorded_prices(root: &Path, run_dir: &Path) -> (Option<Prices>, Option<Problem>) {
    let path = run_dir.join(RECORDED_FILE);
    if !path.is_file() {
        return (None, None);
    }
    let parsed = std::fs::read_to_string(&path)
        .map_err(anyhow::Error::from)
        .and_then(|text| Prices::parse(&text, PriceOrigin::Recorded));
    match parsed {
        Ok(prices) => (Some(prices), None),
        Err(e) => (
            None,
            Some(Problem {
                path: relative(root, &path),
                reason: format!("unreadable recorded prices, left out: {e:#}"),
            }),
        ),
    }
}

/// Reads task folders on every available core, keeping the input order.
fn load_parallel(root: &Path, jobs: &[(usize, PathBuf)], progress: bool) -> Vec<Loaded> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let total = jobs.len();
    let step = (total / 10).max(1);
    let mut results: Vec<Option<Loaded>> = (0..total).map(|_| None).collect();
    let chunks: Vec<Vec<(usize, Loaded)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        out.push((i, load_task(root, &jobs[i].1)));
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if progress && total >= 100 && (d.is_multiple_of(step) || d == total) {
                            eprintln!("site: read {d}/{total} task folders");
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a loader thread panicked"))
            .collect()
    });
    for (i, loaded) in chunks.into_iter().flatten() {
        results[i] = Some(loaded);
    }
    results
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Numeric run ids sort as numbers, before any other names.
fn run_sort_key(name: &str) -> (u8, i64, String) {
    match name.parse::<i64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, name.to_owned()),
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Reads one task folder.
pub fn load_task(root: &Path, dir: &Path) -> Loaded {
    let mut problems = Vec::new();
    let folder = file_name(dir);
    let problem = |path: &Path, reason: String| Problem {
        path: relative(root, path),
        reason,
    };
    let Some((instance_type, run)) = parse_task_folder(&folder).map(|(t, r)| (t.to_owned(), r))
    else {
        problems.push(problem(
            dir,
            "not a task folder: expected <instance_type>-<run>".to_owned(),
        ));
        return (None, problems);
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(e) => {
            problems.push(problem(dir, format!("cannot list: {e}")));
            return (None, problems);
        }
    };
    files.sort();
    let named = |name: &str| files.iter().find(|p| file_name(p) == name);
    let meta = named(META_JSON).and_then(|path| match read_json::<TaskMeta>(path) {
        Ok(meta) => Some(meta),
        Err(e) => {
            problems.push(problem(
                path,
                format!("unreadable meta.json, its facts are left out: {e}"),
            ));
            None
        }
    });
    let output_path = named(OUTPUT_TXT);
    if let Some(error_path) = named(ERROR_JSON) {
        let error = match read_json::<ErrorInfo>(error_path) {
            Ok(info) => Some(info),
            Err(e) => {
                problems.push(problem(error_path, format!("unreadable error.json: {e}")));
                None
            }
        };
        let output_tail = output_path
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| tail(&t))
            .unwrap_or_default();
        let task = Task {
            folder,
            instance_type: instance_type.clone(),
            run,
            meta,
            benchmark_errors: Default::default(),
            outcome: Outcome::Failed { error, output_tail },
        };
        return (Some(task), problems);
    }
    let (report, reasons) = read_report(&files, output_path);
    match report {
        Some(report) => {
            // A broken JSON beside a readable table is worth knowing: the table has no
            // iteration times.
            for reason in reasons {
                problems.push(problem(
                    dir,
                    format!("fell back to the text report: {reason}"),
                ));
            }
            let mut failed: std::collections::BTreeSet<String> =
                report.failed.iter().map(|(_, b)| b.clone()).collect();
            failed.extend(
                meta.iter()
                    .flat_map(|m| m.failed_benchmarks.iter().cloned()),
            );
            let benchmark_errors = match output_path {
                Some(path) if !failed.is_empty() => std::fs::read_to_string(path)
                    .map(|text| report::benchmark_errors(&text, &failed))
                    .unwrap_or_default(),
                _ => Default::default(),
            };
            let task = Task {
                folder,
                instance_type: instance_type.clone(),
                run,
                meta,
                benchmark_errors,
                outcome: Outcome::Completed(report),
            };
            (Some(task), problems)
        }
        None => {
            let reason = if reasons.is_empty() {
                "no ruby-bench report (.json or .txt) and no error.json".to_owned()
            } else {
                reasons.join("; ")
            };
            problems.push(problem(dir, reason));
            (None, problems)
        }
    }
}

/// Reads and parses a JSON file; the error says which step failed.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// The report of a completed task: the JSON raw data, else a `.txt` report, else the end of
/// `output.txt`; with why each file tried before it could not be read.
fn read_report(files: &[PathBuf], output_path: Option<&PathBuf>) -> (Option<Report>, Vec<String>) {
    let has_ext = |p: &Path, ext: &str| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext));
    let json = files
        .iter()
        .find(|p| has_ext(p, "json") && ![META_JSON, ERROR_JSON].contains(&file_name(p).as_str()));
    let txt = files
        .iter()
        .find(|p| has_ext(p, "txt") && file_name(p) != OUTPUT_TXT);
    let mut reasons = Vec::new();
    for (path, is_json) in [(json, true), (txt, false), (output_path, false)] {
        let Some(path) = path else { continue };
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                if is_json {
                    report::parse_json(&text)
                } else {
                    report::parse_text(&text)
                }
                .map_err(|e| e.to_string())
            });
        match parsed {
            Ok(r) => return (Some(r), reasons),
            Err(e) => reasons.push(format!("{}: {e}", file_name(path))),
        }
    }
    (None, reasons)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
    lines[start..].join("\n")
}
