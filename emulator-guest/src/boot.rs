//! Starting the container: from the bundle, the module's arguments and environment to a
//! running first process, the way `docker run` starts one.
//!
//! - argv is the image Entrypoint followed by the module arguments, or by the image Cmd
//!   when there are none (a leading `--` is dropped, so hosts that pass it agree);
//! - the environment is the image Env, overridden by the module's environment (minus
//!   rvbox's own `RVBOX_*` variables), with `PATH` and `HOME` defaulted as Docker does;
//! - the working directory is WorkingDir (created if missing), the user is User;
//! - the host's `RVBOX_*` knobs (`knobs.rs`) override the entrypoint, working directory
//!   and user as `docker run --entrypoint`, `-w` and `-u` do, and set the memory limit
//!   (`mem::budget`) and the time limit of the run.
//!
//! Exit statuses: the guest's own, 128+N if a signal N killed it, and Docker's 125
//! (rvbox failed, or a knob has a bad value), 126 (command cannot be run), 127 (command
//! not found); 124 when the time limit ended the run (as coreutils' `timeout`).

use std::rc::Rc;

use crate::bundle::{Bundle, RunConfig};
use crate::knobs::Knobs;
use crate::linux::errno::*;
use crate::linux::Process;
use crate::vfs::{Follow, Vfs};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// rvbox could not start the container.
pub const STATUS_RVBOX_FAILED: i32 = 125;
pub const STATUS_CANNOT_RUN: i32 = 126;
pub const STATUS_NOT_FOUND: i32 = 127;
/// The time limit ended the run (coreutils' `timeout`).
pub const STATUS_TIMED_OUT: i32 = 124;

fn fail(status: i32, msg: &str) -> i32 {
    let _ = crate::host::write(2, format!("rvbox: {msg}\n").as_bytes());
    status
}

