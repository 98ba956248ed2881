//! Finding the linux/riscv64 image in an OCI image layout directory.
//!
//! `open` reads `oci-layout` and `index.json`, follows descriptors through image indexes
//! (nested ones too) to the manifest for linux/riscv64, and reads its config. Every blob it
//! reads is checked against its descriptor's digest and size; layer blobs are only checked
//! for presence and size here, their digests (and the config's `rootfs.diff_ids`) are
//! checked by `layers::apply` while it streams them.
//!
//! Both OCI and Docker (schema 2) media types are understood. The JSON is parsed with small
//! local serde types rather than `oci_spec`'s, which reject some real-world documents
//! (Docker media types in some fields, `null` lists) with messages we can't improve.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest as _;

use crate::error::ConvertError;
use crate::meta::{ImageMeta, RunConfig};
use crate::source::{BlobRef, Source};

/// The image to convert: where it came from, how it runs, and its layers.
#[derive(Debug, Clone)]
pub struct Image {
    pub meta: ImageMeta,
    /// In application order (lowest first).
    pub layers: Vec<Layer>,
    /// `dir:` images: the root filesystem directory to read instead of layers.
    pub rootfs: Option<PathBuf>,
}

/// One layer blob of the image.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Digest of the blob as stored (compressed), `sha256:...`; `None` where the image does
    /// not name one (a `docker save` layer.tar: its diff_id is checked).
    pub digest: Option<String>,
    /// What to call the layer in messages: its digest, else its name in the archive.
    pub label: String,
    pub media_type: String,
    /// Size of the blob as stored.
    pub size: u64,
    /// Where the blob's bytes are.
    pub blob: BlobRef,
    /// Digest of the uncompressed tar stream, from the config's `rootfs.diff_ids`.
    pub diff_id: String,
}

pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Largest JSON blob (index, manifest, config) we read into memory.
const MAX_JSON_BLOB: u64 = 64 << 20;
/// How deep image indexes may nest.
pub(crate) const MAX_NESTING: usize = 8;

/// An OCI/Docker content descriptor (also read by the registry walk).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub(crate) media_type: Option<String>,
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

/// A platform, in a descriptor or an image config.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

#[derive(Debug, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<ExecConfig>,
    rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
    #[serde(default)]
    exposed_ports: Option<HashMap<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

pub(crate) fn platform_string(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    }
}

pub(crate) fn is_wanted(os: &str, arch: &str) -> bool {
    os == "linux" && arch == "riscv64"
}

/// Adds a platform an image offers to the list the "no linux/riscv64 image" error shows
/// (attestation manifests of buildx images say unknown/unknown: not a platform).
pub(crate) fn note_platform(seen: &mut Vec<String>, platform: String) {
    if platform != "unknown/unknown" && !seen.contains(&platform) {
        seen.push(platform);
    }
}

/// The order in which an index's entries are tried: those that say linux/riscv64, then
/// those without a platform (a manifest's config tells); the other platforms go to `seen`.
/// `platform` gives an entry's (os, architecture, variant). Shared with the registry's walk.
pub(crate) fn riscv64_first<'a, D>(
    descs: &'a [D],
    platform: impl Fn(&'a D) -> Option<(&'a str, &'a str, Option<&'a str>)>,
    seen: &mut Vec<String>,
) -> Vec<&'a D> {
    let mut order: Vec<&D> = Vec::new();
    for d in descs {
        match platform(d) {
            Some((os, arch, _)) if is_wanted(os, arch) => order.push(d),
            Some((os, arch, variant)) => note_platform(seen, platform_string(os, arch, variant)),
            None => {}
        }
    }
    order.extend(descs.iter().filter(|d| platform(d).is_none()));
    order
}

