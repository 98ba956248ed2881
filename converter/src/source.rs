//! Where an image's files are: a directory (an OCI image layout), or a tar archive of one
//! (`oci-archive:`, `docker-archive:`), read in place.
//!
//! A `Source` names files by their relative path inside the image (`index.json`,
//! `blobs/sha256/HEX`, `manifest.json`, `HEX/layer.tar`) and hands out `BlobRef`s: a byte
//! range of a host file. For a directory that is the whole file; for an uncompressed tar
//! archive it is the member's data inside the archive, so nothing is copied. A compressed
//! archive (`docker save | gzip`) is first decompressed into an anonymous temporary file,
//! at most `max_size` bytes.
//!
//! Names from an image (docker-archive's manifest.json lists paths) are checked before use:
//! relative, no `..`, no empty or `.` components. A directory source never opens a path
//! outside its directory, and never follows a symlink in the layout (a blob that is a
//! symlink is refused): the layout is untrusted input.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::ConvertError;

/// A byte range of a host file: one blob.
#[derive(Debug, Clone)]
pub struct BlobRef {
    /// The file holding the blob (a layout's blob file, or the archive).
    pub path: PathBuf,
    /// Start of the blob in `path`.
    pub offset: u64,
    pub len: u64,
    /// An open handle on `path` when it has no name that still reaches it (a decompressed
    /// archive in an anonymous temporary file).
    pub(crate) file: Option<Arc<File>>,
    /// What to call it in messages (`blobs/sha256/…` or `archive.tar:blobs/sha256/…`).
    pub name: String,
}

impl BlobRef {
    /// A reader over the blob's bytes (exactly `len` of them, or fewer if the file shrank).
    pub fn open(&self) -> io::Result<io::Take<File>> {
        let mut f = match &self.file {
            Some(f) => f.try_clone()?,
            None => File::open(&self.path)?,
        };
        f.seek(SeekFrom::Start(self.offset))?;
        Ok(f.take(self.len))
    }
}

/// One member of an archive: where its data is.
#[derive(Debug, Clone)]
enum Member {
    File {
        offset: u64,
        len: u64,
    },
    /// A symlink member (old `docker save` links repeated layers), target as written.
    Link(String),
}

#[derive(Debug)]
enum Kind {
    Dir(PathBuf),
    Tar {
        /// The archive as the user named it, for messages.
        shown: String,
        /// The (uncompressed) archive.
        path: PathBuf,
        file: Option<Arc<File>>,
        members: HashMap<String, Member>,
    },
}

/// An image's files.
#[derive(Debug)]
pub struct Source {
    kind: Kind,
}

/// Checks a relative name from an image and normalises it (`./a//b` -> `a/b`).
pub fn clean_name(name: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c),
        }
    }
    if out.is_empty() || name.starts_with('/') || name.contains('\0') {
        return None;
    }
    Some(out.join("/"))
}

impl Source {
    /// A directory (an OCI image layout).
    pub fn dir(path: &Path) -> Source {
        Source {
            kind: Kind::Dir(path.to_path_buf()),
        }
    }

