//! Compiled-module cache: the second start of a module does not compile it again.
//!
//! Layout: one file per compiled module, `<dir>/<key>.cwasm`, where `<dir>` is
//! `$RVBOX_CACHE_DIR`, else `$XDG_CACHE_HOME/rvbox` or `~/.cache/rvbox`, and `<key>` is the
//! hex sha256 of everything that decides the compiled code (see [`cache_key`]). An entry is
//! the output of [`Engine::precompile_module`], written to a temporary file in the same
//! directory and renamed into place, so readers never see a partial entry and an entry is
//! never changed once visible. Entries are loaded with [`Module::deserialize_file`], which
//! maps the file: the module's data segments (the filesystem bundle) then come straight
//! from the page cache, copy-on-write.
//!
//! Any error reading or writing the cache falls back to compiling; it is reported only
//! when `RVBOX_LOG` is set. `RVBOX_LOG=cache` reports hits and misses.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rvbox_converter::meta::ModuleMeta;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::run::{log, wasmtime_err};

/// Version of the wasmtime crate we link (pinned in Cargo.toml). Part of the cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Extension of cache entries.
const EXT: &str = "cwasm";

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
}

impl Cache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// The cache in [`default_dir`], if there is one.
    pub fn from_env() -> Option<Self> {
        default_dir().map(Cache::new)
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

    /// Deletes all entries (and leftover temporary files); returns how many files and
    /// bytes were removed. A missing directory is an empty cache.
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
            if name.ends_with(&format!(".{EXT}")) || name.starts_with(".tmp") {
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
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(&format!(".{EXT}"))
            .tempfile_in(&self.dir)
            .with_context(|| format!("creating a file in {}", self.dir.display()))?;
        tmp.write_all(compiled)?;
        tmp.as_file().sync_data()?;
        let path = self.entry_path(key);
        tmp.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming to {}", path.display()))?;
        Ok(path)
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

/// The cache key of a module: hex sha256 over the module's id, its file size, its whole
/// metadata (which carries the image config), the wasmtime version, `config` (the
/// fingerprint of our engine `Config`, `run::config_fingerprint`), the target triple, and
/// wasmtime's own compatibility hash of `engine` (compiler flags, CPU features, tunables).
pub fn cache_key(engine: &Engine, meta: &ModuleMeta, file_size: u64, config: &str) -> String {
    let mut h = Sha256::new();
    field(&mut h, "module_id", meta.module_id.as_bytes());
    field(&mut h, "file_size", &file_size.to_le_bytes());
    let meta_json = serde_json::to_vec(meta).unwrap_or_default();
    field(&mut h, "meta", &meta_json);
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

/// Loads the module at `path` from `cache`, or compiles it (and stores it in `cache`).
/// With `cache == None` it only compiles. Only a failure to compile is an error. `config`
/// describes `engine`'s configuration (see [`cache_key`]).
pub fn load_or_compile(
    engine: &Engine,
    path: &Path,
    meta: &ModuleMeta,
    cache: Option<&Cache>,
    config: &str,
) -> anyhow::Result<(Module, Outcome)> {
    let Some(cache) = cache else {
        let bytes = read_module(path)?;
        let module = Module::from_binary(engine, &bytes)
            .map_err(wasmtime_err)
            .with_context(|| format!("compiling {}", path.display()))?;
        return Ok((module, Outcome::Uncached));
    };

    let size = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    let key = cache_key(engine, meta, size, config);
    match cache.load(engine, &key) {
        Ok(Some((module, entry))) => {
            log("cache", format_args!("cache hit {}", entry.display()));
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

    let bytes = read_module(path)?;
    let compiled = engine
        .precompile_module(&bytes)
        .map_err(wasmtime_err)
        .with_context(|| format!("compiling {}", path.display()))?;
    drop(bytes);
    match cache.store(&key, &compiled) {
        Ok(entry) => {
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

fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::testutil::{meta, rvbox_module, write, Then};
    use crate::run::{config_fingerprint, engine_config};

    fn engine() -> Engine {
        Engine::new(&engine_config(false)).unwrap()
    }

    #[test]
    fn key_is_stable_and_depends_on_inputs() {
        let e1 = engine();
        let e2 = engine();
        let m = meta("abc");
        let plain = config_fingerprint(false);
        let key = |e: &Engine, m: &ModuleMeta, size| cache_key(e, m, size, &plain);
        let k = key(&e1, &m, 1000);
        assert_eq!(k.len(), 64);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(k, key(&e2, &m, 1000), "same inputs, same key");
        assert_ne!(k, key(&e1, &m, 1001), "file size");
        assert_ne!(k, key(&e1, &meta("abd"), 1000), "module id");
        let mut m2 = m.clone();
        m2.image.config.cmd = vec!["sh".into()];
        assert_ne!(k, key(&e1, &m2, 1000), "image config");
        let mut other = engine_config(false);
        other.cranelift_opt_level(wasmtime::OptLevel::None);
        let e3 = Engine::new(&other).unwrap();
        assert_ne!(k, key(&e3, &m, 1000), "engine config");
        // Epoch interruption (--timeout) compiles other code: its own entry.
        let e4 = Engine::new(&engine_config(true)).unwrap();
        let k4 = cache_key(&e4, &m, 1000, &config_fingerprint(true));
        assert_ne!(k, k4, "epoch interruption");
        assert_ne!(
            k,
            cache_key(&e1, &m, 1000, &config_fingerprint(true)),
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
        let meta = rvbox_converter::meta::read_meta_file(&m).unwrap();
        let e = engine();

        let (_, first) =
            load_or_compile(&e, &m, &meta, Some(&cache), &config_fingerprint(false)).unwrap();
        let Outcome::Stored(entry) = first else {
            panic!("expected Stored, got {first:?}")
        };
        assert!(entry.is_file());
        assert_eq!(entry.extension().unwrap(), EXT);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");

        let (module, second) = load_or_compile(
            &engine(),
            &m,
            &meta,
            Some(&cache),
            &config_fingerprint(false),
        )
        .unwrap();
        assert_eq!(second, Outcome::Hit(entry.clone()));
        assert!(module.get_export("_start").is_some());

        assert_eq!(cache.clear().unwrap().0, 1);
        assert!(!entry.exists());
    }

    #[test]
    fn damaged_entry_falls_back_to_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let m = write(dir.path(), "m.wasm", &rvbox_module("dmg", Then::Return));
        let meta = rvbox_converter::meta::read_meta_file(&m).unwrap();
        let e = engine();
        let size = std::fs::metadata(&m).unwrap().len();
        let entry = cache.entry_path(&cache_key(&e, &meta, size, &config_fingerprint(false)));
        std::fs::write(&entry, b"garbage").unwrap();

        let (_, outcome) =
            load_or_compile(&e, &m, &meta, Some(&cache), &config_fingerprint(false)).unwrap();
        assert_eq!(outcome, Outcome::Stored(entry.clone()), "rewritten");
        let (_, outcome) =
            load_or_compile(&e, &m, &meta, Some(&cache), &config_fingerprint(false)).unwrap();
        assert_eq!(outcome, Outcome::Hit(entry));
    }

    #[test]
    fn unwritable_cache_still_runs() {
        let dir = tempfile::tempdir().unwrap();
        // The cache "directory" is a regular file: nothing can be created in it.
        let not_dir = write(dir.path(), "file", b"x");
        let cache = Cache::new(&not_dir);
        let m = write(dir.path(), "m.wasm", &rvbox_module("ro", Then::Return));
        let meta = rvbox_converter::meta::read_meta_file(&m).unwrap();
        let (module, outcome) = load_or_compile(
            &engine(),
            &m,
            &meta,
            Some(&cache),
            &config_fingerprint(false),
        )
        .unwrap();
        assert_eq!(outcome, Outcome::Failed);
        assert!(module.get_export("_start").is_some());
    }
}
