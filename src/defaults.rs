//! The embedded defaults, defined once: the command line shows them in its
//! help, the server's configuration starts from them, and a test checks that
//! the README states the same figures.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// Where `serve` keeps its data, and where clients look for the development PKI.
pub const DATA_DIR: &str = "./data";
/// Where clients look for the development PKI: `DATA_DIR/pki`.
pub const PKI_DIR: &str = "./data/pki";
/// Where `serve` listens.
pub const LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50051));
/// Where clients connect: [`LISTEN`] (a literal, for clap; a test keeps them equal).
pub const SERVER_URL: &str = "https://127.0.0.1:50051";
/// The largest document, attachments included, in MiB.
pub const MAX_DOCUMENT_MIB: usize = 32;
/// The largest document, attachments included, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = MAX_DOCUMENT_MIB * 1024 * 1024;
/// The largest attachment that may be uploaded (in chunks, before the
/// send), in MiB: a scanned dossier or a recording of a long meeting.
pub const MAX_ATTACHMENT_MIB: u64 = 4096;
/// An organisation's unfinished uploads and completed ones not yet sent,
/// together, in MiB: a few large dossiers at once; a commune that starts
/// uploads and never finishes them cannot fill the disk.
pub const ORG_UPLOAD_QUOTA_MIB: u64 = 16384;
/// Seconds an unfinished upload is kept without a byte arriving, and a
/// completed one waits to be sent: a day, so that a link down for the
/// afternoon resumes the next morning.
pub const UPLOAD_TTL_SECONDS: u64 = 86_400;
/// Most recipients of one document, after groups are expanded.
pub const MAX_RECIPIENTS: usize = 500;
/// sled's page cache, in MiB.
pub const CACHE_MIB: u64 = 64;
/// Mailbox events kept per organisation for subscribers to resume from.
pub const EVENTS_KEPT: u64 = 10_000;
/// A checkpoint of the archive every this many documents...
pub const CHECKPOINT_EVERY: u64 = 1000;
/// ...and at least this often, in seconds, when documents came in.
pub const CHECKPOINT_SECONDS: u64 = 60;
/// Seconds without an event before a subscriber gets a heartbeat.
pub const HEARTBEAT_SECONDS: u64 = 15;
/// Events held for a subscriber that reads slowly before it is cut off.
pub const EVENT_BUFFER: usize = 1024;

// Limits against hostile or broken clients (README, "Security limits").
// They are sized for the smallest machine the service runs on: 2 cores and
// 2 GiB, holding about 60 organisations' clients.

/// Connections open at once, in all. Every organisation's clients many
/// times over; one idle connection costs a few KiB before its handshake and
/// tens of KiB after, so even all of them stay far below the memory
/// budgets. The systemd unit's `LimitNOFILE` leaves room above it.
pub const MAX_CONNECTIONS: usize = 4096;
/// Connections open at once from one source address (an IPv6 /64 counts
/// as one address). High enough for a whole district behind one NAT
/// address (about 60 organisations, a few connections each); low enough
/// that one address cannot take more than a sixteenth of the connections.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// Seconds from accepting a connection to its TLS handshake done and its
/// HTTP/2 preface read: a real client needs a few round trips; anything
/// slower only holds a place.
pub const HANDSHAKE_SECONDS: u64 = 10;
/// Seconds a connection may stay open with no request in progress: a
/// client that still wants it reconnects in one round trip.
pub const IDLE_SECONDS: u64 = 300;
/// Seconds a request's body may send nothing before the request is refused
/// and its bytes freed: a real client on a slow line still sends a frame
/// every fraction of a second.
pub const STALL_SECONDS: u64 = 30;
/// Requests in progress on one HTTP/2 connection. A client that wants more
/// waits for a free stream; the byte budgets, not this, bound memory.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// HTTP/2 window of one request, in KiB: what a client may send before the
/// server has taken it in. 1 MiB fills a 100 Mbit/s line at 80 ms.
pub const STREAM_WINDOW_KIB: u32 = 1024;
/// HTTP/2 window of one connection, in KiB: two requests at full speed.
pub const CONNECTION_WINDOW_KIB: u32 = 2048;
/// Request headers of one request, in KiB: gRPC's own headers take a few
/// hundred bytes; the API puts nothing else in headers.
pub const MAX_HEADER_KIB: u32 = 16;
/// Largest HTTP/2 frame the server accepts, in KiB: the protocol's
/// default, which every client supports; larger frames save little and
/// make each read buffer larger.
pub const MAX_FRAME_KIB: u32 = 16;
/// Request bytes held in memory at once for all callers, in MiB. A request
/// that has arrived whole is held about twice over while it is decoded and
/// checked (measured: a 31 MB document raises the peak by 62 MB), so 256 MiB
/// of requests is about 512 MiB of memory: a 2 GiB machine keeps room for
/// the store's cache and the rest.
pub const REQUEST_BUDGET_MIB: usize = 256;
/// Request bytes held in memory at once for one organisation, in MiB: two
/// documents of the largest size and small requests beside them. Less than
/// half the total, so that one organisation cannot take it all.
pub const ORG_REQUEST_BUDGET_MIB: usize = 96;
/// Documents one organisation may send (or record on paper) per minute,
/// once its burst is spent. The server takes 1 000 to 3 000 a second on 2
/// cores; at 20 a second, no organisation takes more than a few percent.
pub const ORG_SENDS_PER_MINUTE: u32 = 1200;
/// Documents one organisation may send at once before the rate applies: a
/// day's batch from a busy office.
pub const ORG_SEND_BURST: u32 = 200;

#[cfg(test)]
mod tests {
    #[test]
    fn clients_connect_where_the_server_listens() {
        assert_eq!(super::SERVER_URL, format!("https://{}", super::LISTEN));
        assert_eq!(super::PKI_DIR, format!("{}/pki", super::DATA_DIR));
    }
}
