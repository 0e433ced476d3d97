//! A connection's clock: how long it may go on waiting for a client. Waiting for a request
//! (after the connection opens, or after an answer) is bounded by `idle_timeout`; a request
//! whose first byte has come must complete its line and headers within `header_timeout`
//! (a client sending them a byte at a time, or stalling half-way, is closed then); while a
//! handler runs the clock stops (the handler bounds its own body reads).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No byte of the next request yet.
    Waiting,
    /// Bytes of a request came; its headers are not complete yet.
    Receiving,
    /// The request is with its handler.
    Answering,
}

pub(super) struct Clock {
    phase: Mutex<(Phase, Instant)>,
    changed: Notify,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Clock {
    pub(super) fn new(header_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            phase: Mutex::new((Phase::Waiting, Instant::now())),
            changed: Notify::new(),
            header_timeout,
            idle_timeout,
        }
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().expect("not poisoned") = (phase, Instant::now());
        self.changed.notify_one();
    }

    /// Bytes came from the client: the first of a request starts the header clock.
    fn received(&self) {
        let mut phase = self.phase.lock().expect("not poisoned");
        if phase.0 == Phase::Waiting {
            *phase = (Phase::Receiving, Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A request's headers are complete: its handler runs.
    pub(super) fn request_began(&self) {
        self.set(Phase::Answering);
    }

    /// The handler answered: the connection waits for the next request.
    pub(super) fn request_answered(&self) {
        self.set(Phase::Waiting);
    }

    /// When the current wait runs out, with the setting that limits it.
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        let (phase, since) = *self.phase.lock().expect("not poisoned");
        match phase {
            Phase::Waiting => Some((since + self.idle_timeout, "http.idle_timeout")),
            Phase::Receiving => Some((since + self.header_timeout, "http.header_timeout")),
            Phase::Answering => None,
        }
    }

    /// Resolves, naming the setting, when the connection has waited longer than it may.
    pub(super) async fn run_out(&self) -> &'static str {
        loop {
            // A change while this loop is not waiting leaves a permit: nothing is missed.
            let changed = self.changed.notified();
            match self.deadline() {
                Some((at, setting)) if at <= Instant::now() => return setting,
                Some((at, _)) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = changed => {}
                },
                None => changed.await,
            }
        }
    }
}

/// A connection's stream that tells its clock when bytes come in.
pub(super) struct Clocked<T> {
    pub(super) io: T,
    pub(super) clock: Arc<Clock>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Clocked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.received();
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Clocked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    const SHORT: Duration = Duration::from_millis(20);
    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn waiting_for_a_request_is_bounded_by_the_idle_timeout() {
        let clock = Clock::new(LONG, SHORT);
        assert_eq!(clock.run_out().await, "http.idle_timeout");
    }

    #[tokio::test]
    async fn a_request_begun_is_bounded_by_the_header_timeout_not_the_idle_one() {
        let clock = Clock::new(SHORT, LONG);
        clock.received();
        clock.received();
        assert_eq!(clock.run_out().await, "http.header_timeout");
    }

    #[tokio::test]
    async fn a_handler_stops_the_clock_and_its_answer_restarts_the_idle_wait() {
        let clock = Arc::new(Clock::new(SHORT, SHORT));
        clock.received();
        clock.request_began();
        let answered = Arc::new(AtomicBool::new(false));
        let (c, a) = (clock.clone(), answered.clone());
        tokio::spawn(async move {
            tokio::time::sleep(SHORT * 10).await;
            a.store(true, Ordering::SeqCst);
            c.request_answered();
        });
        assert_eq!(clock.run_out().await, "http.idle_timeout");
        assert!(
            answered.load(Ordering::SeqCst),
            "ran out while the handler ran"
        );
    }
}
