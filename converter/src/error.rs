//! The converter's errors. Each message names the thing that is wrong (a path, a blob, a
//! layer entry) and, where there is one, says what to do about it.

use std::path::PathBuf;

/// Anything that can stop a conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{path}: no such directory; give an OCI layout directory (oci:DIR[:TAG]), an archive (oci-archive:FILE, docker-archive:FILE) or a root filesystem (dir:DIR)")]
    NoSuchImage { path: String },

    #[error("{path}: no such file; give an archive as oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]")]
    NoSuchArchive { path: String },

    #[error("{what}: larger than the limit of {limit} bytes; if the image really is that big, raise --max-image-size")]
    TooLarge { what: String, limit: u64 },

    #[error(
        "{path}: not an OCI image layout (no oci-layout file); give an OCI layout directory (oci:DIR[:TAG]), an archive (oci-archive:FILE, docker-archive:FILE) or a root filesystem (dir:DIR)"
    )]
    NotAnImage { path: String },

    #[error(
        "{path}: OCI image layout version {version:?} is not supported (this rvbox reads 1.x); export the image again as an OCI layout"
    )]
    LayoutVersion { path: String, version: String },

    #[error(
        "{reference}: no image tagged {tag:?} here; {}",
        list_or_none("tags", available)
    )]
    NoSuchTag {
        reference: String,
        tag: String,
        available: Vec<String>,
    },

    #[error(
        "{reference}: {count} images here and none tagged \"latest\"; name one as oci:DIR:TAG ({})",
        list_or_none("tags", available)
    )]
    AmbiguousTag {
        reference: String,
        count: usize,
        available: Vec<String>,
    },

    #[error("{reference}: no linux/riscv64 image here; it has {}", if available.is_empty() { "no image for any platform".to_string() } else { available.join(", ") })]
    NoPlatform {
        reference: String,
        available: Vec<String>,
    },

    #[error(
        "{what}: bad digest {digest:?}; a digest is sha256:<64 lowercase hex digits> (or sha512:<128>); the image layout is damaged or hostile"
    )]
    BadDigest { what: String, digest: String },

    #[error(
        "{what} {digest}: content does not match its digest (it hashes to {actual}); the image layout is damaged or was tampered with: export or pull it again"
    )]
    DigestMismatch {
        what: String,
        digest: String,
        actual: String,
    },

    #[error(
        "{what} {digest}: blob is {actual} bytes but its descriptor says {expected}; the image layout is damaged or was tampered with: export or pull it again"
    )]
    SizeMismatch {
        what: String,
        digest: String,
        expected: u64,
        actual: u64,
    },

    #[error(
        "layer {index} ({digest}): its uncompressed content hashes to {actual} but the image config's rootfs.diff_ids says {expected}; the image is damaged or was tampered with: export or pull it again"
    )]
    DiffIdMismatch {
        index: usize,
        digest: String,
        expected: String,
        actual: String,
    },

    #[error(
        "{what} {digest}: blob missing from the layout ({path}); the layout is incomplete: export or copy it again"
    )]
    MissingBlob {
        what: String,
        digest: String,
        path: PathBuf,
    },

    #[error("{what}: unsupported media type {media_type:?}")]
    MediaType { what: String, media_type: String },

    #[error("{what}: {msg}")]
    BadImage { what: String, msg: String },

    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("layer {digest}: {msg}")]
    BadLayer { digest: String, msg: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),

    #[error("spool file for the image's file contents (in the temp directory; is it full?): {0}")]
    Spool(#[source] std::io::Error),
}

fn list_or_none(what: &str, items: &[String]) -> String {
    if items.is_empty() {
        format!("it has no {what}")
    } else {
        format!("{what} here: {}", items.join(", "))
    }
}

impl ConvertError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.into(),
            source,
        }
    }
}

/// `msg` on one line, at most 300 characters: error texts from parsers can quote the bad
/// input (a tar header full of garbage), which must not flood or break a terminal.
pub(crate) fn one_line(msg: &str) -> String {
    let mut s: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s2: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s = s2;
    if s.chars().count() > 300 {
        s = s.chars().take(300).collect::<String>() + "...";
    }
    s
}
