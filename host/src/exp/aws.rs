//! The AWS SDK's shared configuration for the experiment services (SQS, EC2): credentials,
//! region and endpoint follow the SDK's conventions (environment, profile, instance role;
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`/`_EC2`), a region named by the
//! experiment file on top, `us-east-1` when nothing names one. Each client owns a
//! current-thread runtime, as the S3 store does: callers are synchronous.

use anyhow::Context;
use std::time::Duration;

/// A runtime and the shared config for `region` (else the SDK's chain, else `us-east-1`).
pub fn connect(region: Option<&str>) -> anyhow::Result<(tokio::runtime::Runtime, aws_config::SdkConfig)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start the AWS client's runtime")?;
    let shared = rt.block_on(async {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    // Long polls wait 20 s; a request that takes far longer is lost.
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_string()));
        }
        loader.load().await
    });
    let shared =
        if shared.region().is_none() { shared.into_builder().region(aws_config::Region::new("us-east-1")).build() } else { shared };
    Ok((rt, shared))
}

/// An SDK error in words: the service's code and message when it answered, else the
/// whole chain (a connection refused, a timeout).
pub fn describe<E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static, R: std::fmt::Debug>(
    e: &aws_sdk_sqs::error::SdkError<E, R>,
) -> String {
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => format!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)),
    }
}
