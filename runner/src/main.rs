//! `rvbox`: turn container images into WebAssembly modules and run them.
//!
//! A thin CLI: one function per subcommand; the converter and runner libraries do the work.
//! Errors are printed as `rvbox: <message>`. Exit statuses (README, "Exit status") follow
//! docker's: 125 when rvbox itself fails, in every subcommand, and when `rvbox run` is
//! misused (its other statuses are the container's: the guest's status, 128+N for a
//! signal, 124 when `--timeout` ended the run, 126/127 when the command cannot be run or
//! found); 2 when another subcommand is misused (clap's usage errors). A closed stdout
//! (`rvbox syscalls | head -1`) is not an error: the command stops writing and exits 0.

/// `eprintln!`/`eprint!` that do not panic when stderr is gone (a reader that closed its
/// pipe): what rvbox says is lost, its exit status is not. `say!` is `run::eprint_line`.
macro_rules! say {
    ($($arg:tt)*) => {
        crate::run::eprint_line(format_args!($($arg)*))
    };
}
macro_rules! say_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod cache;
mod pull;
mod run;
mod terminal;
mod web;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rvbox_converter::meta::{read_meta_file, ModuleMeta};

#[derive(Parser)]
#[command(
    name = "rvbox",
    version,
    about = "Turn linux/riscv64 container images into one WebAssembly module, and run it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert an image into a module. IMAGE: an OCI image layout directory (DIR,
    /// oci:DIR[:TAG]), an OCI archive (oci-archive:FILE[:TAG], as skopeo writes it), a
    /// `docker save` archive (docker-archive:FILE[:NAME:TAG|:@N]), or a root filesystem
    /// directory (dir:DIR, config from the flags). A bare FILE is an archive of either kind.
    /// Anything else is a registry image (`alpine`, `registry.example.com/app:1.2`,
    /// `REPO@sha256:...`, `docker://REF`), pulled through the local image cache.
    Convert {
        image: String,
        /// The module to write.
        #[arg(short, long)]
        output: PathBuf,
        /// No progress output.
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        config: ConfigFlags,
        /// The most uncompressed image data to read (bytes, or 500m, 2g); a larger image,
        /// or a decompression bomb, stops there with an error.
        #[arg(long, value_name = "SIZE", default_value = "4g")]
        max_image_size: String,
        /// Translate RISC-V code to Wasm ahead of time: `entry` (the entrypoint's program,
        /// its ELF interpreter and the libraries they need), `all` (every RISC-V ELF file
        /// in the image), or `none`. What is not translated is interpreted. Translated
        /// code runs CPU-bound programs 3-15x faster, but the module's first run compiles
        /// it (about 1 s per MiB of Wasm under wasmtime on 2 cores; later runs use the
        /// compile cache), so the default is `none`: pick what your workload runs hot.
        #[arg(long, value_name = "none|entry|all", default_value = "none")]
        aot: rvbox_converter::aot::Mode,
        /// Translate these files too (a glob over absolute paths: `*` within a path
        /// component, `**` across them; may be given more than once).
        #[arg(long, value_name = "GLOB")]
        aot_include: Vec<String>,
        /// Say which files were translated, and which were skipped and why.
        #[arg(short, long)]
        verbose: bool,
        #[command(flatten)]
        registry: pull::RegistryArgs,
    },
    /// Run a module: `rvbox run [OPTIONS] app.wasm [--] CMD ARGS...` (without CMD, the
    /// image's Cmd).
    Run {
        module: PathBuf,
        #[command(flatten)]
        container: ContainerFlags,
        /// Mount a host directory in the container: HOST-DIR:CONTAINER-DIR[:ro]. Reads and
        /// writes go straight through to the host; `:ro` refuses writes (EROFS).
        #[arg(short, long = "volume", value_name = "HOST:CONTAINER[:ro]")]
        volume: Vec<String>,
        /// End the run after DURATION (seconds, or 500ms, 10s, 2m, 1h) with status 124.
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
        /// Compile the module afresh instead of using the compiled-module cache.
        #[arg(long)]
        no_cache: bool,
        /// Keep stdin attached, as `docker run -i` (rvbox attaches it anyway, except with
        /// -t alone).
        #[arg(short, long)]
        interactive: bool,
        /// Give the container a terminal, as `docker run -t`. With -i (`-it`) stdin must
        /// be a terminal: it is put into raw mode while the container runs, whose own
        /// line discipline echoes, edits lines and turns ^C into SIGINT. Without -i the
        /// container gets no input.
        #[arg(short, long)]
        tty: bool,
        /// The command and its arguments (replacing the image's Cmd); `--` before them is
        /// optional, as with `docker run IMAGE CMD`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Show what is inside a module.
    Inspect {
        module: PathBuf,
        /// Machine-readable output (with --files: one JSON object per line, with each
        /// file's sha256).
        #[arg(long)]
        json: bool,
        /// List the files the module carries (as the guest sees them at start).
        #[arg(long)]
        files: bool,
    },
    /// List the Linux system calls the emulator implements.
    Syscalls,
    /// Write a static web site that runs a module in a browser tab, with a terminal:
    /// `rvbox web app.wasm -o site/ [--] [CMD ARGS...]`; serve it with `rvbox serve`.
    Web {
        module: PathBuf,
        /// The site's directory (created if missing).
        #[arg(short, long)]
        output: PathBuf,
        /// The page's title (default: the image's name).
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        container: ContainerFlags,
        /// The command the page runs and its arguments (default: the image's Cmd).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Serve a site written by `rvbox web` over HTTP, with the cross-origin isolation
    /// headers it needs (COOP/COEP).
    Serve {
        site: PathBuf,
        /// The port (0: any free one; the address is printed).
        #[arg(short, long, default_value_t = 8080)]
        port: u16,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.exit_code() == 0 => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            run::eprint_line(format_args!(
                "rvbox: {}",
                text.trim_end().strip_prefix("error: ").unwrap_or(&text)
            ));
            // `rvbox run`'s other statuses are the container's: its misuse is 125, as
            // `docker run`'s.
            let run = std::env::args().nth(1).is_some_and(|a| a == "run");
            return ExitCode::from(if run { FAILED } else { USAGE });
        }
    };
    let r = match cli.command {
        Command::Convert {
            image,
            output,
            quiet,
            config,
            max_image_size,
            aot,
            aot_include,
            verbose,
            registry,
        } => pull::options(registry, quiet).and_then(|pull| {
            let aot = rvbox_converter::aot::Options {
                mode: aot,
                include: aot_include,
            };
            convert(
                &image,
                &output,
                quiet,
                verbose,
                &config,
                &max_image_size,
                pull,
                aot,
            )
        }),
        Command::Run {
            module,
            container,
            volume,
            timeout,
            no_cache,
            interactive,
            tty,
            args,
        } => {
            let container = Container {
                flags: container,
                timeout,
            };
            run_cmd(module, container, volume, no_cache, interactive, tty, args)
        }
        Command::Inspect {
            module,
            json,
            files,
        } => {
            if files {
                inspect_files(&module, json)
            } else {
                inspect(&module, json)
            }
        }
        Command::Syscalls => syscalls(),
        Command::Web {
            module,
            output,
            title,
            container,
            args,
        } => {
            let container = Container {
                flags: container,
                timeout: None,
            };
            web_cmd(&module, &output, title, container, args)
        }
        Command::Serve { site, port, bind } => serve_cmd(&site, &bind, port),
    };
    match r {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            say!("rvbox: {e:#}");
            ExitCode::from(FAILED)
        }
    }
}

