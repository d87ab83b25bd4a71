//! A connection's small writes, gathered into fewer and larger socket
//! writes.
//!
//! h2 hands each DATA frame of more than 256 bytes to the socket on its own,
//! chaining the payload to the frame head rather than copying it, and
//! flushes after each. With a thousand live tails on a few connections,
//! every commit would be a thousand `writev` calls of a few KiB each, and
//! the per-segment cost in the kernel (transmit, the loopback receive,
//! ACKs, the reader's wake-ups) would be most of the server's CPU.
//! (measured: bench/RESULTS.md, "Sixth session")
//!
//! [`CoalescingIo`] copies writes into one buffer of up to [`CAPACITY`]
//! bytes, and when the buffer is full sends it together with the next write
//! in one `writev`. A flush right after new bytes came in waits for one turn
//! of the connection's thread: it wakes its own task and reports success,
//! and the task's next poll, when h2 (or hyper's HTTP/1.1 side) has found
//! nothing more to write and flushes again, writes the buffer out. So the
//! frames of every stream that had something to send in that turn leave in
//! one write, and a lone frame waits no longer than one pass of the thread's
//! run queue. Shutting down writes everything out first.
//!
//! Memory: the buffer is allocated when a write comes and freed each time it
//! is written out on a flush, so an idle connection holds none.
//!
//! A connection that becomes something else than HTTP (a WebSocket after
//! `101 Switching Protocols`) is written by code that flushes once and
//! does not come back: its [`Unbuffered`] switch, set before the 101
//! leaves, makes every flush write out at once from then on.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes held back: a full loopback segment. Larger writes, or the
/// write that does not fit, go out at once together with what is held.
pub const CAPACITY: usize = 64 * 1024;

/// How many flushes in a row may be put off while new bytes keep coming
/// between them, so a connection written to on every turn of its thread
/// still sends within a few turns.
const MAX_DEFERRALS: u8 = 8;

/// The most slices passed to one `writev` (the buffer and the caller's).
const MAX_SLICES: usize = 16;

/// A connection's switch that turns the putting off of flushes off for
/// good (see the module documentation). Handlers find it among a
/// request's extensions.
#[derive(Debug, Clone, Default)]
pub struct Unbuffered(Arc<AtomicBool>);

impl Unbuffered {
    /// From now on, every flush of the connection writes out at once.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Unbuffered::set`] was called.
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// An I/O object whose writes are gathered (see the module documentation);
/// reads pass straight through.
pub struct CoalescingIo<T> {
    /// The socket (or TLS stream) written to.
    inner: T,
    /// Set when the connection stops being HTTP: flushes are no longer
    /// put off.
    unbuffered: Unbuffered,
    /// Bytes accepted from the writer and not yet written to `inner`, from
    /// `start` on.
    buffer: Vec<u8>,
    /// Where the unwritten bytes of `buffer` begin, after a partial write.
    start: usize,
    /// Whether bytes were added to the buffer since the last flush: only
    /// then is a flush put off, since only then may more be on the way.
    added_since_flush: bool,
    /// Flushes put off since the buffer was last written out.
    deferrals: u8,
}

impl<T> CoalescingIo<T> {
    /// Gathers writes to `inner` until `unbuffered` is set.
    pub fn with_switch(inner: T, unbuffered: Unbuffered) -> CoalescingIo<T> {
        CoalescingIo {
            inner,
            unbuffered,
            buffer: Vec::new(),
            start: 0,
            added_since_flush: false,
            deferrals: 0,
        }
    }

    /// The bytes waiting to be written.
    fn held(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    /// Marks `written` held bytes as sent.
    fn consume(&mut self, written: usize) {
        self.start += written;
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
            self.deferrals = 0;
        }
    }

