//! A deadline on a connection's first bytes.
//!
//! hyper-util's `auto` builder reads the start of every connection to tell
//! HTTP/2 from HTTP/1.1, and that read has no timeout of its own: a client
//! that connects and sends nothing (or a few bytes) held its socket, and a
//! descriptor, forever. [`SniffDeadline`] fails the connection's reads once
//! `header_read_timeout` has passed without the bytes the sniff needs. From
//! then on the protocols keep their own clocks: hyper's HTTP/1.1
//! `header_read_timeout` for a request head, HTTP/2's keep-alive pings for
//! a peer that went away.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The HTTP/2 connection preface: the sniff reads until the bytes differ
/// from it (HTTP/1.1) or all of it has arrived (HTTP/2).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An I/O object whose reads fail with `TimedOut` when the bytes that tell
/// the protocol have not arrived by the deadline: a byte that differs from
/// the HTTP/2 preface, or the whole preface. Writes pass straight through,
/// and once the protocol is known reads do too: the only cost left is one
/// branch per read.
#[derive(Debug)]
pub struct SniffDeadline<T> {
    /// The connection.
    inner: T,
    /// The deadline, until enough bytes have arrived; `None` after.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Bytes read so far (all of them matching the preface), while the
    /// deadline runs.
    read: usize,
}

impl<T> SniffDeadline<T> {
    /// `inner`, whose protocol must be known within `timeout`.
    pub fn new(inner: T, timeout: Duration) -> SniffDeadline<T> {
        SniffDeadline {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep_until(Instant::now() + timeout))),
            read: 0,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SniffDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(deadline) = this.deadline.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                let expected = &PREFACE[this.read.min(PREFACE.len())..];
                let n = new.len().min(expected.len());
                this.read += new.len();
                // End of file (nothing new) ends the connection anyway.
                if new.is_empty() || new[..n] != expected[..n] || this.read >= PREFACE.len() {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            // Polling the timer registers the waker, so the task wakes at
            // the deadline even if the client never sends another byte.
            Poll::Pending => match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent no request in time",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SniffDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