/// A hasher for the digest algorithms a layout may use.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// For a digest that passed `check_digest`.
    pub(crate) fn for_digest(digest: &str) -> Hasher {
        if digest.starts_with("sha512:") {
            Hasher::Sha512(sha2::Sha512::new())
        } else {
            Hasher::Sha256(sha2::Sha256::new())
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// `algorithm:hex`.
    pub(crate) fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// Checks that `digest` is `sha256:` + 64 lowercase hex (or `sha512:` + 128), so that it can
/// safely become a file name under `blobs/`. Returns (algorithm, hex).
pub(crate) fn check_digest<'a>(
    what: &str,
    digest: &'a str,
) -> Result<(&'a str, &'a str), ConvertError> {
    let bad = || ConvertError::BadDigest {
        what: what.to_string(),
        digest: digest.to_string(),
    };
    let (alg, hex) = digest.split_once(':').ok_or_else(bad)?;
    let want_len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(bad()),
    };
    if hex.len() != want_len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    Ok((alg, hex))
}

/// Splits a reference into the layout directory and the tag, if any.
fn parse_reference(reference: &str) -> (String, Option<String>) {
    let rest = reference.strip_prefix("oci:").unwrap_or(reference);
    if Path::new(rest).is_dir() {
        return (rest.to_string(), None);
    }
    if let Some((dir, tag)) = rest.rsplit_once(':') {
        if !tag.is_empty() && !tag.contains('/') && !dir.is_empty() {
            return (dir.to_string(), Some(tag.to_string()));
        }
    }
    (rest.to_string(), None)
}

struct Layout {
    source: Source,
}

impl Layout {
    fn blob_name(&self, what: &str, digest: &str) -> Result<String, ConvertError> {
        let (alg, hex) = check_digest(what, digest)?;
        Ok(format!("blobs/{alg}/{hex}"))
    }

    fn blob(&self, what: &str, digest: &str) -> Result<BlobRef, ConvertError> {
        let name = self.blob_name(what, digest)?;
        self.source
            .get(&name)?
            .ok_or_else(|| ConvertError::MissingBlob {
                what: what.to_string(),
                digest: digest.to_string(),
                path: PathBuf::from(self.source.show(&name)),
            })
    }

    /// Reads a (JSON) blob whole, checking its size and digest.
    fn read_blob(&self, what: &str, desc: &Descriptor) -> Result<Vec<u8>, ConvertError> {
        if desc.size > MAX_JSON_BLOB {
            return Err(ConvertError::BadImage {
                what: format!("{what} {}", desc.digest),
                msg: format!(
                    "descriptor says it is {} bytes; refusing to read more than {} bytes of JSON",
                    desc.size, MAX_JSON_BLOB
                ),
            });
        }
        let blob = self.blob(what, &desc.digest)?;
        read_verified(what, &desc.digest, desc.size, &blob)
    }
}

/// Reads a small blob whole and checks its size and digest.
fn read_verified(
    what: &str,
    digest: &str,
    size: u64,
    blob: &BlobRef,
) -> Result<Vec<u8>, ConvertError> {
    if blob.len != size {
        return Err(ConvertError::SizeMismatch {
            what: what.to_string(),
            digest: digest.to_string(),
            expected: size,
            actual: blob.len,
        });
    }
    let mut data = Vec::with_capacity(size as usize);
    blob.open()
        .and_then(|r| r.take(size).read_to_end(&mut data))
        .map_err(|e| ConvertError::io(&blob.path, e))?;
    if data.len() as u64 != size {
        return Err(ConvertError::SizeMismatch {
            what: what.to_string(),
            digest: digest.to_string(),
            expected: size,
            actual: data.len() as u64,
        });
    }
    let mut h = Hasher::for_digest(digest);
    h.update(&data);
    let actual = h.finish();
    if actual != digest {
        return Err(ConvertError::DigestMismatch {
            what: what.to_string(),
            digest: digest.to_string(),
            actual,
        });
    }
    Ok(data)
}

fn parse_json<'a, T: Deserialize<'a>>(what: &str, data: &'a [u8]) -> Result<T, ConvertError> {
    serde_json::from_slice(data).map_err(|source| ConvertError::Json {
        what: what.to_string(),
        source,
    })
}

