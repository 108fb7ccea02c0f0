//! A small HTTP/1.1 server beside the gRPC one, for the dashboard and the
//! metrics endpoint: an accept loop that hands each connection to its
//! owner, hyper on each connection with a deadline for the request
//! headers, and a stop that lets the requests in flight finish.
//!
//! hyper and tokio only, both already built for tonic; no web framework.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A client that has not sent its request headers by then is dropped, so
/// that idle or slow connections cannot hold the server.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Tells a connection that its server is stopping.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Returns once the server is told to stop (or its handle is gone).
    pub async fn stopped(&mut self) {
        // The guard wait_for returns is not Send: drop it here.
        let _ = self.0.wait_for(|stopped| *stopped).await.map(|_| ());
    }
}

impl HttpServer {
    /// Accepts on `listener` until [`HttpServer::stop`], handing each
    /// connection to `connection`; `name` says whose it is in the log.
    pub fn start<C, F>(
        listener: TcpListener,
        name: &'static str,
        connection: C,
    ) -> std::io::Result<HttpServer>
    where
        C: Fn(TcpStream, Stop) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept(listener, name, connection, Stop(stopped)));
        Ok(HttpServer { addr, stop, task })
    }

    /// Stops accepting, lets the requests in flight finish, closes every
    /// connection, and returns when all of that is done.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept<C, F>(listener: TcpListener, name: &'static str, connection: C, mut stop: Stop)
where
    C: Fn(TcpStream, Stop) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.stopped() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, stop.clone()));
                }
                // Out of file descriptors and the like: the next accept
                // may succeed; the log says why this one did not.
                Err(e) => tracing::warn!(error = %e, "{name}: accepting a connection"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Serves HTTP/1.1 on one connection with `service` until the client
/// closes it or the server stops.
pub async fn serve<I, S, R>(io: I, name: &'static str, service: S, mut stop: Stop)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: Fn(Request<Incoming>) -> R + Send + Sync + 'static,
    R: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let answer = service(request);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    tokio::select! {
        done = served.as_mut() => {
            if let Err(e) = done {
                tracing::debug!(error = %e, "{name}: connection");
            }
        }
        _ = stop.stopped() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}
