//! Starting the shared containers and removing them when the test process exits.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{LazyLock, Mutex, Once};

use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use local_stack::{catalog, check_docker};

/// The runtime the shared containers are started and owned on. It outlives every test.
pub(crate) static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("test-support")
        .build()
        .expect("failed to start the test-support runtime")
});

/// Containers of this process, kept alive until exit (then removed by their label).
static STARTED: Mutex<Vec<ContainerAsync<GenericImage>>> = Mutex::new(Vec::new());

/// The label that tells this test process's containers apart from others'.
pub fn session_label() -> (String, String) {
    (
        "rcb.test-session".to_owned(),
        std::process::id().to_string(),
    )
}

/// A container request for one of the project's images: labelled, ports published on
/// 127.0.0.1 only.
pub(crate) struct ContainerSpec {
    pub image: String,
    pub port: u16,
    pub ready_message: WaitFor,
    pub env: Vec<(&'static str, String)>,
    pub cmd: Vec<String>,
}

/// A started container: its id and the host port its service is published on.
pub(crate) struct Started {
    pub host_port: u16,
}

/// Starts a container on the shared runtime and registers it for removal at exit.
pub(crate) async fn start(spec: ContainerSpec) -> Started {
    if let Err(problem) = check_docker(&spec.image) {
        panic!("{problem}");
    }
    let description = spec.image.clone();
    RUNTIME
        .spawn(start_on_runtime(spec))
        .await
        .expect("the container start task panicked")
        .unwrap_or_else(|err| panic!("failed to start {description}: {err}"))
}

async fn start_on_runtime(
    spec: ContainerSpec,
) -> Result<Started, testcontainers::TestcontainersError> {
    register_exit_cleanup();
    let (name, tag) = spec
        .image
        .rsplit_once(':')
        .expect("image references carry a tag");
    let catalog = catalog();
    let (session_key, session_value) = session_label();
    let port = spec.port;
    let image = spec.image.clone();
    let mut request = GenericImage::new(name, tag)
        .with_exposed_port(ContainerPort::Tcp(port))
        .with_wait_for(spec.ready_message)
        .with_label(&catalog.label, &catalog.project)
        .with_label(session_key, session_value)
        .with_host_config_modifier(move |host_config| {
            // Publish on loopback only: nothing of the tests is reachable from outside.
            host_config.publish_all_ports = Some(false);
            host_config.port_bindings = Some(HashMap::from([(
                format!("{port}/tcp"),
                Some(vec![testcontainers::bollard::models::PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(String::new()),
                }]),
            )]));
        });
    for (key, value) in spec.env {
        request = request.with_env_var(key, value);
    }
    if !spec.cmd.is_empty() {
        request = request.with_cmd(spec.cmd);
    }
    let container = request.start().await?;
    let host_port = container.get_host_port_ipv4(port).await?;
    announce(&image, container.id(), host_port);
    STARTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(container);
    Ok(Started { host_port })
}

/// Says which local image a container came from, on the real stderr (libtest captures
/// only `eprintln!`), so a CI log shows what the tests ran against.
fn announce(image: &str, container_id: &str, host_port: u16) {
    use std::io::Write as _;
    let image_id = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "test-support: started {image} (local image {image_id}, built by `cargo xtask images`) as container {} on 127.0.0.1:{host_port}",
        &container_id[..12.min(container_id.len())]
    );
}

fn register_exit_cleanup() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `remove_started_containers` is an `extern "C" fn()` that neither
        // unwinds nor relies on thread-local state torn down before atexit handlers.
        #[allow(unsafe_code)]
        let status = unsafe { libc::atexit(remove_started_containers) };
        assert_eq!(status, 0, "failed to register the container cleanup");
    });
}

/// Runs at process exit (the test harness returns from main or calls exit): the shared
/// containers are never dropped, so they are removed here, synchronously. Removing by
/// the session label also catches containers whose start failed half-way.
extern "C" fn remove_started_containers() {
    let (key, value) = session_label();
    let Ok(output) = Command::new("docker")
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label={key}={value}"),
        ])
        .stderr(Stdio::null())
        .output()
    else {
        return;
    };
    let ids = String::from_utf8_lossy(&output.stdout);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return;
    }
    let _ = Command::new("docker")
        .args(["rm", "--force", "--volumes"])
        .args(&ids)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
