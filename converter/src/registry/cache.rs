//! The local blob cache: an OCI image layout (`oci-layout`, `index.json`, `blobs/ALG/HEX`)
//! that pulls write into and conversions read from.
//!
//! **Only verified blobs enter the cache**: a blob is written to a temp file in its
//! `blobs/ALG/` directory while its digest is computed, and renamed to its digest's name only
//! when digest and size match (`BlobWriter::commit`); on any error the temp file goes. A blob
//! read back from the cache is hashed again; one that no longer matches is removed (and
//! fetched again when the pull policy allows).
//!
//! `index.json` records what was pulled: one entry per reference, named by the annotation
//! `org.opencontainers.image.ref.name` = the normalised reference
//! (`docker.io/library/busybox:latest`), pointing at the manifest or index the registry gave
//! for it. It is rewritten whole (temp file + rename) under a lock on `index.json.lock`.
//!
//! `views/ALG-HEX/` are small OCI layouts of one image each (`index.json` naming one
//! manifest; its blobs hard links to the cache's): what `image::open` reads to convert a
//! pulled image (which follows no symlinks in a layout).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::Digest as _;

use super::error::RegistryError;

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A descriptor as stored in index.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

pub struct Cache {
    dir: PathBuf,
}

/// A hasher for the digest algorithms OCI allows.
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// For a digest that passed `split_digest`.
    pub fn for_digest(digest: &str) -> Hasher {
        if digest.starts_with("sha512:") {
            Hasher::Sha512(sha2::Sha512::new())
        } else {
            Hasher::Sha256(sha2::Sha256::new())
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// `sha256:` + 64 lowercase hex digits (or `sha512:` + 128), so that it can safely become a
/// file name. Returns (algorithm, hex).
pub fn split_digest(digest: &str) -> Option<(&str, &str)> {
    let (alg, hex) = digest.split_once(':')?;
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return None,
    };
    (hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some((alg, hex))
}

pub fn digest_of(data: &[u8], like: &str) -> String {
    let mut h = Hasher::for_digest(like);
    h.update(data);
    h.finish()
}

impl Cache {
    /// `$RVBOX_CACHE_DIR/oci` if that is set (and not empty), else `$XDG_CACHE_HOME/rvbox/oci`
    /// or `~/.cache/rvbox/oci`.
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var_os("RVBOX_CACHE_DIR") {
            Some(d) if !d.is_empty() => Some(PathBuf::from(d).join("oci")),
            _ => dirs::cache_dir().map(|d| d.join("rvbox").join("oci")),
        }
    }

    /// Opens (creating if needed) the cache layout at `dir`.
    pub fn open(dir: &Path) -> Result<Cache, RegistryError> {
        let c = Cache {
            dir: dir.to_path_buf(),
        };
        for alg in ["sha256", "sha512"] {
            let d = dir.join("blobs").join(alg);
            std::fs::create_dir_all(&d).map_err(|e| c.err(&d, e))?;
        }
        let layout = dir.join("oci-layout");
        if !layout.exists() {
            c.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = dir.join("index.json");
        if !index.exists() {
            c.write_atomic(&index, br#"{"schemaVersion":2,"manifests":[]}"#)?;
        }
        Ok(c)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, path: &Path, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Cache {
            path: self.dir.clone(),
            msg: format!("{}: {e}", path.display()),
        }
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<(), RegistryError> {
        let parent = path.parent().unwrap_or(&self.dir);
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(|e| self.err(parent, e))?;
        tmp.write_all(data).map_err(|e| self.err(tmp.path(), e))?;
        tmp.persist(path).map_err(|e| self.err(path, e.error))?;
        Ok(())
    }

    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let (alg, hex) = split_digest(digest)?;
        Some(self.dir.join("blobs").join(alg).join(hex))
    }

    /// Reads a small blob whole if the cache has it and it still matches its digest (and
    /// `size`, when known); a blob that does not is removed.
    pub fn read_verified(
        &self,
        digest: &str,
        size: Option<u64>,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err(&path, e)),
        };
        if digest_of(&data, digest) != digest || size.is_some_and(|s| s != data.len() as u64) {
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(data))
    }

    /// Whether the cache has the blob, whole and matching its digest; one that does not
    /// match is removed.
    pub fn has_verified(&self, digest: &str, size: u64) -> Result<bool, RegistryError> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(false);
        };
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.err(&path, e)),
        };
        let len = f.metadata().map_err(|e| self.err(&path, e))?.len();
        let mut ok = len == size;
        if ok {
            let mut h = Hasher::for_digest(digest);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).map_err(|e| self.err(&path, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            ok = h.finish() == digest;
        }
        if !ok {
            let _ = std::fs::remove_file(&path);
        }
        Ok(ok)
    }

    /// A writer for blob `digest` of `size` bytes.
    pub fn writer(&self, digest: &str, size: u64) -> Result<BlobWriter, RegistryError> {
        let path = self.blob_path(digest).ok_or_else(|| RegistryError::Cache {
            path: self.dir.clone(),
            msg: format!("bad digest {digest:?}"),
        })?;
        let parent = path.parent().unwrap_or(&self.dir);
        let tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(parent)
            .map_err(|e| self.err(parent, e))?;
        Ok(BlobWriter {
            tmp,
            path,
            hasher: Hasher::for_digest(digest),
            digest: digest.to_string(),
            size,
            written: 0,
            cache_dir: self.dir.clone(),
        })
    }

    /// Stores a blob held in memory (already checked against `digest` by the caller, and
    /// checked again here).
    pub fn put(&self, digest: &str, data: &[u8]) -> Result<(), RegistryError> {
        let mut w = self.writer(digest, data.len() as u64)?;
        w.write(data).map_err(WriteError::into_cache)?;
        w.commit().map_err(WriteError::into_cache)
    }

    fn read_index(&self) -> Result<Value, RegistryError> {
        let path = self.dir.join("index.json");
        let data = std::fs::read(&path).map_err(|e| self.err(&path, e))?;
        serde_json::from_slice(&data).map_err(|e| self.err(&path, e))
    }

    /// The descriptor index.json records for reference `name`.
    pub fn lookup(&self, name: &str) -> Result<Option<Desc>, RegistryError> {
        let index = self.read_index()?;
        let Some(list) = index.get("manifests").and_then(Value::as_array) else {
            return Ok(None);
        };
        for m in list {
            if m.pointer(&format!(
                "/annotations/{}",
                ANNOTATION_REF_NAME.replace('/', "~1")
            ))
            .and_then(Value::as_str)
                == Some(name)
            {
                let (Some(digest), Some(size)) = (
                    m.get("digest").and_then(Value::as_str),
                    m.get("size").and_then(Value::as_u64),
                ) else {
                    continue;
                };
                if split_digest(digest).is_none() {
                    continue;
                }
                return Ok(Some(Desc {
                    media_type: m
                        .get("mediaType")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    digest: digest.to_string(),
                    size,
                }));
            }
        }
        Ok(None)
    }

    /// Records in index.json that reference `name` is `desc` (replacing what it was).
    pub fn record(&self, name: &str, desc: &Desc) -> Result<(), RegistryError> {
        let lock_path = self.dir.join("index.json.lock");
        let lock = File::create(&lock_path).map_err(|e| self.err(&lock_path, e))?;
        lock.lock().map_err(|e| self.err(&lock_path, e))?;
        let mut index = self.read_index()?;
        let entry = json!({
            "mediaType": desc.media_type,
            "digest": desc.digest,
            "size": desc.size,
            "annotations": { ANNOTATION_REF_NAME: name },
        });
        let list = index
            .as_object_mut()
            .ok_or_else(|| self.err(&self.dir.join("index.json"), "not a JSON object"))?
            .entry("manifests")
            .or_insert_with(|| json!([]));
        if let Value::Array(list) = list {
            list.retain(|m| {
                m.get("annotations")
                    .and_then(|a| a.get(ANNOTATION_REF_NAME))
                    .and_then(Value::as_str)
                    != Some(name)
            });
            list.push(entry);
        } else {
            *list = json!([entry]);
        }
        let data = serde_json::to_vec_pretty(&index).expect("JSON value serialises");
        self.write_atomic(&self.dir.join("index.json"), &data)
        // The lock goes with `lock`.
    }

    /// A layout of its own for the image whose manifest is `manifest` (present in the
    /// cache, as are `blobs`, the config and layers): what `image::open` converts. Its
    /// blobs are hard links to the cache's (copies where links fail); a link that is not
    /// the cache's file any more (a damaged blob was fetched again) is made again.
    pub fn view(&self, manifest: &Desc, blobs: &[&str]) -> Result<PathBuf, RegistryError> {
        let (alg, hex) = split_digest(&manifest.digest).ok_or_else(|| RegistryError::Cache {
            path: self.dir.clone(),
            msg: format!("bad digest {:?}", manifest.digest),
        })?;
        let view = self.dir.join("views").join(format!("{alg}-{hex}"));
        for digest in std::iter::once(manifest.digest.as_str()).chain(blobs.iter().copied()) {
            let (alg, hex) = split_digest(digest).ok_or_else(|| RegistryError::Cache {
                path: self.dir.clone(),
                msg: format!("bad digest {digest:?}"),
            })?;
            let src = self.dir.join("blobs").join(alg).join(hex);
            let dir = view.join("blobs").join(alg);
            let dst = dir.join(hex);
            let same = |a: &Path, b: &Path| {
                use std::os::unix::fs::MetadataExt;
                match (std::fs::metadata(a), std::fs::metadata(b)) {
                    (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                    _ => false,
                }
            };
            if same(&src, &dst) {
                continue;
            }
            std::fs::create_dir_all(&dir).map_err(|e| self.err(&dir, e))?;
            // Linked (or copied) beside its place, then renamed over it.
            let tmp = dir.join(format!(".link-{hex}-{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            if std::fs::hard_link(&src, &tmp).is_err() {
                std::fs::copy(&src, &tmp).map_err(|e| self.err(&src, e))?;
            }
            std::fs::rename(&tmp, &dst).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                self.err(&dst, e)
            })?;
        }
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": manifest.media_type,
                "digest": manifest.digest,
                "size": manifest.size,
            }],
        });
        if !view.join("index.json").exists() {
            self.write_atomic(
                &view.join("oci-layout"),
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
            self.write_atomic(&view.join("index.json"), index.to_string().as_bytes())?;
        }
        Ok(view)
    }
}