/// The status of rvbox's own failures, in every subcommand (as docker's 125).
const FAILED: u8 = 125;
/// The status of a subcommand other than `run` misused (clap's usage errors).
const USAGE: u8 = 2;

/// Writes a command's report to stdout through `write`. A closed stdout (`rvbox syscalls
/// | head -1`) is not an error: the rest is not written and the command goes on (and
/// exits 0), as ripgrep does.
fn to_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// The metadata of a whole rvbox module: one of this format, not cut short.
fn read_module_meta(module: &std::path::Path) -> anyhow::Result<ModuleMeta> {
    let meta = read_meta_file(module)?;
    rvbox_converter::meta::check_whole_file(module)?;
    Ok(meta)
}

/// A layer's digest shortened as docker shows it (`sha256:0123456789ab...` ->
/// `0123456789ab`), or the end of its name in an archive.
fn short_label(label: &str) -> &str {
    match label.split_once(':') {
        Some(("sha256" | "sha512", hex)) => hex.get(..12).unwrap_or(hex),
        _ => {
            let n = label.len();
            let mut start = n.saturating_sub(24);
            while !label.is_char_boundary(start) {
                start += 1;
            }
            &label[start..]
        }
    }
}

/// `rvbox convert`'s changes to the image's config, applied as a Dockerfile would.
#[derive(clap::Args)]
struct ConfigFlags {
    /// Replace the image's Entrypoint (and drop its Cmd, as a Dockerfile's ENTRYPOINT
    /// does): a JSON array (`'["/app","--serve"]'`), or a string run by /bin/sh -c; ""
    /// for none.
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// Replace the image's Cmd: a JSON array, or a string run by /bin/sh -c.
    #[arg(long, value_name = "CMD")]
    cmd: Option<String>,
    /// Set a variable of the image's Env (replacing one of the same name). Repeatable.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Replace the image's WorkingDir.
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,
    /// Replace the image's User (USER[:GROUP], names resolved in the image at run time).
    #[arg(short, long, value_name = "USER")]
    user: Option<String>,
}