/// What a descriptor points at.
enum Kind {
    Index,
    Manifest,
    Other,
}

fn kind_of(media_type: &str) -> Kind {
    match media_type {
        MT_OCI_INDEX | MT_DOCKER_LIST => Kind::Index,
        MT_OCI_MANIFEST | MT_DOCKER_MANIFEST => Kind::Manifest,
        _ => Kind::Other,
    }
}

/// The walk from index.json to the wanted manifest.
struct Resolver<'a> {
    layout: &'a Layout,
    /// Platforms seen that are not linux/riscv64, for the error message.
    seen: Vec<String>,
}

struct Found {
    manifest_digest: String,
    config_digest: String,
    manifest: Manifest,
    config: ConfigFile,
    platform: String,
}

impl Resolver<'_> {
    fn note(&mut self, platform: String) {
        note_platform(&mut self.seen, platform);
    }

    fn resolve_all(
        &mut self,
        descs: &[Descriptor],
        depth: usize,
    ) -> Result<Option<Found>, ConvertError> {
        let order = riscv64_first(
            descs,
            |d| {
                d.platform
                    .as_ref()
                    .map(|p| (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()))
            },
            &mut self.seen,
        );
        for d in order {
            if let Some(found) = self.resolve(d, depth)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn resolve(&mut self, desc: &Descriptor, depth: usize) -> Result<Option<Found>, ConvertError> {
        if depth > MAX_NESTING {
            return Err(ConvertError::BadImage {
                what: format!("image index {}", desc.digest),
                msg: format!("image indexes nest more than {MAX_NESTING} deep"),
            });
        }
        let declared = desc.media_type.clone().unwrap_or_default();
        let what = match kind_of(&declared) {
            Kind::Index => "image index",
            Kind::Manifest => "manifest",
            // Unknown or missing media type: read it and see what it is.
            Kind::Other => "manifest or index",
        };
        if let Kind::Other = kind_of(&declared) {
            if !declared.is_empty() && !declared.ends_with("json") {
                // Not something we could follow (e.g. a layer listed in index.json): skip it.
                return Ok(None);
            }
        }
        let data = self.layout.read_blob(what, desc)?;
        let what_d = format!("{what} {}", desc.digest);
        let index: Index = parse_json(&what_d, &data)?;
        let mt = index.media_type.clone().unwrap_or(declared);
        let is_index = match kind_of(&mt) {
            Kind::Index => true,
            Kind::Manifest => false,
            Kind::Other => index.manifests.is_some(),
        };
        if is_index {
            let manifests = index.manifests.unwrap_or_default();
            return self.resolve_all(&manifests, depth + 1);
        }
        let manifest: Manifest = parse_json(&what_d, &data)?;
        if manifest.media_type.is_none() && manifest.config.is_none() {
            // An artifact or something else we don't understand.
            return Ok(None);
        }
        let config_desc = manifest
            .config
            .as_ref()
            .ok_or_else(|| ConvertError::BadImage {
                what: what_d.clone(),
                msg: "manifest has no config".into(),
            })?;
        let config_mt = config_desc.media_type.as_deref().unwrap_or("");
        if !config_mt.is_empty()
            && config_mt != "application/vnd.oci.image.config.v1+json"
            && config_mt != "application/vnd.docker.container.image.v1+json"
        {
            // An artifact manifest (signature, SBOM, attestation...): not an image.
            return Ok(None);
        }
        let config_data = self.layout.read_blob("image config", config_desc)?;
        let config: ConfigFile = parse_json(
            &format!("image config {}", config_desc.digest),
            &config_data,
        )?;
        let platform = platform_string(&config.os, &config.architecture, config.variant.as_deref());
        if !is_wanted(&config.os, &config.architecture) {
            self.note(platform);
            return Ok(None);
        }
        Ok(Some(Found {
            manifest_digest: desc.digest.clone(),
            config_digest: config_desc.digest.clone(),
            manifest,
            config,
            platform,
        }))
    }
}

fn tag_of(desc: &Descriptor) -> Option<&str> {
    desc.annotations
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

/// Whether `desc` carries tag `tag`: its ref.name is the tag, or a full reference
/// (`docker.io/library/busybox:latest`) with that tag; containerd's image name annotation too.
fn has_tag(desc: &Descriptor, tag: &str) -> bool {
    let Some(ann) = desc.annotations.as_ref() else {
        return false;
    };
    [ANNOTATION_REF_NAME, ANNOTATION_CONTAINERD_NAME]
        .iter()
        .filter_map(|k| ann.get(*k))
        .any(|name| {
            name == tag
                || name
                    .rsplit_once(':')
                    .is_some_and(|(_, t)| !t.contains('/') && t == tag)
        })
}

/// What `open` may read.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Largest decompressed archive (`docker save | gzip`) to unpack to a temporary file.
    pub max_size: u64,
    /// How a registry image is pulled.
    pub pull: crate::registry::Options,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_size: crate::DEFAULT_MAX_IMAGE_SIZE,
            pull: Default::default(),
        }
    }
}

