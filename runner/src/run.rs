//! Running an rvbox module on wasmtime with WASI preview1.
//!
//! The guest sees: its arguments after argv[0], exactly the environment the caller gives
//! (the host environment does not leak in), stdin/stdout/stderr of this process (or no
//! stdin), and no preopened directories. With [`RunOptions::raw_terminal`] the host
//! terminal is in raw mode while the guest runs (see `terminal.rs`).
//!
//! Limits: the guest keeps its own memory limit and time limit (`RVBOX_MEMORY`,
//! `RVBOX_TIMEOUT` in its environment); the host backs them up, so that whatever the guest
//! does, rvbox's memory stays bounded and a run with a time limit ends:
//! - [`RunOptions::memory`] caps the module's linear memory at its initial size + the
//!   guest's limit + room for the emulator's own data ([`memory_cap`]); the module's
//!   4 GiB are a cap too. Growing past it stops the guest with a message, status 137.
//! - [`RunOptions::timeout`] turns on epoch interruption: a guest still running
//!   [`TIMEOUT_GRACE`] after its time limit is stopped; one blocked in a host call (a read
//!   of stdin) cannot be, so a watchdog ends rvbox [`WATCHDOG_GRACE`] later. Both say
//!   `rvbox: timed out after ...` and end with status 124.

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use wasmtime::{
    Config, Engine, Linker, OptLevel, ResourceLimiter, Store, Strategy, Trap, WasmBacktrace,
};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::cache::{self, Cache};

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The rvbox module (`.wasm`).
    pub module: PathBuf,
    /// Arguments for the guest, after argv[0].
    pub args: Vec<String>,
    /// The guest's whole environment.
    pub env: Vec<(String, String)>,
    /// Neither read nor write the compiled-module cache.
    pub no_cache: bool,
    /// Give the guest no input: its stdin reads end of file (`run -t` without `-i`).
    pub no_stdin: bool,
    /// Put this terminal (the host's stdin) into raw mode while the guest runs, for the
    /// guest's own line discipline (`run -it`).
    pub raw_terminal: Option<std::os::fd::RawFd>,
    /// The guest's memory limit in bytes (its `RVBOX_MEMORY`): the module's linear memory
    /// is capped to match ([`memory_cap`]).
    pub memory: Option<u64>,
    /// The guest's time limit (its `RVBOX_TIMEOUT`), backed up by the host.
    pub timeout: Option<Timeout>,
    /// Host directories mounted into the guest (`-v`).
    pub volumes: Vec<Volume>,
}

/// A host directory the guest sees at `guest` (`-v HOST:GUEST[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

impl Volume {
    /// Parses docker's `HOST:GUEST[:OPTIONS]` (options `ro`, `rw`, comma-separated). The
    /// host directory must exist; a relative one is taken from the current directory.
    pub fn parse(spec: &str) -> anyhow::Result<Volume> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, guest, opts) = match parts[..] {
            [h, g] => (h, g, ""),
            [h, g, o] => (h, g, o),
            _ => bail!("-v {spec:?}: expected HOST-DIR:CONTAINER-DIR[:ro]"),
        };
        if host.is_empty() || guest.is_empty() {
            bail!("-v {spec:?}: expected HOST-DIR:CONTAINER-DIR[:ro]");
        }
        if !guest.starts_with('/') {
            bail!("-v {spec:?}: the container path {guest:?} must be absolute");
        }
        if guest.split('/').any(|c| c == "..") {
            bail!("-v {spec:?}: the container path must not contain '..'");
        }
        let mut read_only = false;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" | "readonly" => read_only = true,
                "rw" => read_only = false,
                _ => bail!("-v {spec:?}: unknown option {o:?} (rvbox knows ro and rw)"),
            }
        }
        let path = std::fs::canonicalize(host)
            .with_context(|| format!("-v {spec:?}: host directory {host:?}"))?;
        if !path.is_dir() {
            bail!(
                "-v {spec:?}: {host:?} is not a directory (volumes are directories: WASI \
                 hands a module directories only)"
            );
        }
        let guest = normalize_guest(guest);
        if guest == "/" {
            bail!("-v {spec:?}: a volume cannot be mounted on / (the image is the root)");
        }
        Ok(Volume {
            host: path,
            guest,
            read_only,
        })
    }
}

