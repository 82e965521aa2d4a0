//! Remote package sources: HTTP(S) URLs and S3-compatible object stores.

use super::Context;
use super::package::{Refusal, refuse};
use crate::api::{ObjectStoreSource, UrlSource};

/// Fetches a package from a URL, refusing more than `max_bytes`.
pub(super) async fn fetch_url(
    _ctx: &Context,
    _ns: &str,
    source: &UrlSource,
    _max_bytes: u64,
) -> Result<Vec<u8>, Refusal> {
    Err(refuse(
        "SourceNotSupported",
        format!(
            "spec.source.url: fetching {} is not supported yet",
            source.url
        ),
    ))
}

/// Fetches a package from an S3-compatible object store, refusing more than `max_bytes`.
pub(super) async fn fetch_object_store(
    _ctx: &Context,
    _ns: &str,
    source: &ObjectStoreSource,
    _max_bytes: u64,
) -> Result<Vec<u8>, Refusal> {
    Err(refuse(
        "SourceNotSupported",
        format!(
            "spec.source.objectStore: {} is not supported yet",
            source.endpoint
        ),
    ))
}
