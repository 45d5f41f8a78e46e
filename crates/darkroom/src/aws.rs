//! The AWS backend: S3 and SQS clients from the standard AWS configuration (environment,
//! profiles, instance roles; `AWS_ENDPOINT_URL` for LocalStack), with timeouts that suit
//! long polling and retries with backoff for transient failures.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use darkroom_queue::SqsQueues;
use darkroom_store::S3Store;
use std::time::Duration;

pub struct AwsBackend {
    pub store: S3Store,
    pub queues: SqsQueues,
    pub region: Option<String>,
}

pub async fn connect(bucket: &str) -> anyhow::Result<AwsBackend> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(4).with_initial_backoff(Duration::from_millis(200)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                // Longer than the 20 s long poll, so a receive is never cut short.
                .operation_attempt_timeout(Duration::from_secs(40))
                .build(),
        )
        .load()
        .await;
    let region = config.region().map(|r| r.to_string());
    if region.is_none() {
        anyhow::bail!("--backend aws needs a region: set AWS_REGION (e.g. us-east-1) or a region in your AWS profile");
    }
    if config.credentials_provider().is_none() {
        anyhow::bail!("--backend aws found no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role");
    }
    let endpoint = config.endpoint_url().map(str::to_owned);
    // Path-style addressing when an endpoint is given: LocalStack and most S3-compatible
    // stores do not resolve bucket subdomains.
    let s3_config = aws_sdk_s3::config::Builder::from(&config).force_path_style(endpoint.is_some()).build();
    let store = S3Store::new(aws_sdk_s3::Client::from_conf(s3_config), bucket);
    let queues = SqsQueues::new(aws_sdk_sqs::Client::new(&config));
    tracing::info!(
        region = region.as_deref().unwrap_or(""),
        endpoint = endpoint.as_deref().unwrap_or("AWS"),
        bucket,
        "using the aws backend"
    );
    Ok(AwsBackend { store, queues, region })
}
