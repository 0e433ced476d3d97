//! The listener's connections: at most `http.max_connections` at once (further ones wait in
//! the kernel's queue until one closes), each served over HTTP/1.1 and closed when its clock
//! runs out (`http.header_timeout`, `http.idle_timeout`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{debug, error, warn};

use super::conn_clock::{Clock, Clocked};
use crate::config::HttpLimits;

/// How often, at most, the listener logs that it is full.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Accepts and serves connections until the process ends.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut warned_full: Option<Instant> = None;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned_full.is_none_or(|t| t.elapsed() >= FULL_WARNING_EVERY) {
                    warn!(
                        max_connections = limits.max_connections,
                        "the HTTP listener holds http.max_connections connections; \
                         new ones wait until one closes"
                    );
                    warned_full = Some(Instant::now());
                }
                slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed")
            }
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                ) {
                    // Out of file descriptors, most likely: give connections time to close.
                    error!(error = %e, "the HTTP listener cannot accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        tokio::spawn(serve_connection(stream, app.clone(), limits, slot));
    }
}

/// Serves one connection until the client closes it or its clock runs out; its slot frees
/// when it ends.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: HttpLimits,
    _slot: OwnedSemaphorePermit,
) {
    let clock = Arc::new(Clock::new(limits.header_timeout, limits.idle_timeout));
    let io = TokioIo::new(Clocked {
        io: stream,
        clock: clock.clone(),
    });
    let service = Timed {
        inner: TowerToHyperService::new(app),
        clock: clock.clone(),
    };
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::select! {
        ended = connection => {
            if let Err(e) = ended {
                debug!(error = %e, "an HTTP connection ended with an error");
            }
        }
        setting = clock.run_out() => debug!(setting, "closed an HTTP connection that waited too long"),
    }
}

/// The router, telling the connection's clock when a request's handler starts and ends.
struct Timed {
    inner: TowerToHyperService<Router>,
    clock: Arc<Clock>,
}

type Answer = Response<axum::body::Body>;

impl hyper::service::Service<Request<Incoming>> for Timed {
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.clock.request_began();
        let answer = self.inner.call(request);
        let clock = self.clock.clone();
        Box::pin(async move {
            let answer = answer.await;
            clock.request_answered();
            answer
        })
    }
}
