//! The harness itself: fresh databases, loopback-only labelled containers, clear
//! failures when Docker or an image is missing.

use std::process::Command;

use test_support::{catalog, check_docker, fresh_database, session_label};

/// Creates the same table in a fresh database; it would collide if two tests shared one.
async fn create_table_and_count_rows() -> i64 {
    let database = fresh_database().await;
    let pool = database.pool().await;
    sqlx::query("CREATE TABLE marker (id int)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO marker VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM marker")
        .fetch_one(&pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn first_test_has_its_own_database() {
    assert_eq!(create_table_and_count_rows().await, 1);
}

#[tokio::test]
async fn second_test_has_its_own_database() {
    assert_eq!(create_table_and_count_rows().await, 1);
}

#[tokio::test]
async fn databases_are_isolated_from_each_other() {
    let first = fresh_database().await;
    let second = fresh_database().await;
    assert_ne!(first.name, second.name);
    let first_pool = first.pool().await;
    sqlx::query("CREATE TABLE only_in_first (id int)")
        .execute(&first_pool)
        .await
        .unwrap();
    let visible: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_first')::text")
        .fetch_one(&second.pool().await)
        .await
        .unwrap();
    assert_eq!(visible, None);
}

#[tokio::test]
async fn containers_are_labelled_and_published_on_loopback_only() {
    fresh_database().await;
    test_support::s3_server().await;
    let (key, value) = session_label();
    let ids = docker(&["ps", "-q", "--filter", &format!("label={key}={value}")]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert_eq!(
        ids.len(),
        2,
        "one Postgres and one s3-local for this test process"
    );
    for id in ids {
        let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", id]);
        let expected = format!("\"{}\":\"{}\"", catalog().label, catalog().project);
        assert!(labels.contains(&expected), "{labels}");
        let bindings = docker(&[
            "inspect",
            "--format",
            "{{json .HostConfig.PortBindings}}",
            id,
        ]);
        assert!(bindings.contains("\"HostIp\":\"127.0.0.1\""), "{bindings}");
        assert!(!bindings.contains("\"HostIp\":\"\""), "{bindings}");
        let image = docker(&["inspect", "--format", "{{.Config.Image}}", id]);
        assert!(
            image.starts_with(&format!("{}/", catalog().prefix)),
            "{image}"
        );
    }
}

#[test]
fn a_missing_image_fails_with_the_command_that_builds_it() {
    let problem = check_docker("rcb/no-such-image:never").unwrap_err();
    assert!(problem.contains("cargo xtask images"), "{problem}");
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
