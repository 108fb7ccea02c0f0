//! The tower layer in front of the gRPC service. For each request it finds
//! the caller's organisation from the connection's client certificate
//! (once per connection), refuses a send over the organisation's rate,
//! charges the body to the byte budgets as it arrives, and counts the
//! request as in progress on its connection until the answer is sent.
//!
//! It also opens the request's log span, here because this is the one
//! place that sees every call with its caller: `request{org, rpc,
//! document_id}`, the document id recorded by the handler once it knows it
//! ([`crate::api`]). Every event logged while the request is handled
//! carries them.
//!
//! The answer carries the organisation for the metrics layer ([`Caller`]).
//!
//! A client stream (an upload, a batch of sends) is charged the same way,
//! but its handler gives back each message's bytes once done with it
//! ([`Admitted`], in the request's extensions), so a stream holds only what
//! is in memory; a batch takes one send from the rate per document.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;
use tower::{Layer, Service};
use tracing::Instrument;

use super::budget::{Budgets, Charge, ChargedBody};
use super::connection::{ConnectionInfo, OpenStream};
use super::rate::SendRate;
use super::{NetworkLimits, Warnings};
use crate::api::Admitted;
use crate::directory::{Directory, OrgCode};
use crate::metrics::Caller;
use crate::pb::exchange_server::SERVICE_NAME;
use crate::pki;

/// The calls that add a document, which the send rate counts.
const SENDS: [&str; 2] = ["Send", "RecordPaper"];

#[derive(Clone)]
pub struct AdmissionLayer {
    shared: Arc<Shared>,
}

struct Shared {
    budgets: Arc<Budgets>,
    rate: SendRate,
    per_minute: u32,
    stall: Duration,
    directory: Arc<Directory>,
    warnings: Arc<Warnings>,
}

impl AdmissionLayer {
    pub fn new(
        limits: &NetworkLimits,
        directory: Arc<Directory>,
        warnings: Arc<Warnings>,
    ) -> AdmissionLayer {
        AdmissionLayer {
            shared: Arc::new(Shared {
                budgets: Arc::new(Budgets::new(
                    limits.request_budget,
                    limits.org_request_budget,
                    warnings.clone(),
                )),
                rate: SendRate::new(limits.org_sends_per_minute, limits.org_send_burst),
                per_minute: limits.org_sends_per_minute,
                stall: limits.stall,
                directory,
                warnings,
            }),
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl Shared {
    /// The organisation's alias for messages, else its code.
    fn name(&self, org: Option<OrgCode>) -> String {
        match org {
            Some(code) => match self.directory.org_by_code(&code) {
                Some(o) => o.alias.clone(),
                None => code.to_string(),
            },
            None => "a caller whose certificate names no organisation".into(),
        }
    }

    fn is_send(path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|p| p.strip_prefix(SERVICE_NAME))
            .and_then(|p| p.strip_prefix('/'))
            .is_some_and(|method| SENDS.contains(&method))
    }

    /// RESOURCE_EXHAUSTED for a send over the rate, with the whole seconds
    /// until the next one is taken, in the message and in `retry-after`.
    fn too_many_sends(&self, who: &str, wait: Duration) -> Status {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let per_minute = self.per_minute;
        self.warnings.limit_bit("--org-sends-per-minute", || {
            format!("refused a send of {who}: over its {per_minute} documents a minute")
        });
        let mut status = Status::resource_exhausted(format!(
            "{who} sends more than {per_minute} documents a minute, the most one organisation may; retry in {seconds} s"
        ));
        status.metadata_mut().insert("retry-after", seconds.into());
        status
    }
}

/// The span of one request: the caller's organisation (when its
/// certificate names one), the call as `Service/Method` (the package left
/// out for the API's own), and an empty `document_id` for the handler.
fn request_span(path: &str, org: Option<&str>) -> tracing::Span {
    let rpc = path.trim_start_matches('/');
    let rpc = rpc.strip_prefix("lienthong.v1.").unwrap_or(rpc);
    let span = tracing::info_span!(
        "request",
        org = tracing::field::Empty,
        rpc,
        document_id = tracing::field::Empty
    );
    if let Some(org) = org {
        span.record("org", org);
    }
    span
}

/// The organisation a connection's client certificate names.
fn org_of(tls: &TlsConnectInfo<TcpConnectInfo>) -> Option<OrgCode> {
    let certs = tls.peer_certs()?;
    pki::org_from_certificate(certs.first()?).ok()
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S> Service<http::Request<Body>> for Admission<S>
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

    fn call(&mut self, mut request: http::Request<Body>) -> Answer<S::Error> {
        let shared = self.shared.clone();
        // The handlers read the certificates where tonic puts them.
        let (org, stream) = match request.extensions_mut().remove::<ConnectionInfo>() {
            Some(info) => {
                let org = info.state.org(|| org_of(&info.tls));
                let stream = info.state.stream_opened();
                request.extensions_mut().insert(info.tls.get_ref().clone());
                request.extensions_mut().insert(info.tls);
                (org, Some(stream))
            }
            None => (None, None),
        };
        let who = shared.name(org);
        let span = request_span(request.uri().path(), org.map(|_| who.as_str()));
        let _in_span = span.enter();
        if Shared::is_send(request.uri().path()) {
            if let Err(wait) = shared.rate.take(org) {
                let mut refused = shared.too_many_sends(&who, wait).into_http();
                refused.extensions_mut().insert(Caller(org));
                return Box::pin(async move { Ok(refused) });
            }
        }
        let charge = shared.budgets.charge(org, who.clone());
        let (given, rated) = (charge.clone(), shared.clone());
        request.extensions_mut().insert(Admitted {
            give_back: Arc::new(move |bytes| given.give_back(bytes)),
            take_send: Arc::new(move || {
                rated
                    .rate
                    .take(org)
                    .map_err(|wait| rated.too_many_sends(&who, wait))
            }),
        });
        let body_charge = charge.clone();
        let request =
            request.map(|body| Body::new(ChargedBody::new(body, body_charge, shared.stall)));
        // Call the service that poll_ready found ready; keep a fresh clone.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        let answer = ready.call(request);
        drop(_in_span);
        Box::pin(
            async move {
                let mut response = answer.await?;
                // Who asked, for the metrics layer outside this one.
                response.extensions_mut().insert(Caller(org));
                Ok(response.map(|body| {
                    Body::new(Answering {
                        body,
                        _held: (stream, charge),
                    })
                }))
            }
            .instrument(span),
        )
    }
}

/// A response body that keeps its request counted, and its bytes charged,
/// until it is sent or dropped.
struct Answering {
    body: Body,
    _held: (Option<OpenStream>, Arc<Charge>),
}

impl http_body::Body for Answering {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