/// A Dockerfile-style command: a JSON array (exec form) or a string for `/bin/sh -c`.
fn command_form(flag: &str, v: &str) -> anyhow::Result<Vec<String>> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    if t.starts_with('[') {
        return serde_json::from_str(t).map_err(|e| {
            anyhow::anyhow!("{flag} {v:?}: not a JSON array of strings ({e}); write it as '[\"prog\",\"arg\"]' or as a plain string run by /bin/sh -c")
        });
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), v.into()])
}

impl ConfigFlags {
    fn overrides(&self) -> anyhow::Result<rvbox_converter::Overrides> {
        for e in &self.env {
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() && !k.contains(char::is_whitespace) => {}
                _ => anyhow::bail!("--env {e:?}: give KEY=VALUE"),
            }
        }
        if let Some(w) = &self.workdir {
            if !w.starts_with('/') {
                anyhow::bail!("--workdir {w:?}: give an absolute path");
            }
        }
        Ok(rvbox_converter::Overrides {
            entrypoint: self
                .entrypoint
                .as_deref()
                .map(|v| command_form("--entrypoint", v))
                .transpose()?,
            cmd: self
                .cmd
                .as_deref()
                .map(|v| command_form("--cmd", v))
                .transpose()?,
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
        })
    }
}

/// A size: bytes, or a number with k, m, g, t (binary units).
fn parse_size(flag: &str, s: &str) -> anyhow::Result<u64> {
    parse_bytes(s)
        .filter(|&n| n > 0)
        .ok_or_else(|| anyhow::anyhow!("{flag} {s:?}: give a size in bytes, or like 500m, 4g"))
}

