//! The standard gRPC health service, `grpc.health.v1.Health`, which load
//! balancers, Kubernetes probes and `grpc_health_probe` ask. The server as a
//! whole (service `""`) and the API (`lienthong.v1.Exchange`) share one
//! status: NOT_SERVING until the store is open, SERVING while requests are
//! taken, NOT_SERVING again from the moment shutdown starts, before
//! requests in flight are drained.
//!
//! It is served on the API's port (client certificate required, like
//! everything there) and, with `serve --health ADDR`, alone on a plain-text
//! port without client certificates, for probes that have none
//! ([`serve_plain`]; README, "Health checks and reflection").
//!
//! The protocol's types are tonic-health's; the service is not its
//! `HealthReporter`, whose Watch streams never end: graceful shutdown waits
//! for every open request, so one watching client would hold it up for
//! ever. Here a Watch ends once it has said NOT_SERVING at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The services whose status is known: the server as a whole, and the API.
const SERVICES: [&str; 2] = ["", crate::pb::exchange_server::SERVICE_NAME];

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Serving,
    Stopping,
}

/// The server's health, set by [`crate::server`] and read by every health
/// service it serves (on the API's port and on the plain one).
#[derive(Clone)]
pub struct HealthState {
    phase: Arc<watch::Sender<Phase>>,
}

impl Default for HealthState {
    fn default() -> HealthState {
        HealthState::new()
    }
}

impl HealthState {
    /// NOT_SERVING, until [`HealthState::serving`].
    pub fn new() -> HealthState {
        HealthState {
            phase: Arc::new(watch::channel(Phase::Starting).0),
        }
    }

    /// The store is open and the API takes requests.
    pub fn serving(&self) {
        self.phase.send_replace(Phase::Serving);
    }

    /// Shutdown has started: NOT_SERVING from now on, and every Watch ends
    /// once it has said so.
    pub fn stopping(&self) {
        self.phase.send_replace(Phase::Stopping);
    }

    /// The gRPC service, to add to a server.
    pub fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService {
            phase: self.phase.subscribe(),
        })
    }
}

/// `grpc.health.v1.Health` over a [`HealthState`].
pub struct HealthService {
    phase: watch::Receiver<Phase>,
}

/// The status of `service` in `phase`; `None` for a service this server
/// does not have.
fn status(service: &str, phase: Phase) -> Option<ServingStatus> {
    if !SERVICES.contains(&service) {
        return None;
    }
    Some(match phase {
        Phase::Serving => ServingStatus::Serving,
        Phase::Starting | Phase::Stopping => ServingStatus::NotServing,
    })
}

fn answer(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        match status(service, *self.phase.borrow()) {
            Some(status) => Ok(Response::new(answer(status))),
            None => Err(Status::not_found(format!(
                "no service named {service:?} here: ask for \"\" (the server) or {:?}",
                SERVICES[1]
            ))),
        }
    }

    type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;

    /// The status now, then each change; for an unknown service,
    /// SERVICE_UNKNOWN once, as the protocol asks. Ends after shutdown
    /// starts, once NOT_SERVING has been sent.
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let mut phase = self.phase.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let mut said = None;
            loop {
                let now = *phase.borrow_and_update();
                let status = status(&service, now).unwrap_or(ServingStatus::ServiceUnknown);
                if said != Some(status) {
                    if tx.send(Ok(answer(status))).await.is_err() {
                        return; // the watcher left
                    }
                    said = Some(status);
                }
                if now == Phase::Stopping || phase.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The plain-text health port (`serve --health ADDR`): only
/// `grpc.health.v1.Health`, over HTTP/2 without TLS (h2c), no client
/// certificate asked for. It tells nothing but the server's status.
pub struct HealthPort {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// A probe answers within milliseconds; anything slower only holds a place.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `health` on `listener` until [`HealthPort::stop`] (or until the
/// port is dropped).
pub fn serve_plain(
    listener: tokio::net::TcpListener,
    health: &HealthState,
) -> std::io::Result<HealthPort> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .timeout(PROBE_TIMEOUT)
        .max_concurrent_streams(16)
        .http2_keepalive_interval(Some(PROBE_TIMEOUT))
        .http2_keepalive_timeout(Some(PROBE_TIMEOUT))
        .add_service(health.service());
    let task = tokio::spawn(
        router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), until(stopped)),
    );
    Ok(HealthPort { addr, stop, task })
}

async fn until(stopped: tokio::sync::oneshot::Receiver<()>) {
    // A dropped sender stops the port too.
    let _ = stopped.await;
}

impl HealthPort {
    /// Stops taking connections and waits for those open to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the health port"),
            Err(e) => tracing::warn!(error = %e, "the health port's task"),
        }
    }
}