/// Runs the container in `bundle` and returns the exit status.
pub fn boot(bundle: &'static [u8], mut args: Vec<String>, host_env: Vec<(String, String)>) -> i32 {
    if let Err(msg) = crate::host::check_clocks() {
        return fail(STATUS_RVBOX_FAILED, &msg);
    }
    let booted = crate::host::now_monotonic_ns();
    let knobs = match Knobs::from_env(&host_env) {
        Ok(k) => k,
        Err(msg) => return fail(STATUS_RVBOX_FAILED, &msg),
    };
    if let Err(msg) = set_memory_limit(knobs.memory) {
        return fail(STATUS_RVBOX_FAILED, &msg);
    }
    let bundle = match Bundle::new(bundle) {
        Ok(b) => b,
        Err(e) => return fail(STATUS_RVBOX_FAILED, &format!("damaged module: {e}")),
    };
    let config = match RunConfig::decode(bundle.config()) {
        Ok(c) => c,
        Err(e) => return fail(STATUS_RVBOX_FAILED, &format!("damaged module: {e}")),
    };
    // The module owns a terminal (`RVBOX_TTY=1`), or the host's streams are one.
    let owned_terminal = crate::linux::tty::Terminal::from_env(&host_env);
    let terminal = owned_terminal.is_some() || (0..3).any(crate::host::isatty);
    let vfs = match Vfs::new(bundle, terminal) {
        Ok(v) => Rc::new(v),
        Err(e) => return fail(STATUS_RVBOX_FAILED, &format!("damaged module: {e}")),
    };
    crate::linux::procfs::mount(&vfs);
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    let argv = match command(&config, &knobs, args) {
        Ok(argv) => argv,
        Err(msg) => return fail(STATUS_RVBOX_FAILED, &msg),
    };

    // A host that reports resizes (`RVBOX_TTY_RESIZE=1`) gives LINES/COLUMNS as the
    // terminal's first size only: in the programs' environment they would go stale, and
    // busybox and ncurses prefer them to TIOCGWINSZ (a terminal's environment has none).
    let resizable = owned_terminal.is_some()
        && host_env
            .iter()
            .any(|(k, v)| k == "RVBOX_TTY_RESIZE" && v == "1");
    let passed = host_env.iter().filter(|(k, _)| {
        !(k.starts_with("RVBOX_") || resizable && (k == "LINES" || k == "COLUMNS"))
    });
    let mut env = merge_env(&config.env, passed);
    if !env.iter().any(|e| e.starts_with(b"PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}").into_bytes());
    }

    let mut p = Process::new(vfs.clone());
    p.kernel.borrow_mut().terminal = owned_terminal;
    p.host_env = host_env;
    let user = match &knobs.user {
        Some(u) => set_user(&mut p, u, "--user (RVBOX_USER)"),
        None => set_user(&mut p, &config.user, "the image's User"),
    };
    if let Err(msg) = user {
        return fail(STATUS_RVBOX_FAILED, &msg);
    }
    // The terminal belongs to the user it was given to.
    if let Some(t) = vfs.terminal() {
        t.meta.borrow_mut().uid = p.creds.uid;
    }
    if let Err(msg) = mount_volumes(&p, &p.host_env) {
        return fail(STATUS_RVBOX_FAILED, &msg);
    }
    if !env.iter().any(|e| e.starts_with(b"HOME=")) {
        let home = home_of(&p).unwrap_or_else(|| b"/".to_vec());
        let mut h = b"HOME=".to_vec();
        h.extend(home);
        env.push(h);
    }
    let wd = match knobs.workdir {
        Some(w) => w,
        None if config.working_dir.is_empty() => b"/".to_vec(),
        None => config.working_dir.clone(),
    };
    match mkdir_p(&p, &wd) {
        Ok(n) => p.set_cwd(n),
        Err(e) => {
            return fail(
                STATUS_RVBOX_FAILED,
                &format!(
                    "working directory {}: {}",
                    String::from_utf8_lossy(&wd),
                    strerror(e)
                ),
            )
        }
    }

    let name = String::from_utf8_lossy(&argv[0]).into_owned();
    let path = match p.find_program(&argv[0], &env) {
        Ok(path) => path,
        Err(_) => {
            return fail(
                STATUS_NOT_FOUND,
                &format!("{name}: executable file not found in $PATH"),
            )
        }
    };
    if let Err(e) = p.exec(&path, argv, env) {
        let status = if e == ENOENT {
            STATUS_NOT_FOUND
        } else {
            STATUS_CANNOT_RUN
        };
        return fail(status, &format!("{name}: cannot run: {}", strerror(e)));
    }
    let started = crate::host::now_monotonic_ns();
    let kernel = p.kernel.clone();
    kernel.borrow_mut().run_deadline = knobs.timeout.as_ref().map(|(ns, _)| booted + ns);
    if let Some(check) = knobs.check {
        kernel.borrow_mut().check = check;
    }
    let mut status = crate::linux::kernel::run(p).shell_status();
    // What shared mappings of volume files hold goes to the host before the module ends.
    crate::vfs::host_pages::sync_all();
    if kernel.borrow().timed_out {
        let given = knobs.timeout.as_ref().map_or("", |(_, t)| t.as_str());
        let text = crate::knobs::timeout_text(given);
        let _ = crate::host::write(
            2,
            format!("rvbox: timed out after {text} (--timeout)\n").as_bytes(),
        );
        status = STATUS_TIMED_OUT;
    }
    let (instret, peak) = {
        let k = kernel.borrow();
        (k.instret, k.peak_resident)
    };
    if crate::knobs::Log::get().stats {
        let secs = (crate::host::now_monotonic_ns() - started) as f64 / 1e9;
        let line = format!(
            "rvbox: stats: {} guest instructions in {:.3}s ({:.0} MIPS), {} MiB guest memory\n",
            instret,
            secs,
            instret as f64 / secs.max(1e-9) / 1e6,
            peak >> 20
        );
        let _ = crate::host::write(2, line.as_bytes());
        let (c, m) = (crate::cpu::counters(), crate::mem::counters());
        let per_m = |n: u64| n as f64 * 1e6 / instret.max(1) as f64;
        let line = format!(
            "rvbox: stats: {} blocks run ({:.1} instructions each), {} decoded, {} cache flushes; \
             {} TLB fills ({:.0} per million instructions), {} TLB flushes, {} slow-path accesses ({:.0} per million)\n",
            c.blocks,
            instret as f64 / c.blocks.max(1) as f64,
            c.decoded,
            c.flushes,
            m.tlb_fills,
            per_m(m.tlb_fills),
            m.tlb_flushes,
            m.slow,
            per_m(m.slow),
        );
        let _ = crate::host::write(2, line.as_bytes());
        if c.aot_calls > 0 {
            let line = format!(
                "rvbox: stats: translated code: {} calls ({:.1} instructions each), {:.1}% of instructions, {} returns to the interpreter ({:.0} per million instructions)\n",
                c.aot_calls,
                c.aot_insns as f64 / c.aot_calls as f64,
                c.aot_insns as f64 * 100.0 / instret.max(1) as f64,
                c.aot_interp,
                per_m(c.aot_interp),
            );
            let _ = crate::host::write(2, line.as_bytes());
        }
    }
    status
}

