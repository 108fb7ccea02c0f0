//! The standard gRPC services beside the API: health checking through a
//! server's whole life, on the API's port and on the plain health port, and
//! server reflection listing every service.

use lienthong::pki::PkiPaths;
use lienthong::server::{self, ServerConfig};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::common::{channel_to, serve_process, TestServer};

const EXCHANGE: &str = "lienthong.v1.Exchange";

fn ask(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

/// A channel in plain text (h2c), with no certificate at all.
async fn plain(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect in plain text")
}

async fn check(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let answer = client.check(ask(service)).await.expect("check");
    answer.into_inner().status()
}

type Watch = tonic::Streaming<tonic_health::pb::HealthCheckResponse>;

async fn watch(client: &mut HealthClient<Channel>, service: &str) -> Watch {
    client
        .watch(ask(service))
        .await
        .expect("watch")
        .into_inner()
}

async fn next(watch: &mut Watch) -> ServingStatus {
    watch
        .next()
        .await
        .expect("another status")
        .expect("a status, not an error")
        .status()
}

#[tokio::test]
async fn health_says_not_serving_until_the_store_is_open_and_again_from_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(dir.path());
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.health = Some("127.0.0.1:0".parse().expect("address"));

    // The health port answers before the store is opened.
    let starting = server::prepare(config).await.expect("prepared");
    let plain_port = starting.health_addr().expect("a health port");
    let mut probe = HealthClient::new(plain(plain_port).await);
    assert_eq!(check(&mut probe, "").await, ServingStatus::NotServing);
    assert_eq!(check(&mut probe, EXCHANGE).await, ServingStatus::NotServing);
    let mut overall = watch(&mut probe, "").await;
    let mut exchange = watch(&mut probe, EXCHANGE).await;
    assert_eq!(next(&mut overall).await, ServingStatus::NotServing);
    assert_eq!(next(&mut exchange).await, ServingStatus::NotServing);

    // Open: both turn SERVING, and the API's port says so to a certificate.
    let running = starting.open().await.expect("opened");
    assert_eq!(next(&mut overall).await, ServingStatus::Serving);
    assert_eq!(next(&mut exchange).await, ServingStatus::Serving);
    let pki = PkiPaths::new(dir.path().join("pki"));
    let url = format!("https://{}", running.addr);
    let mut api = HealthClient::new(channel_to(&url, &pki, "xa-van-nham", None).await);
    assert_eq!(check(&mut api, EXCHANGE).await, ServingStatus::Serving);
    let mut on_api = watch(&mut api, "").await;
    assert_eq!(next(&mut on_api).await, ServingStatus::Serving);

    // A service the server does not have.
    let unknown = probe.check(ask("grpc.nope.v1.Nope")).await;
    assert_eq!(unknown.expect_err("unknown").code(), Code::NotFound);
    let mut nope = watch(&mut probe, "grpc.nope.v1.Nope").await;
    assert_eq!(next(&mut nope).await, ServingStatus::ServiceUnknown);

    // Shutdown: every watcher hears NOT_SERVING, the one on the API's port
    // while that port drains its requests (this watch among them), and
    // each watch then ends, so that none holds the shutdown up.
    let stopping = tokio::spawn(running.shutdown());
    for watch in [&mut overall, &mut exchange, &mut on_api] {
        assert_eq!(next(watch).await, ServingStatus::NotServing);
        assert!(watch.next().await.is_none(), "the watch ends");
    }
    assert!(
        nope.next().await.is_none(),
        "the unknown service's watch ends"
    );
    stopping.await.expect("joined").expect("clean shutdown");
}

/// The answers of server reflection version `$v` (`v1`, `v1alpha`) to the
/// requests `$ask`, each a `MessageRequest` variant.
macro_rules! reflect {
    ($v:ident, $channel:expr, [$($ask:expr),*]) => {{
        use tonic_reflection::pb::$v;
        #[allow(unused_imports)]
        use $v::server_reflection_request::MessageRequest::*;
        let mut client = $v::server_reflection_client::ServerReflectionClient::new($channel);
        let asks = [$($ask),*].map(|m| $v::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        });
        let answers = client
            .server_reflection_info(tokio_stream::iter(asks))
            .await
            .expect("reflection")
            .into_inner();
        answers
            .map(|a| a.expect("an answer").message_response.expect("a response"))
            .collect::<Vec<_>>()
            .await
    }};
}

#[tokio::test]
async fn reflection_lists_every_service_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = TestServer::start().await;
    let channel = server.channel("phong-noi-vu", None).await;
    let expected = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        EXCHANGE,
        "lienthong.v1.Operations",
    ];

    use v1::server_reflection_response::MessageResponse as V1;
    let answers = reflect!(
        v1,
        channel.clone(),
        [
            ListServices(String::new()),
            FileContainingSymbol(EXCHANGE.into())
        ]
    );
    let [V1::ListServicesResponse(list), V1::FileDescriptorResponse(file)] = answers.as_slice()
    else {
        panic!("not a list and a file: {answers:?}");
    };
    let mut names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(names, expected, "v1");
    // The API's proto, with its comments, which `grpcurl describe` shows.
    let proto = String::from_utf8_lossy(&file.file_descriptor_proto[0]).into_owned();
    assert!(
        proto.contains("lienthong/v1/exchange.proto")
            && proto.contains("Short content, at most 500 characters."),
        "{proto:.300}"
    );

    use v1alpha::server_reflection_response::MessageResponse as V1alpha;
    let answers = reflect!(v1alpha, channel, [ListServices(String::new())]);
    let [V1alpha::ListServicesResponse(list)] = answers.as_slice() else {
        panic!("not a list: {answers:?}");
    };
    let mut names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(names, expected, "v1alpha");
}

#[tokio::test]
async fn the_health_port_answers_without_a_certificate_and_serves_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Given in the configuration file, which `serve` reads.
    let config = tmp.path().join("lienthong.toml");
    std::fs::write(&config, "health = \"127.0.0.1:0\"\n").expect("write config");
    let server = serve_process(
        &tmp.path().join("data"),
        &["--config", config.to_str().expect("utf-8")],
    );
    let addr = server
        .ready
        .health
        .expect("the ready line names the health port");
    let channel = plain(addr).await;
    let mut probe = HealthClient::new(channel.clone());
    assert_eq!(check(&mut probe, "").await, ServingStatus::Serving);
    assert_eq!(check(&mut probe, EXCHANGE).await, ServingStatus::Serving);

    // Only health: the API is not there without a certificate.
    let mut api = lienthong::pb::exchange_client::ExchangeClient::new(channel);
    let refused = api
        .get_directory(lienthong::pb::GetDirectoryRequest::default())
        .await
        .expect_err("no API on the health port");
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
}
