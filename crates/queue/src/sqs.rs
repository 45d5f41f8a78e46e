//! Queues on Amazon SQS (or LocalStack), through aws-sdk-sqs. SQS already has the semantics
//! of the [`Queue`] trait — visibility timeout, receive count, redrive to a dead-letter
//! queue, long polling — so this is a thin translation; what it adds is error
//! classification (outage vs. misconfiguration) and the limits checks the embedded queue
//! makes too.
//!
//! Fair sharing (docs/ARCHITECTURE.md): each message carries its tenant as SQS's
//! `MessageGroupId`, which Amazon SQS's fair queues use to keep a quiet tenant's messages
//! from waiting behind a noisy one's backlog. LocalStack accepts the id but does not
//! reorder, so a queue `setup` creates with lanes is spread over several SQS queues
//! (`lanes.rs`): each flow gets a lane of its own, and workers take turns between lanes.

use crate::lanes::{lane_name, LanedQueue};
use crate::{
    check_batch, MessageGroup, OutgoingMessage, Queue, QueueBackend, QueueCounts, QueueError, QueueSpec, ReceiptHandle,
    ReceivedMessage, MAX_BATCH, MAX_DELAY, MAX_LANES, MAX_WAIT,
};
use async_trait::async_trait;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SqsQueues {
    client: Client,
}

fn classify<E>(queue: &str, error: SdkError<E, HttpResponse>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|response| response.status().as_u16());
    let code = error.code().unwrap_or("").to_owned();
    let detail = DisplayErrorContext(&error).to_string();
    let queue = queue.to_owned();
    match (&error, status, code.as_str()) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _, _) => QueueError::Unavailable {
            queue,
            message: format!("cannot reach SQS (check AWS_ENDPOINT_URL and the network): {detail}"),
        },
        (_, _, "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => QueueError::QueueNotFound { queue },
        (
            _,
            _,
            "ReceiptHandleIsInvalid"
            | "AWS.SimpleQueueService.MessageNotInflight"
            | "MessageNotInflight"
            | "InvalidParameterValue",
        ) if detail.contains("eceipt") || detail.contains("nflight") => QueueError::InvalidReceiptHandle { queue },
        (_, Some(403), _)
        | (_, _, "InvalidClientTokenId" | "SignatureDoesNotMatch" | "AccessDenied" | "AccessDeniedException") => {
            QueueError::InvalidSetting {
                queue,
                message: format!("access denied: check the AWS credentials and queue policy ({detail})"),
            }
        }
        (_, Some(status), _) if status >= 500 || status == 429 => QueueError::Unavailable { queue, message: detail },
        _ => QueueError::InvalidSetting { queue, message: detail },
    }
}

impl SqsQueues {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn queue_url(&self, name: &str) -> Result<Option<String>, QueueError> {
        match self.client.get_queue_url().queue_name(name).send().await {
            Ok(found) => Ok(found.queue_url().map(str::to_owned)),
            Err(error) => match classify(name, error) {
                QueueError::QueueNotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn queue_arn(&self, name: &str, url: &str) -> Result<String, QueueError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| classify(name, e))?;
        attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned()).ok_or_else(|| {
            QueueError::Unavailable { queue: name.to_owned(), message: "SQS returned no QueueArn".into() }
        })
    }
}

/// Message attributes that carry a message's group through SQS (its `MessageGroupId` is
/// not returned by every SQS-compatible service).
const TENANT_ATTRIBUTE: &str = "darkroom.tenant";
const FLOW_ATTRIBUTE: &str = "darkroom.flow";

#[async_trait]
impl QueueBackend for SqsQueues {
    async fn create_queue(&self, spec: &QueueSpec) -> Result<(), QueueError> {
        self.create_one(spec, &spec.name).await?;
        for lane in 1..spec.lanes {
            self.create_one(spec, &lane_name(&spec.name, lane)).await?;
        }
        Ok(())
    }

    async fn open(&self, name: &str) -> Result<Arc<dyn Queue>, QueueError> {
        let url = self.queue_url(name).await?.ok_or_else(|| QueueError::QueueNotFound { queue: name.to_owned() })?;
        let first: Arc<dyn Queue> =
            Arc::new(SqsQueue { client: self.client.clone(), name: name.to_owned(), url, lane: 0 });
        // The lanes `setup` made, if any: a queue made without them is its own only lane.
        let mut lanes = vec![first.clone()];
        for lane in 1..MAX_LANES {
            let lane_name = lane_name(name, lane);
            let Some(url) = self.queue_url(&lane_name).await? else { break };
            lanes.push(Arc::new(SqsQueue { client: self.client.clone(), name: lane_name, url, lane }));
        }
        if lanes.len() == 1 {
            return Ok(first);
        }
        Ok(Arc::new(LanedQueue::new(name, lanes)))
    }
}

