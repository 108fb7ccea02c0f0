//! Accepting connections, before anyone is authenticated. A connection over
//! the cap (in all, or from its source address) is closed at once, before
//! any TLS work; the others get the TLS handshake within the handshake
//! deadline. When the process runs out of descriptors, the loop waits and
//! retries instead of spinning, and says so.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use super::connection::{Connection, Timeouts};
use super::{NetworkLimits, Warnings};
use crate::tls::LiveTls;

/// Waits after a failed accept: doubling from the first to the last.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const LAST_BACKOFF: Duration = Duration::from_secs(1);

/// Handshaken connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// The connections that completed their TLS handshake, for
/// `serve_with_incoming`. Dropping the stream stops accepting and closes the
/// listening socket.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<LiveTls>,
    limits: &NetworkLimits,
    warnings: Arc<Warnings>,
) -> ReceiverStream<io::Result<Connection>> {
    let (ready, stream) = mpsc::channel(READY_QUEUE);
    let places = Arc::new(Places::new(
        limits.max_connections,
        limits.max_connections_per_address,
    ));
    let timeouts = Timeouts {
        handshake: limits.handshake,
        idle: limits.idle,
    };
    tokio::spawn(accept_loop(
        listener, tls, places, timeouts, warnings, ready,
    ));
    ReceiverStream::new(stream)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<LiveTls>,
    places: Arc<Places>,
    timeouts: Timeouts,
    warnings: Arc<Warnings>,
    ready: mpsc::Sender<io::Result<Connection>>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let accepted = tokio::select! {
            _ = ready.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            // The peer gave up between its SYN and our accept: nothing to do.
            Err(e) if gone_before_accept(&e) => continue,
            Err(e) => {
                warnings.limit_bit("LimitNOFILE", || {
                    format!(
                        "cannot accept a connection: {e}; waiting {} ms before the next (out of descriptors: raise the unit's LimitNOFILE or lower --max-connections)",
                        backoff.as_millis()
                    )
                });
                tokio::select! {
                    _ = ready.closed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(LAST_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        let place = match places.take(peer.ip()) {
            Ok(place) => place,
            Err(full) => {
                // Dropping the socket closes it: no TLS, no task.
                drop(tcp);
                warnings.limit_bit(full.option(), || {
                    format!("refused a connection from {peer}: {full}")
                });
                continue;
            }
        };
        // Replies are small and latency matters: no Nagle delay (which,
        // against the peer's delayed ACK, adds 40 ms to some replies).
        let _ = tcp.set_nodelay(true);
        tokio::spawn(handshake(
            tcp,
            peer,
            place,
            // The configuration current now: a reload applies to the
            // connections that come after it.
            TlsAcceptor::from(tls.current()),
            timeouts,
            warnings.clone(),
            ready.clone(),
        ));
    }
}

/// An accept error about one connection, not about the listener.
fn gone_before_accept(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    place: Place,
    tls: TlsAcceptor,
    timeouts: Timeouts,
    warnings: Arc<Warnings>,
    ready: mpsc::Sender<io::Result<Connection>>,
) {
    let deadline = Instant::now() + timeouts.handshake;
    match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
        Ok(Ok(stream)) => {
            let connection = Connection::new(stream, place, deadline, timeouts, warnings);
            // The server stopped: the connection closes as it is dropped.
            let _ = ready.send(Ok(connection)).await;
        }
        // A wrong certificate, or not TLS: the client was told by TLS.
        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
        Err(_) => warnings.limit_bit("--handshake-seconds", || {
            format!(
                "closed a connection from {peer} that did not complete its TLS handshake within {} s",
                timeouts.handshake.as_secs_f64()
            )
        }),
    }
}

/// The places for connections: how many are open, in all and by source.
pub struct Places {
    max: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// Why a connection found no place.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Total(usize),
    Source(IpAddr, usize),
}

impl Full {
    /// The option that sets the limit.
    pub fn option(&self) -> &'static str {
        match self {
            Full::Total(_) => "--max-connections",
            Full::Source(..) => "--max-connections-per-address",
        }
    }
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::Total(max) => write!(f, "{max} connections are open, the limit (--max-connections)"),
            Full::Source(source, max) => write!(
                f,
                "{max} connections from {source} are open, the limit for one address (--max-connections-per-address)"
            ),
        }
    }
}

/// A connection's place; given back when dropped (when the connection
/// closes).
pub struct Place {
    places: Arc<Places>,
    source: IpAddr,
}

impl Places {
    pub fn new(max: usize, max_per_address: usize) -> Places {
        Places {
            max,
            max_per_address,
            open: Mutex::new(Open::default()),
        }
    }

    /// A place for a connection from `address`, if its source and the whole
    /// server are under their caps.
    pub fn take(self: &Arc<Self>, address: IpAddr) -> Result<Place, Full> {
        let source = source(address);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max {
            return Err(Full::Total(self.max));
        }
        let from_source = open.by_source.entry(source).or_insert(0);
        if *from_source >= self.max_per_address {
            return Err(Full::Source(source, self.max_per_address));
        }
        *from_source += 1;
        open.total += 1;
        Ok(Place {
            places: self.clone(),
            source,
        })
    }

    /// Connections open, in all.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.places.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_source.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_source.remove(&self.source);
            }
        }
    }
}

/// The source a connection is counted against: its IPv4 address, or the
/// /64 of an IPv6 one (one subscriber's network: anyone given an IPv6
/// address has 2^64 of them).
fn source(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_in_all_and_per_source_and_given_back() {
        let places = Arc::new(Places::new(3, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = places.take(a).unwrap();
        let _second = places.take(a).unwrap();
        assert_eq!(places.take(a).err(), Some(Full::Source(a, 2)));
        let _third = places.take(b).unwrap();
        assert_eq!(places.take(b).err(), Some(Full::Total(3)));
        drop(first);
        assert_eq!(places.open(), 2);
        assert!(places.take(a).is_ok());
    }

    #[test]
    fn an_ipv6_network_counts_as_one_source() {
        let places = Arc::new(Places::new(10, 1));
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = places.take(one).unwrap();
        assert!(places.take(same_net).is_err());
        assert!(places.take(other_net).is_ok());
        // An IPv4 client on a dual-stack socket is its IPv4 address.
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let _mapped = places.take(mapped).unwrap();
        assert!(places.take(v4).is_err());
    }
}