/// Bytes, or a number with k, m, g, t (binary units, an optional `b` or `ib`); `None` if
/// it is not one. (`--max-image-size`, `RVBOX_CACHE_MAX`.)
pub(crate) fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, shift) = match t.char_indices().last()? {
        (i, 'k') => (&t[..i], 10),
        (i, 'm') => (&t[..i], 20),
        (i, 'g') => (&t[..i], 30),
        (i, 't') => (&t[..i], 40),
        _ => (t, 0),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[allow(clippy::too_many_arguments)]
fn convert(
    image: &str,
    output: &std::path::Path,
    quiet: bool,
    verbose: bool,
    config: &ConfigFlags,
    max_image_size: &str,
    pull: rvbox_converter::registry::Options,
    aot: rvbox_converter::aot::Options,
) -> anyhow::Result<i32> {
    use rvbox_converter::Progress;
    let opts = rvbox_converter::Options {
        max_image_size: parse_size("--max-image-size", max_image_size)?,
        overrides: config.overrides()?,
        pull,
        aot,
    };
    let show = !quiet && std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut progress = |p: Progress| {
        if !show {
            return;
        }
        match p {
            Progress::Layer(l) => say_part!(
                "\r\x1b[Klayer {}/{} {} {:>6} KiB / {} KiB, {} entries{}",
                l.index + 1,
                l.count,
                short_label(&l.digest),
                l.bytes_read / 1024,
                l.size / 1024,
                l.entries,
                if l.done { " ok\n" } else { "" }
            ),
            Progress::Bundle { files, total } => {
                say_part!("\r\x1b[Kbundling files {files}/{total}")
            }
        }
    };
    let report = rvbox_converter::convert_with(image, output, &opts, &mut progress)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if show {
        say!("");
    }
    if !quiet {
        let m = &report.meta;
        say!(
            "{} -> {} ({} files, {:.1} MiB of files, module {:.1} MiB, {:.2}s)",
            m.image.reference,
            output.display(),
            m.file_count,
            m.files_size as f64 / 1048576.0,
            report.module_size as f64 / 1048576.0,
            started.elapsed().as_secs_f64()
        );
        let a = &report.aot;
        if !a.files.is_empty() {
            say!(
                "translated {} files: {} instructions ({:.1} MiB of code) to {} functions ({:.1} MiB of Wasm) in {:.2}s",
                a.files.len(),
                a.insns,
                a.code_bytes as f64 / 1048576.0,
                a.functions,
                a.wasm_bytes as f64 / 1048576.0,
                a.seconds
            );
        }
    }
    if verbose {
        for f in &report.aot.files {
            say!("translated {f}");
        }
        for (f, why) in &report.aot.skipped {
            say!("not translated {f}: {why}");
        }
    }
    Ok(0)
}

/// The container options of `rvbox run` and `rvbox web`.
#[derive(clap::Args)]
struct ContainerFlags {
    /// Set an environment variable in the container (KEY=VALUE, or KEY to pass the
    /// host's value). Wins over --env-file.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Read environment variables from a file: KEY=VALUE lines (the value as is, no
    /// quotes processed), KEY alone for the host's value; `#` comments and blank lines
    /// are skipped. May be given more than once.
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// The working directory in the container (an absolute path; created if missing),
    /// instead of the image's WorkingDir.
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,
    /// The program to run instead of the image's Entrypoint; the image's Cmd is then
    /// not used. `--entrypoint ""`: no entrypoint, the command alone.
    #[arg(long, value_name = "PROG")]
    entrypoint: Option<String>,
    /// The user (and group) to run as, names or numbers, instead of the image's User.
    #[arg(short, long, value_name = "USER[:GROUP]")]
    user: Option<String>,
    /// The container's memory limit: bytes, or a number with a unit b, k, m, g (512m,
    /// 2g); at least 6m. A process that needs more is killed (status 137). Without
    /// it, the guest may use what the module's 4 GiB memory leaves.
    #[arg(long, value_name = "LIMIT")]
    memory: Option<String>,
}

/// What `rvbox run` and `rvbox web` say about the container: its environment and the
/// `RVBOX_*` knobs.
struct Container {
    flags: ContainerFlags,
    timeout: Option<String>,
}

impl Container {
    /// The guest's environment: --env-file's variables, then -e's (a later one wins), then
    /// the knobs the options set (`emulator-guest/src/knobs.rs`).
    fn env(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut pairs = Vec::new();
        for file in &self.flags.env_file {
            pairs.extend(env_file::read(file)?);
        }
        for e in &self.flags.env {
            match e.split_once('=') {
                Some((k, v)) if !k.is_empty() => pairs.push((k.to_string(), v.to_string())),
                None if !e.is_empty() => {
                    // KEY alone: the host's value, if it has one (as docker run -e KEY).
                    if let Ok(v) = std::env::var(e) {
                        pairs.push((e.clone(), v));
                    }
                }
                _ => anyhow::bail!("-e {e:?}: give KEY=VALUE or KEY"),
            }
        }
        for (k, v) in [
            ("RVBOX_WORKDIR", &self.flags.workdir),
            ("RVBOX_ENTRYPOINT", &self.flags.entrypoint),
            ("RVBOX_USER", &self.flags.user),
            ("RVBOX_MEMORY", &self.flags.memory),
            ("RVBOX_TIMEOUT", &self.timeout),
        ] {
            if let Some(v) = v {
                pairs.push((k.into(), v.clone()));
            }
        }
        Ok(pairs)
    }
}

/// The limits the guest is given in `env` (by the options or by -e), parsed as the guest
/// parses them: the host backs them up (`run::RunOptions::memory`, `timeout`).
fn limits(env: &[(String, String)]) -> anyhow::Result<(Option<u64>, Option<run::Timeout>)> {
    use rvbox_converter::guest::knobs;
    let last = |k: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let memory = match last("RVBOX_MEMORY") {
        Some(m) => Some(knobs::parse_memory(m).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let timeout = match last("RVBOX_TIMEOUT") {
        Some(t) => match knobs::parse_timeout(t).map_err(anyhow::Error::msg)? {
            0 => None,
            ns => Some(run::Timeout {
                limit: std::time::Duration::from_nanos(ns),
                text: knobs::timeout_text(t),
            }),
        },
        None => None,
    };
    Ok((memory, timeout))
}

fn run_cmd(
    module: PathBuf,
    container: Container,
    volume: Vec<String>,
    no_cache: bool,
    interactive: bool,
    tty: bool,
    args: Vec<String>,
) -> anyhow::Result<i32> {
    if tty && interactive && !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the input device is not a TTY: -it needs a terminal on stdin (without -t, \
             input can come from a pipe or a file)"
        );
    }
    let volumes = volume
        .iter()
        .map(|v| run::Volume::parse(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut pairs = container.env()?;
    let (memory, timeout) = limits(&pairs)?;
    let set_default = |pairs: &mut Vec<(String, String)>, k: &str, v: String| {
        if !pairs.iter().any(|(n, _)| n == k) {
            pairs.push((k.into(), v));
        }
    };
    if tty {
        // The guest owns a terminal: a module environment variable says so, which any
        // WASI host can set (`stty raw -echo; wasmtime run --env RVBOX_TTY=1 --env
        // COLUMNS=80 --env LINES=24 app.wasm; stty sane`). Its size comes as COLUMNS and
        // LINES, TERM is xterm as under `docker run -t`; -e overrides them.
        pairs.push(("RVBOX_TTY".into(), "1".into()));
        set_default(&mut pairs, "TERM", "xterm".into());
    }
    // The terminal size reaches the guest through COLUMNS/LINES: with -t the size of the
    // host terminal, else COLUMNS/LINES of our environment if stdout is a terminal.
    let size = if tty {
        terminal::size(if interactive { 0 } else { 1 }).or_else(terminal_size)
    } else if std::io::stdout().is_terminal() {
        terminal_size()
    } else {
        None
    };
    if let Some((cols, rows)) = size {
        set_default(&mut pairs, "COLUMNS", cols.to_string());
        set_default(&mut pairs, "LINES", rows.to_string());
    }
    for k in ["RVBOX_LOG", "RVBOX_STATS"] {
        if let Ok(v) = std::env::var(k) {
            pairs.push((k.into(), v));
        }
    }
    run::run(&run::RunOptions {
        module,
        args,
        env: pairs,
        no_cache,
        no_stdin: tty && !interactive,
        raw_terminal: (tty && interactive).then_some(0),
        volumes,
        memory,
        timeout,
    })
}

mod env_file {
    //! `--env-file`: docker's format (`opts/envfile.go`). Each line is `KEY=VALUE` (the
    //! value exactly as written: no quotes or escapes processed, spaces kept) or `KEY`
    //! alone (the host's value, or nothing if the host has none); leading spaces are
    //! skipped, as are blank lines and lines starting with `#`.

    use std::path::Path;

    use anyhow::{bail, Context};

    pub fn read(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
        let bytes =
            std::fs::read(path).with_context(|| format!("--env-file {}", path.display()))?;
        parse(&bytes, |k| std::env::var(k).ok())
            .with_context(|| format!("--env-file {}", path.display()))
    }

    pub fn parse(
        bytes: &[u8],
        host: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let mut pairs = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Ok(line) = std::str::from_utf8(line) else {
                bail!("line {}: not valid UTF-8", i + 1);
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (line, None),
            };
            if key.is_empty() {
                bail!("line {}: no variable name: {line:?}", i + 1);
            }
            if key.contains(char::is_whitespace) {
                bail!("line {}: the variable name {key:?} contains spaces", i + 1);
            }
            match value {
                Some(v) => pairs.push((key.to_string(), v.to_string())),
                None => {
                    if let Some(v) = host(key) {
                        pairs.push((key.to_string(), v));
                    }
                }
            }
        }
        Ok(pairs)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn docker_format() {
            let text = b"\xef\xbb\xbf# a comment\nA=1\n\n  B= two words \r\nC=\"quoted\"\nHOSTVAR\nMISSING\nD=x=y\n   # indented\nE=\n";
            let host = |k: &str| (k == "HOSTVAR").then(|| "from host".to_string());
            let want: Vec<(String, String)> = [
                ("A", "1"),
                ("B", " two words "),
                ("C", "\"quoted\""),
                ("HOSTVAR", "from host"),
                ("D", "x=y"),
                ("E", ""),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            assert_eq!(parse(text, host).unwrap(), want);
            let err = |t: &[u8]| format!("{:#}", parse(t, host).unwrap_err());
            assert_eq!(
                err(b"A=1\nB C=x\n"),
                "line 2: the variable name \"B C\" contains spaces"
            );
            assert_eq!(err(b"=x\n"), "line 1: no variable name: \"=x\"");
            assert_eq!(err(b"A=\xff\n"), "line 1: not valid UTF-8");
        }
    }
}

/// The terminal size that COLUMNS/LINES of our environment give, if both are set.
fn terminal_size() -> Option<(u16, u16)> {
    let cols = std::env::var("COLUMNS").ok()?.parse().ok()?;
    let rows = std::env::var("LINES").ok()?.parse().ok()?;
    Some((cols, rows))
}

fn web_cmd(
    module: &std::path::Path,
    output: &std::path::Path,
    title: Option<String>,
    container: Container,
    args: Vec<String>,
) -> anyhow::Result<i32> {
    let meta = read_module_meta(module)?;
    let env = container.env()?;
    limits(&env)?; // a bad --memory is refused now, not in the browser
    let config = web::SiteConfig {
        // The image's name without its directory or registry (busybox, python:3.12).
        title: title.unwrap_or_else(|| {
            let r = meta.image.reference.trim_end_matches('/');
            r.rsplit('/').next().unwrap_or(r).to_string()
        }),
        args,
        env,
    };
    let size = web::write_site(module, output, &config)?;
    say!(
        "{} -> {} ({:.1} MiB); serve it with: rvbox serve {}",
        module.display(),
        output.display(),
        size as f64 / 1048576.0,
        output.display()
    );
    Ok(0)
}

fn serve_cmd(site: &std::path::Path, bind: &str, port: u16) -> anyhow::Result<i32> {
    use anyhow::Context;
    if !site.join("index.html").is_file() {
        anyhow::bail!(
            "{}: no index.html (write a site with `rvbox web`)",
            site.display()
        );
    }
    let listener = std::net::TcpListener::bind((bind, port))
        .with_context(|| format!("listening on {bind}:{port}"))?;
    let addr = listener.local_addr()?;
    to_stdout(|out| {
        writeln!(
            out,
            "serving {} at http://{addr}/ (^C to stop)",
            site.display()
        )
    })?;
    web::serve(site, listener)?;
    Ok(0)
}

fn inspect(module: &std::path::Path, json: bool) -> anyhow::Result<i32> {
    let meta = read_module_meta(module)?;
    let size = std::fs::metadata(module)?.len();
    if json {
        let mut v = serde_json::to_value(&meta)?;
        v["module_size"] = size.into();
        let text = serde_json::to_string_pretty(&v)?;
        to_stdout(|out| writeln!(out, "{text}"))?;
        return Ok(0);
    }
    let c = &meta.image.config;
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            serde_json::to_string(v).unwrap()
        }
    };
    to_stdout(|out| {
        writeln!(
            out,
            "module:      {} ({:.1} MiB)",
            module.display(),
            size as f64 / 1048576.0
        )?;
        writeln!(
            out,
            "made by:     rvbox {} (module format {})",
            meta.rvbox_version, meta.format
        )?;
        writeln!(out, "module id:   {}", meta.module_id)?;
        let or_dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        writeln!(out, "image:       {}", meta.image.reference)?;
        writeln!(out, "digest:      {}", or_dash(&meta.image.manifest_digest))?;
        writeln!(out, "image id:    {}", or_dash(&meta.image.config_digest))?;
        writeln!(out, "platform:    {}", meta.image.platform)?;
        writeln!(out, "entrypoint:  {}", list(&c.entrypoint))?;
        writeln!(out, "cmd:         {}", list(&c.cmd))?;
        writeln!(out, "env:         {}", list(&c.env))?;
        writeln!(
            out,
            "workdir:     {}",
            if c.working_dir.is_empty() {
                "/"
            } else {
                &c.working_dir
            }
        )?;
        writeln!(
            out,
            "user:        {}",
            if c.user.is_empty() {
                "root (default)"
            } else {
                &c.user
            }
        )?;
        if !meta.image.labels.is_empty() {
            writeln!(out, "labels:")?;
            for (k, v) in &meta.image.labels {
                writeln!(out, "  {k}={v}")?;
            }
        }
        if !meta.image.exposed_ports.is_empty() {
            writeln!(
                out,
                "ports:       {} (exposed by the image; nothing listens in a module)",
                meta.image.exposed_ports.join(" ")
            )?;
        }
        writeln!(
            out,
            "files:       {} entries, {:.1} MiB in regular files",
            meta.file_count,
            meta.files_size as f64 / 1048576.0
        )?;
        writeln!(
            out,
            "bundle:      {:.1} MiB (page-aligned)",
            meta.bundle_size as f64 / 1048576.0
        )?;
        Ok(())
    })?;
    Ok(0)
}

fn inspect_files(module: &std::path::Path, json: bool) -> anyhow::Result<i32> {
    read_module_meta(module)?;
    let bytes = std::fs::read(module)?;
    let entries = rvbox_converter::listing::list(&bytes, json)
        .map_err(|e| anyhow::anyhow!("{}: {e}", module.display()))?;
    to_stdout(|out| {
        for e in &entries {
            if json {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            } else {
                writeln!(out, "{}", rvbox_converter::listing::line(e))?;
            }
        }
        Ok(())
    })?;
    Ok(0)
}

fn syscalls() -> anyhow::Result<i32> {
    use rvbox_converter::guest::linux::syscalls::{Support, TABLE};
    let mut rows: Vec<_> = TABLE.iter().collect();
    rows.sort_by_key(|s| s.nr);
    let (mut full, mut partial, mut none) = (0, 0, 0);
    let mut table = String::new();
    for s in rows {
        let (level, note) = match (s.handler.is_some(), s.support) {
            (true, Support::Full) => {
                full += 1;
                ("full", "")
            }
            (true, Support::Partial(n)) => {
                partial += 1;
                ("partial", n)
            }
            _ => {
                none += 1;
                ("ENOSYS", "")
            }
        };
        table += &format!("{:>4}  {:<18} {:<8} {}\n", s.nr, s.name, level, note);
    }
    to_stdout(|out| {
        out.write_all(table.as_bytes())?;
        writeln!(
            out,
            "{full} full, {partial} partial, {none} not implemented (ENOSYS); any other number: ENOSYS"
        )
    })?;
    Ok(0)
}
