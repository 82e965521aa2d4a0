//! The chart's network, size and TLS values, rendered with the real `helm`
//! (`FERRY_TOOLS_BIN`, or what `hack/install-tools.sh` prints), and the
//! flags they render parsed by the real `ferry` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> PathBuf {
    let bin = match std::env::var("FERRY_TOOLS_BIN") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let out = Command::new("bash")
                .arg(repo().join("hack/install-tools.sh"))
                .output()
                .expect("running hack/install-tools.sh");
            assert!(out.status.success(), "hack/install-tools.sh failed");
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        }
    };
    bin.join("helm")
}

fn template(set: &[&str]) -> Output {
    let chart = repo().join("charts/ferry");
    let mut args = vec![
        "template".to_string(),
        "ferry".into(),
        chart.to_str().unwrap().into(),
        "--namespace".into(),
        "ferry-system".into(),
    ];
    for s in set {
        args.push("--set".into());
        args.push(s.to_string());
    }
    let tmp = std::env::temp_dir().join("ferry-chart-limits");
    Command::new(helm())
        .args(&args)
        .env("HELM_CACHE_HOME", tmp.join("cache"))
        .env("HELM_CONFIG_HOME", tmp.join("config"))
        .env("HELM_DATA_HOME", tmp.join("data"))
        .output()
        .expect("running helm")
}

/// The operator Deployment's pod spec, rendered with `set`.
fn pod(set: &[&str]) -> serde_json::Value {
    let out = template(set);
    assert!(
        out.status.success(),
        "helm template {set:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&stdout)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment")["spec"]["template"]["spec"]
        .clone()
}

fn args(pod: &serde_json::Value) -> Vec<String> {
    pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("{name}=")))
}

#[test]
fn the_remote_package_bound_follows_the_volume_size() {
    let by_default = args(&pod(&[]));
    assert_eq!(
        flag(&by_default, "--max-remote-package-bytes"),
        Some("1073741824"),
        "10Gi: a tenth is over the verifier's 1 GiB, so 1 GiB"
    );
    assert!(!by_default.contains(&"--allow-private-sources".to_string()));
    let small = args(&pod(&["persistence.size=2Gi"]));
    assert_eq!(
        flag(&small, "--max-remote-package-bytes"),
        Some("214748364")
    );
    let mib = args(&pod(&["persistence.size=500Mi"]));
    assert_eq!(flag(&mib, "--max-remote-package-bytes"), Some("52428800"));
    let explicit = args(&pod(&[
        "persistence.size=2Gi",
        "sources.maxPackageBytes=1000",
    ]));
    assert_eq!(flag(&explicit, "--max-remote-package-bytes"), Some("1000"));
    // An emptyDir has no size to derive from: the verifier's bound holds.
    let no_volume = args(&pod(&["persistence.enabled=false"]));
    assert_eq!(flag(&no_volume, "--max-remote-package-bytes"), None);

    let decimal = args(&pod(&["persistence.size=20G"]));
    assert_eq!(
        flag(&decimal, "--max-remote-package-bytes"),
        Some("1073741824")
    );
    // A size the schema allows but that is no whole number: say so.
    let out = template(&["persistence.size=1.5Gi"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("persistence.size=1.5Gi") && err.contains("sources.maxPackageBytes"),
        "{err}"
    );
}

#[test]
fn network_endpoint_and_tls_values_render_flags_and_the_secret_mount() {
    let p = pod(&[
        "sources.allowPrivateNetworks=true",
        "sources.deniedCIDRs={203.0.113.0/24,2001:db8::/32}",
        "artifactServer.maxConnections=8",
        "artifactServer.maxUploads=2",
        "artifactServer.bodyTimeoutSeconds=60",
        "artifactServer.tokenAudiences={ferry}",
        "artifactServer.tls.secretName=ferry-artifact-tls",
    ]);
    let a = args(&p);
    assert!(a.contains(&"--allow-private-sources".to_string()), "{a:?}");
    assert_eq!(
        flag(&a, "--denied-source-cidrs"),
        Some("203.0.113.0/24,2001:db8::/32")
    );
    assert_eq!(flag(&a, "--artifact-max-connections"), Some("8"));
    assert_eq!(flag(&a, "--artifact-max-uploads"), Some("2"));
    assert_eq!(flag(&a, "--artifact-body-timeout-seconds"), Some("60"));
    assert_eq!(flag(&a, "--artifact-token-audiences"), Some("ferry"));
    assert_eq!(
        flag(&a, "--artifact-tls-cert-file"),
        Some("/etc/ferry/artifact-tls/tls.crt")
    );
    assert_eq!(
        flag(&a, "--artifact-tls-key-file"),
        Some("/etc/ferry/artifact-tls/tls.key")
    );
    let volume = p["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "artifact-tls")
        .expect("the TLS Secret volume");
    assert_eq!(volume["secret"]["secretName"], "ferry-artifact-tls");
    let mount = p["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "artifact-tls")
        .expect("the TLS mount");
    assert_eq!(mount["mountPath"], "/etc/ferry/artifact-tls");
    assert_eq!(mount["readOnly"], true);

    // The binary accepts every flag the chart renders.
    let mut run = Command::new(env!("CARGO_BIN_EXE_ferry"));
    run.arg("run").args(a.iter().filter(|x| *x != "run"));
    // Parsing happens before anything else; with a kubeconfig that does not
    // exist the process stops at "cannot reach a cluster", after parsing.
    let out = run
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot reach a cluster"),
        "the rendered flags did not parse: {err}"
    );

    let plain = pod(&[]);
    assert!(
        flag(&args(&plain), "--artifact-tls-cert-file").is_none(),
        "TLS is opt-in"
    );
    assert!(
        !plain["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "artifact-tls")
    );
}

#[test]
fn the_schema_refuses_malformed_network_values() {
    for bad in [
        "sources.deniedCIDRs={not-a-cidr}",
        "sources.maxPackageBytes=-1",
        "artifactServer.maxConnections=0",
        "artifactServer.tls.nope=x",
    ] {
        let out = template(&[bad]);
        assert!(!out.status.success(), "{bad} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("values don't meet the specifications of the schema"),
            "{bad}: {err}"
        );
    }
}
