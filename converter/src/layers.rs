//! Applying an image's layers, in order, into a `Tree`, the way containerd and umoci unpack
//! them, without writing anything to the host disk but the tree's spool file.
//!
//! Each layer blob is streamed once: file -> (hash of the blob) -> gzip/zstd/plain decoder
//! -> (hash of the tar stream) -> `tar`. At the end of the layer the blob's digest and size
//! and the tar stream's digest (the config's diff_id) are checked. The compression is
//! told by the blob's magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`, else plain tar); a
//! media type that says compressed on a blob that isn't is refused.
//!
//! Semantics, entry by entry, in archive order:
//! - Paths: leading `/` and `./` are stripped, `.` components dropped, and `..` resolved
//!   lexically with the root as its own parent (as containerd does: `../../etc/x` is
//!   `etc/x`). An entry can never land outside the tree.
//! - Symlinks in the *parent* components of a path are followed, resolved inside the root
//!   (an absolute target starts at the root, `..` stops at the root), as containerd's
//!   `fs.RootPath` does; so with `lib -> usr/lib`, an entry `lib/x` lands in `usr/lib/x`.
//!   The last component is never followed: an entry replaces a symlink there. More than 40
//!   symlinks on one path, or a parent component that is neither a directory nor a symlink,
//!   is an error naming the entry.
//! - Missing parent directories are created with mode 0755, uid/gid 0, mtime 0.
//! - A later entry replaces an earlier one at the same path (same or lower layer), except
//!   that a directory entry over an existing directory keeps its children and only updates
//!   its metadata. Replacing a file that is hardlinked elsewhere leaves the other links.
//! - `.wh.NAME` removes NAME (and everything under it) from the lower layers; an entry of
//!   the same layer is not removed (OCI image spec). `.wh..wh..opq` in a directory hides
//!   all lower content of that directory, recursively, keeping the entries the same layer
//!   adds whether they come before or after the marker. Other `.wh..wh.*` names (aufs
//!   metadata) are skipped. Whiteouts themselves never appear in the tree.
//! - Hardlinks point to an earlier path of the same or an earlier layer (resolved like entry
//!   paths, last component not followed) and become another entry for the same node; a
//!   missing target or a directory target is an error.
//! - Modes (`0o7777`), uid, gid and mtime come from the headers, with PAX `uid`, `gid` and
//!   (fractional) `mtime` records applied; PAX and GNU long names via the `tar` crate.
//!   Extended attributes are not kept. Global PAX headers, volume labels and unknown entry
//!   types are skipped.

use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use tar::EntryType;

use crate::error::ConvertError;
use crate::image::{Hasher, Image, Layer};
use crate::tree::{Meta, NodeId, NodeKind, Tree};

/// Where `apply` is, for a progress display.
#[derive(Debug, Clone)]
pub struct LayerProgress {
    /// Index of the layer being applied (0-based).
    pub index: usize,
    /// Number of layers.
    pub count: usize,
    pub digest: String,
    /// Bytes of the (compressed) blob read so far.
    pub bytes_read: u64,
    /// Size of the (compressed) blob.
    pub size: u64,
    /// Tar entries applied so far in this layer.
    pub entries: u64,
    /// This layer is done (and verified).
    pub done: bool,
}

/// How many symlinks one path may go through.
const MAX_SYMLINKS: usize = 40;
/// Report progress at least every this many entries or bytes.
const PROGRESS_ENTRIES: u64 = 256;
const PROGRESS_BYTES: u64 = 4 << 20;

/// Applies the image's layers in order into a new tree, with the default size limit.
pub fn apply(image: &Image, progress: &mut dyn FnMut(LayerProgress)) -> Result<Tree, ConvertError> {
    apply_limited(image, crate::DEFAULT_MAX_IMAGE_SIZE, progress)
}

/// Applies the image's layers in order into a new tree. `max_size` bounds the sum of the
/// layers' uncompressed sizes (their tar streams): a decompression bomb stops there.
pub fn apply_limited(
    image: &Image,
    max_size: u64,
    progress: &mut dyn FnMut(LayerProgress),
) -> Result<Tree, ConvertError> {
    let mut tree = Tree::new().map_err(ConvertError::Spool)?;
    let count = image.layers.len();
    let budget = Rc::new(Cell::new(max_size));
    for (index, layer) in image.layers.iter().enumerate() {
        apply_layer(&mut tree, index, count, layer, &budget, max_size, progress)?;
    }
    tree.finish_spool().map_err(ConvertError::Spool)?;
    tree.compact();
    Ok(tree)
}

