//! lienthong ("liên thông văn bản"): signs, routes and archives official
//! documents between the departments and communes of a district People's
//! Committee, over mutually authenticated gRPC.
//!
//! # Layout
//!
//! Each module uses only modules listed *after* it: the command line sits on
//! top, the leaves (`crypto`, `calendar`, `clock`, `error`, `pb`) at the
//! bottom. The test `layout` in `tests/it` reads this list and every
//! `crate::` path in `src/`, and fails on an arrow that points up.
//!
//! - [`cli`]: the `lienthong` command, one file per command group: `serve`
//!   and `config` (its configuration: flags, environment, file),
//!   and the client commands (`send`, `inbox`, `outbox`, `show`, `register`,
//!   `watch`, `verify`, `directory`, `archive`, `pki`, `bench`, `fill`,
//!   `report`, `demo`), and the operator's (`backup`, `restore`, `reload`,
//!   `migrate`).
//! - [`compare`] (feature `jetstream`): the bench's workloads against NATS
//!   JetStream.
//! - [`bench`]: the load generator behind `lienthong bench`, and the
//!   machine's ceiling.
//! - [`demo`]: `lienthong demo`: a year of Hữu Lũng's exchange through the
//!   real API, for showing the service.
//! - [`fill`]: `lienthong fill`: signed documents straight into a stopped
//!   server's store, for measuring at scale.
//! - [`migrate`]: `lienthong migrate`: a stopped server's embedded store
//!   copied into PostgreSQL, entry for entry, and the copy verified.
//! - [`process`]: a `lienthong serve` child process with a readiness signal,
//!   for `bench` and the tests.
//! - [`client`]: connecting and building requests, shared by the command
//!   line, tests and benchmarks.
//! - [`server`]: assembles directory, certificates, store and gRPC service
//!   (and the dashboard and the metrics, if asked for), and shuts them down
//!   in order.
//! - [`health`]: the standard gRPC health service over the server's life,
//!   and the plain-text health port for probes without a certificate.
//! - [`admission`]: what the server lets in: connection caps, handshake and
//!   idle deadlines before authentication; byte budgets and a send rate per
//!   organisation after it; warnings when a limit bites.
//! - [`metrics`]: `serve --metrics`: Prometheus metrics — a layer that
//!   times and counts each gRPC call, the group commit's batches and syncs,
//!   deliveries, admission refusals, and gauges read at each scrape — on
//!   plain HTTP.
//! - [`dashboard`]: `serve --http`: the report at a glance and each
//!   document's page as server-rendered HTML and SVG; plain HTTP on
//!   loopback, HTTPS with client certificates elsewhere.
//! - [`http_server`]: the small HTTP/1.1 server under the dashboard and
//!   the metrics: accept loop, header deadline, graceful stop.
//! - [`api`]: the tonic handlers. Thin: authenticate the caller from its
//!   certificate, unpack, call the domain, map errors. `Exchange` for
//!   organisations, `Operations` for operators.
//! - [`backup`]: the online backup of a running server from a snapshot of
//!   its store, the backup file's format, and the offline restore.
//! - [`reload`]: reading the TLS certificate, client CA and signing-key
//!   registry again in a running server (SIGHUP, `lienthong reload`).
//! - [`tls`]: the server's TLS configuration from its files, replaceable
//!   while it runs, and the listener that does the handshakes.
//! - [`archive`]: the archive's read side — checkpoints, inclusion and
//!   consistency proofs for a document's parties, proof files — and the
//!   offline audit.
//! - [`paper`]: recording a document that came or went on paper, for the
//!   caller's own organisation, numbered and archived like any other.
//! - [`report`]: the report toward the electronic-exchange target, per
//!   organisation and for the district, from the store's monthly counters.
//! - [`tracking`]: following a document after sending: recipients' signed
//!   status changes and answers, the sender's revocation, its history.
//! - [`deadlines`]: what each recipient must still register or handle, late
//!   or due soon, by working days; the district's view for its committee.
//! - [`register`]: the registers of Decree 30 — the incoming and outgoing
//!   registers of a year — and the unread part of an inbox, most urgent
//!   first.
//! - [`notify`]: live mailbox events: replay from the store, then live,
//!   without gap or duplicate; heartbeats; cutting off slow readers.
//! - [`transfer`]: large attachments, streamed: uploads in chunks that
//!   resume from the last durable byte, quotas per attachment and per
//!   organisation, the clean-up of what is left, ranged downloads.
//! - [`exchange`]: the domain rules of sending and reading: the sender is the
//!   caller, recipients are expanded, attachments must match, a document is
//!   visible to its parties only.
//! - [`evidence`]: what `show --save` writes — attachments, and the proof
//!   apart from them, never through a symbolic link — and `verify` checks
//!   offline.
//! - [`receipt`]: the service key; the signed receipt of each accepted
//!   document, its archive leaf, and signed checkpoints (the store's
//!   `Sealer`).
//! - [`pki`]: the development PKI, and reading an organisation from a
//!   client certificate.
//! - [`store`]: durable storage behind a narrow interface: the rules of a
//!   commit written once over an engine-neutral transaction, group commit,
//!   and the engines (sled, the embedded default; PostgreSQL). The only module that knows how anything
//!   is stored.
//! - [`keys`]: the registry of organisations' signing keys and their
//!   validity.
//! - [`document`]: decoding and checking a document header (edXML fields,
//!   the 29 types and clerical rules of Decree 30), and the text rules of
//!   anything signed.
//! - [`directory`]: organisations, their codes and aliases, and groups.
//! - [`lifecycle`]: the rules of a document's life after sending: which
//!   status may follow which, and when a document is frozen.
//! - [`merkle`]: the RFC 9162 Merkle tree over stored perfect subtrees, and
//!   proof verification.
//! - [`crypto`]: signing and verifying with ring; key ids; the exact bytes
//!   that are signed.
//! - [`defaults`]: the embedded defaults, used by the command line, the
//!   server's configuration and stated in the README.
//! - [`calendar`]: working days — Monday to Friday less each year's public
//!   holidays from configuration — and the registration deadline.
//! - [`clock`]: Vietnam time, in which years and dates are counted.
//! - [`error`]: the one error type, mapped to gRPC statuses in one place.
//! - [`pb`]: code generated from `proto/lienthong/v1/exchange.proto`.

pub mod admission;
pub mod api;
pub mod archive;
pub mod backup;
pub mod bench;
pub mod calendar;
pub mod cli;
pub mod client;
pub mod clock;
#[cfg(feature = "jetstream")]
pub mod compare;
pub mod crypto;
pub mod dashboard;
pub mod deadlines;
pub mod defaults;
pub mod demo;
pub mod directory;
pub mod document;
pub mod error;
pub mod evidence;
pub mod exchange;
pub mod fill;
pub mod health;
pub mod http_server;
pub mod keys;
pub mod lifecycle;
pub mod merkle;
pub mod metrics;
pub mod migrate;
pub mod notify;
pub mod paper;
pub mod pki;
pub mod process;
pub mod receipt;
pub mod register;
pub mod reload;
pub mod report;
pub mod server;
pub mod store;
pub mod tls;
pub mod tracking;
pub mod transfer;

/// The `lienthong.v1` protobuf messages and gRPC stubs.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("lienthong.v1");

    /// The compiled `proto/` (with source comments), for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/lienthong_descriptor.bin"));
}