/// A reference, split by its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ref {
    /// An OCI image layout directory, with a tag maybe.
    Layout(String, Option<String>),
    /// A tar archive of an OCI image layout.
    OciArchive(String, Option<String>),
    /// A `docker save` archive, with `NAME:TAG` or `@N` maybe.
    DockerArchive(String, Option<String>),
    /// A plain root filesystem directory.
    RootDir(String),
}

/// Splits `FILE[:SUFFIX]` where FILE is an existing file: the first split whose left side
/// names a file wins (FILE itself may contain `:`), else everything is FILE.
fn split_file(rest: &str) -> (String, Option<String>) {
    if Path::new(rest).is_file() {
        return (rest.to_string(), None);
    }
    for (i, _) in rest.match_indices(':') {
        let (file, suffix) = (&rest[..i], &rest[i + 1..]);
        if !file.is_empty() && Path::new(file).is_file() {
            return (
                file.to_string(),
                (!suffix.is_empty()).then(|| suffix.to_string()),
            );
        }
    }
    (rest.to_string(), None)
}

fn parse_transport(reference: &str) -> Ref {
    if let Some(rest) = reference.strip_prefix("oci-archive:") {
        let (file, tag) = split_file(rest);
        return Ref::OciArchive(file, tag);
    }
    if let Some(rest) = reference.strip_prefix("docker-archive:") {
        let (file, name) = split_file(rest);
        return Ref::DockerArchive(file, name);
    }
    if let Some(rest) = reference.strip_prefix("dir:") {
        return Ref::RootDir(rest.to_string());
    }
    if !reference.starts_with("oci:") {
        // A bare file: an archive of either kind, told by what is inside.
        let (file, suffix) = split_file(reference);
        if Path::new(&file).is_file() {
            return if archive_has(&file, "manifest.json") && !archive_has(&file, "index.json") {
                Ref::DockerArchive(file, suffix)
            } else {
                Ref::OciArchive(file, suffix)
            };
        }
    }
    let (dir, tag) = parse_reference(reference);
    Ref::Layout(dir, tag)
}

/// Whether the tar archive at `file` has a member `name` (only plain tars are looked into;
/// a compressed one answers false).
fn archive_has(file: &str, name: &str) -> bool {
    let Ok(f) = File::open(file) else {
        return false;
    };
    let mut a = tar::Archive::new(std::io::BufReader::new(f));
    let Ok(entries) = a.entries() else {
        return false;
    };
    for e in entries.take(100_000) {
        let Ok(e) = e else { return false };
        if crate::source::clean_name(&String::from_utf8_lossy(&e.path_bytes())).as_deref()
            == Some(name)
        {
            return true;
        }
    }
    false
}

/// Opens the image named by `reference` with the default options.
pub fn open(reference: &str) -> Result<Image, ConvertError> {
    open_with(reference, &OpenOptions::default())
}

