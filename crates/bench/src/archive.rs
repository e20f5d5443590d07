//! `bench archive`: building `results.tar.gz` from task results in s3-local, in a child
//! process (this binary again, as `archive-worker`) whose peak RSS is measured, side by side
//! with `tar czf` of the same files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use orchestrator::db::{RunId, runs};
use protocol::layout;
use serde_json::{Value, json};
use test_support::{S3Server, TestBucket, TestDatabase, TestOrchestrator};

use crate::stats::median;

/// The API key of the app (no request is made: the builder runs in-process).
const API_KEY: &str = "bench-api-key";

/// Prepares `results` completed tasks of `kib` KiB each, builds their archive `rounds` times
/// and `tar czf`s them as often, and prints a table.
pub async fn bench_archive(results: u32, kib: usize, rounds: usize) -> anyhow::Result<()> {
    // The builder runs in the worker; this app only prepares the run and the objects.
    let app = TestOrchestrator::builder().api_key(API_KEY).build().await;
    let (database, bucket, pool) = (&app.database, &app.bucket, app.pool());
    let client = bucket.server.client();
    let run_id = 1_700_000_000_i64;
    let scratch = tempfile_dir()?;
    let files = scratch.join("files");

    println!("archive: {results} results of {kib} KiB, {rounds} builds of each kind");
    let prepared = Instant::now();
    // The run and its completed tasks, straight into the database.
    let config = json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": results, "run_id": run_id,
        "local": ["bench"]
    });
    let config = protocol::RunConfig::from_json(config.to_string().as_bytes())
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    runs::insert_run(pool, RunId(run_id), &config).await?;
    let tasks = orchestrator::db::tasks::insert_tasks(pool, RunId(run_id), &config.tasks()).await?;
    sqlx::query(
        "UPDATE tasks SET state = 'completed', runner_id = 'bench', claimed_at = now(), \
             completed_at = now(), s3_result_key = 'runs/' || run_id || '/tasks/' || id || '/result.tar.gz' \
         WHERE run_id = $1",
    )
    .bind(run_id)
    .execute(pool)
    .await?;
    // Each task's result.tar.gz in s3-local, and the same output.txt on disk for tar.
    let uploads = futures::stream::iter(tasks.into_iter().map(|task| {
        let client = client.clone();
        let bucket = bucket.name.clone();
        let folder = files.join(layout::task_folder("bench", task.run as u32));
        async move {
            let (content, packed) = tokio::task::spawn_blocking(move || {
                let content = output_txt(task.id.0 as u64, kib * 1024);
                let packed = pack(&content);
                (content, packed)
            })
            .await?;
            tokio::fs::create_dir_all(&folder).await?;
            tokio::fs::write(folder.join(layout::OUTPUT_TXT), &content).await?;
            client
                .put_object()
                .bucket(&bucket)
                .key(layout::task_result_key(run_id, task.id.0))
                .body(packed.into())
                .send()
                .await?;
            anyhow::Ok(())
        }
    }));
    let uploaded: Vec<anyhow::Result<()>> = uploads.buffer_unordered(4).collect().await;
    for result in uploaded {
        result?;
    }
    println!(
        "prepared in {:.1} s (results in s3-local, the same files under {})",
        prepared.elapsed().as_secs_f64(),
        files.display()
    );

    let input_mib = f64::from(results) * kib as f64 / 1024.0;
    let mut builder = Vec::new();
    let mut tar = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first, so that neither always meets a warmer page cache.
        for kind in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            if kind == 0 {
                sqlx::query(
                    "UPDATE runs SET state = 'running', completed_at = NULL, \
                     archive_state = 'none', archive_key = NULL WHERE id = $1",
                )
                .bind(run_id)
                .execute(pool)
                .await?;
                builder.push(run_worker(
                    &database.url,
                    &bucket.server,
                    &bucket.name,
                    run_id,
                )?);
            } else {
                tar.push(run_tar(&files, &scratch.join("tar-out.tar.gz"))?);
            }
        }
    }

    println!();
    println!("| build | runs | median s | input MiB/s | peak RSS MiB | output MiB |");
    println!("|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (name, measured) in [
        ("orchestrator archive builder (S3 → S3)", &builder),
        ("tar czf (disk → disk)", &tar),
    ] {
        let seconds = median(&measured.iter().map(|m| m.seconds).collect::<Vec<_>>());
        let rss = measured
            .iter()
            .map(|m| m.peak_rss_kib)
            .max()
            .unwrap_or_default();
        let bytes = measured.last().map_or(0, |m| m.bytes);
        println!(
            "| {name} | {} | {seconds:.2} | {:.0} | {} | {:.0} |",
            measured.len(),
            input_mib / seconds,
            if rss == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}", rss as f64 / 1024.0)
            },
            bytes as f64 / 1024.0 / 1024.0
        );
        medians.push(seconds);
    }
    println!();
    println!(
        "throughput of the builder relative to tar czf: {:.2}",
        medians[1] / medians[0]
    );
    std::fs::remove_dir_all(&scratch).ok();
    Ok(())
}

