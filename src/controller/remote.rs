//! Remote package sources: HTTP(S) URLs and S3-compatible object stores.
//!
//! Both stream the body into the artifact store's incoming area (never
//! whole into memory) and stop as soon as more than `max_bytes` arrived:
//! a `Content-Length` (or object size) over the bound is refused up front,
//! but neither is trusted.
//!
//! Where the operator may connect is decided here, not by the tenant: the
//! host is resolved once, every address it resolves to must be public
//! (unless the operator runs with `--allow-private-sources`), and the HTTP
//! client is pinned to those very addresses, so a second DNS answer
//! (rebinding) cannot send the connection elsewhere. Redirects are followed
//! only within the same origin (scheme, host, port): no other host, no
//! https→http downgrade. Messages say what failed and never carry the
//! remote body or socket-level detail (refused, reset, timed out read the
//! same), so a source cannot be used to scan a network; the detail goes to
//! the operator's log. Permanent problems (a missing object, bad
//! credentials, a malformed Secret) are refusals; network trouble and server
//! errors are [`Error::Waiting`], so the controller comes back.
//!
//! Secrets stay secret: header values, keys and CA bundles are never
//! formatted into a message, a log line or status; messages name the Secret
//! and its key instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Once};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, ObjectStoreExt, RetryConfig};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::chunks::Received;
use super::package::{Refusal, refuse};
use super::{Context, Error};
use crate::api::{ObjectStoreSource, UrlSource};
use crate::artifact::{ArtifactStore, ReceiveError};
use crate::operator::SourceNetwork;

/// How long a transient failure waits before the controller tries again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Connecting must not hang a reconcile pass.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A stalled body (no byte for this long) is a transient failure.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The whole transfer; a 30 MB package takes seconds on any sane link.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(300);

/// reqwest is built without a bundled crypto provider (`rustls-no-provider`)
/// so that the operator carries one TLS stack: kube's rustls with `ring`.
/// Installing `ring` as the process default is what lets reqwest (ours and
/// object_store's) build its TLS config. Harmless when already installed.
fn ensure_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn unavailable(message: String) -> Refusal {
    Refusal::Other(Error::Waiting {
        reason: "SourceUnavailable",
        message,
        retry_after: RETRY_AFTER,
    })
}

/// Reads a Secret in `ns`, refusing when it does not exist.
async fn read_secret(ctx: &Context, ns: &str, name: &str, field: &str) -> Result<Secret, Refusal> {
    // Checked before it goes into a request path (security review 2.4).
    super::package::check_object_name(&format!("{field}.name"), name)?;
    // Read as the namespace's workspace identity: the operator itself may
    // read no Secret (see `tenancy`).
    Api::<Secret>::namespaced(super::tenancy::client_as(ctx, ns), ns)
        .get_opt(name)
        .await
        .map_err(|e| super::tenancy::forbidden_or(ctx, ns, field, "Secret", name, e))?
        .ok_or_else(|| {
            refuse(
                "SourceNotFound",
                format!("{field}: Secret {ns}/{name} does not exist"),
            )
        })
}

fn secret_key<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.as_bytes())
        })
}

/// Streams `body` into a new file of the store's incoming area, hashing as
/// it goes and refusing as soon as more than `max_bytes` arrived. `what`
/// names the source in messages.
async fn receive_bounded<S, B, E>(
    store: &ArtifactStore,
    mut body: S,
    max_bytes: u64,
    what: &str,
    on_error: impl Fn(E) -> Refusal,
) -> Result<Received, Refusal>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let storage = |e: ReceiveError| match e {
        ReceiveError::TooLarge { .. } => too_large(what, max_bytes),
        ReceiveError::Io(e) => refuse("StorageFailed", format!("artifact store: {e}")),
    };
    let mut receiver = store.receiver(max_bytes).map_err(storage)?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(&on_error)?;
        receiver.write(chunk.as_ref()).map_err(storage)?;
    }
    let (file, stored) = receiver.finish().map_err(storage)?;
    Ok(Received { file, stored })
}

fn too_large(what: &str, max_bytes: u64) -> Refusal {
    refuse(
        "PackageTooLarge",
        format!("{what}: the package is larger than the {max_bytes} bytes this source allows"),
    )
}

