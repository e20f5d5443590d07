//! Settings of the orchestrator binary, from flags or the environment variables that
//! docs/decisions.md names.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use clap::{Args, Parser};

/// How long presigned URLs stay valid unless `PRESIGN_TTL_SECS` says otherwise: long enough for
/// the slowest ruby-bench task to finish and upload its result with the URL its claim returned.
pub const DEFAULT_PRESIGN_TTL_SECS: u64 = 12 * 60 * 60;

/// How long a claimed task may go without a heartbeat before it is marked failed.
pub const DEFAULT_HEARTBEAT_TIMEOUT_SECS: u64 = 120;

/// How often the heartbeat timeout checker looks for silent tasks.
pub const DEFAULT_HEARTBEAT_CHECK_INTERVAL_SECS: u64 = 60;

/// What a claim answered with `wait` tells the runner to wait. A `wait` only happens when other
/// runners won every compare-and-set, so tasks are likely still there: ask again soon.
pub const DEFAULT_CLAIM_RETRY_AFTER_SECS: u64 = 5;

/// How long a provider and instance type with pending tasks may go without any of its runners
/// claiming or reporting, counted from the run's start, before those tasks fail as
/// `no_runner`: long enough for a slow cloud to boot a host and pull its images.
pub const DEFAULT_NO_RUNNER_TIMEOUT_SECS: u64 = 20 * 60;

/// Everything the orchestrator binary is configured with.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "orchestrator",
    version,
    about = "The Ruby Cross Cloud Benchmark orchestrator: hands out benchmark tasks to runners and collects their results"
)]
pub struct Settings {
    /// Postgres connection URL; migrations are applied at start.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,

    /// The operator key: the master script sends it as `Authorization: Bearer <API_KEY>` to
    /// start, stop and read runs.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Secret,

    /// The runner key: runner hosts send it to claim tasks and report on the tasks they
    /// hold; it opens nothing else. Must differ from API_KEY.
    #[arg(long, env = "RUNNER_API_KEY", hide_env_values = true)]
    pub runner_api_key: Secret,

    /// The password of the dashboard's operator login; unset, the dashboard refuses every login.
    #[arg(long, env = "OPERATOR_PASSWORD", hide_env_values = true)]
    pub operator_password: Option<Secret>,

    /// The address to serve the API on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// Where results are stored and how presigned URLs are signed.
    #[command(flatten)]
    pub s3: S3Settings,

    /// How long presigned upload and download URLs stay valid, in seconds.
    #[arg(long, env = "PRESIGN_TTL_SECS", default_value_t = DEFAULT_PRESIGN_TTL_SECS, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub presign_ttl_secs: u64,

    /// How long a claimed task may go without a heartbeat before it is marked failed, in
    /// seconds (by the database clock).
    #[arg(long, env = "HEARTBEAT_TIMEOUT_SECS", default_value_t = DEFAULT_HEARTBEAT_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_timeout_secs: u64,

    /// How often to look for tasks whose heartbeats stopped, in seconds.
    #[arg(long, env = "HEARTBEAT_CHECK_INTERVAL_SECS", default_value_t = DEFAULT_HEARTBEAT_CHECK_INTERVAL_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_check_interval_secs: u64,

    /// The `retry_after_seconds` of a claim answered with `wait`.
    #[arg(long, env = "CLAIM_RETRY_AFTER_SECS", default_value_t = DEFAULT_CLAIM_RETRY_AFTER_SECS)]
    pub claim_retry_after_secs: u64,

    /// Seconds a provider and instance type with pending tasks may go without any runner
    /// claiming or reporting (from the run's start, and while the orchestrator listened)
    /// before those tasks fail as `no_runner`, so that the run can finish.
    #[arg(long, env = "NO_RUNNER_TIMEOUT_SECS", default_value_t = DEFAULT_NO_RUNNER_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub no_runner_timeout_secs: u64,
}

/// Where results are stored and what presigned URLs point at. Credentials come from the AWS
/// default chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, a profile, or an instance role).
#[derive(Debug, Clone, Args)]
pub struct S3Settings {
    /// The bucket holding task uploads and run archives.
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: String,

    /// An S3-compatible endpoint such as s3-local (path-style addressing); unset means AWS S3.
    #[arg(long, env = "S3_ENDPOINT_URL")]
    pub s3_endpoint_url: Option<String>,

    /// The endpoint presigned URLs are signed for, reachable by runners and the master script;
    /// defaults to S3_ENDPOINT_URL.
    #[arg(long, env = "S3_PUBLIC_ENDPOINT_URL")]
    pub s3_public_endpoint_url: Option<String>,

    /// The region to sign for; unset means the AWS default chain's region, else us-east-1.
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
}

impl S3Settings {
    /// The endpoint presigned URLs are signed for, if not AWS itself.
    pub fn presign_endpoint(&self) -> Option<&str> {
        self.s3_public_endpoint_url
            .as_deref()
            .or(self.s3_endpoint_url.as_deref())
    }
}

/// A secret setting: never printed by `Debug`, and never empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            Err("must not be empty")
        } else {
            Ok(Self(s.to_owned()))
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn settings_definition_is_valid() {
        Settings::command().debug_assert();
    }

    #[test]
    fn secrets_stay_out_of_debug_and_help() {
        let settings = Settings::try_parse_from([
            "orchestrator",
            "--database-url",
            "postgres://user:db-password@db/rcb",
            "--api-key",
            "the-api-key",
            "--runner-api-key",
            "the-runner-key",
            "--operator-password",
            "the-operator-password",
            "--s3-bucket",
            "results",
        ])
        .unwrap();
        let debug = format!("{settings:?}");
        for secret in [
            "db-password",
            "the-api-key",
            "the-runner-key",
            "the-operator-password",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert_eq!(settings.api_key.expose(), "the-api-key");
        assert_eq!(settings.listen_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(settings.heartbeat_timeout_secs, 120);
        assert_eq!(settings.heartbeat_check_interval_secs, 60);
        assert_eq!(settings.s3.presign_endpoint(), None);

        // `hide_env_values` keeps the values of secret variables out of `--help`.
        let help = Settings::command().render_long_help().to_string();
        for name in [
            "DATABASE_URL",
            "API_KEY",
            "RUNNER_API_KEY",
            "OPERATOR_PASSWORD",
            "S3_PUBLIC_ENDPOINT_URL",
        ] {
            assert!(help.contains(name), "{name} missing from --help");
        }
        let hidden = [
            "database_url",
            "api_key",
            "runner_api_key",
            "operator_password",
        ];
        for arg in Settings::command().get_arguments() {
            let id = arg.get_id().as_str();
            assert_eq!(arg.is_hide_env_values_set(), hidden.contains(&id), "{id}");
        }
    }

    #[test]
    fn empty_api_key_is_refused() {
        let err = Settings::try_parse_from([
            "orchestrator",
            "--database-url",
            "postgres://db/rcb",
            "--api-key",
            "",
            "--runner-api-key",
            "r",
            "--s3-bucket",
            "results",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }

    #[test]
    fn public_endpoint_defaults_to_the_endpoint() {
        let mut s3 = S3Settings {
            s3_bucket: "b".into(),
            s3_endpoint_url: Some("http://s3:9000".into()),
            s3_public_endpoint_url: None,
            aws_region: None,
        };
        assert_eq!(s3.presign_endpoint(), Some("http://s3:9000"));
        s3.s3_public_endpoint_url = Some("http://127.0.0.1:9000".into());
        assert_eq!(s3.presign_endpoint(), Some("http://127.0.0.1:9000"));
    }
}
