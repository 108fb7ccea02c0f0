//! `lienthong config print` and `lienthong config check`: the configuration
//! `serve` would run with and where each value came from, and a
//! configuration file checked without starting anything.

use std::path::PathBuf;

use clap::{Args, FromArgMatches, Subcommand};
use serde_json::{json, Map, Value};
use tonic::Code;

use super::error::{CliError, Result};
use super::layers::{self, Parsed, Source};
use super::output::{outln, print_json};
use super::serve::ServeArgs;
use crate::store::postgres::PostgresUrl;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Show the configuration `serve` would run with, from the same
    /// options, environment and file, and where each value came from: flag,
    /// env, file or default.
    Print(Box<PrintArgs>),
    /// Check a configuration file without starting: every key known, every
    /// value valid, the files it names readable, the whole consistent. The
    /// environment is left out: the file is judged alone.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct PrintArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// One JSON document: `file`, and under `settings` each key's `value`
    /// (text, a list, or null) and `source` (`flag`, `env`, `file`,
    /// `default`, `unset`), with the `variable` for `env`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The configuration file (TOML).
    pub file: PathBuf,
    /// Print the result as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: ConfigCommand, parsed: &Parsed) -> Result {
    match command {
        ConfigCommand::Print(args) => print(args.json, parsed),
        ConfigCommand::Check(args) => check(args),
    }
}

/// A value as TOML: numbers and booleans bare, anything else quoted.
fn toml_value(text: &str) -> toml::Value {
    if let Ok(i) = text.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        if let Ok(x) = text.parse::<f64>() {
            return toml::Value::Float(x);
        }
    }
    match text {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(text.to_owned()),
    }
}

fn print(json: bool, parsed: &Parsed) -> Result {
    let matches = layers::serve_options(&parsed.matches)
        .ok_or("`config print` was not given the options of `serve`")?;
    let file = parsed.file.as_ref();
    let mut settings = Map::new();
    let mut lines = Vec::new();
    for arg in layers::keys() {
        let key = arg.get_long().unwrap_or_default();
        let source = Source::of(matches, file, &arg);
        let mut values = layers::values(matches, arg.get_id().as_str());
        if key == "store" {
            // A database URL may hold a password: never shown.
            values = values
                .iter()
                .map(|url| PostgresUrl::redacted(url))
                .collect();
        }
        let mut entry = json!({
            "value": match values.as_slice() {
                [] => Value::Null,
                [one] if !matches!(arg.get_action(), clap::ArgAction::Append) => json!(one),
                all => json!(all),
            },
            "source": source.name(),
        });
        if let Source::Variable(name) = &source {
            entry["variable"] = json!(name);
        }
        settings.insert(key.to_owned(), entry);
        let line = match values.as_slice() {
            [] => format!("# {key} ="),
            [one] if !matches!(arg.get_action(), clap::ArgAction::Append) => {
                format!("{key} = {}", toml_value(one))
            }
            all => format!(
                "{key} = {}",
                toml::Value::Array(all.iter().map(|v| toml_value(v)).collect())
            ),
        };
        let from = match &source {
            Source::Variable(name) => format!("env {name}"),
            Source::File => format!(
                "file {}",
                file.map(|f| f.path.display().to_string())
                    .unwrap_or_default()
            ),
            Source::Unset => "not set".to_owned(),
            other => other.name().to_owned(),
        };
        lines.push((line, from));
    }
    if json {
        print_json(&json!({
            "file": file.map(|f| f.path.display().to_string()),
            "settings": settings,
        }));
        return Ok(());
    }
    match file {
        Some(f) => outln!("# `lienthong serve` with the file {}", f.path.display()),
        None => outln!("# `lienthong serve` with no configuration file"),
    }
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (line, from) in lines {
        outln!("{line:width$}  # {from}");
    }
    Ok(())
}

fn check(args: CheckArgs) -> Result {
    let file = layers::read(&args.file)?;
    let at = |message: String| format!("{}: {message}", args.file.display());
    let matches = layers::file_alone(&file).map_err(|e| at(e.to_string()))?;
    let serve = ServeArgs::from_arg_matches(&matches).map_err(|e| at(e.to_string()))?;
    let config = serve.server_config().map_err(|e| CliError {
        message: at(e.message),
        ..e
    })?;
    config
        .check()
        .map_err(|e| CliError::new(Code::InvalidArgument, at(e.to_string())))?;
    // The files it names, read as `serve` reads them (the holidays were
    // read by `server_config`).
    crate::directory::Directory::load(config.directory.as_deref())
        .map_err(|e| CliError::new(Code::FailedPrecondition, at(e.to_string())))?;
    if let Some(keys) = &config.signing_keys {
        crate::keys::KeyRegistry::load(keys)
            .map_err(|e| CliError::new(Code::FailedPrecondition, at(e.to_string())))?;
    }
    let set: Vec<String> = layers::keys()
        .iter()
        .filter(|a| file.sets(a.get_id().as_str()))
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    if args.json {
        print_json(&json!({
            "file": args.file.display().to_string(),
            "ok": true,
            "keys": set,
        }));
    } else {
        outln!(
            "{}: ok ({} of {} keys set; the rest at their defaults)",
            args.file.display(),
            set.len(),
            layers::keys().len()
        );
    }
    Ok(())
}
