//! The apply loop: the stream, in order, into this node's local store at
//! the stream's own sequence numbers.

use crate::NatsConfig;
use async_nats::jetstream::{self, consumer};
use futures::{FutureExt, StreamExt};
use logtap_core::NewEntry;
use logtap_store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the consumer may stay silent before the stream is asked
/// whether it holds more.
const STALL_CHECK: Duration = Duration::from_secs(1);

/// The most messages applied in one local append: one fsync for them all.
const MAX_BATCH: usize = 4096;

/// Applies the stream from sequence `from` until the runtime shuts down.
/// A failure to reach NATS, or of the local store's disk, is retried from
/// what the store holds; a store that refuses a sequence as one it has
/// passed (only a bug could) stops the loop and sets `failed`.
pub(crate) async fn run(
    context: jetstream::Context,
    config: NatsConfig,
    store: Store,
    mut from: u64,
    failed: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let before = from;
        let result = apply_from(&context, &config, &store, &mut from).await;
        if from > before {
            backoff = Duration::from_millis(100);
        }
        match result {
            Ok(()) => {}
            Err(Failure::Nats(error)) => {
                tracing::warn!(%error, from, "Reading the JetStream stream failed; retrying.");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(Failure::Store(error @ logtap_core::StoreError::CursorBehind { .. })) => {
                tracing::error!(%error, from, "Applying the JetStream stream to the local store failed; this node stops taking pushes.");
                failed.store(true, Ordering::Release);
                return;
            }
            Err(Failure::Store(error)) => {
                // A full disk may clear; until it does, pushes on this
                // node wait for their entries and then fail as unavailable.
                tracing::error!(%error, from, "Applying the JetStream stream to the local store failed; retrying.");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

enum Failure {
    Nats(String),
    Store(logtap_core::StoreError),
}

/// One ordered consumer from `from`, applied until it fails; `from`
/// follows what was applied.
async fn apply_from(
    context: &jetstream::Context,
    config: &NatsConfig,
    store: &Store,
    from: &mut u64,
) -> Result<(), Failure> {
    let nats = |e: &dyn std::fmt::Display| Failure::Nats(e.to_string());
    // After a failed local append, part of its batch may be in the store.
    *from = (*from).max(store.last_cursor() + 1);
    let stream = context
        .get_stream(&config.stream)
        .await
        .map_err(|e| nats(&e))?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: *from,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| nats(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| nats(&e))?;
    // Runs of consecutive sequences, each one local append.
    let mut runs: Vec<(u64, Vec<NewEntry>)> = Vec::new();
    loop {
        let message = match tokio::time::timeout(STALL_CHECK, messages.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(()),
            Err(_) => {
                // The ordered consumer notices a lost server only after two
                // missed 15 s heartbeats; a push waiting for this node's
                // copy should not wait that long, so silence is checked
                // against the stream itself.
                let info = stream.get_info().await.map_err(|e| nats(&e))?;
                if info.state.last_sequence >= *from {
                    return Err(Failure::Nats(format!(
                        "the consumer delivered nothing for {STALL_CHECK:?} while the stream holds up to sequence {}",
                        info.state.last_sequence
                    )));
                }
                continue;
            }
        };
        let mut taken = 0;
        let mut taken_to = *from;
        let mut next = Some(message);
        // A failure mid-batch still applies what came before it, so that
        // `from` never passes an entry that was not applied.
        let mut broken = None;
        while let Some(message) = next.take() {
            let sequence = match message
                .map_err(|e| nats(&e))
                .and_then(|m| Ok((m.info().map_err(|e| nats(&e))?.stream_sequence, m)))
            {
                Ok(pair) => pair,
                Err(failure) => {
                    broken = Some(failure);
                    break;
                }
            };
            let (sequence, message) = sequence;
            if sequence < taken_to {
                // An ordered consumer that resets itself before it has
                // delivered anything starts again at the stream's first
                // sequence, not at the one it was made with: a new one is
                // made at the right place instead.
                broken = Some(Failure::Nats(format!(
                    "the consumer went back to sequence {sequence}, before {taken_to}"
                )));
                break;
            }
            match logtap_store::decode_entry(&message.payload, "(a JetStream message)") {
                Ok(entry) => match runs.last_mut() {
                    Some((first, entries)) if *first + entries.len() as u64 == sequence => {
                        entries.push(entry)
                    }
                    _ => runs.push((sequence, vec![entry])),
                },
                // Not an entry (something else published on the subject):
                // its sequence stays unused, as a cursor no entry has.
                Err(error) => tracing::error!(
                    %error,
                    sequence,
                    "A message on the stream is not a logtap entry; skipping it."
                ),
            }
            taken_to = sequence + 1;
            taken += 1;
            if taken < MAX_BATCH {
                next = messages.next().now_or_never().flatten();
            }
        }
        let store = store.clone();
        let batch = std::mem::take(&mut runs);
        tokio::task::spawn_blocking(move || {
            batch
                .iter()
                .try_for_each(|(first, entries)| store.append_at(*first, entries).map(drop))
        })
        .await
        .map_err(|e| Failure::Store(logtap_core::StoreError::Poisoned(e.to_string())))?
        .map_err(Failure::Store)?;
        *from = taken_to;
        if let Some(failure) = broken {
            return Err(failure);
        }
    }
}
