//! A fault-injecting HTTPS proxy in front of the test apiserver: clients
//! given [`FaultProxy::kubeconfig`] talk to the apiserver through it, and
//! while faults are armed, a share of their write requests (POST, PUT,
//! PATCH, DELETE) fail the way a loaded or flaky apiserver fails them:
//!
//! - `429 Too Many Requests` with `Retry-After` and
//!   `details.retryAfterSeconds` (API Priority and Fairness), not forwarded;
//! - `500` before forwarding: the write did not happen;
//! - `500` after forwarding: the write happened, the answer was lost, and a
//!   client that retries must cope with its own earlier write.
//!
//! Faults follow a fixed rotation over write requests (deterministic, so a
//! failure reproduces) and stop after a budget: "for a while". A test can
//! also fail chosen writes ([`FaultProxy::fail_matching`]). Reads and
//! watches always pass through, streamed. Counters say what went through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::body::Body;
use http::{Method, Request, Response, StatusCode};

use super::ControlPlane;

/// What went through the proxy since it started or since [`FaultProxy::reset`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every request, reads and watches included.
    pub requests: u64,
    /// Write requests (POST, PUT, PATCH, DELETE).
    pub writes: u64,
    /// Answered 429 without forwarding.
    pub throttled: u64,
    /// Answered 500 without forwarding.
    pub failed_before: u64,
    /// Forwarded (and done), then answered 500.
    pub failed_after: u64,
    /// Answered 500 without forwarding by [`FaultProxy::fail_matching`].
    pub targeted: u64,
}

impl Counts {
    pub fn faults(&self) -> u64 {
        self.throttled + self.failed_before + self.failed_after
    }
}

/// Writes to fail on purpose: path and body containing these, this many times.
struct Targeted {
    path: String,
    body: String,
    left: u64,
}

#[derive(Default)]
struct State {
    targeted: std::sync::Mutex<Option<Targeted>>,
    armed: AtomicBool,
    budget: AtomicU64,
    requests: AtomicU64,
    writes: AtomicU64,
    throttled: AtomicU64,
    failed_before: AtomicU64,
    failed_after: AtomicU64,
    targeted_hits: AtomicU64,
}

#[derive(Clone, Copy)]
enum Fault {
    Throttle,
    FailBefore,
    FailAfter,
}

/// The proxy; it serves until the process ends.
pub struct FaultProxy {
    /// `https://127.0.0.1:<port>`, with the apiserver's own certificate.
    pub url: String,
    state: Arc<State>,
}

/// One write in this many is throttled, one failed before forwarding and
/// one failed after: three in ten writes fail while armed.
const ROTATION: u64 = 10;

impl FaultProxy {
    /// Starts the proxy in front of `cp`'s apiserver, disarmed, on the
    /// calling runtime.
    pub async fn start(cp: &ControlPlane) -> anyhow::Result<FaultProxy> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = cp.dir().join("certs/apiserver.crt");
        let key = cp.dir().join("certs/apiserver.key");
        let tls = crate::server::tls_config(&ca, &key)?;
        let upstream = reqwest::Client::builder()
            .tls_certs_merge([reqwest::Certificate::from_pem(&std::fs::read(&ca)?)?])
            .no_proxy()
            .http1_only()
            .build()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
        let state = Arc::new(State::default());
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let target = cp.server.clone();
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let upstream = upstream.clone();
                let target = target.clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        handle(state.clone(), upstream.clone(), target.clone(), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(FaultProxy { url, state })
    }

    /// Arms faults until `budget` of them were injected.
    pub fn arm(&self, budget: u64) {
        self.state.budget.store(budget, Ordering::SeqCst);
        self.state.armed.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.state.armed.store(false, Ordering::SeqCst);
    }

    /// Answers 500, without forwarding, the next `times` write requests
    /// whose path contains `path` and whose body contains `body`.
    pub fn fail_matching(&self, path: &str, body: &str, times: u64) {
        *self.state.targeted.lock().expect("targeted poisoned") = Some(Targeted {
            path: path.into(),
            body: body.into(),
            left: times,
        });
    }