/// For fuzzing: applies `data` as one layer blob (plain, gzip or zstd tar) to a new tree,
/// with every check but the digests (`diff_id` is not known): what an image's layer can
/// make the applier do.
#[doc(hidden)]
pub fn fuzz_one_layer(data: &[u8], max_size: u64) -> Result<Tree, ConvertError> {
    let mut tree = Tree::new().map_err(ConvertError::Spool)?;
    let layer = Layer {
        digest: None,
        label: "fuzz".into(),
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        size: data.len() as u64,
        blob: crate::source::BlobRef {
            path: "fuzz".into(),
            offset: 0,
            len: data.len() as u64,
            file: None,
            name: "fuzz".into(),
        },
        diff_id: format!("sha256:{}", "0".repeat(64)),
    };
    let budget = Rc::new(Cell::new(max_size));
    match apply_stream(
        &mut tree,
        0,
        1,
        &layer,
        data,
        &budget,
        max_size,
        &mut |_| {},
    ) {
        Ok(()) | Err(ConvertError::DiffIdMismatch { .. }) => {}
        Err(e) => return Err(e),
    }
    tree.finish_spool().map_err(ConvertError::Spool)?;
    tree.compact();
    Ok(tree)
}

/// A reader that hashes (if asked) and counts what passes through it.
struct HashReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The error a `Budget` reader gives when the image is too large.
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the image's uncompressed size is over the limit")
    }
}

impl std::error::Error for OverBudget {}

/// A reader that fails once more than the shared budget of bytes has passed through it.
struct Budget<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let left = self.left.get();
        if n as u64 > left {
            self.left.set(0);
            return Err(io::Error::other(OverBudget));
        }
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// Largest GNU long name/link or PAX header entry (as Go's archive/tar allows): the tar
/// reader loads these whole into memory.
const MAX_META_ENTRY: u64 = 1 << 20;

/// Watches the headers of a tar stream as it passes to the tar reader, so that the
/// entries that reader loads whole into memory (GNU long names and links, PAX headers)
/// cannot be huge: a decompression bomb in a long name would otherwise be a memory bomb.
/// It follows the stream block by block as the reader will: a header, the GNU sparse
/// extension headers after it, then the entry's data padded to 512 bytes, with the size
/// from a preceding PAX `size` record where there is one.
struct TarGuard<R> {
    inner: R,
    block: [u8; 512],
    fill: usize,
    /// Bytes of the current entry's data (with padding) still to pass.
    skip: u64,
    /// The data of a PAX header being collected, and how much of it is left.
    pax: Option<Vec<u8>>,
    pax_left: u64,
    /// A PAX `size` record for the next entry.
    pax_size: Option<u64>,
    /// GNU sparse extension headers follow; then `pending` bytes of data.
    sparse_ext: bool,
    pending: u64,
}

impl<R> TarGuard<R> {
    fn new(inner: R) -> Self {
        TarGuard {
            inner,
            block: [0; 512],
            fill: 0,
            skip: 0,
            pax: None,
            pax_left: 0,
            pax_size: None,
            sparse_ext: false,
            pending: 0,
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.skip > 0 {
                let k = (self.skip.min(data.len() as u64)) as usize;
                if let Some(p) = &mut self.pax {
                    let take = (self.pax_left.min(k as u64)) as usize;
                    p.extend_from_slice(&data[..take]);
                    self.pax_left -= take as u64;
                }
                self.skip -= k as u64;
                data = &data[k..];
                if self.skip == 0 {
                    if let Some(p) = self.pax.take() {
                        self.pax_size = pax_record(&p, b"size")
                            .and_then(|v| std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()));
                    }
                }
                continue;
            }
            let k = (512 - self.fill).min(data.len());
            self.block[self.fill..self.fill + k].copy_from_slice(&data[..k]);
            self.fill += k;
            data = &data[k..];
            if self.fill == 512 {
                self.fill = 0;
                self.header()?;
            }
        }
        Ok(())
    }

    fn header(&mut self) -> io::Result<()> {
        let b = &self.block;
        if self.sparse_ext {
            self.sparse_ext = b[504] != 0;
            if !self.sparse_ext {
                self.skip = self.pending;
            }
            return Ok(());
        }
        if b.iter().all(|&x| x == 0) {
            return Ok(()); // end-of-archive blocks
        }
        let flag = b[156];
        let Some(mut size) = tar_number(&b[124..136]) else {
            return Ok(()); // the tar reader reports a bad header itself
        };
        let is_meta = matches!(flag, b'L' | b'K' | b'x' | b'g' | b'X');
        if !is_meta {
            if let Some(ps) = self.pax_size.take() {
                size = ps;
            }
        }
        if is_meta && size > MAX_META_ENTRY {
            return Err(io::Error::other(format!(
                "a {} entry of {size} bytes (more than {MAX_META_ENTRY}); refusing to load it",
                match flag {
                    b'L' => "GNU long name",
                    b'K' => "GNU long link",
                    _ => "PAX header",
                }
            )));
        }
        let padded = size.div_ceil(512).saturating_mul(512);
        if flag == b'x' || flag == b'X' {
            self.pax = Some(Vec::with_capacity(size as usize));
            self.pax_left = size;
        }
        if flag == b'S' && b[482] != 0 {
            self.sparse_ext = true;
            self.pending = padded;
            return Ok(());
        }
        self.skip = padded;
        Ok(())
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n])?;
        Ok(n)
    }
}

