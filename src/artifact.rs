//! The artifact store: verified packages kept once each, by SHA-256, in the
//! operator's storage directory (a PVC in the Helm chart, a temp dir in
//! tests). Writes go to a temporary file first and are renamed into place,
//! so a reader never sees half a package and a crash leaves no partial
//! artifact under its digest.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A stored file's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
}

/// Content-addressed storage on a local directory.
#[derive(Clone, Debug)]
pub struct ArtifactStore {
    root: PathBuf,
}

impl ArtifactStore {
    /// Opens (and creates) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("sha256"))?;
        fs::create_dir_all(root.join("incoming"))?;
        Ok(ArtifactStore { root })
    }

    /// Where a new upload or download is written before it is verified.
    pub fn incoming(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::NamedTempFile::new_in(self.root.join("incoming"))
    }

    /// Copies `reader` into a new temporary file, hashing as it goes and
    /// refusing more than `max_bytes` (the caller's size limit: the edition's
    /// upload size or the verifier's bound).
    pub fn receive(
        &self,
        mut reader: impl Read,
        max_bytes: u64,
    ) -> Result<(tempfile::NamedTempFile, Stored), ReceiveError> {
        let mut incoming = self.receiver(max_bytes)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            incoming.write(&buf[..n])?;
        }
        incoming.finish()
    }

    /// A new temporary file to be written piece by piece (chunks arriving
    /// one at a time), hashed as it grows and refused past `max_bytes`.
    pub fn receiver(&self, max_bytes: u64) -> Result<Receiver, ReceiveError> {
        Ok(Receiver {
            file: self.incoming()?,
            hasher: Sha256::new(),
            size: 0,
            max_bytes,
        })
    }

    /// Moves a received, verified file under its digest. Storing the same
    /// content twice keeps one copy.
    pub fn commit(&self, file: tempfile::NamedTempFile, stored: &Stored) -> io::Result<PathBuf> {
        let path = self
            .path(&stored.digest)
            .ok_or_else(|| io::Error::other("malformed digest"))?;
        if path.exists() {
            // Fresh again: garbage collection spares artifacts committed
            // within its grace period, before any status names them.
            File::options()
                .append(true)
                .open(&path)?
                .set_modified(std::time::SystemTime::now())?;
            return Ok(path);
        }
        file.persist(&path).map_err(|e| e.error)?;
        Ok(path)
    }

    /// The path of a stored artifact, if the digest is well-formed.
    pub fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.root.join("sha256").join(format!("{hex}.zip")))
    }

    /// Opens a stored artifact.
    pub fn open_artifact(&self, digest: &str) -> io::Result<File> {
        let path = self
            .path(digest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "malformed digest"))?;
        File::open(path)
    }

    /// Deletes every artifact whose digest is not in `keep` and that was
    /// committed more than `grace` ago (a just-verified artifact is not yet
    /// named by any status), and files in `incoming/` untouched for more
    /// than `abandoned`: transfers cut off by a crash or a dropped client.
    /// A file that cannot be removed is counted and the sweep goes on.
    pub fn collect_garbage(
        &self,
        keep: &HashSet<String>,
        grace: std::time::Duration,
        abandoned: std::time::Duration,
    ) -> io::Result<Sweep> {
        let mut sweep = Sweep::default();
        let older_than = |entry: &fs::DirEntry, age: std::time::Duration| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > age)
        };
        let remove = |entry: &fs::DirEntry, sweep: &mut Sweep| match fs::remove_file(entry.path()) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(path = %entry.path().display(), error = %e, "garbage collection could not remove a file");
                sweep.failed += 1;
                false
            }
        };
        for entry in fs::read_dir(self.root.join("sha256"))? {
            let Ok(entry) = entry else {
                sweep.failed += 1;
                continue;
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            let digest = format!("sha256:{}", name.trim_end_matches(".zip"));
            if !keep.contains(&digest) && older_than(&entry, grace) && remove(&entry, &mut sweep) {
                sweep.removed += 1;
            }
        }
        for entry in fs::read_dir(self.root.join("incoming"))? {
            let Ok(entry) = entry else {
                sweep.failed += 1;
                continue;
            };
            if older_than(&entry, abandoned) && remove(&entry, &mut sweep) {
                sweep.incoming_removed += 1;
            }
        }
        Ok(sweep)
    }

    /// Records that `digest` was uploaded from `namespace`: only packages of
    /// that namespace may claim it.
    pub fn record_upload(&self, namespace: &str, digest: &str) -> io::Result<()> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let dir = self.root.join("uploads").join(namespace);
        fs::create_dir_all(&dir)?;
        File::create(dir.join(hex)).map(|_| ())
    }

    /// Whether `digest` was uploaded from `namespace`.
    pub fn was_uploaded(&self, namespace: &str, digest: &str) -> bool {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        !namespace.contains('/')
            && !hex.contains('/')
            && self.root.join("uploads").join(namespace).join(hex).exists()
    }

    /// Digests uploaded less than `age` ago, in any namespace.
    pub fn recent_uploads(&self, age: std::time::Duration) -> HashSet<String> {
        let mut out = HashSet::new();
        let Ok(namespaces) = fs::read_dir(self.root.join("uploads")) else {
            return out;
        };
        for ns in namespaces.flatten() {
            for entry in fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                let fresh = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|e| e < age);
                if fresh {
                    out.insert(format!("sha256:{}", entry.file_name().to_string_lossy()));
                }
            }
        }
        out
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// What one garbage collection removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Artifacts nothing refers to.
    pub removed: usize,
    /// Abandoned partial transfers in `incoming/`.
    pub incoming_removed: usize,
    /// Files that could not be removed (logged; the sweep went on).
    pub failed: usize,
}

