//! fish/prices.fish on captured answers of the price APIs (`fixtures/prices/`): the parsers
//! pick the on-demand Linux price and skip reservations, pre-installed software, Windows, Spot
//! and Low Priority; `prices_table`/`prices_record` write a file the site reads, with the
//! providers' CLIs replaced on PATH by stubs that answer from the captures (no network).
//!
//! Needs `fish` and `jq` (the master script's own tools); when either is missing the test fails
//! with the command that installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use site::prices::{PriceOrigin, Prices};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn capture(name: &str) -> PathBuf {
    repo().join("fixtures/prices").join(name)
}

/// Runs `script` in fish with fish/prices.fish sourced and `path` first on PATH.
fn fish(script: &str, path: Option<&Path>) -> Output {
    for tool in ["fish", "jq"] {
        let found = Command::new(tool).arg("--version").output().is_ok();
        assert!(found, "{tool} is missing: apt-get install -y fish jq");
    }
    let mut command = Command::new("fish");
    command
        .arg("-c")
        .arg(format!("source fish/prices.fish; {script}"))
        .current_dir(repo());
    if let Some(dir) = path {
        let old = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{old}", dir.display()));
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn the_parsers_read_the_on_demand_linux_price_of_captured_answers() {
    let aws = capture("aws-get-products-c7g.medium.json");
    let out = fish(&format!("prices_parse_aws < {}", aws.display()), None);
    // 0.0290 is a capacity reservation and 0.0583 has SQL Web installed: both are skipped.
    assert_eq!(stdout(&out), "0.0363\n");
    let empty = capture("aws-get-products-empty.json");
    let out = fish(&format!("prices_parse_aws < {}", empty.display()), None);
    assert_eq!(stdout(&out), "");
    let azure = capture("azure-retail-prices-Standard_D2pls_v6.json");
    let out = fish(&format!("prices_parse_azure < {}", azure.display()), None);
    // Spot and Low Priority (0.0128) and Windows (0.1008) are skipped.
    assert_eq!(stdout(&out), "0.064\n");
}

/// A stub for `aws` and `curl` that answers from the captures and logs its arguments.
fn write_stubs(dir: &Path) {
    let aws = format!(
        "#!/bin/sh\necho \"aws $*\" >> {log}\ncase \"$*\" in\n*Value=c7g.medium*) cat {c7g} ;;\n*) cat {empty} ;;\nesac\n",
        log = dir.join("calls.log").display(),
        c7g = capture("aws-get-products-c7g.medium.json").display(),
        empty = capture("aws-get-products-empty.json").display(),
    );
    let curl = format!(
        "#!/bin/sh\necho \"curl $*\" >> {log}\ncase \"$*\" in\n*Standard_D2pls_v6*) cat {d2pls} ;;\n*) exit 6 ;;\nesac\n",
        log = dir.join("calls.log").display(),
        d2pls = capture("azure-retail-prices-Standard_D2pls_v6.json").display(),
    );
    for (name, body) in [("aws", aws), ("curl", curl)] {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    }
}

#[test]
fn recorded_prices_are_a_file_the_site_reads() {
    let dir = tempfile::tempdir().unwrap();
    write_stubs(dir.path());
    let file = dir.path().join("prices.csv");
    let out = fish(
        &format!(
            "prices_record {} aws:us-east-1:c7g.medium aws:us-east-1:c8a.medium azure:eastus:Standard_D2pls_v6 azure:eastus:Standard_Nope",
            file.display()
        ),
        Some(dir.path()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no price for aws c8a.medium in us-east-1")
            && stderr.contains("no price for azure Standard_Nope in eastus"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], site::prices::FULL_HEADER);
    assert!(lines[1].starts_with("aws,c7g.medium,us-east-1,0.0363,USD,AWS Price List API,"));
    assert!(
        lines[2].starts_with("azure,Standard_D2pls_v6,eastus,0.064,USD,Azure Retail Prices API,")
    );
    let prices = Prices::parse(&text, PriceOrigin::Recorded).unwrap();
    let c7g = prices.lookup("aws", "c7g.medium", &[]).unwrap();
    assert_eq!(
        (c7g.usd_per_hour, c7g.origin),
        (0.0363, PriceOrigin::Recorded)
    );
    // The date is today's in UTC, unless the day turned while the test ran.
    let as_of = c7g.as_of.unwrap();
    assert!(as_of == today.to_string() || as_of == today.previous_day().unwrap().to_string());
    let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
    assert!(calls.contains("aws pricing get-products --region us-east-1 --service-code AmazonEC2"));
    assert!(calls.contains("Field=capacitystatus,Value=Used"));
    assert!(
        calls.contains("armSkuName eq 'Standard_D2pls_v6'"),
        "{calls}"
    );

    // Installed beside the results once they are unpacked, never over an existing file.
    let results = dir.path().join("results/42");
    std::fs::create_dir_all(&results).unwrap();
    let out = fish(
        &format!(
            "prices_install {} {}; prices_install {} {}",
            file.display(),
            results.display(),
            dir.path().join("calls.log").display(),
            results.display()
        ),
        None,
    );
    stdout(&out);
    assert_eq!(
        std::fs::read_to_string(results.join("prices.csv")).unwrap(),
        text
    );

    // Nothing readable: no file, and still success.
    let none = dir.path().join("none.csv");
    let out = fish(
        &format!("prices_record {} aws:us-east-1:c8a.medium", none.display()),
        Some(dir.path()),
    );
    assert!(out.status.success());
    assert!(!none.exists());
}
