//! `lienthong types`: the 29 document types of Decree 30, and reading the
//! `--type` a user typed (code, abbreviation or Vietnamese name).

use clap::Args;
use serde_json::json;

use super::error::{CliError, Result};
use super::output::{outln, print_json};
use crate::document::types::{self, TYPES};

#[derive(Args)]
pub struct TypesArgs {
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TypesArgs) -> Result {
    if args.json {
        print_json(&json!({
            "types": TYPES.iter().map(|t| json!({
                "code": t.code,
                "abbreviation": t.abbreviation,
                "name": t.name,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    outln!("{:<16} {:<6} NAME", "CODE", "ABBR.");
    for t in &TYPES {
        outln!("{:<16} {:<6} {}", t.code, t.abbreviation, t.name);
    }
    Ok(())
}

/// The code of the type a user named in `field` (`--type`).
pub fn code_of(field: &str, name: &str) -> Result<&'static str> {
    types::find_loosely(name).map(|t| t.code).ok_or_else(|| {
        CliError::new(
            tonic::Code::InvalidArgument,
            format!("{field} {name:?} is not one of the 29 document types"),
        )
        .with_hint("`lienthong types` lists them: a code (quyet-dinh), an abbreviation (QĐ) or a name (Quyết định, or quyet dinh)")
    })
}
