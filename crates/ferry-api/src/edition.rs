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

/// 30 MB, the seed's local-upload limit, in bytes: 30 × 2^20 = 31,457,280
/// bytes (MB = 2^20 bytes, as the console counts it). A file a user's file
/// manager shows as "30 MB" in either convention (30 × 10^6 bytes too) fits.
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

/// Where a package's bytes came from, as far as the edition table cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageOrigin<'a> {
    /// A local upload: a ConfigMap, a Secret, or `kubectl migrate upload`.
    LocalUpload,
    /// An HTTP or HTTPS URL (counted with object stores: a remote file).
    Url,
    /// An S3-compatible object store such as OSS.
    ObjectStore,
    /// Exported from a workspace of the tenant `tenant`.
    Export { tenant: &'a str },
}

/// Whether a tenant of `edition` named `tenant` may import a package that
/// came from `origin`, wherever the package object lives (a package in
/// another tenant's namespace is judged by the importing tenant's edition).
/// A refusal says why and gives only advice the edition can follow.
///
/// - Local upload: Standard and above (Basic: "—", not offered).
/// - URL and object store: Professional and Enterprise.
/// - Export: any edition from its own tenant; Basic imports nothing else
///   (DESIGN.md's reading of "—"). Other editions may import another
///   tenant's export.
pub fn may_import(edition: Edition, tenant: &str, origin: PackageOrigin<'_>) -> Result<(), String> {
    let l = limits(edition);
    let same_tenant_only = "a Basic tenant imports only packages exported from its own workspaces";
    match origin {
        PackageOrigin::LocalUpload if l.local_upload => Ok(()),
        PackageOrigin::LocalUpload => Err(format!(
            "tenant {tenant:?} has the {edition:?} edition, which does not offer local upload: {same_tenant_only} (export the objects from one of tenant {tenant:?}'s workspaces with spec.source.export, or upgrade the edition to Standard or above)"
        )),
        PackageOrigin::Url | PackageOrigin::ObjectStore if l.object_store_sources => Ok(()),
        PackageOrigin::Url | PackageOrigin::ObjectStore => {
            let what = if origin == PackageOrigin::Url {
                "URL"
            } else {
                "object-store (OSS)"
            };
            let advice = if l.local_upload {
                format!(
                    "download the package and upload it locally (up to {} MB), or upgrade the edition to Professional or Enterprise",
                    LOCAL_UPLOAD_LIMIT_BYTES >> 20
                )
            } else {
                format!(
                    "{same_tenant_only}: export the objects from one of tenant {tenant:?}'s workspaces with spec.source.export, or upgrade the edition to Professional or Enterprise"
                )
            };
            Err(format!(
                "tenant {tenant:?} has the {edition:?} edition, which does not allow {what} packages; Professional and Enterprise do ({advice})"
            ))
        }
        PackageOrigin::Export { tenant: from } if from == tenant || l.local_upload => Ok(()),
        PackageOrigin::Export { tenant: from } => Err(format!(
            "tenant {tenant:?} has the Basic edition and the package was exported from tenant {from:?}: {same_tenant_only} (export the objects from one of tenant {tenant:?}'s workspaces, or upgrade the edition to Standard or above)"
        )),
    }
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

    const ALL: [Edition; 4] = [
        Edition::Basic,
        Edition::Standard,
        Edition::Professional,
        Edition::Enterprise,
    ];

    #[test]
    fn which_edition_may_import_which_package_follows_the_seed_table() {
        use PackageOrigin::*;
        let own = Export { tenant: "acme" };
        let other = Export { tenant: "globex" };
        // (origin, Basic, Standard, Professional, Enterprise)
        let table = [
            (LocalUpload, [false, true, true, true]),
            (Url, [false, false, true, true]),
            (ObjectStore, [false, false, true, true]),
            (own, [true, true, true, true]),
            (other, [false, true, true, true]),
        ];
        for (origin, allowed) in table {
            for (e, ok) in ALL.into_iter().zip(allowed) {
                assert_eq!(
                    may_import(e, "acme", origin).is_ok(),
                    ok,
                    "{e:?} importing {origin:?}"
                );
            }
        }
    }

    #[test]
    fn every_refusal_names_the_tenant_and_edition_and_gives_advice_that_edition_can_follow() {
        use PackageOrigin::*;
        for origin in [LocalUpload, Url, ObjectStore, Export { tenant: "globex" }] {
            for e in ALL {
                let Err(msg) = may_import(e, "acme", origin) else {
                    continue;
                };
                assert!(msg.contains(r#"tenant "acme""#), "{msg}");
                assert!(msg.contains(&format!("{e:?} edition")), "{msg}");
                assert!(msg.contains("upgrade the edition"), "{msg}");
                if e == Edition::Basic {
                    // Basic has no local upload: never advise it.
                    assert!(!msg.contains("upload it locally"), "{msg}");
                    assert!(
                        msg.contains("spec.source.export") || msg.contains("export the objects"),
                        "{msg}"
                    );
                }
            }
        }
        let standard = may_import(Edition::Standard, "acme", ObjectStore).unwrap_err();
        assert!(
            standard.contains("upload it locally (up to 30 MB)"),
            "{standard}"
        );
        let basic = may_import(Edition::Basic, "acme", Export { tenant: "globex" }).unwrap_err();
        assert!(
            basic.contains(r#"exported from tenant "globex""#),
            "{basic}"
        );
    }

    #[test]
    fn thirty_mb_is_thirty_mebibytes() {
        assert_eq!(LOCAL_UPLOAD_LIMIT_BYTES, 31_457_280);
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
