//! Benchmarks of the orchestrator, run by `cargo xtask bench claims|archive` (see
//! BENCHMARKS.md).
//!
//! - `claims`: claims per second and latency over HTTP on 127.0.0.1, the optimistic claim of
//!   `POST /tasks/claim` in turn with two reference `FOR UPDATE SKIP LOCKED` claims served by
//!   the same process (the run looked up first, and all in one statement), with double
//!   assignments counted.
//! - `archive`: building `results.tar.gz` from task results in s3-local, in a child process
//!   whose peak RSS is measured, side by side with `tar czf` of the same files.
//!
//! Postgres and s3-local come from `test-support` (labelled containers on 127.0.0.1 from the
//! images of `cargo xtask images`, removed when the process exits).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use orchestrator::db::{RunId, runs};
use orchestrator::{AppConfig, AppState, MIGRATOR, Presigner, create_app};
use protocol::{
    ClaimRequest, ClaimResponse, ClaimedTask, PresignedUrls, RubyBenchSelection, layout,
};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_support::{S3Server, fresh_bucket, fresh_database};

/// The API key of the benchmarked app.
const API_KEY: &str = "bench-api-key";

#[derive(Parser)]
#[command(about = "Benchmarks of the orchestrator")]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Claims per second and latency at several concurrencies, against a SKIP LOCKED reference.
    Claims {
        /// Tasks per run; each round claims all of them.
        #[arg(long, default_value_t = 10_000)]
        tasks: u32,
        /// Concurrent claimers, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "16,64")]
        claimers: Vec<usize>,
        /// Rounds per concurrency (each round runs both claims once).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Builds the archive of many results and compares with `tar czf`.
    Archive {
        /// Task results.
        #[arg(long, default_value_t = 1000)]
        results: u32,
        /// Size of each result's `output.txt`, in KiB.
        #[arg(long, default_value_t = 1024)]
        kib: usize,
        /// Builds of each kind.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Internal: builds one archive and prints its time and peak RSS as JSON.
    #[command(hide = true)]
    ArchiveWorker {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        access_key: String,
        #[arg(long)]
        secret_key: String,
        #[arg(long)]
        bucket: String,
        #[arg(long)]
        run_id: i64,
    },
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match Cli::parse().command {
        BenchCommand::Claims {
            tasks,
            claimers,
            rounds,
        } => runtime.block_on(bench_claims(tasks, &claimers, rounds)),
        BenchCommand::Archive {
            results,
            kib,
            rounds,
        } => runtime.block_on(bench_archive(results, kib, rounds)),
        BenchCommand::ArchiveWorker {
            database_url,
            endpoint,
            access_key,
            secret_key,
            bucket,
            run_id,
        } => {
            let server = S3Server {
                endpoint,
                access_key,
                secret_key,
                region: "us-east-1".to_owned(),
            };
            runtime.block_on(archive_worker(&database_url, &server, &bucket, run_id))
        }
    }
}

/// An app on a fresh database and bucket, with the reference claim added.
async fn bench_app() -> anyhow::Result<(AppState, String)> {
    let database = fresh_database().await;
    let pool = PgPoolOptions::new()
        // As many database connections as `serve` uses.
        .max_connections(orchestrator::MAX_DB_CONNECTIONS)
        .connect(&database.url)
        .await?;
    MIGRATOR.run(&pool).await?;
    let bucket = fresh_bucket().await;
    let presigner = Presigner::new(
        bucket.server.client(),
        bucket.server.credentials(),
        &bucket.name,
        Duration::from_secs(3600),
    );
    let state = AppState::new(
        pool,
        presigner,
        AppConfig {
            api_key: API_KEY.parse().expect("a non-empty key"),
            claim_retry_after_secs: 1,
        },
    );
    let reference = axum::Router::new()
        .route("/reference/claim", post(reference_claim))
        .route("/reference/claim-in-one", post(reference_claim_in_one))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            orchestrator::auth::require_api_key,
        ))
        .with_state(state.clone());
    let app = create_app(state.clone()).merge(reference);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((state, base))
}

