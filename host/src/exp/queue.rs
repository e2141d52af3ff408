//! Dispatch over SQS: one queue of trial ids per experiment (`paddock-<experiment id>`),
//! with a dead-letter queue (`…-dlq`) for messages received too often.
//!
//! The queue only says which trial to look at next; the trial's state object decides who
//! owns it (an old receipt handle can still release or delete a message, so SQS cannot
//! fence a stale worker — the conditional writes of [`super::trial`] do). A message's
//! visibility timeout is a hint, set to the trial's lease and extended with each
//! heartbeat. A preempted trial goes back as a new message (its receive count starts
//! again, so preemptions never push it to the dead-letter queue); a failed attempt makes
//! the old message visible again (its receive count grows); a final trial's message is
//! deleted.

use super::aws;
use anyhow::Context;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use std::collections::HashMap;

/// Receives after which a message goes to the dead-letter queue: trials whose worker
/// vanished this often while holding them (errors are counted, and failed, in the trial's
/// state long before).
pub const MAX_RECEIVES: u32 = 50;

/// The queues of an experiment, as `exp submit --queue` and `exp run --fleet` record them
/// in its store (`dispatch.json`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dispatch {
    /// The queue of trial ids.
    pub queue: String,
    /// Its dead-letter queue.
    pub dead_letter: String,
    /// The region the queues are in.
    pub region: String,
}

/// `dispatch.json`: where an experiment's queues are.
pub const DISPATCH: &str = "dispatch.json";

/// One received trial id.
#[derive(Clone, Debug)]
pub struct Message {
    /// The trial.
    pub trial: String,
    /// Times SQS has handed the message out (this one included).
    pub receives: u32,
    receipt: String,
}

/// A client for one queue.
pub struct Queue {
    client: aws_sdk_sqs::Client,
    rt: tokio::runtime::Runtime,
    /// The queue's URL.
    pub url: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queue({})", self.url)
    }
}

/// The queue name of experiment `id` (SQS allows 80 characters: longer ids are cut, with
/// a hash of the whole id kept).
pub fn queue_name(id: &str) -> String {
    let name = format!("paddock-{id}");
    if name.len() <= 76 {
        return name;
    }
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes()));
    format!("{}-{}", &name[..63], &hash[..12])
}

impl Queue {
    /// A client for the queue at `url` in `region`.
    pub fn connect(url: &str, region: Option<&str>) -> anyhow::Result<Queue> {
        let (rt, shared) = aws::connect(region)?;
        Ok(Queue { client: aws_sdk_sqs::Client::new(&shared), rt, url: url.to_string() })
    }

