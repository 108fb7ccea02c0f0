//! What the server lets in, so that one broken or hostile client — or anyone
//! on the network — cannot take the memory, descriptors or time that the
//! other organisations need.
//!
//! Before authentication ([`accept`], [`connection`]): caps on connections
//! in all and per source address, refused by closing them before any TLS
//! work; a deadline for the TLS handshake and the HTTP/2 preface; idle
//! connections closed; an accept loop that backs off when descriptors run
//! out. After it ([`layer`]): a budget of request bytes held in memory, for
//! all callers and per organisation ([`budget`]), and a rate of sends per
//! organisation ([`rate`]), both refused with RESOURCE_EXHAUSTED and a
//! `retry-after` hint. The HTTP/2 settings that bound each connection are
//! in [`NetworkLimits`] and applied by [`crate::server`].
//!
//! Each limit that bites is logged, at most once per limit every ten
//! seconds ([`warnings`]).

pub mod accept;
pub mod budget;
pub mod connection;
pub mod descriptors;
pub mod layer;
pub mod rate;
pub mod warnings;

use std::time::Duration;

use crate::defaults as d;

pub use accept::incoming;
pub use layer::AdmissionLayer;
pub use warnings::Warnings;

const KIB: u32 = 1024;
const MIB: usize = 1024 * 1024;

/// Every limit of this module; the defaults are in [`crate::defaults`],
/// each with its reason.
#[derive(Debug, Clone)]
pub struct NetworkLimits {
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one source address.
    pub max_connections_per_address: usize,
    /// From accepting a connection to its TLS handshake done and its HTTP/2
    /// preface read.
    pub handshake: Duration,
    /// A connection with no request in progress for this long is closed.
    pub idle: Duration,
    /// A request whose body sends nothing for this long is refused.
    pub stall: Duration,
    /// HTTP/2: requests in progress on one connection.
    pub max_streams_per_connection: u32,
    /// HTTP/2: bytes one request may send ahead, and one connection.
    pub stream_window: u32,
    pub connection_window: u32,
    /// HTTP/2: bytes of one request's headers.
    pub max_header_list: u32,
    /// HTTP/2: the largest frame accepted.
    pub max_frame: u32,
    /// Request bytes held at once for all callers, and for one organisation.
    pub request_budget: usize,
    pub org_request_budget: usize,
    /// Documents an organisation may send per minute (0: no limit), and at
    /// once before that rate applies.
    pub org_sends_per_minute: u32,
    pub org_send_burst: u32,
}

impl Default for NetworkLimits {
    fn default() -> NetworkLimits {
        NetworkLimits {
            max_connections: d::MAX_CONNECTIONS,
            max_connections_per_address: d::MAX_CONNECTIONS_PER_ADDRESS,
            handshake: Duration::from_secs(d::HANDSHAKE_SECONDS),
            idle: Duration::from_secs(d::IDLE_SECONDS),
            stall: Duration::from_secs(d::STALL_SECONDS),
            max_streams_per_connection: d::MAX_STREAMS_PER_CONNECTION,
            stream_window: d::STREAM_WINDOW_KIB * KIB,
            connection_window: d::CONNECTION_WINDOW_KIB * KIB,
            max_header_list: d::MAX_HEADER_KIB * KIB,
            max_frame: d::MAX_FRAME_KIB * KIB,
            request_budget: d::REQUEST_BUDGET_MIB * MIB,
            org_request_budget: d::ORG_REQUEST_BUDGET_MIB * MIB,
            org_sends_per_minute: d::ORG_SENDS_PER_MINUTE,
            org_send_burst: d::ORG_SEND_BURST,
        }
    }
}

/// HTTP/2's bounds (RFC 9113 §6.5.2): a frame of 16 KiB to 16 MiB − 1, a
/// window below 2 GiB.
const MIN_FRAME: u32 = 16 * 1024;
const MAX_FRAME: u32 = (1 << 24) - 1;
const MAX_WINDOW: u32 = (1 << 31) - 1;

impl NetworkLimits {
    /// Refuses limits that HTTP/2 does not allow, or that would refuse every
    /// request of the largest size (`largest_request` bytes).
    pub fn check(&self, largest_request: usize) -> Result<(), String> {
        let mib = |bytes: usize| bytes.div_ceil(MIB);
        if !(MIN_FRAME..=MAX_FRAME).contains(&self.max_frame) {
            return Err(format!(
                "the largest HTTP/2 frame (--max-frame-kib) must be from 16 KiB to 16 MiB - 1 byte (got {} bytes)",
                self.max_frame
            ));
        }
        for (name, window) in [
            ("--stream-window-kib", self.stream_window),
            ("--connection-window-kib", self.connection_window),
        ] {
            if window == 0 || window > MAX_WINDOW {
                return Err(format!(
                    "an HTTP/2 window ({name}) must be from 1 byte to 2 GiB - 1 byte (got {window} bytes)"
                ));
            }
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            return Err(
                "--max-connections and --max-connections-per-address must be at least 1".into(),
            );
        }
        if self.max_streams_per_connection == 0 || self.max_header_list == 0 {
            return Err(
                "--max-streams-per-connection and --max-header-kib must be at least 1".into(),
            );
        }
        if self.org_request_budget < largest_request {
            return Err(format!(
                "the request budget of one organisation (--org-request-budget-mib {}) is smaller than the largest request ({} MiB: --max-document-bytes and 1 MiB more): no document of the largest size could be received",
                mib(self.org_request_budget),
                mib(largest_request)
            ));
        }
        if self.request_budget < self.org_request_budget {
            return Err(format!(
                "the request budget of all callers (--request-budget-mib {}) is smaller than that of one organisation (--org-request-budget-mib {})",
                mib(self.request_budget),
                mib(self.org_request_budget)
            ));
        }
        Ok(())
    }
}
