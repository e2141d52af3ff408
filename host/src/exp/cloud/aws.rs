//! The AWS SDK's shared configuration for the fleet's services (SQS, EC2): credentials,
//! region and endpoint follow the SDK's conventions (environment, profile, instance role;
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`/`_EC2`), a region named by the
//! experiment file on top, `us-east-1` when nothing names one. Each client owns a
//! current-thread runtime, as the S3 store does: callers are synchronous. SDK errors are
//! sorted here into [`CloudError`]s by what a caller does about them.

use super::api::CloudError;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use std::time::Duration;

/// A runtime and the shared config for `region` (else the SDK's chain, else `us-east-1`).
pub(super) fn connect(region: Option<&str>) -> Result<(tokio::runtime::Runtime, aws_config::SdkConfig), CloudError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CloudError::Setup(format!("failed to start the AWS client's runtime: {e}")))?;
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

/// Error codes that mean "slow down".
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "AWS.SimpleQueueService.RequestThrottled",
    "SlowDown",
];

/// Error codes that mean the credentials were refused.
const DENIED: &[&str] = &[
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "InvalidSecurity",
];

/// An SDK error as a [`CloudError`]: the service's code and message when it answered
/// (sorted into throttled, denied, busy or plain), else no answer (the chain summarised).
pub(super) fn classify<E, R>(service: &'static str, call: &str, e: &SdkError<E, R>) -> CloudError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let call = call.to_string();
    match e {
        SdkError::ServiceError(_) => {
            let code = e.code().unwrap_or("unknown").to_string();
            let message = e.message().unwrap_or("").to_string();
            if THROTTLED.contains(&code.as_str()) {
                CloudError::Throttled { service, call, message: format!("{code}: {message}") }
            } else if DENIED.contains(&code.as_str()) {
                CloudError::Denied { service, call, code, message }
            } else if code.ends_with("PurgeQueueInProgress") {
                CloudError::Busy { service, call, message: format!("{code}: {message}") }
            } else {
                CloudError::Service { service, call, code, message }
            }
        }
        SdkError::ConstructionFailure(_) => {
            CloudError::Setup(format!("{service} {call}: the request could not be made: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))
        }
        _ => CloudError::Unreachable { service, call, message: summary(e.to_string(), std::error::Error::source(e)) },
    }
}

/// The innermost cause of an error that got no answer: "connection refused", "timed out".
fn summary(top: String, source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut last = top;
    let mut cause = source;
    while let Some(c) = cause {
        last = c.to_string();
        cause = c.source();
    }
    last
}
