//! The deployment files of `deploy/`, checked by the tools their users
//! would run: `systemd-analyze verify` (and its sandboxing score) for the
//! unit; `hadolint` for the Dockerfile, since no container engine runs
//! here to build it; the Kubernetes API's schemas, strictly, for the
//! manifests (`kubernetes-validate`, offline: kubectl's dry run needs a
//! cluster, and kubeconform is not packaged); the Compose specification for
//! the compose files; HAProxy itself for the balancer's configuration, and
//! a client's connection through it. `bash tests/run` installs the tools
//! (systemd from Debian, HAProxy unpacked from Debian's package, the rest
//! into its Python environment). Also: every file the build embeds reaches
//! the image's build stage.

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

/// The `.yaml` files directly in `dir`, sorted.
fn manifests_in(dir: &Path) -> Vec<PathBuf> {
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    manifests.sort();
    manifests
}

fn read_all(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn the_kubernetes_manifests_match_the_api_schemas() {
    let embedded = manifests_in(&deploy("kubernetes"));
    let front_ends = manifests_in(&deploy("kubernetes/front-ends"));
    assert!(embedded.len() >= 3, "{embedded:?}");
    assert!(front_ends.len() >= 3, "{front_ends:?}");
    // The oldest release with gRPC probes generally available, and the
    // newest the checker knows.
    for version in ["1.27.0", "1.37.0"] {
        let output = run(Command::new(venv_tool("kubernetes-validate"))
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .args(&embedded)
            .args(&front_ends));
        assert!(
            output.status.success(),
            "kubernetes-validate --strict (Kubernetes {version}):\n{}",
            report(&output)
        );
    }
    let all = read_all(&embedded);
    for kind in ["StatefulSet", "Service", "ConfigMap"] {
        assert!(all.contains(&format!("\nkind: {kind}\n")), "no {kind}");
    }
    assert!(
        all.contains("\n  replicas: 1\n"),
        "one replica: the store is embedded"
    );

    // Several front ends: stateless pods on a shared volume, the store's
    // URL from a Secret, probed as the StatefulSet is.
    let all = read_all(&front_ends);
    for kind in [
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
    ] {
        assert!(all.contains(&format!("\nkind: {kind}\n")), "no {kind}");
    }
    assert!(!all.contains("\nkind: StatefulSet\n"));
    assert!(all.contains("\n  replicas: 2\n"), "two front ends");
    assert!(all.contains("accessModes: [\"ReadWriteMany\"]"));
    assert!(
        all.contains(
            "- name: LIENTHONG_STORE\n              valueFrom:\n                secretKeyRef:\n"
        ),
        "the store's URL comes from a Secret"
    );
    assert_eq!(all.matches("grpc:\n              port: 8081\n").count(), 3);
}

#[test]
fn the_compose_files_match_the_compose_specification() {
    for name in ["compose.yaml", "compose-postgres.yaml"] {
        let output = run(Command::new(venv_tool("check-jsonschema"))
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(deploy(name)));
        assert!(
            output.status.success(),
            "check-jsonschema deploy/{name}:\n{}",
            report(&output)
        );
    }
    // The database's password is never in the file: it must be given.
    let text = std::fs::read_to_string(deploy("compose-postgres.yaml")).unwrap();
    let placeholder = "${LIENTHONG_PG_PASSWORD:?set LIENTHONG_PG_PASSWORD}";
    assert!(text.contains(&format!("POSTGRES_PASSWORD: {placeholder}\n")));
    assert!(text.contains(&format!(
        "LIENTHONG_STORE: postgres://lienthong:{placeholder}@postgres:5432/lienthong\n"
    )));
    assert!(text.contains("\n    image: postgres:15\n"));
    assert!(text.contains("[\"CMD\", \"pg_isready\""));
}

/// HAProxy as `bash tests/run` provides it.
fn haproxy() -> PathBuf {
    let haproxy = root().join("target/test-haproxy/haproxy");
    assert!(
        haproxy.exists(),
        "{} is missing: run `bash tests/run`, which provides it",
        haproxy.display()
    );
    haproxy
}

/// What `haproxy -c` says of `config`: success, or the output. Warnings
/// that the compose network's names do not resolve here are expected.
fn haproxy_check(config: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let output = run(Command::new(haproxy()).arg("-c").arg("-f").arg(&file));
    let said = report(&output);
    let unexpected = said
        .lines()
        .filter(|l| l.contains("[WARNING]") || l.contains("[ALERT]"))
        .any(|l| !l.contains("could not resolve address 'front-end-"));
    if output.status.success() && !unexpected {
        Ok(())
    } else {
        Err(said)
    }
}

#[test]
fn the_balancer_configuration_passes_haproxy_check() {
    let config = std::fs::read_to_string(deploy("haproxy.cfg")).unwrap();
    if let Err(said) = haproxy_check(&config) {
        panic!("haproxy -c -f deploy/haproxy.cfg:\n{said}");
    }
    // Layer 4: TLS passes through.
    assert!(config.contains("\n    mode tcp\n"));
    let compose = std::fs::read_to_string(deploy("compose-postgres.yaml")).unwrap();
    for server in ["front-end-1", "front-end-2"] {
        assert!(config.contains(&format!("    server {server} {server}:50051\n")));
        assert!(compose.contains(&format!("\n  {server}:\n")));
    }
    // The check sees a mistake.
    let said = haproxy_check(&config.replace("inter 2s", "intre 2s")).expect_err("refused");
    assert!(said.contains("intre"), "{said}");
}

/// HAProxy running `config` in the foreground; stopped on drop.
struct Balancer(std::process::Child);

impl Drop for Balancer {
    fn drop(&mut self) {
        use rustix::process::{kill_process, Pid, Signal};
        // SIGTERM: the master stops its worker, then itself.
        let _ = kill_process(Pid::from_child(&self.0), Signal::TERM);
        let _ = self.0.wait();
    }
}

/// Starts HAProxy on `config`, handing it `listener` as `fd@N` (so no
/// port is given up and taken again), and waits for its readiness
/// notification.
fn start_balancer(config: &str, listener: &std::net::TcpListener, dir: &Path) -> Balancer {
    use std::os::unix::net::UnixDatagram;
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let notify = dir.join("notify");
    let socket = UnixDatagram::bind(&notify).unwrap();
    // The listener is inherited: it must survive exec. Other processes
    // spawned meanwhile may inherit it too, which only keeps it open.
    rustix::io::fcntl_setfd(listener, rustix::io::FdFlags::empty()).unwrap();
    let spawned = Command::new(haproxy())
        .args(["-Ws", "-db", "-f"])
        .arg(&file)
        .env("NOTIFY_SOCKET", &notify)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn();
    rustix::io::fcntl_setfd(listener, rustix::io::FdFlags::CLOEXEC).unwrap();
    let balancer = Balancer(spawned.expect("haproxy starts"));
    // A bound on a wait for a signal, so that a HAProxy that never starts
    // fails the test rather than hanging it.
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let mut buf = [0u8; 512];
    loop {
        let n = socket.recv(&mut buf).unwrap_or_else(|e| {
            let said = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
            panic!("no readiness notification from HAProxy ({e}):\n{said}")
        });
        if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
            return balancer;
        }
    }
}