    pub fn counts(&self) -> Counts {
        let s = &self.state;
        Counts {
            requests: s.requests.load(Ordering::SeqCst),
            writes: s.writes.load(Ordering::SeqCst),
            throttled: s.throttled.load(Ordering::SeqCst),
            failed_before: s.failed_before.load(Ordering::SeqCst),
            failed_after: s.failed_after.load(Ordering::SeqCst),
            targeted: s.targeted_hits.load(Ordering::SeqCst),
        }
    }

    /// Zeroes the counters.
    pub fn reset(&self) {
        let s = &self.state;
        for c in [
            &s.requests,
            &s.writes,
            &s.throttled,
            &s.failed_before,
            &s.failed_after,
            &s.targeted_hits,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// A client that talks to the apiserver through the proxy, as `user` of
    /// `cp` (the proxy serves the apiserver's own certificate, so the
    /// kubeconfig's CA holds).
    pub async fn client(
        &self,
        cp: &ControlPlane,
        user: super::User,
    ) -> anyhow::Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(cp.kubeconfig(user))?;
        let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        config.cluster_url = self.url.parse()?;
        Ok(kube::Client::try_from(config)?)
    }
}

fn status(code: StatusCode, reason: &str, message: &str, retry_after: u32) -> Response<Body> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
        "details": {"retryAfterSeconds": retry_after}, "code": code.as_u16(),
    });
    let mut r = Response::builder()
        .status(code)
        .header("content-type", "application/json");
    if retry_after > 0 {
        r = r.header("retry-after", retry_after.to_string());
    }
    r.body(Body::from(body.to_string()))
        .expect("a well-formed response")
}

fn pick(state: &State, method: &Method) -> Option<Fault> {
    if !matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return None;
    }
    let n = state.writes.fetch_add(1, Ordering::SeqCst);
    if !state.armed.load(Ordering::SeqCst) {
        return None;
    }
    let fault = match n % ROTATION {
        1 => Fault::Throttle,
        4 => Fault::FailBefore,
        7 => Fault::FailAfter,
        _ => return None,
    };
    // Spend one unit of the budget; disarm when it runs out.
    let spent = state
        .budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1));
    match spent {
        Ok(1) => {
            state.armed.store(false, Ordering::SeqCst);
            Some(fault)
        }
        Ok(_) => Some(fault),
        Err(_) => {
            state.armed.store(false, Ordering::SeqCst);
            None
        }
    }
}

/// Whether this write is one [`FaultProxy::fail_matching`] chose; spends one.
fn targeted(state: &State, path: &str, body: &[u8]) -> bool {
    let mut slot = state.targeted.lock().expect("targeted poisoned");
    let Some(t) = slot.as_mut() else {
        return false;
    };
    let hit =
        t.left > 0 && path.contains(&t.path) && String::from_utf8_lossy(body).contains(&t.body);
    if hit {
        t.left -= 1;
    }
    hit
}

async fn handle(
    state: Arc<State>,
    upstream: reqwest::Client,
    target: String,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), 64 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return Ok(status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("proxy: {e}"),
                0,
            ));
        }
    };
    if parts.method != Method::GET && targeted(&state, parts.uri.path(), &body) {
        state.targeted_hits.fetch_add(1, Ordering::SeqCst);
        return Ok(status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the fault proxy failed this chosen request",
            0,
        ));
    }
    let fault = pick(&state, &parts.method);
    match fault {
        Some(Fault::Throttle) => {
            state.throttled.fetch_add(1, Ordering::SeqCst);
            return Ok(status(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "the fault proxy throttled this request",
                1,
            ));
        }
        Some(Fault::FailBefore) => {
            state.failed_before.fetch_add(1, Ordering::SeqCst);
            return Ok(status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "the fault proxy failed this request",
                0,
            ));
        }
        _ => {}
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forward = upstream.request(parts.method.clone(), format!("{target}{path}"));
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            forward = forward.header(name, value);
        }
    }
    let answer = match forward.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            return Ok(status(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                &format!("proxy: {e}"),
                0,
            ));
        }
    };
    if let Some(Fault::FailAfter) = fault {
        // The write is done upstream; its answer is lost.
        let _ = answer.bytes().await;
        state.failed_after.fetch_add(1, Ordering::SeqCst);
        return Ok(status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the fault proxy lost the answer to this request",
            0,
        ));
    }
    let mut out = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            out = out.header(name, value);
        }
    }
    Ok(out
        .body(Body::from_stream(answer.bytes_stream()))
        .expect("a well-formed response"))
}
