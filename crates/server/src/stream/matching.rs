//! The matching threads: where costly text matching (regular expressions)
//! runs, away from the threads that serve connections.
//!
//! A connection thread serves every stream of its connections, and
//! `/healthz` too; a regular expression can cost milliseconds per message
//! (see `logtap_query::Matcher::is_costly`), and one message cannot be cut
//! in two, so no work budget could keep such a scan from holding the thread.
//! Four such searches over 60 KB lines held `/healthz` for 16 s. So a stream
//! with a costly matcher lends its reader to these threads a batch at a
//! time (`stream::tail`) and waits for the batch like any other I/O, and the
//! connection thread goes on serving everyone else.
//!
//! A fixed, small set of threads, not tokio's blocking pool: the costly
//! searches together can then take no more than these threads' share of the
//! CPU, however many are running, and they never take the blocking threads
//! that appends and stream opens need. Jobs queue in arrival order, and each
//! is one bounded batch, so concurrent searches take turns.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

/// A batch of work for a matching thread.
type Job = Box<dyn FnOnce() + Send>;

/// A handle on the matching threads; cheap to clone. The threads end once
/// every handle is dropped.
#[derive(Clone, Debug)]
pub struct MatchThreads {
    /// Where jobs queue; each thread takes the next when it is free.
    jobs: mpsc::Sender<Job>,
}

impl MatchThreads {
    /// Starts `count` threads (at least one), named `logtap-match-N`.
    pub fn start(count: usize) -> io::Result<MatchThreads> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..count.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("logtap-match-{index}"))
                .spawn(move || serve(&queue))?;
        }
        Ok(MatchThreads { jobs })
    }

    /// Runs `work` on a matching thread; the receiver gets its result. If
    /// the threads are gone or `work` panics, the receiver gets an error
    /// instead.
    pub fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (sender, receiver) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The receiver may be gone (the client cancelled): the result,
            // and the reader in it, are then dropped here.
            let _ = sender.send(work());
        });
        // A send fails only once every thread has ended; the job, and with
        // it the sender, is dropped, which the receiver sees.
        let _ = self.jobs.send(job);
        receiver
    }
}

/// One matching thread: runs jobs until every handle is dropped.
fn serve(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, so the
        // threads take jobs in turn and run them side by side.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panic drops the job's sender (its stream sees an error) and
        // keeps the thread for the next job.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("A matching job panicked; its stream ends with an error.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_off_the_calling_thread_and_a_panic_ends_only_its_job() {
        let threads = MatchThreads::start(1).unwrap();
        let caller = std::thread::current().id();
        let ran_on = threads.run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(ran_on, caller);
        let panicked = threads.run(|| -> u32 { panic!("on purpose") }).await;
        assert!(panicked.is_err());
        assert_eq!(threads.run(|| 7).await.unwrap(), 7);
    }
}
