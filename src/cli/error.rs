//! The one kind of error a command ends with, printed in one form:
//! `error: CODE: message`, with the gRPC code names the API uses
//! (`INVALID_ARGUMENT`, `NOT_FOUND`, `UNAVAILABLE`…) for errors of the
//! server and local ones alike, and a `hint:` line where a likely cause is
//! known (no server listening, a wrong `--pki`, a store held by a running
//! server).

use std::fmt;

use tonic::Code;

/// What a command returns: `Err` is what the user reads on stderr.
pub type Result<T = ()> = std::result::Result<T, CliError>;

/// Why a command failed.
#[derive(Debug)]
pub struct CliError {
    pub code: Code,
    pub message: String,
    /// A likely cause and what to do about it.
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(code: Code, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    /// A local file that could not be read or written, coded by its cause.
    pub fn io(context: impl fmt::Display, e: &std::io::Error) -> CliError {
        CliError::new(io_code(e), format!("{context}: {e}"))
    }
}

/// The code of a local file error, by its cause.
fn io_code(e: &std::io::Error) -> Code {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        _ => Code::Internal,
    }
}

/// Errors of the command line's own checks are the user's input.
impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError::new(Code::InvalidArgument, message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> CliError {
        CliError::from(message.to_owned())
    }
}

/// What the server refused, as it said it.
impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> CliError {
        CliError::new(status.code(), status.message())
    }
}

/// A save refused because something is in the way is ALREADY_EXISTS; a
/// file that could not be read or written is coded by its cause.
impl From<crate::evidence::FileError> for CliError {
    fn from(e: crate::evidence::FileError) -> CliError {
        use crate::evidence::FileError;
        match &e {
            FileError::Read { source, .. } | FileError::Write { source, .. } => {
                CliError::new(io_code(source), e.to_string())
            }
            _ => CliError::new(Code::AlreadyExists, e.to_string()),
        }
    }
}

impl From<crate::evidence::EvidenceError> for CliError {
    fn from(e: crate::evidence::EvidenceError) -> CliError {
        match e {
            crate::evidence::EvidenceError::File(e) => e.into(),
            e => CliError::from(e.to_string()),
        }
    }
}

impl From<crate::archive::proof::ProofError> for CliError {
    fn from(e: crate::archive::proof::ProofError) -> CliError {
        match e {
            crate::archive::proof::ProofError::File(e) => e.into(),
            e => CliError::from(e.to_string()),
        }
    }
}

impl From<crate::client::ConnectError> for CliError {
    fn from(e: crate::client::ConnectError) -> CliError {
        use crate::client::ConnectError;
        match &e {
            ConnectError::Unreachable { server, .. } => {
                let hint = format!(
                    "is a server running at {server}? Start one with `lienthong serve`, or give --server URL (or set LIENTHONG_SERVER); `lienthong whoami` shows what this command uses"
                );
                CliError::new(Code::Unavailable, e.to_string()).with_hint(hint)
            }
            ConnectError::Read { path, source } => {
                let hint = "the PKI folder is given by --pki, LIENTHONG_PKI or `lienthong login`; `lienthong whoami` shows which one this command uses";
                let error = CliError::io(format!("cannot read {}", path.display()), source);
                error.with_hint(hint)
            }
            ConnectError::Pki(_) => CliError::new(Code::NotFound, e.to_string()).with_hint(
                "the PKI folder is given by --pki, LIENTHONG_PKI or `lienthong login`; `lienthong whoami` shows which one this command uses",
            ),
            ConnectError::Url(_) | ConnectError::Tls(_) => {
                CliError::new(Code::InvalidArgument, e.to_string())
            }
        }
    }
}

/// The gRPC name of a code, as the README and the API documentation write it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", code_name(self.code), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_with_grpc_code_names() {
        let e = CliError::from(tonic::Status::invalid_argument("document.to[0]: unknown"));
        assert_eq!(e.to_string(), "INVALID_ARGUMENT: document.to[0]: unknown");
        let e = CliError::io(
            "cannot read x.pdf",
            &std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(e.to_string().starts_with("NOT_FOUND: cannot read x.pdf"));
    }
}
