//! Wakes following streams when the store makes new entries visible, without
//! any of them polling the store on a timer.
//!
//! The store is synchronous and calls a hook on the appending thread after
//! every commit; the hook publishes the newest cursor on a
//! [`tokio::sync::watch`], which costs one atomic store and wakes exactly the
//! tasks that wait. A follower never misses a commit: it reads until its
//! reader says [`logtap_core::Step::End`] and only then waits for a change
//! it has not seen, and a watch remembers that a change happened even when
//! nobody was waiting at the time.
//!
//! The newest cursor is also mirrored in an atomic, which a stream reads
//! before every step of its reader without the watch's lock (a thousand
//! live tails would otherwise take that lock for every entry they send).
//!
//! A stream on a single-threaded runtime (every connection thread, see
//! `net/threads.rs`) subscribes to a relay on its own thread rather than to the
//! store's watch. The commit hook runs on a blocking thread, and tokio wakes
//! a task of a single-threaded runtime from another thread by pushing it on
//! the runtime's queue and writing to the runtime's eventfd, once per task:
//! with a thousand live tails, a thousand `write` calls per commit, a cost
//! the fan-out benchmark shows (measured: bench/RESULTS.md, "Sixth
//! session"). A relay is one task per thread that waits on the store's
//! watch and passes each new cursor to a watch of its thread, whose
//! waiters are woken through the thread's own run queue: one cross-thread
//! wake per thread and commit.
//!
//! The relay changes when a follower wakes, never whether: it forwards the
//! newest value of a watch that remembers every change, so every commit
//! after a follower starts waiting reaches it (at worst a commit it has
//! already read wakes it once more for nothing).

use logtap_core::Backend;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::watch;

/// The store's commit notifications, shared by every stream.
#[derive(Debug, Clone)]
pub struct Live {
    /// The newest visible cursor. Shared with the store's commit hook, which
    /// publishes on it; streams subscribe to it.
    commits: Arc<watch::Sender<u64>>,
    /// The same cursor, readable without a lock; stored before the watch
    /// is told (see [`Live::newest`]).
    newest: Arc<AtomicU64>,
}

impl Live {
    /// Registers the commit hook on `store`. Call once per store: every call
    /// adds a hook that lives as long as the store.
    pub fn attach(store: &dyn Backend) -> Live {
        let commits = Arc::new(watch::Sender::new(store.last_cursor()));
        let newest = Arc::new(AtomicU64::new(store.last_cursor()));
        let hook = Arc::clone(&commits);
        let mirror = Arc::clone(&newest);
        store.on_commit(Box::new(move |cursor| {
            mirror.fetch_max(cursor, Ordering::Release);
            // Commits are published in order, but keeping the value monotonic
            // costs nothing and means a late hook can never move it back.
            hook.send_if_modified(|newest| {
                if cursor > *newest {
                    *newest = cursor;
                    true
                } else {
                    false
                }
            });
        }));
        Live { commits, newest }
    }

    /// A receiver that counts every commit after this call as unseen: the
    /// relay of this thread on a single-threaded runtime, the store's watch
    /// elsewhere.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        match Handle::try_current() {
            Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::CurrentThread => {
                self.relay_on(&runtime)
            }
            _ => self.commits.subscribe(),
        }
    }

    /// A receiver of this thread's relay for this `Live`, started on
    /// `runtime` if there is none yet (or the runtime it ran on stopped).
    fn relay_on(&self, runtime: &Handle) -> watch::Receiver<u64> {
        RELAYS.with_borrow_mut(|relays| {
            // A relay whose runtime stopped has closed its watch; one whose
            // store is gone will never hear of a commit again.
            relays.retain(|relay| {
                relay.local.has_changed().is_ok() && relay.commits.strong_count() > 0
            });
            let relay = match relays
                .iter()
                .position(|relay| relay.commits.as_ptr() == Arc::as_ptr(&self.commits))
            {
                Some(at) => &relays[at],
                None => {
                    relays.push(self.start_relay(runtime));
                    relays.last().expect("just pushed")
                }
            };
            let mut receiver = relay.local.clone();
            receiver.mark_unchanged();
            receiver
        })
    }

    /// Spawns a relay on `runtime` (the current thread's).
    fn start_relay(&self, runtime: &Handle) -> Relay {
        let mut commits = self.commits.subscribe();
        let (local, receiver) = watch::channel(*commits.borrow_and_update());
        runtime.spawn(async move {
            // Ends when the store is gone, or with its runtime.
            while commits.changed().await.is_ok() {
                let cursor = *commits.borrow_and_update();
                local.send_if_modified(|newest| {
                    let newer = cursor > *newest;
                    *newest = (*newest).max(cursor);
                    newer
                });
            }
        });
        Relay {
            commits: Arc::downgrade(&self.commits),
            local: receiver,
        }
    }

    /// The newest cursor published so far: every entry up to it is
    /// visible to readers. Stored before the watch is told, so once a
    /// receiver has marked the watch's value seen, every commit after that
    /// value either shows here later or wakes the receiver.
    pub fn newest(&self) -> u64 {
        self.newest.load(Ordering::Acquire)
    }
}

