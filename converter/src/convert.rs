//! The whole conversion: image -> tree -> bundle -> module file.
//!
//! **No partial output**: the module is written to a temporary file next to the output and
//! renamed over it only when complete; on any error the temporary file is removed.

use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use rvbox_guest::bundle::{self, InodeSpec, NodeSpec};
use sha2::{Digest, Sha256};

use crate::error::ConvertError;
use crate::layers::LayerProgress;
use crate::meta::{ModuleMeta, FORMAT};
use crate::module::{self, ModuleError};
use crate::tree::{NodeId, NodeKind, Tree};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] ConvertError),
    #[error("{}: {source}", path.display())]
    Module {
        path: PathBuf,
        #[source]
        source: ModuleError,
    },
    #[error("{}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `-o` names no file the module can be written as.
    #[error("{}: {why}", path.display())]
    OutputPath { path: PathBuf, why: String },
}

/// What was converted.
#[derive(Debug, Clone)]
pub struct Report {
    pub meta: ModuleMeta,
    pub module_size: u64,
    pub aot: AotReport,
}

/// What the translator did.
#[derive(Debug, Default, Clone)]
pub struct AotReport {
    /// Files translated.
    pub files: Vec<String>,
    /// RISC-V ELF files skipped (malformed), with the reason.
    pub skipped: Vec<(String, String)>,
    pub functions: usize,
    /// Guest instructions translated, and bytes of guest code read.
    pub insns: usize,
    pub code_bytes: u64,
    /// Bytes of Wasm function bodies added.
    pub wasm_bytes: u64,
    pub seconds: f64,
}

/// Progress events for a display.
pub enum Progress<'a> {
    Layer(&'a LayerProgress),
    /// Writing the bundle: files written so far, of `total`.
    Bundle {
        files: u64,
        total: u64,
    },
}

/// How to convert.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most uncompressed image data to read (`--max-image-size`).
    pub max_image_size: u64,
    /// Changes to the image's config (`--entrypoint`, `--cmd`, `--env`, ...).
    pub overrides: Overrides,
    /// How a registry image is pulled (`--pull`, credentials, insecure registries).
    pub pull: crate::registry::Options,
    /// What to translate ahead of time (`--aot`, `--aot-include`).
    pub aot: crate::aot::Options,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_image_size: crate::DEFAULT_MAX_IMAGE_SIZE,
            overrides: Overrides::default(),
            pull: Default::default(),
            aot: Default::default(),
        }
    }
}

/// Changes to the image's config made at conversion, as a Dockerfile's instructions would
/// make them on top of the image.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces Entrypoint; as in a Dockerfile, it also clears the image's Cmd unless `cmd`
    /// is given.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE`: replaces the image's KEY, or adds it.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

impl Overrides {
    /// Applies the changes to `c`.
    pub fn apply(&self, c: &mut crate::meta::RunConfig) {
        if let Some(e) = &self.entrypoint {
            c.entrypoint = e.clone();
            c.cmd.clear();
        }
        if let Some(cmd) = &self.cmd {
            c.cmd = cmd.clone();
        }
        for kv in &self.env {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            c.env
                .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            c.env.push(kv.clone());
        }
        if let Some(w) = &self.workdir {
            c.working_dir = w.clone();
        }
        if let Some(u) = &self.user {
            c.user = u.clone();
        }
    }
}