/// A tar numeric field: octal (NUL/space padded) or base-256 (high bit set).
fn tar_number(f: &[u8]) -> Option<u64> {
    if f[0] & 0x80 != 0 {
        let mut v: u64 = (f[0] & 0x7f) as u64;
        for &x in &f[1..] {
            v = v.checked_mul(256)?.checked_add(x as u64)?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(f).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The value of `key` in PAX records (`LEN key=value\n`...), the last one if repeated.
fn pax_record<'a>(data: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut rest = data;
    let mut found = None;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > rest.len() {
            return found;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            if &rec[..eq] == key {
                found = Some(&rec[eq + 1..]);
            }
        }
        rest = &rest[len..];
    }
    found
}

/// Whether `e` (maybe wrapped by the tar reader) is a `Budget` overrun.
fn is_over_budget(e: &io::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|e| e as _);
    while let Some(err) = cur {
        if err.is::<OverBudget>() {
            return true;
        }
        cur = err.source();
    }
    e.to_string()
        .contains("uncompressed size is over the limit")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

enum Decoder<R: BufRead> {
    Plain(R),
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> Decoder<R> {
    fn into_inner(self) -> R {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
            Decoder::Zstd(r) => r.finish(),
        }
    }
}

/// Tells the compression from the first bytes of the blob; checks it against the media type.
fn detect(magic: &[u8], media_type: &str) -> Result<Compression, String> {
    let by_magic = if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if magic.starts_with(b"BZh") {
        return Err("compressed with bzip2, which is not supported".into());
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err("compressed with xz, which is not supported".into());
    } else {
        Compression::None
    };
    let by_type = if media_type.ends_with("gzip") {
        Compression::Gzip
    } else if media_type.ends_with("zstd") {
        Compression::Zstd
    } else {
        Compression::None
    };
    if by_magic == Compression::None && by_type != Compression::None {
        return Err(format!(
            "media type {media_type} says compressed but the blob is not {}",
            if by_type == Compression::Gzip {
                "gzip"
            } else {
                "zstd"
            }
        ));
    }
    Ok(by_magic)
}

fn apply_layer(
    tree: &mut Tree,
    index: usize,
    count: usize,
    layer: &Layer,
    budget: &Rc<Cell<u64>>,
    max_size: u64,
    progress: &mut dyn FnMut(LayerProgress),
) -> Result<(), ConvertError> {
    let path = &layer.blob.path;
    let file = layer.blob.open().map_err(|e| ConvertError::io(path, e))?;
    apply_stream(tree, index, count, layer, file, budget, max_size, progress)
}

/// `apply_layer` on the blob's bytes from `file`.
#[allow(clippy::too_many_arguments)]
fn apply_stream(
    tree: &mut Tree,
    index: usize,
    count: usize,
    layer: &Layer,
    file: impl Read,
    budget: &Rc<Cell<u64>>,
    max_size: u64,
    progress: &mut dyn FnMut(LayerProgress),
) -> Result<(), ConvertError> {
    let bad = |msg: String| ConvertError::BadLayer {
        digest: layer.label.clone(),
        msg: crate::error::one_line(&msg),
    };
    let too_large = || ConvertError::TooLarge {
        what: format!(
            "the image's uncompressed layers (at layer {index}, {})",
            layer.label
        ),
        limit: max_size,
    };
    let path = &layer.blob.path;
    let read_count = Rc::new(Cell::new(0u64));
    let raw = HashReader {
        inner: file,
        hasher: layer.digest.as_deref().map(Hasher::for_digest),
        count: read_count.clone(),
    };
    let mut buffered = BufReader::with_capacity(256 << 10, raw);
    let magic = buffered.fill_buf().map_err(|e| ConvertError::io(path, e))?;
    let compression = detect(magic, &layer.media_type).map_err(bad)?;
    let decoder = match compression {
        Compression::None => Decoder::Plain(buffered),
        Compression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Decoder::Zstd(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| bad(format!("zstd: {e}")))?,
        ),
    };
    let tar_count = Rc::new(Cell::new(0u64));
    let untarred = HashReader {
        inner: TarGuard::new(Budget {
            inner: decoder,
            left: budget.clone(),
        }),
        hasher: Some(Hasher::for_digest(&layer.diff_id)),
        count: tar_count,
    };
    let mut archive = tar::Archive::new(untarred);

    let mut report = |bytes_read: u64, entries: u64, done: bool| {
        progress(LayerProgress {
            index,
            count,
            digest: layer.label.clone(),
            bytes_read,
            size: layer.size,
            entries,
            done,
        })
    };
    report(0, 0, false);

    let mut applier = Applier {
        tree,
        digest: &layer.label,
        budget: budget.clone(),
        added: HashSet::new(),
    };
    let result = (|| -> Result<u64, ConvertError> {
        let mut entries = 0u64;
        let mut last_bytes = 0u64;
        let iter = archive
            .entries()
            .map_err(|e| bad(format!("reading tar: {e}")))?;
        for entry in iter {
            let mut entry = entry.map_err(|e| {
                if is_over_budget(&e) {
                    too_large()
                } else {
                    bad(format!("reading tar: {e}"))
                }
            })?;
            applier.entry(&mut entry).map_err(|e| match e {
                ConvertError::BadLayer { ref msg, .. }
                    if msg.contains("uncompressed size is over the limit") =>
                {
                    too_large()
                }
                e => e,
            })?;
            entries += 1;
            let bytes = read_count.get();
            if entries.is_multiple_of(PROGRESS_ENTRIES) || bytes - last_bytes >= PROGRESS_BYTES {
                last_bytes = bytes;
                report(bytes, entries, false);
            }
        }
        Ok(entries)
    })();

    // Read the rest of the tar stream (end-of-archive padding) and the rest of the blob, so
    // both digests cover everything. A damaged blob usually fails in the tar or the decoder
    // before its digest can be checked; then the digest mismatch is the better error.
    if budget.get() == 0 && matches!(result, Err(ConvertError::BadLayer { .. })) {
        return Err(too_large());
    }
    let mut untarred = archive.into_inner();
    let tail = io::copy(&mut untarred, &mut io::sink());
    if tail.as_ref().is_err_and(is_over_budget) {
        return Err(too_large());
    }
    let tar_digest = untarred.hasher.take().expect("hashing").finish();
    let mut buffered = untarred.inner.inner.inner.into_inner();
    let raw_tail = io::copy(&mut buffered, &mut io::sink());
    let raw = buffered.into_inner();
    let blob_size = raw.count.get();
    if let (Some(digest), Some(hasher), true) = (&layer.digest, raw.hasher, raw_tail.is_ok()) {
        let blob_digest = hasher.finish();
        if &blob_digest != digest {
            return Err(ConvertError::DigestMismatch {
                what: format!("layer {index}"),
                digest: digest.clone(),
                actual: blob_digest,
            });
        }
    }
    if raw_tail.is_ok() && blob_size != layer.size {
        return Err(ConvertError::SizeMismatch {
            what: format!("layer {index}"),
            digest: layer.label.clone(),
            expected: layer.size,
            actual: blob_size,
        });
    }
    let entries = result?;
    raw_tail.map_err(|e| ConvertError::io(path, e))?;
    tail.map_err(|e| bad(format!("after the end of the tar archive: {e}")))?;
    if tar_digest != layer.diff_id {
        return Err(ConvertError::DiffIdMismatch {
            index,
            digest: layer.label.clone(),
            expected: layer.diff_id.clone(),
            actual: tar_digest,
        });
    }
    report(blob_size, entries, true);
    Ok(())
}

