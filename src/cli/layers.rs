//! Where each option of `serve` comes from: a flag, else its environment
//! variable, else the configuration file, else the built-in default.
//!
//! Every long option of `serve` is all three at once, by one rule: `--KEY`,
//! `LIENTHONG_KEY` (upper case, `-` as `_`), and `KEY = …` in the TOML file
//! that `--config FILE` (or `LIENTHONG_CONFIG`) names. So a new option of
//! [`ServeArgs`] is a new key and a new variable with no other change.
//!
//! clap already layers a flag over its environment variable over the
//! default, and says which applied (`ArgMatches::value_source`); the file
//! is the one layer it lacks. It is added here as clap's default for each
//! key the file sets, after each value has gone through that option's own
//! parser and checks, so a value is judged the same from a flag, a variable
//! or the file. A layering crate (figment) was weighed and left out: it
//! would bring its own dependencies and a second `toml` into the build,
//! take over none of clap's work (flags, variables, help, per-option
//! checks, which would have to be written again as serde types), and say
//! where a value came from no better than clap does; this file is the
//! whole of the work it would have done.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command};

use super::error::CliError;
use super::serve::ServeArgs;

/// The id of `--config`, the one option that is not a key of the file.
const CONFIG: &str = "config";

/// The environment variable of the option `--key`: `LIENTHONG_KEY`.
pub fn variable(key: &str) -> String {
    format!("LIENTHONG_{}", key.to_uppercase().replace('-', "_"))
}

/// `serve` with its options alone, as declared: no environment variables.
fn declared() -> Command {
    ServeArgs::augment_args(Command::new("serve"))
}

/// The options a file and the environment may set: every long option of
/// `serve` but `--config`, in the order of `serve --help`.
pub fn keys() -> Vec<Arg> {
    keys_of(&declared())
}

fn keys_of(options: &Command) -> Vec<Arg> {
    options
        .get_arguments()
        .filter(|a| a.get_long().is_some() && a.get_id() != CONFIG)
        .cloned()
        .collect()
}

/// The subcommands that take the options of `serve`: `serve` itself and
/// `config print`.
fn on_serve_options(command: Command, change: impl Fn(Command) -> Command) -> Command {
    command
        .mut_subcommand("serve", &change)
        .mut_subcommand("config", |config| config.mut_subcommand("print", &change))
}

/// Gives every option of `serve` (and `--config`) its environment variable.
pub fn with_variables(command: Command) -> Command {
    let ids: Vec<String> = declared()
        .get_arguments()
        .filter_map(|a| a.get_long().map(|_| a.get_id().to_string()))
        .collect();
    on_serve_options(command, move |mut sub| {
        for id in &ids {
            sub = sub.mut_arg(id, |a| {
                let name = variable(a.get_long().unwrap_or_default());
                a.env(name)
            });
        }
        sub
    })
}

/// A configuration file, read and checked: every key an option of
/// `serve`, every value one it accepts.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// Each key's values (several for an option given more than once), as
    /// text, as on the command line; by option id.
    values: BTreeMap<String, Vec<String>>,
}

impl ConfigFile {
    /// Whether the file sets the option `id`.
    pub fn sets(&self, id: &str) -> bool {
        self.values.contains_key(id)
    }
}

/// Where a value that is refused was written.
#[derive(Debug)]
pub enum Origin {
    File(PathBuf),
    Variable(String),
}

/// Why a configuration is refused; each names the file or the variable,
/// and the key.
#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Syntax {
        path: PathBuf,
        message: String,
    },
    UnknownKey {
        path: PathBuf,
        key: String,
        suggestion: Option<String>,
    },
    Invalid {
        origin: Origin,
        key: String,
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConfigError::Syntax { path, message } => {
                write!(f, "{}: not valid TOML: {}", path.display(), message.trim())
            }
            ConfigError::UnknownKey {
                path,
                key,
                suggestion,
            } => {
                write!(f, "{}: unknown key {key:?}", path.display())?;
                match suggestion {
                    Some(near) => write!(f, " (did you mean {near}?)"),
                    None => f.write_str(" (`lienthong serve --help` lists the keys)"),
                }
            }
            ConfigError::Invalid {
                origin: Origin::File(path),
                key,
                message,
            } => write!(f, "{}: {key}: {message}", path.display()),
            ConfigError::Invalid {
                origin: Origin::Variable(name),
                key: _,
                message,
            } => write!(f, "${name}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> CliError {
        match &e {
            ConfigError::Read { path, source } => {
                CliError::io(format_args!("cannot read {}", path.display()), source)
            }
            _ => CliError::new(tonic::Code::InvalidArgument, e.to_string()),
        }
    }
}

/// The key nearest to a misspelt one, if one is near enough.
fn nearest(key: &str, keys: &[Arg]) -> Option<String> {
    keys.iter()
        .filter_map(|a| a.get_long())
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_owned())
}

