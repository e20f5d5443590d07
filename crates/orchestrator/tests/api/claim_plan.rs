//! The plan of the claim statement, for every window, on tables whose statistics look like a
//! real deployment's: a first run just started (every task pending), a new run after finished
//! ones (a quarter pending) and a run near its end (a few pending). Each plan must read the
//! candidates from the index of pending tasks, reach every other task row by primary key, and
//! have no full scan of `tasks` and no merge join: the plans BENCHMARKS.md describes (a walk of
//! the primary key past every claimed task, a walk of the whole pending index for the update,
//! a merge join over the whole primary key) would each fail here. Plans are checked as Postgres
//! makes them for a statement executed with its values (custom) and for the prepared statement
//! it may switch to after a few executions (generic).

use orchestrator::db::tasks::CLAIM_WINDOWS;
use orchestrator::db::{RunId, runs, tasks};
use protocol::RunConfig;
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::harness::TestApp;

/// The runs before the latest one, all finished.
const PAST_RUNS: [i64; 3] = [101, 102, 103];

/// The run claims come from.
const LATEST_RUN: i64 = 104;

/// Tasks of each instance type in each run.
const RUNS_PER_INSTANCE_TYPE: u32 = 1000;

/// A run config of 10 AWS and 10 Azure instance types: 20,000 tasks.
fn config(run_id: i64) -> RunConfig {
    let aws: Vec<String> = (1..=10).map(|n| format!("c7g.size-{n}")).collect();
    let azure: Vec<String> = (1..=10).map(|n| format!("Standard_D{n}ps_v6")).collect();
    serde_json::from_value(json!({
        "ruby_version": "3.4.7",
        "runs_per_instance_type": RUNS_PER_INSTANCE_TYPE,
        "run_id": run_id,
        "aws": aws,
        "azure": azure,
    }))
    .unwrap()
}

/// Moves the tasks of `run_id` whose run number is at most `up_to` to a finished state (every
/// tenth failed), as runners would have left them.
async fn finish_tasks(db: &mut PgConnection, run_id: i64, up_to: i32) {
    sqlx::query(
        "UPDATE tasks SET runner_id = 'runner', claimed_at = now(), lock_version = 2, \
             state = CASE WHEN id % 10 = 0 THEN 'failed' ELSE 'completed' END, \
             completed_at = CASE WHEN id % 10 = 0 THEN NULL ELSE now() END, \
             failed_at = CASE WHEN id % 10 = 0 THEN now() END, \
             failed_by = CASE WHEN id % 10 = 0 THEN 'runner' END \
         WHERE run_id = $1 AND run <= $2",
    )
    .bind(run_id)
    .bind(up_to)
    .execute(&mut *db)
    .await
    .unwrap();
}

/// Every node of a JSON plan.
fn plan_nodes<'a>(node: &'a Value, nodes: &mut Vec<&'a Value>) {
    nodes.push(node);
    for child in node["Plans"].as_array().into_iter().flatten() {
        plan_nodes(child, nodes);
    }
}

/// Checks one plan; `what` names it in the failure message.
///
/// The candidates may be read through the pending index in its order (an index scan that stops
/// at the window's `LIMIT`) or, when the planner expects fewer pending tasks of the instance
/// type than the window holds, as a bitmap of that index sorted afterwards: the latest run's
/// id comes from a subquery, so its share of the table is a guess. Both read only pending
/// tasks of one run and instance type from the scan start on; neither is a walk of the table.
fn check_plan(plan: &Value, what: &str) {
    let mut nodes = Vec::new();
    plan_nodes(&plan[0]["Plan"], &mut nodes);
    let fail = |problem: &str| -> ! {
        panic!(
            "{what}: {problem}\n{}",
            serde_json::to_string_pretty(plan).unwrap()
        )
    };
    let mut pending_scans = 0;
    for node in &nodes {
        let kind = node["Node Type"].as_str().unwrap_or_default();
        if kind == "Merge Join" {
            fail("a merge join");
        }
        if let Some(index) = node["Index Name"]
            .as_str()
            .filter(|name| name.starts_with("tasks"))
        {
            match index {
                "tasks_pending" => pending_scans += 1,
                "tasks_pkey" => {}
                other => fail(&format!("tasks read through {other}")),
            }
        }
        if node["Relation Name"] != "tasks" || kind == "ModifyTable" {
            continue;
        }
        if !matches!(kind, "Index Scan" | "Index Only Scan" | "Bitmap Heap Scan") {
            fail(&format!("tasks read by a {kind}"));
        }
    }
    if pending_scans != 1 {
        fail(&format!(
            "the index of pending tasks is scanned {pending_scans} times, not once (for the \
             candidates)"
        ));
    }
}