/// Splits a tar path into components: `.` and empty ones dropped, `..` resolved lexically
/// with the root as its own parent.
fn normalise(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

fn show(path: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(path))
}

/// Parses a PAX `mtime` ("1700000000", "1700000000.5", "-1.25") into seconds and nanoseconds.
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut nsec: u32 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += (b - b'0') as u32 * 10u32.pow(8 - i as u32);
    }
    if neg {
        if nsec == 0 {
            Some((-secs, 0))
        } else {
            Some((-secs - 1, 1_000_000_000 - nsec))
        }
    } else {
        Some((secs, nsec))
    }
}

/// A file in one of the PAX sparse formats GNU tar writes (0.0, 0.1, 1.0), as Go's
/// archive/tar reads them: the real name, size and the map of data chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PaxSparse {
    name: Option<Vec<u8>>,
    real_size: u64,
    /// (offset, length) of each data chunk; `None` in format 1.0 until read from the data.
    map: Vec<(u64, u64)>,
    /// Format 1.0: the map is at the start of the entry's data.
    map_in_data: bool,
}

/// Most chunks a sparse map may list (Go allows as many as fit in its header limits).
const MAX_SPARSE_CHUNKS: usize = 1 << 20;

fn parse_u64(v: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("bad number {:?} in a sparse file header", show(v)))
}