// ------------------------------------------------------------ network ----

/// Why an address is not public, in words a user reads; `None` when it is.
/// The table follows the IANA special-purpose registries: whatever is not
/// globally reachable (loopback, private, link-local where cloud metadata
/// services answer, shared NAT, multicast, reserved, documentation).
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_loopback() {
                Some("a loopback address")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                // fc00::/7, with fd00::/8 where metadata services answer
                // (fd00:ec2::254).
                Some("a unique-local (private) address")
            } else if seg[0] & 0xff00 == 0xff00 {
                Some("a multicast address")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("a documentation address")
            } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                || seg[..6] == [0x64, 0xff9b, 1, 0, 0, 0]
            {
                // NAT64 reaches the IPv4 address in its last 32 bits.
                let o = v6.octets();
                non_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else if seg[0] == 0x2002 {
                // 6to4 carries an IPv4 address in bits 16..48.
                let o = v6.octets();
                non_public_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if a == 0 {
        Some("a \"this network\" address (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_link_local() {
        Some("a link-local address (where cloud metadata services answer)")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("a shared (carrier-grade NAT) address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("an IETF protocol address")
    } else if a == 198 && (b & 0xfe) == 18 {
        Some("a benchmarking address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else if a >= 224 {
        Some("a multicast, reserved or broadcast address")
    } else {
        None
    }
}

/// Host names that never lead anywhere public: the machine itself, cluster
/// Services, and provider-internal names such as the metadata service's.
fn internal_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || [
            ".localhost",
            ".svc",
            ".cluster.local",
            ".internal",
            ".local",
        ]
        .iter()
        .any(|suffix| host.ends_with(suffix))
}

const ALLOW_FLAG: &str =
    "the operator reaches only public addresses unless it runs with --allow-private-sources";

impl SourceNetwork {
    /// Why the operator may not connect to `ip`, if it may not.
    fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        if let Some(net) = self.denied.iter().find(|n| n.contains(&ip)) {
            return Some(format!(
                "an address the operator is configured to refuse ({net})"
            ));
        }
        if self.allow_private {
            return None;
        }
        non_public(ip).map(String::from)
    }
}

/// A host and the addresses it resolved to, once; the HTTP client connects
/// to these and to nothing else.
#[derive(Debug)]
struct Pinned {
    host: String,
    addrs: Vec<IpAddr>,
}

/// A name the pinned resolver was not asked to resolve (only a redirect to
/// another host could ask, and those are refused before).
#[derive(Debug, thiserror::Error)]
#[error("{0} is not the pinned host")]
struct NotPinned(String);

impl Pinned {
    fn answer(&self, host: &str) -> Result<Vec<IpAddr>, NotPinned> {
        if host.trim_end_matches('.').eq_ignore_ascii_case(&self.host) {
            Ok(self.addrs.clone())
        } else {
            Err(NotPinned(host.to_string()))
        }
    }
}

#[derive(Debug, Clone)]
struct PinnedResolver(Arc<Pinned>);

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let answer = self.0.answer(name.as_str());
        Box::pin(async move {
            let addrs = answer?;
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

impl object_store::client::DnsResolver for PinnedResolver {
    fn resolve(&self, host: &str) -> object_store::client::DnsFuture {
        let answer = self.0.answer(host);
        Box::pin(async move { Ok(answer?) })
    }
}

/// Checks where `url` leads and pins it: an IP literal is checked as it is;
/// a name is resolved once and every address it resolves to is checked.
/// `what` names the field and the URL as messages show them.
async fn pin(
    net: &SourceNetwork,
    url: &reqwest::Url,
    what: &str,
) -> Result<PinnedResolver, Refusal> {
    let not_allowed =
        |why: String| refuse("SourceNotAllowed", format!("{what}: {why}; {ALLOW_FLAG}"));
    let (host, addrs) = match url.host() {
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), vec![IpAddr::V4(ip)]),
        Some(url::Host::Ipv6(ip)) => (format!("[{ip}]"), vec![IpAddr::V6(ip)]),
        Some(url::Host::Domain(name)) => {
            if !net.allow_private && internal_name(name) {
                return Err(not_allowed(format!(
                    "{name} is a cluster-internal or local host name"
                )));
            }
            let port = url.port_or_known_default().unwrap_or(443);
            let resolved =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((name, port))).await;
            let mut addrs: Vec<IpAddr> = match resolved {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                Ok(Err(e)) => {
                    tracing::info!(host = name, error = %e, "source host not resolved");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
            addrs.sort();
            addrs.dedup();
            if addrs.is_empty() {
                return Err(unavailable(format!(
                    "{what}: the host name {name} could not be resolved"
                )));
            }
            (name.to_string(), addrs)
        }
        None => {
            return Err(refuse(
                "SourceInvalid",
                format!("{what}: the URL has no host"),
            ));
        }
    };
    for ip in &addrs {
        if let Some(why) = net.refusal(*ip) {
            let via = if host == ip.to_string() || host == format!("[{ip}]") {
                format!("{host} is {why}")
            } else {
                format!("{host} resolves to {why}")
            };
            return Err(not_allowed(via));
        }
    }
    Ok(PinnedResolver(Arc::new(Pinned { host, addrs })))
}

/// Why a redirect from the chain `previous` (the original URL first) to
/// `next` is not followed, if it is not: only ten hops, and only within
/// `origin`, the original URL's scheme, host and port.
fn redirect_refusal(
    origin: &url::Origin,
    previous: &[reqwest::Url],
    next: &reqwest::Url,
) -> Option<&'static str> {
    if previous.len() >= 10 {
        Some("more than 10 times")
    } else if next.origin() == *origin {
        None
    } else if next.scheme() == "http" && previous.last().is_some_and(|u| u.scheme() == "https") {
        Some("from https to plain http")
    } else {
        Some("to another origin")
    }
}

/// A redirect that is not followed: to another origin, or more than ten.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RedirectRefused(&'static str);

fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        cur = err.source();
    }
    None
}

