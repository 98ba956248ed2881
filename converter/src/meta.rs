//! The `rvbox` custom section: what a module is, for `rvbox inspect` and for hosts.
//!
//! The converter writes it as the **first** section of every module, so a host can read it
//! from the first few kilobytes of the file without loading the rest.

use serde::{Deserialize, Serialize};

/// Name of the custom section.
pub const SECTION: &str = "rvbox";
/// Version of the module layout (custom section, bundle placement, guest ABI). A host
/// refuses modules with another version.
pub const FORMAT: u32 = 1;

/// Contents of the `rvbox` custom section (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleMeta {
    /// Equal to `FORMAT` of the rvbox that wrote the module.
    pub format: u32,
    /// Version of the rvbox that wrote the module.
    pub rvbox_version: String,
    /// sha256 (hex) over the guest code and the bundle: names the module's content as the
    /// converter wrote it. A claim, not a proof: hosts trust it for nothing (the
    /// compiled-module cache keys on the hash of the file's own bytes).
    pub module_id: String,
    pub image: ImageMeta,
    /// Size in bytes of the filesystem bundle inside the module.
    pub bundle_size: u64,
    pub file_count: u64,
    /// Sum of the sizes of the regular files in the image.
    pub files_size: u64,
}

/// Where the image came from and its configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageMeta {
    /// The reference as the user gave it (`oci:images/out/busybox:latest`).
    pub reference: String,
    /// Digest of the manifest that was converted (`sha256:...`); empty for a
    /// docker-archive (no manifest blob) or a `dir:` root filesystem.
    pub manifest_digest: String,
    /// Digest of the image config (Docker's image ID); empty for `dir:`.
    #[serde(default)]
    pub config_digest: String,
    /// `os/architecture[/variant]`.
    pub platform: String,
    /// How the guest starts (after the conversion flags were applied).
    pub config: RunConfig,
    /// The image's labels, kept for `inspect`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The image's ExposedPorts (`80/tcp`), kept for `inspect`; nothing listens.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
}

/// The parts of the image config that decide how the guest starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub user: String,
}

/// Errors reading module metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{0}: not a WebAssembly module")]
    NotWasm(String),
    #[error("{0}: not an rvbox module (no '{SECTION}' section at its start)")]
    NotRvbox(String),
    #[error("{path}: made by an incompatible rvbox (module format {found}, this rvbox reads {FORMAT}); convert the image again with this rvbox")]
    Incompatible { path: String, found: u32 },
    #[error("{0}: damaged rvbox metadata: {1}")]
    Damaged(String, String),
    #[error("{path}: the module is cut short: the file has {have} bytes, its sections need at least {need}; copy it again, or convert the image again")]
    Truncated { path: String, have: u64, need: u64 },
    #[error(
        "{0}: damaged module: the section header at byte {1} is malformed; convert the image again"
    )]
    BadSection(String, u64),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Reads the metadata from the start of a module's bytes (`prefix` may be the first few
/// kilobytes or the whole file). `name` is used in error messages.
pub fn read_meta(name: &str, prefix: &[u8]) -> Result<ModuleMeta, MetaError> {
    if prefix.len() < 8 || &prefix[..4] != b"\0asm" {
        return Err(MetaError::NotWasm(name.into()));
    }
    let mut reader = wasmparser::BinaryReader::new(&prefix[8..], 8);
    let not_rvbox = || MetaError::NotRvbox(name.into());
    let id = reader.read_u8().map_err(|_| not_rvbox())?;
    if id != 0 {
        return Err(not_rvbox());
    }
    let size = reader.read_var_u32().map_err(|_| not_rvbox())? as usize;
    let start = reader.original_position();
    let body = prefix
        .get(start..start + size)
        .ok_or_else(|| MetaError::Damaged(name.into(), "section cut short".into()))?;
    let mut body_reader = wasmparser::BinaryReader::new(body, start);
    let sec_name = body_reader.read_string().map_err(|_| not_rvbox())?;
    if sec_name != SECTION {
        return Err(not_rvbox());
    }
    let data = &body[body_reader.current_position()..];
    #[derive(Deserialize)]
    struct Version {
        format: u32,
    }
    let v: Version =
        serde_json::from_slice(data).map_err(|e| MetaError::Damaged(name.into(), e.to_string()))?;
    if v.format != FORMAT {
        return Err(MetaError::Incompatible {
            path: name.into(),
            found: v.format,
        });
    }
    serde_json::from_slice(data).map_err(|e| MetaError::Damaged(name.into(), e.to_string()))
}

/// Reads the metadata of the module file at `path`, reading only as much as it needs.
pub fn read_meta_file(path: &std::path::Path) -> Result<ModuleMeta, MetaError> {
    use std::io::Read;
    let name = path.display().to_string();
    let mut f = std::fs::File::open(path).map_err(|e| MetaError::Io(name.clone(), e))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(MetaError::Io(name, e)),
        }
    }
    buf.truncate(n);
    read_meta(&name, &buf)
}

/// Checks that the module file at `path` is whole: walking its sections header by header
/// (a few bytes each; their contents are skipped, not read), the last one ends where the
/// file does. A module cut short (an interrupted copy or download) is
/// [`MetaError::Truncated`].
pub fn check_whole_file(path: &std::path::Path) -> Result<(), MetaError> {
    use std::io::{BufReader, Read, Seek, SeekFrom};
    let name = path.display().to_string();
    let io = |e| MetaError::Io(name.clone(), e);
    let file = std::fs::File::open(path).map_err(io)?;
    let have = file.metadata().map_err(io)?.len();
    let mut f = BufReader::new(file);
    let mut pos = 8; // after the magic number and the version
    f.seek(SeekFrom::Start(pos)).map_err(io)?;
    while pos < have {
        let header = pos;
        // The section's id, then its size (unsigned LEB128, at most 5 bytes).
        let mut b = [0u8; 1];
        f.read_exact(&mut b).map_err(io)?;
        pos += 1;
        let mut size = 0u64;
        for shift in (0..).step_by(7) {
            if shift > 28 {
                return Err(MetaError::BadSection(name.clone(), header));
            }
            if pos == have {
                return Err(MetaError::Truncated {
                    path: name.clone(),
                    have,
                    need: pos + 1,
                });
            }
            f.read_exact(&mut b).map_err(io)?;
            pos += 1;
            size |= u64::from(b[0] & 0x7f) << shift;
            if b[0] & 0x80 == 0 {
                break;
            }
        }
        pos += size;
        if pos > have {
            return Err(MetaError::Truncated {
                path: name.clone(),
                have,
                need: pos,
            });
        }
        f.seek_relative(size as i64).map_err(io)?;
    }
    Ok(())
}
