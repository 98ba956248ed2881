//! Pulling images from registries (the OCI distribution API) into a local blob cache, which
//! `image::open` then converts like any OCI layout.
//!
//! `remote_reference` decides whether an image argument names a registry image: `docker://REF`
//! always; local forms (`oci:`, `oci-archive:`, `docker-archive:`, `dir:`, an existing path,
//! an existing `DIR:TAG`) never; anything else that parses as a reference, with Docker's
//! normalisation (`alpine` is `docker.io/library/alpine:latest`). `open` pulls it (`pull`)
//! and opens the pulled image's view in the cache.
//!
//! `pull` walks from the reference's manifest or index to the linux/riscv64 manifest, then
//! its config and layers: each blob comes from the cache if it is there and still matches its
//! digest, else from the registry (unless `--pull never`), streamed through a digest check
//! into the cache (`cache.rs`). Only the riscv64 manifest's blobs are fetched. The reference
//! itself (tag -> manifest) is looked up in the cache first with `--pull missing` (the
//! default, as Docker's: a tag pulled once is not asked for again), always asked of the
//! registry with `--pull always`, never with `--pull never`. A digest reference is never
//! asked for again unless `--pull always`.
//!
//! **The registry is not trusted**: every manifest and blob is checked against the digest
//! that names it before it enters the cache; the conversion checks every blob again as it
//! reads it (`image.rs`, `layers.rs`).

mod auth;
mod cache;
mod error;
mod remote;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_client::Reference;
use serde::Deserialize;

pub use auth::Credentials;
pub use cache::Cache;
pub use error::RegistryError;

use crate::error::ConvertError;
use crate::image::{is_wanted, platform_string, Descriptor, Platform, MAX_NESTING};
use cache::Desc;
use remote::Remote;

/// `--pull`: when to ask the registry what a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Always ask (blobs already in the cache are still not fetched again).
    Always,
    /// Only when the cache does not know the reference (Docker's default).
    #[default]
    Missing,
    /// Never: the cache must have everything.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(PullPolicy::Always),
            "missing" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            _ => Err(format!("{s:?}: give always, missing or never")),
        }
    }
}

/// What a pull reports as it goes, for a display.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// Blob `index` of `count` (config and layers of the chosen manifest).
    Blob {
        index: usize,
        count: usize,
        what: String,
        digest: String,
        size: u64,
        /// Bytes received so far.
        done: u64,
        state: BlobState,
    },
    /// The pull is over: every blob of the image is in the cache.
    Finished {
        /// Blobs downloaded, and their bytes.
        fetched: usize,
        fetched_bytes: u64,
        /// Layers that were in the cache already.
        cached: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// Already in the cache (verified).
    Cached,
    Downloading,
    /// Downloaded and verified.
    Done,
}

pub type ProgressFn = Arc<dyn Fn(&PullEvent) + Send + Sync>;

/// How to pull: part of the converter's options (`Options::pull`, `image::OpenOptions`).
#[derive(Clone, Default)]
pub struct Options {
    pub pull: PullPolicy,
    /// `--username` / `--password-stdin`; without them, the Docker configuration's.
    pub credentials: Option<Credentials>,
    /// Registries (`HOST[:PORT]`) to speak plain HTTP to, besides loopback ones.
    pub insecure: Vec<String>,
    /// The cache layout; `Cache::default_dir()` when not set.
    pub cache_dir: Option<PathBuf>,
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("pull", &self.pull)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|c| &c.username),
            )
            .field("insecure", &self.insecure)
            .field("cache_dir", &self.cache_dir)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// A registry image named on the command line.
#[derive(Debug, Clone)]
pub struct RemoteRef {
    /// As given.
    pub input: String,
    pub reference: Reference,
    /// Normalised: `docker.io/library/busybox:latest`, `localhost:5000/x@sha256:...`.
    pub name: String,
}

const LOCAL_PREFIXES: &[&str] = &["oci:", "oci-archive:", "docker-archive:", "dir:"];

