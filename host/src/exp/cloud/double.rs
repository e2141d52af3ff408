//! An in-memory EC2 and SQS for the fleet and queue logic's unit tests, with the faults
//! real clouds produce, injected call by call: throttling, a response lost after the call
//! took effect, a call that fails without effect, a describe that lags behind a create,
//! a queue busy purging. It keeps EC2's client-token rule (a create repeated with the
//! same token returns what the first made) and a log of every call, and can run a piece of
//! code (another actor: a cancel, a second controller) before or after any call.
//! `moto_server` stays the cloud of the end-to-end tests; this is for the races.

use super::api::{
    Backoff, Cloud, CloudError, Compute, FleetApi, Instance, Message, PricePoint, Queues, TaggedFleet, TrialQueue, template_name,
};
use crate::format::experiment::Fleet;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The calls a fault or an actor can be put on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// CreateLaunchTemplate.
    CreateTemplate,
    /// CreateFleet / RequestSpotFleet.
    Request,
    /// Describe the tagged fleets.
    TaggedFleets,
    /// DeleteFleets / CancelSpotFleetRequests.
    DeleteFleet,
    /// DescribeInstances.
    Instances,
    /// TerminateInstances.
    Terminate,
    /// DeleteLaunchTemplate.
    DeleteTemplate,
    /// SQS SendMessageBatch.
    Send,
    /// SQS PurgeQueue.
    Purge,
}

/// What an injected fault does to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Refused as throttled, without effect.
    Throttle,
    /// Takes effect, but its answer is lost (the caller sees no answer).
    LoseResponse,
    /// No answer and no effect (a connection refused).
    Drop,
    /// SQS busy purging, without effect.
    Busy,
}

type Actor = Box<dyn FnOnce() + Send>;

/// A fleet the double made.
#[derive(Clone, Debug)]
pub struct FakeFleet {
    /// Its id.
    pub id: String,
    /// Its API.
    pub api: FleetApi,
    /// The experiment its tag names.
    pub experiment: String,
    /// Not deleted.
    pub active: bool,
}

/// The double's state, open to the tests.
#[derive(Default)]
pub struct State {
    /// Every call, in order (`Op` and its main argument).
    pub calls: Vec<(Op, String)>,
    /// Fleets, in creation order.
    pub fleets: Vec<FakeFleet>,
    /// Instances with the experiment their tag names and the fleet that made them.
    pub instances: Vec<(Instance, String, String)>,
    /// Launch templates by name → id.
    pub templates: BTreeMap<String, String>,
    /// Client tokens → what they made.
    tokens: BTreeMap<String, String>,
    /// Faults still to inject, per call kind, in order.
    faults: Vec<(Op, Fault)>,
    /// Actors to run before (`true`) or after a call of that kind, once.
    actors: Vec<(Op, bool, Actor)>,
    /// Fleets a describe does not list yet: id → describes still to skip it.
    pub lagging_fleets: BTreeMap<String, u32>,
    /// Instances a describe does not list for a while: id → describes still to skip it.
    pub lagging_instances: BTreeMap<String, u32>,
    /// Queue messages: (trial, receives, hidden).
    pub messages: VecDeque<(String, u32, bool)>,
    /// Purges made.
    pub purges: u32,
    next: u64,
}

/// The in-memory cloud. Clones share one state.
#[derive(Clone, Default)]
pub struct FakeCloud {
    state: Arc<Mutex<State>>,
}

impl FakeCloud {
    /// A new, empty cloud.
    pub fn new() -> FakeCloud {
        FakeCloud::default()
    }

    /// The state (for assertions and set-up).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next call of kind `op` gets `fault` (several queue up in order).
    pub fn fault(&self, op: Op, fault: Fault) {
        self.state().faults.push((op, fault));
    }

    /// Runs `actor` once, just before the next call of kind `op` takes effect.
    pub fn before(&self, op: Op, actor: impl FnOnce() + Send + 'static) {
        self.state().actors.push((op, true, Box::new(actor)));
    }

    /// Runs `actor` once, just after the next call of kind `op` took effect.
    pub fn after(&self, op: Op, actor: impl FnOnce() + Send + 'static) {
        self.state().actors.push((op, false, Box::new(actor)));
    }

    /// Active fleets tagged with `id`.
    pub fn active_fleets(&self, id: &str) -> Vec<String> {
        self.state().fleets.iter().filter(|f| f.active && f.experiment == id).map(|f| f.id.clone()).collect()
    }

    /// Instances tagged with `id` that bill.
    pub fn live_instances(&self, id: &str) -> Vec<String> {
        self.state().instances.iter().filter(|(i, e, _)| e == id && i.is_live()).map(|(i, _, _)| i.id.clone()).collect()
    }

