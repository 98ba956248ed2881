//! `rvbox`: turn container images into WebAssembly modules and run them.
//!
//! A thin CLI: one function per subcommand; the converter and runner libraries do the work.
//! Errors are printed as `rvbox: <message>`; exit statuses follow `docker run` (the guest's
//! status, 128+N for a signal, 125 when rvbox itself fails).

mod cache;
mod run;
mod terminal;

use std::io::IsTerminal;
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
    /// Convert an image into a module: IMAGE is an OCI image layout directory
    /// (DIR, oci:DIR or oci:DIR:TAG).
    Convert {
        image: String,
        /// The module to write.
        #[arg(short, long)]
        output: PathBuf,
        /// No progress output.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a module: `rvbox run app.wasm [--] CMD ARGS...` (without CMD, the image's Cmd).
    Run {
        module: PathBuf,
        /// Set an environment variable in the container (KEY=VALUE, or KEY to pass the
        /// host's value).
        #[arg(short, long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Mount a host directory in the container: HOST-DIR:CONTAINER-DIR[:ro]. Reads and
        /// writes go straight through to the host; `:ro` refuses writes (EROFS).
        #[arg(short, long = "volume", value_name = "HOST:CONTAINER[:ro]")]
        volume: Vec<String>,
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
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List the Linux system calls the emulator implements.
    Syscalls,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // rvbox's own failures: 125 for `run` (as `docker run`), 1 for the other commands.
    let fail_status = if matches!(cli.command, Command::Run { .. }) {
        125
    } else {
        1
    };
    let r = match cli.command {
        Command::Convert {
            image,
            output,
            quiet,
        } => convert(&image, &output, quiet),
        Command::Run {
            module,
            env,
            volume,
            no_cache,
            interactive,
            tty,
            args,
        } => run_cmd(module, env, volume, no_cache, interactive, tty, args),
        Command::Inspect { module, json } => inspect(&module, json),
        Command::Syscalls => syscalls(),
    };
    match r {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("rvbox: {e:#}");
            ExitCode::from(fail_status)
        }
    }
}

fn convert(image: &str, output: &std::path::Path, quiet: bool) -> anyhow::Result<i32> {
    use rvbox_converter::Progress;
    let show = !quiet && std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut progress = |p: Progress| {
        if !show {
            return;
        }
        match p {
            Progress::Layer(l) => eprint!(
                "\r\x1b[Klayer {}/{} {} {:>6} KiB / {} KiB, {} entries{}",
                l.index + 1,
                l.count,
                l.digest.get(7..19).unwrap_or(&l.digest),
                l.bytes_read / 1024,
                l.size / 1024,
                l.entries,
                if l.done { " ok\n" } else { "" }
            ),
            Progress::Bundle { files, total } => eprint!("\r\x1b[Kbundling files {files}/{total}"),
        }
    };
    let report = rvbox_converter::convert(image, output, &mut progress)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if show {
        eprintln!();
    }
    if !quiet {
        let m = &report.meta;
        eprintln!(
            "{} -> {} ({} files, {:.1} MiB of files, module {:.1} MiB, {:.2}s)",
            m.image.reference,
            output.display(),
            m.file_count,
            m.files_size as f64 / 1048576.0,
            report.module_size as f64 / 1048576.0,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}

fn run_cmd(
    module: PathBuf,
    env: Vec<String>,
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
    let mut pairs = Vec::new();
    for e in env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => pairs.push((k.to_string(), v.to_string())),
            None if !e.is_empty() => {
                // KEY alone: the host's value, if it has one (as docker run -e KEY).
                if let Ok(v) = std::env::var(&e) {
                    pairs.push((e, v));
                }
            }
            _ => anyhow::bail!("-e {e:?}: give KEY=VALUE or KEY"),
        }
    }
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
    })
}

/// The terminal size that COLUMNS/LINES of our environment give, if both are set.
fn terminal_size() -> Option<(u16, u16)> {
    let cols = std::env::var("COLUMNS").ok()?.parse().ok()?;
    let rows = std::env::var("LINES").ok()?.parse().ok()?;
    Some((cols, rows))
}

fn inspect(module: &std::path::Path, json: bool) -> anyhow::Result<i32> {
    let meta: ModuleMeta = read_meta_file(module)?;
    let size = std::fs::metadata(module)?.len();
    if json {
        let mut v = serde_json::to_value(&meta)?;
        v["module_size"] = size.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
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
    println!(
        "module:      {} ({:.1} MiB)",
        module.display(),
        size as f64 / 1048576.0
    );
    println!(
        "made by:     rvbox {} (module format {})",
        meta.rvbox_version, meta.format
    );
    println!("module id:   {}", meta.module_id);
    println!("image:       {}", meta.image.reference);
    println!("digest:      {}", meta.image.manifest_digest);
    println!("platform:    {}", meta.image.platform);
    println!("entrypoint:  {}", list(&c.entrypoint));
    println!("cmd:         {}", list(&c.cmd));
    println!("env:         {}", list(&c.env));
    println!(
        "workdir:     {}",
        if c.working_dir.is_empty() {
            "/"
        } else {
            &c.working_dir
        }
    );
    println!(
        "user:        {}",
        if c.user.is_empty() {
            "root (default)"
        } else {
            &c.user
        }
    );
    println!(
        "files:       {} entries, {:.1} MiB in regular files",
        meta.file_count,
        meta.files_size as f64 / 1048576.0
    );
    println!(
        "bundle:      {:.1} MiB (page-aligned)",
        meta.bundle_size as f64 / 1048576.0
    );
    Ok(0)
}

fn syscalls() -> anyhow::Result<i32> {
    use rvbox_converter::guest::linux::syscalls::{Support, TABLE};
    let mut rows: Vec<_> = TABLE.iter().collect();
    rows.sort_by_key(|s| s.nr);
    let (mut full, mut partial, mut none) = (0, 0, 0);
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
        println!("{:>4}  {:<18} {:<8} {}", s.nr, s.name, level, note);
    }
    println!(
        "{full} full, {partial} partial, {none} not implemented (ENOSYS); any other number: ENOSYS"
    );
    Ok(0)
}
