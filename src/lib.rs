//! lienthong ("liên thông văn bản"): signs, routes and archives official
//! documents between the departments and communes of a district People's
//! Committee, over mutually authenticated gRPC.
//!
//! # Layout
//!
//! Requests flow from the top of this list to the bottom; each module only
//! calls those below it.
//!
//! - [`cli`]: the `lienthong` command, one file per command group: `serve`,
//!   and the client commands (`send`, `inbox`, `outbox`, `show`, `watch`,
//!   `verify`, `directory`, `archive`, `pki`, `bench`, `fill`).
//! - [`server`]: assembles directory, certificates, store and gRPC service,
//!   and shuts them down in order.
//! - [`api`]: the tonic handlers. Thin: authenticate the caller from its
//!   certificate, unpack, call the domain, map errors.
//! - [`exchange`]: the domain rules of sending and reading: the sender is the
//!   caller, recipients are expanded, attachments must match, a document is
//!   visible to its parties only.
//! - [`notify`]: live mailbox events: replay from the store, then live,
//!   without gap or duplicate; heartbeats; cutting off slow readers.
//! - [`evidence`]: the proof `show --save` writes and `verify` checks offline.
//! - [`receipt`]: the service key, and the signed receipt of each accepted
//!   document.
//! - [`keys`]: the registry of organisations' signing keys and their
//!   validity.
//! - [`document`]: decoding and checking a document header (edXML fields,
//!   the 29 types and clerical rules of Decree 30).
//! - [`directory`]: organisations, their codes and aliases, and groups.
//! - [`store`]: sled, its key layout, and group commit. The only module that
//!   knows how anything is stored.
//! - [`pki`]: the development PKI, and reading an organisation from a
//!   client certificate.
//! - [`crypto`]: signing and verifying with ring; key ids; the exact bytes
//!   that are signed.
//! - [`client`]: connecting (as an organisation of a PKI folder), paging
//!   and building requests, shared by the command line, tests and
//!   benchmarks.
//! - [`process`]: a `lienthong serve` child process with a readiness signal,
//!   for `bench` and the tests.
//! - [`bench`]: the load generator behind `lienthong bench`, and the
//!   machine's ceiling; `compare` (feature `jetstream`) runs the same
//!   workloads against NATS JetStream. [`fill`]: `lienthong fill`.
//! - [`error`]: the one error type, mapped to gRPC statuses in one place.
//! - [`clock`]: Vietnam time, in which years and dates are counted.
//! - [`defaults`]: the embedded defaults, used by the command line, the
//!   server's configuration and stated in the README.
//! - [`pb`]: code generated from `proto/lienthong/v1/exchange.proto`.

pub mod api;
pub mod archive;
pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
#[cfg(feature = "jetstream")]
pub mod compare;
pub mod crypto;
pub mod defaults;
pub mod directory;
pub mod document;
pub mod error;
pub mod evidence;
pub mod exchange;
pub mod fill;
pub mod keys;
pub mod merkle;
pub mod notify;
pub mod pki;
pub mod process;
pub mod receipt;
pub mod server;
pub mod store;

/// The `lienthong.v1` protobuf messages and gRPC stubs.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("lienthong.v1");
}