/// Whether `input` names a registry image (see the module doc); `Err` for a `docker://`
/// argument that is no valid reference.
pub fn remote_reference(input: &str) -> Result<Option<RemoteRef>, RegistryError> {
    let parse = |s: &str| -> Result<RemoteRef, RegistryError> {
        let reference: Reference = s.parse().map_err(|e| RegistryError::BadReference {
            reference: input.to_string(),
            msg: format!("{e}"),
        })?;
        Ok(RemoteRef {
            input: input.to_string(),
            name: reference.whole(),
            reference,
        })
    };
    if let Some(rest) = input.strip_prefix("docker://") {
        return parse(rest).map(Some);
    }
    if LOCAL_PREFIXES.iter().any(|p| input.starts_with(p)) || Path::new(input).exists() {
        return Ok(None);
    }
    // DIR:TAG, FILE:NAME:TAG with an existing DIR or FILE are local too.
    if input
        .match_indices(':')
        .any(|(i, _)| i > 0 && Path::new(&input[..i]).exists())
    {
        return Ok(None);
    }
    if input.starts_with('/') || input.starts_with('.') {
        return Ok(None);
    }
    Ok(parse(input).ok())
}

/// `image::open` for a registry image: pulls it with `options` and opens it from the
/// cache. The image's reference is the normalised one.
pub fn open(r: &RemoteRef, options: &Options) -> Result<crate::image::Image, ConvertError> {
    let pulled = pull(r, options).map_err(|e| match with_path_hint(e, r) {
        RegistryError::NoPlatform {
            reference,
            available,
        } => ConvertError::NoPlatform {
            reference,
            available,
        },
        e => ConvertError::Registry(e),
    })?;
    let mut image = crate::image::open(&pulled.view.to_string_lossy())?;
    image.meta.reference = r.name.clone();
    Ok(image)
}

/// For `images/out/app`-like arguments that were taken for Docker Hub names and failed
/// there: say that no such local directory exists either.
fn with_path_hint(e: RegistryError, r: &RemoteRef) -> RegistryError {
    let implicit_hub = !r.input.contains("://")
        && r.reference.registry() == "docker.io"
        && !r.input.starts_with("docker.io/")
        && r.input.contains('/');
    match e {
        e @ (RegistryError::NotFound { .. }
        | RegistryError::Unreachable { .. }
        | RegistryError::NeedCredentials { .. }
        | RegistryError::Denied { .. })
            if implicit_hub =>
        {
            RegistryError::NotAPathEither {
                path: r
                    .input
                    .split([':', '@'])
                    .next()
                    .unwrap_or(&r.input)
                    .to_string(),
                error: Box::new(e),
            }
        }
        e => e,
    }
}

/// What a pull left in the cache.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// What the reference names: the manifest or index the registry gave.
    pub top_digest: String,
    /// The linux/riscv64 manifest.
    pub manifest_digest: String,
    /// An OCI layout of just that image, in the cache.
    pub view: PathBuf,
    /// Blobs fetched from the registry (config and layers), and their bytes.
    pub fetched: usize,
    pub fetched_bytes: u64,
}

/// Pulls `r` into the cache (see the module doc).
pub fn pull(r: &RemoteRef, opts: &Options) -> Result<Pulled, RegistryError> {
    // One crypto provider for rustls, chosen here (reqwest is built without one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Setup {
            msg: format!("async runtime: {e}"),
        })?;
    rt.block_on(Puller::new(r, opts)?.run())
}

/// An index or a manifest, whichever it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

struct Puller<'a> {
    r: &'a RemoteRef,
    opts: &'a Options,
    cache: Cache,
    remote: Option<Remote>,
    /// Platforms seen that are not linux/riscv64.
    seen: Vec<String>,
    fetched: usize,
    fetched_bytes: u64,
}

struct Chosen {
    manifest: Desc,
    doc: Document,
}