/// The PAX sparse records of an entry, if it has them.
fn pax_sparse<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<PaxSparse>, String> {
    let Some(exts) = entry.pax_extensions().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let (mut major, mut minor) = (None, None);
    let mut name = None;
    let mut real_size = None;
    let mut map_text: Option<Vec<u8>> = None;
    let mut offsets = Vec::new();
    let mut sizes = Vec::new();
    let mut any = false;
    for ext in exts {
        let ext = ext.map_err(|e| e.to_string())?;
        let v = ext.value_bytes();
        match ext.key_bytes() {
            b"GNU.sparse.major" => major = Some(parse_u64(v)?),
            b"GNU.sparse.minor" => minor = Some(parse_u64(v)?),
            b"GNU.sparse.name" => name = Some(v.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => real_size = Some(parse_u64(v)?),
            b"GNU.sparse.map" => map_text = Some(v.to_vec()),
            b"GNU.sparse.offset" => offsets.push(parse_u64(v)?),
            b"GNU.sparse.numbytes" => sizes.push(parse_u64(v)?),
            k if k.starts_with(b"GNU.sparse.") => {}
            _ => continue,
        }
        any = true;
    }
    if !any {
        return Ok(None);
    }
    let real_size = real_size.ok_or("a sparse file without its real size")?;
    let mut sp = PaxSparse {
        name,
        real_size,
        map: Vec::new(),
        map_in_data: false,
    };
    match (major, minor) {
        (Some(1), Some(0)) => sp.map_in_data = true,
        (Some(m), _) if m != 0 => return Err(format!("sparse format {m}.x is not supported")),
        _ => {
            if let Some(text) = map_text {
                // 0.1: "offset,size,offset,size,..."
                let nums: Vec<u64> = text
                    .split(|&b| b == b',')
                    .filter(|t| !t.is_empty())
                    .map(parse_u64)
                    .collect::<Result<_, _>>()?;
                if !nums.len().is_multiple_of(2) {
                    return Err("odd number of values in GNU.sparse.map".into());
                }
                sp.map = nums.chunks(2).map(|c| (c[0], c[1])).collect();
            } else {
                // 0.0: repeated GNU.sparse.offset / GNU.sparse.numbytes records.
                if offsets.len() != sizes.len() {
                    return Err("unpaired GNU.sparse.offset/numbytes records".into());
                }
                sp.map = offsets.into_iter().zip(sizes).collect();
            }
            check_sparse_map(&sp.map, real_size)?;
        }
    }
    Ok(Some(sp))
}

/// Chunks in order, not overlapping, inside the file.
fn check_sparse_map(map: &[(u64, u64)], real_size: u64) -> Result<(), String> {
    if map.len() > MAX_SPARSE_CHUNKS {
        return Err(format!("sparse map with {} chunks", map.len()));
    }
    let mut end = 0u64;
    for &(off, len) in map {
        let stop = off.checked_add(len).ok_or("sparse chunk past 2^64")?;
        if off < end || stop > real_size {
            return Err(
                "sparse map chunks overlap, are out of order or past the file's end".into(),
            );
        }
        end = stop;
    }
    Ok(())
}

/// Expands a PAX sparse entry's data into the file's real content (holes as zeros).
struct SparseReader<'e, R: Read> {
    inner: &'e mut R,
    map: std::vec::IntoIter<(u64, u64)>,
    real_size: u64,
    pos: u64,
    /// The current chunk: (offset, remaining bytes).
    chunk: Option<(u64, u64)>,
}

impl<'e, R: Read> SparseReader<'e, R> {
    fn new(inner: &'e mut R, mut sp: PaxSparse) -> io::Result<Self> {
        if sp.map_in_data {
            sp.map = read_sparse_map_1_0(inner)?;
            check_sparse_map(&sp.map, sp.real_size).map_err(io::Error::other)?;
        }
        let mut map = sp.map.into_iter();
        let chunk = map.next();
        Ok(SparseReader {
            inner,
            map,
            real_size: sp.real_size,
            pos: 0,
            chunk,
        })
    }
}