/// One thread's relay of one `Live`'s commits.
struct Relay {
    /// The watch relayed, to tell which `Live` this relay is for (tests run
    /// several servers in one process).
    commits: Weak<watch::Sender<u64>>,
    /// The relay's watch, which this thread's streams subscribe to.
    local: watch::Receiver<u64>,
}

thread_local! {
    /// This thread's relays, one per `Live` a stream on it subscribed to.
    static RELAYS: RefCell<Vec<Relay>> = const { RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtap_core::{Level, NewEntry};
    use logtap_store::{Store, StoreConfig, SyncPolicy};
    use std::time::Duration;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = StoreConfig::new(dir.path());
        config.sync = SyncPolicy::Never;
        let store = Store::open(config).expect("store");
        (dir, store)
    }

    fn append(store: &Store, message: &str) {
        let entry = NewEntry {
            timestamp: 1,
            level: Level::Info,
            message: message.to_string(),
            labels: Vec::new(),
        };
        store.append(&[entry]).expect("append");
    }

    /// Waits for `receiver` to see a change, or fails the test.
    async fn changed(receiver: &mut watch::Receiver<u64>) -> u64 {
        tokio::time::timeout(Duration::from_secs(10), receiver.changed())
            .await
            .expect("a commit woke the subscriber")
            .expect("the watch is open");
        *receiver.borrow_and_update()
    }

    /// The store commits on another thread, as the server's appends do.
    async fn append_elsewhere(store: &Store, message: &'static str) {
        let store = store.clone();
        tokio::task::spawn_blocking(move || append(&store, message))
            .await
            .expect("append");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn streams_of_one_thread_share_one_relay_and_each_sees_every_commit() {
        let (_dir, store) = store();
        let live = Live::attach(&store);
        let mut receivers: Vec<_> = (0..100).map(|_| live.subscribe()).collect();
        // The store's watch has the relay as its only subscriber (and
        // without the relay, it would have all 100).
        assert_eq!(live.commits.receiver_count(), 1);
        for message in ["one", "two"] {
            append_elsewhere(&store, message).await;
            let newest = live.newest();
            for receiver in &mut receivers {
                assert_eq!(changed(receiver).await, newest);
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_subscriber_counts_only_commits_after_it_subscribed() {
        let (_dir, store) = store();
        let live = Live::attach(&store);
        let mut early = live.subscribe();
        append_elsewhere(&store, "before").await;
        assert_eq!(changed(&mut early).await, live.newest());
        let mut late = live.subscribe();
        assert!(!late.has_changed().expect("open"));
        append_elsewhere(&store, "after").await;
        assert_eq!(changed(&mut late).await, live.newest());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn two_stores_on_one_thread_get_a_relay_each() {
        let (_first_dir, first) = store();
        let (_second_dir, second) = store();
        let (first_live, second_live) = (Live::attach(&first), Live::attach(&second));
        let mut of_first = first_live.subscribe();
        let mut of_second = second_live.subscribe();
        append_elsewhere(&second, "only the second").await;
        assert_eq!(changed(&mut of_second).await, second_live.newest());
        assert!(!of_first.has_changed().expect("open"));
        append_elsewhere(&first, "now the first").await;
        assert_eq!(changed(&mut of_first).await, first_live.newest());
    }

    #[test]
    fn a_relay_whose_runtime_stopped_is_started_again() {
        let (_dir, store) = store();
        let live = Live::attach(&store);
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        };
        runtime().block_on(async {
            let _ = live.subscribe();
        });
        // The first runtime, and its relay, are gone; this thread's next
        // runtime must not hand out the relay's closed watch.
        runtime().block_on(async {
            let mut receiver = live.subscribe();
            append_elsewhere(&store, "later").await;
            assert_eq!(changed(&mut receiver).await, live.newest());
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_work_stealing_runtime_streams_subscribe_to_the_store_itself() {
        let (_dir, store) = store();
        let live = Live::attach(&store);
        let mut receivers = [live.subscribe(), live.subscribe()];
        assert_eq!(live.commits.receiver_count(), 2);
        append_elsewhere(&store, "one").await;
        for receiver in &mut receivers {
            assert_eq!(changed(receiver).await, live.newest());
        }
    }
}
