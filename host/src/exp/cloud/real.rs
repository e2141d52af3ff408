//! The real cloud ([`aws()`]): AWS through its SDK when built with the feature `fleet`, else
//! a cloud whose every call says how to build one.

use super::api::{Cloud, CloudError, Compute, Queues, TrialQueue};
use std::sync::Arc;

#[cfg(feature = "fleet")]
/// The real cloud.
struct Aws;

#[cfg(feature = "fleet")]
impl Cloud for Aws {
    fn compute(&self, region: Option<&str>) -> Result<Arc<dyn Compute>, CloudError> {
        Ok(Arc::new(super::ec2::Ec2::connect(region)?))
    }

    fn queue(&self, url: &str, region: Option<&str>) -> Result<Arc<dyn TrialQueue>, CloudError> {
        Ok(Arc::new(super::sqs::Queue::connect(url, region)?))
    }

    fn create_queues(
        &self,
        id: &str,
        name: &str,
        region: Option<&str>,
        visibility_s: u64,
        max_receives: u32,
    ) -> Result<Queues, CloudError> {
        super::sqs::create(id, name, region, visibility_s, max_receives)
    }
}

/// The real cloud: AWS (or any endpoint the SDK's `AWS_ENDPOINT_URL` names), when built
/// with the feature `fleet`.
pub fn aws() -> &'static dyn Cloud {
    #[cfg(feature = "fleet")]
    {
        &Aws
    }
    #[cfg(not(feature = "fleet"))]
    {
        &NotBuilt
    }
}

/// The cloud of a binary built without the feature `fleet`.
#[cfg(not(feature = "fleet"))]
struct NotBuilt;

#[cfg(not(feature = "fleet"))]
impl Cloud for NotBuilt {
    fn compute(&self, _: Option<&str>) -> Result<Arc<dyn Compute>, CloudError> {
        Err(CloudError::NotBuilt)
    }

    fn queue(&self, _: &str, _: Option<&str>) -> Result<Arc<dyn TrialQueue>, CloudError> {
        Err(CloudError::NotBuilt)
    }

    fn create_queues(&self, _: &str, _: &str, _: Option<&str>, _: u64, _: u32) -> Result<Queues, CloudError> {
        Err(CloudError::NotBuilt)
    }
}
