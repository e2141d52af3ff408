//! The cloud an experiment's fleet talks to, behind traits: [`Compute`] (EC2: launch
//! templates, EC2 Fleet / Spot Fleet requests, tagged instances, spot prices) and
//! [`TrialQueue`] (SQS: one queue of trial ids), both made by a [`Cloud`].
//!
//! [`aws()`] is the real one (`aws-sdk-ec2`, `aws-sdk-sqs`), built with the cargo feature
//! `fleet`; without it every call answers [`CloudError::NotBuilt`] with the command that
//! builds it, so the quick start does not wait for EC2's SDK. The fleet and queue logic
//! ([`super::fleet`], [`super::queue`], the worker) only see the traits, so their races
//! are unit-tested over `double::FakeCloud`, an in-memory EC2 and SQS that injects the
//! faults real clouds produce (throttling, a response lost after the call took effect, a
//! describe that lags, a call that fails once).
//!
//! Every call a caller may repeat goes through [`retry`]: throttling and lost answers are
//! retried with exponential backoff; EC2 creates carry a client token (derived from the
//! experiment and the fleet's generation), so a retried or raced create returns what the
//! first one made rather than making a second.

mod api;
#[cfg(feature = "fleet")]
mod aws;
#[cfg(test)]
pub mod double;
#[cfg(feature = "fleet")]
mod ec2;
mod real;
#[cfg(feature = "fleet")]
mod sqs;

pub use api::*;
pub use real::aws;