// ---------------------------------------------------------------- URL ----

/// The URL as messages show it: no password, no query string (which may
/// hold a presigned signature).
fn display_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(None);
        format!("{shown}?…")
    } else {
        shown.to_string()
    }
}

/// Parses the Secret's `headers` key: one `Name: value` per line, blank
/// lines and lines starting with `#` ignored. Errors name the line number,
/// never its content.
fn parse_headers(text: &str, origin: &str) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "{origin} line {n} is not of the form `Name: value`"
            ));
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("{origin} line {n}: invalid header name"))?;
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("{origin} line {n}: invalid header value for {name}"))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

/// Whether the error chain holds a TLS failure (a bad certificate is not
/// going to fix itself).
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls.to_string());
        }
        cur = err.source();
    }
    None
}

/// The innermost cause, for short messages (`Connection refused`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Fetches a package from a URL into the store's incoming area, refusing
/// more than `max_bytes` and any address the operator may not reach.
pub(super) async fn fetch_url(
    ctx: &Context,
    ns: &str,
    source: &UrlSource,
    max_bytes: u64,
) -> Result<Received, Refusal> {
    const FIELD: &str = "spec.source.url";
    let max_bytes = max_bytes.min(ctx.max_remote_bytes);
    let url = reqwest::Url::parse(&source.url)
        .map_err(|e| refuse("SourceInvalid", format!("{FIELD}: invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse(
            "SourceInvalid",
            format!("{FIELD}: only http and https URLs are supported"),
        ));
    }

    let mut headers = HeaderMap::new();
    let mut roots = Vec::new();
    if let Some(sref) = &source.secret_ref {
        let field = format!("{FIELD}.secretRef");
        let secret = read_secret(ctx, ns, &sref.name, &field).await?;
        let origin = format!("{field}: Secret {ns}/{} key \"headers\"", sref.name);
        if let Some(raw) = secret_key(&secret, "headers") {
            let text = std::str::from_utf8(raw)
                .map_err(|_| refuse("SourceInvalid", format!("{origin} is not UTF-8 text")))?;
            headers = parse_headers(text, &origin).map_err(|m| refuse("SourceInvalid", m))?;
        }
        if let Some(pem) = secret_key(&secret, "ca.crt") {
            let origin = format!("{field}: Secret {ns}/{} key \"ca.crt\"", sref.name);
            roots = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| {
                refuse(
                    "SourceInvalid",
                    format!("{origin} is not a PEM certificate bundle"),
                )
            })?;
            if roots.is_empty() {
                return Err(refuse(
                    "SourceInvalid",
                    format!("{origin} holds no certificate"),
                ));
            }
        }
    }

    let secret = source.secret_ref.as_ref().map(|s| s.name.as_str());
    get_into_store(
        &ctx.store,
        &ctx.source_network,
        ns,
        secret,
        Request {
            url,
            headers,
            roots,
        },
        max_bytes,
    )
    .await
}