/// `/a/b` for `/a//b/./`.
fn normalize_guest(p: &str) -> String {
    let mut s = String::new();
    for c in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
        s.push('/');
        s.push_str(c);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// The module environment that tells the guest which volumes are read-only (the host
/// refuses their writes too), if any.
pub fn read_only_env(volumes: &[Volume]) -> Option<(String, String)> {
    let ro: Vec<&str> = volumes
        .iter()
        .filter(|v| v.read_only)
        .map(|v| v.guest.as_str())
        .collect();
    (!ro.is_empty()).then(|| ("RVBOX_READONLY".to_string(), ro.join(",")))
}

/// A time limit for the run.
#[derive(Debug, Clone)]
pub struct Timeout {
    pub limit: Duration,
    /// How messages name it ("2s", "500ms").
    pub text: String,
}

/// Exit status when the time limit ended the run (coreutils' `timeout`).
pub const TIMEOUT_STATUS: i32 = 124;
/// Exit status when the module ran out of memory (killed as by the OOM killer: 128+9).
pub const OOM_STATUS: i32 = 137;
/// How long after its time limit a guest that did not end by itself is interrupted.
pub const TIMEOUT_GRACE: Duration = Duration::from_secs(1);
/// How long after that interruption the watchdog ends rvbox (the guest is blocked in a
/// host call, which cannot be interrupted).
pub const WATCHDOG_GRACE: Duration = Duration::from_secs(2);

/// Exit status when the guest traps or rvbox fails after the guest started (as `docker run`
/// uses 125 for its own failures).
pub const TRAP_STATUS: i32 = 125;

/// Describes every [`Config`] option [`engine_config`] sets; part of the cache key, so
/// change it whenever `engine_config` changes.
pub(crate) fn config_fingerprint(epoch_interruption: bool) -> String {
    format!(
        "rvbox-engine-v1;strategy=cranelift;opt=speed;memory_init_cow=1;\
         memory_reservation=default;guards=default;parallel_compilation=1;epoch={}",
        u8::from(epoch_interruption)
    )
}

/// The wasmtime configuration rvbox runs modules with. `epoch_interruption` (for a time
/// limit) makes the compiled code check the engine's epoch, which costs a little: only
/// runs with a time limit have it, and both kinds are cached apart.
pub fn engine_config(epoch_interruption: bool) -> Config {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        // The filesystem bundle is one large, page-aligned data segment: with CoW it is
        // mapped from the (cached) compiled module instead of copied at instantiation.
        .memory_init_cow(true)
        .parallel_compilation(true)
        .epoch_interruption(epoch_interruption);
    // `RVBOX_PROFILE=perfmap` (or `jitdump`) lets `perf` name the module's functions, as
    // the wasmtime CLI's `--profile` does. Not part of the cache key: it changes nothing
    // in the compiled code.
    match std::env::var("RVBOX_PROFILE").as_deref() {
        Ok("perfmap") => {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        Ok("jitdump") => {
            config.profiler(wasmtime::ProfilingStrategy::JitDump);
        }
        _ => {}
    }
    // wasm32 with the default 4 GiB reservation and guard pages: bounds checks are free.
    config
}

/// The most linear memory a module with `initial` bytes of it may have when its guest's
/// limit is `guest_limit`: the guest's pages, plus room for the emulator's own data (page
/// tables, decoded code, files written at run time): a quarter more and 256 MiB.
pub fn memory_cap(initial: u64, guest_limit: u64) -> u64 {
    initial
        .saturating_add(guest_limit)
        .saturating_add(guest_limit / 4)
        .saturating_add(256 << 20)
}

/// What the store holds: the WASI context and the memory limiter.
struct Host {
    wasi: WasiP1Ctx,
    limits: Limits,
}

/// Caps the module's linear memory; remembers a refused growth for the message.
struct Limits {
    /// The cap in bytes (the module's own maximum applies too).
    cap: Option<u64>,
    /// The cap a growth was refused at.
    refused: Option<u64>,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let cap = match (self.cap, maximum) {
            (Some(c), Some(m)) => Some(c.min(m as u64)),
            (c, m) => c.or(m.map(|m| m as u64)),
        };
        match cap {
            Some(cap) if desired as u64 > cap => {
                self.refused = Some(cap);
                // A trap rather than a failed `memory.grow`: the guest's allocator could
                // only abort, with a less clear message.
                Err(wasmtime::Error::msg("the module's memory is at its limit"))
            }
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}

/// Interrupts the guest once its time is up, and ends rvbox if even that does not stop it.
/// Dropping it stands it down.
struct Watchdog {
    _done: mpsc::Sender<()>,
    fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    fn start(engine: Engine, timeout: Timeout) -> Watchdog {
        use std::sync::atomic::Ordering;
        let (done, wait) = mpsc::channel::<()>();
        let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = fired.clone();
        std::thread::spawn(move || {
            let timed_out = |d| wait.recv_timeout(d) == Err(mpsc::RecvTimeoutError::Timeout);
            if !timed_out(timeout.limit + TIMEOUT_GRACE) {
                return;
            }
            flag.store(true, Ordering::SeqCst);
            engine.increment_epoch();
            if !timed_out(WATCHDOG_GRACE) {
                return;
            }
            // The guest is blocked in a host call: end the process from here.
            crate::terminal::restore();
            eprint_line(format_args!(
                "rvbox: timed out after {} (--timeout)",
                timeout.text
            ));
            // SAFETY: _exit ends the process at once; nothing of ours needs to run (the
            // terminal is restored, the guest's output is not buffered here).
            unsafe { libc::_exit(TIMEOUT_STATUS) };
        });
        Watchdog { _done: done, fired }
    }

    fn fired(&self) -> bool {
        self.fired.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Runs the module and returns the exit status rvbox should exit with: the guest's
/// `proc_exit` code, 0 if `_start` returns, [`TRAP_STATUS`] (after a one-line message on
/// stderr) if the guest traps. Errors before the guest starts (not an rvbox module,
/// unreadable file, failed compilation, ...) are returned as `Err`.
pub fn run(opts: &RunOptions) -> anyhow::Result<i32> {
    let cache = if opts.no_cache {
        None
    } else {
        Cache::from_env()
    };
    run_with_cache(opts, cache.as_ref())
}

/// [`run`] with an explicit cache (`None`: no cache).
pub fn run_with_cache(opts: &RunOptions, cache: Option<&Cache>) -> anyhow::Result<i32> {
    // An rvbox module of this format, or a clear error before anything is compiled.
    rvbox_converter::meta::read_meta_file(&opts.module)?;
    for (k, v) in &opts.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            bail!("invalid environment variable name or value: {k:?}");
        }
    }
    for a in &opts.args {
        if a.contains('\0') {
            bail!("invalid argument (contains NUL): {a:?}");
        }
    }

    let t0 = Instant::now();
    let epoch = opts.timeout.is_some();
    let engine = Engine::new(&engine_config(epoch)).map_err(wasmtime_err)?;
    let fingerprint = config_fingerprint(epoch);
    let (module, outcome) = cache::load_or_compile(&engine, &opts.module, cache, &fingerprint)?;
    let t_load = t0.elapsed();

    let mut linker: Linker<Host> = Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |h: &mut Host| &mut h.wasi).map_err(wasmtime_err)?;

    let mut argv = Vec::with_capacity(opts.args.len() + 1);
    argv.push(argv0(&opts.module));
    argv.extend(opts.args.iter().cloned());
    let mut builder = WasiCtxBuilder::new();
    // Before the preopens: each takes the setting when it is added. The guest is one
    // thread that waits in the host only when it has nothing else to do.
    builder.allow_blocking_current_thread(true);
    if !opts.no_stdin {
        builder.inherit_stdin();
    }
    match stdio::HostOutput::stdout() {
        Some(out) => builder.stdout(out),
        None => builder.inherit_stdout(),
    };
    match stdio::HostOutput::stderr() {
        Some(out) => builder.stderr(out),
        None => builder.inherit_stderr(),
    };
    let mut seen = std::collections::HashSet::new();
    for v in &opts.volumes {
        if !seen.insert(v.guest.as_str()) {
            bail!("two volumes at {} in the container", v.guest);
        }
        let perms = if v.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&v.host, &v.guest, perms)
            .map_err(wasmtime_err)
            .with_context(|| format!("opening volume {}", v.host.display()))?;
    }
    let mut env = opts.env.clone();
    if let Some(kv) = read_only_env(&opts.volumes) {
        env.retain(|(k, _)| k != &kv.0);
        env.push(kv);
    }
    let wasi = builder.args(&argv).envs(&env).build_p1();
    let initial = module
        .exports()
        .find_map(|e| e.ty().memory().map(|m| m.minimum() * 65536))
        .unwrap_or(0);
    let limits = Limits {
        cap: opts.memory.map(|m| memory_cap(initial, m)),
        refused: None,
    };
    let mut store = Store::new(&engine, Host { wasi, limits });
    store.limiter(|h| &mut h.limits);
    if epoch {
        store.set_epoch_deadline(1);
    }

    let t1 = Instant::now();
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(wasmtime_err)
        .context("instantiating the module")?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(wasmtime_err)
        .context("the module has no `_start` function")?;
    let t_inst = t1.elapsed();

    let raw = match opts.raw_terminal {
        Some(fd) => Some(
            crate::terminal::RawMode::enter(fd).context("putting the terminal into raw mode")?,
        ),
        None => None,
    };
    let t2 = Instant::now();
    let watchdog = opts
        .timeout
        .clone()
        .map(|t| Watchdog::start(engine.clone(), t));
    let result = start.call(&mut store, ());
    let t_run = t2.elapsed();
    let timed_out = watchdog.as_ref().is_some_and(Watchdog::fired);
    drop(watchdog);
    drop(raw); // before any message of ours
               // Anything still buffered in our stdout goes out now; a closed pipe is not our error.
    let _ = std::io::stdout().flush();

    log(
        "time",
        format_args!(
            "time: load {:.1} ms ({outcome}), instantiate {:.1} ms, run {:.1} ms",
            t_load.as_secs_f64() * 1e3,
            t_inst.as_secs_f64() * 1e3,
            t_run.as_secs_f64() * 1e3
        ),
    );

    let err = match result {
        Ok(()) => return Ok(0),
        Err(e) => e,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    if timed_out && err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        let text = opts.timeout.as_ref().map_or("", |t| t.text.as_str());
        eprint_line(format_args!("rvbox: timed out after {text} (--timeout)"));
        return Ok(TIMEOUT_STATUS);
    }
    if let Some(cap) = store.data().limits.refused {
        let why = match opts.memory {
            Some(m) => format!(
                "its limit of {} MiB (--memory {} MiB, and room for rvbox's own data)",
                cap >> 20,
                m >> 20
            ),
            None => format!("the {} MiB a wasm32 module can have", cap >> 20),
        };
        eprint_line(format_args!(
            "rvbox: out of memory: the module's memory reached {why}; the guest was stopped"
        ));
        return Ok(OOM_STATUS);
    }
    // wasmtime refuses `proc_exit` statuses of 126 and above (a guest killed by signal N
    // exits with 128+N); the guest records its status where we can ask for it.
    if let Ok(status) = instance.get_typed_func::<(), i32>(&mut store, "rvbox_exit_status") {
        if let Ok(s @ 0..=255) = status.call(&mut store, ()) {
            return Ok(s);
        }
    }
    eprint_line(format_args!("rvbox: {}", trap_message(&err)));
    if log_enabled("trap") {
        eprint_line(format_args!("rvbox: {err:?}"));
    }
    Ok(TRAP_STATUS)
}

mod stdio {
    //! The guest's stdout and stderr.
    //!
    //! wasmtime-wasi's inherited stdio turns a broken pipe into "stream closed", which a
    //! preview1 guest sees as EIO. These streams write straight to (a duplicate of) this
    //! process's fd 1 / fd 2 and keep the OS error, so a guest writing into a closed pipe
    //! (`| head`) gets EPIPE, as it would natively. Writes are not buffered here: every
    //! guest `fd_write` reaches the fd before it returns, so the order of stdout and
    //! stderr is kept.

    use std::fs::File;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
    use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

    #[derive(Clone)]
    pub struct HostOutput {
        file: Arc<File>,
        tty: bool,
    }

    impl HostOutput {
        /// For fd 1, or `None` if it cannot be duplicated (e.g. it is closed).
        pub fn stdout() -> Option<Self> {
            let out = std::io::stdout();
            let tty = std::io::IsTerminal::is_terminal(&out);
            Self::from_fd(out.as_fd(), tty)
        }

        /// For fd 2, or `None` if it cannot be duplicated.
        pub fn stderr() -> Option<Self> {
            let err = std::io::stderr();
            let tty = std::io::IsTerminal::is_terminal(&err);
            Self::from_fd(err.as_fd(), tty)
        }

        fn from_fd(fd: std::os::fd::BorrowedFd<'_>, tty: bool) -> Option<Self> {
            let owned = fd.try_clone_to_owned().ok()?;
            Some(HostOutput {
                file: Arc::new(File::from(owned)),
                tty,
            })
        }

        fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
            (&*self.file).write_all(buf)
        }
    }

    fn stream_error(e: std::io::Error) -> StreamError {
        // p1 downcasts this to `io::Error` and maps its OS error (EPIPE -> errno PIPE).
        StreamError::LastOperationFailed(wasmtime::Error::new(e))
    }

    impl IsTerminal for HostOutput {
        fn is_terminal(&self) -> bool {
            self.tty
        }
    }

    impl StdoutStream for HostOutput {
        fn p2_stream(&self) -> Box<dyn OutputStream> {
            Box::new(self.clone())
        }
        fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
            Box::new(self.clone())
        }
    }

    #[wasmtime_wasi::async_trait]
    impl Pollable for HostOutput {
        async fn ready(&mut self) {}
    }

    impl OutputStream for HostOutput {
        fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
            self.write_all(&bytes).map_err(stream_error)
        }
        fn flush(&mut self) -> StreamResult<()> {
            Ok(()) // nothing is buffered
        }
        fn check_write(&mut self) -> StreamResult<usize> {
            Ok(1 << 20)
        }
    }

    impl tokio::io::AsyncWrite for HostOutput {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(self.write_all(buf).map(|()| buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}

/// argv[0] for the guest: the module's file name.
fn argv0(module: &Path) -> String {
    module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rvbox".into())
}

/// One line describing why the guest stopped.
fn trap_message(err: &wasmtime::Error) -> String {
    let place = err
        .downcast_ref::<WasmBacktrace>()
        .and_then(|bt| bt.frames().first())
        .map(|f| match f.func_name() {
            Some(name) => format!(" in {name}"),
            None => format!(" in function {}", f.func_index()),
        })
        .unwrap_or_default();
    match err.downcast_ref::<Trap>() {
        Some(trap) => format!("guest trapped: {trap}{place}"),
        None => {
            let msg = format!("{err:#}");
            let first = msg.lines().next().unwrap_or("unknown error");
            format!("guest failed: {first}{place}")
        }
    }
}

/// Converts a wasmtime error, keeping its chain of causes.
pub(crate) fn wasmtime_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from_boxed(e.into())
}

/// Writes a line to stderr, ignoring failure (a closed stderr must not make rvbox panic).
pub(crate) fn eprint_line(msg: impl Display) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Whether `RVBOX_LOG` asks for `topic`. `RVBOX_LOG` is a comma-separated list of topics
/// (`cache`, `time`, `trap`) or `all`; the topic `""` means "RVBOX_LOG is set at all" (any
/// value but `0`). The guest's rule, `knobs::log_wants`.
pub(crate) fn log_enabled(topic: &str) -> bool {
    std::env::var("RVBOX_LOG").is_ok_and(|v| rvbox_converter::guest::knobs::log_wants(&v, topic))
}

/// Prints `rvbox: <msg>` to stderr if `RVBOX_LOG` asks for `topic`.
pub(crate) fn log(topic: &str, msg: impl Display) {
    if log_enabled(topic) {
        eprint_line(format_args!("rvbox: {msg}"));
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Small WASI modules that look like rvbox modules, for tests.

    use rvbox_converter::meta::{ImageMeta, ModuleMeta, FORMAT, SECTION};

    /// What the test module does after printing its args, `--`, and its environment.
    #[derive(Clone, Copy, Debug)]
    pub enum Then {
        /// `proc_exit(n)`.
        Exit(i32),
        /// Return from `_start`.
        Return,
        /// `unreachable`.
        Trap,
        /// Write `n` lines of 64 bytes to stdout; `proc_exit(errno)` on the first failed
        /// write, else `proc_exit(0)`.
        Spam(u32),
        /// Loop forever.
        Spin,
        /// Grow the memory by 1 MiB at a time until that fails, then `proc_exit(9)`.
        Grow,
    }

    pub fn meta(module_id: &str) -> ModuleMeta {
        ModuleMeta {
            format: FORMAT,
            rvbox_version: "0.1.0".into(),
            module_id: module_id.into(),
            image: ImageMeta {
                reference: "oci:test".into(),
                manifest_digest: "sha256:00".into(),
                platform: "linux/riscv64".into(),
                ..Default::default()
            },
            bundle_size: 0,
            file_count: 0,
            files_size: 0,
        }
    }

    /// The test module's WAT.
    pub fn wat(then: Then) -> String {
        let body = match then {
            Then::Exit(n) => format!("(call $proc_exit (i32.const {n}))"),
            Then::Return => String::new(),
            Then::Trap => "unreachable".into(),
            Then::Spin => "(loop $l (br $l))".into(),
            Then::Grow => {
                "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
                (call $proc_exit (i32.const 9))"
                    .into()
            }
            Then::Spam(n) => format!(
                r#"(local.set $i (i32.const 0))
                (block $done (loop $l
                  (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
                  (local.set $r (call $write (i32.const 1) (i32.const 200) (i32.const 64)))
                  (if (local.get $r) (then (call $proc_exit (local.get $r))))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $l)))
                (call $proc_exit (i32.const 0))"#
            ),
        };
        format!(
            r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 100) "--\n")
  (data (i32.const 200) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n")
  ;; Turns the NULs of n bytes at p into newlines.
  (func $nl (param $p i32) (param $n i32)
    (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (if (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (then (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  ;; fd_write of one buffer; returns the errno.
  (func $write (param $fd i32) (param $p i32) (param $n i32) (result i32)
    (i32.store (i32.const 16) (local.get $p))
    (i32.store (i32.const 20) (local.get $n))
    (call $fd_write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24)))
  (func (export "_start")
    (local $i i32) (local $r i32)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $args_get (i32.const 1024) (i32.const 8192)))
    (call $nl (i32.const 8192) (i32.load (i32.const 4)))
    (drop (call $write (i32.const 1) (i32.const 8192) (i32.load (i32.const 4))))
    (drop (call $write (i32.const 1) (i32.const 100) (i32.const 3)))
    (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $environ_get (i32.const 1024) (i32.const 8192)))
    (call $nl (i32.const 8192) (i32.load (i32.const 4)))
    (drop (call $write (i32.const 1) (i32.const 8192) (i32.load (i32.const 4))))
    {body}))"#
        )
    }

    /// A custom section `name` holding `data`.
    pub fn custom_section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut payload = Vec::new();
        leb(&mut payload, name.len() as u64);
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(data);
        let mut sec = vec![0u8];
        leb(&mut sec, payload.len() as u64);
        sec.extend_from_slice(&payload);
        sec
    }

    fn leb(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A module: the `rvbox` section (if `meta_json` is given) first, then the module
    /// compiled from `wat`.
    pub fn module_bytes(meta_json: Option<&[u8]>, wat: &str) -> Vec<u8> {
        let body = wat::parse_str(wat).expect("test WAT");
        let mut out = body[..8].to_vec();
        if let Some(json) = meta_json {
            out.extend(custom_section(SECTION, json));
        }
        out.extend_from_slice(&body[8..]);
        out
    }

    /// An rvbox test module with id `module_id` that does `then`.
    pub fn rvbox_module(module_id: &str, then: Then) -> Vec<u8> {
        let json = serde_json::to_vec(&meta(module_id)).unwrap();
        module_bytes(Some(&json), &wat(then))
    }

    /// Writes `bytes` to `dir/name` and returns the path.
    pub fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use std::process::{Command, Stdio};

    /// Env var that puts [`child`] to work: the module to run.
    const CHILD_MODULE: &str = "RVBOX_TEST_CHILD_MODULE";

    /// Runs `module` in a child process (this test binary, test `child`) so that its
    /// stdout/stderr/exit status can be observed; `extra_env` is set for the child.
    fn spawn_child(module: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "run::tests::child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_MODULE, module)
        .env("RVBOX_TEST_CHILD_ARGS", args.join("\u{1f}"))
        .env_remove("RVBOX_LOG")
        .stdin(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Not a test by itself: the child side of [`spawn_child`]. Runs the module with
    /// `run()` (cache from the environment) and exits with its status, like `rvbox run`.
    #[test]
    #[ignore = "helper run by other tests in a child process"]
    fn child() {
        let Some(module) = std::env::var_os(CHILD_MODULE) else {
            return;
        };
        let args = std::env::var("RVBOX_TEST_CHILD_ARGS").unwrap_or_default();
        let opts = RunOptions {
            module: module.into(),
            args: args
                .split('\u{1f}')
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect(),
            env: vec![("GREETING".into(), "hello world".into())],
            no_cache: std::env::var_os("RVBOX_TEST_NO_CACHE").is_some(),
            raw_terminal: std::env::var_os("RVBOX_TEST_CHILD_TTY").map(|_| 0),
            memory: std::env::var("RVBOX_TEST_CHILD_MEMORY")
                .ok()
                .map(|m| m.parse().unwrap()),
            timeout: std::env::var("RVBOX_TEST_CHILD_TIMEOUT")
                .ok()
                .map(|t| Timeout {
                    limit: Duration::from_secs(t.parse().unwrap()),
                    text: format!("{t}s"),
                }),
            ..Default::default()
        };
        let status = match run(&opts) {
            Ok(s) => s,
            Err(e) => {
                eprint_line(format_args!("rvbox: {e:#}"));
                125
            }
        };
        std::process::exit(status);
    }

    /// The guest's stdout without libtest's own lines.
    fn guest_stdout(out: &[u8]) -> String {
        String::from_utf8_lossy(out)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("running "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn exit_code_args_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(
            dir.path(),
            "t.wasm",
            &rvbox_module("id-exit", Then::Exit(3)),
        );
        let out = spawn_child(&m, &["a", "b c"], &[("RVBOX_TEST_NO_CACHE", "1")])
            .env("HOST_ONLY_VAR", "leak")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let stdout = guest_stdout(&out.stdout);
        assert_eq!(stdout, "t.wasm\na\nb c\n--\nGREETING=hello world\n");
        assert!(!stdout.contains("HOST_ONLY_VAR"));
    }

    #[test]
    fn return_from_start_is_zero() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(dir.path(), "r.wasm", &rvbox_module("id-ret", Then::Return));
        let out = spawn_child(&m, &[], &[("RVBOX_TEST_NO_CACHE", "1")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(
            guest_stdout(&out.stdout),
            "r.wasm\n--\nGREETING=hello world\n"
        );
    }

    #[test]
    fn trap_is_125_with_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(
            dir.path(),
            "trap.wasm",
            &rvbox_module("id-trap", Then::Trap),
        );
        let out = spawn_child(&m, &[], &[("RVBOX_TEST_NO_CACHE", "1")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(TRAP_STATUS), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<_> = stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].starts_with("rvbox: guest trapped: ") && lines[0].contains("unreachable"),
            "{stderr}"
        );
    }

    #[test]
    fn not_rvbox_and_not_wasm_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let plain = write(
            dir.path(),
            "plain.wasm",
            &module_bytes(None, &wat(Then::Return)),
        );
        let err = run_with_cache(
            &RunOptions {
                module: plain,
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("not an rvbox module"),
            "{err:#}"
        );

        let text = write(dir.path(), "x.wasm", b"#!/bin/sh\necho hi\n");
        let err = run_with_cache(
            &RunOptions {
                module: text,
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("not a WebAssembly module"),
            "{err:#}"
        );

        let json = br#"{"format":999,"module_id":"x"}"#;
        let old = write(
            dir.path(),
            "old.wasm",
            &module_bytes(Some(json), &wat(Then::Return)),
        );
        let err = run_with_cache(
            &RunOptions {
                module: old,
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("incompatible"), "{err:#}");
    }

    #[test]
    fn cache_miss_then_hit_via_env() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        let m = write(
            dir.path(),
            "c.wasm",
            &rvbox_module("id-cache", Then::Exit(7)),
        );
        let env = [
            ("RVBOX_CACHE_DIR", cache_dir.to_str().unwrap()),
            ("RVBOX_LOG", "cache"),
        ];
        let first = spawn_child(&m, &[], &env).output().unwrap();
        assert_eq!(first.status.code(), Some(7), "{first:?}");
        let err1 = String::from_utf8_lossy(&first.stderr);
        assert!(err1.contains("rvbox: cache miss"), "{err1}");
        let second = spawn_child(&m, &[], &env).output().unwrap();
        assert_eq!(second.status.code(), Some(7), "{second:?}");
        let err2 = String::from_utf8_lossy(&second.stderr);
        assert!(err2.contains("rvbox: cache hit "), "{err2}");
        // --no-cache: neither hit nor miss.
        let third = spawn_child(&m, &[], &env)
            .env("RVBOX_TEST_NO_CACHE", "1")
            .output()
            .unwrap();
        assert_eq!(third.status.code(), Some(7));
        assert!(!String::from_utf8_lossy(&third.stderr).contains("cache"));
    }

    #[test]
    fn large_output_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(
            dir.path(),
            "big.wasm",
            &rvbox_module("id-big", Then::Spam(50_000)),
        );
        let out = spawn_child(&m, &[], &[("RVBOX_TEST_NO_CACHE", "1")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let n = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("0123456789abcdef"))
            .count();
        assert_eq!(n, 50_000);
    }

    #[test]
    fn closed_pipe_gives_guest_epipe() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let m = write(
            dir.path(),
            "pipe.wasm",
            &rvbox_module("id-pipe", Then::Spam(1_000_000)),
        );
        let mut child = spawn_child(&m, &[], &[("RVBOX_TEST_NO_CACHE", "1")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = [0u8; 4096];
        stdout.read_exact(&mut buf).unwrap();
        drop(stdout); // like `| head`
        let out = child.wait_with_output().unwrap();
        // WASI errno 64 = EPIPE.
        assert_eq!(out.status.code(), Some(64), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panick"), "{stderr}");
    }

    /// `run -it`: the terminal (a pty here) is in raw mode while the guest runs and is
    /// restored however the run ends: exit, trap, SIGTERM; SIGTSTP gives it back while
    /// rvbox is stopped.
    #[test]
    fn raw_terminal_is_restored_on_every_exit_path() {
        use crate::terminal::tests::{openpty, termios, termios_bytes};
        use std::os::fd::AsRawFd;
        use std::os::unix::process::ExitStatusExt;
        use std::time::{Duration, Instant};

        let (_master, slave) = openpty();
        let before = termios_bytes(slave.as_raw_fd());
        let raw_now = || termios(slave.as_raw_fd()).c_lflag & libc::ICANON == 0;
        let wait_until = |want_raw: bool| {
            let t0 = Instant::now();
            while raw_now() != want_raw {
                assert!(t0.elapsed() < Duration::from_secs(60), "raw: {want_raw}");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let env = [("RVBOX_TEST_NO_CACHE", "1"), ("RVBOX_TEST_CHILD_TTY", "1")];
        let tty_stdin = || Stdio::from(slave.try_clone().unwrap());

        for (then, status) in [(Then::Exit(3), 3), (Then::Trap, TRAP_STATUS)] {
            let m = write(dir.path(), "m.wasm", &rvbox_module("id-raw", then));
            let out = spawn_child(&m, &[], &env)
                .stdin(tty_stdin())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(status), "{then:?}: {out:?}");
            assert_eq!(termios_bytes(slave.as_raw_fd()), before, "{then:?}");
        }

        let m = write(
            dir.path(),
            "spin.wasm",
            &rvbox_module("id-spin", Then::Spin),
        );
        let mut child = spawn_child(&m, &[], &env)
            .stdin(tty_stdin())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        wait_until(true);
        // SAFETY: kill on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTSTP) }, 0);
        wait_until(false);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        wait_until(true);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let st = child.wait().unwrap();
        assert_eq!(st.signal(), Some(libc::SIGTERM), "{st:?}");
        assert_eq!(termios_bytes(slave.as_raw_fd()), before);
    }

    /// A guest that does not stop at its time limit (this one knows nothing of
    /// `RVBOX_TIMEOUT`) is interrupted by the host soon after.
    #[test]
    fn timeout_interrupts_a_guest_that_does_not_stop() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(
            dir.path(),
            "spin.wasm",
            &rvbox_module("id-spin-t", Then::Spin),
        );
        let t0 = Instant::now();
        let out = spawn_child(
            &m,
            &[],
            &[
                ("RVBOX_TEST_NO_CACHE", "1"),
                ("RVBOX_TEST_CHILD_TIMEOUT", "1"),
            ],
        )
        .output()
        .unwrap();
        let took = t0.elapsed();
        assert_eq!(out.status.code(), Some(TIMEOUT_STATUS), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "rvbox: timed out after 1s (--timeout)\n"
        );
        assert!(took >= Duration::from_secs(1) + TIMEOUT_GRACE, "{took:?}");
        assert!(took < Duration::from_secs(11), "{took:?}");
    }

    /// The module's memory cannot grow past its cap, nor past wasm32's 4 GiB: the guest is
    /// stopped with a message and status 137.
    #[test]
    fn memory_growth_stops_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(
            dir.path(),
            "grow.wasm",
            &rvbox_module("id-grow", Then::Grow),
        );
        let limit = 8 << 20;
        let cap = memory_cap(2 * 65536, limit);
        let limit = limit.to_string();
        let out = spawn_child(
            &m,
            &[],
            &[
                ("RVBOX_TEST_NO_CACHE", "1"),
                ("RVBOX_TEST_CHILD_MEMORY", &limit),
            ],
        )
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(OOM_STATUS), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "rvbox: out of memory: the module's memory reached its limit of {} MiB \
                 (--memory 8 MiB, and room for rvbox's own data); the guest was stopped\n",
                cap >> 20
            )
        );
        let out = spawn_child(&m, &[], &[("RVBOX_TEST_NO_CACHE", "1")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(OOM_STATUS), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "rvbox: out of memory: the module's memory reached the 4096 MiB a wasm32 module \
             can have; the guest was stopped\n"
        );
    }

    #[test]
    fn node_runner() {
        // Node is part of the test setup (.ci/setup installs it): no silent skip.
        let node_ok = Command::new("node")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(node_ok, "node not found: run .ci/setup");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/node/run.mjs");
        let dir = tempfile::tempdir().unwrap();
        let node = |module: &Path, args: &[&str]| {
            Command::new("node")
                .arg(script)
                .arg(module)
                .args(args)
                .env("HOST_ONLY_VAR", "leak")
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };

        let m = write(
            dir.path(),
            "n.wasm",
            &rvbox_module("id-node", Then::Exit(3)),
        );
        let out = node(&m, &["a", "b c"]);
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        // Only what run.mjs asks of the guest (which removes RVBOX_* from the program's
        // environment): the host's own environment does not leak in.
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "n.wasm\na\nb c\n--\nRVBOX_RETURN_STATUS=1\n"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no warnings");

        let m = write(dir.path(), "r.wasm", &rvbox_module("id-node", Then::Return));
        assert_eq!(node(&m, &[]).status.code(), Some(0));

        let m = write(dir.path(), "t.wasm", &rvbox_module("id-node", Then::Trap));
        let out = node(&m, &[]);
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("rvbox: guest trapped: "), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");

        let m = write(
            dir.path(),
            "plain.wasm",
            &module_bytes(None, &wat(Then::Return)),
        );
        let out = node(&m, &[]);
        assert_eq!(out.status.code(), Some(125));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("rvbox: ") && stderr.contains("not an rvbox module"),
            "{stderr}"
        );

        let m = write(
            dir.path(),
            "big.wasm",
            &rvbox_module("id-nb", Then::Spam(20_000)),
        );
        let out = node(&m, &[]);
        assert_eq!(out.status.code(), Some(0));
        let n = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("0123456789abcdef"))
            .count();
        assert_eq!(n, 20_000);

        // `| head`: the guest sees EPIPE (WASI errno 64) and node prints nothing.
        use std::io::Read;
        let m = write(
            dir.path(),
            "pipe.wasm",
            &rvbox_module("id-np", Then::Spam(1_000_000)),
        );
        let mut child = Command::new("node")
            .arg(script)
            .arg(&m)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = [0u8; 4096];
        stdout.read_exact(&mut buf).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
}