/// The image's `Env` overridden by the host's variables: an image variable the host sets
/// again is dropped, and the host's come after the image's, each at the place of its last
/// setting. In one pass (a search of the whole list for each variable took a second for
/// 20,000 of them).
fn merge_env<'a>(
    image: &[Vec<u8>],
    host: impl Iterator<Item = &'a (String, String)>,
) -> Vec<Vec<u8>> {
    let host: Vec<&(String, String)> = host.collect();
    // Each host variable's last setting.
    let mut last = std::collections::HashMap::with_capacity(host.len());
    for (i, (k, _)) in host.iter().enumerate() {
        last.insert(k.as_bytes(), i);
    }
    let mut env: Vec<Vec<u8>> = image
        .iter()
        .filter(|e| {
            let key = e.iter().position(|&c| c == b'=').map(|n| &e[..n]);
            key.is_none_or(|k| !last.contains_key(k))
        })
        .cloned()
        .collect();
    for (i, (k, v)) in host.iter().enumerate() {
        if last[k.as_bytes()] == i {
            env.push(format!("{k}={v}").into_bytes());
        }
    }
    env
}

/// Mounts the directories the host handed the module (WASI preopens, named by their
/// path in the container) as volumes owned by the container's user. `RVBOX_READONLY`
/// (comma-separated container paths) makes some read-only: `rvbox run -v HOST:GUEST:ro`
/// sets it (and also has the host refuse writes), other hosts can set it by hand.
fn mount_volumes(p: &Process, host_env: &[(String, String)]) -> Result<(), String> {
    let env = |k: &str| {
        host_env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let mut read_only: Vec<Vec<u8>> = env("RVBOX_READONLY")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| normalize(s.as_bytes()))
        .collect();
    // Natively, RVBOX_NATIVE_DIRS adds to the (empty) preopens.
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
    let mut dirs: Vec<(i32, Vec<u8>, Option<crate::hostfs::HostFd>)> = crate::hostfs::preopens()
        .into_iter()
        .map(|(fd, name)| (fd, name, None))
        .collect();
    #[cfg(not(target_arch = "wasm32"))]
    for spec in env("RVBOX_NATIVE_DIRS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        // Natively (tests): HOST::GUEST, as `wasmtime run --dir`.
        let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
        let fd = crate::hostfs::open_dir(host)
            .map_err(|e| format!("RVBOX_NATIVE_DIRS: {host}: {}", strerror(e)))?;
        dirs.push((fd.raw(), guest.as_bytes().to_vec(), Some(fd)));
    }
    for (fd, name, owned) in dirs {
        let shown = String::from_utf8_lossy(&name).into_owned();
        if !name.starts_with(b"/") {
            return Err(format!(
                "the host gave the directory {shown:?}, which has no absolute path in the container; \
                 name one (wasmtime run --dir HOST::/PATH)"
            ));
        }
        let guest = normalize(&name);
        let ro = read_only
            .iter()
            .position(|r| *r == guest)
            .map(|i| read_only.remove(i))
            .is_some();
        p.vfs
            .mount_volume(&guest, fd, owned, ro, (p.creds.uid, p.creds.gid))?;
    }
    if let Some(r) = read_only.first() {
        return Err(format!(
            "RVBOX_READONLY names {}, which is no volume",
            String::from_utf8_lossy(r)
        ));
    }
    Ok(())
}

