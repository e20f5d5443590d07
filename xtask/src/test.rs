//! `cargo xtask test`: the whole suite, from a fresh machine to a clean Docker engine.

use std::time::Instant;

use anyhow::bail;
use xshell::{Shell, cmd};

use crate::images::Description;
use crate::{e2e, images, local, nix, setup, suite, sweep, terraform};

/// Set up what this machine lacks, build the images, run every check and test, then
/// remove everything the project left in Docker (and fail if anything was left).
#[derive(clap::Args)]
pub struct Test {}

impl Test {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let started = Instant::now();
        let description = Description::load(sh)?;
        let mut steps = Steps::default();

        steps.run("set up the host", || {
            setup::ensure_host_tools(sh, setup::TEST_TOOLS)?;
            setup::ensure_python_tools(sh)?;
            setup::ensure_docker(sh)
        })?;
        steps.run("cargo fmt --check", || {
            Ok(cmd!(sh, "cargo fmt --all --check").run()?)
        })?;
        steps.run("terraform fmt", || terraform::check_format(sh))?;
        steps.run("fish --no-execute", || check_fish_syntax(sh))?;
        steps.run("nix flake checks", || nix::check(sh))?;
        steps.run("images", || {
            // The suite runs on Debian's Ruby: the Ruby compiled from source is the main
            // job's (`cargo xtask e2e-local`), which keeps a fresh machine's suite short.
            images::Images {
                rebuild_rootfs: false,
                skip_ruby_builds: true,
            }
            .run(sh)
        })?;
        // The suites run whatever the others' outcome, so one run reports every failure.
        let outcomes = [
            steps.run("cargo test", || {
                Ok(cmd!(sh, "cargo test --workspace --no-fail-fast").run()?)
            }),
            steps.run("ruby-bench-mini tests", || {
                Ok(cmd!(sh, "ruby fixtures/ruby-bench-mini/test/format_test.rb").run()?)
            }),
            steps.run("e2e-local", || {
                let scratch = sh.create_temp_dir()?;
                e2e::E2eLocal {
                    config: Some(local::BOOKWORM_RUBY_CONFIG.into()),
                    // The tests keep the stand-in: fast, offline, and known numbers.
                    ruby_bench: suite::MINI.into(),
                    results: scratch.path().join("results"),
                    site: scratch.path().join("public"),
                }
                .run(sh)
            }),
            steps.run("cargo clippy", || {
                Ok(cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?)
            }),
        ];
        let leftovers = sweep::sweep_project_resources(sh, &description);

        steps.print_summary();
        eprintln!("xtask test: {:.0}s in all", started.elapsed().as_secs_f64());
        let failed: Vec<String> = outcomes
            .into_iter()
            .filter_map(Result::err)
            .map(|err| format!("{err:#}"))
            .collect();
        if !failed.is_empty() {
            bail!(
                "{} step(s) failed:\n  {}",
                failed.len(),
                failed.join("\n  ")
            );
        }
        let leftovers = leftovers?;
        if !leftovers.is_empty() {
            bail!(
                "the suite left these behind in Docker (now removed):\n  {}",
                leftovers.join("\n  ")
            );
        }
        eprintln!("xtask test: all checks passed and nothing was left in Docker");
        Ok(())
    }
}

/// Parses every Fish script without running it.
fn check_fish_syntax(sh: &Shell) -> anyhow::Result<()> {
    for script in sh.read_dir("fish")? {
        if script.extension().is_some_and(|ext| ext == "fish") {
            cmd!(sh, "fish --no-execute {script}").run()?;
        }
    }
    Ok(())
}

/// Named steps with their durations, for the summary at the end.
#[derive(Default)]
struct Steps {
    done: Vec<(String, f64, bool)>,
}

impl Steps {
    fn run<T>(
        &mut self,
        name: &str,
        step: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        eprintln!("xtask test: == {name}");
        let started = Instant::now();
        let result = step();
        self.done.push((
            name.to_owned(),
            started.elapsed().as_secs_f64(),
            result.is_ok(),
        ));
        result
    }

    fn print_summary(&self) {
        eprintln!("xtask test: summary");
        for (name, seconds, ok) in &self.done {
            eprintln!(
                "  {:<6} {seconds:>7.1}s  {name}",
                if *ok { "ok" } else { "FAILED" }
            );
        }
    }
}
