//! Precise statuses for requests whose gRPC framing is broken. tonic reads
//! the length-prefixed message itself and answers, before any handler runs,
//! with INTERNAL for a body that holds no message, a frame cut short, or a
//! flag byte other than 0 and 1, and with OUT_OF_RANGE for a length prefix
//! over the limit. Each of these is the caller's doing, so the server's
//! layer rewrites them here, in one place, to the code a client can act on.

use tonic::codegen::http;
use tonic::{Code, Status};

/// The response with its status made precise, if tonic answered a broken
/// frame; any other response unchanged. tonic answers these before reading
/// further, as a trailers-only response, so the status is in the headers.
pub fn precise(
    mut response: http::Response<tonic::body::Body>,
    max_document_bytes: usize,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers_mut();
    if !headers.contains_key("grpc-status") {
        return response;
    }
    let better = Status::from_header_map(headers).and_then(|s| reword(&s, max_document_bytes));
    if let Some(better) = better {
        // Only fails for metadata that cannot be a header, which these
        // statuses do not carry; the original status then stands.
        let _ = better.add_header(headers);
    }
    response
}

/// What a status of tonic's own about the request's framing means for the
/// caller; `None` for any other status.
fn reword(status: &Status, max_document_bytes: usize) -> Option<Status> {
    let message = status.message();
    let invalid = |what: &str| Some(Status::invalid_argument(format!("request: {what}")));
    match status.code() {
        Code::Internal if message.starts_with("Missing request message") => {
            invalid("the body holds no gRPC message; a call sends exactly one")
        }
        Code::Internal if message.starts_with("Unexpected EOF decoding stream") => invalid(
            "the body ends inside a gRPC message: its frame is shorter than its 5-byte header or its length prefix says",
        ),
        Code::Internal if message.contains("compressed-flag but no grpc-encoding") => invalid(
            "the message's compressed flag is 1 but the call names no grpc-encoding; send it uncompressed, with flag 0",
        ),
        Code::Internal if message.contains("invalid compression flag") => {
            let flag = message
                .split("flag: ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("?");
            invalid(&format!(
                "a gRPC message begins with a flag byte of 0 (uncompressed) or 1 (compressed); this one begins with {flag}"
            ))
        }
        Code::Unimplemented if message.starts_with("Content is compressed with") => {
            Some(Status::unimplemented(
                "grpc-encoding: this server takes uncompressed messages only (grpc-encoding identity, or none)",
            ))
        }
        Code::OutOfRange if message.contains("message length too large") => {
            Some(Status::resource_exhausted(format!(
                "max_document_bytes: the request is larger than the limit of {max_document_bytes} bytes for a document and its attachments"
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reworded(status: Status) -> Option<(Code, String)> {
        reword(&status, 1024).map(|s| (s.code(), s.message().to_owned()))
    }

    #[test]
    fn tonics_framing_errors_become_the_callers() {
        // The messages of tonic 0.14: if an upgrade changes them, this fails.
        let cases = [
            Status::internal("Missing request message."),
            Status::internal("Unexpected EOF decoding stream."),
            Status::internal("protocol error: received message with compressed-flag but no grpc-encoding was specified"),
            Status::internal("protocol error: received message with invalid compression flag: 128 (valid flags are 0 and 1), while sending request"),
        ];
        for status in cases {
            let (code, message) = reworded(status).unwrap_or_else(|| panic!("not reworded"));
            assert_eq!(code, Code::InvalidArgument);
            assert!(message.starts_with("request: "), "{message}");
        }
        let flag = reworded(Status::internal(
            "protocol error: received message with invalid compression flag: 128 (valid flags are 0 and 1), while sending request",
        ));
        assert!(flag.is_some_and(|(_, m)| m.ends_with("begins with 128")));
        let (code, message) = reworded(Status::out_of_range(
            "Error, decoded message length too large: found 2000 bytes, the limit is: 1500 bytes",
        ))
        .unwrap_or_else(|| panic!("not reworded"));
        assert_eq!(code, Code::ResourceExhausted);
        assert!(message.starts_with("max_document_bytes: "), "{message}");
    }

    #[test]
    fn other_statuses_stand() {
        assert_eq!(reworded(Status::internal("storage failure")), None);
        assert_eq!(
            reworded(Status::invalid_argument("document.subject: …")),
            None
        );
    }
}
