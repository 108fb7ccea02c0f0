//! The tower layer, outermost in front of the gRPC service, that times each
//! call to its response headers and counts it once its status is known: in
//! the headers for an error answered at once, else in the trailers at the
//! end of the body; a body dropped before its trailers (the client went
//! away) counts as `Canceled`. Sends and paper records also count as
//! documents accepted or refused, by the organisation the admission layer
//! put on the response ([`super::Caller`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::{Accepted, Caller, GrpcCode, Handled, Metrics, Org, Refused, Rpc};
use crate::pb::exchange_server::SERVICE_NAME;

/// The calls that add a document.
const DOCUMENT_CALLS: [&str; 2] = ["Send", "RecordPaper"];

#[derive(Clone)]
pub struct RequestLayer {
    metrics: Arc<Metrics>,
}

impl RequestLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> RequestLayer {
        RequestLayer { metrics }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Measured<S> {
        Measured {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Measured<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The service and method of a request path, `/package.Service/Method`.
fn rpc_of(path: &str) -> Rpc {
    let (service, method) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .unwrap_or(("", path));
    Rpc {
        grpc_service: service.to_owned(),
        grpc_method: method.to_owned(),
    }
}

/// A path that names no service or method: one label for all of them, so
/// that a client cannot make a series per made-up name.
fn unknown() -> Rpc {
    Rpc {
        grpc_service: "unknown".into(),
        grpc_method: "unknown".into(),
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S> Service<http::Request<Body>> for Measured<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Answer<S::Error> {
        let started = Instant::now();
        let rpc = rpc_of(request.uri().path());
        // Call the service that poll_ready found ready; keep a fresh clone.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        let answer = ready.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let response = answer.await?;
            let now = status_of(response.headers());
            let rpc = if now == Some(Code::Unimplemented) {
                unknown()
            } else {
                rpc
            };
            metrics
                .handling
                .get_or_create(&rpc)
                .observe(started.elapsed().as_secs_f64());
            let caller = response.extensions().get::<Caller>().and_then(|c| c.0);
            let mut outcome = Outcome {
                metrics,
                rpc,
                caller,
                counted: false,
            };
            Ok(match now {
                Some(code) => {
                    outcome.count(code);
                    response
                }
                None => response.map(|body| {
                    Body::new(Watched {
                        body,
                        outcome: Some(outcome),
                    })
                }),
            })
        })
    }
}

/// A call whose status is not counted yet.
struct Outcome {
    metrics: Arc<Metrics>,
    rpc: Rpc,
    caller: Option<crate::directory::OrgCode>,
    counted: bool,
}

impl Outcome {
    fn count(&mut self, code: Code) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        let m = &self.metrics;
        let grpc_code = GrpcCode(code);
        let document_call = DOCUMENT_CALLS
            .into_iter()
            .find(|m| *m == self.rpc.grpc_method)
            .filter(|_| self.rpc.grpc_service == SERVICE_NAME);
        if let Some(grpc_method) = document_call {
            let org = Org(self.caller);
            if code == Code::Ok {
                m.accepted
                    .get_or_create(&Accepted { org, grpc_method })
                    .inc();
            } else {
                m.refused
                    .get_or_create(&Refused {
                        org,
                        grpc_method,
                        grpc_code,
                    })
                    .inc();
            }
        }
        // Counted once: the names can move into the label.
        m.handled
            .get_or_create(&Handled {
                grpc_service: std::mem::take(&mut self.rpc.grpc_service),
                grpc_method: std::mem::take(&mut self.rpc.grpc_method),
                grpc_code,
            })
            .inc();
    }
}

impl Drop for Outcome {
    /// A body dropped before its trailers: the client went away.
    fn drop(&mut self) {
        self.count(Code::Cancelled);
    }
}

/// A response body that counts its call when the trailers go out.
struct Watched {
    body: Body,
    outcome: Option<Outcome>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(|t| {
                // gRPC trailers always carry a status; none is an error.
                status_of(t).unwrap_or(Code::Unknown)
            }),
            Poll::Ready(Some(Err(status))) => Some(status.code()),
            Poll::Ready(None) => Some(Code::Unknown),
            Poll::Pending => None,
        };
        if let Some(code) = code {
            if let Some(mut outcome) = this.outcome.take() {
                outcome.count(code);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