/// The reference claim, as one writes it first: the same request and presigning as
/// `POST /tasks/claim`, the latest run looked up, then the task taken with one
/// `FOR UPDATE SKIP LOCKED` statement.
async fn reference_claim(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ClaimResponse>, String> {
    let request = ClaimRequest::from_json(&body).map_err(|e| e.message().to_owned())?;
    let run = runs::get_latest_run(&state.db)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no run")?;
    let claimed: Option<(i64, i32)> = sqlx::query_as(
        "UPDATE tasks SET state = 'claimed', runner_id = $4, lock_version = lock_version + 1, \
             claimed_at = now(), last_heartbeat_at = now() \
         WHERE id = (SELECT id FROM tasks \
             WHERE run_id = $1 AND provider = $2 AND instance_type = $3 AND state = 'pending' \
             ORDER BY run, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, run",
    )
    .bind(run.id)
    .bind(request.provider.as_str())
    .bind(&request.instance_type)
    .bind(&request.runner_id)
    .fetch_optional(&state.db)
    .await
    .map_err(|e| e.to_string())?;
    let Some((id, task_run)) = claimed else {
        return Ok(Json(ClaimResponse::Done));
    };
    reference_assigned(
        &state,
        request,
        id,
        task_run,
        run.id.0,
        run.ruby_version,
        run.ruby_bench.0,
        run.debug_mode,
    )
    .await
}

/// The reference claim in one round trip, as `POST /tasks/claim` is: the latest run's
/// lookup and settings folded into the `FOR UPDATE SKIP LOCKED` statement.
async fn reference_claim_in_one(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ClaimResponse>, String> {
    let request = ClaimRequest::from_json(&body).map_err(|e| e.message().to_owned())?;
    type Claimed = (
        i64,
        i32,
        i64,
        String,
        sqlx::types::Json<RubyBenchSelection>,
        bool,
    );
    let claimed: Option<Claimed> = sqlx::query_as(
        "WITH latest AS MATERIALIZED ( \
             SELECT id, ruby_version, ruby_bench, debug_mode FROM runs \
             WHERE id = (SELECT id FROM runs ORDER BY seq DESC LIMIT 1) \
                 AND state = 'running' AND stopped_at IS NULL \
         ), claimed AS ( \
             UPDATE tasks SET state = 'claimed', runner_id = $3, \
                 lock_version = lock_version + 1, claimed_at = now(), last_heartbeat_at = now() \
             WHERE id = (SELECT id FROM tasks \
                 WHERE run_id = (SELECT id FROM latest) AND provider = $1 \
                     AND instance_type = $2 AND state = 'pending' \
                 ORDER BY run, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, run, run_id \
         ) \
         SELECT claimed.id, claimed.run, latest.id, latest.ruby_version, latest.ruby_bench, \
             latest.debug_mode \
         FROM claimed JOIN latest ON latest.id = claimed.run_id",
    )
    .bind(request.provider.as_str())
    .bind(&request.instance_type)
    .bind(&request.runner_id)
    .fetch_optional(&state.db)
    .await
    .map_err(|e| e.to_string())?;
    let Some((id, task_run, run_id, ruby_version, ruby_bench, debug_mode)) = claimed else {
        return Ok(Json(ClaimResponse::Done));
    };
    reference_assigned(
        &state,
        request,
        id,
        task_run,
        run_id,
        ruby_version,
        ruby_bench.0,
        debug_mode,
    )
    .await
}

/// The `assigned` answer of a reference claim, with its URLs signed as `POST /tasks/claim`
/// signs them.
#[allow(clippy::too_many_arguments)]
async fn reference_assigned(
    state: &AppState,
    request: ClaimRequest,
    id: i64,
    task_run: i32,
    run_id: i64,
    ruby_version: String,
    ruby_bench: RubyBenchSelection,
    debug_mode: bool,
) -> Result<Json<ClaimResponse>, String> {
    let presigned_urls = PresignedUrls {
        result: state
            .storage
            .put_url(&layout::task_result_key(run_id, id))
            .await
            .map_err(|e| e.to_string())?,
        error: state
            .storage
            .put_url(&layout::task_error_key(run_id, id))
            .await
            .map_err(|e| e.to_string())?,
    };
    Ok(Json(ClaimResponse::Assigned {
        task: ClaimedTask {
            id,
            run_id,
            provider: request.provider,
            instance_type: request.instance_type,
            run: u32::try_from(task_run).unwrap_or_default(),
            ruby_version,
            ruby_bench,
            debug_mode,
        },
        presigned_urls,
    }))
}

/// The claims measured, by name and route: the optimistic claim first, then the references.
const CLAIM_METHODS: [(&str, &str); 3] = [
    ("optimistic", "/tasks/claim"),
    ("SKIP LOCKED", "/reference/claim"),
    ("SKIP LOCKED in one statement", "/reference/claim-in-one"),
];

/// What one round of one claim method measured.
struct ClaimRound {
    seconds: f64,
    latencies_ms: Vec<f64>,
    assigned: usize,
    doubles: usize,
    waits: usize,
}

impl ClaimRound {
    fn rate(&self) -> f64 {
        self.assigned as f64 / self.seconds
    }
}

async fn bench_claims(tasks: u32, claimers: &[usize], rounds: usize) -> anyhow::Result<()> {
    let (state, base) = bench_app().await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    println!("claims: {tasks} tasks per round, {rounds} rounds per concurrency, HTTP on 127.0.0.1");
    println!();
    println!(
        "| claimers | claim | claims/s (median) | p50 ms | p99 ms | waits | double assignments |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    let mut run_id = 1_000_000_000_i64;
    for &concurrency in claimers {
        let mut measured: Vec<Vec<ClaimRound>> = CLAIM_METHODS.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            // Rotate which goes first, so that none always meets a warmer database.
            for turn in 0..CLAIM_METHODS.len() {
                let method = (round + turn) % CLAIM_METHODS.len();
                let (name, path) = CLAIM_METHODS[method];
                run_id += 1;
                start_run(&client, &base, run_id, tasks).await?;
                let round_measured = claim_all(
                    &client,
                    &format!("{base}{path}"),
                    concurrency,
                    &state.db,
                    run_id,
                )
                .await?;
                ensure!(
                    round_measured.assigned == tasks as usize,
                    "{name} assigned {} of {tasks} tasks",
                    round_measured.assigned
                );
                runs::update_run_complete(&state.db, RunId(run_id), "unused").await?;
                measured[method].push(round_measured);
            }
        }
        for ((name, _), measured) in CLAIM_METHODS.iter().zip(&measured) {
            let rates: Vec<f64> = measured.iter().map(ClaimRound::rate).collect();
            let mut latencies: Vec<f64> = measured
                .iter()
                .flat_map(|m| m.latencies_ms.iter().copied())
                .collect();
            latencies.sort_by(f64::total_cmp);
            println!(
                "| {concurrency} | {name} | {:.0} | {:.1} | {:.1} | {} | {} |",
                median(&rates),
                percentile(&latencies, 0.50),
                percentile(&latencies, 0.99),
                measured.iter().map(|m| m.waits).sum::<usize>(),
                measured.iter().map(|m| m.doubles).sum::<usize>(),
            );
        }
        // The optimistic claim's rate over each reference's, round by round.
        for (reference, (name, _)) in CLAIM_METHODS.iter().enumerate().skip(1) {
            let ratios: Vec<f64> = measured[0]
                .iter()
                .zip(&measured[reference])
                .map(|(o, r)| o.rate() / r.rate())
                .collect();
            summary.push((concurrency, *name, median(&ratios), ratios));
        }
    }
    println!();
    for (concurrency, name, ratio, ratios) in summary {
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "{concurrency} claimers: median ratio optimistic / {name} = {ratio:.2} (rounds: {})",
            each.join(", ")
        );
    }
    Ok(())
}

async fn start_run(
    client: &reqwest::Client,
    base: &str,
    run_id: i64,
    tasks: u32,
) -> anyhow::Result<()> {
    let response = client
        .post(format!("{base}/run/start"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "ruby_version": "3.4.7",
            "runs_per_instance_type": tasks,
            "run_id": run_id,
            "local": ["bench"]
        }))
        .send()
        .await?;
    ensure!(
        response.status() == reqwest::StatusCode::CREATED,
        "POST /run/start answered {}",
        response.status()
    );
    Ok(())
}

