//! Project automation, run as `cargo xtask <command>`.

use clap::{Parser, Subcommand};
use xshell::Shell;

mod bench;
mod deploy;
mod deploy_images;
mod e2e;
mod images;
mod local;
mod nix;
mod rehearse;
mod setup;
mod site;
mod suite;
mod sweep;
mod terraform;
mod test;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build images and run the project's tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build every image the tests and the local provider use, without a registry.
    Images(images::Images),
    /// Set up what this machine lacks, then run every check and test.
    Test(test::Test),
    /// Build the results website from results/ into public/ (`site bench` = `bench site`).
    Site(site::Site),
    /// Start or remove the local stack (Postgres, s3-local, orchestrator, runners).
    Local(local::Local),
    /// A whole benchmark run on the local provider: stack, master script, results, website.
    E2eLocal(e2e::E2eLocal),
    /// Benchmarks: `bench claims`, `bench archive`, `bench site` (release profile).
    Bench(bench::Bench),
    /// Run the master script (fish/master.fish) on a run config; the images it needs are built.
    Deploy(deploy::Deploy),
    /// Build the images a cloud run deploys: a runner per architecture, release binaries.
    DeployImages(deploy_images::DeployImages),
    /// Rehearse a whole cloud run here: the master's cloud path, aws CLI against moto, hosts booted.
    Rehearse(rehearse::Rehearse),
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The message and its causes only: `main` returning the error would print its
            // backtrace too whenever RUST_BACKTRACE is set in the environment.
            eprintln!("error: {err}");
            let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
            if !causes.is_empty() {
                eprintln!("\nCaused by:");
                for cause in causes {
                    eprintln!("    {cause}");
                }
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match cli.command {
        Command::Images(cmd) => cmd.run(&sh),
        Command::Test(cmd) => cmd.run(&sh),
        Command::Site(cmd) => cmd.run(&sh),
        Command::Local(cmd) => cmd.run(&sh),
        Command::E2eLocal(cmd) => cmd.run(&sh),
        Command::Bench(cmd) => cmd.run(&sh),
        Command::Deploy(cmd) => cmd.run(&sh),
        Command::DeployImages(cmd) => cmd.run(&sh),
        Command::Rehearse(cmd) => cmd.run(&sh),
    }
}

/// The workspace root, whatever directory `cargo xtask` was started from. Read at run
/// time (`cargo run` sets CARGO_MANIFEST_DIR): clones sharing one target directory share
/// one xtask binary, and a path baked in at compile time could name another clone.
fn project_root() -> std::path::PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
