//! Batch experiments: an experiment file ([`spec`]) expands into trials, each a training
//! run of the base config with its overrides; each trial's state object ([`trial`]) is
//! owned by conditional writes; workers ([`worker`]) claim, train and commit trials; the
//! early-stop rule is ASHA over the store ([`asha`]); spot interruption notices come from
//! the instance metadata service ([`notice`]). Trial ids travel over SQS ([`queue`]) on
//! a fleet; Spot capacity comes from EC2 ([`fleet`]); what it costs is integrated from
//! the spot price history ([`cost`], [`report`]); [`cloud`] puts EC2 and SQS behind
//! traits (the real clients with the cargo feature `fleet`, an in-memory double with
//! faults in the unit tests); [`restore`] puts an experiment back into a store that lost it,
//! from its workers' working copies; [`search`] is a study's sampler and pruners (`[search]`).

pub mod asha;
pub mod best;
pub mod cloud;
pub mod controller;
pub mod cost;
pub mod fleet;
pub mod local;
pub mod notice;
pub mod queue;
pub mod report;
pub mod restore;
pub mod search;
pub mod spec;
pub mod submit;
pub mod trial;
pub mod worker;
