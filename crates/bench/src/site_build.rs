//! `bench site`: a build of the results website from a synthetic results tree, deterministic
//! (a fixed-seed generator, no clock) and shaped like real ruby-bench output (15 warmup and 10
//! timed iterations, RSS samples, `meta.json`, text and CSV reports beside the JSON).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

/// What the benchmark generates and how often it builds.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Task folders.
    pub tasks: usize,
    /// Benchmarks per task.
    pub benchmarks: usize,
    /// Runs per instance type.
    pub runs: usize,
    /// Timed builds.
    pub repeat: usize,
    /// Generate here and keep the tree, instead of in a temporary folder.
    pub keep: Option<PathBuf>,
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const MODES: [(&str, f64); 2] = [("interp", 1.0), ("yjit", 0.55)];
const WARMUP: usize = 15;
const BENCH: usize = 10;

/// Writes `tasks` task folders of one run under `root/<run-id>/`.
fn generate(root: &Path, tasks: usize, benchmarks: usize, runs: usize) -> anyhow::Result<()> {
    let run_dir = root.join("1767225600");
    let types = tasks.div_ceil(runs.max(1));
    let bench_names: Vec<String> = (0..benchmarks).map(|b| format!("bench-{b:03}")).collect();
    let mut rng = Rng(42);
    let base_ms: Vec<f64> = (0..benchmarks).map(|_| 5.0 + 400.0 * rng.unit()).collect();
    let mut written = 0;
    for t in 0..types {
        let provider = ["aws", "azure"][t % 2];
        let instance_type = format!("synth{t:03}.large");
        let speed = 0.6 + 0.8 * rng.unit();
        for run in 1..=runs {
            if written == tasks {
                return Ok(());
            }
            written += 1;
            let dir = run_dir.join(protocol::layout::task_folder(&instance_type, run as u32));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let machine = 1.0 + 0.02 * (rng.unit() - 0.5);
            let mut json = String::from(
                "{\"metadata\":{\"interp\":\"ruby 3.4.7 (2025-10-08 revision 7a5688e2a2) +PRISM [x86_64-linux]\",\"yjit\":\"ruby 3.4.7 (2025-10-08 revision 7a5688e2a2) +YJIT +PRISM [x86_64-linux]\"},\"raw_data\":{",
            );
            let mut txt = String::from(
                "-------------  ----------------  ----------------\nbench               interp (ms)         yjit (ms)\n",
            );
            for (m, (mode, factor)) in MODES.iter().enumerate() {
                if m > 0 {
                    json.push(',');
                }
                let _ = write!(json, "\"{mode}\":{{");
                for (b, name) in bench_names.iter().enumerate() {
                    if b > 0 {
                        json.push(',');
                    }
                    let mean_s = base_ms[b] * factor * speed * machine / 1000.0;
                    let times: Vec<String> = (0..WARMUP + BENCH)
                        .map(|_| format!("{:.6}", mean_s * (1.0 + 0.04 * (rng.unit() - 0.5))))
                        .collect();
                    let rss: Vec<String> = (0..WARMUP + BENCH)
                        .map(|i| (16_000_000 + 4096 * i).to_string())
                        .collect();
                    let _ = write!(
                        json,
                        "\"{name}\":{{\"RUBY_DESCRIPTION\":\"ruby 3.4.7\",\"warmup\":[{}],\"bench\":[{}],\"rss_samples\":[{}],\"rss\":17000000,\"maxrss\":17100000,\"command_line\":\"/usr/local/bin/ruby -I harness /ruby-bench/benchmarks/{name}.rb\"}}",
                        times[..WARMUP].join(","),
                        times[WARMUP..].join(","),
                        rss.join(",")
                    );
                }
                json.push('}');
            }
            json.push_str("}}");
            for name in &bench_names {
                let _ = writeln!(
                    txt,
                    "{name:<13}  {:>16}  {:>16}",
                    "100.0 ± 1.0%", "55.0 ± 1.0%"
                );
            }
            txt.push_str("-------------  ----------------  ----------------\n");
            let meta = format!(
                "{{\"schema_version\":1,\"run_id\":1767225600,\"task_id\":{written},\"provider\":\"{provider}\",\"instance_type\":\"{instance_type}\",\"run\":{run},\"region\":\"region-1\",\"ruby_version\":\"3.4.7\",\"ruby_description\":\"ruby 3.4.7 (2025-10-08 revision 7a5688e2a2) +PRISM [x86_64-linux]\",\"modes\":[\"interp\",\"yjit\"],\"cpu_model\":\"Synthetic CPU {t}\",\"pinned_cpu\":0,\"smt_siblings\":[0],\"kernel\":\"6.8.0\",\"ruby_bench_commit\":\"09b76c8\",\"started_at\":\"2026-01-01T00:00:00Z\",\"finished_at\":\"2026-01-01T00:30:00Z\",\"cpu_steal_pct\":0.1}}"
            );
            std::fs::write(dir.join("ruby-bench.json"), json)?;
            std::fs::write(dir.join("ruby-bench.txt"), &txt)?;
            std::fs::write(dir.join("output.txt"), &txt)?;
            std::fs::write(dir.join("meta.json"), meta)?;
        }
    }
    Ok(())
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf, bool);

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Generates the tree, builds it `repeat` times and prints a table.
pub fn run_benchmark(settings: &BenchSettings) -> anyhow::Result<()> {
    let temp = match &settings.keep {
        Some(dir) => TempDir(dir.clone(), false),
        None => TempDir(
            std::env::temp_dir().join(format!("site-bench-{}", std::process::id())),
            true,
        ),
    };
    anyhow::ensure!(
        !temp.0.join("results").exists(),
        "{} already exists: remove it or choose another folder",
        temp.0.join("results").display()
    );
    let results = temp.0.join("results");
    let started = Instant::now();
    generate(&results, settings.tasks, settings.benchmarks, settings.runs)?;
    eprintln!(
        "bench site: generated {} task folders × {} benchmarks × 2 modes in {:.1} s under {}",
        settings.tasks,
        settings.benchmarks,
        started.elapsed().as_secs_f64(),
        results.display()
    );
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    let mut times = Vec::new();
    let mut files = 0;
    for i in 0..settings.repeat.max(1) {
        let out = temp.0.join("public");
        let started = Instant::now();
        let report = site::build(&site::BuildSettings {
            results: results.clone(),
            out,
            prices: None,
            baseline: None,
            progress: false,
        })?;
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            report.problems.is_empty(),
            "the synthetic tree had unreadable folders: {:?}",
            report.problems.first()
        );
        files = report.files;
        eprintln!("bench site: build {} took {seconds:.2} s", i + 1);
        times.push(seconds);
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let median = {
        let mut t = times.clone();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    println!("| input | profile | builds | best | median | files written | target |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} task folders × {} benchmarks × 2 modes ({} runs per type) | {profile} | {} | {best:.2} s | {median:.2} s | {files} | < 3 s |",
        settings.tasks,
        settings.benchmarks,
        settings.runs,
        times.len()
    );
    Ok(())
}