/// `/a/b` for `/a//b/./` (no `..` handling: mount paths with `..` are refused).
fn normalize(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in path
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
    {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Sets the guest's memory budget: `asked` (`RVBOX_MEMORY`), or all the module has room
/// for ([`crate::host::memory_ceiling`]).
fn set_memory_limit(asked: Option<u64>) -> Result<(), String> {
    use crate::mem::budget::{set_limit, Source};
    let ceiling = crate::host::memory_ceiling();
    match asked {
        Some(m) if m > ceiling => Err(format!(
            "--memory (RVBOX_MEMORY) {} MiB: more than this module can give its guest, at \
             most {} MiB (a wasm32 module has 4 GiB of memory; the image and rvbox take the rest)",
            m >> 20,
            ceiling >> 20
        )),
        Some(m) => {
            set_limit(m, Source::Host);
            Ok(())
        }
        None => {
            set_limit(ceiling, Source::Default);
            Ok(())
        }
    }
}

/// argv as `docker run` makes it: the entrypoint (the image's, or `--entrypoint`'s: one
/// program, or none if empty), then the run's arguments, or the image's Cmd if there are
/// none and the entrypoint is the image's (`--entrypoint` drops the image's Cmd).
fn command(config: &RunConfig, knobs: &Knobs, args: Vec<String>) -> Result<Vec<Vec<u8>>, String> {
    let mut argv = match &knobs.entrypoint {
        None => config.entrypoint.clone(),
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
    };
    if !args.is_empty() {
        argv.extend(args.into_iter().map(String::into_bytes));
    } else if knobs.entrypoint.is_none() {
        argv.extend(config.cmd.iter().cloned());
    }
    if argv.is_empty() {
        let why = if knobs.entrypoint.is_some() {
            "--entrypoint (RVBOX_ENTRYPOINT) is empty and no command was given"
        } else {
            "the image has no Entrypoint or Cmd"
        };
        return Err(format!(
            "no command: {why}; name one (rvbox run MODULE -- CMD ARGS...)"
        ));
    }
    Ok(argv)
}

/// Creates the directory `path` and its parents if missing (as Docker does for WorkingDir).
fn mkdir_p(p: &Process, path: &[u8]) -> Result<crate::vfs::Node, Errno> {
    let mut cur = p.vfs.root();
    for comp in path.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
        cur = match p.resolve(&cur, comp, Follow::Yes) {
            Ok(n) => n,
            Err(ENOENT) => {
                let d = p.vfs.new_dir(&cur, 0o755);
                p.vfs.link(&cur, comp, &d)?
            }
            Err(e) => return Err(e),
        };
        if !cur.is_dir() {
            return Err(ENOTDIR);
        }
    }
    Ok(cur)
}

/// Reads a file of the image (for /etc/passwd and /etc/group).
fn read_file(p: &Process, path: &[u8]) -> Option<Vec<u8>> {
    let n = p.resolve(&p.vfs.root(), path, Follow::Yes).ok()?;
    let mut c = n.content.borrow_mut();
    match &mut *c {
        crate::vfs::Content::File(d) => Some(d.bytes().to_vec()),
        _ => None,
    }
}

/// Lines of a colon-separated database file, as fields.
fn db_entries(data: &[u8]) -> impl Iterator<Item = Vec<&[u8]>> {
    data.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(|l| l.split(|&c| c == b':').collect())
}

/// Sets the identity from `user` (`name`, `uid`, `name:group`, `uid:gid`...; the image's
/// User or `--user`, as `what` says), resolving names through the image's /etc/passwd and
/// /etc/group as runc does. A uid that /etc/passwd does not list is fine (group 0).
fn set_user(p: &mut Process, user: &[u8], what: &str) -> Result<(), String> {
    if user.is_empty() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(user).into_owned();
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (text.clone(), None),
    };
    let passwd = read_file(p, b"/etc/passwd").unwrap_or_default();
    let group = read_file(p, b"/etc/group").unwrap_or_default();
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(uid) => {
            let gid = db_entries(&passwd)
                .find(|f| f.len() > 3 && f[2] == u.as_bytes())
                .and_then(|f| std::str::from_utf8(f[3]).ok()?.parse().ok())
                .unwrap_or(0);
            (uid, gid)
        }
        Err(_) => {
            let f = db_entries(&passwd)
                .find(|f| f.len() > 3 && f[0] == u.as_bytes())
                .ok_or_else(|| format!("{what}: user {u:?} is not in the image's /etc/passwd"))?;
            let uid = std::str::from_utf8(f[2]).ok().and_then(|s| s.parse().ok());
            let gid = std::str::from_utf8(f[3]).ok().and_then(|s| s.parse().ok());
            (
                uid.ok_or_else(|| format!("bad /etc/passwd entry for {u:?}"))?,
                gid.ok_or_else(|| format!("bad /etc/passwd entry for {u:?}"))?,
            )
        }
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => db_entries(&group)
                .find(|f| f.len() > 2 && f[0] == g.as_bytes())
                .and_then(|f| std::str::from_utf8(f[2]).ok()?.parse().ok())
                .ok_or_else(|| format!("{what}: group {g:?} is not in the image's /etc/group"))?,
        };
    }
    // Supplementary groups: those listing the user by name.
    let name = db_entries(&passwd)
        .find(|f| {
            f.len() > 2 && std::str::from_utf8(f[2]).ok().and_then(|s| s.parse().ok()) == Some(uid)
        })
        .map(|f| f[0].to_vec());
    let mut groups = Vec::new();
    if let Some(name) = name {
        for f in db_entries(&group) {
            if f.len() > 3 && f[3].split(|&c| c == b',').any(|m| m == name.as_slice()) {
                if let Some(g) = std::str::from_utf8(f[2]).ok().and_then(|s| s.parse().ok()) {
                    groups.push(g);
                }
            }
        }
    }
    p.creds = crate::linux::Creds {
        uid,
        euid: uid,
        suid: uid,
        gid,
        egid: gid,
        sgid: gid,
        groups,
    };
    Ok(())
}