/// A blob on its way into the cache.
pub struct BlobWriter {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
    hasher: Hasher,
    digest: String,
    size: u64,
    written: u64,
    cache_dir: PathBuf,
}

/// Why a blob was not taken into the cache.
#[derive(Debug)]
pub enum WriteError {
    /// More bytes than the descriptor's size, or fewer at the end.
    Size { expected: u64, actual: u64 },
    /// The content hashes to something else (`actual`).
    Digest { actual: String },
    Io {
        path: PathBuf,
        cache: PathBuf,
        e: std::io::Error,
    },
}

impl WriteError {
    pub fn into_cache(self) -> RegistryError {
        match self {
            WriteError::Size { expected, actual } => RegistryError::Setup {
                msg: format!("blob size {actual}, expected {expected}"),
            },
            WriteError::Digest { actual } => RegistryError::Setup {
                msg: format!("blob hashes to {actual}"),
            },
            WriteError::Io { path, cache, e } => RegistryError::Cache {
                path: cache,
                msg: format!("{}: {e}", path.display()),
            },
        }
    }
}

impl BlobWriter {
    pub fn write(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.written += data.len() as u64;
        if self.written > self.size {
            return Err(WriteError::Size {
                expected: self.size,
                actual: self.written,
            });
        }
        self.hasher.update(data);
        self.tmp.write_all(data).map_err(|e| WriteError::Io {
            path: self.tmp.path().to_path_buf(),
            cache: self.cache_dir.clone(),
            e,
        })
    }

