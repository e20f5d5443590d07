//! `bench claims`: claims per second and latency over HTTP on 127.0.0.1, the optimistic claim
//! of `POST /tasks/claim` in turn with the two reference claims of [`crate::reference`], with
//! double assignments counted.

use std::time::{Duration, Instant};

use anyhow::ensure;
use orchestrator::db::{RunId, runs};
use protocol::ClaimResponse;
use serde_json::json;
use sqlx::PgPool;
use test_support::TestOrchestrator;

use crate::stats::{median, percentile};

/// The operator key of the benchmarked app (starts the runs).
const API_KEY: &str = "bench-api-key";

/// The runner key of the benchmarked app (the claimers').
const RUNNER_KEY: &str = "bench-runner-key";

/// The test orchestrator served on 127.0.0.1 with as many database connections as `serve`
/// keeps, and the reference claims added.
async fn bench_app() -> TestOrchestrator {
    TestOrchestrator::builder()
        .pool_size(orchestrator::MAX_DB_CONNECTIONS)
        .api_key(API_KEY)
        .runner_key(RUNNER_KEY)
        .claim_retry_after_secs(1)
        .presign_ttl(Duration::from_secs(3600))
        .routes(crate::reference::routes)
        .serve()
        .await
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

/// Claims `tasks` tasks `rounds` times with each method at each concurrency of `claimers`, and
/// prints a table and the ratios.
pub async fn bench_claims(tasks: u32, claimers: &[usize], rounds: usize) -> anyhow::Result<()> {
    let app = bench_app().await;
    let (state, base) = (&app.state, app.url());
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
                    .bearer_auth(RUNNER_KEY)
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
