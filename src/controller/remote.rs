//! Remote package sources: HTTP(S) URLs and S3-compatible object stores.
//!
//! Both stream the body and stop as soon as more than `max_bytes` arrived:
//! a `Content-Length` (or object size) over the bound is refused up front,
//! but neither is trusted. Permanent problems (a missing object, bad
//! credentials, a malformed Secret) are refusals; network trouble and server
//! errors are [`Error::Waiting`], so the controller comes back.
//!
//! Secrets stay secret: header values, keys and CA bundles are never
//! formatted into a message, a log line or status; messages name the Secret
//! and its key instead.

use std::sync::Once;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, ObjectStoreExt, RetryConfig};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::package::{Refusal, refuse};
use super::{Context, Error};
use crate::api::{ObjectStoreSource, UrlSource};

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
    Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?
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

/// Collects `body` into memory, refusing as soon as more than `max_bytes`
/// arrived. `what` names the source in messages.
async fn collect_bounded<S, B, E>(
    mut body: S,
    max_bytes: u64,
    what: &str,
    on_error: impl Fn(E) -> Refusal,
) -> Result<Vec<u8>, Refusal>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(&on_error)?;
        let chunk = chunk.as_ref();
        if out.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(too_large(what, max_bytes));
        }
        out.extend_from_slice(chunk);
    }
    Ok(out)
}

fn too_large(what: &str, max_bytes: u64) -> Refusal {
    refuse(
        "PackageTooLarge",
        format!("{what}: the package is larger than the {max_bytes} bytes this source allows"),
    )
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

/// Fetches a package from a URL, refusing more than `max_bytes`.
pub(super) async fn fetch_url(
    ctx: &Context,
    ns: &str,
    source: &UrlSource,
    max_bytes: u64,
) -> Result<Vec<u8>, Refusal> {
    const FIELD: &str = "spec.source.url";
    let url = reqwest::Url::parse(&source.url)
        .map_err(|e| refuse("SourceInvalid", format!("{FIELD}: invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse(
            "SourceInvalid",
            format!("{FIELD}: only http and https URLs are supported"),
        ));
    }
    let shown = display_url(&url);

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

    ensure_crypto_provider();
    // Headers from a Secret must not travel to another origin: with them,
    // only same-origin redirects are followed.
    let origin = url.origin();
    let guarded = !headers.is_empty();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 10 {
            attempt.error("more than 10 redirects")
        } else if guarded && attempt.url().origin() != origin {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(policy)
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
        if e.is_redirect() {
            return refuse(
                "SourceFetchFailed",
                format!("{FIELD}: GET {shown}: {}", root_cause(&e)),
            );
        }
        let what = if e.is_timeout() {
            "timed out".to_string()
        } else {
            root_cause(&e)
        };
        unavailable(format!("{FIELD}: GET {shown}: {what}"))
    };

    let response = client
        .get(url.clone())
        .headers(headers)
        .send()
        .await
        .map_err(&request_failed)?;
    let status = response.status();
    if !status.is_success() {
        let answered = format!("{FIELD}: GET {shown} answered {status}");
        return Err(match status.as_u16() {
            404 | 410 => refuse("SourceNotFound", answered),
            300..=399 => refuse(
                "SourceFetchFailed",
                format!(
                    "{answered}: a redirect to another origin is not followed while the Secret's headers are set"
                ),
            ),
            401 | 403 => refuse(
                "SourceFetchFailed",
                match &source.secret_ref {
                    Some(s) => format!("{answered}: check the headers in Secret {ns}/{}", s.name),
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
    collect_bounded(response.bytes_stream(), max_bytes, &what, |e| {
        let e = e.without_url();
        if e.is_timeout() {
            unavailable(format!("{what}: reading the body timed out"))
        } else {
            unavailable(format!(
                "{what}: reading the body failed: {}",
                root_cause(&e)
            ))
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

/// Fetches a package from an S3-compatible object store, refusing more than `max_bytes`.
pub(super) async fn fetch_object_store(
    ctx: &Context,
    ns: &str,
    source: &ObjectStoreSource,
    max_bytes: u64,
) -> Result<Vec<u8>, Refusal> {
    const FIELD: &str = "spec.source.objectStore";
    let what = format!("{FIELD}: bucket {:?} key {:?}", source.bucket, source.key);
    let endpoint = bucket_endpoint(source).map_err(|e| {
        refuse(
            "SourceInvalid",
            format!("{FIELD}.endpoint: invalid endpoint: {e}"),
        )
    })?;

    let options = ClientOptions::new()
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
    match &source.credentials_secret_ref {
        Some(sref) => {
            let field = format!("{FIELD}.credentialsSecretRef");
            let secret = read_secret(ctx, ns, &sref.name, &field).await?;
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
    collect_bounded(got.into_stream(), max_bytes, &what, |e| {
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
                return unavailable(format!("{what}: cannot reach {}: {cause}", source.endpoint));
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
        let chunks = |n: usize| {
            futures::stream::iter((0..n).map(|_| Ok::<_, std::convert::Infallible>(vec![7u8; 100])))
        };
        let got = collect_bounded(chunks(10), 1000, "src", |_| unreachable!())
            .await
            .ok()
            .unwrap();
        assert_eq!(got.len(), 1000);
        match collect_bounded(chunks(11), 1000, "src", |_| unreachable!()).await {
            Err(Refusal::Refused { reason, problems }) => {
                assert_eq!(reason, "PackageTooLarge");
                assert!(
                    problems[0].contains("larger than the 1000 bytes"),
                    "{problems:?}"
                );
            }
            _ => panic!("more than the bound was accepted"),
        }
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
}
