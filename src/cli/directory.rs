//! `lienthong directory`: the organisations and groups documents can be
//! sent to, and who the server thinks the caller is.

use clap::Args;
use serde_json::json;

use super::connection::{connect, Connection};
use super::error::Result;
use super::output::{self, outln, print_json};
use crate::pb;

#[derive(Args)]
pub struct DirectoryArgs {
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn run(args: DirectoryArgs) -> Result {
    let mut client = connect(&args.conn).await?;
    let response = client
        .get_directory(pb::GetDirectoryRequest {})
        .await?
        .into_inner();
    print_directory(&response, args.conn.json);
    Ok(())
}

fn print_directory(d: &pb::GetDirectoryResponse, as_json: bool) {
    if as_json {
        print_json(&json!({
            "caller": output::org(&d.caller),
            "organizations": d.organizations.iter().map(|o| {
                let mut row = output::org(&Some(o.clone()));
                row["abbreviation"] = json!(o.abbreviation);
                row
            }).collect::<Vec<_>>(),
            "groups": d.groups.iter().map(|g| json!({"alias": g.alias, "name": g.name, "kinds": g.kinds})).collect::<Vec<_>>(),
        }));
        return;
    }
    outln!("you are: {}", output::org_short(&d.caller));
    // ABBR: the issuer part of the organisation's notations (15/QĐ-UBND).
    outln!(
        "{:<14} {:<16} {:<11} {:<7} NAME",
        "CODE",
        "ALIAS",
        "KIND",
        "ABBR"
    );
    for o in &d.organizations {
        outln!(
            "{:<14} {:<16} {:<11} {:<7} {}",
            o.code,
            o.alias,
            o.kind,
            o.abbreviation,
            o.name
        );
    }
    for g in &d.groups {
        outln!(
            "{:<14} {:<16} {:<11} {:<7} {}",
            "(group)",
            g.alias,
            g.kinds.join(","),
            "",
            g.name
        );
    }
}
