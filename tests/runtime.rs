//! The operator process as a platform team runs it: leader election through
//! a Lease (two replicas, one acts; the standby takes over when the leader
//! dies), health probes and Prometheus metrics. Its own control plane, since
//! it runs operator processes of its own.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry::api::{Edition, Tenant, TenantSpec};
use ferry::testenv::{ControlPlane, Options, User};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;

struct Replica {
    name: String,
    child: Child,
    health: u16,
    metrics: u16,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn replica(cp: &ControlPlane, name: &str) -> Replica {
    let (health, metrics, artifacts) = (port(), port(), port());
    let log = std::fs::File::create(cp.dir().join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--leader-elect", "--storage-dir"])
        .arg(cp.dir().join(format!("{name}-artifacts")))
        .arg(format!("--health-bind-address=127.0.0.1:{health}"))
        .arg(format!("--metrics-bind-address=127.0.0.1:{metrics}"))
        .arg(format!("--artifact-bind-address=127.0.0.1:{artifacts}"))
        .env("KUBECONFIG", cp.kubeconfig(User::Admin))
        .env("POD_NAME", name)
        .env("POD_NAMESPACE", "default")
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Replica {
        name: name.into(),
        child,
        health,
        metrics,
    }
}

/// A plain HTTP GET on loopback, returning (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        code,
        out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string(),
    ))
}

async fn eventually<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("ferry-leader")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

async fn tenant_ready(tenants: &Api<Tenant>, name: &str) -> Option<()> {
    let t = tenants.get_opt(name).await.ok()??;
    ferry::conditions::is_true(&t.status?.conditions, ferry::conditions::READY).then_some(())
}

#[tokio::test]
async fn one_replica_leads_the_standby_takes_over_and_both_serve_probes_and_metrics() {
    let cp = ControlPlane::start(Options::default()).await.unwrap();
    cp.install_crds(&ferry::api::all_crds()).await.unwrap();
    let client = cp.client(User::Admin).await.unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let tenants: Api<Tenant> = Api::all(client);

    let mut replicas = vec![replica(&cp, "ferry-a"), replica(&cp, "ferry-b")];
    for r in &replicas {
        let (h, m) = (r.health, r.metrics);
        eventually(
            "health probes answer",
            Duration::from_secs(30),
            async || (get(h, "/healthz")?.0 == 200 && get(h, "/readyz")?.0 == 200).then_some(()),
        )
        .await;
        let (code, body) = eventually("metrics answer", Duration::from_secs(10), async || {
            get(m, "/metrics")
        })
        .await;
        assert_eq!(code, 200);
        // OpenMetrics text; families appear once they have a sample.
        assert!(body.contains("# EOF"), "{body}");
    }

    let leader = eventually(
        "a replica takes the lease",
        Duration::from_secs(30),
        async || holder(&leases).await,
    )
    .await;
    assert!(replicas.iter().any(|r| r.name == leader), "holder {leader}");
    tenants
        .create(
            &PostParams::default(),
            &Tenant::new(
                "t-first",
                TenantSpec {
                    edition: Edition::Basic,
                    display_name: None,
                },
            ),
        )
        .await
        .unwrap();
    eventually(
        "the leader reconciles",
        Duration::from_secs(30),
        async || tenant_ready(&tenants, "t-first").await,
    )
    .await;
    let leader_metrics = replicas.iter().find(|r| r.name == leader).unwrap().metrics;
    let standby_metrics = replicas.iter().find(|r| r.name != leader).unwrap().metrics;
    let count = |port| {
        get(port, "/metrics")
            .map(|(_, b)| b.contains(r#"ferry_reconciles_total{controller="tenant"}"#))
            .unwrap_or(false)
    };
    assert!(
        count(leader_metrics),
        "the leader counts its tenant reconciles"
    );
    assert!(!count(standby_metrics), "the standby does not act");

    // The leader dies (SIGKILL: no goodbye); the standby takes the lease
    // once it expires and acts.
    let killed = std::time::Instant::now();
    replicas.retain(|r| r.name != leader);
    let next = eventually(
        "the standby takes over",
        Duration::from_secs(60),
        async || holder(&leases).await.filter(|h| *h != leader),
    )
    .await;
    assert_eq!(next, replicas[0].name);
    tenants
        .create(
            &PostParams::default(),
            &Tenant::new(
                "t-second",
                TenantSpec {
                    edition: Edition::Basic,
                    display_name: None,
                },
            ),
        )
        .await
        .unwrap();
    let after_kill = killed.elapsed();
    eventually(
        "the new leader reconciles",
        Duration::from_secs(30),
        async || tenant_ready(&tenants, "t-second").await,
    )
    .await;

    // A clean stop (SIGTERM, as Kubernetes stops a pod): the leader gives
    // the lease up before it exits, and the next standby takes it without
    // waiting for it to expire.
    let standby = replica(&cp, "ferry-c");
    let h = standby.health;
    eventually(
        "the new standby is ready",
        Duration::from_secs(30),
        async || (get(h, "/readyz")?.0 == 200).then_some(()),
    )
    .await;
    let mut leader = replicas.remove(0);
    let terminated = std::time::Instant::now();
    let term = Command::new("kill")
        .args(["-TERM", &leader.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = leader.child.wait().unwrap();
    assert!(exit.success(), "a clean stop exits 0: {exit:?}");
    let holder_at_exit = holder(&leases).await;
    assert_ne!(
        holder_at_exit.as_deref(),
        Some(leader.name.as_str()),
        "the stopped leader still holds the lease"
    );
    let log = std::fs::read_to_string(cp.dir().join(format!("{}.log", leader.name))).unwrap();
    assert!(log.contains("released the leader lease"), "{log}");
    let next = eventually(
        "the standby takes the released lease",
        Duration::from_secs(60),
        async || holder(&leases).await.filter(|h| *h == standby.name),
    )
    .await;
    assert_eq!(next, "ferry-c");
    // Figures for the record (not asserted: the machine's load varies).
    eprintln!(
        "takeover after SIGKILL (lease expiry): {after_kill:?}; after SIGTERM (lease released): {:?}",
        terminated.elapsed()
    );
    drop(standby);
}
