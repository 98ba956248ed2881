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
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest as _;

use crate::error::ConvertError;
use crate::meta::{ImageMeta, RunConfig};

/// The image to convert: where it came from, how it runs, and its layers.
#[derive(Debug, Clone)]
pub struct Image {
    pub meta: ImageMeta,
    /// In application order (lowest first).
    pub layers: Vec<Layer>,
}

/// One layer blob of the image.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Digest of the blob as stored (compressed), `sha256:...`.
    pub digest: String,
    pub media_type: String,
    /// Size of the blob as stored.
    pub size: u64,
    /// The blob file.
    pub path: PathBuf,
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
const MAX_NESTING: usize = 8;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
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
}

#[derive(Debug, Deserialize)]
struct RootFs {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

fn platform_string(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    }
}

fn is_wanted(os: &str, arch: &str) -> bool {
    os == "linux" && arch == "riscv64"
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
    dir: PathBuf,
}

impl Layout {
    fn blob_path(&self, what: &str, digest: &str) -> Result<PathBuf, ConvertError> {
        let (alg, hex) = check_digest(what, digest)?;
        Ok(self.dir.join("blobs").join(alg).join(hex))
    }

    /// Reads a (JSON) blob whole, checking its size and digest.
    fn read_blob(&self, what: &str, desc: &Descriptor) -> Result<Vec<u8>, ConvertError> {
        let path = self.blob_path(what, &desc.digest)?;
        if desc.size > MAX_JSON_BLOB {
            return Err(ConvertError::BadImage {
                what: format!("{what} {}", desc.digest),
                msg: format!(
                    "descriptor says it is {} bytes; refusing to read more than {} bytes of JSON",
                    desc.size, MAX_JSON_BLOB
                ),
            });
        }
        let file = File::open(&path).map_err(|e| self.open_error(what, &desc.digest, path, e))?;
        let mut data = Vec::new();
        // Read at most one byte more than expected: enough to tell the size is wrong.
        file.take(desc.size + 1)
            .read_to_end(&mut data)
            .map_err(|e| ConvertError::io(self.dir.join("blobs"), e))?;
        if data.len() as u64 != desc.size {
            let actual = if data.len() as u64 > desc.size {
                std::fs::metadata(self.blob_path(what, &desc.digest)?)
                    .map(|m| m.len())
                    .unwrap_or(data.len() as u64)
            } else {
                data.len() as u64
            };
            return Err(ConvertError::SizeMismatch {
                what: what.to_string(),
                digest: desc.digest.clone(),
                expected: desc.size,
                actual,
            });
        }
        let mut h = Hasher::for_digest(&desc.digest);
        h.update(&data);
        let actual = h.finish();
        if actual != desc.digest {
            return Err(ConvertError::DigestMismatch {
                what: what.to_string(),
                digest: desc.digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    fn open_error(
        &self,
        what: &str,
        digest: &str,
        path: PathBuf,
        e: std::io::Error,
    ) -> ConvertError {
        if e.kind() == std::io::ErrorKind::NotFound {
            ConvertError::MissingBlob {
                what: what.to_string(),
                digest: digest.to_string(),
                path,
            }
        } else {
            ConvertError::io(path, e)
        }
    }
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
    manifest: Manifest,
    config: ConfigFile,
    platform: String,
}

impl Resolver<'_> {
    fn note(&mut self, platform: String) {
        // Attestation manifests of buildx images say unknown/unknown: not a platform.
        if platform != "unknown/unknown" && !self.seen.contains(&platform) {
            self.seen.push(platform);
        }
    }

    fn resolve_all(
        &mut self,
        descs: &[Descriptor],
        depth: usize,
    ) -> Result<Option<Found>, ConvertError> {
        // Descriptors that say linux/riscv64 come first, then those without a platform.
        let mut order: Vec<&Descriptor> = Vec::new();
        for d in descs {
            match &d.platform {
                Some(p) if is_wanted(&p.os, &p.architecture) => order.push(d),
                Some(p) => self.note(platform_string(
                    &p.os,
                    &p.architecture,
                    p.variant.as_deref(),
                )),
                None => {}
            }
        }
        order.extend(descs.iter().filter(|d| d.platform.is_none()));
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

/// Opens the image named by `reference`: `PATH`, `oci:PATH` or `oci:PATH:TAG`, where PATH
/// is an OCI image layout directory. TAG is matched against the
/// `org.opencontainers.image.ref.name` annotation of index.json's entries (a full reference
/// there, `name:TAG`, matches too). Without a tag: the only entry of index.json, else the
/// one tagged `latest`, else index.json is taken as a multi-platform index.
pub fn open(reference: &str) -> Result<Image, ConvertError> {
    let (dir, tag) = parse_reference(reference);
    let dir_path = PathBuf::from(&dir);
    if !dir_path.is_dir() {
        return Err(ConvertError::NoSuchImage { path: dir });
    }
    let layout_file = dir_path.join("oci-layout");
    let layout_data = match std::fs::read(&layout_file) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConvertError::NotAnImage { path: dir });
        }
        Err(e) => return Err(ConvertError::io(layout_file, e)),
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OciLayout {
        image_layout_version: String,
    }
    let layout_json: OciLayout = parse_json(&layout_file.display().to_string(), &layout_data)?;
    let v = &layout_json.image_layout_version;
    if v != "1" && !v.starts_with("1.") {
        return Err(ConvertError::LayoutVersion {
            path: dir,
            version: v.clone(),
        });
    }
    let index_file = dir_path.join("index.json");
    let index_data = std::fs::read(&index_file).map_err(|e| ConvertError::io(&index_file, e))?;
    let index: Index = parse_json(&index_file.display().to_string(), &index_data)?;
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

    let layout = Layout {
        dir: dir_path.clone(),
    };
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

    let mdigest = &found.manifest_digest;
    let rootfs = found.config.rootfs.ok_or_else(|| ConvertError::BadImage {
        what: format!("image config of manifest {mdigest}"),
        msg: "no rootfs section".into(),
    })?;
    if rootfs.kind != "layers" {
        return Err(ConvertError::BadImage {
            what: format!("image config of manifest {mdigest}"),
            msg: format!("rootfs type is {:?}, not \"layers\"", rootfs.kind),
        });
    }
    let diff_ids = rootfs.diff_ids.unwrap_or_default();
    let layer_descs = found.manifest.layers.unwrap_or_default();
    if diff_ids.len() != layer_descs.len() {
        return Err(ConvertError::BadImage {
            what: format!("manifest {mdigest}"),
            msg: format!(
                "it lists {} layers but its config lists {} diff_ids",
                layer_descs.len(),
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::with_capacity(layer_descs.len());
    for (i, (d, diff_id)) in layer_descs.iter().zip(diff_ids).enumerate() {
        let what = format!("layer {i}");
        let path = layout.blob_path(&what, &d.digest)?;
        check_digest(&format!("diff_id of layer {i}"), &diff_id)?;
        let media_type = d.media_type.clone().unwrap_or_default();
        if !is_layer_media_type(&media_type) {
            return Err(ConvertError::MediaType {
                what: format!("layer {i} ({})", d.digest),
                media_type,
            });
        }
        let md = std::fs::metadata(&path)
            .map_err(|e| layout.open_error(&what, &d.digest, path.clone(), e))?;
        if md.len() != d.size {
            return Err(ConvertError::SizeMismatch {
                what,
                digest: d.digest.clone(),
                expected: d.size,
                actual: md.len(),
            });
        }
        layers.push(Layer {
            digest: d.digest.clone(),
            media_type,
            size: d.size,
            path,
            diff_id,
        });
    }

    let exec = found.config.config.unwrap_or_default();
    Ok(Image {
        meta: ImageMeta {
            reference: reference.to_string(),
            manifest_digest: found.manifest_digest,
            platform: found.platform,
            config: RunConfig {
                entrypoint: exec.entrypoint.unwrap_or_default(),
                cmd: exec.cmd.unwrap_or_default(),
                env: exec.env.unwrap_or_default(),
                working_dir: exec.working_dir.unwrap_or_default(),
                user: exec.user.unwrap_or_default(),
            },
        },
        layers,
    })
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