/// `concurrency` claimers claim until told `done`; every claimed id is counted.
async fn claim_all(
    client: &reqwest::Client,
    url: &str,
    concurrency: usize,
    db: &PgPool,
    run_id: i64,
) -> anyhow::Result<ClaimRound> {
    let started = Instant::now();
    let claimers = (0..concurrency).map(|n| {
        let client = client.clone();
        let url = url.to_owned();
        tokio::spawn(async move {
            let body = json!({"provider": "local", "instance_type": "bench", "runner_id": format!("r-{n}")});
            let mut ids = Vec::new();
            let mut latencies = Vec::new();
            let mut waits = 0;
            loop {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(API_KEY)
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                let bytes = response.bytes().await?;
                ensure!(status.is_success(), "{url} answered {status}: {bytes:?}");
                let answer: ClaimResponse = serde_json::from_slice(&bytes)?;
                match answer {
                    ClaimResponse::Assigned { task, .. } => {
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        ids.push(task.id);
                    }
                    // A lost round: ask again at once (the benchmark wants the claim path,
                    // not the runner's retry pause).
                    ClaimResponse::Wait { .. } => waits += 1,
                    ClaimResponse::Done => return Ok::<_, anyhow::Error>((ids, latencies, waits)),
                }
            }
        })
    });
    let results = futures::future::join_all(claimers).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut ids = Vec::new();
    let mut latencies_ms = Vec::new();
    let mut waits = 0;
    for result in results {
        let (claimed, latencies, lost) = result??;
        ids.extend(claimed);
        latencies_ms.extend(latencies);
        waits += lost;
    }
    let assigned = ids.len();
    ids.sort_unstable();
    ids.dedup();
    let mut doubles = assigned - ids.len();
    // The database agrees: every task claimed once, by one runner.
    let claimed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE run_id = $1 AND state = 'claimed'")
            .bind(run_id)
            .fetch_one(db)
            .await?;
    doubles += ids.len().abs_diff(usize::try_from(claimed)?);
    Ok(ClaimRound {
        seconds,
        latencies_ms,
        assigned,
        doubles,
        waits,
    })
}

