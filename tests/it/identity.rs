//! Identity comes from the client certificate and nothing else.

use crate::common::*;
use lienthong::pb;
use lienthong::pki::{self, PkiPaths};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

async fn channel(
    server: &TestServer,
    tls: ClientTlsConfig,
) -> Result<tonic::transport::Channel, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Endpoint::from_shared(server.url())
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())
}

/// A call over `tls` must fail: either the handshake or the first call; and
/// the server must go on serving a proper client normally.
async fn refused(server: &TestServer, tls: ClientTlsConfig) -> String {
    let message = refusal(server, tls).await;
    let mut client = server.client("phong-noi-vu").await;
    server
        .send(
            &mut client,
            directive("phong-noi-vu", &["xa-van-nham"], 1 + message.len() as u64),
        )
        .await;
    message
}

async fn refusal(server: &TestServer, tls: ClientTlsConfig) -> String {
    match channel(server, tls).await {
        Err(e) => e,
        Ok(ch) => {
            let mut client = pb::exchange_client::ExchangeClient::new(ch);
            let err = client
                .list_inbox(pb::ListMailboxRequest::default())
                .await
                .expect_err("a connection without a valid client certificate must not be served");
            assert_ne!(err.code(), tonic::Code::Ok);
            err.to_string()
        }
    }
}

fn ca(server: &TestServer) -> Certificate {
    Certificate::from_pem(std::fs::read(server.pki().ca_cert()).expect("ca"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused() {
    let server = TestServer::start().await;
    refused(&server, ClientTlsConfig::new().ca_certificate(ca(&server))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let server = TestServer::start().await;
    // A complete PKI of its own, with a certificate for the same organisation.
    let other = tempfile::tempdir().expect("tempdir");
    let paths = PkiPaths::new(other.path());
    let directory = lienthong::directory::Directory::builtin().expect("directory");
    pki::ensure_dev_pki(&paths, &directory).expect("other pki");
    let (cert, key) = pki::find_client(&paths, "phong-noi-vu").expect("client");
    let identity = Identity::from_pem(
        std::fs::read(cert).expect("cert"),
        std::fs::read(key).expect("key"),
    );
    refused(
        &server,
        ClientTlsConfig::new()
            .ca_certificate(ca(&server))
            .identity(identity),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_connection_is_not_served() {
    let server = TestServer::start().await;
    let channel = Endpoint::from_shared(format!("http://{}", server.addr()))
        .expect("endpoint")
        .connect()
        .await;
    if let Ok(ch) = channel {
        let mut client = pb::exchange_client::ExchangeClient::new(ch);
        client
            .list_inbox(pb::ListMailboxRequest::default())
            .await
            .expect_err("plaintext must not be served");
    }
    let mut client = server.client("phong-noi-vu").await;
    server
        .send(&mut client, directive("phong-noi-vu", &["xa-van-nham"], 1))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_ca_cannot_vouch_for_an_organisation_outside_the_directory() {
    // A directory without xa-van-nham, served with a PKI that has its certificate.
    let mut server = TestServer::start().await;
    server.stop().await;
    let text = lienthong::directory::BUILTIN_TOML
        .replace("alias = \"xa-van-nham\"", "alias = \"xa-van-nham-moi\"")
        .replace("000.32.09.H37", "000.99.09.H37");
    let dir_file = server.dir.path().join("smaller.toml");
    std::fs::write(&dir_file, text).expect("write directory");
    let mut config = lienthong::server::ServerConfig::new(server.dir.path());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.directory = Some(dir_file);
    // Its PKI already holds the old certificate; the server only adds new ones.
    let running = lienthong::server::start(config).await.expect("start");
    let (cert, key) = pki::find_client(&server.pki(), "xa-van-nham").expect("old certificate");
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca(&server))
        .identity(Identity::from_pem(
            std::fs::read(cert).expect("cert"),
            std::fs::read(key).expect("key"),
        ));
    let ch = Endpoint::from_shared(format!("https://{}", running.addr))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("the certificate itself is valid");
    let err = pb::exchange_client::ExchangeClient::new(ch)
        .list_inbox(pb::ListMailboxRequest::default())
        .await
        .expect_err("not in the directory");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(
        err.message().contains("not in the directory"),
        "{}",
        err.message()
    );
    running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_naming_two_organisations_is_refused_as_such() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType,
    };
    let server = TestServer::start().await;
    // The development CA signs it: the certificate itself is valid.
    let pki = server.pki();
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(pki.ca_key()).expect("ca key")).expect("ca key");
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "lienthong development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "000.32.09.H37");
    params.subject_alt_names = ["000.32.09.H37", "000.00.04.H37"]
        .iter()
        .map(|code| {
            SanType::URI(
                format!("{}{code}", pki::ORG_URI_PREFIX)
                    .try_into()
                    .expect("uri"),
            )
        })
        .collect();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).expect("certificate");
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca(&server))
        .identity(Identity::from_pem(cert.pem(), key.serialize_pem()));
    let ch = channel(&server, tls)
        .await
        .expect("the certificate is valid");
    let err = pb::exchange_client::ExchangeClient::new(ch)
        .list_inbox(pb::ListMailboxRequest::default())
        .await
        .expect_err("two organisations");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        err.message(),
        "the client certificate names 2 organisations (SAN URIs urn:lienthong:org:<code>); exactly one is required"
    );
}
