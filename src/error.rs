//! The one error type of the service, and its mapping to gRPC statuses.
//!
//! Every variant says what the caller can do about it: the field or limit at
//! fault is named, because a clerk's software must be able to show "the
//! summary is too long", not "bad request".

use std::fmt;
use std::sync::Arc;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A field is missing, malformed or out of its range.
    InvalidArgument { field: String, reason: String },
    /// Unknown, or not the caller's to see: the two are deliberately the same.
    NotFound { what: String },
    /// The caller is who it says, but may not do this.
    PermissionDenied(String),
    /// The caller could not be identified from its certificate.
    Unauthenticated(String),
    /// A unique thing (idempotency key, number and notation) is taken.
    AlreadyExists { field: String, reason: String },
    /// A position asked for is outside what is kept (events trimmed away, or
    /// not yet happened).
    OutOfRange { field: String, reason: String },
    /// The request is well formed but the state does not allow it (a status
    /// that would go backwards, a document that is frozen).
    FailedPrecondition { field: String, reason: String },
    /// A configured size or count limit was exceeded.
    ResourceExhausted { limit: String, reason: String },
    /// The service cannot take writes now (shutting down, storage failed).
    Unavailable(String),
    /// The storage engine failed; the details are logged, not sent.
    Storage(StorageError),
}

/// What failed in storage, and the engine's or the system's own error when
/// there is one, so that a log shows the cause and not only our summary.
#[derive(Debug, Clone)]
pub struct StorageError {
    pub what: String,
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Two storage errors are the same failure if they say the same thing; the
/// source is detail for the log.
impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
    }
}

impl Eq for StorageError {}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    pub fn exhausted(limit: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::ResourceExhausted {
            limit: limit.into(),
            reason: reason.into(),
        }
    }

    /// A storage failure described by `what`, with no underlying error.
    pub fn storage(what: impl Into<String>) -> Self {
        Error::Storage(StorageError {
            what: what.into(),
            source: None,
        })
    }

    /// A storage failure while doing `what`, caused by `source`.
    pub fn storage_from(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Storage(StorageError {
            what: what.into(),
            source: Some(Arc::new(source)),
        })
    }

    pub fn precondition(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::FailedPrecondition {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn exists(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::AlreadyExists {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { field, reason } => write!(f, "{field}: {reason}"),
            Error::NotFound { what } => write!(f, "{what} not found"),
            Error::PermissionDenied(m) | Error::Unauthenticated(m) | Error::Unavailable(m) => {
                f.write_str(m)
            }
            Error::AlreadyExists { field, reason } => write!(f, "{field}: {reason}"),
            Error::ResourceExhausted { limit, reason } => write!(f, "{limit}: {reason}"),
            Error::OutOfRange { field, reason } => write!(f, "{field}: {reason}"),
            Error::FailedPrecondition { field, reason } => write!(f, "{field}: {reason}"),
            Error::Storage(m) => write!(f, "storage error: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage(StorageError {
                source: Some(source),
                ..
            }) => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Status;
        match &e {
            Error::InvalidArgument { .. } => Status::invalid_argument(e.to_string()),
            Error::NotFound { .. } => Status::not_found(e.to_string()),
            Error::PermissionDenied(_) => Status::permission_denied(e.to_string()),
            Error::Unauthenticated(_) => Status::unauthenticated(e.to_string()),
            Error::AlreadyExists { .. } => Status::already_exists(e.to_string()),
            Error::ResourceExhausted { .. } => Status::resource_exhausted(e.to_string()),
            Error::OutOfRange { .. } => Status::out_of_range(e.to_string()),
            Error::FailedPrecondition { .. } => Status::failed_precondition(e.to_string()),
            Error::Unavailable(_) => Status::unavailable(e.to_string()),
            Error::Storage(detail) => {
                let detail = detail.to_string();
                // The detail may name paths on the server: log it, send less.
                tracing::error!(%detail, "storage failure");
                Status::internal("storage failure; the request was not applied")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many characters of an input value an error message quotes.
pub const QUOTED_CHARS: usize = 40;

/// An input value as an error message quotes it: escaped as a string
/// literal, so that control, bidirectional and invisible characters show as
/// `\u{202e}` instead of acting; and, when longer than [`QUOTED_CHARS`],
/// cut to its beginning with its length. A hostile 100 000-character value
/// must not become a 100 000-character status, which the client's HTTP/2
/// header limit would turn into RESOURCE_EXHAUSTED.
pub fn quote(value: &str) -> String {
    let mut prefix = value.char_indices().map(|(i, _)| i).skip(QUOTED_CHARS);
    match prefix.next() {
        None => format!("{value:?}"),
        Some(end) => {
            let shown = format!("{:?}", &value[..end]);
            let open = shown.strip_suffix('"').unwrap_or(&shown);
            format!("{open}…\" ({} characters)", value.chars().count())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole_and_escaped() {
        assert_eq!(quote("xa-van-nham"), "\"xa-van-nham\"");
        assert_eq!(quote("a\u{202e}txt.exe"), "\"a\\u{202e}txt.exe\"");
        assert_eq!(
            quote(&"ệ".repeat(QUOTED_CHARS)),
            format!("{:?}", "ệ".repeat(QUOTED_CHARS))
        );
    }

    #[test]
    fn long_values_are_cut_to_a_prefix_with_their_length() {
        let quoted = quote(&"ệ".repeat(100_000));
        assert_eq!(
            quoted,
            format!("\"{}…\" (100000 characters)", "ệ".repeat(QUOTED_CHARS))
        );
    }
}
