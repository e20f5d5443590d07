//! One Postgres server per test process, a fresh database per test.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};
use testcontainers::core::WaitFor;
use tokio::sync::OnceCell;

use crate::containers::{self, ContainerSpec};
use local_stack::catalog;

/// Password of the `postgres` user in the test server.
const PASSWORD: &str = "test-password";

/// How long the server may take to accept connections after its ready message.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

struct Server {
    port: u16,
}

/// A database of its own for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Name of the database.
    pub name: String,
    /// Connection URL, on 127.0.0.1.
    pub url: String,
}

impl TestDatabase {
    /// A connection pool to this database, on the caller's runtime.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(10)
            .connect(&self.url)
            .await
            .unwrap_or_else(|err| panic!("failed to connect to {}: {err}", self.name))
    }
}

/// Creates a new, empty database on the shared Postgres server.
pub async fn fresh_database() -> TestDatabase {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let server = server().await;
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = connect(&server.url("postgres")).await;
    // The name is made here of digits and underscores only.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|err| panic!("failed to create database {name}: {err}"));
    admin.close().await.ok();
    TestDatabase {
        url: server.url(&name),
        name,
    }
}

impl Server {
    fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }
}

async fn server() -> &'static Server {
    static SERVER: OnceCell<Server> = OnceCell::const_new();
    SERVER
        .get_or_init(|| async {
            let started = containers::start(ContainerSpec {
                image: catalog().reference("postgres", "15"),
                port: 5432,
                ready_message: WaitFor::message_on_stderr(
                    "database system is ready to accept connections",
                ),
                env: vec![("POSTGRES_PASSWORD", PASSWORD.to_owned())],
                // Durability is worthless in a throwaway test server; speed is not.
                cmd: [
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=300",
                ]
                .map(str::to_owned)
                .to_vec(),
            })
            .await;
            let server = Server {
                port: started.host_port,
            };
            connect(&server.url("postgres")).await.close().await.ok();
            server
        })
        .await
}

async fn connect(url: &str) -> PgConnection {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        match PgConnection::connect(url).await {
            Ok(connection) => return connection,
            Err(err) if tokio::time::Instant::now() >= deadline => {
                panic!("Postgres did not accept connections within {CONNECT_TIMEOUT:?}: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
