//! Spot interruption notices: a thread polls the instance metadata service every 5 s
//! (IMDSv2, through aws-config's client: a session token, then
//! `meta-data/spot/instance-action` and `meta-data/events/recommendations/rebalance`).
//!
//! An instance-action notice (the instance is reclaimed in two minutes) asks the training
//! loop to stop at its next update with a checkpoint ([`crate::run::interrupt::request`]):
//! the worker uploads it and puts the trial back as preempted. A rebalance recommendation
//! (the instance is at elevated risk, perhaps hours ahead, perhaps never) only asks for an
//! early checkpoint ([`take_checkpoint_request`]), which goes to the store at once, and
//! training goes on; the trial is given back only on the instance-action notice, or when the
//! optional deadline after the recommendation passes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The metadata paths that announce a reclaim (404 until they do).
pub const NOTICE_PATHS: [&str; 2] = ["/latest/meta-data/spot/instance-action", "/latest/meta-data/events/recommendations/rebalance"];

/// Set by a rebalance recommendation: the training loop takes a checkpoint at its next update.
static CHECKPOINT_ASKED: AtomicBool = AtomicBool::new(false);

/// Whether a rebalance recommendation asked for an early checkpoint since the last call
/// (the request is taken: the next call says `false`).
pub fn take_checkpoint_request() -> bool {
    CHECKPOINT_ASKED.swap(false, Ordering::AcqRel)
}

/// A running poller; it stops when dropped.
pub struct SpotWatch {
    stop: Arc<AtomicBool>,
    /// The notice, once one came (the path and its body).
    pub noticed: Arc<Mutex<Option<String>>>,
    /// The rebalance recommendation, once one came.
    rebalanced: Arc<Mutex<Option<String>>>,
}

impl SpotWatch {
    /// Polls `endpoint` (the instance metadata service; `None`: the SDK's default,
    /// `http://169.254.169.254`) every `every`. `rebalance_deadline`: give the trial back this
    /// long after a rebalance recommendation even without an instance-action notice (`None`:
    /// only on the notice).
    pub fn start(endpoint: Option<&str>, every: Duration, rebalance_deadline: Option<Duration>) -> anyhow::Result<SpotWatch> {
        let client = imds_client(endpoint)?;
        let stop = Arc::new(AtomicBool::new(false));
        let noticed = Arc::new(Mutex::new(None));
        let rebalanced = Arc::new(Mutex::new(None));
        let (st, seen, rb) = (stop.clone(), noticed.clone(), rebalanced.clone());
        std::thread::Builder::new().name("paddock-spot-watch".into()).spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            let mut recommended: Option<std::time::Instant> = None;
            while !st.load(Ordering::Acquire) {
                let [action, rebalance] = NOTICE_PATHS;
                if let Ok(body) = rt.block_on(client.get(action)) {
                    if let Ok(mut n) = seen.lock() {
                        *n = Some(format!("{action}: {}", body.as_ref()));
                    }
                    crate::run::interrupt::request();
                    return;
                }
                if recommended.is_none()
                    && let Ok(body) = rt.block_on(client.get(rebalance))
                {
                    recommended = Some(std::time::Instant::now());
                    if let Ok(mut r) = rb.lock() {
                        *r = Some(format!("{rebalance}: {}", body.as_ref()));
                    }
                    CHECKPOINT_ASKED.store(true, Ordering::Release);
                }
                if let (Some(at), Some(deadline)) = (recommended, rebalance_deadline)
                    && at.elapsed() >= deadline
                {
                    if let Ok(mut n) = seen.lock() {
                        *n = Some(format!("a rebalance recommendation {:.0} s ago (the deadline)", at.elapsed().as_secs_f64()));
                    }
                    crate::run::interrupt::request();
                    return;
                }
                let end = std::time::Instant::now() + every;
                while std::time::Instant::now() < end && !st.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        })?;
        Ok(SpotWatch { stop, noticed, rebalanced })
    }

    /// The rebalance recommendation, if one came.
    pub fn rebalance(&self) -> Option<String> {
        self.rebalanced.lock().ok().and_then(|n| n.clone())
    }

    /// The notice, if one came.
    pub fn notice(&self) -> Option<String> {
        self.noticed.lock().ok().and_then(|n| n.clone())
    }
}

/// The metadata service's client (`None`: EC2's own address): one attempt, short timeouts.
fn imds_client(endpoint: Option<&str>) -> anyhow::Result<aws_config::imds::Client> {
    let mut builder =
        aws_config::imds::Client::builder().max_attempts(1).connect_timeout(Duration::from_secs(1)).read_timeout(Duration::from_secs(2));
    if let Some(e) = endpoint {
        builder = builder.endpoint(e).map_err(|e| anyhow::anyhow!("instance metadata endpoint `{e}`"))?;
    }
    Ok(builder.build())
}

/// This instance's id (`meta-data/instance-id`), when the metadata service answers.
pub fn instance_id(endpoint: Option<&str>) -> Option<String> {
    let client = imds_client(endpoint).ok()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(client.get("/latest/meta-data/instance-id")).ok().map(|b| b.as_ref().trim().to_string()).filter(|s| !s.is_empty())
}

impl Drop for SpotWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
