//! The configuration of `serve`: a flag over its environment variable over
//! the configuration file over the default; unknown keys and bad values
//! refused naming the file (or variable) and the key; `config check`; and
//! the example file holding every option at its default.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::cli::ok_json;

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");

/// `lienthong ARGS` with only the environment variables `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run lienthong")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

/// Each setting's value and source, from `config print --json`.
fn settings(printed: &Value) -> BTreeMap<String, (Value, String)> {
    printed["settings"]
        .as_object()
        .expect("settings")
        .iter()
        .map(|(k, v)| {
            let source = v["source"].as_str().expect("source").to_owned();
            (k.clone(), (v["value"].clone(), source))
        })
        .collect()
}

#[test]
fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = write(
        tmp.path(),
        "lienthong.toml",
        "listen = \"127.0.0.1:1\"\nidle-seconds = 5\nmax-connections = 10\nhealth = \"127.0.0.1:9\"\n",
    );
    let env = [
        ("LIENTHONG_LISTEN", "127.0.0.1:2"),
        ("LIENTHONG_IDLE_SECONDS", "7"),
        ("LIENTHONG_STALL_SECONDS", "8"),
    ];
    let printed = ok_json(run(
        &[
            "config",
            "print",
            "--json",
            "--config",
            &file,
            "--listen",
            "127.0.0.1:3",
        ],
        &env,
    ));
    assert_eq!(printed["file"], file.as_str());
    let s = settings(&printed);
    let is = |key: &str, value: &str, source: &str| {
        assert_eq!(s[key], (Value::from(value), source.to_owned()), "{key}");
    };
    is("listen", "127.0.0.1:3", "flag"); // over the environment and the file
    is("idle-seconds", "7", "env"); // over the file
    is("stall-seconds", "8", "env"); // over the default
    is("max-connections", "10", "file"); // over the default
    is("health", "127.0.0.1:9", "file");
    is("max-connections-per-address", "256", "default");
    assert_eq!(s["http"], (Value::Null, "unset".to_owned()));
    assert_eq!(
        printed["settings"]["idle-seconds"]["variable"],
        "LIENTHONG_IDLE_SECONDS"
    );

    // LIENTHONG_CONFIG names the file as --config does; and the text form
    // says where each value came from.
    let out = run(
        &["config", "print"],
        &[("LIENTHONG_CONFIG", &file), ("LIENTHONG_IDLE_SECONDS", "7")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no line for {key}:\n{text}"))
            .to_owned()
    };
    assert!(
        line("max-connections").ends_with(&format!("# file {file}")),
        "{text}"
    );
    assert!(
        line("idle-seconds").ends_with("# env LIENTHONG_IDLE_SECONDS"),
        "{text}"
    );
    assert!(line("stall-seconds").ends_with("# default"), "{text}");
    // What it prints is itself a configuration file `config check` takes.
    let printed = write(tmp.path(), "printed.toml", &text);
    let checked = run(&["config", "check", &printed], &[]);
    assert!(checked.status.success(), "{}", stderr(&checked));
}

