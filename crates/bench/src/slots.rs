//! `bench slots`: what parallel slots do to the numbers. The same benchmarks run in benchmark
//! containers pinned to CPUs, three ways: one slot alone, every CPU a slot at once (what the
//! runner's default `SLOT_MODE=vcpu` does), and one slot per physical core at once
//! (`SLOT_MODE=core`). Each benchmark's median iteration time is compared with the lone
//! slot's, with a bootstrap interval. The configurations take turns round by round, so a drift
//! of the machine spreads over all three.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// What `bench slots` measures with.
pub struct SlotsSettings {
    /// The benchmark image, e.g. `rcb/ruby:3.3.8`.
    pub image: String,
    /// A ruby-bench directory (the real suite or ruby-bench-mini).
    pub ruby_bench: PathBuf,
    /// The benchmarks to run.
    pub benchmarks: Vec<String>,
    /// `yjit` or `interp`.
    pub mode: String,
    /// ruby-bench's warm-up and measured iterations.
    pub warmup: u32,
    /// Measured iterations per benchmark and container.
    pub bench: u32,
    /// Rounds of the three configurations.
    pub rounds: u32,
}

/// Bootstrap resamples of each interval.
const RESAMPLES: usize = 2000;

/// A set of CPUs that run a slot each at the same time.
struct Configuration {
    name: &'static str,
    cpus: Vec<u32>,
}

/// Runs the benchmark and prints its table.
pub fn run_benchmark(settings: &SlotsSettings) -> anyhow::Result<()> {
    let ruby_bench = settings
        .ruby_bench
        .canonicalize()
        .with_context(|| format!("ruby-bench directory {}", settings.ruby_bench.display()))?;
    if !ruby_bench.join("run_benchmarks.rb").is_file() {
        bail!("{} has no run_benchmarks.rb", ruby_bench.display());
    }
    let cpus = online_cpus()?;
    let cores = one_cpu_per_core(&cpus)?;
    let configurations = [
        Configuration {
            name: "one slot alone",
            cpus: vec![cpus[0]],
        },
        Configuration {
            name: "every CPU a slot",
            cpus: cpus.clone(),
        },
        Configuration {
            name: "one slot per core",
            cpus: cores.clone(),
        },
    ];
    println!(
        "bench slots: {} on {} ({} CPUs, {} physical cores), {} mode, {} warm-up + {} iterations, {} rounds",
        settings.benchmarks.join(", "),
        settings.image,
        cpus.len(),
        cores.len(),
        settings.mode,
        settings.warmup,
        settings.bench,
        settings.rounds
    );
    // Iterations (ms) per configuration and benchmark, pooled over containers and rounds.
    let mut samples: Vec<BTreeMap<String, Vec<f64>>> = vec![BTreeMap::new(); configurations.len()];
    for round in 1..=settings.rounds {
        for (index, configuration) in configurations.iter().enumerate() {
            eprintln!(
                "bench slots: round {round}/{}: {} (CPUs {:?})",
                settings.rounds, configuration.name, configuration.cpus
            );
            for times in run_configuration(settings, &ruby_bench, &configuration.cpus)? {
                for (benchmark, iterations) in times {
                    samples[index]
                        .entry(benchmark)
                        .or_default()
                        .extend(iterations);
                }
            }
        }
    }
    print_table(&configurations, &samples);
    Ok(())
}