/// Opens the image named by `reference`:
/// - `PATH`, `oci:PATH` or `oci:PATH:TAG`: an OCI image layout directory. TAG is matched
///   against the `org.opencontainers.image.ref.name` annotation of index.json's entries (a
///   full reference there, `name:TAG`, matches too). Without a tag: the only entry of
///   index.json, else the one tagged `latest`, else index.json is taken as a
///   multi-platform index.
/// - `oci-archive:FILE[:TAG]`: the same, in a tar archive (as `skopeo copy` writes it).
/// - `docker-archive:FILE[:NAME:TAG|:@N]`: a `docker save` archive (manifest.json); the
///   image whose RepoTags has NAME:TAG, or the N-th; without one, the only image.
/// - `dir:PATH`: a root filesystem directory (the config comes from flags).
/// - A bare FILE is an archive of either kind, told by its contents.
/// - `docker://REF`, or a reference that is none of these (`alpine`, `host:5000/app:1`):
///   a registry image (`registry::remote_reference`).
pub fn open_with(reference: &str, opts: &OpenOptions) -> Result<Image, ConvertError> {
    // A registry image (docker://REF, or a name that is no local path): pulled into the
    // local cache, then opened from there (registry/mod.rs).
    if let Some(remote) = crate::registry::remote_reference(reference)? {
        return crate::registry::open(&remote, &opts.pull);
    }
    match parse_transport(reference) {
        Ref::Layout(dir, tag) => {
            let dir_path = PathBuf::from(&dir);
            if !dir_path.is_dir() {
                return Err(ConvertError::NoSuchImage { path: dir });
            }
            open_layout(Source::dir(&dir_path), &dir, tag, reference)
        }
        Ref::OciArchive(file, tag) => {
            let source = open_archive(&file, opts)?;
            open_layout(source, &file, tag, reference)
        }
        Ref::DockerArchive(file, name) => {
            let source = open_archive(&file, opts)?;
            open_docker_archive(&source, name.as_deref(), reference)
        }
        Ref::RootDir(dir) => {
            let path = PathBuf::from(&dir);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {}
                _ => {
                    return Err(ConvertError::NoSuchImage { path: dir });
                }
            }
            Ok(Image {
                meta: ImageMeta {
                    reference: reference.to_string(),
                    platform: "linux/riscv64".into(),
                    ..Default::default()
                },
                layers: Vec::new(),
                rootfs: Some(path),
            })
        }
    }
}

fn open_archive(file: &str, opts: &OpenOptions) -> Result<Source, ConvertError> {
    match std::fs::metadata(file) {
        Ok(m) if m.is_file() => Source::archive(Path::new(file), opts.max_size),
        _ => Err(ConvertError::NoSuchArchive {
            path: file.to_string(),
        }),
    }
}