    /// Copies `bufs` into the buffer; the caller has checked that they fit.
    fn hold(&mut self, bufs: &[IoSlice<'_>]) {
        if self.start > 0 {
            // Only after a partial write: keep the buffer within its size.
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(CAPACITY);
        }
        for buf in bufs {
            self.buffer.extend_from_slice(buf);
        }
        self.added_since_flush = true;
    }
}

impl<T: AsyncWrite + Unpin> CoalescingIo<T> {
    /// Writes every held byte to `inner`.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held().is_empty() {
            let held = &self.buffer[self.start..];
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, held))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume(written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescingIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            if this.held().len() + total <= CAPACITY {
                this.hold(bufs);
                return Poll::Ready(Ok(total));
            }
            // It does not fit: what is held and the new bytes go out
            // together, in one writev, without copying the new bytes.
            let held = this.held().len();
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            let new = bufs.iter().filter(|buf| !buf.is_empty());
            // The buffer's field, not `held()`: `inner` is borrowed too.
            for slice in std::iter::once(IoSlice::new(&this.buffer[this.start..]))
                .filter(|_| held > 0)
                .chain(new.copied())
                .take(MAX_SLICES)
            {
                slices[count] = slice;
                count += 1;
            }
            let written =
                ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.consume(written.min(held));
            if written > held {
                return Poll::Ready(Ok(written - held));
            }
            // Only held bytes went: try again, the new ones may fit now.
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.added_since_flush
            && this.deferrals < MAX_DEFERRALS
            && !this.held().is_empty()
            && !this.unbuffered.is_set()
        {
            // More may come in this turn of the thread: flush on the next
            // poll, which this wake makes sure happens.
            this.added_since_flush = false;
            this.deferrals += 1;
            cx.waker().wake_by_ref();
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_write_out(cx))?;
        this.added_since_flush = false;
        // Written out: give the buffer back, so a connection between bursts
        // holds none. A busy one takes a new one on its next write, which
        // costs an allocation per few frames, not 64 KiB per idle socket.
        this.buffer = Vec::new();
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescingIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    /// The socket's side, as the tests see it: every byte written, and how
    /// many write calls brought them. It takes at most `per_call` bytes a
    /// call, and answers every `pending_every`-th call with Pending (and a
    /// wake, as a socket that drains at once), to exercise partial writes.
    #[derive(Default)]
    struct Socket {
        bytes: Vec<u8>,
        calls: usize,
        per_call: usize,
        pending_every: usize,
        flushes: usize,
    }

    impl Socket {
        /// Takes what this call may of `bufs`.
        fn accept(
            &mut self,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.pending_every > 0 && self.calls.is_multiple_of(self.pending_every) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let mut room = if self.per_call == 0 {
                usize::MAX
            } else {
                self.per_call
            };
            let before = self.bytes.len();
            for buf in bufs {
                let take = buf.len().min(room);
                self.bytes.extend_from_slice(&buf[..take]);
                room -= take;
            }
            Poll::Ready(Ok(self.bytes.len() - before))
        }
    }

    impl AsyncWrite for Socket {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().accept(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().accept(cx, bufs)
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Counts the wakes of the task the tests poll as.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A writer over a fresh socket, and the waker the tests poll with.
    fn writer(socket: Socket) -> (CoalescingIo<Socket>, Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        (
            CoalescingIo::with_switch(socket, Unbuffered::default()),
            wakes,
            waker,
        )
    }

    /// Writes all of `bytes`, polling again while the socket says Pending.
    fn write_all(io: &mut CoalescingIo<Socket>, waker: &Waker, mut bytes: &[u8]) {
        let mut cx = Context::from_waker(waker);
        while !bytes.is_empty() {
            if let Poll::Ready(written) = Pin::new(&mut *io).poll_write(&mut cx, bytes) {
                bytes = &bytes[written.unwrap()..];
            }
        }
    }

    fn flush(io: &mut CoalescingIo<Socket>, waker: &Waker) {
        let mut cx = Context::from_waker(waker);
        while Pin::new(&mut *io).poll_flush(&mut cx).is_pending() {}
    }

    #[test]
    fn a_flush_after_new_bytes_waits_one_turn_and_wakes_the_task() {
        let (mut io, wakes, waker) = writer(Socket::default());
        write_all(&mut io, &waker, b"frame one,");
        flush(&mut io, &waker);
        write_all(&mut io, &waker, b"frame two");
        flush(&mut io, &waker);
        // Both flushes were put off, and each woke the task to come back.
        assert_eq!(io.inner.bytes, b"");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        // The task's next poll finds nothing new and flushes: one write.
        flush(&mut io, &waker);
        assert_eq!(io.inner.bytes, b"frame one,frame two");
        assert_eq!(io.inner.calls, 1);
        assert_eq!(io.inner.flushes, 1);
        // A quiet connection holds no buffer.
        assert_eq!(io.buffer.capacity(), 0);
    }

    #[test]
    fn bytes_that_do_not_fit_leave_with_what_is_held_in_one_write() {
        let (mut io, _, waker) = writer(Socket::default());
        let held = vec![1u8; CAPACITY - 10];
        write_all(&mut io, &waker, &held);
        assert_eq!(io.inner.calls, 0);
        write_all(&mut io, &waker, &[2u8; 20]);
        assert_eq!(io.inner.calls, 1);
        assert_eq!(io.inner.bytes.len(), CAPACITY + 10);
        assert!(io.held().is_empty());
    }

    #[test]
    fn a_write_larger_than_the_buffer_is_not_copied() {
        let (mut io, _, waker) = writer(Socket::default());
        write_all(&mut io, &waker, &vec![7u8; CAPACITY + 1]);
        assert_eq!(io.inner.calls, 1);
        assert_eq!(io.buffer.capacity(), 0);
    }

    #[test]
    fn flushes_are_put_off_a_bounded_number_of_times() {
        let (mut io, _, waker) = writer(Socket::default());
        for _ in 0..MAX_DEFERRALS {
            write_all(&mut io, &waker, b"x");
            flush(&mut io, &waker);
        }
        assert!(io.inner.bytes.is_empty());
        // New bytes again, but the task has put its flush off enough.
        write_all(&mut io, &waker, b"y");
        flush(&mut io, &waker);
        assert_eq!(io.inner.bytes.len(), MAX_DEFERRALS as usize + 1);
    }

    #[test]
    fn once_unbuffered_a_flush_writes_out_at_once() {
        let (mut io, wakes, waker) = writer(Socket::default());
        let switch = Unbuffered::default();
        io.unbuffered = switch.clone();
        switch.set();
        write_all(&mut io, &waker, b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut io).poll_flush(&mut cx).is_ready());
        assert_eq!(io.inner.bytes.len(), 36);
        assert_eq!(io.inner.flushes, 1);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "nothing was put off");
    }

    #[test]
    fn shutdown_writes_out_what_is_held() {
        let (mut io, _, waker) = writer(Socket::default());
        write_all(&mut io, &waker, b"last words");
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut io).poll_shutdown(&mut cx).is_ready());
        assert_eq!(io.inner.bytes, b"last words");
    }

    /// One thing a connection does to its socket.
    #[derive(Debug, Clone)]
    enum Op {
        Write(usize),
        Vectored(Vec<usize>),
        Flush,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3 * CAPACITY / 2).prop_map(Op::Write),
            2 => prop::collection::vec(0..CAPACITY / 2, 0..5).prop_map(Op::Vectored),
            3 => Just(Op::Flush),
        ]
    }

    proptest! {
        /// Whatever the writes, flushes, partial writes and Pendings, the
        /// socket gets every byte once, in order, and the buffer never
        /// holds more than its size.
        #[test]
        fn every_byte_arrives_once_in_order(
            ops in prop::collection::vec(op(), 1..40),
            per_call in prop_oneof![Just(0usize), 1..CAPACITY * 2],
            pending_every in prop_oneof![Just(0usize), 2usize..5],
        ) {
            let socket = Socket { per_call, pending_every, ..Socket::default() };
            let (mut io, _, waker) = writer(socket);
            let mut cx = Context::from_waker(&waker);
            let mut sent = Vec::new();
            let mut next = 0u8;
            let mut fill = |len: usize| -> Vec<u8> {
                (0..len).map(|_| { next = next.wrapping_add(1); next }).collect()
            };
            for op in ops {
                match op {
                    Op::Write(len) => {
                        let bytes = fill(len);
                        write_all(&mut io, &waker, &bytes);
                        sent.extend_from_slice(&bytes);
                    }
                    Op::Vectored(lens) => {
                        let parts: Vec<Vec<u8>> = lens.into_iter().map(&mut fill).collect();
                        let whole = parts.concat();
                        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
                        // Accepts a prefix: send the rest with plain writes.
                        let written = loop {
                            if let Poll::Ready(written) = Pin::new(&mut io).poll_write_vectored(&mut cx, &slices) {
                                break written.unwrap();
                            }
                        };
                        write_all(&mut io, &waker, &whole[written..]);
                        sent.extend_from_slice(&whole);
                    }
                    Op::Flush => flush(&mut io, &waker),
                }
                prop_assert!(io.held().len() <= CAPACITY);
            }
            while Pin::new(&mut io).poll_shutdown(&mut cx).is_pending() {}
            prop_assert!(io.inner.bytes == sent);
        }
    }
}
