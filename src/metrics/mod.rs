//! Prometheus metrics, off unless `serve --metrics ADDR` asks for them:
//! every instrument of the service in one place, behind a narrow
//! interface — a tower layer that times and counts each gRPC call
//! ([`layer`]), a commit listener that counts flushes and deliveries
//! ([`Metrics::observe`]), a counter for each admission limit that bites
//! ([`Metrics::admission_refused`]), and the gauges read when Prometheus
//! scrapes ([`scrape`]), served as text on plain HTTP ([`endpoint`]).
//!
//! # What they show, and what they never do
//!
//! Counts, durations and sizes only; the only names in them are gRPC
//! method names, admission limits and organisation codes (at most the
//! directory's few dozen: a bounded number of series). No document
//! content, subject, number or id, and no key material.
//!
//! # Cost on the send path
//!
//! A counter is an atomic increment; a histogram takes a short lock; each
//! call looks its series up in a map under a read lock. That is a few
//! hundred nanoseconds against the milliseconds of a send's signature
//! check and fsync (README, "Metrics", measures it).
//!
//! The gRPC names follow the common convention of gRPC servers
//! (`grpc_server_handled_total{grpc_service, grpc_method, grpc_code}`,
//! `grpc_server_handling_seconds`), so that existing dashboards work.

pub mod endpoint;
pub mod layer;
pub mod scrape;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::directory::OrgCode;
use crate::store::{CommitListener, EventKind, StoredEvent};

pub use endpoint::MetricsEndpoint;
pub use layer::RequestLayer;
pub use scrape::Sources;

/// The organisation that made a request, as the admission layer found it
/// from the client certificate; put on the response for [`layer`].
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Option<OrgCode>);

/// An organisation as a label value: its code, or `unknown` for a
/// certificate that names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Org(Option<OrgCode>);

impl EncodeLabelValue for Org {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        match &self.0 {
            Some(code) => encoder.write_str(code.as_str()),
            None => encoder.write_str("unknown"),
        }
    }
}

/// A gRPC status code as a label value, spelled as gRPC's own servers
/// spell it (`OK`, `InvalidArgument`, `ResourceExhausted`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GrpcCode(tonic::Code);

impl EncodeLabelValue for GrpcCode {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        use tonic::Code as C;
        encoder.write_str(match self.0 {
            C::Ok => "OK",
            C::Cancelled => "Canceled",
            C::Unknown => "Unknown",
            C::InvalidArgument => "InvalidArgument",
            C::DeadlineExceeded => "DeadlineExceeded",
            C::NotFound => "NotFound",
            C::AlreadyExists => "AlreadyExists",
            C::PermissionDenied => "PermissionDenied",
            C::ResourceExhausted => "ResourceExhausted",
            C::FailedPrecondition => "FailedPrecondition",
            C::Aborted => "Aborted",
            C::OutOfRange => "OutOfRange",
            C::Unimplemented => "Unimplemented",
            C::Internal => "Internal",
            C::Unavailable => "Unavailable",
            C::DataLoss => "DataLoss",
            C::Unauthenticated => "Unauthenticated",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Rpc {
    grpc_service: String,
    grpc_method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Handled {
    grpc_service: String,
    grpc_method: String,
    grpc_code: GrpcCode,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Accepted {
    org: Org,
    grpc_method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Refused {
    org: Org,
    grpc_method: &'static str,
    grpc_code: GrpcCode,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Recipient {
    org: Org,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Limit {
    limit: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

/// From a millisecond to a minute: a send takes about one to thirty
/// milliseconds, a year's explanation of a busy commune up to a minute
/// (README, "Measured").
const LATENCY_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every instrument, and the registry that writes them out.
pub struct Metrics {
    registry: Registry,
    handled: Family<Handled, Counter>,
    handling: Family<Rpc, Histogram, fn() -> Histogram>,
    accepted: Family<Accepted, Counter>,
    refused: Family<Refused, Counter>,
    deliveries: Family<Recipient, Counter>,
    admission: Family<Limit, Counter>,
    batch: Histogram,
    sync: Histogram,
    gauges: scrape::Gauges,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        let handled = Family::<Handled, Counter>::default();
        registry.register(
            "grpc_server_handled",
            "gRPC calls completed, by method and status code",
            handled.clone(),
        );
        let handling: Family<Rpc, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "grpc_server_handling",
            "Time from a call's arrival to its response headers (for a stream: to its opening)",
            Unit::Seconds,
            handling.clone(),
        );
        let accepted = Family::<Accepted, Counter>::default();
        registry.register(
            "lienthong_documents_accepted",
            "Documents accepted (Send, RecordPaper answered OK), by the sending organisation; a repeat of an idempotent send counts again",
            accepted.clone(),
        );
        let refused = Family::<Refused, Counter>::default();
        registry.register(
            "lienthong_documents_refused",
            "Documents refused (Send, RecordPaper answered with an error), by the sending organisation and status code",
            refused.clone(),
        );
        let deliveries = Family::<Recipient, Counter>::default();
        registry.register(
            "lienthong_deliveries",
            "Documents delivered into a mailbox, durable, by the recipient organisation",
            deliveries.clone(),
        );
        let admission = Family::<Limit, Counter>::default();
        registry.register(
            "lienthong_admission_refusals",
            "Connections and requests refused or cut because a limit bit, by the option that sets the limit",
            admission.clone(),
        );
        let batch = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "lienthong_commit_batch_writes",
            "Writes (sends, status changes, checkpoints) made durable by one sync of the group commit",
            batch.clone(),
        );
        let sync = Histogram::new(exponential_buckets(0.000_25, 2.0, 14));
        registry.register_with_unit(
            "lienthong_commit_sync",
            "Time of one sync (fsync) of the group commit",
            Unit::Seconds,
            sync.clone(),
        );
        registry.register(
            "lienthong_build",
            "The running build",
            Info::new(Version {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let gauges = scrape::Gauges::register(&mut registry);
        Arc::new(Metrics {
            registry,
            handled,
            handling,
            accepted,
            refused,
            deliveries,
            admission,
            batch,
            sync,
            gauges,
        })
    }

    /// Counts a connection or request that `limit` (the option that sets
    /// it) refused or cut.
    pub fn admission_refused(&self, limit: &'static str) {
        self.admission.get_or_create(&Limit { limit }).inc();
    }

    /// The tower layer that times and counts each gRPC call.
    pub fn layer(self: &Arc<Self>) -> RequestLayer {
        RequestLayer::new(self.clone())
    }

    /// `listener`, with each durable batch counted on the way.
    pub fn observe<L: CommitListener>(self: &Arc<Self>, listener: L) -> Observed<L> {
        Observed {
            listener,
            metrics: self.clone(),
        }
    }
}

/// A commit listener that counts each durable batch, then passes it on.
pub struct Observed<L> {
    listener: L,
    metrics: Arc<Metrics>,
}

impl<L: CommitListener> CommitListener for Observed<L> {
    fn committed(&self, events: Vec<StoredEvent>) {
        for event in &events {
            if event.kind == EventKind::DocumentArrived as i32 {
                let org = Org(OrgCode::parse(&event.org));
                self.metrics
                    .deliveries
                    .get_or_create(&Recipient { org })
                    .inc();
            }
        }
        self.listener.committed(events);
    }

    fn synced(&self, jobs: usize, sync: Duration) {
        self.metrics.batch.observe(jobs as f64);
        self.metrics.sync.observe(sync.as_secs_f64());
    }
}