/// An OCI image layout, in a directory or an archive.
fn open_layout(
    source: Source,
    shown: &str,
    tag: Option<String>,
    reference: &str,
) -> Result<Image, ConvertError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OciLayout {
        image_layout_version: String,
    }
    let layout_data = match source.read_small("oci-layout", MAX_JSON_BLOB)? {
        Some(d) => d,
        None if source.is_archive() => {
            return Err(ConvertError::NotAnImage {
                path: format!(
                    "{shown}: an archive without an oci-layout file{}",
                    if source.get("manifest.json")?.is_some() {
                        " (it has manifest.json: a docker-archive; use docker-archive:FILE)"
                    } else {
                        ""
                    }
                ),
            });
        }
        None => {
            let looks_like_rootfs = ["bin", "usr", "etc"]
                .iter()
                .any(|d| Path::new(shown).join(d).is_dir());
            return Err(ConvertError::NotAnImage {
                path: if looks_like_rootfs {
                    format!("{shown} (it looks like a root filesystem: use dir:{shown})")
                } else {
                    shown.to_string()
                },
            });
        }
    };
    let layout_json: OciLayout = parse_json(&source.show("oci-layout"), &layout_data)?;
    let v = &layout_json.image_layout_version;
    if v != "1" && !v.starts_with("1.") {
        return Err(ConvertError::LayoutVersion {
            path: shown.to_string(),
            version: v.clone(),
        });
    }
    let index_data = source
        .read_small("index.json", MAX_JSON_BLOB)?
        .ok_or_else(|| ConvertError::BadImage {
            what: source.show("index.json"),
            msg: "missing; the layout is incomplete".into(),
        })?;
    let index: Index = parse_json(&source.show("index.json"), &index_data)?;
    let manifests = index.manifests.unwrap_or_default();

    let mut tags: Vec<String> = manifests
        .iter()
        .filter_map(tag_of)
        .map(str::to_string)
        .collect();
    tags.sort();
    tags.dedup();
    let candidates: Vec<Descriptor> = match &tag {
        Some(t) => {
            let c: Vec<Descriptor> = manifests
                .iter()
                .filter(|d| has_tag(d, t))
                .cloned()
                .collect();
            if c.is_empty() {
                return Err(ConvertError::NoSuchTag {
                    reference: reference.to_string(),
                    tag: t.clone(),
                    available: tags,
                });
            }
            c
        }
        None if manifests.len() <= 1 => manifests.clone(),
        None => {
            let latest: Vec<Descriptor> = manifests
                .iter()
                .filter(|d| has_tag(d, "latest"))
                .cloned()
                .collect();
            if !latest.is_empty() {
                latest
            } else if tags.len() > 1 {
                return Err(ConvertError::AmbiguousTag {
                    reference: reference.to_string(),
                    count: manifests.len(),
                    available: tags,
                });
            } else {
                // Untagged (or all one tag): index.json is itself a multi-platform index.
                manifests.clone()
            }
        }
    };

    let layout = Layout { source };
    let mut resolver = Resolver {
        layout: &layout,
        seen: Vec::new(),
    };
    let found = resolver
        .resolve_all(&candidates, 0)?
        .ok_or_else(|| ConvertError::NoPlatform {
            reference: reference.to_string(),
            available: resolver.seen.clone(),
        })?;

    let mdigest = found.manifest_digest.clone();
    let layer_descs = found.manifest.layers.clone().unwrap_or_default();
    let mut blobs = Vec::with_capacity(layer_descs.len());
    for (i, d) in layer_descs.iter().enumerate() {
        let what = format!("layer {i}");
        let media_type = d.media_type.clone().unwrap_or_default();
        if !is_layer_media_type(&media_type) {
            return Err(ConvertError::MediaType {
                what: format!("layer {i} ({})", d.digest),
                media_type,
            });
        }
        let blob = layout.blob(&what, &d.digest)?;
        if blob.len != d.size {
            return Err(ConvertError::SizeMismatch {
                what,
                digest: d.digest.clone(),
                expected: d.size,
                actual: blob.len,
            });
        }
        blobs.push(LayerBlob {
            digest: Some(d.digest.clone()),
            media_type,
            blob,
        });
    }
    image_from_config(
        reference,
        &format!("manifest {mdigest}"),
        mdigest,
        found.config_digest,
        found.platform,
        found.config,
        blobs,
    )
}

/// A layer blob before it is paired with its diff_id.
struct LayerBlob {
    digest: Option<String>,
    media_type: String,
    blob: BlobRef,
}

