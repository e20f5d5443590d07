//! The instance metadata lookup, against wiremock stand-ins of AWS IMDSv2 and Azure IMDS
//! (the real services exist only on cloud hosts).

use protocol::Provider;
use runner::metadata::{HostIdentity, host_name, lookup};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn aws_identity_comes_from_imdsv2_with_a_session_token() {
    let imds = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/latest/api/token"))
        .and(header("X-aws-ec2-metadata-token-ttl-seconds", "300"))
        .respond_with(ResponseTemplate::new(200).set_body_string("token-123"))
        .expect(1)
        .mount(&imds)
        .await;
    for (item, value) in [
        ("instance-id", "i-0abc123def456"),
        ("placement/region", "us-east-1"),
        ("placement/availability-zone", "us-east-1a"),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/latest/meta-data/{item}")))
            .and(header("X-aws-ec2-metadata-token", "token-123"))
            .respond_with(ResponseTemplate::new(200).set_body_string(value))
            .mount(&imds)
            .await;
    }

    let identity = lookup(Provider::Aws, &imds.uri()).await;
    assert_eq!(
        identity,
        HostIdentity {
            instance_id: "i-0abc123def456".into(),
            region: Some("us-east-1".into()),
            zone: Some("us-east-1a".into()),
        }
    );
}

#[tokio::test]
async fn azure_identity_comes_from_the_compute_document() {
    let imds = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/metadata/instance/compute"))
        .and(query_param("api-version", "2021-02-01"))
        .and(header("Metadata", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "name": "rcb-runner-standard-d2pls-v6-0",
            "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
            "location": "westeurope",
            "zone": "2",
        })))
        .mount(&imds)
        .await;

    let identity = lookup(Provider::Azure, &imds.uri()).await;
    assert_eq!(identity.instance_id, "rcb-runner-standard-d2pls-v6-0");
    assert_eq!(identity.region.as_deref(), Some("westeurope"));
    assert_eq!(identity.zone.as_deref(), Some("2"));
}

#[tokio::test]
async fn without_a_metadata_service_the_host_name_stands_in() {
    // A refused token (IMDSv2 disabled, or not a cloud host) and an Azure error alike.
    let imds = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&imds)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&imds)
        .await;
    for provider in [Provider::Aws, Provider::Azure, Provider::Local] {
        let identity = lookup(provider, &imds.uri()).await;
        assert_eq!(
            identity,
            HostIdentity {
                instance_id: host_name(),
                region: None,
                zone: None
            },
            "{provider}"
        );
    }

    // Nothing listening at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let identity = lookup(Provider::Aws, &format!("http://{address}")).await;
    assert_eq!(identity.instance_id, host_name());
}