/// What to GET: the URL, the Secret's headers and CA roots.
struct Request {
    url: reqwest::Url,
    headers: HeaderMap,
    roots: Vec<reqwest::Certificate>,
}

/// GETs `request.url` into `store`, pinned to addresses `net` allows.
/// `secret` names the Secret of the headers, for hints.
async fn get_into_store(
    store: &ArtifactStore,
    net: &SourceNetwork,
    ns: &str,
    secret: Option<&str>,
    request: Request,
    max_bytes: u64,
) -> Result<Received, Refusal> {
    const FIELD: &str = "spec.source.url";
    let Request {
        url,
        headers,
        roots,
    } = request;
    let shown = display_url(&url);
    let resolver = pin(net, &url, &format!("{FIELD}: {shown}")).await?;
    ensure_crypto_provider();
    // Only same-origin redirects: another host could be anything (and
    // would receive the Secret's headers), and a change of scheme is an
    // https→http downgrade. The pinned resolver refuses other hosts too.
    let origin = url.origin();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        match redirect_refusal(&origin, attempt.previous(), attempt.url()) {
            None => attempt.follow(),
            Some(why) => attempt.error(RedirectRefused(why)),
        }
    });
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(policy)
        // Straight to the pinned address: a proxy would resolve the name
        // again, out of the check's sight.
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .tls_certs_merge(roots)
        .build()
        .map_err(|e| {
            refuse(
                "SourceFetchFailed",
                format!("{FIELD}: cannot build an HTTP client: {}", root_cause(&e)),
            )
        })?;

    let request_failed = |e: reqwest::Error| -> Refusal {
        let e = e.without_url();
        if let Some(tls) = tls_failure(&e) {
            return refuse(
                "SourceFetchFailed",
                format!("{FIELD}: GET {shown}: TLS: {tls}"),
            );
        }
        if let Some(why) = find_in_chain::<RedirectRefused>(&e) {
            return refuse(
                "SourceFetchFailed",
                format!(
                    "{FIELD}: GET {shown}: the server redirected {why}; only redirects within the same origin (scheme, host and port) are followed"
                ),
            );
        }
        // Refused, reset, unreachable and timed out read the same: the
        // difference would map the network behind the source.
        tracing::info!(namespace = ns, url = %shown, error = %root_cause(&e), "URL source not reached");
        unavailable(format!(
            "{FIELD}: GET {shown}: the server could not be reached or did not answer in time"
        ))
    };

    let response = client
        .get(url.clone())
        .headers(headers)
        .send()
        .await
        .map_err(&request_failed)?;
    let status = response.status();
    if !status.is_success() {
        // The status line only: the body is the remote's and is not shown.
        let answered = format!("{FIELD}: GET {shown} answered {status}");
        return Err(match status.as_u16() {
            404 | 410 => refuse("SourceNotFound", answered),
            401 | 403 => refuse(
                "SourceFetchFailed",
                match secret {
                    Some(s) => format!("{answered}: check the headers in Secret {ns}/{s}"),
                    None => {
                        format!("{answered}: set spec.source.url.secretRef to send credentials")
                    }
                },
            ),
            408 | 429 | 500..=599 => unavailable(answered),
            _ => refuse("SourceFetchFailed", answered),
        });
    }
    let what = format!("{FIELD}: GET {shown}");
    if let Some(len) = response.content_length()
        && len > max_bytes
    {
        return Err(too_large(&what, max_bytes));
    }
    receive_bounded(store, response.bytes_stream(), max_bytes, &what, |e| {
        let e = e.without_url();
        tracing::info!(namespace = ns, url = %shown, error = %root_cause(&e), "URL source body failed");
        if e.is_timeout() {
            unavailable(format!("{what}: reading the body timed out"))
        } else {
            unavailable(format!("{what}: the connection failed while reading the body"))
        }
    })
    .await
}