impl<'a> Puller<'a> {
    fn new(r: &'a RemoteRef, opts: &'a Options) -> Result<Self, RegistryError> {
        let dir = match &opts.cache_dir {
            Some(d) => d.clone(),
            None => Cache::default_dir().ok_or_else(|| RegistryError::Setup {
                msg: "no cache directory (no home directory?); set RVBOX_CACHE_DIR".into(),
            })?,
        };
        Ok(Puller {
            r,
            opts,
            cache: Cache::open(&dir)?,
            remote: None,
            seen: Vec::new(),
            fetched: 0,
            fetched_bytes: 0,
        })
    }

    fn not_cached(&self) -> RegistryError {
        RegistryError::NotCached {
            reference: self.r.name.clone(),
            cache: self.cache.dir().to_path_buf(),
        }
    }

    /// The registry connection, made on first use.
    async fn remote(&mut self) -> Result<&Remote, RegistryError> {
        if self.opts.pull == PullPolicy::Never {
            return Err(self.not_cached());
        }
        if self.remote.is_none() {
            let registry = self.r.reference.registry();
            let creds = match &self.opts.credentials {
                Some(c) => Some((c.clone(), "--username/--password-stdin".to_string())),
                None => auth::from_docker_config(registry)?.map(|f| (f.credentials, f.source)),
            };
            let remote = Remote::connect(
                self.r.reference.clone(),
                self.r.name.clone(),
                creds,
                &self.opts.insecure,
            )
            .await?;
            self.remote = Some(remote);
        }
        Ok(self.remote.as_ref().expect("just made"))
    }

    /// A manifest or index by digest: the cache's copy if it has a good one, else the
    /// registry's (stored in the cache).
    async fn manifest_by_digest(
        &mut self,
        digest: &str,
        size: Option<u64>,
    ) -> Result<Vec<u8>, RegistryError> {
        if let Some(data) = self.cache.read_verified(digest, size)? {
            return Ok(data);
        }
        let (data, _) = self.remote().await?.manifest(Some(digest)).await?;
        if size.is_some_and(|s| s != data.len() as u64) {
            return Err(RegistryError::WrongSize {
                reference: self.r.name.clone(),
                what: "manifest".into(),
                digest: digest.into(),
                expected: size.unwrap_or_default(),
                actual: data.len() as u64,
            });
        }
        self.cache.put(digest, &data)?;
        Ok(data)
    }

    /// What the reference names now: from the cache or the registry, per the pull policy.
    async fn top(&mut self) -> Result<(Desc, Vec<u8>), RegistryError> {
        let policy = self.opts.pull;
        if policy != PullPolicy::Always {
            let known = match self.r.reference.digest() {
                Some(d) => Some((d.to_string(), None)),
                None => self
                    .cache
                    .lookup(&self.r.name)?
                    .map(|d| (d.digest, Some(d.size))),
            };
            if let Some((digest, size)) = known {
                if let Some(data) = self.cache.read_verified(&digest, size)? {
                    let desc = self.desc_of(&digest, &data)?;
                    return Ok((desc, data));
                }
            }
        }
        let (data, digest) = self.remote().await?.manifest(None).await?;
        self.cache.put(&digest, &data)?;
        let desc = self.desc_of(&digest, &data)?;
        Ok((desc, data))
    }

    fn desc_of(&self, digest: &str, data: &[u8]) -> Result<Desc, RegistryError> {
        let doc: Document = self.parse(digest, data)?;
        let media_type = doc.media_type.unwrap_or_else(|| {
            if doc.manifests.is_some() {
                crate::image::MT_OCI_INDEX.into()
            } else {
                crate::image::MT_OCI_MANIFEST.into()
            }
        });
        Ok(Desc {
            media_type,
            digest: digest.to_string(),
            size: data.len() as u64,
        })
    }

    fn parse<T: for<'de> Deserialize<'de>>(
        &self,
        digest: &str,
        data: &[u8],
    ) -> Result<T, RegistryError> {
        serde_json::from_slice(data).map_err(|e| RegistryError::BadManifest {
            reference: self.r.name.clone(),
            msg: format!("{digest}: invalid JSON: {e}"),
        })
    }

    fn note(&mut self, p: String) {
        crate::image::note_platform(&mut self.seen, p);
    }