    /// Creates (or finds: creating is idempotent) experiment `id`'s queue and dead-letter
    /// queue, tagged with the experiment, with a visibility timeout of `visibility_s`.
    pub fn create(id: &str, region: Option<&str>, visibility_s: u64) -> anyhow::Result<(Queue, Dispatch)> {
        let (rt, shared) = aws::connect(region)?;
        let region = shared.region().map_or_else(|| "us-east-1".to_string(), ToString::to_string);
        let client = aws_sdk_sqs::Client::new(&shared);
        let name = queue_name(id);
        let dlq_name = format!("{name}-dlq");
        let tags = HashMap::from([("paddock:experiment".to_string(), id.to_string())]);
        let (url, dead_letter) = rt.block_on(async {
            let dlq = client
                .create_queue()
                .queue_name(&dlq_name)
                .set_tags(Some(tags.clone()))
                // A dead letter is kept 14 days (the most SQS allows), for a look.
                .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("SQS CreateQueue {dlq_name} failed: {}", aws::describe(&e)))?;
            let dlq_url = dlq.queue_url().context("SQS gave no queue URL")?.to_string();
            let arn = client
                .get_queue_attributes()
                .queue_url(&dlq_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("SQS GetQueueAttributes {dlq_url} failed: {}", aws::describe(&e)))?
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
                .context("SQS gave no ARN for the dead-letter queue")?;
            let redrive = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES.to_string() }).to_string();
            let q = client
                .create_queue()
                .queue_name(&name)
                .set_tags(Some(tags))
                .attributes(QueueAttributeName::VisibilityTimeout, visibility_s.clamp(1, 43_200).to_string())
                .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
                .attributes(QueueAttributeName::RedrivePolicy, redrive)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("SQS CreateQueue {name} failed: {}", aws::describe(&e)))?;
            anyhow::Ok((q.queue_url().context("SQS gave no queue URL")?.to_string(), dlq_url))
        })?;
        let dispatch = Dispatch { queue: url.clone(), dead_letter, region };
        Ok((Queue { client, rt, url }, dispatch))
    }

    /// Sends one message per trial id (in batches of ten, SQS's most).
    pub fn send(&self, trials: &[String]) -> anyhow::Result<()> {
        self.rt.block_on(async {
            for chunk in trials.chunks(10) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, t)| SendMessageBatchRequestEntry::builder().id(format!("m{i}")).message_body(t).build())
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("SQS SendMessageBatch to {} failed: {}", self.url, aws::describe(&e)))?;
                if let Some(f) = out.failed().first() {
                    anyhow::bail!("SQS refused a message to {}: {} ({})", self.url, f.message().unwrap_or(""), f.code());
                }
            }
            Ok(())
        })
    }

    /// Waits up to `wait_s` (at most 20, SQS's long poll) for one message, hidden from
    /// others for `visibility_s`.
    pub fn receive(&self, wait_s: u64, visibility_s: u64) -> anyhow::Result<Option<Message>> {
        let out = self.rt.block_on(
            self.client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(1)
                .wait_time_seconds(wait_s.min(20) as i32)
                .visibility_timeout(visibility_s.clamp(0, 43_200) as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send(),
        );
        let out = out.map_err(|e| anyhow::anyhow!("SQS ReceiveMessage from {} failed: {}", self.url, aws::describe(&e)))?;
        let Some(m) = out.messages().first() else { return Ok(None) };
        let receives = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        Ok(Some(Message {
            trial: m.body().unwrap_or_default().trim().to_string(),
            receives,
            receipt: m.receipt_handle().context("SQS gave a message without a receipt handle")?.to_string(),
        }))
    }

    /// Hides `m` for `seconds` more from now (0: visible again at once).
    pub fn hide(&self, m: &Message, seconds: u64) -> anyhow::Result<()> {
        self.rt
            .block_on(
                self.client
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(&m.receipt)
                    .visibility_timeout(seconds.min(43_200) as i32)
                    .send(),
            )
            .map_err(|e| anyhow::anyhow!("SQS ChangeMessageVisibility on {} failed: {}", self.url, aws::describe(&e)))?;
        Ok(())
    }

    /// Deletes `m` (its trial is final, or went back as a new message).
    pub fn delete(&self, m: &Message) -> anyhow::Result<()> {
        self.rt
            .block_on(self.client.delete_message().queue_url(&self.url).receipt_handle(&m.receipt).send())
            .map_err(|e| anyhow::anyhow!("SQS DeleteMessage on {} failed: {}", self.url, aws::describe(&e)))?;
        Ok(())
    }

    /// Messages waiting and messages in flight (SQS's approximate counts).
    pub fn depth(&self) -> anyhow::Result<(u64, u64)> {
        let out = self
            .rt
            .block_on(
                self.client
                    .get_queue_attributes()
                    .queue_url(&self.url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send(),
            )
            .map_err(|e| anyhow::anyhow!("SQS GetQueueAttributes on {} failed: {}", self.url, aws::describe(&e)))?;
        let get = |k: &QueueAttributeName| out.attributes().and_then(|a| a.get(k)).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((get(&QueueAttributeName::ApproximateNumberOfMessages), get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)))
    }

    /// Deletes every message in the queue.
    pub fn purge(&self) -> anyhow::Result<()> {
        self.rt
            .block_on(self.client.purge_queue().queue_url(&self.url).send())
            .map_err(|e| anyhow::anyhow!("SQS PurgeQueue {} failed: {}", self.url, aws::describe(&e)))?;
        Ok(())
    }

    /// Deletes the queue (the experiment is over).
    pub fn delete_queue(&self) -> anyhow::Result<()> {
        match self.rt.block_on(self.client.delete_queue().queue_url(&self.url).send()) {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.meta().code() == Some("AWS.SimpleQueueService.NonExistentQueue")) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("SQS DeleteQueue {} failed: {}", self.url, aws::describe(&e))),
        }
    }
}

/// Reads an experiment's `dispatch.json`.
pub fn read_dispatch(objects: &dyn crate::store::Objects) -> anyhow::Result<Option<Dispatch>> {
    let Some(data) = objects.get(DISPATCH)? else { return Ok(None) };
    Ok(Some(serde_json::from_slice(&data).with_context(|| format!("{}/{DISPATCH} is not a queue record", objects.location()))?))
}

/// Gives a submitted experiment its queues: creates them (or finds them), and the first
/// time, sends every trial that is not final and records the queues in `dispatch.json`
/// (after sending: a submit that dies half way sends again next time; two at once send
/// twice, which is harmless — a message for a trial that another worker holds, or that is
/// final, is hidden or dropped).
pub fn dispatch(objects: &dyn crate::store::Objects, plan: &super::spec::Plan, region: Option<&str>) -> anyhow::Result<Dispatch> {
    if let Some(d) = read_dispatch(objects)? {
        return Ok(d);
    }
    let (queue, d) = Queue::create(&plan.id, region, plan.trial.lease_s)?;
    let open = super::worker::open_trials(objects, plan)?;
    queue.send(&open)?;
    objects.put_new(DISPATCH, &serde_json::to_vec_pretty(&d)?)?;
    Ok(d)
}

/// Sends every trial that is not final again, over an emptied queue: a fleet started
/// again after a cancel takes up every open trial, those whose message went to the
/// dead-letter queue included.
pub fn requeue(objects: &dyn crate::store::Objects, plan: &super::spec::Plan) -> anyhow::Result<usize> {
    let d = dispatch(objects, plan, plan.fleet.as_ref().and_then(|f| f.region.as_deref()))?;
    let queue = Queue::connect(&d.queue, Some(&d.region))?;
    queue.purge()?;
    let open = super::worker::open_trials(objects, plan)?;
    queue.send(&open)?;
    Ok(open.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_fit_sqs() {
        assert_eq!(queue_name("cartpole-ppo-lr-0123abcd"), "paddock-cartpole-ppo-lr-0123abcd");
        let long = queue_name(&"x".repeat(100));
        assert!(long.len() + "-dlq".len() <= 80, "{long}");
        assert_ne!(long, queue_name(&"x".repeat(101)), "different ids, different queues");
    }
}
