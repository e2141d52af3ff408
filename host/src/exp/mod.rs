//! Batch experiments: an experiment file ([`spec`]) expands into trials, each a training
//! run of the base config with its overrides; each trial's state object ([`trial`]) is
//! owned by conditional writes; workers ([`worker`]) claim, train and commit trials; the
//! early-stop rule is ASHA over the store ([`asha`]); spot interruption notices come from
//! the instance metadata service ([`notice`]). Trial ids travel over SQS ([`queue`]) on
//! a fleet; Spot capacity comes from EC2 ([`fleet`]); what it costs is integrated from
//! the spot price history ([`cost`], [`report`]); [`aws`] holds the SDK's shared setup.

pub mod asha;
pub mod aws;
pub mod cost;
pub mod ec2;
pub mod fleet;
pub mod notice;
pub mod queue;
pub mod report;
pub mod spec;
pub mod trial;
pub mod worker;