#[test]
fn unknown_keys_and_bad_values_stop_serve_naming_the_file_and_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let data = data.to_str().expect("utf-8");
    let cases = [
        (
            "max-conections = 5\n",
            "unknown key \"max-conections\" (did you mean max-connections?)",
        ),
        (
            "max-connections = \"40x96\"\n",
            "max-connections: \"40x96\" is not a whole number of at least 1",
        ),
        ("listen = 50051\n", "listen: invalid socket address syntax"),
        (
            "max-frame-kib = 8\n",
            "max-frame-kib: 8 is not in 16..=16383",
        ),
        (
            "log-format = \"xml\"\n",
            "log-format: \"xml\" is not one of: human, json",
        ),
        ("[limits]\nmax-connections = 5\n", "unknown key \"limits\""),
        (
            "data = [\"a\", \"b\"]\n",
            "data: takes one value, not a list of 2",
        ),
        ("idle-seconds = \n", "not valid TOML"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = write(tmp.path(), &format!("bad-{i}.toml"), text);
        let message = format!("{file}: {expected}");
        let served = run(&["serve", "--config", &file, "--data", data], &[]);
        assert!(!served.status.success(), "{text:?} was taken");
        assert!(
            stderr(&served).contains(&message),
            "{message}\n{}",
            stderr(&served)
        );
        let checked = run(&["config", "check", &file], &[]);
        assert!(!checked.status.success(), "{text:?} passed the check");
        assert!(stderr(&checked).contains(&message), "{}", stderr(&checked));
    }
    assert!(
        !Path::new(data).exists(),
        "start-up stopped before anything"
    );

    // A bad value in the environment names the variable.
    let served = run(
        &["serve", "--data", data],
        &[("LIENTHONG_MAX_CONNECTIONS", "0")],
    );
    assert!(!served.status.success());
    assert!(
        stderr(&served)
            .contains("$LIENTHONG_MAX_CONNECTIONS: \"0\" is not a whole number of at least 1"),
        "{}",
        stderr(&served)
    );
    assert!(
        !Path::new(data).exists(),
        "start-up stopped before anything"
    );

    // A missing file.
    let missing = tmp.path().join("missing.toml");
    let served = run(
        &[
            "serve",
            "--data",
            data,
            "--config",
            missing.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(
        stderr(&served).contains(&format!("NOT_FOUND: cannot read {}", missing.display())),
        "{}",
        stderr(&served)
    );
}

#[test]
fn config_check_judges_the_whole_file_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = write(
        tmp.path(),
        "good.toml",
        "listen = \"0.0.0.0:50051\"\nmax-connections = 100\nlog-format = \"json\"\n",
    );
    // The environment is left out: a bad variable does not spoil the file.
    let checked = ok_json(run(
        &["config", "check", &good, "--json"],
        &[("LIENTHONG_MAX_CONNECTIONS", "0")],
    ));
    assert_eq!(checked["ok"], true);
    assert_eq!(
        checked["keys"],
        serde_json::json!(["listen", "log-format", "max-connections"])
    );

    // Each value valid, but not together.
    for (text, expected) in [
        (
            "tls-cert = \"/etc/lienthong/server.crt\"\n",
            "need all three of --tls-cert, --tls-key and --client-ca",
        ),
        (
            "org-request-budget-mib = 300\n",
            "is smaller than that of one organisation",
        ),
        (
            "holidays = \"/nonexistent/holidays.toml\"\n",
            "/nonexistent/holidays.toml",
        ),
    ] {
        let file = write(tmp.path(), "together.toml", text);
        let out = run(&["config", "check", &file], &[]);
        assert!(!out.status.success(), "{text:?} passed");
        assert!(
            stderr(&out).contains(expected),
            "{text:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(&file),
            "names the file: {}",
            stderr(&out)
        );
    }
}

/// `deploy/lienthong.toml` has a commented `# key = value` line for every
/// option of `serve`, at its default where it has one, and passes the
/// check both as it is and with those lines uncommented.
#[test]
fn the_example_configuration_lists_every_option_at_its_default() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lienthong.toml");
    let checked = run(&["config", "check", example], &[]);
    assert!(checked.status.success(), "{}", stderr(&checked));

    let defaults = settings(&ok_json(run(&["config", "print", "--json"], &[])));
    let text = std::fs::read_to_string(example).expect("deploy/lienthong.toml");
    let mut listed = BTreeMap::new();
    for line in text.lines() {
        let Some(setting) = line.strip_prefix("# ") else {
            continue;
        };
        let Ok(table) = setting.parse::<toml::Table>() else {
            continue; // prose
        };
        for (key, value) in table {
            assert!(
                listed.insert(key.clone(), value).is_none(),
                "{key} is listed twice"
            );
        }
    }
    let keys: Vec<&String> = listed.keys().collect();
    let options: Vec<&String> = defaults.keys().collect();
    assert_eq!(
        keys, options,
        "the example lists exactly the options of serve"
    );

    let mut uncommented = String::new();
    for (key, value) in &listed {
        let (default, source) = &defaults[key];
        if source == "unset" {
            continue; // an example value, for an option off by default
        }
        let text = match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(&Value::from(text), default, "{key} is not at its default");
        uncommented.push_str(&format!("{key} = {value}\n"));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = write(tmp.path(), "uncommented.toml", &uncommented);
    let checked = run(&["config", "check", &file], &[]);
    assert!(checked.status.success(), "{}", stderr(&checked));
}

/// The Kubernetes ConfigMap's `lienthong.toml` holds only options of
/// `serve`, each read from the file, so the manifests cannot drift from the
/// configuration they feed.
#[test]
fn the_kubernetes_configuration_holds_only_options_of_serve() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/configmap.yaml"
    );
    let yaml = std::fs::read_to_string(manifest).expect("configmap.yaml");
    let block: String = yaml
        .split("lienthong.toml: |\n")
        .nth(1)
        .expect("a lienthong.toml key")
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    let tmp = tempfile::tempdir().expect("tmp");
    let file = write(tmp.path(), "lienthong.toml", &block);
    let keys: Vec<String> = block
        .parse::<toml::Table>()
        .expect("the ConfigMap's file is TOML")
        .keys()
        .cloned()
        .collect();
    assert!(keys.len() >= 5, "{keys:?}");
    let printed = run(&["config", "print", "--config", &file, "--json"], &[]);
    assert!(printed.status.success(), "{}", stderr(&printed));
    let settings = settings(&ok_json(printed));
    for key in keys {
        let (_, source) = settings
            .get(&key)
            .unwrap_or_else(|| panic!("{key} is no option of serve"));
        assert!(source.starts_with("file"), "{key}: {source}");
    }
}