    /// From a manifest or index to the linux/riscv64 manifest, as `image.rs` walks.
    async fn resolve(
        &mut self,
        desc: Desc,
        data: Vec<u8>,
        depth: usize,
    ) -> Result<Option<Chosen>, RegistryError> {
        if depth > MAX_NESTING {
            return Err(RegistryError::BadManifest {
                reference: self.r.name.clone(),
                msg: format!("image indexes nest more than {MAX_NESTING} deep"),
            });
        }
        let doc: Document = self.parse(&desc.digest, &data)?;
        if let Some(list) = doc.manifests {
            let order = crate::image::riscv64_first(
                &list,
                |d| {
                    d.platform
                        .as_ref()
                        .map(|p| (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()))
                },
                &mut self.seen,
            );
            for d in order {
                let mt = d.media_type.clone().unwrap_or_default();
                if !mt.is_empty() && !mt.ends_with("json") {
                    continue;
                }
                if cache::split_digest(&d.digest).is_none() {
                    return Err(RegistryError::BadManifest {
                        reference: self.r.name.clone(),
                        msg: format!("bad digest {:?} in index {}", d.digest, desc.digest),
                    });
                }
                let child = self.manifest_by_digest(&d.digest, Some(d.size)).await?;
                let cdesc = Desc {
                    media_type: mt,
                    digest: d.digest.clone(),
                    size: d.size,
                };
                let cdesc = if cdesc.media_type.is_empty() {
                    self.desc_of(&d.digest, &child)?
                } else {
                    cdesc
                };
                if let Some(c) = Box::pin(self.resolve(cdesc, child, depth + 1)).await? {
                    return Ok(Some(c));
                }
            }
            return Ok(None);
        }
        let Some(config) = &doc.config else {
            return Ok(None); // not an image manifest
        };
        let cmt = config.media_type.as_deref().unwrap_or("");
        if !cmt.is_empty()
            && cmt != "application/vnd.oci.image.config.v1+json"
            && cmt != "application/vnd.docker.container.image.v1+json"
        {
            return Ok(None); // an artifact (signature, SBOM, ...)
        }
        let cfg = self.blob_json(&config.digest, config.size).await?;
        let p: Platform = self.parse(&config.digest, &cfg)?;
        if is_wanted(&p.os, &p.architecture) {
            Ok(Some(Chosen {
                manifest: desc,
                doc,
            }))
        } else {
            self.note(platform_string(
                &p.os,
                &p.architecture,
                p.variant.as_deref(),
            ));
            Ok(None)
        }
    }

    /// A config blob: cached or fetched (and cached).
    async fn blob_json(&mut self, digest: &str, size: u64) -> Result<Vec<u8>, RegistryError> {
        if size > 64 << 20 {
            return Err(RegistryError::BadManifest {
                reference: self.r.name.clone(),
                msg: format!("config {digest} is {size} bytes; refusing to read that much JSON"),
            });
        }
        if let Some(d) = self.cache.read_verified(digest, Some(size))? {
            return Ok(d);
        }
        self.fetch_blob("config", digest, size, 0, 1).await?;
        self.cache
            .read_verified(digest, Some(size))?
            .ok_or_else(|| RegistryError::Cache {
                path: self.cache.dir().to_path_buf(),
                msg: format!("{digest} vanished after it was stored"),
            })
    }

    fn event(&self, e: PullEvent) {
        if let Some(p) = &self.opts.progress {
            p(&e);
        }
    }

    async fn fetch_blob(
        &mut self,
        what: &str,
        digest: &str,
        size: u64,
        index: usize,
        count: usize,
    ) -> Result<(), RegistryError> {
        let ev = |done, state| PullEvent::Blob {
            index,
            count,
            what: what.to_string(),
            digest: digest.to_string(),
            size,
            done,
            state,
        };
        let cache = Cache::open(self.cache.dir())?;
        let progress = self.opts.progress.clone();
        let report = move |done: u64| {
            if let Some(p) = &progress {
                p(&ev(done, BlobState::Downloading));
            }
        };
        self.remote()
            .await?
            .blob(what, digest, size, &|| cache.writer(digest, size), &report)
            .await?;
        self.fetched += 1;
        self.fetched_bytes += size;
        self.event(PullEvent::Blob {
            index,
            count,
            what: what.to_string(),
            digest: digest.to_string(),
            size,
            done: size,
            state: BlobState::Done,
        });
        Ok(())
    }

