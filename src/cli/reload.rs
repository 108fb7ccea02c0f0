//! `lienthong reload`: asks a running server, as an operator, to read its
//! TLS certificate and key, client CA and signing-key registry again (as
//! SIGHUP does), and says what it now uses or why it refused.

use clap::Args;
use serde_json::json;

use super::connection::{self, Connection};
use super::error::Result;
use super::output::{outln, print_json};
use crate::pb;
use crate::pb::operations_client::OperationsClient;

#[derive(Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn run(args: ReloadArgs) -> Result {
    let mut client = OperationsClient::new(connection::channel(&args.conn).await?);
    let reloaded = client.reload(pb::ReloadRequest {}).await?.into_inner();
    if args.conn.json {
        print_json(&json!({
            "server_certificate": reloaded.server_certificate,
            "not_after": reloaded.not_after,
            "client_cas": reloaded.client_cas,
            "signing_keys": reloaded.signing_keys,
        }));
    } else {
        outln!(
            "reloaded: server certificate {} (valid until {}), {} client CA certificate(s), {} signing key(s)",
            reloaded.server_certificate,
            reloaded.not_after,
            reloaded.client_cas,
            reloaded.signing_keys
        );
    }
    Ok(())
}