/// A package being received piece by piece; see [`ArtifactStore::receiver`].
/// Dropped unfinished, its temporary file is removed.
pub struct Receiver {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    size: u64,
    max_bytes: u64,
}

impl Receiver {
    /// Appends `bytes`, refusing them if they take the file past the limit.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ReceiveError> {
        self.size += bytes.len() as u64;
        if self.size > self.max_bytes {
            return Err(ReceiveError::TooLarge {
                limit: self.max_bytes,
            });
        }
        self.hasher.update(bytes);
        self.file.write_all(bytes)?;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete file and its identity, ready to verify and commit.
    pub fn finish(mut self) -> Result<(tempfile::NamedTempFile, Stored), ReceiveError> {
        self.file.flush()?;
        Ok((
            self.file,
            Stored {
                digest: format!("sha256:{}", hex(&self.hasher.finalize())),
                size: self.size,
            },
        ))
    }
}

/// Why an upload was not received.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("the package is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("writing to the artifact store failed: {0}")]
    Io(#[from] io::Error),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_is_stored_once_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let (f1, s1) = store.receive(&b"package bytes"[..], 100).unwrap();
        let p1 = store.commit(f1, &s1).unwrap();
        let (f2, s2) = store.receive(&b"package bytes"[..], 100).unwrap();
        let p2 = store.commit(f2, &s2).unwrap();
        assert_eq!((s1.clone(), p1), (s2, p2));
        assert_eq!(s1.size, 13);
        assert_eq!(fs::read_dir(dir.path().join("sha256")).unwrap().count(), 1);
        // sha256("package bytes")
        assert_eq!(
            s1.digest,
            format!("sha256:{}", hex(&Sha256::digest(b"package bytes")))
        );
    }

    #[test]
    fn pieces_add_up_to_the_same_digest_as_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let mut r = store.receiver(100).unwrap();
        for piece in [&b"package"[..], b" ", b"bytes"] {
            r.write(piece).unwrap();
        }
        assert_eq!(r.size(), 13);
        let (_, pieces) = r.finish().unwrap();
        let (_, whole) = store.receive(&b"package bytes"[..], 100).unwrap();
        assert_eq!(pieces, whole);
        let mut r = store.receiver(10).unwrap();
        r.write(b"0123456789").unwrap();
        assert!(matches!(
            r.write(b"x"),
            Err(ReceiveError::TooLarge { limit: 10 })
        ));
    }

    #[test]
    fn oversize_input_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let err = store.receive(&[0u8; 101][..], 100).unwrap_err();
        assert!(matches!(err, ReceiveError::TooLarge { limit: 100 }));
        assert_eq!(
            fs::read_dir(dir.path().join("incoming")).unwrap().count(),
            0
        );
        assert_eq!(fs::read_dir(dir.path().join("sha256")).unwrap().count(), 0);
    }

    fn age(path: &Path, by: std::time::Duration) {
        let t = std::time::SystemTime::now() - by;
        File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn garbage_collection_keeps_referenced_and_fresh_artifacts() {
        let hour = std::time::Duration::from_secs(3600);
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let mut digests = Vec::new();
        for body in [&b"a"[..], b"b", b"c", b"d"] {
            let (f, s) = store.receive(body, 10).unwrap();
            let path = store.commit(f, &s).unwrap();
            digests.push((s.digest, path));
        }
        // a and b are old; c is old but committed again just now (another
        // package verified the same bytes); d was just committed.
        for (_, path) in &digests[..3] {
            age(path, 2 * hour);
        }
        let (f, s) = store.receive(&b"c"[..], 10).unwrap();
        store.commit(f, &s).unwrap();
        let keep: HashSet<String> = [digests[1].0.clone()].into();
        let sweep = store.collect_garbage(&keep, hour, hour).unwrap();
        assert_eq!(sweep.removed, 1, "{sweep:?}");
        assert!(store.open_artifact(&digests[0].0).is_err());
        for (d, _) in &digests[1..] {
            assert!(store.open_artifact(d).is_ok(), "{d} was removed");
        }
    }

    #[test]
    fn garbage_collection_clears_abandoned_transfers_and_survives_failures() {
        let hour = std::time::Duration::from_secs(3600);
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        // An abandoned partial transfer, and one being written now.
        let mut old = store.receiver(100).unwrap();
        old.write(b"partial").unwrap();
        let (old_file, _) = old.finish().unwrap();
        let (old_file, old_path) = old_file.keep().unwrap();
        drop(old_file);
        age(&old_path, 2 * hour);
        let mut live = store.receiver(100).unwrap();
        live.write(b"arriving").unwrap();
        // An unremovable entry: a directory where an artifact would be.
        let (f, s) = store.receive(&b"x"[..], 10).unwrap();
        let path = store.commit(f, &s).unwrap();
        age(&path, 2 * hour);
        let blocker = dir
            .path()
            .join("sha256")
            .join(format!("{}.zip", "0".repeat(64)));
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("inside"), b"").unwrap();
        let t = std::time::SystemTime::now() - 2 * hour;
        fs::File::open(&blocker).unwrap().set_modified(t).unwrap();

        let sweep = store.collect_garbage(&HashSet::new(), hour, hour).unwrap();
        assert_eq!(
            sweep,
            Sweep {
                removed: 1,
                incoming_removed: 1,
                failed: 1
            }
        );
        assert!(!old_path.exists());
        assert!(store.open_artifact(&s.digest).is_err());
        // The transfer in progress is untouched and still finishes.
        live.write(b" more").unwrap();
        let (_, stored) = live.finish().unwrap();
        assert_eq!(stored.size, 13);
    }

    #[test]
    fn malformed_digests_never_reach_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        assert!(store.path("sha256:../../etc/passwd").is_none());
        assert!(store.path("md5:abc").is_none());
    }
}
