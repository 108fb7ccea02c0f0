//! The process's limit of open descriptors: every connection is one, and a
//! shell's default soft limit (1 024) is below the connection cap. At start
//! the soft limit is raised to the hard one, as servers commonly do, and
//! the connection cap lowered to what fits.

/// Descriptors kept for everything but connections: the store's files, the
/// attachments being written, the listening socket, the runtime's own.
pub const RESERVED: u64 = 256;

/// Raises the soft limit to the hard one; returns the soft limit now in
/// force (`None`: unlimited, or not known on this system).
#[cfg(unix)]
pub fn raise_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

#[cfg(not(unix))]
pub fn raise_limit() -> Option<u64> {
    None
}

/// The connection cap that fits under a soft limit of `soft` descriptors.
pub fn connections_that_fit(wanted: usize, soft: Option<u64>) -> usize {
    match soft {
        Some(soft) => {
            let room = usize::try_from(soft.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
            wanted.min(room.max(1))
        }
        None => wanted,
    }
}