async fn bench_archive(results: u32, kib: usize, rounds: usize) -> anyhow::Result<()> {
    let database = fresh_database().await;
    let pool = database.pool().await;
    MIGRATOR.run(&pool).await?;
    let bucket = fresh_bucket().await;
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
    runs::insert_run(&pool, RunId(run_id), &config).await?;
    let tasks =
        orchestrator::db::tasks::insert_tasks(&pool, RunId(run_id), &config.tasks()).await?;
    sqlx::query(
        "UPDATE tasks SET state = 'completed', runner_id = 'bench', claimed_at = now(), \
             completed_at = now(), s3_result_key = 'runs/' || run_id || '/tasks/' || id || '/result.tar.gz' \
         WHERE run_id = $1",
    )
    .bind(run_id)
    .execute(&pool)
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
                .execute(&pool)
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

/// Runs one archive build in a child process (this example again), so that its peak RSS is
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

async fn archive_worker(
    database_url: &str,
    server: &S3Server,
    bucket: &str,
    run_id: i64,
) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(database_url)
        .await?;
    let state = AppState::new(
        pool,
        Presigner::new(
            server.client(),
            server.credentials(),
            bucket,
            Duration::from_secs(60),
        ),
        AppConfig {
            api_key: API_KEY.parse().expect("a non-empty key"),
            claim_retry_after_secs: 1,
        },
    );
    let started = Instant::now();
    let report = orchestrator::jobs::build_if_finished(&state, RunId(run_id))
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
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_733_945_123);
    builder
        .append_data(&mut header, layout::OUTPUT_TXT, content)
        .expect("writing to memory");
    builder
        .into_inner()
        .and_then(|encoder| encoder.finish())
        .expect("writing to memory")
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rcb-bench-archive-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}

/// The `q` quantile of sorted values (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
