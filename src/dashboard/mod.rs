//! The dashboard: a small web page beside the gRPC API, off unless `serve
//! --http ADDR` asks for it — the report of a period at a glance (see
//! [`overview`]) and each document's page. Server-rendered HTML with inline
//! SVG; no script, nothing fetched from elsewhere.
//!
//! # Who is looking
//!
//! - On a loopback address the page is plain HTTP and shows the district as
//!   its committee sees it ([`local_viewer`]): every organisation and every
//!   overdue document. Only the server's own machine reaches a loopback
//!   address, and whoever works on that machine is its operator, who holds
//!   the data directory (and, with the development PKI, every
//!   organisation's keys) anyway. Do not give `--http` a loopback address on
//!   a machine shared with people who may not see the district's figures.
//! - On any other address it is HTTPS only, with the gRPC server's
//!   certificate and client CA (certificates configured by path: the
//!   development PKI is for one machine, and `server` refuses it here). A
//!   browser without an organisation's client certificate does not get
//!   past the handshake; with one, that certificate says who is looking,
//!   exactly as for gRPC ([`crate::pki::caller`]), and the report's rule
//!   applies: the committee and its office see every row, anyone else its
//!   own.
//!
//! HTTP/1.1 from [`crate::http_server`] and TLS with tokio-rustls, both
//! already built for tonic; no web framework. Pages are built off the async
//! workers, since they read the store. Stopping waits for the requests in
//! flight.

pub mod chart;
mod document;
pub mod html;
mod overview;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

pub use pages::{Page, Pages};

use crate::deadlines::DISTRICT_KINDS;
use crate::directory::{Directory, Organization};
use crate::error::Error;
use crate::http_server::{self, HttpServer, Stop};
use crate::pki;

/// A client that has not completed its TLS handshake by then is dropped
/// (the request headers have their own deadline, in [`crate::http_server`]).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything but markup and inline style is refused: no script, no
/// frame, no request to anywhere.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How a connection says who is looking.
pub enum Access {
    /// Plain HTTP on a loopback address: every request is this
    /// organisation's (see the module's "Who is looking").
    Local(Organization),
    /// HTTPS: the client certificate says who.
    Certificate(Arc<rustls::ServerConfig>),
}

/// Who a loopback dashboard shows the district to: the directory's
/// committee, else its office.
pub fn local_viewer(directory: &Directory) -> Result<Organization, String> {
    DISTRICT_KINDS
        .iter()
        .find_map(|kind| {
            directory
                .organizations()
                .iter()
                .find(|o| o.kind == *kind)
        })
        .cloned()
        .ok_or_else(|| {
            "--http on a loopback address shows the district as its committee sees it, and the directory has no organisation of kind committee or office".to_owned()
        })
}

/// The HTTPS dashboard's TLS: the server's certificate and key, and client
/// certificates required, chaining to `client_ca` (all PEM) — the gRPC
/// server's own rules.
pub fn tls_config(
    cert: &[u8],
    key: &[u8],
    client_ca: &[u8],
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the server certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("the server key: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca) {
        let ca = ca.map_err(|e| format!("the client CA: {e}"))?;
        roots.add(ca).map_err(|e| format!("the client CA: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("the client CA: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("the server certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A running dashboard.
pub struct Dashboard {
    pub addr: SocketAddr,
    server: HttpServer,
}

impl Dashboard {
    /// Serves `pages` on `listener` until [`Dashboard::stop`].
    pub fn start(
        listener: TcpListener,
        access: Access,
        pages: Arc<Pages>,
    ) -> std::io::Result<Dashboard> {
        let access = Arc::new(access);
        let server = HttpServer::start(listener, "dashboard", move |stream, stop| {
            connection(stream, access.clone(), pages.clone(), stop)
        })?;
        Ok(Dashboard {
            addr: server.addr,
            server,
        })
    }

    /// Stops accepting, lets the requests in flight finish, closes every
    /// connection, and returns when all of that is done.
    pub async fn stop(self) {
        self.server.stop().await
    }
}

async fn connection(stream: TcpStream, access: Arc<Access>, pages: Arc<Pages>, mut stop: Stop) {
    match access.as_ref() {
        Access::Local(viewer) => {
            http(
                TokioIo::new(stream),
                Arc::new(Ok(viewer.clone())),
                pages,
                stop,
            )
            .await
        }
        Access::Certificate(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    // No certificate, one from another CA, or no TLS at all.
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "dashboard: TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                },
                _ = stop.stopped() => return,
            };
            let leaf = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.as_ref());
            let viewer = pki::caller(pages.directory(), leaf);
            http(TokioIo::new(tls), Arc::new(viewer), pages, stop).await
        }
    }
}

/// Serves the pages on one connection for `viewer`.
async fn http<I>(io: I, viewer: Arc<Result<Organization, Error>>, pages: Arc<Pages>, stop: Stop)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = move |request| {
        let (pages, viewer) = (pages.clone(), viewer.clone());
        async move { respond(&pages, &viewer, request).await }
    };
    http_server::serve(io, "dashboard", service, stop).await
}

async fn respond(
    pages: &Arc<Pages>,
    viewer: &Arc<Result<Organization, Error>>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return reply(pages::method_not_allowed());
    }
    let viewer = match viewer.as_ref() {
        Ok(viewer) => viewer.clone(),
        Err(e) => return reply(pages::error_page(e)),
    };
    let path = request.uri().path().to_owned();
    let period = query_value(request.uri().query().unwrap_or(""), "period").unwrap_or_default();
    let pages = pages.clone();
    let page = tokio::task::spawn_blocking(move || {
        if path == "/" {
            pages.overview(&viewer, &period)
        } else if let Some(id) = path.strip_prefix("/document/") {
            pages.document(&viewer, id)
        } else {
            pages::not_found()
        }
    })
    .await
    .unwrap_or_else(|e| {
        pages::error_page(&Error::Unavailable(format!("the page was not built: {e}")))
    });
    reply(page)
}

fn reply(page: Page) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Full::new(Bytes::from(page.html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

/// The value of `name` in a query string, percent-decoded (`+` is a space,
/// as a form sends it).
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|b| (*b as char).to_digit(16))
                .map(|d| d as u8)
        };
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_as_a_form_sends_them() {
        assert_eq!(
            query_value("period=2026-Q4", "period").as_deref(),
            Some("2026-Q4")
        );
        assert_eq!(
            query_value("a=1&period=2026%2D11", "period").as_deref(),
            Some("2026-11")
        );
        assert_eq!(
            query_value("period=+2026+", "period").as_deref(),
            Some(" 2026 ")
        );
        assert_eq!(
            query_value("period=%zz%4", "period").as_deref(),
            Some("%zz%4")
        );
        assert_eq!(query_value("other=1", "period"), None);
        assert_eq!(query_value("period", "period").as_deref(), Some(""));
    }
}