/// Through the balancer of compose-postgres.yaml, as configured: TLS ends
/// in the front end, which names each caller from its own certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_balancer_each_client_is_named_by_its_own_certificate() {
    use std::os::fd::AsRawFd;
    let server = crate::common::TestServer::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = std::fs::read_to_string(deploy("haproxy.cfg")).unwrap();
    let bind = "\n    bind :50051\n";
    assert!(config.contains(bind));
    let mut config = config.replace(bind, &format!("\n    bind fd@{}\n", listener.as_raw_fd()));
    for server_name in ["front-end-1:50051", "front-end-2:50051"] {
        assert!(config.contains(server_name));
        config = config.replace(server_name, &server.addr().to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let _balancer = start_balancer(&config, &listener, dir.path());

    let url = format!("https://127.0.0.1:{port}");
    for org in ["xa-van-nham", "ubnd-huyen"] {
        let channel = crate::common::channel_to(&url, &server.pki(), org, None).await;
        let directory = lienthong::pb::exchange_client::ExchangeClient::new(channel)
            .get_directory(lienthong::pb::GetDirectoryRequest {})
            .await
            .expect("directory through the balancer")
            .into_inner();
        assert_eq!(
            directory.caller.map(|c| c.alias),
            Some(org.to_string()),
            "the front end saw {org}'s certificate"
        );
    }
}