    async fn run(mut self) -> Result<Pulled, RegistryError> {
        let (top, data) = self.top().await?;
        let Some(chosen) = self.resolve(top.clone(), data, 0).await? else {
            return Err(RegistryError::NoPlatform {
                reference: self.r.name.clone(),
                available: std::mem::take(&mut self.seen),
            });
        };
        let layers = chosen.doc.layers.unwrap_or_default();
        let count = layers.len();
        let mut cached = 0;
        for (i, l) in layers.iter().enumerate() {
            if cache::split_digest(&l.digest).is_none() {
                return Err(RegistryError::BadManifest {
                    reference: self.r.name.clone(),
                    msg: format!("layer {i}: bad digest {:?}", l.digest),
                });
            }
            let what = format!("layer {}/{count}", i + 1);
            if self.cache.has_verified(&l.digest, l.size)? {
                self.event(PullEvent::Blob {
                    index: i,
                    count,
                    what,
                    digest: l.digest.clone(),
                    size: l.size,
                    done: l.size,
                    state: BlobState::Cached,
                });
                cached += 1;
                continue;
            }
            self.fetch_blob(&what, &l.digest, l.size, i, count).await?;
        }
        // Everything the image needs is in the cache: now the reference may point at it.
        self.cache.record(&self.r.name, &top)?;
        let config = chosen.doc.config.as_ref().map(|c| c.digest.as_str());
        let blobs: Vec<&str> = config
            .into_iter()
            .chain(layers.iter().map(|l| l.digest.as_str()))
            .collect();
        let view = self.cache.view(&chosen.manifest, &blobs)?;
        self.event(PullEvent::Finished {
            fetched: self.fetched,
            fetched_bytes: self.fetched_bytes,
            cached,
        });
        Ok(Pulled {
            top_digest: top.digest,
            manifest_digest: chosen.manifest.digest,
            view,
            fetched: self.fetched,
            fetched_bytes: self.fetched_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Option<String> {
        remote_reference(s).unwrap().map(|r| r.name)
    }

    #[test]
    fn docker_normalisation() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(name("alpine").unwrap(), "docker.io/library/alpine:latest");
        assert_eq!(
            name("alpine:3.20").unwrap(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(
            name("docker://alpine").unwrap(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(name("user/app:1").unwrap(), "docker.io/user/app:1");
        assert_eq!(name("localhost:5000/x").unwrap(), "localhost:5000/x:latest");
        assert_eq!(name("ghcr.io/o/a/b:1.2").unwrap(), "ghcr.io/o/a/b:1.2");
        assert_eq!(
            name(&format!("ghcr.io/o/a@{d}")).unwrap(),
            format!("ghcr.io/o/a@{d}")
        );
        assert_eq!(
            name(&format!("ghcr.io/o/a:1@{d}")).unwrap(),
            format!("ghcr.io/o/a:1@{d}")
        );
        let r = remote_reference(&format!("127.0.0.1:5000/x:1@{d}"))
            .unwrap()
            .unwrap();
        assert_eq!(r.reference.registry(), "127.0.0.1:5000");
        assert_eq!(r.reference.tag(), Some("1"));
        assert_eq!(r.reference.digest(), Some(d.as_str()));
    }

    #[test]
    fn local_forms_are_not_references() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_str().unwrap().to_string();
        for s in [
            "oci:x",
            "oci-archive:x.tar",
            "docker-archive:x.tar",
            "dir:x",
            "/nonexistent/x",
            "./x",
            "../x:tag",
            p.as_str(),
            &format!("{p}:v1"),
            &format!("{p}:name:v1"),
            "Not A Reference",
        ] {
            assert!(name(s).is_none(), "{s}");
        }
        assert!(remote_reference("docker://Bad Ref").is_err());
    }
}