/// The home directory of the current user from /etc/passwd.
fn home_of(p: &Process) -> Option<Vec<u8>> {
    let passwd = read_file(p, b"/etc/passwd")?;
    let uid = p.creds.uid.to_string();
    let home = db_entries(&passwd)
        .find(|f| f.len() > 5 && f[2] == uid.as_bytes())
        .map(|f| f[5].to_vec());
    home.filter(|h| !h.is_empty())
}

/// A short description of an errno for messages.
pub fn strerror(e: Errno) -> &'static str {
    match e {
        ENOENT => "no such file or directory",
        EACCES => "permission denied",
        ENOEXEC => "exec format error (not a riscv64 executable)",
        ENOTDIR => "not a directory",
        ELOOP => "too many levels of symbolic links",
        ENOMEM => "out of memory",
        E2BIG => "argument list too long",
        EIO => "input/output error",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::budget;
    use crate::vfs::{Content, FileData};

    fn config(entrypoint: &[&str], cmd: &[&str]) -> RunConfig {
        let v = |l: &[&str]| l.iter().map(|s| s.as_bytes().to_vec()).collect();
        RunConfig {
            entrypoint: v(entrypoint),
            cmd: v(cmd),
            ..RunConfig::default()
        }
    }

    fn argv(c: &RunConfig, entrypoint: Option<&str>, args: &[&str]) -> Result<Vec<String>, String> {
        let knobs = Knobs {
            entrypoint: entrypoint.map(|e| e.as_bytes().to_vec()),
            ..Knobs::default()
        };
        let args = args.iter().map(|a| a.to_string()).collect();
        command(c, &knobs, args).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8(a).unwrap())
                .collect()
        })
    }

    #[test]
    fn entrypoint_and_cmd_as_docker_run_combines_them() {
        let c = config(&["/entry", "-x"], &["cmd", "arg"]);
        assert_eq!(argv(&c, None, &[]).unwrap(), ["/entry", "-x", "cmd", "arg"]);
        assert_eq!(argv(&c, None, &["a"]).unwrap(), ["/entry", "-x", "a"]);
        // --entrypoint: one program, and the image's Cmd is dropped.
        assert_eq!(argv(&c, Some("/bin/sh"), &[]).unwrap(), ["/bin/sh"]);
        assert_eq!(
            argv(&c, Some("/bin/sh"), &["-c", "x"]).unwrap(),
            ["/bin/sh", "-c", "x"]
        );
        // --entrypoint "": the run's arguments alone.
        assert_eq!(argv(&c, Some(""), &["ls", "/"]).unwrap(), ["ls", "/"]);
        let e = argv(&c, Some(""), &[]).unwrap_err();
        assert!(
            e.starts_with("no command: --entrypoint (RVBOX_ENTRYPOINT) is empty"),
            "{e}"
        );
        let e = argv(&config(&[], &[]), None, &[]).unwrap_err();
        assert!(
            e.starts_with("no command: the image has no Entrypoint or Cmd"),
            "{e}"
        );
    }

    #[test]
    fn host_variables_override_the_image_env_and_come_last() {
        let image: Vec<Vec<u8>> = ["A=image", "B=image", "NOVALUE", "C=image"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let host: Vec<(String, String)> = [("C", "1"), ("D", "2"), ("C", "3"), ("A", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = merge_env(&image, host.iter());
        let env: Vec<&str> = env
            .iter()
            .map(|e| std::str::from_utf8(e).unwrap())
            .collect();
        assert_eq!(env, ["B=image", "NOVALUE", "D=2", "C=3", "A="]);
    }

    fn process_with_users() -> Process {
        let vfs = Rc::new(crate::vfs::tests::vfs());
        let p = Process::new(vfs);
        let etc = p.resolve(&p.vfs.root(), b"/etc", Follow::Yes).unwrap();
        p.resolve(&etc, b"f", Follow::Yes).unwrap(); // its image entries are read now
        for (name, text) in [
            (
                &b"passwd"[..],
                &b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n"[..],
            ),
            (b"group", b"root:x:0:\nstaff:x:50:app\napp:x:1001:\n"),
        ] {
            let f = p
                .vfs
                .new_node(0o100644, Content::File(FileData::upper(text.to_vec())));
            p.vfs.link(&etc, name, &f).unwrap();
        }
        p
    }

    #[test]
    fn user_by_name_number_and_group() {
        let mut p = process_with_users();
        set_user(&mut p, b"app", "--user (RVBOX_USER)").unwrap();
        assert_eq!(
            (p.creds.uid, p.creds.gid, p.creds.groups.clone()),
            (1000, 1001, vec![50])
        );
        assert_eq!(home_of(&p).as_deref(), Some(&b"/home/app"[..]));
        set_user(&mut p, b"app:root", "--user (RVBOX_USER)").unwrap();
        assert_eq!((p.creds.uid, p.creds.gid), (1000, 0));
        set_user(&mut p, b"1000", "--user (RVBOX_USER)").unwrap();
        assert_eq!((p.creds.euid, p.creds.egid), (1000, 1001));
        // A uid /etc/passwd does not know is fine, as with docker.
        set_user(&mut p, b"4242:77", "--user (RVBOX_USER)").unwrap();
        assert_eq!(
            (p.creds.uid, p.creds.gid, p.creds.groups.len()),
            (4242, 77, 0)
        );
        assert_eq!(home_of(&p), None);
        assert_eq!(
            set_user(&mut p, b"nobody", "--user (RVBOX_USER)").unwrap_err(),
            "--user (RVBOX_USER): user \"nobody\" is not in the image's /etc/passwd"
        );
        assert_eq!(
            set_user(&mut p, b"app:wheel", "the image's User").unwrap_err(),
            "the image's User: group \"wheel\" is not in the image's /etc/group"
        );
    }

    #[test]
    fn memory_limit_from_the_knob_or_the_ceiling() {
        let ceiling = crate::host::memory_ceiling();
        set_memory_limit(None).unwrap();
        assert_eq!(
            (budget::limit(), budget::source()),
            (ceiling, budget::Source::Default)
        );
        set_memory_limit(Some(64 << 20)).unwrap();
        assert_eq!(
            (budget::limit(), budget::source()),
            (64 << 20, budget::Source::Host)
        );
        let e = set_memory_limit(Some(ceiling + (1 << 20))).unwrap_err();
        assert!(
            e.contains("more than this module can give its guest"),
            "{e}"
        );
    }
}
