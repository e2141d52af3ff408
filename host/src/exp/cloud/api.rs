//! The cloud's interface: the traits [`Compute`], [`TrialQueue`] and [`Cloud`], what a call
//! can fail with ([`CloudError`]), and [`retry`].

use crate::format::experiment::Fleet;
pub use crate::format::experiment::{FleetApi, Queues};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The command that builds a `paddock` with the fleet's clients.
pub const FLEET_BUILD: &str = "cargo build --locked --release -p paddock --features fleet";

/// The tag on everything a fleet makes (its value: the experiment id).
pub const TAG: &str = "paddock:experiment";

/// A failed cloud call, by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// This binary has no EC2/SQS clients.
    #[error(
        "this paddock was built without the fleet's EC2 and SQS clients; build it with `{FLEET_BUILD}` (scripts/test.sh and the worker images do)"
    )]
    NotBuilt,
    /// The service asked us to slow down: retried with backoff.
    #[error("{service} {call} was throttled: {message}")]
    Throttled {
        /// `EC2` or `SQS`.
        service: &'static str,
        /// The API call.
        call: String,
        /// What the service said.
        message: String,
    },
    /// No answer (connection refused, timed out, the response lost): retried; for a create,
    /// the call may have taken effect, which the client token makes safe to repeat.
    #[error("{service} {call} got no answer: {message}")]
    Unreachable {
        /// `EC2` or `SQS`.
        service: &'static str,
        /// The API call.
        call: String,
        /// Why.
        message: String,
    },
    /// The credentials were refused (a 403, an expired token): fatal at once.
    #[error("{service} {call}: the credentials were refused ({code}: {message}); check AWS_PROFILE / AWS_ACCESS_KEY_ID{hint}", hint = key_hint())]
    Denied {
        /// `EC2` or `SQS`.
        service: &'static str,
        /// The API call.
        call: String,
        /// The service's error code.
        code: String,
        /// What the service said.
        message: String,
    },
    /// The resource is busy with an earlier call (SQS's one purge a minute): try later.
    #[error("{service} {call}: busy ({message})")]
    Busy {
        /// `EC2` or `SQS`.
        service: &'static str,
        /// The API call.
        call: String,
        /// What the service said.
        message: String,
    },
    /// The service answered with an error: not retried.
    #[error("{service} {call} failed: {code}: {message}")]
    Service {
        /// `EC2` or `SQS`.
        service: &'static str,
        /// The API call.
        call: String,
        /// The service's error code.
        code: String,
        /// What the service said.
        message: String,
    },
    /// What the experiment file asks for cannot be done as it stands.
    #[error("{0}")]
    Setup(String),
}

/// The access key id in use, when the environment names one (never the secret).
fn key_hint() -> String {
    match (std::env::var("AWS_PROFILE"), std::env::var("AWS_ACCESS_KEY_ID")) {
        (Ok(p), Ok(k)) => format!(" (profile `{p}`, key id {k})"),
        (Ok(p), Err(_)) => format!(" (profile `{p}`)"),
        (Err(_), Ok(k)) => format!(" (key id {k})"),
        _ => String::new(),
    }
}

impl CloudError {
    /// Worth trying again after a pause: throttled, or no answer.
    pub fn is_transient(&self) -> bool {
        matches!(self, CloudError::Throttled { .. } | CloudError::Unreachable { .. })
    }
}

/// How [`retry`] waits between attempts: `first`, doubling up to `most`, `tries` attempts
/// in all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first pause.
    pub first: Duration,
    /// The longest pause.
    pub most: Duration,
    /// Attempts in all (the first included).
    pub tries: u32,
}

impl Default for Backoff {
    /// 0.5 s, 1 s, 2 s, 4 s, 8 s, 8 s: about 24 s of trying (on top of the SDK's own
    /// retries of each attempt).
    fn default() -> Self {
        Backoff { first: Duration::from_millis(500), most: Duration::from_secs(8), tries: 7 }
    }
}

