//! The seed's edition table, in one place. Every edition check reads it.
//!
//! | Feature                                   | Basic | Standard | Professional | Enterprise |
//! |-------------------------------------------|-------|----------|--------------|------------|
//! | Max packages exported per tenant (cumul.) | 10    | 30       | 100          | no limit   |
//! | Max size, local upload                    | —     | 30 MB    | 30 MB        | 30 MB      |
//! | Object-store (OSS) upload                 | no    | no       | no limit     | no limit   |
//! | Auto commit and deploy after import       | no    | no       | yes          | yes        |
//!
//! The seed shows "—" for Basic's local upload. We read it as "not offered":
//! a Basic tenant imports only packages exported inside the same tenant. That
//! reading is the single `local_upload` cell below, so changing it is a
//! one-line edit.

use crate::{Edition, EditionLimits};

/// 30 MB, the seed's local-upload limit, in bytes (MB = 2^20 bytes, as the
/// console counts it).
pub const LOCAL_UPLOAD_LIMIT_BYTES: u64 = 30 * 1024 * 1024;

/// The limits of an edition.
pub fn limits(edition: Edition) -> EditionLimits {
    let local = |offered: bool| EditionLimits {
        local_upload: offered,
        max_local_upload_bytes: offered.then_some(LOCAL_UPLOAD_LIMIT_BYTES),
        ..EditionLimits::default()
    };
    match edition {
        Edition::Basic => EditionLimits {
            max_exported_packages: Some(10),
            object_store_sources: false,
            auto_commit_and_deploy: false,
            ..local(false)
        },
        Edition::Standard => EditionLimits {
            max_exported_packages: Some(30),
            object_store_sources: false,
            auto_commit_and_deploy: false,
            ..local(true)
        },
        Edition::Professional => EditionLimits {
            max_exported_packages: Some(100),
            object_store_sources: true,
            auto_commit_and_deploy: true,
            ..local(true)
        },
        Edition::Enterprise => EditionLimits {
            max_exported_packages: None,
            object_store_sources: true,
            auto_commit_and_deploy: true,
            ..local(true)
        },
    }
}

/// Whether a tenant that has exported `exported` packages may export one more.
pub fn may_export(edition: Edition, exported: u32) -> bool {
    limits(edition)
        .max_exported_packages
        .is_none_or(|max| exported < max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_limits_follow_the_seed_table() {
        let max = |e| limits(e).max_exported_packages;
        assert_eq!(max(Edition::Basic), Some(10));
        assert_eq!(max(Edition::Standard), Some(30));
        assert_eq!(max(Edition::Professional), Some(100));
        assert_eq!(max(Edition::Enterprise), None);
        assert!(may_export(Edition::Basic, 9));
        assert!(!may_export(Edition::Basic, 10));
        assert!(may_export(Edition::Enterprise, 1_000_000));
    }

    #[test]
    fn basic_offers_no_local_upload_and_only_paid_editions_get_oss_and_auto_deploy() {
        assert!(!limits(Edition::Basic).local_upload);
        assert_eq!(limits(Edition::Basic).max_local_upload_bytes, None);
        for e in [
            Edition::Standard,
            Edition::Professional,
            Edition::Enterprise,
        ] {
            assert_eq!(limits(e).max_local_upload_bytes, Some(30 * 1024 * 1024));
        }
        for e in [Edition::Basic, Edition::Standard] {
            assert!(!limits(e).object_store_sources && !limits(e).auto_commit_and_deploy);
        }
        for e in [Edition::Professional, Edition::Enterprise] {
            assert!(limits(e).object_store_sources && limits(e).auto_commit_and_deploy);
        }
    }
}
