//! Compiled-module cache: the second start of a module does not compile it again.
//!
//! Layout: one file per compiled module, `<dir>/<key>.cwasm`, where `<dir>` is
//! `$RVBOX_CACHE_DIR`, else `$XDG_CACHE_HOME/rvbox` or `~/.cache/rvbox`, and `<key>` is the
//! hex sha256 of everything that decides the compiled code: the sha256 of the module
//! file's bytes, and the engine (see [`cache_key`]). **An entry is stored only under the
//! hash of the very bytes it was compiled from**, so no module file can stand in for
//! another: the id a module claims in its `rvbox` section is not trusted (a tampered copy
//! may carry the genuine one's). An entry is the output of
//! [`Engine::precompile_module`], written to a temporary file in the same directory and
//! renamed into place, so readers never see a partial entry and an entry is never changed
//! once visible. Entries are loaded with [`Module::deserialize_file`], which maps the file:
//! the module's data segments (the filesystem bundle) then come straight from the page
//! cache, copy-on-write.
//!
//! Hashing a 200 MB module costs more than loading its entry, so the content hash of a
//! file is remembered beside the entries, `<dir>/<stamp>.stamp`, keyed by the file's
//! [`Stamp`]: device, inode, size, mtime and ctime. This is sound because every change of
//! a file's bytes (write, truncate, a write through a mapping, `utimensat` putting an mtime
//! back) sets its ctime to the current time, and no one but the clock sets ctime: a file
//! whose stamp matches the one taken when it was hashed has not changed since, and another
//! file (a copy, a tampered module, a new file on a reused inode number) has another
//! inode, device or ctime. One race remains, timestamps being coarser than the changes: a
//! file changed twice within one tick of the file system's clock keeps its ctime. So a
//! stamp is recorded only when its ctime is [`SETTLED`] older than the time the file was
//! opened, more than the coarsest timestamps (FAT's 2 s): any later change then gets a
//! later ctime. (What this does not survive: a file system whose times an attacker wrote,
//! e.g. a crafted image mounted at the device number of the file system of a genuine module
//! you run later, with a file of that module's inode number and nanosecond times; or a
//! clock set back. `--no-cache` does not use the cache at all.)
//!
//! The cache is bounded: after an entry is stored, the least recently used entries are
//! deleted until all fit in `$RVBOX_CACHE_MAX` (a size such as `4g`; default [`DEFAULT_MAX`],
//! `0` for no bound), never the entry just stored. A hit marks its entry used (its mtime,
//! at most once an hour). Stamps beyond [`MAX_STAMPS`], oldest first, and temporary files
//! a killed writer left (older than a day) go in the same pass.
//!
//! Any error reading or writing the cache falls back to compiling; it is reported only
//! when `RVBOX_LOG` is set. `RVBOX_LOG=cache` reports hits and misses.

use std::hash::Hasher;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::run::{log, wasmtime_err};

/// Version of the wasmtime crate we link (pinned in Cargo.toml). Part of the cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Extension of cache entries.
const EXT: &str = "cwasm";

/// Extension of the files that remember a module file's content hash by its [`Stamp`].
const STAMP_EXT: &str = "stamp";

/// How much older than the time a file was opened its ctime must be for its stamp to be
/// recorded: more than the coarsest file timestamps (FAT: 2 s; ext4 with small inodes:
/// 1 s) plus the kernel's coarse clock's lag, so that any later change of the file gets a
/// later ctime.
pub const SETTLED: Duration = Duration::from_secs(3);

/// The default bound of the entries' total size (about nine of the 220 MB Debian entry).
pub const DEFAULT_MAX: u64 = 2 << 30;

/// Stamps kept (65 bytes each); the oldest beyond are deleted.
pub const MAX_STAMPS: usize = 4096;

/// A hit marks its entry used when its mtime is older than this.
const TOUCH_AFTER: Duration = Duration::from_secs(3600);

/// Temporary files older than this are a killed writer's.
const STALE_TMP: Duration = Duration::from_secs(24 * 3600);