/// Format 1.0's map at the start of the data: decimal numbers, one per line (count, then
/// offset/size pairs), padded to a 512-byte block.
fn read_sparse_map_1_0(r: &mut impl Read) -> io::Result<Vec<(u64, u64)>> {
    let mut consumed = 0u64;
    let mut read_num = |consumed: &mut u64| -> io::Result<u64> {
        let mut digits = Vec::new();
        loop {
            let mut b = [0u8];
            r.read_exact(&mut b)?;
            *consumed += 1;
            if b[0] == b'\n' {
                break;
            }
            if !b[0].is_ascii_digit() || digits.len() > 20 {
                return Err(io::Error::other("bad sparse map in the data"));
            }
            digits.push(b[0]);
        }
        parse_u64(&digits).map_err(io::Error::other)
    };
    let n = read_num(&mut consumed)? as usize;
    if n > MAX_SPARSE_CHUNKS {
        return Err(io::Error::other(format!("sparse map with {n} chunks")));
    }
    let mut map = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let off = read_num(&mut consumed)?;
        let len = read_num(&mut consumed)?;
        map.push((off, len));
    }
    let pad = (512 - consumed % 512) % 512;
    io::copy(&mut r.take(pad), &mut io::sink())?;
    Ok(map)
}

impl<R: Read> Read for SparseReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.real_size {
            return Ok(0);
        }
        // Empty chunks (GNU tar ends a map with one at the file's end) hold nothing.
        while let Some((_, 0)) = self.chunk {
            self.chunk = self.map.next();
        }
        let room = buf.len() as u64;
        let n = match self.chunk {
            // In a hole before the next chunk (or after the last one).
            Some((off, _)) if self.pos < off => {
                let n = (off - self.pos).min(room) as usize;
                buf[..n].fill(0);
                n
            }
            Some((off, left)) => {
                let want = left.min(room) as usize;
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "sparse file data cut short",
                    ));
                }
                let left = left - n as u64;
                self.chunk = if left == 0 {
                    self.map.next()
                } else {
                    Some((off + n as u64, left))
                };
                n
            }
            None => {
                let n = (self.real_size - self.pos).min(room) as usize;
                buf[..n].fill(0);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

struct Applier<'a> {
    tree: &'a mut Tree,
    digest: &'a str,
    /// Bytes of uncompressed data the image may still have (shared with `Budget`).
    budget: Rc<Cell<u64>>,
    /// Directory entries made by the current layer: (directory, name).
    added: HashSet<(NodeId, Vec<u8>)>,
}

