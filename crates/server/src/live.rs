//! Wakes following streams when the store makes new entries visible, without
//! any of them polling the store on a timer.
//!
//! The store is synchronous and calls a hook on the appending thread after
//! every commit; the hook publishes the newest cursor on a
//! [`tokio::sync::watch`], which costs one atomic store and wakes exactly the
//! tasks that wait. A follower never misses a commit: it reads until its
//! reader says [`logtap_store::Step::End`] and only then waits for a change
//! it has not seen, and a watch remembers that a change happened even when
//! nobody was waiting at the time.
//!
//! The newest cursor is also mirrored in an atomic, which a stream reads
//! before every step of its reader without the watch's lock (a thousand
//! live tails would otherwise take that lock for every entry they send).

use logtap_store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    pub fn attach(store: &Store) -> Live {
        let commits = Arc::new(watch::Sender::new(store.last_cursor()));
        let newest = Arc::new(AtomicU64::new(store.last_cursor()));
        let hook = Arc::clone(&commits);
        let mirror = Arc::clone(&newest);
        store.on_commit(move |cursor| {
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
        });
        Live { commits, newest }
    }

    /// A receiver that counts every commit after this call as unseen.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// The newest cursor published so far: every entry up to it is
    /// visible to readers. Stored before the watch is told, so once a
    /// receiver has marked the watch's value seen, every commit after that
    /// value either shows here later or wakes the receiver.
    pub fn newest(&self) -> u64 {
        self.newest.load(Ordering::Acquire)
    }
}
