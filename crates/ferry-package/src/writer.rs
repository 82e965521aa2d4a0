//! Writing packages: each object's FlowSpec document and files go into a
//! folder of their own, and `manifest.json` (written last, once every digest
//! is known) indexes them.

use std::collections::HashSet;
use std::io::{Seek, Write};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::manifest::{
    ExportMode, FORMAT_VERSION, MANIFEST_PATH, Manifest, ManifestFile, ManifestObject, SourceInfo,
};
use crate::model::{DocFormat, ExportedObject};

/// Why a package could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing the package: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the package: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("serialising the document of {object}: {detail}")]
    Document { object: String, detail: String },
    #[error("file name {0:?} of an object must be a plain name (no '/', '\\' or '..')")]
    FileName(String),
}

/// Writes a package to any `Write + Seek`.
pub struct PackageWriter<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    manifest: Manifest,
    folders: HashSet<String>,
    options: SimpleFileOptions,
}

impl<W: Write + Seek> PackageWriter<W> {
    pub fn new(
        out: W,
        source: SourceInfo,
        exported_at: impl Into<String>,
        export_mode: ExportMode,
    ) -> Self {
        PackageWriter {
            zip: zip::ZipWriter::new(out),
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                source,
                exported_at: exported_at.into(),
                export_mode,
                objects: Vec::new(),
            },
            folders: HashSet::new(),
            options: SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .compression_level(Some(6))
                .unix_permissions(0o644)
                // A fixed time keeps packages byte-for-byte reproducible.
                .last_modified_time(zip::DateTime::default()),
        }
    }

    /// Adds one object: its document, then its files.
    pub fn add(&mut self, object: &ExportedObject) -> Result<(), WriteError> {
        let folder = self.folder_for(object);
        let label = format!("{} {:?}", object.object_type, object.name);
        let (doc_name, doc) = match object.format {
            DocFormat::Yaml => (
                "spec.yaml",
                serde_yaml::to_string(&object.document)
                    .map_err(|e| WriteError::Document {
                        object: label.clone(),
                        detail: e.to_string(),
                    })?
                    .into_bytes(),
            ),
            DocFormat::Json => (
                "spec.json",
                serde_json::to_vec_pretty(&object.document).map_err(|e| WriteError::Document {
                    object: label.clone(),
                    detail: e.to_string(),
                })?,
            ),
        };
        let path = format!("{folder}/{doc_name}");
        self.put(&path, &doc)?;
        let mut files = Vec::new();
        for f in &object.files {
            if f.name.is_empty() || f.name.contains(['/', '\\']) || f.name == ".." || f.name == "."
            {
                return Err(WriteError::FileName(f.name.clone()));
            }
            let p = format!("{folder}/{}", f.name);
            self.put(&p, &f.data)?;
            files.push(ManifestFile {
                path: p,
                sha256: sha256_hex(&f.data),
                size: f.data.len() as u64,
                role: Some(f.role),
            });
        }
        self.manifest.objects.push(ManifestObject {
            type_: object.object_type.as_str().to_string(),
            name: object.name.clone(),
            path,
            sha256: sha256_hex(&doc),
            size: doc.len() as u64,
            files,
        });
        Ok(())
    }

    /// Writes the manifest and the central directory.
    pub fn finish(mut self) -> Result<(W, Manifest), WriteError> {
        let m = serde_json::to_vec_pretty(&self.manifest).map_err(|e| WriteError::Document {
            object: MANIFEST_PATH.into(),
            detail: e.to_string(),
        })?;
        self.put(MANIFEST_PATH, &m)?;
        let out = self.zip.finish()?;
        Ok((out, self.manifest))
    }

    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), WriteError> {
        let opts = if data.len() > u32::MAX as usize / 2 {
            self.options.large_file(true)
        } else {
            self.options
        };
        self.zip.start_file(path, opts)?;
        self.zip.write_all(data)?;
        Ok(())
    }

    /// `<type folder>/<ascii slug>-<8 hex of the name's hash>`: readable,
    /// safe on every file system, and distinct for names that differ only
    /// in case or in non-ASCII characters.
    fn folder_for(&mut self, object: &ExportedObject) -> String {
        let slug: String = object
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        let hash = sha256_hex(format!("{}/{}", object.object_type, object.name).as_bytes());
        let base = format!("{}/{}-{}", object.object_type.folder(), slug, &hash[..8]);
        let mut folder = base.clone();
        let mut n = 2;
        while !self.folders.insert(folder.clone()) {
            folder = format!("{base}-{n}");
            n += 1;
        }
        folder
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