/// A TOML value as the command line would give it; `None` for a table,
/// which is no option's value.
fn as_text(value: &toml::Value) -> Option<Vec<String>> {
    use toml::Value;
    Some(match value {
        Value::String(s) => vec![s.clone()],
        Value::Integer(i) => vec![i.to_string()],
        Value::Float(x) => vec![x.to_string()],
        Value::Boolean(b) => vec![b.to_string()],
        Value::Datetime(d) => vec![d.to_string()],
        Value::Array(items) => {
            let mut all = Vec::new();
            for item in items {
                match as_text(item)?.as_slice() {
                    [one] => all.push(one.clone()),
                    _ => return None,
                }
            }
            all
        }
        Value::Table(_) => return None,
    })
}

/// Runs `values` through the option's own parser and checks, as if given
/// on the command line of `options`; the reason in the words of that check
/// if refused.
fn check_values(options: &Command, arg: &Arg, values: &[String]) -> Result<(), String> {
    let key = arg.get_long().unwrap_or_default();
    if values.len() > 1 && !matches!(arg.get_action(), ArgAction::Append) {
        return Err(format!("takes one value, not a list of {}", values.len()));
    }
    // A switch (`--flag`, no value on the command line) is true or false.
    if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        return match values {
            [v] if v == "true" || v == "false" => Ok(()),
            _ => Err(format!("{:?} is not true or false", values.join(" "))),
        };
    }
    let mut argv = vec![OsString::from("serve")];
    argv.extend(
        values
            .iter()
            .map(|v| OsString::from(format!("--{key}={v}"))),
    );
    match options.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e) => Err(reason(&e)),
    }
}

/// What a refused value is refused for, without clap's usage lines.
fn reason(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    if let (Some(ContextValue::String(value)), Some(ContextValue::Strings(valid))) = (
        e.get(ContextKind::InvalidValue),
        e.get(ContextKind::ValidValue),
    ) {
        return format!("{value:?} is not one of: {}", valid.join(", "));
    }
    let rendered = e.render().to_string();
    let lines: Vec<&str> = rendered
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    lines.join(" ")
}

/// Reads and checks a configuration file.
pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
    read_for(&declared(), path)
}

/// Reads a configuration file of the options of `options`.
fn read_for(options: &Command, path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let keys = keys_of(options);
    let mut values = BTreeMap::new();
    for (key, value) in &table {
        let Some(arg) = keys.iter().find(|a| a.get_long() == Some(key.as_str())) else {
            return Err(ConfigError::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                suggestion: nearest(key, &keys),
            });
        };
        let invalid = |message: String| ConfigError::Invalid {
            origin: Origin::File(path.to_owned()),
            key: key.clone(),
            message,
        };
        let text = as_text(value)
            .ok_or_else(|| invalid(format!("a value is expected, not a {}", value.type_str())))?;
        check_values(options, arg, &text).map_err(invalid)?;
        values.insert(arg.get_id().to_string(), text);
    }
    Ok(ConfigFile {
        path: path.to_owned(),
        values,
    })
}

/// Checks every `LIENTHONG_KEY` variable that is set (and not overridden by
/// its flag in `given`), so that a bad one is refused naming the variable.
pub fn check_variables(given: Option<&ArgMatches>) -> Result<(), ConfigError> {
    let options = declared();
    for arg in keys_of(&options) {
        let id = arg.get_id().as_str();
        let switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        // A switch's variable takes clap's yes/no/1/0 too: clap judges it.
        if switch || given.is_some_and(|m| m.value_source(id) == Some(ValueSource::CommandLine)) {
            continue;
        }
        let key = arg.get_long().unwrap_or_default();
        let name = variable(key);
        let Some(value) = std::env::var_os(&name).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = value.to_string_lossy().into_owned();
        check_values(&options, &arg, std::slice::from_ref(&value)).map_err(|message| {
            ConfigError::Invalid {
                origin: Origin::Variable(name),
                key: key.to_owned(),
                message,
            }
        })?;
    }
    Ok(())
}

/// The file's values as the defaults of the options of `serve` (in `serve`
/// and `config print`), under the environment and the flags.
pub fn apply(command: Command, file: &ConfigFile) -> Command {
    let file = file.clone();
    on_serve_options(command, move |sub| with_defaults(sub, &file))
}

/// `options` with the file's values as their defaults.
fn with_defaults(mut options: Command, file: &ConfigFile) -> Command {
    for (id, text) in &file.values {
        options = options.mut_arg(id, |a| a.default_values(text.clone()));
    }
    options
}

/// The file's values as the defaults of `serve`'s options alone, with no
/// environment: the file as `serve` would read it on a clean machine.
pub fn file_alone(file: &ConfigFile) -> Result<ArgMatches, clap::Error> {
    with_defaults(declared(), file).try_get_matches_from(["serve"])
}