/// Runs one container per CPU at once; returns each container's iteration times.
fn run_configuration(
    settings: &SlotsSettings,
    ruby_bench: &Path,
    cpus: &[u32],
) -> anyhow::Result<Vec<BTreeMap<String, Vec<f64>>>> {
    let scratch = tempdir()?;
    let mut children = Vec::new();
    for cpu in cpus {
        let out = scratch.join(format!("cpu{cpu}"));
        std::fs::create_dir_all(&out)?;
        let mode = if settings.mode == "yjit" {
            "yjit::ruby --yjit"
        } else {
            "interp::ruby"
        };
        let script = format!(
            "set -e; cp -r /ruby-bench-src /ruby-bench; cd /ruby-bench; \
             ruby run_benchmarks.rb -e '{mode}' --warmup={} --bench={} --no-sudo --no-pinning --out-name=/out/ruby-bench {} >/out/output.txt 2>&1",
            settings.warmup,
            settings.bench,
            settings.benchmarks.join(" ")
        );
        let child = Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--label"])
            .arg("rcb.project=ruby-cross-cloud-bench")
            .arg(format!("--cpuset-cpus={cpu}"))
            .arg("-v")
            .arg(format!("{}:/ruby-bench-src:ro", ruby_bench.display()))
            .arg("-v")
            .arg(format!("{}:/out", out.display()))
            .arg(&settings.image)
            .args(["sh", "-c", &script])
            .spawn()
            .context("docker runs; install Docker Engine")?;
        children.push((out, child));
    }
    let mut results = Vec::new();
    let mut failure = None;
    for (out, mut child) in children {
        let status = child.wait()?;
        if !status.success() {
            let log = std::fs::read_to_string(out.join("output.txt")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            failure.get_or_insert(format!(
                "a benchmark container failed ({status}):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
            continue;
        }
        results.push(read_times(&out.join("ruby-bench.json"), &settings.mode)?);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    match failure {
        Some(message) => bail!(message),
        None => Ok(results),
    }
}

/// Each benchmark's measured iterations (ms) from ruby-bench's JSON report.
fn read_times(path: &Path, mode: &str) -> anyhow::Result<BTreeMap<String, Vec<f64>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("no report {}", path.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text)?;
    let raw = report["raw_data"][mode]
        .as_object()
        .with_context(|| format!("{} has no raw_data.{mode}", path.display()))?;
    Ok(raw
        .iter()
        .filter_map(|(benchmark, data)| {
            let times: Vec<f64> = data["bench"]
                .as_array()?
                .iter()
                .filter_map(|seconds| seconds.as_f64().map(|s| s * 1000.0))
                .collect();
            (!times.is_empty()).then(|| (benchmark.clone(), times))
        })
        .collect())
}

fn print_table(configurations: &[Configuration], samples: &[BTreeMap<String, Vec<f64>>]) {
    print!("\n{:<14} {:>16}", "benchmark", "alone (ms)");
    for configuration in &configurations[1..] {
        print!(
            " {:>30}",
            format!("{} ({})", configuration.name, configuration.cpus.len())
        );
    }
    println!();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for (benchmark, alone) in &samples[0] {
        let alone_median = median(alone.clone());
        print!(
            "{benchmark:<14} {:>16}",
            format!("{alone_median:.1} (n={})", alone.len())
        );
        for other in &samples[1..] {
            let Some(times) = other.get(benchmark) else {
                print!(" {:>30}", "-");
                continue;
            };
            let change = median(times.clone()) / alone_median - 1.0;
            let (low, high) = bootstrap_change(alone, times, &mut seed);
            print!(
                " {:>30}",
                format!(
                    "{:+.1}% [{:+.1}, {:+.1}]",
                    change * 100.0,
                    low * 100.0,
                    high * 100.0
                )
            );
        }
        println!();
    }
    println!(
        "\nchange: median iteration time against one slot alone; [95% bootstrap interval]. Positive = slower."
    );
}

/// A 95% percentile-bootstrap interval of median(b) / median(a) - 1.
fn bootstrap_change(a: &[f64], b: &[f64], seed: &mut u64) -> (f64, f64) {
    let mut changes: Vec<f64> = (0..RESAMPLES)
        .map(|_| median(resample(b, seed)) / median(resample(a, seed)) - 1.0)
        .collect();
    changes.sort_by(f64::total_cmp);
    let at = |q: f64| changes[((RESAMPLES as f64 - 1.0) * q).round() as usize];
    (at(0.025), at(0.975))
}

fn resample(values: &[f64], seed: &mut u64) -> Vec<f64> {
    (0..values.len())
        .map(|_| values[(next_random(seed) % values.len() as u64) as usize])
        .collect()
}

/// xorshift64*: a fixed-seed generator, so a table is reproducible from its samples.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// The CPUs this process may run on.
fn online_cpus() -> anyhow::Result<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .context("reading /sys/devices/system/cpu/online")?;
    let cpus = parse_cpu_list(text.trim())?;
    if cpus.is_empty() {
        bail!("no online CPU");
    }
    Ok(cpus)
}

/// The first CPU of each physical core (SMT siblings share a core).
fn one_cpu_per_core(cpus: &[u32]) -> anyhow::Result<Vec<u32>> {
    let mut firsts = Vec::new();
    for cpu in cpus {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list");
        let siblings = match std::fs::read_to_string(&path) {
            Ok(text) => parse_cpu_list(text.trim())?,
            Err(_) => vec![*cpu],
        };
        let first = siblings.iter().copied().min().unwrap_or(*cpu);
        if !firsts.contains(&first) && cpus.contains(&first) {
            firsts.push(first);
        }
    }
    Ok(firsts)
}

/// Parses a kernel CPU list such as `0-3,8`.
fn parse_cpu_list(text: &str) -> anyhow::Result<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|part| !part.is_empty()) {
        match part.split_once('-') {
            Some((start, end)) => cpus.extend(start.parse::<u32>()?..=end.parse::<u32>()?),
            None => cpus.push(part.parse()?),
        }
    }
    Ok(cpus)
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rcb-bench-slots-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
