//! Publishing a batch to JetStream: one message per entry, pipelined, each
//! retried with its message id until JetStream acknowledges it.

use crate::NatsConfig;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use logtap_core::{NewEntry, StoreError};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// Publishes batches from blocking code through the backend's runtime.
pub(crate) struct Publisher {
    context: jetstream::Context,
    subject: String,
    timeout: Duration,
    runtime: tokio::runtime::Handle,
}

impl Publisher {
    pub(crate) fn new(
        context: jetstream::Context,
        config: NatsConfig,
        runtime: tokio::runtime::Handle,
    ) -> Publisher {
        Publisher {
            context,
            subject: config.subject(),
            timeout: config.publish_timeout,
            runtime,
        }
    }

    /// How long a batch may take to be acknowledged and applied.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Publishes `entries` and returns each one's stream sequence, once
    /// JetStream acknowledged every one (stored on a quorum of replicas).
    /// Blocks; call it where blocking is allowed.
    pub(crate) fn publish(&self, entries: &[NewEntry]) -> Result<Vec<u64>, StoreError> {
        let mut payloads = Vec::with_capacity(entries.len());
        let mut buf = Vec::new();
        for entry in entries {
            buf.clear();
            logtap_store::encode_entry(&mut buf, entry)?;
            payloads.push(Bytes::copy_from_slice(&buf));
        }
        let batch = batch_id(&payloads);
        self.runtime.block_on(self.publish_all(&payloads, batch))
    }

    async fn publish_all(&self, payloads: &[Bytes], batch: u64) -> Result<Vec<u64>, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let mut sequences = vec![0u64; payloads.len()];
        let mut pending: Vec<usize> = (0..payloads.len()).collect();
        let mut backoff = Duration::from_millis(50);
        loop {
            // Every publish goes out before the first ack is awaited: one
            // round trip for the batch, not one per entry.
            let mut in_flight = Vec::with_capacity(pending.len());
            for &i in &pending {
                let message = PublishMessage::build()
                    .payload(payloads[i].clone())
                    .message_id(format!("{batch:016x}-{i}"));
                in_flight.push((
                    i,
                    self.context
                        .send_publish(self.subject.clone(), message)
                        .await,
                ));
            }
            let mut failed = Vec::new();
            let mut last_error = String::new();
            for (i, sent) in in_flight {
                let acked = match sent {
                    Ok(ack) => ack.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match acked {
                    Ok(ack) => sequences[i] = ack.sequence,
                    Err(error) => {
                        failed.push(i);
                        last_error = error;
                    }
                }
            }
            if failed.is_empty() {
                return Ok(sequences);
            }
            if Instant::now() + backoff >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "JetStream did not acknowledge {} of the batch's {} entries within {:?} ({last_error}); \
                     retrying the push stores each entry once",
                    failed.len(),
                    payloads.len(),
                    self.timeout
                )));
            }
            tracing::warn!(
                failed = failed.len(),
                error = %last_error,
                "JetStream did not acknowledge some entries; publishing them again."
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            pending = failed;
        }
    }
}

/// The batch's part of its entries' message ids: a hash of its records,
/// so that a client retrying the same batch (timestamps included) within
/// the stream's duplicate window is stored once, as is a publish this
/// node retries after a leader change.
fn batch_id(payloads: &[Bytes]) -> u64 {
    // SipHash with fixed keys: the same batch hashes the same on every
    // node running the same logtap.
    let mut hasher = std::hash::DefaultHasher::new();
    payloads.len().hash(&mut hasher);
    for payload in payloads {
        payload.hash(&mut hasher);
    }
    hasher.finish()
}