/// Converts image `reference` into a module at `out`, with the default options.
pub fn convert(
    reference: &str,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, Error> {
    convert_with(reference, out, &Options::default(), progress)
}

/// Reads image `reference` into a tree (layers applied, or a root directory read), with its
/// metadata after the overrides.
pub fn read_image(
    reference: &str,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<(crate::meta::ImageMeta, Tree), Error> {
    let open_opts = crate::image::OpenOptions {
        max_size: opts.max_image_size,
        pull: opts.pull.clone(),
    };
    let mut image = crate::image::open_with(reference, &open_opts)?;
    let tree = match &image.rootfs {
        Some(dir) => crate::rootdir::read(dir, reference, opts.max_image_size, &mut |p| {
            progress(Progress::Layer(&p))
        })?,
        None => crate::layers::apply_limited(&image, opts.max_image_size, &mut |p| {
            progress(Progress::Layer(&p))
        })?,
    };
    opts.overrides.apply(&mut image.meta.config);
    Ok((image.meta, tree))
}

/// Converts image `reference` into a module at `out`.
pub fn convert_with(
    reference: &str,
    out: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, Error> {
    check_output(out)?;
    let (image_meta, tree) = read_image(reference, opts, progress)?;
    let out_err = |source| Error::Output {
        path: out.to_path_buf(),
        source,
    };

    let flat = flatten(&tree).map_err(ConvertError::Spool)?;
    let c = &image_meta.config;
    let bytes = |v: &[String]| v.iter().map(|s| s.as_bytes().to_vec()).collect();
    let config = bundle::RunConfig {
        entrypoint: bytes(&c.entrypoint),
        cmd: bytes(&c.cmd),
        env: bytes(&c.env),
        working_dir: c.working_dir.as_bytes().to_vec(),
        user: c.user.as_bytes().to_vec(),
    }
    .encode();
    let layout = bundle::layout(&flat.specs, &config);

    // The bundle goes to a temp file first: its hash goes into the metadata, which comes
    // first in the module.
    let mut spool = tempfile::tempfile().map_err(out_err)?;
    let bundle_hash = {
        let mut w = HashingWriter::new(BufWriter::new(&mut spool));
        w.write_all(&layout.head).map_err(out_err)?;
        let mut buf = vec![0u8; 1 << 16];
        let total = flat.files.len() as u64;
        for (n, &(spec_index, tree_offset, len)) in flat.files.iter().enumerate() {
            let at = layout.file_offsets[spec_index].expect("a file has an offset");
            w.pad_to(at).map_err(out_err)?;
            let mut done = 0;
            while done < len {
                let k = (len - done).min(buf.len() as u64) as usize;
                tree.read_file(tree_offset + done, &mut buf[..k])
                    .map_err(ConvertError::Spool)?;
                w.write_all(&buf[..k]).map_err(out_err)?;
                done += k as u64;
            }
            if n % 256 == 0 || n as u64 + 1 == total {
                progress(Progress::Bundle {
                    files: n as u64 + 1,
                    total,
                });
            }
        }
        w.pad_to(layout.total_len).map_err(out_err)?;
        w.flush().map_err(out_err)?;
        w.finish()
    };

    let aot_started = std::time::Instant::now();
    let translation = translate(&tree, &flat, &layout, c, &opts.aot);
    let aot = AotReport {
        files: translation.files.clone(),
        skipped: translation.skipped.clone(),
        functions: translation.bodies.len(),
        insns: translation.insns,
        code_bytes: translation.code_bytes,
        wasm_bytes: translation.bodies.iter().map(|b| b.len() as u64).sum(),
        seconds: aot_started.elapsed().as_secs_f64(),
    };

    let module_id = {
        let mut h = Sha256::new();
        h.update(module::guest_hash());
        h.update(bundle_hash);
        if !translation.bodies.is_empty() {
            h.update(&translation.index);
            for b in &translation.bodies {
                h.update(b);
            }
        }
        hex::encode(h.finalize())
    };
    let meta = ModuleMeta {
        format: FORMAT,
        rvbox_version: env!("CARGO_PKG_VERSION").into(),
        module_id,
        image: image_meta.clone(),
        bundle_size: layout.total_len,
        file_count: flat.specs.len() as u64,
        files_size: flat.files.iter().map(|f| f.2).sum(),
    };

    let mut tmp = tempfile::Builder::new()
        .prefix(".rvbox-convert-")
        .tempfile_in(output_dir(out))
        .map_err(out_err)?;
    spool.rewind().map_err(out_err)?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        module::write_module(
            &mut w,
            &meta,
            &mut io::BufReader::new(&mut spool),
            layout.total_len,
            &translation,
        )
        .map_err(|source| Error::Module {
            path: out.to_path_buf(),
            source,
        })?;
        w.flush().map_err(out_err)?;
    }
    tmp.as_file().sync_all().map_err(out_err)?;
    // A module is an ordinary file: rw-r--r-- less the umask, not the temp file's 0600.
    {
        use std::os::unix::fs::PermissionsExt;
        let umask = current_umask();
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644 & !umask))
            .map_err(out_err)?;
    }
    let module_size = tmp.as_file().metadata().map_err(out_err)?.len();
    tmp.persist(out).map_err(|e| out_err(e.error))?;
    Ok(Report {
        meta,
        module_size,
        aot,
    })
}

/// Translates the files `opts` picks (see `crate::aot`).
fn translate(
    tree: &Tree,
    flat: &Flat,
    layout: &bundle::Layout,
    config: &crate::meta::RunConfig,
    opts: &crate::aot::Options,
) -> crate::aot::Translation {
    use crate::aot::{entry_closure, glob_match, Candidate, Mode};
    if opts.mode == Mode::None && opts.include.is_empty() {
        return Default::default();
    }
    let candidates: Vec<Candidate> = flat
        .files
        .iter()
        .map(|&(spec, _, _)| Candidate {
            path: flat.paths[spec].clone(),
            node: flat.nodes[spec],
            bundle_off: layout.file_offsets[spec].expect("a file has an offset"),
        })
        .collect();
    let entry = if opts.mode == Mode::Entry {
        let argv0 = config.entrypoint.first().or(config.cmd.first());
        let path = config
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        argv0.map_or_else(Default::default, |a| entry_closure(tree, a, path))
    } else {
        Default::default()
    };
    crate::aot::translate(
        tree,
        &candidates,
        &|c| {
            opts.mode == Mode::All
                || entry.contains(&c.node)
                || opts.include.iter().any(|g| glob_match(g, &c.path))
        },
        module::aot_type_index(),
    )
}