/// How a module was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No cache in use: compiled.
    Uncached,
    /// Loaded from this cache entry.
    Hit(PathBuf),
    /// Compiled and stored at this cache entry.
    Stored(PathBuf),
    /// Compiled; the cache could not be used (the error was logged if `RVBOX_LOG` is set).
    Failed,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Uncached => "compiled, no cache",
            Outcome::Hit(_) => "cache hit",
            Outcome::Stored(_) => "compiled, cached",
            Outcome::Failed => "compiled, cache unusable",
        })
    }
}

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    /// The bound of the entries' total size in bytes; 0 for none.
    max: u64,
}

impl Cache {
    /// A cache in `dir` (created when first written), bounded by [`DEFAULT_MAX`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache {
            dir: dir.into(),
            max: DEFAULT_MAX,
        }
    }

    /// This cache with entries bounded by `max` bytes in total (0: unbounded).
    pub fn with_max(mut self, max: u64) -> Self {
        self.max = max;
        self
    }

    /// The cache in [`default_dir`], if there is one, bounded by `$RVBOX_CACHE_MAX`.
    pub fn from_env() -> Option<Self> {
        let cache = Cache::new(default_dir()?);
        Some(match std::env::var("RVBOX_CACHE_MAX") {
            Ok(v) if !v.is_empty() => match crate::parse_bytes(&v) {
                Some(max) => cache.with_max(max),
                None => {
                    crate::run::eprint_line(format_args!(
                        "rvbox: RVBOX_CACHE_MAX={v:?} is not a size (such as 4g, 500m, 0 for \
                         no bound); the cache stays within {} GiB",
                        DEFAULT_MAX >> 30
                    ));
                    cache
                }
            },
            _ => cache,
        })
    }

    /// Deletes the least recently used entries (by mtime) until the entries fit in the
    /// bound, never `keep`; the oldest stamps beyond [`MAX_STAMPS`]; and stale temporary
    /// files. Returns the number of files deleted.
    pub fn prune(&self, keep: &Path) -> anyhow::Result<usize> {
        let now = SystemTime::now();
        let mut entries = Vec::new();
        let mut stamps = Vec::new();
        let mut deleted = 0;
        for e in std::fs::read_dir(&self.dir).with_context(|| format!("{}", self.dir.display()))? {
            let e = e?;
            let Ok(m) = e.metadata() else { continue };
            let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let path = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(&format!(".{EXT}")) {
                entries.push((mtime, m.len(), path));
            } else if name.ends_with(&format!(".{STAMP_EXT}")) {
                stamps.push((mtime, path));
            } else if name.starts_with(".tmp-")
                && now.duration_since(mtime).is_ok_and(|age| age > STALE_TMP)
                && std::fs::remove_file(&path).is_ok()
            {
                deleted += 1;
            }
        }
        if self.max > 0 {
            entries.sort();
            let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
            for (_, len, path) in &entries {
                if total <= self.max {
                    break;
                }
                if path == keep {
                    continue;
                }
                std::fs::remove_file(path).with_context(|| format!("{}", path.display()))?;
                log(
                    "cache",
                    format_args!("cache: deleted {} (least recently used)", path.display()),
                );
                total -= len;
                deleted += 1;
            }
        }
        if stamps.len() > MAX_STAMPS {
            stamps.sort();
            let extra = stamps.len() - MAX_STAMPS;
            for (_, path) in &stamps[..extra] {
                std::fs::remove_file(path).with_context(|| format!("{}", path.display()))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Marks the entry at `path` used now (its mtime), if it was not in the last hour.
    fn touch(path: &Path) -> std::io::Result<()> {
        let now = SystemTime::now();
        let mtime = std::fs::metadata(path)?.modified()?;
        if now.duration_since(mtime).is_ok_and(|age| age > TOUCH_AFTER) {
            std::fs::File::options()
                .write(true)
                .open(path)?
                .set_modified(now)?;
        }
        Ok(())
    }

    // `dir` and `clear` are for main.rs (`rvbox cache ...`); tests use them already.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the entry with this key.
    pub fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{EXT}"))
    }

    /// Path of the stamp file of a module file with this stamp.
    fn stamp_path(&self, stamp: &Stamp) -> PathBuf {
        self.dir.join(format!("{}.{STAMP_EXT}", stamp.key()))
    }

    /// The content hash recorded for a module file with this stamp, if any.
    fn stamped(&self, stamp: &Stamp) -> Option<String> {
        let text = std::fs::read_to_string(self.stamp_path(stamp)).ok()?;
        let id = text.trim_end();
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
    }

    /// Deletes all entries and stamps (and leftover temporary files); returns how many
    /// files and bytes were removed. A missing directory is an empty cache.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn clear(&self) -> anyhow::Result<(u64, u64)> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(e).with_context(|| format!("{}", self.dir.display())),
        };
        let (mut files, mut bytes) = (0, 0);
        for entry in rd {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(&format!(".{EXT}"))
                || name.ends_with(&format!(".{STAMP_EXT}"))
                || name.starts_with(".tmp")
            {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("{}", entry.path().display()))?;
                files += 1;
                bytes += len;
            }
        }
        Ok((files, bytes))
    }

    /// Loads the entry `key`, or `Ok(None)` if there is none.
    fn load(&self, engine: &Engine, key: &str) -> anyhow::Result<Option<(Module, PathBuf)>> {
        let path = self.entry_path(key);
        if !path.is_file() {
            return Ok(None);
        }
        // SAFETY: `deserialize_file` trusts the file to be a compiled module that stays
        // unchanged while mapped. The entry is in our own cache directory, was written by
        // `store` below from `Engine::precompile_module` of an engine with the same
        // configuration (the key covers the wasmtime version, our `Config` and the
        // engine's compatibility hash), and is only ever replaced by rename, never
        // modified in place, so a mapping keeps seeing the bytes it opened. wasmtime also
        // checks the entry's header (version, target, flags) and rejects a mismatch with
        // an error, which sends us back to compiling.
        let module = unsafe { Module::deserialize_file(engine, &path) }.map_err(wasmtime_err)?;
        Ok(Some((module, path)))
    }

    /// Writes `compiled` as entry `key` atomically; returns its path.
    fn store(&self, key: &str, compiled: &[u8]) -> anyhow::Result<PathBuf> {
        let path = self.entry_path(key);
        self.write_atomically(&path, compiled)?;
        Ok(path)
    }

    /// Remembers `content` (a module file's hash) for a file with this stamp.
    fn record(&self, stamp: &Stamp, content: &str) -> anyhow::Result<()> {
        self.write_atomically(&self.stamp_path(stamp), format!("{content}\n").as_bytes())
    }

    /// Writes `bytes` to `path` (in the cache directory) through a temporary file renamed
    /// into place.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .with_context(|| format!("creating a file in {}", self.dir.display()))?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_data()?;
        tmp.persist(path)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }
}

