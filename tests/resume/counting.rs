//! Counting the operator's apiserver requests.
//!
//! kube's client stack ends in a `TraceLayer` that opens one `HTTP` span per
//! request it hands to hyper (below the retry layer, so a retried request
//! counts once per attempt, as the apiserver sees it). A tracing layer
//! counts those spans. kube's `Client` runs its service in a `Buffer`
//! worker spawned on the runtime that built the client, so the spans of the
//! operator's client open on the operator runtime's threads: only spans
//! opened on threads named [`COUNTED_THREADS`] are counted, which keeps the
//! test's own requests out.
//!
//! (A tower `Layer` on `kube::client::ClientBuilder` would do the same, but
//! `tower` is not a dependency of this crate and kube does not re-export it.)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Name of the threads whose requests count.
pub const COUNTED_THREADS: &str = "ferry-counted";

/// Requests counted so far, in total and per kind.
#[derive(Default)]
pub struct Counter {
    total: AtomicU64,
    by_kind: Mutex<BTreeMap<String, u64>>,
}

impl Counter {
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }

    pub fn by_kind(&self) -> BTreeMap<String, u64> {
        self.by_kind.lock().unwrap().clone()
    }
}

static COUNTER: OnceLock<&'static Counter> = OnceLock::new();

/// Installs the counting layer as the process's subscriber (once) and
/// returns the counter.
pub fn counter() -> &'static Counter {
    COUNTER.get_or_init(|| {
        let counter: &'static Counter = Box::leak(Box::default());
        tracing_subscriber::registry()
            .with(Counting(counter))
            .try_init()
            .expect("installing the counting subscriber");
        counter
    })
}

struct Counting(&'static Counter);

fn is_request_span(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == "HTTP" && meta.target().starts_with("kube_client")
}

impl<S: Subscriber> Layer<S> for Counting {
    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        is_request_span(meta)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        if !is_request_span(attrs.metadata()) {
            return;
        }
        let counted = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(COUNTED_THREADS));
        if !counted {
            return;
        }
        let mut v = Fields::default();
        attrs.record(&mut v);
        self.0.total.fetch_add(1, Ordering::SeqCst);
        *self
            .0
            .by_kind
            .lock()
            .unwrap()
            .entry(kind(&v.method, &v.url))
            .or_default() += 1;
    }
}

#[derive(Default)]
struct Fields {
    method: String,
    url: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "http.method" => self.method = format!("{value:?}"),
            "http.url" => self.url = format!("{value:?}"),
            _ => {}
        }
    }
}

/// `PATCH scheduledtasks/status`, `LIST tables`, `WATCH importtasks`, ...
/// from the method and the request path.
pub fn kind(method: &str, url: &str) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = path
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map(|i| &rest[i..]).unwrap_or(""))
        .unwrap_or(path);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // /api/v1/... or /apis/group/version/...
    let rest: &[&str] = match segs.first() {
        Some(&"api") => segs.get(2..).unwrap_or(&[]),
        Some(&"apis") => segs.get(3..).unwrap_or(&[]),
        _ => return format!("{method} {path}"),
    };
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verb = match (method, rest.len(), watch) {
        (_, _, true) => "WATCH",
        ("GET", 1, false) => "LIST",
        (m, _, _) => m,
    };
    match rest {
        [] => format!("{verb} namespaces"),
        [resource] | [resource, _] => format!("{verb} {resource}"),
        [resource, _, sub, ..] => format!("{verb} {resource}/{sub}"),
    }
}

#[cfg(test)]
mod tests {
    use super::kind;

    #[test]
    fn kinds() {
        let base = "https://127.0.0.1:1";
        assert_eq!(
            kind(
                "PATCH",
                &format!(
                    "{base}/apis/ferry.dev/v1alpha1/namespaces/ws/scheduledtasks/a/status?fieldManager=x"
                )
            ),
            "PATCH scheduledtasks/status"
        );
        assert_eq!(
            kind(
                "GET",
                "/apis/ferry.dev/v1alpha1/namespaces/ws/tables?limit=500"
            ),
            "LIST tables"
        );
        assert_eq!(
            kind(
                "GET",
                "/apis/ferry.dev/v1alpha1/importtasks?watch=true&timeoutSeconds=290"
            ),
            "WATCH importtasks"
        );
        assert_eq!(kind("GET", "/api/v1/namespaces/ws"), "GET namespaces");
        assert_eq!(
            kind("POST", "/apis/events.k8s.io/v1/namespaces/ws/events"),
            "POST events"
        );
    }
}
