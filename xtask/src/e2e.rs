//! `cargo xtask e2e-local`: a whole benchmark run on the local provider, the same way a
//! cloud run goes: local stack, Fish master script, results archive, website.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use local_stack::LocalStack;
use protocol::{ErrorInfo, TaskMeta, layout};
use xshell::Shell;

use crate::local::{self, Prepared};
use crate::{setup, suite};

/// Run a whole local benchmark: stack, master script, results check, website, teardown.
#[derive(clap::Args)]
pub struct E2eLocal {
    /// The run config; its `local` instance types each get a runner container (default:
    /// fixtures/run.local.json on ruby-bench-mini, fixtures/run.local-ruby-bench.json, whose
    /// benchmarks need no gems, on the real suite).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The ruby-bench: `auto` (the pinned commit, fetched once per machine, else the
    /// stand-in ruby-bench-mini), `mini`, or a ruby-bench checkout.
    #[arg(long, default_value = suite::AUTO)]
    pub ruby_bench: String,
    /// Where results/<run-id>/ goes.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Where the website goes.
    #[arg(long, default_value = "public")]
    pub site: PathBuf,
}

/// A phase and how long it took.
struct Phases(Vec<(&'static str, f64)>);

impl Phases {
    fn time<T>(
        &mut self,
        name: &'static str,
        phase: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        eprintln!("xtask e2e-local: == {name}");
        let started = Instant::now();
        let result = phase();
        self.0.push((name, started.elapsed().as_secs_f64()));
        result
    }
}

impl E2eLocal {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let mut phases = Phases(Vec::new());
        phases.time("set up the host", || {
            setup::ensure_host_tools(sh, setup::E2E_TOOLS)?;
            setup::ensure_docker(sh)
        })?;
        let Prepared {
            options,
            config,
            stand_in,
        } = phases.time("images and plan", || {
            local::prepare_stack(sh, self.config.as_deref(), &self.ruby_bench)
        })?;
        let runtime = local::runtime()?;
        // From here on Ctrl-C must not kill xtask before the stack is torn down: the
        // master script gets the signal too, says what it was doing and exits.
        let interrupted = runtime.spawn(tokio::signal::ctrl_c());

        let stack = phases.time("local stack up", || {
            runtime.block_on(LocalStack::up(&options))
        })?;
        eprintln!(
            "xtask e2e-local: dashboard {}/ (operator password {})",
            stack.orchestrator_url, stack.operator_password
        );
        let result = self.run_on(sh, &stack, &config, stand_in, &mut phases);
        phases.time("teardown", || {
            runtime.block_on(stack.down());
            Ok(())
        })?;
        if interrupted.is_finished() {
            bail!("interrupted; the local stack was torn down");
        }

        eprintln!("xtask e2e-local: phases");
        for (name, seconds) in &phases.0 {
            eprintln!("  {seconds:>7.1}s  {name}");
        }
        let run_dir = result?;
        eprintln!(
            "xtask e2e-local: results in {}, website in {}/index.html",
            run_dir.display(),
            self.site.display()
        );
        Ok(())
    }

    /// The master script against the stack, then the checks and the website. Returns
    /// the run's results directory.
    fn run_on(
        &self,
        sh: &Shell,
        stack: &LocalStack,
        config_path: &Path,
        stand_in: bool,
        phases: &mut Phases,
    ) -> anyhow::Result<PathBuf> {
        let config = local::read_config(config_path)?;
        let before = run_dirs(&self.results);
        phases.time("master.fish", || {
            let (url, key, results) = (&stack.orchestrator_url, &stack.api_key, &self.results);
            xshell::cmd!(
                sh,
                "fish fish/master.fish --config {config_path} --orchestrator-url {url} --api-key {key} --results-dir {results} --poll-secs 2"
            )
            .quiet()
            .run()
            .context("the master script failed")
        })?;
        let run_dir = phases.time("results contract", || {
            let mut new: Vec<PathBuf> = run_dirs(&self.results)
                .into_iter()
                .filter(|dir| !before.contains(dir))
                .collect();
            let [run_dir] = new.as_mut_slice() else {
                bail!(
                    "expected one new run directory in {}, found {new:?}",
                    self.results.display()
                );
            };
            check_results(run_dir, &config, stand_in)?;
            Ok(run_dir.clone())
        })?;
        phases.time("website", || {
            let (results, site) = (&self.results, &self.site);
            xshell::cmd!(
                sh,
                "cargo run --quiet --package site -- build --results {results} --out {site}"
            )
            .run()
            .context("the site builder failed")?;
            // The stand-in's numbers must never pass for ruby-bench's on the website.
            let id = run_dir.file_name().unwrap_or_default();
            let page = self.site.join("runs").join(id).join("index.html");
            let html = std::fs::read_to_string(&page)
                .with_context(|| format!("the website has no {}", page.display()))?;
            if html.contains("ruby-bench-mini — a stand-in") != stand_in {
                bail!(
                    "{} labels the stand-in wrongly (the run used {})",
                    page.display(),
                    if stand_in {
                        "ruby-bench-mini"
                    } else {
                        "ruby-bench"
                    }
                );
            }
            Ok(())
        })?;
        Ok(run_dir)
    }
}

fn run_dirs(results: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(results)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the results contract of docs/decisions.md: a folder per task; completed ones with
/// a parseable output.txt, the reports and a complete meta.json; failed ones with error.json.
fn check_results(
    run_dir: &Path,
    config: &protocol::RunConfig,
    stand_in: bool,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for task in config.tasks() {
        let folder = run_dir.join(layout::task_folder(&task.instance_type, task.run));
        let name = folder.display();
        if !folder.is_dir() {
            problems.push(format!("{name} is missing"));
            continue;
        }
        if folder.join(layout::ERROR_JSON).is_file() {
            match std::fs::read(folder.join(layout::ERROR_JSON))
                .map(|bytes| serde_json::from_slice::<ErrorInfo>(&bytes))
            {
                Ok(Ok(error)) => problems.push(format!(
                    "{name} failed: {} ({})",
                    error.error_message, error.error_type
                )),
                _ => problems.push(format!("{name}/error.json is unreadable")),
            }
            continue;
        }
        for file in [
            layout::OUTPUT_TXT,
            layout::RUBY_BENCH_TXT,
            layout::RUBY_BENCH_JSON,
            layout::RUBY_BENCH_CSV,
            layout::META_JSON,
        ] {
            if !folder.join(file).is_file() {
                problems.push(format!("{name}/{file} is missing"));
            }
        }
        let output = std::fs::read_to_string(folder.join(layout::OUTPUT_TXT)).unwrap_or_default();
        let has_table =
            output.lines().any(|line| line.starts_with("bench ")) && output.contains("-----");
        if !has_table {
            problems.push(format!("{name}/output.txt holds no report table"));
        }
        match std::fs::read(folder.join(layout::META_JSON))
            .map(|bytes| serde_json::from_slice::<TaskMeta>(&bytes))
        {
            Ok(Ok(meta)) => {
                if meta.instance_type != task.instance_type || meta.run != task.run {
                    problems.push(format!(
                        "{name}/meta.json names {}-{}",
                        meta.instance_type, meta.run
                    ));
                }
                if meta.ruby_description.is_empty()
                    || meta.image_id.is_none()
                    || meta.pinned_cpu.is_none()
                    || meta.cgroup_cpuset.is_none()
                {
                    problems.push(format!("{name}/meta.json lacks provenance: {meta:?}"));
                }
                if meta.ruby_bench_stand_in != stand_in {
                    problems.push(format!(
                        "{name}/meta.json says ruby_bench_stand_in: {}, but the run used {}",
                        meta.ruby_bench_stand_in,
                        if stand_in {
                            "ruby-bench-mini"
                        } else {
                            "ruby-bench"
                        }
                    ));
                }
            }
            _ => problems.push(format!("{name}/meta.json is missing or unreadable")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the results break the contract:\n  {}",
            problems.join("\n  ")
        );
    }
    eprintln!(
        "xtask e2e-local: {} task folders in {} hold what the contract promises",
        config.tasks().len(),
        run_dir.display()
    );
    Ok(())
}