    /// Checks size and digest, then renames the blob into place. On error the temp file is
    /// removed.
    pub fn commit(self) -> Result<(), WriteError> {
        if self.written != self.size {
            return Err(WriteError::Size {
                expected: self.size,
                actual: self.written,
            });
        }
        let actual = self.hasher.finish();
        if actual != self.digest {
            return Err(WriteError::Digest { actual });
        }
        let io = |e| WriteError::Io {
            path: self.path.clone(),
            cache: self.cache_dir.clone(),
            e,
        };
        self.tmp.as_file().sync_all().map_err(io)?;
        self.tmp.persist(&self.path).map_err(|e| WriteError::Io {
            path: self.path.clone(),
            cache: self.cache_dir.clone(),
            e: e.error,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_blobs_enter() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        let data = b"hello";
        let good = digest_of(data, "sha256:");
        let bad = digest_of(b"other", "sha256:");
        // Wrong content: refused, nothing left behind.
        let mut w = c.writer(&bad, 5).unwrap();
        w.write(data).unwrap();
        assert!(matches!(w.commit(), Err(WriteError::Digest { .. })));
        // Too many bytes.
        let mut w = c.writer(&good, 4).unwrap();
        assert!(matches!(w.write(data), Err(WriteError::Size { .. })));
        drop(w);
        let left: Vec<_> = std::fs::read_dir(d.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
        c.put(&good, data).unwrap();
        assert_eq!(c.read_verified(&good, Some(5)).unwrap().unwrap(), data);
        assert!(c.has_verified(&good, 5).unwrap());
        // Damaged in the cache: not used, and removed.
        std::fs::write(c.blob_path(&good).unwrap(), b"hellO").unwrap();
        assert!(!c.has_verified(&good, 5).unwrap());
        assert!(!c.blob_path(&good).unwrap().exists());
    }

    #[test]
    fn views_link_the_caches_current_blobs() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        let (m, l) = (b"{}".as_slice(), b"layer".as_slice());
        let (md, ld) = (digest_of(m, "sha256:"), digest_of(l, "sha256:"));
        c.put(&md, m).unwrap();
        c.put(&ld, l).unwrap();
        let desc = Desc {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: md.clone(),
            size: 2,
        };
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        let view = c.view(&desc, &[&ld]).unwrap();
        let in_view = view.join("blobs/sha256").join(&ld[7..]);
        assert_eq!(ino(&in_view), ino(&c.blob_path(&ld).unwrap()));
        // The cache's blob is replaced (fetched again): the view follows.
        std::fs::remove_file(c.blob_path(&ld).unwrap()).unwrap();
        c.put(&ld, l).unwrap();
        assert_ne!(ino(&in_view), ino(&c.blob_path(&ld).unwrap()));
        assert_eq!(c.view(&desc, &[&ld]).unwrap(), view);
        assert_eq!(ino(&in_view), ino(&c.blob_path(&ld).unwrap()));
        assert!(std::fs::read_to_string(view.join("index.json"))
            .unwrap()
            .contains(&md));
    }

    #[test]
    fn index_records_references() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        let a = Desc {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 10,
        };
        let b = Desc {
            digest: format!("sha256:{}", "b".repeat(64)),
            ..a.clone()
        };
        c.record("docker.io/library/x:1", &a).unwrap();
        c.record("docker.io/library/y:1", &a).unwrap();
        c.record("docker.io/library/x:1", &b).unwrap();
        assert_eq!(c.lookup("docker.io/library/x:1").unwrap(), Some(b));
        assert_eq!(c.lookup("docker.io/library/y:1").unwrap(), Some(a));
        assert_eq!(c.lookup("docker.io/library/z:1").unwrap(), None);
    }
}