/// `$RVBOX_CACHE_DIR` if set (and not empty), else `$XDG_CACHE_HOME/rvbox` or
/// `~/.cache/rvbox` (the platform's cache directory on other systems).
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os("RVBOX_CACHE_DIR") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => dirs::cache_dir().map(|d| d.join("rvbox")),
    }
}

/// Target the compiled code is for (the host: we do not cross-compile).
fn target() -> String {
    format!(
        "{}-{}-{}",
        std::env::consts::ARCH,
        std::env::consts::OS,
        if cfg!(target_env = "musl") {
            "musl"
        } else {
            "gnu"
        }
    )
}

/// Feeds a `Hash` into sha256.
struct ShaHasher<'a>(&'a mut Sha256);

impl Hasher for ShaHasher<'_> {
    fn finish(&self) -> u64 {
        0 // unused: only the bytes written matter
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Adds a length-prefixed, named field to the hash (no two field lists hash alike).
fn field(h: &mut Sha256, name: &str, value: &[u8]) {
    h.update((name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update((value.len() as u64).to_le_bytes());
    h.update(value);
}

/// The cache key of a module: hex sha256 over `content` (the hex sha256 of the module
/// file's bytes, [`content_hash`]), the wasmtime version, `config` (the fingerprint of our
/// engine `Config`, `run::config_fingerprint`), the target triple, and wasmtime's own
/// compatibility hash of `engine` (compiler flags, CPU features, tunables).
pub fn cache_key(engine: &Engine, content: &str, config: &str) -> String {
    let mut h = Sha256::new();
    field(&mut h, "content_sha256", content.as_bytes());
    field(&mut h, "wasmtime", WASMTIME_VERSION.as_bytes());
    field(&mut h, "config", config.as_bytes());
    field(&mut h, "target", target().as_bytes());
    {
        use std::hash::Hash;
        h.update(b"engine");
        engine
            .precompile_compatibility_hash()
            .hash(&mut ShaHasher(&mut h));
    }
    hex::encode(h.finalize())
}

/// Hex sha256 of a module file's bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What names a file's content without reading it (see the module's doc): its device and
/// inode, its size, and its mtime and ctime to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// The name of its stamp file: hex sha256 of the fields.
    fn key(&self) -> String {
        let mut h = Sha256::new();
        field(&mut h, "dev", &self.dev.to_le_bytes());
        field(&mut h, "ino", &self.ino.to_le_bytes());
        field(&mut h, "size", &self.size.to_le_bytes());
        for (name, (s, ns)) in [("mtime", self.mtime), ("ctime", self.ctime)] {
            field(&mut h, name, &[s.to_le_bytes(), ns.to_le_bytes()].concat());
        }
        hex::encode(h.finalize())
    }

    /// Whether the ctime is [`SETTLED`] older than `opened`, so that any change of the
    /// file after `opened` gives it another ctime.
    fn settled(&self, opened: SystemTime) -> bool {
        let (s, ns) = self.ctime;
        let Ok(secs) = u64::try_from(s) else {
            return false;
        };
        let ctime = SystemTime::UNIX_EPOCH + Duration::new(secs, ns.clamp(0, 999_999_999) as u32);
        ctime + SETTLED < opened
    }
}

/// Reads the rest of an open module file.
fn read_all(file: &mut std::fs::File, path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// Loads the module at `path` from `cache`, or compiles it (and stores it in `cache`).
/// With `cache == None` it only compiles. Only a failure to compile is an error. `config`
/// describes `engine`'s configuration (see [`cache_key`]).
pub fn load_or_compile(
    engine: &Engine,
    path: &Path,
    cache: Option<&Cache>,
    config: &str,
) -> anyhow::Result<(Module, Outcome)> {
    let opened = SystemTime::now();
    let mut file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let Some(cache) = cache else {
        let module = Module::from_binary(engine, &read_all(&mut file, path)?)
            .map_err(wasmtime_err)
            .with_context(|| format!("compiling {}", path.display()))?;
        return Ok((module, Outcome::Uncached));
    };

    // The content hash: recorded for the file's stamp, else computed from its bytes (and
    // recorded when the stamp is settled and did not change while they were read).
    let stamp_of = |f: &std::fs::File| f.metadata().map(|m| Stamp::of(&m));
    let stamp = stamp_of(&file).with_context(|| format!("{}", path.display()))?;
    let (content, bytes) = match cache.stamped(&stamp) {
        Some(content) => (content, None),
        None => {
            let t = std::time::Instant::now();
            let bytes = read_all(&mut file, path)?;
            let content = content_hash(&bytes);
            log(
                "cache",
                format_args!(
                    "cache: read and hashed {} in {:.0?}",
                    path.display(),
                    t.elapsed()
                ),
            );
            if stamp.settled(opened) && stamp_of(&file).is_ok_and(|now| now == stamp) {
                if let Err(e) = cache.record(&stamp, &content) {
                    log("", format_args!("cache: cannot record {content}: {e:#}"));
                }
            }
            (content, Some(bytes))
        }
    };
    let key = cache_key(engine, &content, config);
    match cache.load(engine, &key) {
        Ok(Some((module, entry))) => {
            log("cache", format_args!("cache hit {}", entry.display()));
            if let Err(e) = Cache::touch(&entry) {
                log(
                    "",
                    format_args!("cache: cannot mark {} used: {e}", entry.display()),
                );
            }
            return Ok((module, Outcome::Hit(entry)));
        }
        Ok(None) => log(
            "cache",
            format_args!("cache miss {}", cache.entry_path(&key).display()),
        ),
        Err(e) => log(
            "",
            format_args!("cache: cannot load {key}: {e:#}; compiling instead"),
        ),
    }

    // An entry is stored under the hash of the very bytes compiled, also when the hash
    // above came from a stamp.
    let (bytes, key) = match bytes {
        Some(bytes) => (bytes, key),
        None => {
            let bytes = read_all(&mut file, path)?;
            let key = cache_key(engine, &content_hash(&bytes), config);
            (bytes, key)
        }
    };
    let compiled = engine
        .precompile_module(&bytes)
        .map_err(wasmtime_err)
        .with_context(|| format!("compiling {}", path.display()))?;
    drop(bytes);
    match cache.store(&key, &compiled) {
        Ok(entry) => {
            if let Err(e) = cache.prune(&entry) {
                log(
                    "",
                    format_args!("cache: cannot prune {}: {e:#}", cache.dir.display()),
                );
            }
            // Load from the entry just written so that the module's memory image is
            // mapped from that file rather than kept in anonymous memory.
            match cache.load(engine, &key) {
                Ok(Some((module, entry))) => return Ok((module, Outcome::Stored(entry))),
                Ok(None) => log(
                    "",
                    format_args!("cache: {} vanished after writing", entry.display()),
                ),
                Err(e) => log(
                    "",
                    format_args!("cache: cannot load {}: {e:#}", entry.display()),
                ),
            }
        }
        Err(e) => log("", format_args!("cache: cannot store {key}: {e:#}")),
    }
    // SAFETY: `compiled` was produced just above by `precompile_module` of this same
    // engine and has not left this process.
    let module = unsafe { Module::deserialize(engine, &compiled) }.map_err(wasmtime_err)?;
    Ok((module, Outcome::Failed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::testutil::{rvbox_module, write, Then};
    use crate::run::{config_fingerprint, engine_config};

    fn engine() -> Engine {
        Engine::new(&engine_config(false)).unwrap()
    }

    fn plain() -> String {
        config_fingerprint(false)
    }

    #[test]
    fn key_is_stable_and_depends_on_inputs() {
        let e1 = engine();
        let e2 = engine();
        let c = content_hash(b"module one");
        let key = |e: &Engine, c: &str| cache_key(e, c, &plain());
        let k = key(&e1, &c);
        assert_eq!(k.len(), 64);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(k, key(&e2, &c), "same inputs, same key");
        assert_ne!(k, key(&e1, &content_hash(b"module One")), "content");
        let mut other = engine_config(false);
        other.cranelift_opt_level(wasmtime::OptLevel::None);
        let e3 = Engine::new(&other).unwrap();
        assert_ne!(k, key(&e3, &c), "engine config");
        // Epoch interruption (--timeout) compiles other code: its own entry.
        let e4 = Engine::new(&engine_config(true)).unwrap();
        let k4 = cache_key(&e4, &c, &config_fingerprint(true));
        assert_ne!(k, k4, "epoch interruption");
        assert_ne!(
            k,
            cache_key(&e1, &c, &config_fingerprint(true)),
            "fingerprint"
        );
    }

    #[test]
    fn default_dir_ends_in_rvbox_or_is_env() {
        // Reading only: tests run in parallel, so do not set variables here.
        if let Some(d) = default_dir() {
            match std::env::var_os("RVBOX_CACHE_DIR") {
                Some(v) if !v.is_empty() => assert_eq!(d, PathBuf::from(v)),
                _ => assert!(d.ends_with("rvbox"), "{}", d.display()),
            }
        }
    }

    #[test]
    fn round_trip_miss_then_hit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let m = write(dir.path(), "m.wasm", &rvbox_module("rt", Then::Exit(3)));
        let e = engine();

        let (_, first) = load_or_compile(&e, &m, Some(&cache), &plain()).unwrap();
        let Outcome::Stored(entry) = first else {
            panic!("expected Stored, got {first:?}")
        };
        assert!(entry.is_file());
        assert_eq!(entry.extension().unwrap(), EXT);
        // No temporary file is left behind (and the new file's stamp is not settled).
        let names: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");

        let (module, second) = load_or_compile(&engine(), &m, Some(&cache), &plain()).unwrap();
        assert_eq!(second, Outcome::Hit(entry.clone()));
        assert!(module.get_export("_start").is_some());

        assert_eq!(cache.clear().unwrap().0, 1);
        assert!(!entry.exists());
    }

    /// The probe's finding: a module claiming another's id in its `rvbox` section, with
    /// the same size, was given the other's entry (and, stored first, was given to it).
    #[test]
    fn same_claimed_id_and_size_other_content_is_another_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let a = write(dir.path(), "a.wasm", &rvbox_module("same", Then::Exit(3)));
        let b = write(dir.path(), "b.wasm", &rvbox_module("same", Then::Exit(4)));
        assert_eq!(
            std::fs::metadata(&a).unwrap().len(),
            std::fs::metadata(&b).unwrap().len()
        );
        let e = engine();
        let (_, first) = load_or_compile(&e, &a, Some(&cache), &plain()).unwrap();
        let (_, second) = load_or_compile(&e, &b, Some(&cache), &plain()).unwrap();
        assert!(matches!(second, Outcome::Stored(_)), "{second:?}");
        assert_ne!(first, second);
    }

    #[test]
    fn stamps_are_recorded_when_settled_and_change_with_the_file() {
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let stamp = Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: (90, 0),
            ctime: (100, 5),
        };
        assert!(!stamp.settled(at(100)));
        assert!(!stamp.settled(at(103)), "within SETTLED");
        assert!(stamp.settled(at(104)));
        let other = |f: fn(&mut Stamp)| {
            let mut s = stamp;
            f(&mut s);
            assert_ne!(s.key(), stamp.key(), "{s:?}");
        };
        other(|s| s.dev = 9);
        other(|s| s.ino = 9);
        other(|s| s.size = 9);
        other(|s| s.mtime.1 = 9);
        other(|s| s.ctime.1 = 9);

        // A settled file's hash is recorded, and used for the file while it is unchanged.
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let m = write(dir.path(), "m.wasm", &rvbox_module("st", Then::Exit(3)));
        let stamp_now = || Stamp::of(&std::fs::metadata(&m).unwrap());
        let s1 = stamp_now();
        assert!(!s1.settled(SystemTime::now()), "just written");
        let content = content_hash(&std::fs::read(&m).unwrap());
        cache.record(&s1, &content).unwrap();
        assert_eq!(cache.stamped(&s1), Some(content));
        // Changed in place, same size, mtime put back: the ctime moves, so another stamp.
        // (The pause: a change within the same tick of the kernel's clock is the race that
        // `settled` leaves out.)
        std::thread::sleep(Duration::from_millis(50));
        let mtime = std::fs::metadata(&m).unwrap().modified().unwrap();
        std::fs::write(&m, rvbox_module("st", Then::Exit(4))).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&m)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let s2 = stamp_now();
        assert_eq!((s2.size, s2.mtime), (s1.size, s1.mtime));
        assert_ne!(s2, s1);
        assert_eq!(cache.stamped(&s2), None);
        assert_eq!(cache.clear().unwrap().0, 1, "clear takes stamps too");
    }

    #[test]
    fn damaged_entry_falls_back_to_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let m = write(dir.path(), "m.wasm", &rvbox_module("dmg", Then::Return));
        let e = engine();
        let content = content_hash(&std::fs::read(&m).unwrap());
        let entry = cache.entry_path(&cache_key(&e, &content, &plain()));
        std::fs::write(&entry, b"garbage").unwrap();

        let (_, outcome) = load_or_compile(&e, &m, Some(&cache), &plain()).unwrap();
        assert_eq!(outcome, Outcome::Stored(entry.clone()), "rewritten");
        let (_, outcome) = load_or_compile(&e, &m, Some(&cache), &plain()).unwrap();
        assert_eq!(outcome, Outcome::Hit(entry));
    }

    #[test]
    fn unwritable_cache_still_runs() {
        let dir = tempfile::tempdir().unwrap();
        // The cache "directory" is a regular file: nothing can be created in it.
        let not_dir = write(dir.path(), "file", b"x");
        let cache = Cache::new(&not_dir);
        let m = write(dir.path(), "m.wasm", &rvbox_module("ro", Then::Return));
        let (module, outcome) = load_or_compile(&engine(), &m, Some(&cache), &plain()).unwrap();
        assert_eq!(outcome, Outcome::Failed);
        assert!(module.get_export("_start").is_some());
    }

    #[test]
    fn sizes() {
        let parse_size = crate::parse_bytes;
        assert_eq!(parse_size("4g"), Some(4 << 30));
        assert_eq!(parse_size(" 500MiB "), Some(500 << 20));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("12kb"), Some(12 << 10));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999t"), None);
    }

    /// Sets a file's mtime `secs` seconds in the past.
    fn age(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn the_least_recently_used_entries_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path()).with_max(300);
        let entry = |n: &str, secs| {
            let p = write(dir.path(), &format!("{n}.{EXT}"), &[0u8; 100]);
            age(&p, secs);
            p
        };
        let (old, mid, new, kept) = (
            entry("a", 400),
            entry("b", 300),
            entry("c", 200),
            entry("d", 500),
        );
        let stale = write(dir.path(), ".tmp-dead", b"x");
        age(&stale, 2 * 24 * 3600);
        let fresh = write(dir.path(), ".tmp-live", b"x");
        // 400 bytes in four entries: the oldest but the kept one goes, and the stale temporary.
        assert_eq!(cache.prune(&kept).unwrap(), 2);
        assert!(!old.exists() && !stale.exists());
        assert!(mid.exists() && new.exists() && kept.exists() && fresh.exists());
        // Unbounded: nothing goes.
        let unbounded = Cache::new(dir.path()).with_max(0);
        entry("e", 0);
        assert_eq!(unbounded.prune(&kept).unwrap(), 0);
    }

    #[test]
    fn stamps_beyond_the_bound_go_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        for i in 0..MAX_STAMPS + 2 {
            let p = write(dir.path(), &format!("{i}.{STAMP_EXT}"), b"x\n");
            age(&p, (MAX_STAMPS + 10 - i) as u64);
        }
        assert_eq!(cache.prune(Path::new("/none")).unwrap(), 2);
        assert!(!dir.path().join(format!("0.{STAMP_EXT}")).exists());
        assert!(!dir.path().join(format!("1.{STAMP_EXT}")).exists());
        assert!(dir.path().join(format!("2.{STAMP_EXT}")).exists());
    }

    /// A store prunes: with room for one entry, a second module's entry replaces the
    /// first; and a hit marks an old entry used.
    #[test]
    fn storing_prunes_and_hits_mark_entries_used() {
        let dir = tempfile::tempdir().unwrap();
        let m1 = write(dir.path(), "m1.wasm", &rvbox_module("p1", Then::Return));
        let m2 = write(dir.path(), "m2.wasm", &rvbox_module("p2", Then::Return));
        let cache = Cache::new(dir.path().join("c"));
        let e = engine();
        let (_, first) = load_or_compile(&e, &m1, Some(&cache), &plain()).unwrap();
        let Outcome::Stored(first) = first else {
            panic!("{first:?}")
        };
        let len = std::fs::metadata(&first).unwrap().len();
        let cache = cache.with_max(len + len / 2);
        age(&first, 7200);
        let (_, hit) = load_or_compile(&e, &m1, Some(&cache), &plain()).unwrap();
        assert_eq!(hit, Outcome::Hit(first.clone()));
        let used = std::fs::metadata(&first).unwrap().modified().unwrap();
        assert!(SystemTime::now().duration_since(used).unwrap() < Duration::from_secs(60));
        let (_, second) = load_or_compile(&e, &m2, Some(&cache), &plain()).unwrap();
        let Outcome::Stored(second) = second else {
            panic!("{second:?}")
        };
        assert!(second.exists() && !first.exists());
    }
}