    /// How many calls of kind `op` were made.
    pub fn count(&self, op: Op) -> usize {
        self.state().calls.iter().filter(|(o, _)| *o == op).count()
    }

    /// Makes a fleet of `capacity` running instances tagged with `id` directly (one a lost
    /// record does not name).
    pub fn plant_fleet(&self, id: &str, capacity: u32) -> String {
        let mut s = self.state();
        make_fleet(&mut s, id, FleetApi::Fleet, capacity)
    }

    /// One call: its actors and its fault, around `effect`.
    fn call<T>(&self, op: Op, arg: &str, effect: impl FnOnce(&mut State) -> Result<T, CloudError>) -> Result<T, CloudError> {
        let before = self.take_actor(op, true);
        if let Some(a) = before {
            a();
        }
        let result = {
            let mut s = self.state();
            s.calls.push((op, arg.to_string()));
            let fault = s.faults.iter().position(|(o, _)| *o == op).map(|i| s.faults.remove(i).1);
            let call = format!("{op:?}");
            match fault {
                Some(Fault::Throttle) => Err(CloudError::Throttled { service: "EC2", call, message: "Rate exceeded".into() }),
                Some(Fault::Drop) => Err(CloudError::Unreachable { service: "EC2", call, message: "connection refused".into() }),
                Some(Fault::Busy) => Err(CloudError::Busy { service: "SQS", call, message: "PurgeQueueInProgress".into() }),
                Some(Fault::LoseResponse) => {
                    let _ = effect(&mut s);
                    Err(CloudError::Unreachable { service: "EC2", call, message: "operation timed out".into() })
                }
                None => effect(&mut s),
            }
        };
        if let Some(a) = self.take_actor(op, false) {
            a();
        }
        result
    }

    fn take_actor(&self, op: Op, before: bool) -> Option<Actor> {
        let mut s = self.state();
        let i = s.actors.iter().position(|(o, b, _)| *o == op && *b == before)?;
        Some(s.actors.remove(i).2)
    }
}

fn make_fleet(s: &mut State, id: &str, api: FleetApi, capacity: u32) -> String {
    s.next += 1;
    let fleet_id = format!("fleet-{:04}", s.next);
    s.fleets.push(FakeFleet { id: fleet_id.clone(), api, experiment: id.to_string(), active: true });
    let now = crate::format::status::unix_now();
    for _ in 0..capacity {
        s.next += 1;
        let instance = Instance {
            id: format!("i-{:04}", s.next),
            instance_type: "c7i.large".into(),
            zone: "us-east-1a".into(),
            state: "running".into(),
            launched: now,
        };
        s.instances.push((instance, id.to_string(), fleet_id.clone()));
    }
    fleet_id
}

/// Skips an entry a lagging describe does not list yet (counting the describe).
fn lagging(lag: &mut BTreeMap<String, u32>, id: &str) -> bool {
    match lag.get_mut(id) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

impl Compute for FakeCloud {
    fn region(&self) -> &str {
        "us-east-1"
    }

    fn create_template(&self, id: &str, _: &Fleet, _: &str, token: &str) -> Result<String, CloudError> {
        self.call(Op::CreateTemplate, id, |s| {
            if let Some(t) = s.tokens.get(token) {
                return Ok(t.clone());
            }
            let name = template_name(id);
            if s.templates.contains_key(&name) {
                return Err(CloudError::Service {
                    service: "EC2",
                    call: "CreateLaunchTemplate".into(),
                    code: "InvalidLaunchTemplateName.AlreadyExistsException".into(),
                    message: format!("{name} exists"),
                });
            }
            s.next += 1;
            let tid = format!("lt-{:04}", s.next);
            s.templates.insert(name, tid.clone());
            s.tokens.insert(token.to_string(), tid.clone());
            Ok(tid)
        })
    }

    fn request(&self, id: &str, fleet: &Fleet, _: &str, capacity: u32, token: &str) -> Result<String, CloudError> {
        self.call(Op::Request, id, |s| {
            if let Some(f) = s.tokens.get(token) {
                return Ok(f.clone());
            }
            let f = make_fleet(s, id, FleetApi::of(&fleet.api), capacity);
            s.tokens.insert(token.to_string(), f.clone());
            Ok(f)
        })
    }

    fn tagged_fleets(&self, id: &str) -> Result<Vec<TaggedFleet>, CloudError> {
        self.call(Op::TaggedFleets, id, |s| {
            let fleets: Vec<FakeFleet> = s.fleets.iter().filter(|f| f.experiment == id).cloned().collect();
            Ok(fleets
                .into_iter()
                .filter(|f| !lagging(&mut s.lagging_fleets, &f.id))
                .map(|f| TaggedFleet { api: f.api, id: f.id, active: f.active })
                .collect())
        })
    }

    fn delete_fleet(&self, _: FleetApi, fleet_id: &str) -> Result<(), CloudError> {
        self.call(Op::DeleteFleet, fleet_id, |s| {
            let Some(i) = s.fleets.iter().position(|f| f.id == fleet_id) else {
                return Ok(());
            };
            s.fleets[i].active = false;
            for (inst, _, f) in &mut s.instances {
                if f == fleet_id {
                    inst.state = "shutting-down".into();
                }
            }
            Ok(())
        })
    }

    fn instances(&self, id: &str) -> Result<Vec<Instance>, CloudError> {
        self.call(Op::Instances, id, |s| {
            let mine: Vec<Instance> = s.instances.iter().filter(|(_, e, _)| e == id).map(|(i, _, _)| i.clone()).collect();
            Ok(mine.into_iter().filter(|i| !lagging(&mut s.lagging_instances, &i.id)).collect())
        })
    }

    fn terminate(&self, ids: &[String]) -> Result<(), CloudError> {
        self.call(Op::Terminate, &ids.join(","), |s| {
            for (i, _, _) in &mut s.instances {
                if ids.contains(&i.id) {
                    i.state = "shutting-down".into();
                }
            }
            Ok(())
        })
    }

    fn delete_template_named(&self, name: &str) -> Result<(), CloudError> {
        self.call(Op::DeleteTemplate, name, |s| {
            s.templates.remove(name);
            Ok(())
        })
    }

    fn delete_template(&self, id: &str) -> Result<(), CloudError> {
        self.call(Op::DeleteTemplate, id, |s| {
            s.templates.retain(|_, t| t != id);
            Ok(())
        })
    }

    fn spot_prices(&self, instance_type: &str, zone: &str, from: f64, _: f64) -> Result<Vec<PricePoint>, CloudError> {
        Ok(vec![PricePoint { instance_type: instance_type.into(), zone: zone.into(), from: from - 60.0, price: 0.05 }])
    }
}

impl std::fmt::Debug for FakeCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeCloud")
    }
}

