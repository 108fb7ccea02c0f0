//! The deployment files of `deploy/`, checked by the tools their users
//! would run: `systemd-analyze verify` (and its sandboxing score) for the
//! unit; `hadolint` for the Dockerfile, since no container engine runs
//! here to build it; the Kubernetes API's schemas, strictly, for the
//! manifests (`kubernetes-validate`, offline: kubectl's dry run needs a
//! cluster, and kubeconform is not packaged); the Compose specification for
//! compose.yaml. `bash tests/run` installs the tools (systemd from Debian,
//! the rest into its Python environment). Also: every file the build
//! embeds reaches the image's build stage.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(name: &str) -> PathBuf {
    root().join("deploy").join(name)
}

/// A checker from the Python environment of `bash tests/run`.
fn venv_tool(name: &str) -> PathBuf {
    let python = crate::outside::python();
    let tool = python.with_file_name(name);
    assert!(
        tool.is_file(),
        "{} is missing: run `bash tests/run`, which installs it",
        tool.display()
    );
    tool
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn report(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A filesystem root for `systemd-analyze verify --root`: the host's own
/// units (for the targets the unit names), `unit` installed as
/// `lienthong.service`, and stand-ins for the programs it runs, which
/// verify checks are executable (installing the real binary is the
/// operator's step, not the unit's).
fn systemd_root(dir: &Path, unit: &str) {
    let host_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("multi-user.target").exists())
        .expect("the host's systemd units");
    std::fs::create_dir_all(dir.join("usr/lib/systemd")).unwrap();
    let copied = run(Command::new("cp")
        .arg("-a")
        .arg(host_units)
        .arg(dir.join("usr/lib/systemd/system")));
    assert!(copied.status.success(), "{}", report(&copied));
    std::fs::create_dir_all(dir.join("etc/systemd/system")).unwrap();
    std::fs::write(dir.join("etc/systemd/system/lienthong.service"), unit).unwrap();
    for program in ["usr/local/bin/lienthong", "usr/bin/kill"] {
        let path = dir.join(program);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::symlink("usr/bin", dir.join("bin")).unwrap();
}

/// What `systemd-analyze verify` says of `unit`: success and silence, or
/// the output.
fn verify(unit: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    systemd_root(dir.path(), unit);
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", dir.path().display()))
        .arg("lienthong.service")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}): run `bash tests/run`, which installs systemd")
        });
    // Warnings (an unknown key, a bad value) leave the exit status at 0.
    if output.status.success() && output.stdout.is_empty() && output.stderr.is_empty() {
        Ok(())
    } else {
        Err(report(&output))
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(deploy("lienthong.service")).unwrap();
    assert!(unit.contains("\nExecReload=/bin/kill -HUP $MAINPID\n"));
    if let Err(said) = verify(&unit) {
        panic!("systemd-analyze verify deploy/lienthong.service:\n{said}");
    }
    // The check sees a mistake: a misspelt key is only a warning to systemd.
    let misspelt = unit.replace("\nRestart=", "\nRestrat=");
    let said = verify(&misspelt).expect_err("a misspelt key is reported");
    assert!(said.contains("Restrat"), "{said}");

    // And the sandboxing stays tight: systemd's own exposure score, 0 (all
    // locked) to 10, at most 4.
    let dir = tempfile::tempdir().unwrap();
    systemd_root(dir.path(), &unit);
    let output = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=40"])
        .arg(format!("--root={}", dir.path().display()))
        .arg("lienthong.service"));
    assert!(
        output.status.success(),
        "the unit's exposure is above 4.0:\n{}",
        report(&output)
    );
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let output = run(Command::new(venv_tool("hadolint")).arg(deploy("Dockerfile")));
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "hadolint deploy/Dockerfile:\n{}",
        report(&output)
    );
}

/// The files `src/` embeds with `include_str!`/`include_bytes!`, as paths
/// from the repository's root.
fn embedded_files() -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for macro_name in ["include_str!(\"", "include_bytes!(\""] {
                for (_, rest) in text
                    .match_indices(macro_name)
                    .map(|(i, _)| text.split_at(i))
                {
                    let literal = &rest[macro_name.len()..];
                    let relative = &literal[..literal.find('"').unwrap()];
                    let mut file = path.parent().unwrap().to_path_buf();
                    for part in relative.split('/') {
                        match part {
                            ".." => {
                                file.pop();
                            }
                            part => file.push(part),
                        }
                    }
                    let from_root = file.strip_prefix(root()).unwrap();
                    found.push(from_root.to_string_lossy().into_owned());
                }
            }
        }
    }
    found
}

#[test]
fn every_file_the_build_embeds_reaches_the_image_build() {
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(deploy("Dockerfile.dockerignore")).unwrap();
    // The build stage's sources: `COPY a b dest`, not `COPY --from=…`.
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let sent: Vec<&str> = ignore.lines().filter_map(|l| l.strip_prefix('!')).collect();
    let covers = |sources: &[&str], file: &str| {
        sources
            .iter()
            .any(|s| file == *s || (s.ends_with('/') && file.starts_with(s)))
    };
    let embedded = embedded_files();
    assert!(
        embedded.iter().any(|f| f == "deploy/huu-lung.toml"),
        "{embedded:?}"
    );
    for file in &embedded {
        assert!(
            covers(&copied, file),
            "deploy/Dockerfile does not COPY {file}, which src/ embeds"
        );
        assert!(
            covers(&sent, file),
            "deploy/Dockerfile.dockerignore does not let {file} into the build"
        );
    }
}

#[test]
fn the_kubernetes_manifests_match_the_api_schemas() {
    let dir = deploy("kubernetes");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 3, "{manifests:?}");
    // The oldest release with gRPC probes generally available, and the
    // newest the checker knows.
    for version in ["1.27.0", "1.37.0"] {
        let output = run(Command::new(venv_tool("kubernetes-validate"))
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .args(&manifests));
        assert!(
            output.status.success(),
            "kubernetes-validate --strict (Kubernetes {version}):\n{}",
            report(&output)
        );
    }
    let all: String = manifests
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for kind in ["StatefulSet", "Service", "ConfigMap"] {
        assert!(all.contains(&format!("\nkind: {kind}\n")), "no {kind}");
    }
    assert!(
        all.contains("\n  replicas: 1\n"),
        "one replica: the store is embedded"
    );
}

#[test]
fn the_compose_file_matches_the_compose_specification() {
    let output = run(Command::new(venv_tool("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(deploy("compose.yaml")));
    assert!(
        output.status.success(),
        "check-jsonschema deploy/compose.yaml:\n{}",
        report(&output)
    );
}
