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

#[cfg(test)]
mod tests {
    #[test]
    fn clients_connect_where_the_server_listens() {
        assert_eq!(super::SERVER_URL, format!("https://{}", super::LISTEN));
        assert_eq!(super::PKI_DIR, format!("{}/pki", super::DATA_DIR));
    }
}
