//! What a local run measures with: the benchmark image (the cloud's rule: the official
//! `ruby:<version>`, else a local image whose Ruby really is that version) and the ruby-bench
//! it runs (the real suite at the pinned commit where it can be fetched, else the stand-in).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The ruby-bench commit local runs fetch, the one the site's parsers and the runner's
/// default (`RUBY_BENCH_COMMIT`) are written against.
pub const RUBY_BENCH_COMMIT: &str = protocol::RUBY_BENCH_COMMIT;

/// Where ruby-bench is fetched from.
const RUBY_BENCH_GIT_URL: &str = "https://github.com/ruby/ruby-bench.git";

/// The stand-in that speaks ruby-bench's command line and formats.
pub const RUBY_BENCH_MINI: &str = "fixtures/ruby-bench-mini";

/// The `--ruby-bench` value that asks for the stand-in.
pub const MINI: &str = "mini";

/// The `--ruby-bench` value that fetches the real suite, falling back to the stand-in.
pub const AUTO: &str = "auto";

/// The ruby-bench a local run uses, and what it is.
pub struct RubyBench {
    /// The directory the runners mount.
    pub dir: PathBuf,
    /// True for ruby-bench-mini.
    pub is_mini: bool,
}

/// Resolves `--ruby-bench`: `mini`, `auto` (the pinned commit, fetched once per machine into
/// `~/.cache/rcb/ruby-bench/`, else the stand-in when it cannot be fetched), or a directory.
pub fn ruby_bench(sh: &Shell, choice: &str) -> anyhow::Result<RubyBench> {
    let mini = || RubyBench {
        dir: sh.current_dir().join(RUBY_BENCH_MINI),
        is_mini: true,
    };
    let chosen = match choice {
        MINI => mini(),
        AUTO => match fetch_pinned(sh) {
            Ok(dir) => RubyBench {
                dir,
                is_mini: false,
            },
            Err(err) => {
                eprintln!(
                    "xtask: cannot fetch ruby-bench {RUBY_BENCH_COMMIT} ({err:#}); using the stand-in {RUBY_BENCH_MINI}: its numbers are not ruby-bench's"
                );
                mini()
            }
        },
        dir => {
            let dir = sh.current_dir().join(dir);
            let is_mini = dir.canonicalize().ok()
                == sh.current_dir().join(RUBY_BENCH_MINI).canonicalize().ok();
            RubyBench { dir, is_mini }
        }
    };
    if !chosen.dir.join("run_benchmarks.rb").is_file() {
        bail!(
            "{} is not a ruby-bench directory: it has no run_benchmarks.rb (give a ruby-bench checkout, `{MINI}` or `{AUTO}`)",
            chosen.dir.display()
        );
    }
    if chosen.is_mini {
        eprintln!("xtask: ruby-bench: the stand-in {RUBY_BENCH_MINI} (not ruby-bench's numbers)");
    } else {
        eprintln!("xtask: ruby-bench: {}", chosen.dir.display());
    }
    Ok(chosen)
}

/// The pinned commit's checkout in the cache, fetched when it is not there yet.
fn fetch_pinned(sh: &Shell) -> anyhow::Result<PathBuf> {
    let cache = crate::images::cache_dir()?.join("ruby-bench");
    let dir = cache.join(RUBY_BENCH_COMMIT);
    if dir.join("run_benchmarks.rb").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    let partial = cache.join(format!("{RUBY_BENCH_COMMIT}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    eprintln!(
        "xtask: fetching ruby-bench {RUBY_BENCH_COMMIT} into {}",
        dir.display()
    );
    // No prompt for credentials, and no endless wait on a network that is not there.
    cmd!(
        sh,
        "git clone --quiet --no-checkout {RUBY_BENCH_GIT_URL} {partial}"
    )
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
    .env("GIT_HTTP_LOW_SPEED_TIME", "30")
    .quiet()
    .ignore_stderr()
    .run()
    .context("git clone failed")?;
    cmd!(
        sh,
        "git -C {partial} checkout --quiet --detach {RUBY_BENCH_COMMIT}"
    )
    .quiet()
    .run()
    .context("the pinned commit is not in the clone")?;
    std::fs::rename(&partial, &dir)?;
    Ok(dir)
}

/// The repository of the benchmark image for Ruby `version`, by the cloud's rule: the
/// official `ruby:<version>` when the engine has it or can pull it, else the local
/// `<local_repo>:<version>` (`cargo xtask images`, tagged with the Ruby it really contains).
/// Neither: an error listing the Ruby versions that can be had here.
pub fn bench_image_repo(
    sh: &Shell,
    local_repo: &str,
    version: &str,
    config: &Path,
) -> anyhow::Result<String> {
    let official = format!("ruby:{version}");
    let have = |reference: &str| crate::images::image_exists(sh, reference);
    if have(&official) {
        eprintln!("xtask: benchmark image {official} (the official image)");
        return Ok("ruby".to_owned());
    }
    let pulled = cmd!(sh, "docker pull --quiet {official}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if pulled {
        eprintln!("xtask: benchmark image {official} (the official image, pulled)");
        return Ok("ruby".to_owned());
    }
    let local = format!("{local_repo}:{version}");
    if have(&local) {
        eprintln!(
            "xtask: benchmark image {local} (built here; the official {official} cannot be pulled)"
        );
        return Ok(local_repo.to_owned());
    }
    let repository = format!("reference={local_repo}");
    let tags = cmd!(
        sh,
        "docker images --filter {repository} --format '{{.Tag}}'"
    )
    .quiet()
    .read()
    .unwrap_or_default();
    let mut versions: Vec<&str> = tags
        .lines()
        .filter(|tag| tag.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let available = if versions.is_empty() {
        "none yet".to_owned()
    } else {
        versions.join(", ")
    };
    bail!(
        "{} asks for Ruby {version}, but {official} cannot be pulled here and there is no local {local}; Rubies to be had here: {available} (built by `cargo xtask images`, each tagged with the Ruby it really contains); set ruby_version to one of them",
        config.display()
    )
}
