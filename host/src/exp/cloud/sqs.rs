//! SQS through `aws-sdk-sqs` (feature `fleet`): an experiment's queue of trial ids and
//! its dead-letter queue. [`crate::exp::queue`] decides what goes in and out.

use super::api::{CloudError, Message, Queues, TAG, TrialQueue};
use super::aws::{self, classify};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use std::collections::HashMap;

/// A client for one queue.
pub(super) struct Queue {
    client: aws_sdk_sqs::Client,
    rt: tokio::runtime::Runtime,
    url: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queue({})", self.url)
    }
}

fn missing(what: &str) -> CloudError {
    CloudError::Setup(format!("SQS gave no {what}"))
}

impl Queue {
    /// A client for the queue at `url` in `region`.
    pub(super) fn connect(url: &str, region: Option<&str>) -> Result<Queue, CloudError> {
        let (rt, shared) = aws::connect(region)?;
        Ok(Queue { client: aws_sdk_sqs::Client::new(&shared), rt, url: url.to_string() })
    }
}

/// Creates (or finds: creating is idempotent) queue `name` and its dead-letter queue,
/// tagged with experiment `id`, with a visibility timeout of `visibility_s`.
pub(super) fn create(id: &str, name: &str, region: Option<&str>, visibility_s: u64, max_receives: u32) -> Result<Queues, CloudError> {
    let (rt, shared) = aws::connect(region)?;
    let region = shared.region().map_or_else(|| "us-east-1".to_string(), ToString::to_string);
    let client = aws_sdk_sqs::Client::new(&shared);
    let dlq_name = format!("{name}-dlq");
    let tags = HashMap::from([(TAG.to_string(), id.to_string())]);
    let (queue, dead_letter) = rt.block_on(async {
        let dlq = client
            .create_queue()
            .queue_name(&dlq_name)
            .set_tags(Some(tags.clone()))
            // A dead letter is kept 14 days (the most SQS allows), for a look.
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .send()
            .await
            .map_err(|e| classify("SQS", &format!("CreateQueue {dlq_name}"), &e))?;
        let dlq_url = dlq.queue_url().ok_or_else(|| missing("queue URL"))?.to_string();
        let arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| classify("SQS", &format!("GetQueueAttributes {dlq_url}"), &e))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| missing("ARN for the dead-letter queue"))?;
        let redrive = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max_receives.to_string() }).to_string();
        let q = client
            .create_queue()
            .queue_name(name)
            .set_tags(Some(tags))
            .attributes(QueueAttributeName::VisibilityTimeout, visibility_s.clamp(1, 43_200).to_string())
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .map_err(|e| classify("SQS", &format!("CreateQueue {name}"), &e))?;
        Ok::<_, CloudError>((q.queue_url().ok_or_else(|| missing("queue URL"))?.to_string(), dlq_url))
    })?;
    Ok(Queues { queue, dead_letter, region })
}

impl TrialQueue for Queue {
    fn url(&self) -> &str {
        &self.url
    }

    /// In batches of ten, SQS's most.
    fn send(&self, trials: &[String]) -> Result<(), CloudError> {
        let call = format!("SendMessageBatch to {}", self.url);
        self.rt.block_on(async {
            for chunk in trials.chunks(10) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, t)| SendMessageBatchRequestEntry::builder().id(format!("m{i}")).message_body(t).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| CloudError::Setup(format!("SQS {call}: {e}")))?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| classify("SQS", &call, &e))?;
                if let Some(f) = out.failed().first() {
                    return Err(CloudError::Service {
                        service: "SQS",
                        call: call.clone(),
                        code: f.code().to_string(),
                        message: f.message().unwrap_or("").to_string(),
                    });
                }
            }
            Ok(())
        })
    }

    /// At most 20 s (SQS's long poll).
    fn receive(&self, wait_s: u64, visibility_s: u64) -> Result<Option<Message>, CloudError> {
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
        let out = out.map_err(|e| classify("SQS", &format!("ReceiveMessage from {}", self.url), &e))?;
        let Some(m) = out.messages().first() else { return Ok(None) };
        let receives = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        Ok(Some(Message {
            trial: m.body().unwrap_or_default().trim().to_string(),
            receives,
            receipt: m.receipt_handle().ok_or_else(|| missing("receipt handle with a message"))?.to_string(),
        }))
    }

    fn hide(&self, m: &Message, seconds: u64) -> Result<(), CloudError> {
        self.rt
            .block_on(
                self.client
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(&m.receipt)
                    .visibility_timeout(seconds.min(43_200) as i32)
                    .send(),
            )
            .map_err(|e| classify("SQS", &format!("ChangeMessageVisibility on {}", self.url), &e))?;
        Ok(())
    }

    fn delete(&self, m: &Message) -> Result<(), CloudError> {
        self.rt
            .block_on(self.client.delete_message().queue_url(&self.url).receipt_handle(&m.receipt).send())
            .map_err(|e| classify("SQS", &format!("DeleteMessage on {}", self.url), &e))?;
        Ok(())
    }

    fn depth(&self) -> Result<(u64, u64), CloudError> {
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
            .map_err(|e| classify("SQS", &format!("GetQueueAttributes on {}", self.url), &e))?;
        let get = |k: &QueueAttributeName| out.attributes().and_then(|a| a.get(k)).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((get(&QueueAttributeName::ApproximateNumberOfMessages), get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)))
    }

    fn purge(&self) -> Result<(), CloudError> {
        self.rt
            .block_on(self.client.purge_queue().queue_url(&self.url).send())
            .map_err(|e| classify("SQS", &format!("PurgeQueue {}", self.url), &e))?;
        Ok(())
    }

    fn delete_queue(&self) -> Result<(), CloudError> {
        match self.rt.block_on(self.client.delete_queue().queue_url(&self.url).send()) {
            Ok(_) => Ok(()),
            Err(e) => match classify("SQS", &format!("DeleteQueue {}", self.url), &e) {
                CloudError::Service { code, .. } if code.ends_with("NonExistentQueue") || code == "QueueDoesNotExist" => Ok(()),
                other => Err(other),
            },
        }
    }
}
