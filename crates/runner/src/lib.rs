//! The task runner: claims benchmark tasks from the orchestrator and runs ruby-bench in
//! Docker containers, one slot per CPU, each pinned to its own CPU.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub mod context;
pub mod cpus;
pub mod docker;
pub mod metadata;
pub mod orchestrator;
pub mod ruby_bench;
pub mod settings;
pub mod slot;
pub mod task;

pub use settings::{RunnerSettings, SlotMode};
pub use slot::SlotExit;

/// Exit status when every slot got `done`: the host's wrapper powers off.
pub const EXIT_DONE: u8 = 0;
/// Exit status for an error of the runner itself.
pub const EXIT_ERROR: u8 = 1;
/// Exit status when a slot failed a task in debug mode: the wrapper keeps the host up.
pub const EXIT_HOLD_FOR_DEBUG: u8 = 3;
/// Exit status when a slot could not prepare a task (image pull, ruby-bench fetch, Docker)
/// after every retry and gave it back: the host is broken, and the wrapper ends it.
pub const EXIT_NOT_PREPARED: u8 = 4;
/// Exit status after SIGTERM or SIGINT (128 + 15, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 143;

/// Runs every slot until the orchestrator has no more tasks; returns the exit status.
pub async fn run(settings: RunnerSettings, shutdown: CancellationToken) -> anyhow::Result<u8> {
    let cpus = match &settings.cpuset {
        Some(list) => cpus::parse_cpu_list(list).context("invalid CPUSET")?,
        None => cpus::allowed_cpus()?,
    };
    let slot_cpus = cpus::slot_cpus(
        &cpus,
        settings.slot_mode,
        settings.slots,
        cpus::smt_siblings,
    )?;
    let docker = docker::DockerClient::connect().await?;
    let identity = metadata::lookup(settings.provider, &settings.metadata_url).await;
    let base_id = settings
        .runner_id
        .clone()
        .unwrap_or_else(|| identity.instance_id.clone());
    tracing::info!(
        "runner {base_id}: {} {} with {} slot(s) on CPUs {slot_cpus:?}, orchestrator {}",
        settings.provider,
        settings.instance_type,
        slot_cpus.len(),
        settings.orchestrator_url
    );
    let runner_image = match &settings.runner_image {
        Some(image) => match docker.image_identity(image).await {
            Ok(found) => Some(found),
            Err(err) => {
                // The numbers are still good; only their trace back to the build is lost.
                tracing::warn!("{err}; meta.json names the runner image without its id and labels");
                Some(protocol::RunnerImage::from_labels(
                    image,
                    None,
                    &Default::default(),
                ))
            }
        },
        None => None,
    };
    let ctx = Arc::new(context::RunnerContext::new(
        settings,
        docker.clone(),
        identity,
        runner_image,
        shutdown,
    ));

    let mut slots = tokio::task::JoinSet::new();
    for (index, cpu) in slot_cpus.into_iter().enumerate() {
        let slot = slot::Slot::new(ctx.clone(), format!("{base_id}-{}", index + 1), cpu);
        slots.spawn(slot.run());
    }
    let mut exits = Vec::new();
    let mut errors = Vec::new();
    while let Some(joined) = slots.join_next().await {
        match joined {
            Ok(Ok(exit)) => exits.push(exit),
            Ok(Err(err)) => errors.push(format!("{err:#}")),
            Err(err) => errors.push(format!("a slot panicked: {err}")),
        }
    }
    // Whatever a slot could not clean up (a panic mid-task) goes now.
    docker.remove_all().await;
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    Ok(if exits.contains(&SlotExit::Interrupted) {
        EXIT_INTERRUPTED
    } else if exits.contains(&SlotExit::HoldForDebug) {
        EXIT_HOLD_FOR_DEBUG
    } else if exits.contains(&SlotExit::NotPrepared) {
        tracing::error!(
            "a slot could not prepare its task on this host and gave it back; exiting {EXIT_NOT_PREPARED}"
        );
        EXIT_NOT_PREPARED
    } else {
        EXIT_DONE
    })
}