    /// A tar archive, plain or gzip/zstd-compressed, indexed in one pass. `max_size` bounds
    /// the decompressed size of a compressed archive.
    pub fn archive(path: &Path, max_size: u64) -> Result<Source, ConvertError> {
        let shown = path.display().to_string();
        let io_err = |e| ConvertError::io(path, e);
        let mut file = File::open(path).map_err(io_err)?;
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        let compressed = magic[..n].starts_with(&[0x1f, 0x8b])
            || magic[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let (path_buf, handle) = if compressed {
            // Decompress to an anonymous temporary file: members must be read by offset.
            let mut tmp = tempfile::tempfile().map_err(ConvertError::Spool)?;
            let reader = BufReader::with_capacity(256 << 10, file);
            let mut decoder: Box<dyn Read> = if magic[0] == 0x1f {
                Box::new(flate2::bufread::MultiGzDecoder::new(reader))
            } else {
                Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err)?)
            };
            let copied = io::copy(&mut (&mut decoder).take(max_size + 1), &mut tmp)
                .map_err(|e| bad_archive(&shown, format!("decompressing: {e}")))?;
            if copied > max_size {
                return Err(ConvertError::TooLarge {
                    what: shown,
                    limit: max_size,
                });
            }
            tmp.rewind().map_err(ConvertError::Spool)?;
            // Messages name the archive as given; reads use the handle.
            (PathBuf::from(&shown), Some(Arc::new(tmp)))
        } else {
            (path.to_path_buf(), None)
        };
        let reader: Box<dyn Read> = match &handle {
            Some(f) => Box::new(f.try_clone().map_err(ConvertError::Spool)?),
            None => Box::new(File::open(path).map_err(io_err)?),
        };
        let mut members = HashMap::new();
        let mut archive = tar::Archive::new(BufReader::with_capacity(256 << 10, reader));
        let entries = archive
            .entries()
            .map_err(|e| bad_archive(&shown, format!("reading tar: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                if members.is_empty() {
                    bad_archive(
                        &shown,
                        format!("not a tar archive, or damaged at its start ({e})"),
                    )
                } else {
                    bad_archive(
                        &shown,
                        format!("reading tar: {e}; the archive is damaged or cut short"),
                    )
                }
            })?;
            let raw = entry.path_bytes();
            let Ok(name) = std::str::from_utf8(&raw) else {
                continue;
            };
            let Some(name) = clean_name(name) else {
                continue;
            };
            let member = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Member::File {
                    offset: entry.raw_file_position(),
                    len: entry.size(),
                },
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let Some(target) = entry.link_name_bytes() else {
                        continue;
                    };
                    let target = String::from_utf8_lossy(&target).into_owned();
                    if entry.header().entry_type() == tar::EntryType::Symlink {
                        // Relative to the link's directory.
                        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                        Member::Link(format!("{dir}/{target}"))
                    } else {
                        Member::Link(target)
                    }
                }
                _ => continue,
            };
            members.insert(name, member);
        }
        if members.is_empty() {
            return Err(bad_archive(
                &shown,
                "no files in it; is it a tar archive?".into(),
            ));
        }
        Ok(Source {
            kind: Kind::Tar {
                shown,
                path: path_buf,
                file: handle,
                members,
            },
        })
    }

    /// How to name a file of this source in messages.
    pub fn show(&self, name: &str) -> String {
        match &self.kind {
            Kind::Dir(d) => d.join(name).display().to_string(),
            Kind::Tar { shown, .. } => format!("{shown}:{name}"),
        }
    }

    /// Whether the source is an archive (for messages).
    pub fn is_archive(&self) -> bool {
        matches!(self.kind, Kind::Tar { .. })
    }

    /// The file `name` (a relative path), or `None` if the image has no such file.
    pub fn get(&self, name: &str) -> Result<Option<BlobRef>, ConvertError> {
        let clean = clean_name(name).ok_or_else(|| ConvertError::BadImage {
            what: self.show(name),
            msg: "not a relative path inside the image".into(),
        })?;
        match &self.kind {
            Kind::Dir(dir) => {
                let mut path = dir.clone();
                // No symlinks on the way: the layout is untrusted.
                for comp in clean.split('/') {
                    path.push(comp);
                    match std::fs::symlink_metadata(&path) {
                        Ok(md) if md.file_type().is_symlink() => {
                            return Err(ConvertError::BadImage {
                                what: path.display().to_string(),
                                msg: "a symlink inside the image layout; refusing to follow it"
                                    .into(),
                            })
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(ConvertError::io(&path, e)),
                    }
                }
                let md = std::fs::metadata(&path).map_err(|e| ConvertError::io(&path, e))?;
                if !md.is_file() {
                    return Err(ConvertError::BadImage {
                        what: path.display().to_string(),
                        msg: "not a regular file".into(),
                    });
                }
                Ok(Some(BlobRef {
                    name: path.display().to_string(),
                    path,
                    offset: 0,
                    len: md.len(),
                    file: None,
                }))
            }
            Kind::Tar {
                path,
                file,
                members,
                ..
            } => {
                let mut cur = clean.clone();
                for _ in 0..8 {
                    match members.get(&cur) {
                        None => return Ok(None),
                        Some(&Member::File { offset, len }) => {
                            return Ok(Some(BlobRef {
                                path: path.clone(),
                                offset,
                                len,
                                file: file.clone(),
                                name: self.show(&clean),
                            }))
                        }
                        Some(Member::Link(target)) => match clean_name(target) {
                            Some(t) => cur = t,
                            None => return Ok(None),
                        },
                    }
                }
                Ok(None)
            }
        }
    }

    /// Reads the small (JSON) file `name` whole; `None` if it is missing. Refuses more
    /// than `limit` bytes.
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, ConvertError> {
        let Some(blob) = self.get(name)? else {
            return Ok(None);
        };
        if blob.len > limit {
            return Err(ConvertError::BadImage {
                what: blob.name,
                msg: format!(
                    "{} bytes; refusing to read more than {limit} bytes of JSON",
                    blob.len
                ),
            });
        }
        let mut data = Vec::with_capacity(blob.len as usize);
        blob.open()
            .and_then(|mut r| r.read_to_end(&mut data))
            .map_err(|e| ConvertError::io(&blob.path, e))?;
        Ok(Some(data))
    }
}

fn bad_archive(shown: &str, msg: String) -> ConvertError {
    ConvertError::BadImage {
        what: shown.to_string(),
        msg: crate::error::one_line(&msg),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Whether the first bytes of a file look like a tar archive (plain or compressed).
pub fn looks_like_archive(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let mut r = BufReader::new(f);
    let Ok(head) = r.fill_buf() else {
        return false;
    };
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (head.len() >= 263 && &head[257..262] == b"ustar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_checked() {
        assert_eq!(clean_name("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(
            clean_name("blobs/sha256/x").as_deref(),
            Some("blobs/sha256/x")
        );
        for bad in ["/etc/passwd", "../x", "a/../../x", "", ".", "a/..", "a\0b"] {
            assert_eq!(clean_name(bad), None, "{bad:?}");
        }
    }
}