// ------------------------------------------------------- object store ----

/// The S3 error code in a response body (`<Code>NoSuchKey</Code>`), if any.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

/// The HTTP status in object_store's error text ("status code: 503 ..."):
/// its retry error type is not public.
fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// Whether the chain holds a connection-level failure (refused, reset,
/// timed out): worth retrying later.
fn transport_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return match http.kind() {
                HttpErrorKind::Connect
                | HttpErrorKind::Request
                | HttpErrorKind::Timeout
                | HttpErrorKind::Interrupted => Some(root_cause(http)),
                _ => None,
            };
        }
        cur = err.source();
    }
    None
}

/// Builds the endpoint object_store expects: with virtual-hosted style the
/// bucket is part of the host.
fn bucket_endpoint(source: &ObjectStoreSource) -> Result<String, String> {
    if source.path_style {
        return Ok(source.endpoint.trim_end_matches('/').to_string());
    }
    let mut url = reqwest::Url::parse(&source.endpoint).map_err(|e| e.to_string())?;
    let host = url
        .host_str()
        .ok_or("the endpoint has no host")?
        .to_string();
    let prefix = format!("{}.", source.bucket);
    if !host.starts_with(&prefix) {
        url.set_host(Some(&format!("{prefix}{host}")))
            .map_err(|e| e.to_string())?;
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Fetches a package from an S3-compatible object store into the store's
/// incoming area, refusing more than `max_bytes` and any endpoint address
/// the operator may not reach.
pub(super) async fn fetch_object_store(
    ctx: &Context,
    ns: &str,
    source: &ObjectStoreSource,
    max_bytes: u64,
) -> Result<Received, Refusal> {
    const FIELD: &str = "spec.source.objectStore";
    let max_bytes = max_bytes.min(ctx.max_remote_bytes);
    let what = format!("{FIELD}: bucket {:?} key {:?}", source.bucket, source.key);
    // The credentials first: a namespace not allowed to read them gets no
    // request sent on its behalf, not even a DNS lookup.
    let credentials = match &source.credentials_secret_ref {
        Some(sref) => {
            let field = format!("{FIELD}.credentialsSecretRef");
            Some(read_secret(ctx, ns, &sref.name, &field).await?)
        }
        None => None,
    };
    let endpoint = bucket_endpoint(source).map_err(|e| {
        refuse(
            "SourceInvalid",
            format!("{FIELD}.endpoint: invalid endpoint: {e}"),
        )
    })?;
    let endpoint_url = reqwest::Url::parse(&endpoint).map_err(|e| {
        refuse(
            "SourceInvalid",
            format!("{FIELD}.endpoint: invalid endpoint: {e}"),
        )
    })?;
    let resolver = pin(
        &ctx.source_network,
        &endpoint_url,
        &format!("{FIELD}.endpoint: {}", display_url(&endpoint_url)),
    )
    .await?;

    let options = ClientOptions::new()
        .with_dns_resolver(Arc::new(resolver))
        .with_allow_http(endpoint.starts_with("http://"))
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_read_timeout(READ_TIMEOUT)
        .with_timeout(TOTAL_TIMEOUT);
    let retry = RetryConfig {
        // A few quick retries; longer outages are the controller's to wait out.
        max_retries: 2,
        retry_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let mut builder = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(&source.bucket)
        .with_region(source.region.as_deref().unwrap_or("us-east-1"))
        .with_virtual_hosted_style_request(!source.path_style)
        .with_client_options(options)
        .with_retry(retry);
    match source.credentials_secret_ref.as_ref().zip(credentials) {
        Some((sref, secret)) => {
            let field = format!("{FIELD}.credentialsSecretRef");
            let key = |k: &str| -> Result<String, Refusal> {
                let raw = secret_key(&secret, k).ok_or_else(|| {
                    refuse(
                        "CredentialsInvalid",
                        format!("{field}: Secret {ns}/{} has no key {k:?}", sref.name),
                    )
                })?;
                let text = std::str::from_utf8(raw).map_err(|_| {
                    refuse(
                        "CredentialsInvalid",
                        format!(
                            "{field}: Secret {ns}/{} key {k:?} is not UTF-8 text",
                            sref.name
                        ),
                    )
                })?;
                Ok(text.trim().to_string())
            };
            builder = builder
                .with_access_key_id(key("accessKeyId")?)
                .with_secret_access_key(key("secretAccessKey")?);
        }
        // Anonymous: never fall back to instance-metadata or environment
        // credentials of the operator's own pod.
        None => builder = builder.with_skip_signature(true),
    }

    ensure_crypto_provider();
    let store = builder.build().map_err(|e| {
        refuse(
            "SourceInvalid",
            format!("{FIELD}: cannot configure the object store client: {e}"),
        )
    })?;
    let path = object_store::path::Path::from(source.key.as_str());
    let got = store
        .get(&path)
        .await
        .map_err(|e| object_store_refusal(e, &what, source))?;
    if got.meta.size > max_bytes {
        return Err(too_large(&what, max_bytes));
    }
    receive_bounded(&ctx.store, got.into_stream(), max_bytes, &what, |e| {
        object_store_refusal(e, &what, source)
    })
    .await
}

/// Maps an object_store error to a refusal or a retry. The message names
/// the bucket and key and the store's error code, never the credentials.
fn object_store_refusal(e: object_store::Error, what: &str, source: &ObjectStoreSource) -> Refusal {
    let text = e.to_string();
    let code = s3_code(&text).map(str::to_string);
    let status = http_status(&text);
    let detail = |fallback: &str| match (&code, status) {
        (Some(c), _) => c.clone(),
        (None, Some(s)) => format!("the store answered {s}"),
        (None, None) => fallback.to_string(),
    };
    match &e {
        object_store::Error::NotFound { .. } => {
            let code = code.unwrap_or_else(|| "NoSuchKey".into());
            let hint = if code == "NoSuchBucket" {
                format!(
                    ": bucket {:?} does not exist at {}",
                    source.bucket, source.endpoint
                )
            } else {
                String::new()
            };
            refuse("SourceNotFound", format!("{what}: {code}{hint}"))
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => refuse(
            "CredentialsInvalid",
            format!(
                "{what}: {} (check the credentials in spec.source.objectStore.credentialsSecretRef)",
                detail("access denied")
            ),
        ),
        _ => {
            if let Some(cause) = transport_failure(&e) {
                // Details to the log only: see the module comment.
                tracing::info!(endpoint = %source.endpoint, error = %cause, "object store not reached");
                return unavailable(format!(
                    "{what}: the endpoint {} could not be reached or did not answer in time",
                    source.endpoint
                ));
            }
            match status {
                Some(s) if s == 408 || s == 429 || s >= 500 => {
                    unavailable(format!("{what}: {}", detail("server error")))
                }
                _ => refuse(
                    "SourceFetchFailed",
                    format!("{what}: {}", detail("the request failed")),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_errors_never_show_values() {
        let h = parse_headers("X-Token: s3cr3t\n\n# comment\nAccept: */*\n", "o").unwrap();
        assert_eq!(h.get("x-token").unwrap(), "s3cr3t");
        assert!(h.get("x-token").unwrap().is_sensitive());
        assert_eq!(h.len(), 2);
        let err = parse_headers("X-Token s3cr3t", "o").unwrap_err();
        assert!(err.contains("line 1") && !err.contains("s3cr3t"), "{err}");
        let err = parse_headers("X-Token: bad\u{7}value", "o").unwrap_err();
        assert!(!err.contains("bad"), "{err}");
    }

    #[tokio::test]
    async fn the_byte_bound_holds_whatever_the_headers_said() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let chunks = |n: usize| {
            futures::stream::iter((0..n).map(|_| Ok::<_, std::convert::Infallible>(vec![7u8; 100])))
        };
        let got = receive_bounded(&store, chunks(10), 1000, "src", |_| unreachable!())
            .await
            .ok()
            .unwrap();
        assert_eq!(got.stored.size, 1000);
        assert_eq!(std::fs::metadata(got.file.path()).unwrap().len(), 1000);
        match receive_bounded(&store, chunks(11), 1000, "src", |_| unreachable!()).await {
            Err(Refusal::Refused { reason, problems }) => {
                assert_eq!(reason, "PackageTooLarge");
                assert!(
                    problems[0].contains("larger than the 1000 bytes"),
                    "{problems:?}"
                );
            }
            _ => panic!("more than the bound was accepted"),
        }
        drop(got);
        // Nothing of the refused body stays behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("incoming"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn urls_are_shown_without_password_or_query() {
        let u = reqwest::Url::parse("https://me:pw@host/p.zip?X-Amz-Signature=abc").unwrap();
        assert_eq!(display_url(&u), "https://me@host/p.zip?…");
        let u = reqwest::Url::parse("https://host/p.zip").unwrap();
        assert_eq!(display_url(&u), "https://host/p.zip");
    }

    #[test]
    fn s3_errors_are_read_from_object_store_text() {
        let t = "Object at location q4.zip not found: Error performing GET http://h/b/q4.zip in 3ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code></Error>";
        assert_eq!(s3_code(t), Some("NoSuchKey"));
        assert_eq!(http_status(t), Some(404));
    }

    #[test]
    fn virtual_hosted_endpoints_carry_the_bucket() {
        let mut s = ObjectStoreSource {
            endpoint: "https://oss-cn-shanghai.aliyuncs.com".into(),
            bucket: "pkgs".into(),
            key: "q4.zip".into(),
            ..Default::default()
        };
        assert_eq!(
            bucket_endpoint(&s).unwrap(),
            "https://pkgs.oss-cn-shanghai.aliyuncs.com"
        );
        s.endpoint = "https://pkgs.oss-cn-shanghai.aliyuncs.com/".into();
        assert_eq!(
            bucket_endpoint(&s).unwrap(),
            "https://pkgs.oss-cn-shanghai.aliyuncs.com"
        );
        s.path_style = true;
        s.endpoint = "http://127.0.0.1:9000/".into();
        assert_eq!(bucket_endpoint(&s).unwrap(), "http://127.0.0.1:9000");
    }

    // ------------------------------------------------ network guard ----

    fn refusal_text(r: Refusal) -> (String, String) {
        match r {
            Refusal::Refused { reason, problems } => (reason.to_string(), problems.join("; ")),
            Refusal::Other(e) => (e.reason().to_string(), e.to_string()),
        }
    }

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "10.96.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a00:1::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(non_public(ip).is_some(), "{ip} passed as public");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "203.0.114.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(non_public(ip), None, "{ip}");
        }
        assert!(internal_name("kubernetes.default.svc"));
        assert!(internal_name("metadata.google.internal."));
        assert!(internal_name("LOCALHOST"));
        assert!(!internal_name("example.com"));
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed_and_denied_ranges_always() {
        let strict = SourceNetwork::default();
        let open = SourceNetwork {
            allow_private: true,
            denied: vec!["10.96.0.0/12".parse().unwrap()],
        };
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        for (u, says) in [
            (
                "http://127.0.0.1:6443/api",
                "127.0.0.1 is a loopback address",
            ),
            ("http://[::1]/", "[::1] is a loopback address"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[fd00:ec2::254]/", "unique-local"),
            ("https://10.96.0.1/", "a private address"),
            (
                "http://localhost:6443/",
                "localhost is a cluster-internal or local host name",
            ),
            ("http://kubernetes.default.svc/", "cluster-internal"),
        ] {
            let (reason, message) = refusal_text(pin(&strict, &url(u), "f").await.unwrap_err());
            assert_eq!(reason, "SourceNotAllowed", "{u}: {message}");
            assert!(message.contains(says), "{u}: {message}");
            assert!(message.contains("--allow-private-sources"), "{message}");
        }
        assert!(pin(&open, &url("http://127.0.0.1:1/"), "f").await.is_ok());
        assert!(pin(&open, &url("http://localhost:1/"), "f").await.is_ok());
        let (reason, message) = refusal_text(
            pin(&open, &url("https://10.96.0.1/"), "f")
                .await
                .unwrap_err(),
        );
        assert_eq!(reason, "SourceNotAllowed");
        assert!(message.contains("10.96.0.0/12"), "{message}");
    }

    /// A loopback HTTP server answering each request with what `answer`
    /// says for its path; returns its port.
    async fn loopback(answer: impl Fn(&str, u16) -> String + Send + Sync + 'static) -> u16 {
        let answer = Arc::new(answer);
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let _ = conn.write_all(answer(&path, port).as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        port
    }

    fn redirect(to: &str) -> String {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    async fn get(
        store: &ArtifactStore,
        net: &SourceNetwork,
        url: &str,
    ) -> Result<Received, Refusal> {
        let request = Request {
            url: reqwest::Url::parse(url).unwrap(),
            headers: HeaderMap::new(),
            roots: Vec::new(),
        };
        get_into_store(store, net, "ns", None, request, 1 << 20).await
    }

    #[tokio::test]
    async fn redirects_stay_within_the_origin() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let net = SourceNetwork {
            allow_private: true,
            ..Default::default()
        };
        // The target of a cross-origin redirect: must never be asked.
        let contacted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = contacted.clone();
        let elsewhere = loopback(move |_, _| {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            ok("other")
        })
        .await;
        let port = loopback(move |path, port| match path {
            "/same" => redirect(&format!("http://127.0.0.1:{port}/pkg.zip")),
            "/pkg.zip" => ok("zip bytes"),
            "/other" => redirect(&format!("http://127.0.0.1:{elsewhere}/pkg.zip")),
            "/host" => redirect("http://example.com/pkg.zip"),
            "/loop" => redirect("/loop"),
            _ => {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nsecret-ish"
                    .into()
            }
        })
        .await;
        let base = format!("http://127.0.0.1:{port}");

        let got = get(&store, &net, &format!("{base}/same"))
            .await
            .ok()
            .unwrap();
        assert_eq!(got.stored.size, 9);

        for (path, says) in [
            ("/other", "redirected to another origin"),
            ("/host", "redirected to another origin"),
            ("/loop", "redirected more than 10 times"),
        ] {
            let (reason, message) = refusal_text(
                get(&store, &net, &format!("{base}{path}"))
                    .await
                    .err()
                    .unwrap(),
            );
            assert_eq!(reason, "SourceFetchFailed", "{path}: {message}");
            assert!(message.contains(says), "{path}: {message}");
            assert!(message.contains("same origin"), "{message}");
        }

        assert!(
            !contacted.load(std::sync::atomic::Ordering::SeqCst),
            "a cross-origin redirect was followed"
        );

        // A refusal shows the status line, never the body.
        let (reason, message) = refusal_text(
            get(&store, &net, &format!("{base}/nothing"))
                .await
                .err()
                .unwrap(),
        );
        assert_eq!(reason, "SourceNotFound");
        assert!(message.ends_with("answered 404 Not Found"), "{message}");
        assert!(!message.contains("secret-ish"), "{message}");
    }

    #[test]
    fn a_redirect_from_https_to_http_is_a_downgrade_even_on_the_same_host() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        let start = u("https://pkgs.example/q4.zip");
        let origin = start.origin();
        let chain = [start.clone()];
        assert_eq!(
            redirect_refusal(&origin, &chain, &u("https://pkgs.example/v2/q4.zip")),
            None
        );
        assert_eq!(
            redirect_refusal(&origin, &chain, &u("http://pkgs.example/q4.zip")),
            Some("from https to plain http")
        );
        assert_eq!(
            redirect_refusal(&origin, &chain, &u("https://pkgs.example:8443/q4.zip")),
            Some("to another origin")
        );
        assert_eq!(
            redirect_refusal(&origin, &chain, &u("https://other.example/q4.zip")),
            Some("to another origin")
        );
        let long: Vec<_> = (0..10).map(|_| start.clone()).collect();
        assert_eq!(
            redirect_refusal(&origin, &long, &start),
            Some("more than 10 times")
        );
    }

    #[tokio::test]
    async fn an_unreachable_port_and_a_silent_one_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let net = SourceNetwork {
            allow_private: true,
            ..Default::default()
        };
        // A port nobody listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (_, message) = refusal_text(
            get(&store, &net, &format!("http://127.0.0.1:{closed}/p.zip"))
                .await
                .err()
                .unwrap(),
        );
        assert!(
            message.ends_with("the server could not be reached or did not answer in time"),
            "{message}"
        );
        assert!(!message.to_lowercase().contains("refused"), "{message}");
    }
}