struct BuildMeasure {
    seconds: f64,
    peak_rss_kib: u64,
    bytes: u64,
}

/// Runs one archive build in a child process (this binary again), so that its peak RSS is
/// the builder's alone.
fn run_worker(
    database_url: &str,
    server: &S3Server,
    bucket: &str,
    run_id: i64,
) -> anyhow::Result<BuildMeasure> {
    let output = Command::new(std::env::current_exe()?)
        .args(["archive-worker", "--database-url", database_url])
        .args(["--endpoint", &server.endpoint])
        .args(["--access-key", &server.access_key])
        .args(["--secret-key", &server.secret_key])
        .args(["--bucket", bucket])
        .args(["--run-id", &run_id.to_string()])
        .output()
        .context("failed to start the archive worker")?;
    if !output.status.success() {
        bail!(
            "the archive worker failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&output.stdout)?;
    Ok(BuildMeasure {
        seconds: report["seconds"].as_f64().context("seconds")?,
        peak_rss_kib: report["peak_rss_kib"].as_u64().context("peak_rss_kib")?,
        bytes: report["bytes"].as_u64().context("bytes")?,
    })
}

/// `tar czf` of the same files, timed (its memory is not measured: tar and gzip stream).
fn run_tar(files: &Path, out: &Path) -> anyhow::Result<BuildMeasure> {
    let started = Instant::now();
    let status = Command::new("tar")
        .arg("czf")
        .arg(out)
        .arg("-C")
        .arg(files)
        .arg(".")
        .status()
        .context("failed to run tar")?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(status.success(), "tar czf failed");
    Ok(BuildMeasure {
        seconds,
        peak_rss_kib: 0,
        bytes: std::fs::metadata(out)?.len(),
    })
}

/// Builds the run's archive with the orchestrator's builder on the benchmark's database and
/// bucket, and prints its time, its peak RSS and the archive's size as JSON.
pub async fn archive_worker(
    database_url: &str,
    server: &S3Server,
    bucket: &str,
    run_id: i64,
) -> anyhow::Result<()> {
    let app = TestOrchestrator::builder()
        .pool_size(4)
        .api_key(API_KEY)
        .presign_ttl(Duration::from_secs(60))
        .database(TestDatabase {
            name: "the benchmark's database".to_owned(),
            url: database_url.to_owned(),
        })
        .bucket(TestBucket {
            server: server.clone(),
            name: bucket.to_owned(),
        })
        .build()
        .await;
    let started = Instant::now();
    let report = orchestrator::jobs::build_if_finished(&app.state, RunId(run_id))
        .await?
        .context("the run was not ready to build")?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"seconds": seconds, "peak_rss_kib": own_peak_rss_kib()?, "bytes": report.bytes})
    );
    Ok(())
}

/// `VmHWM` of this process: the most resident memory it ever had.
fn own_peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}

/// Deterministic text like a benchmark log, `size` bytes long.
fn output_txt(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(size + 64);
    let mut iteration = 0u64;
    while out.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        iteration += 1;
        let millis = state % 100_000;
        out.extend_from_slice(
            format!(
                "itr #{iteration}: {}.{:03}ms  rss {} KiB\n",
                millis / 1000,
                millis % 1000,
                40_000 + (state >> 40) % 5_000
            )
            .as_bytes(),
        );
    }
    out.truncate(size);
    out
}

/// A runner's `result.tar.gz` holding one `output.txt`.
fn pack(content: &[u8]) -> Vec<u8> {
    protocol::archive::pack(&[(layout::OUTPUT_TXT, content)], 1_733_945_123)
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rcb-bench-archive-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