impl TrialQueue for FakeCloud {
    fn url(&self) -> &str {
        "fake://queue"
    }

    fn send(&self, trials: &[String]) -> Result<(), CloudError> {
        self.call(Op::Send, &trials.join(","), |s| {
            s.messages.extend(trials.iter().map(|t| (t.clone(), 0, false)));
            Ok(())
        })
    }

    fn receive(&self, _: u64, _: u64) -> Result<Option<Message>, CloudError> {
        let mut s = self.state();
        let Some(m) = s.messages.iter_mut().find(|(_, _, hidden)| !hidden) else { return Ok(None) };
        m.1 += 1;
        m.2 = true;
        Ok(Some(Message { trial: m.0.clone(), receives: m.1, receipt: m.0.clone() }))
    }

    fn hide(&self, m: &Message, seconds: u64) -> Result<(), CloudError> {
        let mut s = self.state();
        if let Some(x) = s.messages.iter_mut().find(|(t, _, _)| *t == m.receipt) {
            x.2 = seconds > 0;
        }
        Ok(())
    }

    fn delete(&self, m: &Message) -> Result<(), CloudError> {
        let mut s = self.state();
        if let Some(i) = s.messages.iter().position(|(t, _, _)| *t == m.receipt) {
            s.messages.remove(i);
        }
        Ok(())
    }

    fn depth(&self) -> Result<(u64, u64), CloudError> {
        let s = self.state();
        let hidden = s.messages.iter().filter(|m| m.2).count() as u64;
        Ok((s.messages.len() as u64 - hidden, hidden))
    }

    fn purge(&self) -> Result<(), CloudError> {
        self.call(Op::Purge, "", |s| {
            s.messages.clear();
            s.purges += 1;
            Ok(())
        })
    }

    fn delete_queue(&self) -> Result<(), CloudError> {
        Ok(())
    }
}

impl Cloud for FakeCloud {
    fn compute(&self, _: Option<&str>) -> Result<Arc<dyn Compute>, CloudError> {
        Ok(Arc::new(self.clone()))
    }

    fn queue(&self, _: &str, _: Option<&str>) -> Result<Arc<dyn TrialQueue>, CloudError> {
        Ok(Arc::new(self.clone()))
    }

    fn create_queues(&self, _: &str, name: &str, _: Option<&str>, _: u64, _: u32) -> Result<Queues, CloudError> {
        Ok(Queues { queue: format!("fake://{name}"), dead_letter: format!("fake://{name}-dlq"), region: "us-east-1".into() })
    }

    /// Retries without waiting.
    fn backoff(&self) -> Backoff {
        Backoff { first: Duration::from_millis(1), most: Duration::from_millis(2), tries: 7 }
    }
}