/// The directory the module is written in.
fn output_dir(out: &Path) -> &Path {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Refuses, before any work, an output path no module can be written as: a directory
/// (existing, or named with a trailing `/`), or a file in a directory that is not there.
fn check_output(out: &Path) -> Result<(), Error> {
    let refuse = |why: String| {
        Err(Error::OutputPath {
            path: out.to_path_buf(),
            why,
        })
    };
    if out.as_os_str().as_encoded_bytes().ends_with(b"/") || out.is_dir() {
        return refuse(format!(
            "is a directory; give the module's file name, as -o {}",
            out.join("NAME.wasm").display()
        ));
    }
    let dir = output_dir(out);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => refuse(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            refuse(format!("no such directory: {}", dir.display()))
        }
        Err(e) => refuse(format!("{}: {e}", dir.display())),
    }
}

/// The tree as the bundle writer wants it: inodes in breadth-first order from the root
/// (one per node, so hardlinks stay hardlinks), and the regular files to copy.
struct Flat {
    specs: Vec<InodeSpec>,
    /// Per spec: its node, and the path it was first reached by.
    nodes: Vec<NodeId>,
    paths: Vec<String>,
    /// (index in `specs`, offset in the tree's spool, length)
    files: Vec<(usize, u64, u64)>,
}

fn flatten(tree: &Tree) -> io::Result<Flat> {
    let mut index_of = std::collections::HashMap::<NodeId, u32>::new();
    let mut order = vec![tree.root()];
    let mut paths = vec![String::new()];
    index_of.insert(tree.root(), 0);
    let mut specs = Vec::new();
    let mut files = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let id = order[i];
        let node = tree.node(id);
        let spec_node = match &node.kind {
            NodeKind::Dir(children) => NodeSpec::Dir(
                children
                    .iter()
                    .map(|(name, &child)| {
                        let idx = *index_of.entry(child).or_insert_with(|| {
                            order.push(child);
                            paths.push(format!("{}/{}", paths[i], String::from_utf8_lossy(name)));
                            (order.len() - 1) as u32
                        });
                        (name.clone(), idx)
                    })
                    .collect(),
            ),
            &NodeKind::File { offset, len } => {
                files.push((i, offset, len));
                NodeSpec::File {
                    len,
                    sum: file_checksum(tree, offset, len)?,
                }
            }
            NodeKind::Symlink(t) => NodeSpec::Symlink(t.clone()),
            &NodeKind::CharDev { major, minor } => NodeSpec::CharDev {
                rdev: encode_dev(major, minor),
            },
            &NodeKind::BlockDev { major, minor } => NodeSpec::BlockDev {
                rdev: encode_dev(major, minor),
            },
            NodeKind::Fifo => NodeSpec::Fifo,
        };
        specs.push(InodeSpec {
            perm: node.meta.mode & 0o7777,
            uid: node.meta.uid,
            gid: node.meta.gid,
            mtime: node.meta.mtime,
            mtime_nsec: node.meta.mtime_nsec,
            node: spec_node,
        });
        i += 1;
    }
    Ok(Flat {
        specs,
        nodes: order,
        paths,
        files,
    })
}

/// The bundle checksum of a file's contents in the tree's spool.
fn file_checksum(tree: &Tree, offset: u64, len: u64) -> io::Result<u64> {
    let mut sum = bundle::Checksum::new();
    let mut buf = vec![0u8; len.min(1 << 16) as usize];
    let mut done = 0;
    while done < len {
        let k = (len - done).min(buf.len() as u64) as usize;
        tree.read_file(offset + done, &mut buf[..k])?;
        sum.update(&buf[..k]);
        done += k as u64;
    }
    Ok(sum.finish())
}

/// Linux `new_encode_dev`.
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// A writer that hashes what passes through and knows its position.
struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
    pos: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: Sha256::new(),
            pos: 0,
        }
    }

    fn pad_to(&mut self, at: u64) -> io::Result<()> {
        const ZEROS: [u8; 4096] = [0; 4096];
        while self.pos < at {
            let n = (at - self.pos).min(4096) as usize;
            self.write_all(&ZEROS[..n])?;
        }
        Ok(())
    }

    fn finish(self) -> String {
        hex::encode(self.hash.finalize())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The process umask (read without changing it, via /proc; 022 if unknown).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}