/// Calls `call` until it succeeds, fails for a reason that is not transient, or `backoff`
/// runs out of attempts.
pub fn retry<T>(backoff: Backoff, mut call: impl FnMut() -> Result<T, CloudError>) -> Result<T, CloudError> {
    let mut wait = backoff.first;
    let mut attempt = 1;
    loop {
        match call() {
            Err(e) if e.is_transient() && attempt < backoff.tries => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(backoff.most);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A tagged instance as EC2 describes it now.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// Its type.
    pub instance_type: String,
    /// Its zone.
    pub zone: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub state: String,
    /// Launch time, Unix seconds.
    pub launched: f64,
}

impl Instance {
    /// Still billing (or about to): not shutting down or terminated.
    pub fn is_live(&self) -> bool {
        matches!(self.state.as_str(), "pending" | "running" | "stopping" | "stopped")
    }
}

/// One point of the spot price history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PricePoint {
    /// Instance type.
    pub instance_type: String,
    /// Zone.
    pub zone: String,
    /// From when the price holds, Unix seconds.
    pub from: f64,
    /// Dollars per instance-hour.
    pub price: f64,
}

/// A fleet carrying an experiment's tag, as EC2 describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaggedFleet {
    /// The API that made it.
    pub api: FleetApi,
    /// `fleet-…` or `sfr-…`.
    pub id: String,
    /// Not deleted or cancelled.
    pub active: bool,
}

/// EC2, as a fleet uses it.
pub trait Compute: Send + Sync {
    /// The region the client talks to.
    fn region(&self) -> &str;
    /// Creates experiment `id`'s launch template from the base one the experiment file
    /// names; `token` makes a repeated create return the same template.
    fn create_template(&self, id: &str, fleet: &Fleet, user_data: &str, token: &str) -> Result<String, CloudError>;
    /// Requests `capacity` Spot instances from `template`; `token` makes a repeated
    /// request return the fleet the first one made.
    fn request(&self, id: &str, fleet: &Fleet, template: &str, capacity: u32, token: &str) -> Result<String, CloudError>;
    /// Every fleet (EC2 Fleet and Spot Fleet request) tagged with experiment `id`.
    fn tagged_fleets(&self, id: &str) -> Result<Vec<TaggedFleet>, CloudError>;
    /// Deletes a fleet and terminates its instances (one gone already is fine).
    fn delete_fleet(&self, api: FleetApi, fleet_id: &str) -> Result<(), CloudError>;
    /// Every instance tagged with experiment `id` that EC2 still describes.
    fn instances(&self, id: &str) -> Result<Vec<Instance>, CloudError>;
    /// Terminates `ids`.
    fn terminate(&self, ids: &[String]) -> Result<(), CloudError>;
    /// Deletes the launch template named `name` (none is fine).
    fn delete_template_named(&self, name: &str) -> Result<(), CloudError>;
    /// Deletes launch template `id` (gone already is fine).
    fn delete_template(&self, id: &str) -> Result<(), CloudError>;
    /// The spot price history of `instance_type` in `zone` from `from` to `to` (Unix s).
    fn spot_prices(&self, instance_type: &str, zone: &str, from: f64, to: f64) -> Result<Vec<PricePoint>, CloudError>;
}

/// One received trial id.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The trial.
    pub trial: String,
    /// Times the queue has handed the message out (this one included).
    pub receives: u32,
    /// The receipt handle that settles it.
    pub receipt: String,
}

/// One SQS queue of trial ids.
pub trait TrialQueue: Send + Sync + std::fmt::Debug {
    /// Its URL.
    fn url(&self) -> &str;
    /// Sends one message per trial id.
    fn send(&self, trials: &[String]) -> Result<(), CloudError>;
    /// Waits up to `wait_s` for one message, hidden from others for `visibility_s`.
    fn receive(&self, wait_s: u64, visibility_s: u64) -> Result<Option<Message>, CloudError>;
    /// Hides `m` for `seconds` more from now (0: visible again at once).
    fn hide(&self, m: &Message, seconds: u64) -> Result<(), CloudError>;
    /// Deletes `m`.
    fn delete(&self, m: &Message) -> Result<(), CloudError>;
    /// Messages waiting and in flight (approximate).
    fn depth(&self) -> Result<(u64, u64), CloudError>;
    /// Deletes every message ([`CloudError::Busy`] within a minute of the last purge).
    fn purge(&self) -> Result<(), CloudError>;
    /// Deletes the queue (gone already is fine).
    fn delete_queue(&self) -> Result<(), CloudError>;
}