impl Applier<'_> {
    fn bad(&self, msg: String) -> ConvertError {
        ConvertError::BadLayer {
            digest: self.digest.to_string(),
            msg: crate::error::one_line(&msg),
        }
    }

    fn tar_err(&self, path: &[u8], e: io::Error) -> ConvertError {
        self.bad(format!("entry {}: {e}", show(path)))
    }

    /// Resolves the directory holding the entry `parent/<name>`, following symlinks inside
    /// the root. With `create`, missing directories are made; without, a missing one gives
    /// `None`.
    fn resolve_dir(
        &mut self,
        entry: &[u8],
        parent: &[Vec<u8>],
        create: bool,
    ) -> Result<Option<NodeId>, ConvertError> {
        let mut stack: Vec<NodeId> = vec![self.tree.root()];
        let mut queue: VecDeque<Vec<u8>> = parent.iter().cloned().collect();
        let mut links = 0;
        while let Some(comp) = queue.pop_front() {
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let cur = *stack.last().expect("stack holds the root");
            let child = match &self.tree.node(cur).kind {
                NodeKind::Dir(children) => children.get(&comp).copied(),
                _ => unreachable!("only directories are pushed"),
            };
            let Some(child) = child else {
                if !create {
                    return Ok(None);
                }
                let id = self
                    .tree
                    .add(Meta::IMPLICIT_DIR, NodeKind::Dir(Default::default()));
                self.link(cur, comp, id);
                stack.push(id);
                continue;
            };
            match &self.tree.node(child).kind {
                NodeKind::Dir(_) => stack.push(child),
                NodeKind::Symlink(target) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(self.bad(format!(
                            "entry {}: more than {MAX_SYMLINKS} symlinks on its path (a loop?)",
                            show(entry)
                        )));
                    }
                    if target.starts_with(b"/") {
                        stack.truncate(1);
                    }
                    for c in target.split(|&b| b == b'/').filter(|c| !c.is_empty()).rev() {
                        queue.push_front(c.to_vec());
                    }
                }
                _ => {
                    return Err(self.bad(format!(
                        "entry {}: its parent {} is not a directory",
                        show(entry),
                        show(&comp)
                    )))
                }
            }
        }
        Ok(Some(*stack.last().expect("stack holds the root")))
    }

    /// Makes `dir/name` refer to `id` (replacing what was there) and notes it as this layer's.
    fn link(&mut self, dir: NodeId, name: Vec<u8>, id: NodeId) {
        if let NodeKind::Dir(children) = &mut self.tree.node_mut(dir).kind {
            children.insert(name.clone(), id);
        }
        self.added.insert((dir, name));
    }

    fn unlink(&mut self, dir: NodeId, name: &[u8]) {
        if let NodeKind::Dir(children) = &mut self.tree.node_mut(dir).kind {
            children.remove(name);
        }
    }

    fn child(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        self.tree.children(dir)?.get(name).copied()
    }

    /// Opaque directory: removes everything under `dir` that this layer did not add.
    fn make_opaque(&mut self, dir: NodeId) {
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            let children: Vec<(Vec<u8>, NodeId)> = match self.tree.children(d) {
                Some(c) => c.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                None => continue,
            };
            for (name, id) in children {
                if self.added.contains(&(d, name.clone())) {
                    if self.tree.node(id).is_dir() {
                        dirs.push(id);
                    }
                } else {
                    self.unlink(d, &name);
                }
            }
        }
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &[u8],
    ) -> Result<Meta, ConvertError> {
        let h = entry.header();
        let mode = h.mode().map_err(|e| self.tar_err(path, e))? & 0o7777;
        let uid = h.uid().map_err(|e| self.tar_err(path, e))?;
        let gid = h.gid().map_err(|e| self.tar_err(path, e))?;
        let mtime = h.mtime().map_err(|e| self.tar_err(path, e))?;
        let uid = u32::try_from(uid)
            .map_err(|_| self.bad(format!("entry {}: uid {uid} is too large", show(path))))?;
        let gid = u32::try_from(gid)
            .map_err(|_| self.bad(format!("entry {}: gid {gid} is too large", show(path))))?;
        let mut meta = Meta {
            mode,
            uid,
            gid,
            mtime: i64::try_from(mtime).unwrap_or(i64::MAX),
            mtime_nsec: 0,
        };
        if let Some(exts) = entry.pax_extensions().map_err(|e| self.tar_err(path, e))? {
            for ext in exts {
                let ext = ext.map_err(|e| self.tar_err(path, e))?;
                if ext.key_bytes() == b"mtime" {
                    if let Some((s, ns)) = parse_pax_time(ext.value_bytes()) {
                        meta.mtime = s;
                        meta.mtime_nsec = ns;
                    }
                }
            }
        }
        Ok(meta)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ConvertError> {
        let mut path = entry.path_bytes().into_owned();
        let mut etype = entry.header().entry_type();
        let sparse = if etype == EntryType::Regular {
            pax_sparse(entry).map_err(|e| self.bad(format!("entry {}: {e}", show(&path))))?
        } else {
            None
        };
        if let Some(sp) = &sparse {
            if let Some(name) = &sp.name {
                path = name.clone();
            }
        }
        match etype {
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => return Ok(()),
            // Old tars mark directories with a trailing slash only.
            EntryType::Regular if path.ends_with(b"/") && entry.size() == 0 => {
                etype = EntryType::Directory
            }
            _ => {}
        }
        let mut comps = normalise(&path);
        let Some(name) = comps.pop() else {
            // The root itself.
            if etype == EntryType::Directory {
                let meta = self.meta(entry, &path)?;
                self.tree.node_mut(self.tree.root()).meta = meta;
                return Ok(());
            }
            return Err(self.bad(format!(
                "entry {}: would replace the root directory with a non-directory",
                show(&path)
            )));
        };

        if let Some(target) = name.strip_prefix(b".wh.") {
            if target == b".wh..opq" {
                let dir = self
                    .resolve_dir(&path, &comps, true)?
                    .expect("created if missing");
                self.make_opaque(dir);
            } else if target.starts_with(b".wh.") {
                // aufs metadata (.wh..wh.plnk, .wh..wh.aufs, ...): nothing to apply.
            } else if target.is_empty() || target == b"." || target == b".." {
                return Err(self.bad(format!("entry {}: invalid whiteout", show(&path))));
            } else if let Some(dir) = self.resolve_dir(&path, &comps, false)? {
                if !self.added.contains(&(dir, target.to_vec())) {
                    self.unlink(dir, target);
                }
            }
            return Ok(());
        }

        let kind = match etype {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => None,
            EntryType::Directory => Some(NodeKind::Dir(Default::default())),
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    self.bad(format!("entry {}: symlink without a target", show(&path)))
                })?;
                Some(NodeKind::Symlink(target.into_owned()))
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    self.bad(format!("entry {}: hardlink without a target", show(&path)))
                })?;
                let target = target.into_owned();
                let id = self.hardlink_target(&path, &target)?;
                let dir = self
                    .resolve_dir(&path, &comps, true)?
                    .expect("created if missing");
                self.link(dir, name, id);
                return Ok(());
            }
            EntryType::Char | EntryType::Block => {
                let h = entry.header();
                let major = h.device_major().map_err(|e| self.tar_err(&path, e))?;
                let minor = h.device_minor().map_err(|e| self.tar_err(&path, e))?;
                let (major, minor) = (major.unwrap_or(0), minor.unwrap_or(0));
                Some(if etype == EntryType::Char {
                    NodeKind::CharDev { major, minor }
                } else {
                    NodeKind::BlockDev { major, minor }
                })
            }
            EntryType::Fifo => Some(NodeKind::Fifo),
            // Volume labels, multi-volume continuations, unknown types.
            _ => return Ok(()),
        };
        let meta = self.meta(entry, &path)?;
        let dir = self
            .resolve_dir(&path, &comps, true)?
            .expect("created if missing");
        let existing = self.child(dir, &name);
        let kind = match kind {
            Some(NodeKind::Dir(_)) => {
                if let Some(id) = existing.filter(|&id| self.tree.node(id).is_dir()) {
                    // Directory over directory: keep the children, take the metadata.
                    self.tree.node_mut(id).meta = meta;
                    self.added.insert((dir, name));
                    return Ok(());
                }
                NodeKind::Dir(Default::default())
            }
            Some(k) => k,
            None => {
                let spooled = match sparse {
                    Some(sp) => {
                        // Holes are spooled as zeros: they count against the size budget.
                        let holes = sp
                            .real_size
                            .saturating_sub(sp.map.iter().map(|c| c.1).sum());
                        let left = self.budget.get();
                        if holes > left {
                            self.budget.set(0);
                            return Err(self.bad(format!(
                                "entry {}: the image's uncompressed size is over the limit",
                                show(&path)
                            )));
                        }
                        self.budget.set(left - holes);
                        let mut r = SparseReader::new(entry, sp)
                            .map_err(|e| self.bad(format!("entry {}: {e}", show(&path))))?;
                        self.tree.spool_from(&mut r)
                    }
                    None => self.tree.spool_from(entry),
                };
                let (offset, len) =
                    spooled.map_err(|e| self.bad(format!("entry {}: {e}", show(&path))))?;
                NodeKind::File { offset, len }
            }
        };
        let id = self.tree.add(meta, kind);
        self.link(dir, name, id);
        Ok(())
    }

    /// The node a hardlink entry points to: an existing non-directory.
    fn hardlink_target(&mut self, path: &[u8], target: &[u8]) -> Result<NodeId, ConvertError> {
        let mut comps = normalise(target);
        let digest = self.digest;
        let missing = || ConvertError::BadLayer {
            digest: digest.to_string(),
            msg: format!(
                "hardlink {} -> {}: no such file earlier in the image",
                show(path),
                show(target)
            ),
        };
        let Some(name) = comps.pop() else {
            return Err(self.bad(format!(
                "hardlink {} -> {}: target is the root directory",
                show(path),
                show(target)
            )));
        };
        let Some(dir) = self.resolve_dir(path, &comps, false)? else {
            return Err(missing());
        };
        let id = self.child(dir, &name).ok_or_else(missing)?;
        if self.tree.node(id).is_dir() {
            return Err(self.bad(format!(
                "hardlink {} -> {}: target is a directory",
                show(path),
                show(target)
            )));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_paths() {
        let n = |p: &[u8]| normalise(p);
        assert_eq!(n(b"./a/b"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(n(b"/a//./b/"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(n(b"../../etc/x"), vec![b"etc".to_vec(), b"x".to_vec()]);
        assert_eq!(n(b"a/../../b"), vec![b"b".to_vec()]);
        assert!(n(b"./").is_empty());
        assert!(n(b"..").is_empty());
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1700000000, 0)));
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some((1700000000, 500_000_000))
        );
        assert_eq!(parse_pax_time(b"12.1234567891"), Some((12, 123_456_789)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn compression_detection() {
        assert_eq!(
            detect(&[0x1f, 0x8b, 8, 0], "whatever"),
            Ok(Compression::Gzip)
        );
        assert_eq!(
            detect(
                &[0x28, 0xb5, 0x2f, 0xfd],
                "application/vnd.oci.image.layer.v1.tar"
            ),
            Ok(Compression::Zstd)
        );
        assert_eq!(
            detect(b"abcd", "application/vnd.oci.image.layer.v1.tar"),
            Ok(Compression::None)
        );
        assert!(detect(b"abcd", "application/vnd.oci.image.layer.v1.tar+gzip").is_err());
        assert!(detect(b"BZh9", "application/vnd.oci.image.layer.v1.tar").is_err());
    }
}
