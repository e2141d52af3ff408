//! Batch experiments: an experiment file ([`spec`]) expands into trials, each a training
//! run of the base config with its overrides; each trial's state object ([`trial`]) is
//! owned by conditional writes; workers ([`worker`]) claim, train and commit trials; the
//! early-stop rule is ASHA over the store ([`asha`]); spot interruption notices come from
//! the instance metadata service ([`notice`]).

pub mod asha;
pub mod notice;
pub mod spec;
pub mod trial;
pub mod worker;