impl SqsQueues {
    async fn create_one(&self, spec: &QueueSpec, name: &str) -> Result<(), QueueError> {
        let mut attributes: HashMap<QueueAttributeName, String> = HashMap::new();
        attributes.insert(QueueAttributeName::VisibilityTimeout, spec.visibility_timeout.as_secs().to_string());
        // Messages of a job that nobody processes for two weeks are not worth keeping.
        attributes.insert(QueueAttributeName::MessageRetentionPeriod, (14 * 24 * 3600).to_string());
        if let Some(dead_letter) = &spec.dead_letter_queue {
            let url = self
                .queue_url(dead_letter)
                .await?
                .ok_or_else(|| QueueError::QueueNotFound { queue: dead_letter.clone() })?;
            let arn = self.queue_arn(dead_letter, &url).await?;
            attributes.insert(
                QueueAttributeName::RedrivePolicy,
                format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{}"}}"#, spec.max_receive_count),
            );
        }
        match self.queue_url(name).await? {
            // It exists: bring its attributes up to date (CreateQueue refuses changed ones).
            Some(url) => {
                self.client
                    .set_queue_attributes()
                    .queue_url(url)
                    .set_attributes(Some(attributes))
                    .send()
                    .await
                    .map_err(|e| classify(name, e))?;
            }
            None => {
                self.client
                    .create_queue()
                    .queue_name(name)
                    .set_attributes(Some(attributes))
                    .send()
                    .await
                    .map_err(|e| classify(name, e))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct SqsQueue {
    client: Client,
    name: String,
    url: String,
    /// Which lane of its queue this is (0: the queue itself).
    lane: usize,
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<(), QueueError> {
        check_batch(&self.name, messages)?;
        let mut entries = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder().id(index.to_string()).message_body(&message.body);
            if !message.delay.is_zero() {
                // SQS counts whole seconds; round up so a delay is never shorter than asked.
                let seconds = message.delay.min(MAX_DELAY).as_millis().div_ceil(1000) as i32;
                entry = entry.delay_seconds(seconds);
            }
            // SQS's fair queues take turns between tenants (the id is at most 128 characters).
            if let Some(tenant) = message.group.as_ref().map(|group| &group.tenant).filter(|tenant| !tenant.is_empty())
            {
                entry = entry.message_group_id(tenant.chars().take(128).collect::<String>());
            }
            let group_attributes = message
                .group
                .iter()
                .flat_map(|group| [(TENANT_ATTRIBUTE, group.tenant.as_str()), (FLOW_ATTRIBUTE, group.flow.as_str())]);
            let attributes = message.attributes.iter().map(|(name, value)| (name.as_str(), value.as_str()));
            for (name, value) in attributes.chain(group_attributes) {
                if value.is_empty() {
                    // SQS refuses empty attribute values.
                    continue;
                }
                let value = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(|e| QueueError::InvalidSetting { queue: self.name.clone(), message: e.to_string() })?;
                entry = entry.message_attributes(name, value);
            }
            entries.push(
                entry
                    .build()
                    .map_err(|e| QueueError::InvalidSetting { queue: self.name.clone(), message: e.to_string() })?,
            );
        }
        let sent = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify(&self.name, e))?;
        if let Some(failure) = sent.failed().first() {
            // Resending the whole batch may duplicate the messages that did go through;
            // consumers are idempotent, so a duplicate costs work, never correctness.
            return Err(QueueError::Unavailable {
                queue: self.name.clone(),
                message: format!(
                    "{} of {} messages not sent: {}",
                    sent.failed().len(),
                    messages.len(),
                    failure.message().unwrap_or(failure.code())
                ),
            });
        }
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
            .wait_time_seconds(wait.min(MAX_WAIT).as_secs() as i32)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| classify(&self.name, e))?;
        Ok(received
            .messages()
            .iter()
            .filter_map(|message| {
                let mut attributes: BTreeMap<String, String> = message
                    .message_attributes()
                    .map(|a| a.iter().filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned()))).collect())
                    .unwrap_or_default();
                let tenant = attributes.remove(TENANT_ATTRIBUTE);
                let flow = attributes.remove(FLOW_ATTRIBUTE);
                let group = (tenant.is_some() || flow.is_some())
                    .then(|| MessageGroup { tenant: tenant.unwrap_or_default(), flow: flow.unwrap_or_default() });
                let receive_count = message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                Some(ReceivedMessage {
                    message_id: message.message_id()?.to_owned(),
                    receipt_handle: ReceiptHandle(message.receipt_handle()?.to_owned()),
                    body: message.body().unwrap_or_default().to_owned(),
                    attributes,
                    receive_count,
                    group,
                    partition: self.lane,
                })
            })
            .collect())
    }

    async fn delete(&self, handle: &ReceiptHandle) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&handle.0)
            .send()
            .await
            .map_err(|e| classify(&self.name, e))?;
        Ok(())
    }

    async fn change_visibility(&self, handle: &ReceiptHandle, timeout: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&handle.0)
            .visibility_timeout(timeout.as_secs() as i32)
            .send()
            .await
            .map_err(|e| classify(&self.name, e))?;
        Ok(())
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| classify(&self.name, e))?;
        let read = |name: &QueueAttributeName| {
            attributes.attributes().and_then(|a| a.get(name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        Ok(QueueCounts {
            visible: read(&QueueAttributeName::ApproximateNumberOfMessages),
            // Delayed (deferred) messages count as in flight, as on the embedded queue.
            in_flight: read(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                + read(&QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}