/// Gathers the statistics of `runs` and `tasks` as they are now.
async fn analyze(db: &mut PgConnection) {
    sqlx::raw_sql("ANALYZE runs; ANALYZE tasks")
        .execute(&mut *db)
        .await
        .unwrap();
}

/// Checks the plans of every window, custom and generic, for a claim from the lowest task and
/// one from a scan start inside the latest run, on a connection of its own (its prepared
/// statements are planned with the statistics of now).
async fn check_claim_plans(app: &TestApp, statistics: &str) {
    let mut db = PgConnection::connect(&app.database.url).await.unwrap();
    let db = &mut db;
    let start: (i32, i64) = sqlx::query_as(
        "SELECT run, id FROM tasks WHERE run_id = $1 AND instance_type = 'c7g.size-3' \
             AND state = 'pending' ORDER BY run, id OFFSET 20 LIMIT 1",
    )
    .bind(LATEST_RUN)
    .fetch_one(&mut *db)
    .await
    .unwrap();
    for (index, window) in CLAIM_WINDOWS.iter().enumerate() {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "PREPARE claim_{index} (text, text, bigint, int, bigint, text, boolean) AS {}",
            window.sql()
        )))
        .execute(&mut *db)
        .await
        .unwrap();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            sqlx::raw_sql(AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
                .execute(&mut *db)
                .await
                .unwrap();
            for (from, arguments) in [
                ("the lowest task", "0, 0, 0".to_owned()),
                (
                    "a scan start",
                    format!("{LATEST_RUN}, {}, {}", start.0, start.1),
                ),
            ] {
                let Json(plan): Json<Value> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "EXPLAIN (FORMAT JSON) \
                     EXECUTE claim_{index}('aws', 'c7g.size-3', {arguments}, 'runner-9', false)"
                )))
                .fetch_one(&mut *db)
                .await
                .unwrap();
                check_plan(
                    &plan,
                    &format!("window {index}, {mode}, from {from}, with {statistics}"),
                );
            }
        }
    }
}

#[tokio::test]
async fn every_claim_window_reads_the_pending_index_whatever_the_statistics() {
    let app = TestApp::new().await;
    let mut db = PgConnection::connect(&app.database.url).await.unwrap();
    // The past runs are created (and completed) first, so that the latest run is the newest;
    // their tasks come later, to give the statistics of a first run first.
    for id in PAST_RUNS {
        runs::insert_run(&mut db, RunId(id), &config(id))
            .await
            .unwrap();
        runs::update_run_complete(&mut db, RunId(id), "k")
            .await
            .unwrap();
    }
    let latest = config(LATEST_RUN);
    runs::insert_run(&mut db, RunId(LATEST_RUN), &latest)
        .await
        .unwrap();
    tasks::insert_tasks(&mut db, RunId(LATEST_RUN), &latest.tasks())
        .await
        .unwrap();
    analyze(&mut db).await;
    check_claim_plans(&app, "statistics of a first run: every task pending").await;

    for id in PAST_RUNS {
        tasks::insert_tasks(&mut db, RunId(id), &config(id).tasks())
            .await
            .unwrap();
        finish_tasks(&mut db, id, i32::MAX).await;
    }
    analyze(&mut db).await;
    check_claim_plans(
        &app,
        "statistics of a new run after three: a quarter pending",
    )
    .await;

    finish_tasks(&mut db, LATEST_RUN, 960).await;
    analyze(&mut db).await;
    check_claim_plans(&app, "statistics of a run near its end: 1% pending").await;

    // Statistics gathered when every task had finished, and the latest run's second half
    // pending again since: the first minutes of a run, before the next automatic ANALYZE.
    finish_tasks(&mut db, LATEST_RUN, i32::MAX).await;
    analyze(&mut db).await;
    sqlx::query(
        "UPDATE tasks SET state = 'pending', runner_id = NULL, claimed_at = NULL, \
             completed_at = NULL, failed_at = NULL, failed_by = NULL, lock_version = 0 \
         WHERE run_id = $1 AND run > 500",
    )
    .bind(LATEST_RUN)
    .execute(&mut db)
    .await
    .unwrap();
    check_claim_plans(&app, "statistics of finished runs: no task pending").await;
}