/// Makes the clients of one cloud.
pub trait Cloud: Send + Sync {
    /// An EC2 client for `region` (else the SDK's chain, else `us-east-1`).
    fn compute(&self, region: Option<&str>) -> Result<Arc<dyn Compute>, CloudError>;
    /// A client for the queue at `url`.
    fn queue(&self, url: &str, region: Option<&str>) -> Result<Arc<dyn TrialQueue>, CloudError>;
    /// Creates (or finds: creating is idempotent) the queue named `name` and its
    /// dead-letter queue `name-dlq` (after `max_receives`), tagged with experiment `id`.
    fn create_queues(&self, id: &str, name: &str, region: Option<&str>, visibility_s: u64, max_receives: u32)
    -> Result<Queues, CloudError>;
    /// How callers pace their retries.
    fn backoff(&self) -> Backoff {
        Backoff::default()
    }
}

/// Whether this binary can reach EC2 and SQS; the error says how to build one that can.
pub fn require_fleet() -> Result<(), CloudError> {
    if cfg!(feature = "fleet") { Ok(()) } else { Err(CloudError::NotBuilt) }
}

/// The client token of generation `generation` of experiment `id`'s fleet (EC2 allows 64
/// ASCII characters): the same launch retried, or raced, makes one fleet.
pub fn client_token(id: &str, generation: u64, what: &str) -> String {
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes()));
    format!("paddock-{}-g{generation}-{what}", &hash[..24])
}

/// The launch template name of experiment `id` (EC2 allows 128 characters).
pub fn template_name(id: &str) -> String {
    format!("paddock-{id}").chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_stops_at_success_at_a_lasting_error_and_after_its_tries() {
        let quick = Backoff { first: Duration::from_millis(1), most: Duration::from_millis(2), tries: 4 };
        let throttled = || CloudError::Throttled { service: "EC2", call: "X".into(), message: "slow down".into() };
        let mut calls = 0;
        let r = retry(quick, || {
            calls += 1;
            if calls < 3 { Err(throttled()) } else { Ok(calls) }
        });
        assert_eq!(r.ok(), Some(3));
        let mut calls = 0;
        let r: Result<(), _> = retry(quick, || {
            calls += 1;
            Err(CloudError::Service { service: "EC2", call: "X".into(), code: "InvalidParameter".into(), message: "no".into() })
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "an answer that is not transient is not retried");
        let mut calls = 0;
        let r: Result<(), _> = retry(quick, || {
            calls += 1;
            Err(throttled())
        });
        assert!(matches!(r, Err(CloudError::Throttled { .. })));
        assert_eq!(calls, 4);
    }

    #[test]
    fn client_tokens_fit_ec2_and_differ_by_experiment_generation_and_call() {
        let t = client_token(&"x".repeat(200), 12345, "fleet");
        assert!(t.len() <= 64 && t.is_ascii(), "{t}");
        assert_ne!(client_token("a", 1, "fleet"), client_token("a", 2, "fleet"));
        assert_ne!(client_token("a", 1, "fleet"), client_token("b", 1, "fleet"));
        assert_ne!(client_token("a", 1, "fleet"), client_token("a", 1, "template"));
        assert_eq!(client_token("a", 1, "fleet"), client_token("a", 1, "fleet"));
    }

    #[cfg(not(feature = "fleet"))]
    #[test]
    fn without_the_feature_every_call_names_the_build_command() {
        let e = aws().compute(None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(FLEET_BUILD), "{e}");
    }
}
