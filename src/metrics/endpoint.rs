//! `GET /metrics` on plain HTTP, on its own listener (`serve --metrics
//! ADDR`): Prometheus scrapes without a client certificate. What it shows
//! is counts and organisation codes, never content (see [`super`]); bind
//! it to loopback, or to a network only Prometheus reaches (the pod
//! network in Kubernetes).
//!
//! The Prometheus text format (0.0.4) by default; OpenMetrics text when
//! the scraper asks for it in `Accept`, as Prometheus does.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::{prometheus_text, text};
use tokio::net::TcpListener;

use super::{Metrics, Sources};
use crate::http_server::{self, HttpServer};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running metrics endpoint.
pub struct MetricsEndpoint {
    pub addr: std::net::SocketAddr,
    server: HttpServer,
}

struct Shared {
    metrics: Arc<Metrics>,
    sources: Sources,
}

impl MetricsEndpoint {
    /// Serves `metrics`, with the gauges read from `sources` at each
    /// scrape, on `listener` until [`MetricsEndpoint::stop`].
    pub fn start(
        listener: TcpListener,
        metrics: Arc<Metrics>,
        sources: Sources,
    ) -> std::io::Result<MetricsEndpoint> {
        let shared = Arc::new(Shared { metrics, sources });
        let server = HttpServer::start(listener, "metrics", move |stream, stop| {
            let shared = shared.clone();
            let service = move |request| respond(shared.clone(), request);
            http_server::serve(TokioIo::new(stream), "metrics", service, stop)
        })?;
        Ok(MetricsEndpoint {
            addr: server.addr,
            server,
        })
    }

    /// Stops accepting and returns once the scrapes in flight are answered.
    pub async fn stop(self) {
        self.server.stop().await
    }
}

async fn respond(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET /metrics is served here\n".into(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n".into(),
        );
    }
    let openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    // The gauges read the store and the disk: off the async workers.
    let encoded = tokio::task::spawn_blocking(move || {
        shared.metrics.gauges.refresh(&shared.sources);
        let mut out = String::with_capacity(16 * 1024);
        let registry = &shared.metrics.registry;
        let written = if openmetrics {
            text::encode(&mut out, registry)
        } else {
            prometheus_text::encode(&mut out, registry)
        };
        written.map(|()| out)
    })
    .await;
    match encoded {
        Ok(Ok(body)) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            let content_type = if openmetrics {
                OPENMETRICS
            } else {
                prometheus_text::CONTENT_TYPE
            };
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Ok(Err(e)) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the metrics could not be written: {e}\n"),
        ),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the metrics were not read: {e}\n"),
        ),
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
