//! The whole build: read `results/`, analyse each run, write `public/`.
//!
//! Output is deterministic: the same input gives the same bytes (sorted maps, fixed number
//! formats, no build timestamps).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::analysis::{self, AnalysisSettings};
use crate::load::{self, Problem};
use crate::prices::{PriceOrigin, Prices};
use crate::{export, pages};

/// The file that marks a directory as written by this builder, so a rebuild may replace it.
pub const MARKER: &str = ".site-build";

/// The stylesheet every page links.
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// The site's icon (browsers ask for one; a missing icon is a console error).
const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");

/// The small script for sorting and filtering tables; pages work without it.
const SITE_JS: &str = include_str!("../assets/site.js");

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// The results tree, `<run-id>/<instance_type>-<run>/`.
    pub results: PathBuf,
    /// Where to write the site.
    pub out: PathBuf,
    /// The prices CSV, if any.
    pub prices: Option<PathBuf>,
    /// The instance type to compare against.
    pub baseline: Option<String>,
    /// Print progress on stderr.
    pub progress: bool,
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Files and folders that could not be read (the rest was built).
    pub problems: Vec<Problem>,
    /// Runs built.
    pub runs: usize,
    /// Task folders read.
    pub tasks: usize,
    /// Files written.
    pub files: usize,
}

/// Builds the site.
pub fn build(settings: &BuildSettings) -> anyhow::Result<BuildReport> {
    let prices = settings
        .prices
        .as_ref()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the prices file {}", path.display()))?;
            Prices::parse(&text, PriceOrigin::Given).with_context(|| format!("{}", path.display()))
        })
        .transpose()?;
    let shipped = Prices::shipped();
    let mut lap = Lap::new(settings.progress);
    let results = load::load_results(&settings.results, settings.progress)?;
    lap.done("read the results");
    prepare_out(&settings.out)?;
    let analysis_settings = AnalysisSettings {
        baseline: settings.baseline.clone(),
        prices,
    };
    if settings.progress {
        eprintln!("site: analysing {} runs", results.runs.len());
    }
    let views: Vec<_> = results
        .runs
        .iter()
        .map(|r| analysis::analyse_run(r, &analysis_settings, &shipped))
        .collect();
    lap.done("analysed the runs");
    let run_ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let mut writer = Writer {
        root: settings.out.clone(),
        files: 0,
    };
    writer.write("style.css", STYLE_CSS)?;
    writer.write("site.js", SITE_JS)?;
    writer.write("favicon.svg", FAVICON_SVG)?;
    writer.write(
        MARKER,
        "written by `site build`; the next build replaces this whole folder\n",
    )?;
    for (run, view) in results.runs.iter().zip(&views) {
        if settings.progress {
            eprintln!(
                "site: writing run {} ({} instance types)",
                view.id,
                view.types.len()
            );
        }
        let prefix = format!("{}/", view.id);
        let problems: Vec<Problem> = results
            .problems
            .iter()
            .filter(|p| p.path.starts_with(&prefix))
            .cloned()
            .collect();
        let is_latest = Some(&view.id) == run_ids.last();
        write_run(
            &mut writer,
            &mut lap,
            RunOutput {
                run,
                view,
                problems: &problems,
                run_ids: &run_ids,
                is_latest,
            },
        )?;
    }
    writer.write("history.html", &pages::render_history(&views)?)?;
    lap.done("wrote the history page");
    Ok(BuildReport {
        problems: results.problems,
        runs: views.len(),
        tasks: results.runs.iter().map(|r| r.tasks.len()).sum(),
        files: writer.files,
    })
}

/// One run and what its pages need.
struct RunOutput<'a> {
    run: &'a load::Run,
    view: &'a analysis::RunView,
    problems: &'a [Problem],
    run_ids: &'a [String],
    is_latest: bool,
}

/// Writes a run's pages and downloads under `runs/<id>/` (and the front page for the latest).
fn write_run(writer: &mut Writer, lap: &mut Lap, out: RunOutput<'_>) -> anyhow::Result<()> {
    let view = out.view;
    let failure_count = view.failed_tasks.len() + view.failed_benchmarks.len() + out.problems.len();
    let base = format!("runs/{}", view.id);
    let index = pages::run_index(view, out.run_ids, failure_count);
    writer.write(
        &format!("{base}/index.html"),
        &pages::render_run_index(&index, "../../", "")?,
    )?;
    if out.is_latest {
        writer.write(
            "index.html",
            &pages::render_run_index(&index, "", &format!("{base}/"))?,
        )?;
    }
    for name in view.benchmark_names() {
        writer.write(
            &format!("{base}/bench/{}.html", analysis::slug(name)),
            &pages::render_bench(view, name)?,
        )?;
    }
    for (id, t) in view.types_with_ids() {
        writer.write(
            &format!("{base}/type/{}.html", t.slug),
            &pages::render_type(view, id)?,
        )?;
    }
    lap.done("wrote the pages");
    writer.write(
        &format!("{base}/failures.html"),
        &pages::render_failures(view, out.problems)?,
    )?;
    writer.write(&format!("{base}/tasks.csv"), &export::tasks_csv(out.run)?)?;
    lap.done("wrote tasks.csv");
    writer.write(&format!("{base}/summary.csv"), &export::summary_csv(view)?)?;
    writer.write(&format!("{base}/geomean.csv"), &export::geomean_csv(view)?)?;
    writer.write(&format!("{base}/value.csv"), &export::value_csv(view)?)?;
    writer.write(
        &format!("{base}/results.json"),
        &export::results_json(out.run, view),
    )?;
    lap.done("wrote the other downloads");
    Ok(())
}

/// Empties `out` when an earlier build wrote it; refuses to touch a folder that holds anything
/// else, so a mistyped `--out` cannot delete someone's files.
fn prepare_out(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out)
            .with_context(|| format!("cannot read the output folder {}", out.display()))?;
        if out.join(MARKER).exists() {
            std::fs::remove_dir_all(out)
                .with_context(|| format!("cannot clear the previous build in {}", out.display()))?;
        } else if entries.next().is_some() {
            anyhow::bail!(
                "the output folder {} is not empty and was not written by `site build` (no {MARKER} file): choose an empty or new folder",
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output folder {}", out.display()))
}

struct Writer {
    root: PathBuf,
    files: usize,
}

impl Writer {
    fn write(&mut self, relative: &str, content: &str) -> anyhow::Result<()> {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.files += 1;
        Ok(())
    }
}

/// Prints how long each phase took, on stderr, when progress is on.
struct Lap {
    progress: bool,
    last: std::time::Instant,
}

impl Lap {
    fn new(progress: bool) -> Self {
        Self {
            progress,
            last: std::time::Instant::now(),
        }
    }

    fn done(&mut self, what: &str) {
        if self.progress {
            eprintln!("site: {what} in {:.2} s", self.last.elapsed().as_secs_f64());
        }
        self.last = std::time::Instant::now();
    }
}