/// The matches of `serve`'s options, in `serve` or `config print`.
pub fn serve_options(matches: &ArgMatches) -> Option<&ArgMatches> {
    match matches.subcommand()? {
        ("serve", sub) => Some(sub),
        ("config", config) => match config.subcommand()? {
            ("print", print) => Some(print),
            _ => None,
        },
        _ => None,
    }
}

/// The command line, read with the configuration file and the environment
/// where it takes the options of `serve`.
pub struct Parsed {
    pub matches: ArgMatches,
    /// The configuration file, when one was given.
    pub file: Option<ConfigFile>,
}

/// Parses the command line of `command`; for `serve` and `config print`,
/// checks the environment's values and adds the file's. A usage error
/// ends the process as clap does (status 2, with `--help` status 0).
pub fn parse(command: Command) -> Result<Parsed, ConfigError> {
    let matches = match command.clone().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => {
            // A bad value in the environment: name the variable, which
            // clap does not.
            let serving = std::env::args_os()
                .nth(1)
                .is_some_and(|a| a == "serve" || a == "config");
            if serving
                && matches!(
                    e.kind(),
                    ErrorKind::ValueValidation | ErrorKind::InvalidValue
                )
            {
                check_variables(None)?;
            }
            e.exit()
        }
    };
    let Some(options) = serve_options(&matches) else {
        return Ok(Parsed {
            matches,
            file: None,
        });
    };
    check_variables(Some(options))?;
    let Some(path) = options.get_one::<PathBuf>(CONFIG).cloned() else {
        return Ok(Parsed {
            matches,
            file: None,
        });
    };
    let file = read(&path)?;
    let matches = apply(command, &file).get_matches();
    Ok(Parsed {
        matches,
        file: Some(file),
    })
}

/// Where the value of option `id` came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Variable(String),
    File,
    Default,
    /// No value, and no default: the option is off.
    Unset,
}

impl Source {
    pub fn of(matches: &ArgMatches, file: Option<&ConfigFile>, arg: &Arg) -> Source {
        let id = arg.get_id().as_str();
        match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => {
                Source::Variable(variable(arg.get_long().unwrap_or_default()))
            }
            Some(ValueSource::DefaultValue) if file.is_some_and(|f| f.sets(id)) => Source::File,
            Some(_) => Source::Default,
            None => Source::Unset,
        }
    }

    /// `flag`, `env`, `file`, `default` or `unset`.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Variable(_) => "env",
            Source::File => "file",
            Source::Default => "default",
            Source::Unset => "unset",
        }
    }
}

/// The values of option `id`, as text (none when unset).
pub fn values(matches: &ArgMatches, id: &str) -> Vec<String> {
    matches
        .get_raw(id)
        .map(|raw| {
            raw.map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options of the kinds `serve` may grow: a switch, a repeated option,
    /// a number.
    fn options() -> Command {
        Command::new("serve")
            .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue))
            .arg(
                Arg::new("operator")
                    .long("operator")
                    .action(ArgAction::Append),
            )
            .arg(
                Arg::new("port")
                    .long("port")
                    .value_parser(clap::value_parser!(u16)),
            )
    }

    fn read_text(text: &str) -> Result<ConfigFile, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        read_for(&options(), &path)
    }

    #[test]
    fn switches_and_lists_are_keys_too() {
        let file =
            read_text("quiet = true\noperator = [\"CN=a\", \"CN=b\"]\nport = 8\n").expect("read");
        let matches = with_defaults(options(), &file)
            .try_get_matches_from(["serve"])
            .expect("parsed");
        assert!(matches.get_flag("quiet"));
        let operators: Vec<&String> = matches.get_many("operator").expect("set").collect();
        assert_eq!(operators, ["CN=a", "CN=b"]);
        assert_eq!(matches.get_one::<u16>("port"), Some(&8));

        // A flag given replaces the file's list, as it replaces a default.
        let matches = with_defaults(options(), &file)
            .try_get_matches_from(["serve", "--operator", "CN=c"])
            .expect("parsed");
        let operators: Vec<&String> = matches.get_many("operator").expect("set").collect();
        assert_eq!(operators, ["CN=c"]);
    }

    #[test]
    fn each_kind_refuses_what_it_cannot_take() {
        let refused = |text: &str| read_text(text).expect_err(text).to_string();
        assert!(refused("quiet = \"yes\"\n").contains("quiet: \"yes\" is not true or false"));
        assert!(refused("port = [1, 2]\n").contains("port: takes one value, not a list of 2"));
        assert!(refused("port = 70000\n").contains("port: 70000 is not in 0..=65535"));
        assert!(refused("operator = { cn = \"a\" }\n")
            .contains("operator: a value is expected, not a table"));
        assert!(refused("prot = 1\n").contains("unknown key \"prot\" (did you mean port?)"));
    }
}
