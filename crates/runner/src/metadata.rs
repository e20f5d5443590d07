//! What the cloud's instance metadata service says about this host: its instance id,
//! region and zone. Off the clouds (or when the service does not answer quickly), the
//! host name stands in for the id.

use std::time::Duration;

use protocol::Provider;
use serde::Deserialize;

/// How long to wait for the metadata service: it answers in milliseconds on a cloud host
/// and not at all elsewhere.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Identity and placement of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    /// Cloud instance id, or the host name.
    pub instance_id: String,
    /// Region, where known.
    pub region: Option<String>,
    /// Availability zone, where known.
    pub zone: Option<String>,
}

/// Asks the provider's metadata service at `base_url`; falls back to the host name.
pub async fn lookup(provider: Provider, base_url: &str) -> HostIdentity {
    let client = reqwest::Client::builder()
        .timeout(METADATA_TIMEOUT)
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds");
    let base_url = base_url.trim_end_matches('/');
    let found = match provider {
        Provider::Aws => aws(&client, base_url).await,
        Provider::Azure => azure(&client, base_url).await,
        Provider::Local => None,
    };
    found.unwrap_or_else(|| HostIdentity {
        instance_id: host_name(),
        region: None,
        zone: None,
    })
}

/// AWS IMDSv2: a session token first, then the instance id and placement.
async fn aws(client: &reqwest::Client, base: &str) -> Option<HostIdentity> {
    let token = client
        .put(format!("{base}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "300")
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .await
        .ok()?;
    let get = |path: &'static str| {
        let request = client
            .get(format!("{base}/latest/meta-data/{path}"))
            .header("X-aws-ec2-metadata-token", &token);
        async move {
            request
                .send()
                .await
                .ok()?
                .error_for_status()
                .ok()?
                .text()
                .await
                .ok()
        }
    };
    let instance_id = get("instance-id").await?;
    Some(HostIdentity {
        instance_id,
        region: get("placement/region").await,
        zone: get("placement/availability-zone").await,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureCompute {
    name: String,
    vm_id: String,
    location: Option<String>,
    zone: Option<String>,
}

/// Azure IMDS: the compute section of the instance document.
async fn azure(client: &reqwest::Client, base: &str) -> Option<HostIdentity> {
    let compute: AzureCompute = client
        .get(format!(
            "{base}/metadata/instance/compute?api-version=2021-02-01&format=json"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .json()
        .await
        .ok()?;
    // The VM name is what the portal and Terraform show; the id keeps it unique.
    let instance_id = if compute.name.is_empty() {
        compute.vm_id
    } else {
        compute.name
    };
    Some(HostIdentity {
        instance_id,
        region: compute.location.filter(|location| !location.is_empty()),
        zone: compute.zone.filter(|zone| !zone.is_empty()),
    })
}

/// This host's name (the container's, when the runner runs in one).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "runner".to_owned())
}