fn image_from_config(
    reference: &str,
    what: &str,
    manifest_digest: String,
    config_digest: String,
    platform: String,
    config: ConfigFile,
    blobs: Vec<LayerBlob>,
) -> Result<Image, ConvertError> {
    let rootfs = config.rootfs.ok_or_else(|| ConvertError::BadImage {
        what: format!("image config of {what}"),
        msg: "no rootfs section".into(),
    })?;
    if rootfs.kind != "layers" {
        return Err(ConvertError::BadImage {
            what: format!("image config of {what}"),
            msg: format!("rootfs type is {:?}, not \"layers\"", rootfs.kind),
        });
    }
    let diff_ids = rootfs.diff_ids.unwrap_or_default();
    if diff_ids.len() != blobs.len() {
        return Err(ConvertError::BadImage {
            what: what.to_string(),
            msg: format!(
                "it lists {} layers but its config lists {} diff_ids",
                blobs.len(),
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::with_capacity(blobs.len());
    for (i, (b, diff_id)) in blobs.into_iter().zip(diff_ids).enumerate() {
        check_digest(&format!("diff_id of layer {i}"), &diff_id)?;
        layers.push(Layer {
            size: b.blob.len,
            label: b.digest.clone().unwrap_or_else(|| b.blob.name.clone()),
            digest: b.digest,
            media_type: b.media_type,
            blob: b.blob,
            diff_id,
        });
    }
    let exec = config.config.unwrap_or_default();
    let mut exposed_ports: Vec<String> = exec
        .exposed_ports
        .map(|m| m.into_keys().collect())
        .unwrap_or_default();
    exposed_ports.sort();
    Ok(Image {
        meta: ImageMeta {
            reference: reference.to_string(),
            manifest_digest,
            config_digest,
            platform,
            config: RunConfig {
                entrypoint: exec.entrypoint.unwrap_or_default(),
                cmd: exec.cmd.unwrap_or_default(),
                env: exec.env.unwrap_or_default(),
                working_dir: exec.working_dir.unwrap_or_default(),
                user: exec.user.unwrap_or_default(),
            },
            labels: exec.labels.unwrap_or_default().into_iter().collect(),
            exposed_ports,
        },
        layers,
        rootfs: None,
    })
}

/// docker-archive's manifest.json: one entry per image.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Docker's normalisation of an image name for matching RepoTags: `busybox` ->
/// `docker.io/library/busybox:latest`.
fn normalise_name(name: &str) -> String {
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, "latest"),
    };
    let repo = match repo.split_once('/') {
        None => format!("docker.io/library/{repo}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            repo.to_string()
        }
        Some(_) => format!("docker.io/{repo}"),
    };
    format!("{repo}:{tag}")
}

/// The digest a content-addressed name stands for: `blobs/sha256/HEX` or `HEX.json` (the
/// config file of `docker save` and skopeo).
fn digest_of_name(name: &str) -> Option<String> {
    let name = crate::source::clean_name(name)?;
    let d = if let Some(rest) = name.strip_prefix("blobs/") {
        let (alg, hex) = rest.split_once('/')?;
        format!("{alg}:{hex}")
    } else {
        let hex = name.strip_suffix(".json")?;
        format!("sha256:{hex}")
    };
    check_digest("", &d).ok()?;
    Some(d)
}

fn open_docker_archive(
    source: &Source,
    name: Option<&str>,
    reference: &str,
) -> Result<Image, ConvertError> {
    let Some(data) = source.read_small("manifest.json", MAX_JSON_BLOB)? else {
        return Err(ConvertError::NotAnImage {
            path: format!(
                "{}: no manifest.json, so not a docker-archive{}",
                source.show(""),
                if source.get("oci-layout")?.is_some() {
                    " (it has oci-layout: an OCI archive; use oci-archive:FILE)"
                } else {
                    ""
                }
            ),
        });
    };
    let entries: Vec<DockerArchiveEntry> = parse_json(&source.show("manifest.json"), &data)?;
    let all_tags: Vec<String> = entries
        .iter()
        .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
        .collect();
    let entry = match name {
        Some(n) if n.starts_with('@') => {
            let i: usize = n[1..].parse().map_err(|_| ConvertError::BadImage {
                what: reference.to_string(),
                msg: format!("{n:?}: after @ give the image's index in the archive (0, 1, ...)"),
            })?;
            entries.get(i).ok_or_else(|| ConvertError::BadImage {
                what: reference.to_string(),
                msg: format!("the archive has {} images; there is no @{i}", entries.len()),
            })?
        }
        Some(n) => {
            let want = normalise_name(n);
            entries
                .iter()
                .find(|e| {
                    e.repo_tags
                        .iter()
                        .flatten()
                        .any(|t| t == n || normalise_name(t) == want)
                })
                .ok_or_else(|| ConvertError::NoSuchTag {
                    reference: reference.to_string(),
                    tag: n.to_string(),
                    available: all_tags.clone(),
                })?
        }
        None => match entries.as_slice() {
            [one] => one,
            [] => {
                return Err(ConvertError::BadImage {
                    what: source.show("manifest.json"),
                    msg: "lists no images".into(),
                })
            }
            _ => {
                return Err(ConvertError::AmbiguousTag {
                    reference: reference.to_string(),
                    count: entries.len(),
                    available: all_tags,
                })
            }
        },
    };

    let config_blob = source
        .get(&entry.config)?
        .ok_or_else(|| ConvertError::BadImage {
            what: source.show(&entry.config),
            msg: "the image config named by manifest.json is missing".into(),
        })?;
    if config_blob.len > MAX_JSON_BLOB {
        return Err(ConvertError::BadImage {
            what: config_blob.name.clone(),
            msg: format!("{} bytes of JSON is too much", config_blob.len),
        });
    }
    // The config's name is its digest (the image ID): check it.
    let config_data = match digest_of_name(&entry.config) {
        Some(d) => read_verified("image config", &d, config_blob.len, &config_blob)?,
        None => source
            .read_small(&entry.config, MAX_JSON_BLOB)?
            .unwrap_or_default(),
    };
    let config_digest = {
        let mut h = Hasher::for_digest("sha256:");
        h.update(&config_data);
        h.finish()
    };
    let config: ConfigFile = parse_json(&source.show(&entry.config), &config_data)?;
    let platform = platform_string(&config.os, &config.architecture, config.variant.as_deref());
    if !is_wanted(&config.os, &config.architecture) {
        return Err(ConvertError::NoPlatform {
            reference: reference.to_string(),
            available: vec![platform],
        });
    }
    let mut blobs = Vec::with_capacity(entry.layers.len());
    for (i, l) in entry.layers.iter().enumerate() {
        let blob = source.get(l)?.ok_or_else(|| ConvertError::MissingBlob {
            what: format!("layer {i}"),
            digest: l.clone(),
            path: PathBuf::from(source.show(l)),
        })?;
        // `blobs/sha256/HEX` names its content (docker 25+); `HEX/layer.tar` and
        // skopeo's `HEX.tar` do not promise that: the diff_id check covers those.
        let digest = l.strip_prefix("blobs/").and_then(|_| digest_of_name(l));
        blobs.push(LayerBlob {
            digest,
            media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
            blob,
        });
    }
    image_from_config(
        reference,
        &source.show("manifest.json"),
        String::new(),
        config_digest,
        platform,
        config,
        blobs,
    )
}

/// Layer media types `layers::apply` reads: tar, gzip'd or zstd'd tar, OCI or Docker,
/// distributable or not. Encrypted layers are not.
fn is_layer_media_type(mt: &str) -> bool {
    matches!(
        mt,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_before_becoming_paths() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert!(check_digest("x", &ok).is_ok());
        for bad in [
            format!("sha256:../../{}", "a".repeat(58)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("md5:{}", "a".repeat(32)),
            "sha256".to_string(),
            format!("sha256:{}/", "a".repeat(63)),
        ] {
            assert!(
                matches!(check_digest("x", &bad), Err(ConvertError::BadDigest { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn references() {
        assert_eq!(
            parse_reference("oci:/nonexistent/x:v1"),
            ("/nonexistent/x".into(), Some("v1".into()))
        );
        assert_eq!(
            parse_reference("/nonexistent/x"),
            ("/nonexistent/x".into(), None)
        );
        assert_eq!(
            parse_reference("oci:/nonexistent:8/x"),
            ("/nonexistent:8/x".into(), None)
        );
    }
}
