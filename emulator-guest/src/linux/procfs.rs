//! `/proc` and `/sys`: synthetic file systems made from the processes' state.
//!
//! Linux semantics this emulates: `/proc` has one directory per process (`/proc/PID`, with
//! `self` and `thread-self` links to the caller's), files whose contents are generated
//! when they are opened (a snapshot, as Linux `seq_file`s are on first read), and "magic
//! links" (`exe`, `cwd`, `root`, `fd/N`) that lead to the object itself rather than to a
//! path. `/sys` is the little of sysfs that C libraries and runtimes read (the CPU
//! topology) and the container's cgroup2 directory with its memory limit and use (what
//! runtimes read to size their heaps), read-only as Docker mounts it.
//!
//! The VFS walks these trees through `View`, a read-only view of the calling process (and,
//! once there are several, of the process table: every per-process path goes through
//! `View::process`). Opening, reading a link and writing go through the functions below,
//! which the file system calls consult for synthetic nodes.
//!
//! Formats follow Linux 6.12 (`fs/proc/array.c`, `task_mmu.c`, `meminfo.c`,
//! `arch/riscv/kernel/cpu.c`).

use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::OnceLock;

use super::abi::Stat;
use super::elf;
use super::errno::*;
use super::fd::*;
use super::mm::VmaKind;
use super::signal::{SIG_DFL, SIG_IGN};
use super::Process;
use crate::bundle::mode::*;
use crate::mem::{prot, Memory, PAGE_SIZE};
use crate::vfs::{self, dev, Follow, Inode, Jump, Node, Provider};

/// `uname -r` and `uname -v`, also in `/proc/version` and `/proc/sys/kernel`.
pub const KERNEL_RELEASE: &str = "6.12.0-rvbox";
pub const KERNEL_VERSION: &str = "#1 SMP rvbox";

/// The ISA the interpreter implements, as `/proc/cpuinfo` spells it.
const ISA: &str = "rv64imafdc_zicntr_zicsr_zifencei";

/// Clock ticks per second (`AT_CLKTCK`, `USER_HZ`).
const HZ: u64 = 100;

/// Which synthetic file system a node is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fs {
    Proc,
    Sys,
}

/// What a synthetic node is, for this module (the VFS keeps it as `Rc<dyn Any>`).
pub enum Key {
    /// The node at `path` (components below the mount point).
    Path { fs: Fs, path: Vec<Vec<u8>> },
    /// An open file that is no node of the tree (a pipe, the host's streams), reached by
    /// following `/proc/PID/fd/N`: opening it opens that file again.
    Open(Rc<OpenFile>),
}

/// Mounts `/proc` and `/sys` on `vfs`.
pub fn mount(vfs: &vfs::Vfs) {
    for (name, fs, dev) in [
        (&b"proc"[..], Fs::Proc, dev::PROC),
        (b"sys", Fs::Sys, dev::SYS),
    ] {
        vfs.mount(
            name,
            0o555,
            dev,
            Rc::new(Key::Path {
                fs,
                path: Vec::new(),
            }),
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Link,
}
use Kind::*;

/// `/proc`'s own entries besides the process directories: (path, kind, permissions).
const PROC_TREE: &[(&str, Kind, u32)] = &[
    ("cpuinfo", File, 0o444),
    ("filesystems", File, 0o444),
    ("loadavg", File, 0o444),
    ("meminfo", File, 0o444),
    ("mounts", Link, 0o777),
    ("self", Link, 0o777),
    ("stat", File, 0o444),
    ("sys", Dir, 0o555),
    ("sys/fs", Dir, 0o555),
    ("sys/fs/file-max", File, 0o644),
    ("sys/fs/nr_open", File, 0o644),
    ("sys/kernel", Dir, 0o555),
    ("sys/kernel/cap_last_cap", File, 0o444),
    ("sys/kernel/hostname", File, 0o644),
    ("sys/kernel/ngroups_max", File, 0o444),
    ("sys/kernel/osrelease", File, 0o444),
    ("sys/kernel/ostype", File, 0o444),
    ("sys/kernel/pid_max", File, 0o644),
    ("sys/kernel/random", Dir, 0o555),
    ("sys/kernel/random/boot_id", File, 0o444),
    ("sys/kernel/random/uuid", File, 0o444),
    ("sys/kernel/version", File, 0o444),
    ("sys/vm", Dir, 0o555),
    ("sys/vm/max_map_count", File, 0o644),
    ("sys/vm/overcommit_memory", File, 0o644),
    ("thread-self", Link, 0o777),
    ("uptime", File, 0o444),
    ("version", File, 0o444),
];

/// The entries of `/proc/PID` (and of `/proc/PID/task/TID`, which has no `task`).
const PID_TREE: &[(&str, Kind, u32)] = &[
    ("auxv", File, 0o400),
    ("cgroup", File, 0o444),
    ("cmdline", File, 0o444),
    ("comm", File, 0o644),
    ("cwd", Link, 0o777),
    ("environ", File, 0o400),
    ("exe", Link, 0o777),
    ("fd", Dir, 0o500),
    ("fdinfo", Dir, 0o555),
    ("limits", File, 0o444),
    ("maps", File, 0o444),
    ("mountinfo", File, 0o444),
    ("mounts", File, 0o444),
    ("root", Link, 0o777),
    ("stat", File, 0o444),
    ("statm", File, 0o444),
    ("status", File, 0o444),
    ("task", Dir, 0o555),
];

/// `/sys`: what glibc (`get_nprocs`), Python (`os.cpu_count`) and `nproc` read.
const SYS_TREE: &[(&str, Kind, u32)] = &[
    ("devices", Dir, 0o755),
    ("devices/system", Dir, 0o755),
    ("devices/system/cpu", Dir, 0o755),
    ("devices/system/cpu/cpu0", Dir, 0o755),
    ("devices/system/cpu/online", File, 0o444),
    ("devices/system/cpu/possible", File, 0o444),
    ("devices/system/cpu/present", File, 0o444),
    ("fs", Dir, 0o755),
    ("fs/cgroup", Dir, 0o555),
    ("fs/cgroup/cgroup.controllers", File, 0o444),
    ("fs/cgroup/memory.current", File, 0o444),
    ("fs/cgroup/memory.max", File, 0o444),
];

/// What a path names.
#[derive(Debug, Clone, Copy)]
struct Spec {
    kind: Kind,
    perm: u32,
    dev: u32,
    /// The process that owns it (its files belong to the process's user).
    owner: Option<i32>,
    size: u64,
}

impl Spec {
    fn new(kind: Kind, perm: u32, dev: u32) -> Spec {
        Spec {
            kind,
            perm,
            dev,
            owner: None,
            size: 0,
        }
    }
}

fn join(path: &[Vec<u8>]) -> Vec<u8> {
    path.join(&b'/')
}

/// The entries of a static tree directly under `dir`.
fn static_children(tree: &[(&str, Kind, u32)], dir: &[u8]) -> Vec<(Vec<u8>, Kind, u32)> {
    tree.iter()
        .filter_map(|&(p, k, perm)| {
            let p = p.as_bytes();
            let rest = if dir.is_empty() {
                p
            } else {
                p.strip_prefix(dir)?.strip_prefix(b"/")?
            };
            (!rest.contains(&b'/')).then(|| (rest.to_vec(), k, perm))
        })
        .collect()
}

fn static_spec(tree: &[(&str, Kind, u32)], path: &[u8]) -> Option<(Kind, u32)> {
    tree.iter()
        .find(|(p, _, _)| p.as_bytes() == path)
        .map(|&(_, k, perm)| (k, perm))
}

/// A decimal number without sign or leading zeros, as `/proc` names processes and fds.
fn number(name: &[u8]) -> Option<i32> {
    if name.is_empty() || (name[0] == b'0' && name.len() > 1) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// A per-process path: `PID/REST` or `PID/task/TID/REST`.
struct PidPath<'a> {
    pid: i32,
    /// Inside `task/TID`.
    tid: Option<i32>,
    rest: &'a [Vec<u8>],
}

fn pid_path(path: &[Vec<u8>]) -> Option<PidPath<'_>> {
    let pid = number(path.first()?)?;
    let rest = &path[1..];
    if rest.len() >= 2 && rest[0] == b"task" {
        let tid = number(&rest[1])?;
        return Some(PidPath {
            pid,
            tid: Some(tid),
            rest: &rest[2..],
        });
    }
    Some(PidPath {
        pid,
        tid: None,
        rest,
    })
}

/// The permissions of `/proc/PID/fd/N`: the link's owner bits tell the access mode.
fn fd_link_perm(f: &OpenFile) -> u32 {
    let mut perm = 0o100;
    if f.readable() {
        perm |= 0o400;
    }
    if f.writable() {
        perm |= 0o200;
    }
    perm
}

/// The provider the VFS walks `/proc` and `/sys` with: a read-only view of the calling
/// process.
pub struct View<'a> {
    cur: &'a Process,
}

impl<'a> View<'a> {
    pub fn new(cur: &'a Process) -> View<'a> {
        View { cur }
    }

    /// The process with id `pid`. Only the calling process exists so far; with several,
    /// this is where the process table is consulted.
    fn process(&self, pid: i32) -> Option<&'a Process> {
        (pid == self.cur.pid).then_some(self.cur)
    }

    /// The ids of all processes, in order.
    fn pids(&self) -> Vec<i32> {
        vec![self.cur.pid]
    }

    /// The threads of process `pid`.
    fn threads(&self, pid: i32) -> Vec<i32> {
        vec![pid]
    }

    /// What `fs`'s `path` names.
    fn describe(&self, fs: Fs, path: &[Vec<u8>]) -> Result<Spec, Errno> {
        match fs {
            Fs::Sys => {
                if path.is_empty() {
                    return Ok(Spec::new(Dir, 0o555, dev::SYS));
                }
                let (kind, perm) = static_spec(SYS_TREE, &join(path)).ok_or(ENOENT)?;
                let dev = if path.len() >= 2 && path[0] == b"fs" && path[1] == b"cgroup" {
                    dev::CGROUP
                } else {
                    dev::SYS
                };
                Ok(Spec::new(kind, perm, dev))
            }
            Fs::Proc => {
                if path.is_empty() {
                    return Ok(Spec::new(Dir, 0o555, dev::PROC));
                }
                if let Some(pp) = pid_path(path) {
                    return self.describe_pid(&pp);
                }
                let (kind, perm) = static_spec(PROC_TREE, &join(path)).ok_or(ENOENT)?;
                Ok(Spec::new(kind, perm, dev::PROC))
            }
        }
    }

    fn describe_pid(&self, pp: &PidPath) -> Result<Spec, Errno> {
        let p = self.process(pp.pid).ok_or(ENOENT)?;
        if let Some(tid) = pp.tid {
            if !self.threads(pp.pid).contains(&tid) {
                return Err(ENOENT);
            }
        }
        let owned = |kind, perm| {
            Ok(Spec {
                owner: Some(pp.pid),
                ..Spec::new(kind, perm, dev::PROC)
            })
        };
        let rest: Vec<&[u8]> = pp.rest.iter().map(Vec::as_slice).collect();
        match rest.as_slice() {
            [] => owned(Dir, 0o555),
            [b"task"] if pp.tid.is_none() => owned(Dir, 0o555),
            [b"fd", n] => {
                let f = p.fds.get(number(n).ok_or(ENOENT)?).map_err(|_| ENOENT)?;
                let mut s = owned(Link, fd_link_perm(&f))?;
                s.size = 64;
                Ok(s)
            }
            [b"fdinfo", n] => {
                p.fds.get(number(n).ok_or(ENOENT)?).map_err(|_| ENOENT)?;
                owned(File, 0o444)
            }
            [b"task"] => Err(ENOENT),
            [name] => match static_spec(PID_TREE, name) {
                Some((kind, perm)) => owned(kind, perm),
                None => Err(ENOENT),
            },
            _ => Err(ENOENT),
        }
    }

    /// The names (and what they are) in the directory `fs`'s `path`.
    fn children(&self, fs: Fs, path: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, Kind)>, Errno> {
        let strip = |v: Vec<(Vec<u8>, Kind, u32)>| v.into_iter().map(|(n, k, _)| (n, k)).collect();
        match fs {
            Fs::Sys => Ok(strip(static_children(SYS_TREE, &join(path)))),
            Fs::Proc => {
                if path.is_empty() {
                    let mut v: Vec<(Vec<u8>, Kind)> = strip(static_children(PROC_TREE, b""));
                    v.extend(
                        self.pids()
                            .iter()
                            .map(|p| (p.to_string().into_bytes(), Dir)),
                    );
                    return Ok(v);
                }
                let Some(pp) = pid_path(path) else {
                    return Ok(strip(static_children(PROC_TREE, &join(path))));
                };
                let p = self.process(pp.pid).ok_or(ENOENT)?;
                let rest: Vec<&[u8]> = pp.rest.iter().map(Vec::as_slice).collect();
                Ok(match rest.as_slice() {
                    [] => PID_TREE
                        .iter()
                        .filter(|(n, _, _)| pp.tid.is_none() || *n != "task")
                        .map(|&(n, k, _)| (n.as_bytes().to_vec(), k))
                        .collect(),
                    [b"task"] => self
                        .threads(pp.pid)
                        .iter()
                        .map(|t| (t.to_string().into_bytes(), Dir))
                        .collect(),
                    [b"fd"] | [b"fdinfo"] => {
                        let kind = if rest[0] == b"fd" { Link } else { File };
                        p.fds
                            .fds()
                            .map(|(fd, _)| (fd.to_string().into_bytes(), kind))
                            .collect()
                    }
                    _ => return Err(ENOTDIR),
                })
            }
        }
    }

    /// Makes the node for `fs`'s `path`, entry `name` of `parent`.
    fn make(&self, parent: &Node, name: &[u8], fs: Fs, path: Vec<Vec<u8>>, spec: Spec) -> Node {
        let ftype = match spec.kind {
            Dir => S_IFDIR,
            File => S_IFREG,
            Link => S_IFLNK,
        };
        let ino = path_ino(fs, &path);
        let subdirs = if spec.kind == Dir {
            self.children(fs, &path)
                .map(|c| c.iter().filter(|(_, k)| *k == Dir).count() as u32)
                .unwrap_or(0)
        } else {
            0
        };
        let node = Inode::synthetic(
            parent,
            name,
            ftype | spec.perm,
            ino,
            spec.dev,
            Rc::new(Key::Path { fs, path }),
        );
        {
            let mut m = node.meta.borrow_mut();
            if spec.kind == Dir {
                m.nlink = 2 + subdirs;
            }
            if let Some(p) = spec.owner.and_then(|pid| self.process(pid)) {
                m.uid = p.creds.euid;
                m.gid = p.creds.egid;
            }
        }
        if let vfs::Content::Synthetic(s) = &mut *node.content.borrow_mut() {
            s.size = spec.size;
        }
        node
    }
}

/// A stable inode number for a synthetic path (the root of each mount is 1, as on Linux).
fn path_ino(fs: Fs, path: &[Vec<u8>]) -> u64 {
    if path.is_empty() {
        return 1;
    }
    // FNV-1a over the file system and the path.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(fs as u8).chain(join(path)) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    (h >> 32) | 0x1000
}

fn key_path(node: &Node) -> Result<(Fs, Vec<Vec<u8>>), Errno> {
    let key = node.synthetic_key().ok_or(EINVAL)?;
    match key.downcast_ref::<Key>() {
        Some(Key::Path { fs, path }) => Ok((*fs, path.clone())),
        _ => Err(EINVAL),
    }
}

impl Provider for View<'_> {
    fn refresh(&self, mount: &Node) {
        if let Ok((fs, path)) = key_path(mount) {
            if let Ok(c) = self.children(fs, &path) {
                mount.meta.borrow_mut().nlink =
                    2 + c.iter().filter(|(_, k)| *k == Dir).count() as u32;
            }
        }
    }

    fn lookup(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        let (fs, mut path) = key_path(dir).map_err(|_| ENOTDIR)?;
        path.push(name.to_vec());
        let spec = self.describe(fs, &path)?;
        Ok(self.make(dir, name, fs, path, spec))
    }

    fn list(&self, dir: &Node) -> Result<Vec<(Vec<u8>, Node)>, Errno> {
        let (fs, path) = key_path(dir).map_err(|_| ENOTDIR)?;
        let mut out = Vec::new();
        for (name, _) in self.children(fs, &path)? {
            let mut p = path.clone();
            p.push(name.clone());
            // An entry may go between listing and describing (a closed fd): skip it.
            if let Ok(spec) = self.describe(fs, &p) {
                let n = self.make(dir, &name, fs, p, spec);
                out.push((name, n));
            }
        }
        Ok(out)
    }

    fn follow(&self, link: &Node) -> Result<Jump, Errno> {
        let (fs, path) = key_path(link)?;
        if fs != Fs::Proc {
            return Err(EINVAL);
        }
        if let Some(pp) = pid_path(&path) {
            let p = self.process(pp.pid).ok_or(ENOENT)?;
            let rest: Vec<&[u8]> = pp.rest.iter().map(Vec::as_slice).collect();
            return match rest.as_slice() {
                [b"exe"] => p.exe_node.clone().map(Jump::Node).ok_or(ENOENT),
                [b"cwd"] => Ok(Jump::Node(p.cwd())),
                [b"root"] => Ok(Jump::Node(p.vfs.root())),
                [b"fd", n] => {
                    let f = p.fds.get(number(n).ok_or(ENOENT)?).map_err(|_| ENOENT)?;
                    Ok(Jump::Node(fd_node(p, link, &f)))
                }
                _ => Err(EINVAL),
            };
        }
        Ok(Jump::Path(self_link_target(self.cur, &path)?))
    }
}

/// Where `/proc/self`, `/proc/thread-self` and `/proc/mounts` point.
fn self_link_target(p: &Process, path: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
    match join(path).as_slice() {
        b"self" => Ok(p.pid.to_string().into_bytes()),
        b"thread-self" => Ok(format!("{0}/task/{0}", p.pid).into_bytes()),
        b"mounts" => Ok(b"self/mounts".to_vec()),
        _ => Err(EINVAL),
    }
}

/// The node an open file is, for following `/proc/PID/fd/N`: the file's own node; the
/// terminal for the host's streams on a terminal; else a node standing for the open file
/// (a pipe...), whose `stat` is the file's and which opening reopens.
fn fd_node(p: &Process, link: &Node, f: &Rc<OpenFile>) -> Node {
    if let Some(n) = f.node() {
        return n.clone();
    }
    if let FileKind::Pipe(end) = &f.kind {
        if let Some(n) = &end.pipe.node {
            return n.clone();
        }
    }
    let st = p.stat_of(f);
    if st.mode & S_IFMT == S_IFCHR {
        if let Some(t) = p.vfs.terminal() {
            return t;
        }
    }
    let name = match &*link.content.borrow() {
        vfs::Content::Synthetic(s) => s.name.clone(),
        _ => Vec::new(),
    };
    let parent = p.vfs.parent(link);
    let n = Inode::synthetic(
        &parent,
        &name,
        st.mode,
        st.ino,
        st.dev as u32,
        Rc::new(Key::Open(f.clone())),
    );
    {
        // The process's own pipe or stream: its user's, so that it may open it again.
        let mut m = n.meta.borrow_mut();
        m.uid = p.creds.euid;
        m.gid = p.creds.egid;
        m.nlink = st.nlink;
        m.rdev = st.rdev;
    }
    n
}

/// What `readlink` shows for an open file: its path, or `pipe:[INO]`, `socket:[INO]`,
/// `anon_inode:[...]` for files with no name.
fn fd_target(p: &Process, f: &OpenFile) -> Vec<u8> {
    if let Some(name) = f.anon_name() {
        return name;
    }
    if let FileKind::Pipe(end) = &f.kind {
        if let Some(n) = &end.pipe.node {
            // A FIFO: its path.
            return p.vfs.path_of_node(n);
        }
    }
    if let Some(n) = f.node() {
        return p.vfs.path_of_node(n);
    }
    let st: Stat = p.stat_of(f);
    match st.mode & S_IFMT {
        S_IFCHR => match p.vfs.terminal() {
            Some(t) => p.vfs.path_of_node(&t),
            None => format!("anon_inode:[{}]", st.ino).into_bytes(),
        },
        S_IFIFO => format!("pipe:[{}]", st.ino).into_bytes(),
        S_IFSOCK => format!("socket:[{}]", st.ino).into_bytes(),
        _ => b"anon_inode:[unknown]".to_vec(),
    }
}

/// readlink(2) of a synthetic link.
pub fn readlink(p: &Process, link: &Node) -> Result<Vec<u8>, Errno> {
    if link.file_type() != S_IFLNK {
        return Err(EINVAL);
    }
    let (_, path) = key_path(link)?;
    let Some(pp) = pid_path(&path) else {
        return self_link_target(p, &path);
    };
    let view = View::new(p);
    let q = view.process(pp.pid).ok_or(ENOENT)?;
    let rest: Vec<&[u8]> = pp.rest.iter().map(Vec::as_slice).collect();
    match rest.as_slice() {
        [b"exe"] => q
            .exe_node
            .as_ref()
            .map(|n| q.vfs.path_of_node(n))
            .ok_or(ENOENT),
        [b"cwd"] => {
            let mut path = q.vfs.path_of(&q.cwd());
            if q.cwd().meta.borrow().nlink == 0 {
                path.extend_from_slice(b" (deleted)");
            }
            Ok(path)
        }
        [b"root"] => Ok(b"/".to_vec()),
        [b"fd", n] => {
            let f = q.fds.get(number(n).ok_or(ENOENT)?).map_err(|_| ENOENT)?;
            Ok(fd_target(q, &f))
        }
        _ => Err(EINVAL),
    }
}

/// Opens the synthetic node `node` (after the caller's permission checks): a file's
/// contents are generated now; an open file reached through `/proc/PID/fd/N` is opened
/// again.
pub fn open(p: &mut Process, node: &Node, flags: u32) -> Result<Rc<OpenFile>, Errno> {
    let acc = flags & O_ACCMODE;
    let key = node.synthetic_key().ok_or(EINVAL)?;
    let (fs, path) = match key.downcast_ref::<Key>() {
        Some(Key::Open(f)) => return reopen(f, flags),
        Some(Key::Path { fs, path }) => (*fs, path.clone()),
        None => return Err(EINVAL),
    };
    let keep = flags & (O_ACCMODE | SETFL_MASK | O_DIRECTORY);
    if node.is_dir() {
        return Ok(OpenFile::new(FileKind::Node(node.clone()), keep));
    }
    if acc != O_RDONLY {
        match fs {
            Fs::Sys => return Err(EROFS),
            // Changing kernel settings is not supported.
            Fs::Proc if path.first().is_some_and(|c| c == b"sys") => return Err(EACCES),
            Fs::Proc => {}
        }
    }
    let data = generate(p, fs, &path)?;
    let snap = Inode::with_snapshot(node, data)?;
    Ok(OpenFile::new(FileKind::Node(snap), keep))
}

/// Opens again an open file that has no node, as opening `/proc/PID/fd/N` does.
fn reopen(f: &Rc<OpenFile>, flags: u32) -> Result<Rc<OpenFile>, Errno> {
    let acc = flags & O_ACCMODE;
    let keep = flags & (O_ACCMODE | SETFL_MASK);
    match &f.kind {
        FileKind::HostStdin if acc == O_RDONLY => Ok(OpenFile::new(FileKind::HostStdin, keep)),
        FileKind::HostStdout if acc == O_WRONLY => Ok(OpenFile::new(FileKind::HostStdout, keep)),
        FileKind::HostStderr if acc == O_WRONLY => Ok(OpenFile::new(FileKind::HostStderr, keep)),
        FileKind::HostStdin | FileKind::HostStdout | FileKind::HostStderr => Err(EACCES),
        FileKind::Node(n) => Err(if n.is_dir() { EISDIR } else { EINVAL }),
        // A pipe opens as a FIFO does: a new end, in any mode, whatever the old end's.
        FileKind::Pipe(end) => {
            if acc == 3 {
                return Err(EINVAL);
            }
            let (read, write) = (acc != O_WRONLY, acc != O_RDONLY);
            let e = super::pipe::PipeEnd::new(end.pipe.clone(), read, write);
            Ok(OpenFile::new(FileKind::Pipe(e), keep))
        }
        // Sockets and anonymous inodes (eventfd, timerfd, epoll) cannot be opened.
        FileKind::Socket(_) | FileKind::EventFd(_) | FileKind::TimerFd(_) | FileKind::Epoll(_) => {
            Err(ENXIO)
        }
    }
}

/// write(2) to a synthetic file: `comm` renames the process (as `PR_SET_NAME`); other
/// process files refuse with EINVAL and `/proc`'s own with EIO, as Linux's do.
pub fn write(p: &mut Process, node: &Node, data: &[u8]) -> Result<usize, Errno> {
    if node.is_dir() {
        return Err(EISDIR);
    }
    let (fs, path) = key_path(node)?;
    if fs == Fs::Sys {
        return Err(EROFS);
    }
    let Some(pp) = pid_path(&path) else {
        return Err(EIO);
    };
    if pp.pid != p.pid {
        return Err(ESRCH);
    }
    if pp.rest.len() == 1 && pp.rest[0] == b"comm" {
        let n = data.len().min(15);
        let name = data[..n].split(|&c| c == 0).next().unwrap_or(&[]);
        p.comm = name.to_vec();
        return Ok(data.len());
    }
    Err(EINVAL)
}

/// The `statfs` of the mount `node` is on (`struct statfs`, asm-generic 64-bit).
pub fn statfs(p: &Process, node: &Node) -> [u8; 120] {
    let m = p.vfs.mount_of(node.dev.get());
    let (blocks, free, files, ffree) = match m.fstype {
        // Volumes: WASI cannot tell the host file system's size; what Docker's overlay
        // shows of a roomy disk.
        "wasi" => (1u64 << 20, 1 << 19, 1 << 20, 1 << 19),
        // The in-memory layer (the root's writable layer, /dev, /dev/shm): its files may
        // fill half the memory limit, as a tmpfs is sized by default. The root also holds
        // the image, which is used space (as on Docker's overlay, where `df /` is never 0).
        "overlay" | "tmpfs" => {
            let b = p.mem_limit() / 2 / 4096;
            let free = b.saturating_sub(crate::mem::budget::files() / 4096);
            let (image, inodes) = match m.fstype {
                "overlay" => p.vfs.image_size(),
                _ => (0, 0),
            };
            (b + image.div_ceil(4096), free, b + inodes, free)
        }
        _ => (0, 0, 0, 0),
    };
    let mut flags = 0x20u64; // ST_VALID
    for (opt, bit) in [
        ("ro", 1u64),
        ("nosuid", 2),
        ("nodev", 4),
        ("noexec", 8),
        ("relatime", 0x400),
    ] {
        if m.mnt_opts.split(',').any(|o| o == opt) {
            flags |= bit;
        }
    }
    let mut b = [0u8; 120];
    let longs = [m.magic, 4096, blocks, free, free, files, ffree];
    for (i, v) in longs.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b[56..60].copy_from_slice(&m.dev.to_le_bytes()); // f_fsid
    b[64..72].copy_from_slice(&255u64.to_le_bytes()); // f_namelen
    b[72..80].copy_from_slice(&4096u64.to_le_bytes()); // f_frsize
    b[80..88].copy_from_slice(&flags.to_le_bytes());
    b
}

/// Where the program image is, as `execve` laid it out (for `stat`, `cmdline`, `auxv`).
#[derive(Debug, Clone, Default)]
pub struct ExecLayout {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// The auxiliary vector as given (key/value pairs up to and with `AT_NULL`).
    pub auxv: Vec<u8>,
}

impl ExecLayout {
    /// Reads the layout from the program headers `phdrs` (loaded at `bias`) and the initial stack
    /// at `sp`, as Linux's `binfmt_elf` records it in the `mm`.
    pub fn new(phdrs: &[elf::Phdr], bias: u64, mem: &mut Memory, sp: u64) -> ExecLayout {
        let mut l = ExecLayout {
            start_code: u64::MAX,
            start_stack: sp,
            ..ExecLayout::default()
        };
        for ph in phdrs.iter().filter(|ph| ph.p_type == 1) {
            let exec = ph.flags & 1 != 0;
            if exec {
                l.start_code = l.start_code.min(ph.vaddr + bias);
                l.end_code = l.end_code.max(ph.vaddr + ph.filesz + bias);
            }
            l.start_data = l.start_data.max(ph.vaddr + bias);
            l.end_data = l.end_data.max(ph.vaddr + ph.filesz + bias);
        }
        if l.start_code == u64::MAX {
            l.start_code = 0;
        }
        // argc, argv[], NULL, envp[], NULL, auxv.
        let mut word = |at: u64| mem.read_u64(at).unwrap_or(0);
        let argc = word(sp);
        let mut at = sp + 8;
        let mut strings = |at: &mut u64, count: Option<u64>| -> Vec<u64> {
            let mut v = Vec::new();
            loop {
                let w = word(*at);
                *at += 8;
                if w == 0 || count.is_some_and(|c| v.len() as u64 == c) {
                    return v;
                }
                v.push(w);
            }
        };
        let argv = strings(&mut at, Some(argc));
        let envp = strings(&mut at, None);
        let auxv_at = at;
        let end_of = |mem: &mut Memory, s: u64| {
            let len = mem
                .read_cstr(s, 128 * 1024)
                .ok()
                .flatten()
                .map_or(0, |v| v.len());
            s + len as u64 + 1
        };
        l.arg_start = argv.first().copied().unwrap_or(0);
        l.arg_end = argv.last().map_or(l.arg_start, |&s| end_of(mem, s));
        l.env_start = envp.first().copied().unwrap_or(l.arg_end);
        l.env_end = envp.last().map_or(l.env_start, |&s| end_of(mem, s));
        let mut at = auxv_at;
        loop {
            let k = mem.read_u64(at).unwrap_or(0);
            let v = mem.read_u64(at + 8).unwrap_or(0);
            l.auxv.extend_from_slice(&k.to_le_bytes());
            l.auxv.extend_from_slice(&v.to_le_bytes());
            at += 16;
            if k == elf::AT_NULL || l.auxv.len() >= 64 * 16 {
                break;
            }
        }
        l
    }
}

/// Seconds since the guest started ("boot"), in nanoseconds.
fn uptime_ns() -> u64 {
    crate::host::now_monotonic_ns()
}

/// The boot time (`btime`), seconds since the epoch.
fn boot_time() -> u64 {
    (crate::host::now_realtime_ns().saturating_sub(uptime_ns())) / 1_000_000_000
}

fn uuid(b: [u8; 16]) -> String {
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn random_uuid() -> String {
    let mut b = [0u8; 16];
    crate::host::random(&mut b);
    uuid(b)
}

/// The contents of `fs`'s file `path`, now.
fn generate(p: &mut Process, fs: Fs, path: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
    if fs == Fs::Sys {
        return match join(path).as_slice() {
            b"devices/system/cpu/online"
            | b"devices/system/cpu/possible"
            | b"devices/system/cpu/present" => Ok(b"0\n".to_vec()),
            b"fs/cgroup/cgroup.controllers" => Ok(b"memory\n".to_vec()),
            // The guest's memory budget (`mem::budget`) is the container's memory limit.
            b"fs/cgroup/memory.max" => Ok(format!("{}\n", p.mem_limit()).into_bytes()),
            b"fs/cgroup/memory.current" => {
                Ok(format!("{}\n", crate::mem::budget::used()).into_bytes())
            }
            _ => Err(ENOENT),
        };
    }
    if let Some(pp) = pid_path(path) {
        if pp.pid != p.pid {
            return Err(ESRCH);
        }
        let name = pp.rest.iter().map(Vec::as_slice).collect::<Vec<_>>();
        return match name.as_slice() {
            [b"fdinfo", n] => fdinfo(p, number(n).ok_or(ENOENT)?),
            [n] => pid_file(p, n),
            _ => Err(ENOENT),
        };
    }
    let s = match join(path).as_slice() {
        b"cpuinfo" => cpuinfo(),
        b"filesystems" => ["sysfs", "tmpfs", "proc", "cgroup2", "devpts", "overlay"]
            .iter()
            .map(|f| format!("nodev\t{f}\n"))
            .collect(),
        b"loadavg" => format!("0.00 0.00 0.00 1/{n} {last}\n", n = 1, last = p.pid),
        b"meminfo" => meminfo(p),
        b"stat" => {
            let ticks = uptime_ns() / (1_000_000_000 / HZ);
            let line = format!("{ticks} 0 0 0 0 0 0 0 0 0\n");
            format!(
                "cpu  {line}cpu0 {line}intr 0\nctxt 0\nbtime {}\nprocesses 1\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
                boot_time()
            )
        }
        b"uptime" => {
            let cs = uptime_ns() / 10_000_000;
            format!("{}.{:02} 0.00\n", cs / 100, cs % 100)
        }
        b"version" => format!(
            "Linux version {KERNEL_RELEASE} (rvbox@rvbox) (rvbox riscv64 emulator) {KERNEL_VERSION}\n"
        ),
        b"sys/fs/file-max" => "9223372036854775807\n".into(),
        b"sys/fs/nr_open" => format!("{NOFILE}\n"),
        b"sys/kernel/cap_last_cap" => "40\n".into(),
        b"sys/kernel/hostname" => format!("{}\n", String::from_utf8_lossy(&p.hostname)),
        b"sys/kernel/ngroups_max" => "65536\n".into(),
        b"sys/kernel/osrelease" => format!("{KERNEL_RELEASE}\n"),
        b"sys/kernel/ostype" => "Linux\n".into(),
        b"sys/kernel/pid_max" => "32768\n".into(),
        b"sys/kernel/random/boot_id" => {
            static BOOT_ID: OnceLock<String> = OnceLock::new();
            format!("{}\n", BOOT_ID.get_or_init(random_uuid))
        }
        b"sys/kernel/random/uuid" => format!("{}\n", random_uuid()),
        b"sys/kernel/version" => format!("{KERNEL_VERSION}\n"),
        b"sys/vm/max_map_count" => "65530\n".into(),
        // Mappings never fail for lack of memory up front (Linux's heuristic default).
        b"sys/vm/overcommit_memory" => "0\n".into(),
        _ => return Err(ENOENT),
    };
    Ok(s.into_bytes())
}

fn cpuinfo() -> String {
    format!(
        "processor\t: 0\nhart\t\t: 0\nisa\t\t: {ISA}\nmmu\t\t: sv39\nmvendorid\t: 0x0\nmarchid\t\t: 0x0\nmimpid\t\t: 0x0\nhart isa\t: {ISA}\n\n"
    )
}

/// `/proc/meminfo`: the guest's memory limit is its RAM; what its processes have touched
/// is used.
fn meminfo(p: &Process) -> String {
    let total = p.mem_limit() / 1024;
    let used = (crate::mem::budget::used() / 1024).min(total);
    let free = total - used;
    let vm = vm_stats(p);
    let mut s = String::new();
    let mut kb = |name: &str, v: u64| {
        let _ = writeln!(s, "{:<16}{v:>8} kB", format!("{name}:"));
    };
    for (name, v) in [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", used),
        ("Inactive", 0),
        ("Active(anon)", used),
        ("Inactive(anon)", 0),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", used),
        ("Mapped", 0),
        ("Shmem", 0),
        ("KReclaimable", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("SecPageTables", 0),
        ("NFS_Unstable", 0),
        ("Bounce", 0),
        ("WritebackTmp", 0),
        ("CommitLimit", total / 2),
        ("Committed_AS", vm.total / 1024),
    ] {
        kb(name, v);
    }
    for name in [
        "HugePages_Total",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
    ] {
        let _ = writeln!(s, "{:<16}{:>8}", format!("{name}:"), 0);
    }
    let _ = writeln!(s, "{:<16}{:>8} kB", "Hugepagesize:", 2048);
    let _ = writeln!(s, "{:<16}{:>8} kB", "Hugetlb:", 0);
    s
}

/// Sizes of a process's mappings, in bytes, as Linux's `mm` counts them.
struct VmStats {
    total: u64,
    /// Private writable, not stack (`VmData`).
    data: u64,
    stack: u64,
    /// Executable, not writable (`exec_vm`).
    exec: u64,
}

fn vm_stats(p: &Process) -> VmStats {
    let mut s = VmStats {
        total: 0,
        data: 0,
        stack: 0,
        exec: 0,
    };
    for (start, v) in p.mm.vmas() {
        let len = v.end - start;
        s.total += len;
        if v.kind == VmaKind::Stack {
            s.stack += len;
        } else if v.prot & prot::WRITE != 0 {
            s.data += len;
        } else if v.prot & prot::EXEC != 0 {
            s.exec += len;
        }
    }
    s
}

/// The pid's `comm` escaped as `status` shows it.
fn escaped_comm(comm: &[u8]) -> String {
    let mut s = String::new();
    for &c in comm {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x0b => s.push_str("\\v"),
            0x0c => s.push_str("\\f"),
            _ => s.push(c as char),
        }
    }
    s
}

/// The signal sets of `status` and `stat`: (blocked, ignored, caught), bit `sig - 1`.
fn sigsets(p: &Process) -> (u64, u64, u64) {
    let (mut ign, mut cgt) = (0u64, 0u64);
    for sig in 1..=super::signal::NSIG {
        let h = p.signals.actions[sig].handler;
        if h == SIG_IGN {
            ign |= 1 << (sig - 1);
        } else if h != SIG_DFL {
            cgt |= 1 << (sig - 1);
        }
    }
    (p.signals.mask, ign, cgt)
}

/// `FDSize`: the descriptor table's size (a multiple of 64, as Linux grows it).
fn fd_size(p: &Process) -> usize {
    let max = p
        .fds
        .fds()
        .map(|(fd, _)| fd as usize + 1)
        .max()
        .unwrap_or(0);
    max.max(1).next_multiple_of(64)
}

/// The pages of text (`VmExe`), as Linux computes them from the code segment.
fn text_bytes(p: &Process, exec_vm: u64) -> u64 {
    let l = &p.image;
    if l.end_code <= l.start_code {
        return 0;
    }
    let text = l.end_code.next_multiple_of(PAGE_SIZE) - (l.start_code & !(PAGE_SIZE - 1));
    text.min(exec_vm)
}

fn pid_file(p: &mut Process, name: &[u8]) -> Result<Vec<u8>, Errno> {
    let s = match name {
        b"auxv" => return Ok(p.image.auxv.clone()),
        b"cmdline" => return Ok(cmdline(p)),
        b"environ" => {
            let l = &p.image;
            return Ok(read_mem(&mut p.mem, l.env_start, l.env_end));
        }
        b"comm" => {
            let mut v = p.comm.clone();
            v.push(b'\n');
            return Ok(v);
        }
        b"cgroup" => "0::/\n".into(),
        b"limits" => limits(p),
        b"maps" => maps(p),
        b"mounts" => p
            .vfs
            .mounts()
            .into_iter()
            .map(|m| format!("{} {} {} {} 0 0\n", m.source, m.target, m.fstype, m.opts))
            .collect(),
        b"mountinfo" => p
            .vfs
            .mounts()
            .into_iter()
            .map(|m| {
                format!(
                    "{} {} 0:{} / {} {} - {} {} {}\n",
                    m.id, m.parent, m.dev, m.target, m.mnt_opts, m.fstype, m.source, m.sb_opts
                )
            })
            .collect(),
        b"stat" => stat(p),
        b"statm" => {
            let vm = vm_stats(p);
            let pages = |b: u64| b / PAGE_SIZE;
            format!(
                "{} {} 0 {} 0 {} 0\n",
                pages(vm.total),
                pages(p.mem.resident_bytes()),
                pages(text_bytes(p, vm.exec)),
                pages(vm.data + vm.stack)
            )
        }
        b"status" => status(p),
        _ => return Err(ENOENT),
    };
    Ok(s.into_bytes())
}

/// Reads guest memory `[start, end)` (what is readable of it).
fn read_mem(mem: &mut Memory, start: u64, end: u64) -> Vec<u8> {
    let len = end.saturating_sub(start).min(1 << 20) as usize;
    let mut v = vec![0u8; len];
    if mem.read_bytes(start, &mut v).is_err() {
        // Byte by byte up to the first unreadable one.
        let mut ok = 0;
        let mut b = [0u8; 1];
        while ok < len && mem.read_bytes(start + ok as u64, &mut b).is_ok() {
            v[ok] = b[0];
            ok += 1;
        }
        v.truncate(ok);
    }
    v
}

/// `cmdline`: the argument strings as they are now in memory. A program that wrote over
/// the final NUL (`setproctitle`) gets its string read on into the environment area, up
/// to a NUL, as Linux does.
fn cmdline(p: &mut Process) -> Vec<u8> {
    let l = p.image.clone();
    let mut v = read_mem(&mut p.mem, l.arg_start, l.arg_end);
    if v.last().is_some_and(|&c| c != 0) {
        v.extend(read_mem(&mut p.mem, l.arg_end, l.env_end));
        let n = v.iter().position(|&c| c == 0).unwrap_or(v.len());
        v.truncate(n);
    }
    v
}

fn fdinfo(p: &Process, fd: i32) -> Result<Vec<u8>, Errno> {
    const O_LARGEFILE: u32 = 0o100000;
    let e = p.fds.entry(fd).map_err(|_| ENOENT)?;
    let f = &e.file;
    let mut flags = f.flags.get() | O_LARGEFILE;
    if e.cloexec {
        flags |= O_CLOEXEC;
    }
    let st = p.stat_of(f);
    let mnt = p
        .vfs
        .mounts()
        .into_iter()
        .find(|m| m.dev as u64 == st.dev)
        .map_or(0, |m| m.id);
    Ok(format!(
        "pos:\t{}\nflags:\t0{:o}\nmnt_id:\t{}\nino:\t{}\n",
        f.pos.get(),
        flags,
        mnt,
        st.ino
    )
    .into_bytes())
}

fn limits(p: &Process) -> String {
    const NAMES: [(&str, &str); 16] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let mut s = format!(
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    let show = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    for (i, (name, unit)) in NAMES.iter().enumerate() {
        let (cur, max) = super::sys_misc::rlimit(p, i as u64).unwrap_or((u64::MAX, u64::MAX));
        let _ = write!(s, "{:<25} {:<20} {:<20} ", name, show(cur), show(max));
        if !unit.is_empty() {
            let _ = write!(s, "{unit:<10}");
        }
        s.push('\n');
    }
    s
}

/// `maps`: one line per mapping, padded as Linux pads them (names from column 73).
fn maps(p: &Process) -> String {
    let view = View::new(p);
    let mut s = String::new();
    for (start, v) in p.mm.vmas() {
        let (name, devno, ino, off) = match &v.kind {
            VmaKind::File(path) => {
                let (d, i) = match p
                    .vfs
                    .resolve(&view, &p.vfs.root(), path.as_bytes(), Follow::Yes)
                {
                    Ok(n) => (n.dev.get(), n.ino),
                    Err(_) => (0, 0),
                };
                (Some(path.as_str()), d, i, v.offset)
            }
            VmaKind::Heap => (Some("[heap]"), 0, 0, 0),
            VmaKind::Stack => (Some("[stack]"), 0, 0, 0),
            VmaKind::Vdso => (Some("[vdso]"), 0, 0, 0),
            VmaKind::Anon => (None, 0, 0, 0),
        };
        let line_start = s.len();
        let flag = |bit: u8, c: char| if v.prot & bit != 0 { c } else { '-' };
        let _ = write!(
            s,
            "{start:08x}-{:08x} {}{}{}p {off:08x} {:02x}:{:02x} {ino} ",
            v.end,
            flag(prot::READ, 'r'),
            flag(prot::WRITE, 'w'),
            flag(prot::EXEC, 'x'),
            devno >> 8,
            devno & 0xff,
        );
        if let Some(name) = name {
            while s.len() - line_start < 72 {
                s.push(' ');
            }
            s.push(' ');
            s.push_str(name);
        }
        s.push('\n');
    }
    s
}

fn status(p: &Process) -> String {
    let c = &p.creds;
    let vm = vm_stats(p);
    let rss = p.mem.resident_bytes();
    let text = text_bytes(p, vm.exec);
    let (blk, ign, cgt) = sigsets(p);
    // Docker's default capability set for root; none for other users.
    let caps: u64 = if c.euid == 0 { 0xa804_25fb } else { 0 };
    let groups: String = c
        .groups
        .iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let (sigq_max, _) = super::sys_misc::rlimit(p, 11).unwrap_or((u64::MAX, 0));
    let mut s = String::new();
    let _ = write!(
        s,
        "Name:\t{}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{}\nTracerPid:\t0\n",
        escaped_comm(&p.comm),
        p.umask(),
        p.ppid(),
        pid = p.pid
    );
    let _ = write!(
        s,
        "Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t{}\nGroups:\t{groups} \n",
        c.uid,
        c.euid,
        c.suid,
        c.euid,
        c.gid,
        c.egid,
        c.sgid,
        c.egid,
        fd_size(p)
    );
    let _ = write!(
        s,
        "NStgid:\t{pid}\nNSpid:\t{pid}\nNSpgid:\t{pid}\nNSsid:\t{pid}\nKthread:\t0\n",
        pid = p.pid
    );
    let kb = |b: u64| b / 1024;
    for (name, v) in [
        ("VmPeak", vm.total),
        ("VmSize", vm.total),
        ("VmLck", 0),
        ("VmPin", 0),
        ("VmHWM", rss),
        ("VmRSS", rss),
        ("RssAnon", rss),
        ("RssFile", 0),
        ("RssShmem", 0),
        ("VmData", vm.data),
        ("VmStk", vm.stack),
        ("VmExe", text),
        ("VmLib", vm.exec - text),
        ("VmPTE", 0),
        ("VmSwap", 0),
        ("HugetlbPages", 0),
    ] {
        let _ = writeln!(s, "{name}:\t{:>8} kB", kb(v));
    }
    let show_max = |v: u64| {
        if v == u64::MAX {
            u64::MAX.to_string()
        } else {
            v.to_string()
        }
    };
    let _ = write!(
        s,
        "CoreDumping:\t0\nTHP_enabled:\t0\nThreads:\t{}\nSigQ:\t0/{}\n",
        thread_count(p),
        show_max(sigq_max)
    );
    for (name, v) in [
        ("SigPnd", 0),
        ("ShdPnd", 0),
        ("SigBlk", blk),
        ("SigIgn", ign),
        ("SigCgt", cgt),
        ("CapInh", 0),
        ("CapPrm", caps),
        ("CapEff", caps),
        ("CapBnd", 0xa804_25fb),
        ("CapAmb", 0),
    ] {
        let _ = writeln!(s, "{name}:\t{v:016x}");
    }
    let _ = writeln!(s, "NoNewPrivs:\t{}", p.task.no_new_privs as u8);
    s.push_str(
        "Seccomp:\t0\nSeccomp_filters:\t0\nSpeculation_Store_Bypass:\tunknown\nSpeculationIndirectBranch:\tunknown\n",
    );
    s.push_str(
        "Cpus_allowed:\t1\nCpus_allowed_list:\t0\nMems_allowed:\t1\nMems_allowed_list:\t0\n",
    );
    s.push_str("voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n");
    s
}

/// The live threads of `p`'s thread group (CPython counts them before a fork, to warn).
fn thread_count(p: &Process) -> usize {
    p.kernel
        .borrow()
        .procs
        .get(&p.pid)
        .map_or(1, |e| e.threads.len().max(1))
}

/// `stat`: the 52 fields of `do_task_stat`.
fn stat(p: &Process) -> String {
    let vm = vm_stats(p);
    let (blk, ign, cgt) = sigsets(p);
    let tick = 1_000_000_000 / HZ;
    // CPU time as getrusage reports it (all user time: rvbox does not tell system time).
    use super::sys_misc::{cpu_time_ns, Cpu};
    let utime = cpu_time_ns(p, Cpu::Process) / tick;
    let cutime = cpu_time_ns(p, Cpu::Children) / tick;
    let start = p.started_ns / tick;
    let (tty_nr, tpgid) = if p.vfs.terminal().is_some() {
        (136 << 8, p.pid)
    } else {
        (0, -1)
    };
    let (rsslim, _) = super::sys_misc::rlimit(p, 5).unwrap_or((u64::MAX, 0));
    let l = &p.image;
    let low = 0x7fff_ffffu64;
    let fields: Vec<String> = vec![
        p.ppid().to_string(),
        p.pid.to_string(), // pgrp
        p.pid.to_string(), // session
        tty_nr.to_string(),
        tpgid.to_string(),
        "0".into(), // flags
        "0".into(), // minflt
        "0".into(), // cminflt
        "0".into(), // majflt
        "0".into(), // cmajflt
        utime.to_string(),
        "0".into(), // stime
        cutime.to_string(),
        "0".into(),  // cstime
        "20".into(), // priority
        "0".into(),  // nice
        thread_count(p).to_string(),
        "0".into(), // itrealvalue
        start.to_string(),
        vm.total.to_string(),
        (p.mem.resident_bytes() / PAGE_SIZE).to_string(),
        rsslim.to_string(),
        l.start_code.to_string(),
        l.end_code.to_string(),
        l.start_stack.to_string(),
        "0".into(), // kstkesp
        "0".into(), // kstkeip
        "0".into(), // pending signals
        (blk & low).to_string(),
        (ign & low).to_string(),
        (cgt & low).to_string(),
        "0".into(),  // wchan
        "0".into(),  // nswap
        "0".into(),  // cnswap
        "17".into(), // exit_signal: SIGCHLD
        "0".into(),  // processor
        "0".into(),  // rt_priority
        "0".into(),  // policy
        "0".into(),  // delayacct_blkio_ticks
        "0".into(),  // guest_time
        "0".into(),  // cguest_time
        l.start_data.to_string(),
        l.end_data.to_string(),
        p.mm.brk_start.to_string(),
        l.arg_start.to_string(),
        l.arg_end.to_string(),
        l.env_start.to_string(),
        l.env_end.to_string(),
        "0".into(), // exit_code
    ];
    format!(
        "{} ({}) R {}\n",
        p.pid,
        String::from_utf8_lossy(&p.comm),
        fields.join(" ")
    )
}

impl Process {
    /// Resolves `path` from `base` as this process sees the tree (its `/proc`).
    pub fn resolve(&self, base: &Node, path: &[u8], follow: Follow) -> Result<Node, Errno> {
        self.vfs.resolve(&View::new(self), base, path, follow)
    }

    /// `Vfs::resolve_parent` as this process sees the tree.
    pub fn resolve_parent(&self, base: &Node, path: &[u8]) -> Result<(Node, Vec<u8>), Errno> {
        self.vfs.resolve_parent(&View::new(self), base, path)
    }

    /// Looks `name` up in `dir` as this process sees the tree.
    pub fn lookup(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        self.vfs.lookup(&View::new(self), dir, name)
    }

    /// The entries of `dir` as this process sees the tree.
    pub fn list_dir(&self, dir: &Node) -> Result<Vec<(Vec<u8>, Node)>, Errno> {
        self.vfs.list(&View::new(self), dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::elf::{Phdr, AT_NULL, AT_PAGESZ};
    use crate::linux::mm::{VmaKind, STACK_TOP};
    use crate::vfs::Content;

    const RX: u8 = prot::READ | prot::EXEC;
    const RW: u8 = prot::READ | prot::WRITE;

    /// A process of the test image running /usr/bin/prog ("prog -x", A=1) with a small
    /// address space: text, data, bss, heap and stack.
    fn process() -> Process {
        let vfs = Rc::new(crate::vfs::tests::vfs());
        mount(&vfs);
        let mut p = Process::new(vfs);
        p.comm = b"my prog) x".to_vec();
        let prog = p.resolve(&p.vfs.root(), b"/bin/prog", Follow::Yes).unwrap();
        p.exe = p.vfs.path_of_node(&prog);
        p.exe_node = Some(prog);
        let file = || VmaKind::File("/usr/bin/prog".into());
        p.mm.map_fixed_at(&mut p.mem, 0x10000, 0x2000, RX, file(), 0);
        p.mm.map_fixed_at(&mut p.mem, 0x12000, 0x1000, RW, file(), 0x2000);
        p.mm.map_fixed(&mut p.mem, 0x13000, 0x1000, RW, VmaKind::Anon);
        p.mm.map_fixed(&mut p.mem, 0x20000, 0x3000, RW, VmaKind::Heap);
        p.mm.brk_start = 0x20000;
        p.mm.map_fixed(&mut p.mem, STACK_TOP - 0x10000, 0x10000, RW, VmaKind::Stack);
        let argv = [b"prog".to_vec(), b"-x".to_vec()];
        let sp = elf::build_stack(
            &mut p.mem,
            STACK_TOP,
            &argv,
            &[b"A=1".to_vec()],
            &[(AT_PAGESZ, 4096)],
            b"/usr/bin/prog",
        )
        .unwrap();
        let ph = |flags, offset, vaddr, filesz| Phdr {
            p_type: 1,
            flags,
            offset,
            vaddr,
            filesz,
            memsz: filesz,
        };
        let phdrs = [ph(5, 0, 0x10000, 0x1800), ph(6, 0x2000, 0x12000, 0x100)];
        p.image = ExecLayout::new(&phdrs, 0, &mut p.mem, sp);
        p
    }

    fn node(p: &Process, path: &str, follow: Follow) -> Result<Node, Errno> {
        p.resolve(&p.cwd(), path.as_bytes(), follow)
    }

    /// Opens and reads a file the way `openat` + `read` do.
    fn read(p: &mut Process, path: &str) -> Result<Vec<u8>, Errno> {
        let n = node(p, path, Follow::Yes)?;
        let f = open(p, &n, O_RDONLY)?;
        let n = f.node().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let k = match &*n.content.borrow() {
            Content::Synthetic(s) => s.read_at(0, &mut buf)?,
            _ => panic!("{path} is not synthetic"),
        };
        buf.truncate(k);
        Ok(buf)
    }

    fn text(p: &mut Process, path: &str) -> String {
        String::from_utf8(read(p, path).unwrap()).unwrap()
    }

    fn link(p: &Process, path: &str) -> String {
        let n = node(p, path, Follow::No).unwrap();
        String::from_utf8(readlink(p, &n).unwrap()).unwrap()
    }

    fn names(p: &Process, path: &str) -> Vec<String> {
        let d = node(p, path, Follow::Yes).unwrap();
        p.list_dir(&d)
            .unwrap()
            .into_iter()
            .map(|(n, _)| String::from_utf8(n).unwrap())
            .collect()
    }

    #[test]
    fn self_and_the_magic_links_resolve_like_linux() {
        let mut p = process();
        assert_eq!(link(&p, "/proc/self"), "1");
        assert_eq!(link(&p, "/proc/thread-self"), "1/task/1");
        assert_eq!(link(&p, "/proc/mounts"), "self/mounts");
        let status = node(&p, "/proc/self/status", Follow::Yes).unwrap();
        assert_eq!(p.vfs.path_of_node(&status), b"/proc/1/status");
        assert_eq!(status.dev.get(), dev::PROC);
        assert_eq!(status.meta.borrow().mode, S_IFREG | 0o444);
        // exe is the program's file, named with symlinks resolved.
        let exe = node(&p, "/proc/self/exe", Follow::Yes).unwrap();
        assert!(Rc::ptr_eq(&exe, p.exe_node.as_ref().unwrap()));
        assert_eq!(link(&p, "/proc/1/exe"), "/usr/bin/prog");
        // cwd and root jump to the directories, also in the middle of a path.
        p.set_cwd(node(&p, "/usr", Follow::Yes).unwrap());
        assert_eq!(link(&p, "/proc/self/cwd"), "/usr");
        assert!(Rc::ptr_eq(
            &node(&p, "/proc/self/cwd/bin/prog", Follow::Yes).unwrap(),
            &exe
        ));
        let f = node(&p, "/proc/self/root/etc/f", Follow::Yes).unwrap();
        assert!(Rc::ptr_eq(&f, &node(&p, "/etc/f", Follow::Yes).unwrap()));
        assert_eq!(link(&p, "/proc/self/root"), "/");
        // fd/N: the open file itself; the link's mode tells the access.
        let file = OpenFile::new(FileKind::Node(f.clone()), O_RDONLY);
        let fd = p.fds.install(file, true, 0).unwrap();
        assert_eq!(fd, 3);
        assert!(Rc::ptr_eq(
            &node(&p, "/proc/self/fd/3", Follow::Yes).unwrap(),
            &f
        ));
        assert!(Rc::ptr_eq(&node(&p, "/dev/fd/3", Follow::Yes).unwrap(), &f));
        assert_eq!(link(&p, "/proc/self/fd/3"), "/etc/f");
        let l = node(&p, "/proc/self/fd/3", Follow::No).unwrap();
        assert_eq!(l.meta.borrow().mode, S_IFLNK | 0o500);
        assert_eq!(l.size(), 64);
        assert_eq!(node(&p, "/proc/self/fd/9", Follow::No).err(), Some(ENOENT));
        assert_eq!(
            node(&p, "/proc/self/fd/3/x", Follow::Yes).err(),
            Some(ENOTDIR)
        );
        // The host's stdin has no node: following it gives one that reopens it.
        let stdin = node(&p, "/dev/stdin", Follow::Yes).unwrap();
        if !stdin.is_synthetic() {
            assert!(Rc::ptr_eq(&stdin, &p.vfs.terminal().unwrap()));
        } else {
            let again = open(&mut p, &stdin, O_RDONLY).unwrap();
            assert!(matches!(again.kind, FileKind::HostStdin));
            assert_eq!(open(&mut p, &stdin, O_WRONLY).err(), Some(EACCES));
            assert!(
                link(&p, "/dev/fd/0").starts_with("pipe:[")
                    || link(&p, "/dev/fd/0").starts_with("anon_inode:")
            );
        }
        // Directories under /proc have paths, parents and entries.
        let fd_dir = node(&p, "/proc/self/fd", Follow::Yes).unwrap();
        assert_eq!(p.vfs.path_of(&fd_dir), b"/proc/1/fd");
        assert_eq!(fd_dir.meta.borrow().mode, S_IFDIR | 0o500);
        let up = p.resolve(&fd_dir, b"..", Follow::Yes).unwrap();
        assert_eq!(p.vfs.path_of(&up), b"/proc/1");
        assert_eq!(names(&p, "/proc/self/fd"), ["0", "1", "2", "3"]);
        assert_eq!(names(&p, "/proc/self/task"), ["1"]);
        assert!(!names(&p, "/proc/self/task/1").contains(&"task".to_string()));
        let root = names(&p, "/proc");
        for want in ["1", "self", "sys", "meminfo", "cpuinfo"] {
            assert!(root.contains(&want.to_string()), "{want} in {root:?}");
        }
        for missing in ["/proc/2", "/proc/01", "/proc/1/nope", "/proc/self/task/2"] {
            assert_eq!(
                node(&p, missing, Follow::Yes).err(),
                Some(ENOENT),
                "{missing}"
            );
        }
        let proc_root = node(&p, "/proc", Follow::Yes).unwrap();
        assert_eq!(proc_root.meta.borrow().nlink, 2 + 2, "sys and 1");
    }

    #[test]
    fn status_stat_and_statm() {
        let mut p = process();
        p.creds.groups = vec![5, 27];
        let s = text(&mut p, "/proc/self/status");
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "Name:\tmy prog) x");
        assert_eq!(
            &lines[1..6],
            [
                "Umask:\t0022",
                "State:\tR (running)",
                "Tgid:\t1",
                "Ngid:\t0",
                "Pid:\t1"
            ]
        );
        assert!(s.contains("\nPPid:\t0\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nGroups:\t5 27 \n"));
        // 0x17000 bytes mapped: text 8k, data 4k + bss 4k + heap 12k, stack 64k.
        assert!(s.contains("\nVmSize:\t      92 kB\n"), "{s}");
        assert!(s.contains("\nVmData:\t      20 kB\nVmStk:\t      64 kB\nVmExe:\t       8 kB\nVmLib:\t       0 kB\n"), "{s}");
        assert!(s.contains("\nThreads:\t1\n"));
        assert!(s.contains("\nSigBlk:\t0000000000000000\n"));
        assert!(s.ends_with("nonvoluntary_ctxt_switches:\t0\n"));

        p.signals.mask = 1 << 1; // SIGINT blocked
        p.signals.actions[15].handler = 0x1234; // SIGTERM caught
        p.signals.actions[13].handler = SIG_IGN; // SIGPIPE ignored
        let s = text(&mut p, "/proc/self/status");
        assert!(s.contains("\nSigBlk:\t0000000000000002\nSigIgn:\t0000000000001000\nSigCgt:\t0000000000004000\n"), "{s}");

        let st = text(&mut p, "/proc/self/stat");
        assert!(st.ends_with('\n'));
        // As ps parses it: the name is between the first '(' and the last ')'.
        let (head, rest) = st.trim_end().split_at(st.rfind(')').unwrap());
        assert_eq!(head, "1 (my prog) x");
        let f: Vec<&str> = rest[2..].split(' ').collect();
        assert_eq!(f.len(), 50, "52 fields in all: {st}");
        assert_eq!(f[0], "R");
        assert_eq!(f[1], "0", "ppid");
        assert_eq!(&f[2..4], ["1", "1"], "pgrp and session");
        assert_eq!(f[20].parse::<u64>().unwrap(), 0x17000, "vsize");
        assert_eq!(f[23].parse::<u64>().unwrap(), 0x10000, "startcode");
        assert_eq!(f[24].parse::<u64>().unwrap(), 0x11800, "endcode");
        assert_eq!(f[25].parse::<u64>().unwrap(), p.image.start_stack);
        assert_eq!(f[29], "2", "blocked");
        assert_eq!(f[35], "17", "exit signal");
        assert_eq!(f[44].parse::<u64>().unwrap(), 0x20000, "start_brk");
        assert_eq!(f[45].parse::<u64>().unwrap(), p.image.arg_start);
        assert_eq!(f[49], "0", "exit code");

        let statm = text(&mut p, "/proc/self/statm");
        let v: Vec<u64> = statm
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(v.len(), 7);
        assert_eq!(
            (v[0], v[3], v[5]),
            (0x17, 2, 5 + 16),
            "size, text, data+stack"
        );
    }

    #[test]
    fn maps_lists_the_mappings_as_linux_formats_them() {
        let mut p = process();
        let ino = node(&p, "/usr/bin/prog", Follow::Yes).unwrap().ino;
        let m = text(&mut p, "/proc/self/maps");
        let lines: Vec<&str> = m.lines().collect();
        let named = |head: String, name: &str| format!("{head:<72} {name}");
        assert_eq!(
            lines[0],
            named(
                format!("00010000-00012000 r-xp 00000000 00:2a {ino} "),
                "/usr/bin/prog"
            )
        );
        assert_eq!(
            lines[1],
            named(
                format!("00012000-00013000 rw-p 00002000 00:2a {ino} "),
                "/usr/bin/prog"
            )
        );
        assert_eq!(lines[2], "00013000-00014000 rw-p 00000000 00:00 0 ");
        assert_eq!(
            lines[3],
            named("00020000-00023000 rw-p 00000000 00:00 0 ".into(), "[heap]")
        );
        assert!(
            lines[4].starts_with("3fffff0000-4000000000 rw-p ") || lines[4].ends_with(" [stack]")
        );
        assert_eq!(lines.len(), 5);
        // A protection change splits the file mapping; the offsets follow.
        p.mm.protect(&mut p.mem, 0x11000, 0x1000, prot::READ);
        let m = text(&mut p, "/proc/self/maps");
        assert!(m.contains("00011000-00012000 r--p 00001000 00:2a"), "{m}");
        assert_eq!(m.find('\n').unwrap(), 72 + 1 + "/usr/bin/prog".len());
    }

    #[test]
    fn cmdline_environ_auxv_and_comm() {
        let mut p = process();
        assert_eq!(read(&mut p, "/proc/self/cmdline").unwrap(), b"prog\0-x\0");
        assert_eq!(read(&mut p, "/proc/self/environ").unwrap(), b"A=1\0");
        let auxv = read(&mut p, "/proc/self/auxv").unwrap();
        assert_eq!(auxv.len() % 16, 0);
        assert_eq!(
            &auxv[..16],
            [&AT_PAGESZ.to_le_bytes()[..], &4096u64.to_le_bytes()].concat()
        );
        assert_eq!(
            &auxv[auxv.len() - 16..],
            [0u8; 16],
            "ends with AT_NULL ({AT_NULL})"
        );
        // A program that wrote over its arguments (setproctitle) shows its new title.
        let l = p.image.clone();
        p.mem.write_bytes(l.arg_end - 1, b"!").unwrap();
        assert_eq!(read(&mut p, "/proc/self/cmdline").unwrap(), b"prog");
        p.mem.write_bytes(l.arg_start, b"title: ").unwrap();
        assert_eq!(read(&mut p, "/proc/self/cmdline").unwrap(), b"title: !A=1");
        // comm: writing renames (15 bytes at most, kept as written).
        let comm = node(&p, "/proc/self/comm", Follow::Yes).unwrap();
        assert_eq!(write(&mut p, &comm, b"hello-world-long-name\n"), Ok(22));
        assert_eq!(text(&mut p, "/proc/self/comm"), "hello-world-lon\n");
        assert_eq!(write(&mut p, &comm, b"ab\n"), Ok(3));
        assert_eq!(text(&mut p, "/proc/self/comm"), "ab\n\n");
        let status = node(&p, "/proc/self/status", Follow::Yes).unwrap();
        assert_eq!(write(&mut p, &status, b"x"), Err(EINVAL));
        let meminfo = node(&p, "/proc/meminfo", Follow::Yes).unwrap();
        assert_eq!(write(&mut p, &meminfo, b"x"), Err(EIO));
        let sysctl = node(&p, "/proc/sys/vm/overcommit_memory", Follow::Yes).unwrap();
        assert_eq!(open(&mut p, &sysctl, O_WRONLY).err(), Some(EACCES));
    }

    #[test]
    fn system_files() {
        let mut p = process();
        let limit = crate::mem::budget::INITIAL_LIMIT / 1024;
        let mi = text(&mut p, "/proc/meminfo");
        assert!(
            mi.starts_with(&format!("MemTotal:       {limit:>8} kB\nMemFree:        ")),
            "{mi}"
        );
        assert!(mi.contains("\nSwapTotal:             0 kB\n"));
        assert!(mi.contains("\nHugePages_Total:       0\n"));
        assert_eq!(
            text(&mut p, "/proc/cpuinfo"),
            "processor\t: 0\nhart\t\t: 0\nisa\t\t: rv64imafdc_zicntr_zicsr_zifencei\nmmu\t\t: sv39\nmvendorid\t: 0x0\nmarchid\t\t: 0x0\nmimpid\t\t: 0x0\nhart isa\t: rv64imafdc_zicntr_zicsr_zifencei\n\n"
        );
        let up = text(&mut p, "/proc/uptime");
        let (a, b) = up.trim_end().split_once(' ').unwrap();
        assert!(a.parse::<f64>().is_ok() && a.split_once('.').unwrap().1.len() == 2 && b == "0.00");
        assert_eq!(text(&mut p, "/proc/loadavg"), "0.00 0.00 0.00 1/1 1\n");
        let stat = text(&mut p, "/proc/stat");
        assert!(stat.starts_with("cpu  ") && stat.contains("\ncpu0 ") && stat.contains("\nbtime "));
        assert_eq!(text(&mut p, "/proc/sys/kernel/ostype"), "Linux\n");
        assert_eq!(
            text(&mut p, "/proc/sys/kernel/osrelease"),
            format!("{KERNEL_RELEASE}\n")
        );
        assert_eq!(text(&mut p, "/proc/sys/kernel/hostname"), "rvbox\n");
        let id = text(&mut p, "/proc/sys/kernel/random/boot_id");
        assert_eq!(
            id,
            text(&mut p, "/proc/sys/kernel/random/boot_id"),
            "one per boot"
        );
        assert_ne!(
            text(&mut p, "/proc/sys/kernel/random/uuid"),
            text(&mut p, "/proc/sys/kernel/random/uuid")
        );
        assert_eq!(id.len(), 37);
        assert_eq!(text(&mut p, "/proc/sys/vm/overcommit_memory"), "0\n");
        assert_eq!(text(&mut p, "/proc/version"), format!("Linux version {KERNEL_RELEASE} (rvbox@rvbox) (rvbox riscv64 emulator) {KERNEL_VERSION}\n"));
        let mounts = text(&mut p, "/proc/mounts");
        assert_eq!(
            mounts.lines().next(),
            Some("overlay / overlay rw,relatime 0 0")
        );
        assert!(mounts.contains("\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"));
        let mi = text(&mut p, "/proc/self/mountinfo");
        assert!(
            mi.contains("\n401 400 0:43 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"),
            "{mi}"
        );
        assert_eq!(mi.lines().count(), vfs::MOUNTS.len());
        let limits = text(&mut p, "/proc/self/limits");
        assert_eq!(
            limits.lines().next(),
            Some("Limit                     Soft Limit           Hard Limit           Units     ")
        );
        assert!(limits.contains("\nMax open files            1024                 1024                 files     \n"), "{limits}");
        assert!(limits
            .contains("\nMax nice priority         unlimited            unlimited            \n"));
        assert_eq!(text(&mut p, "/proc/self/cgroup"), "0::/\n");
        let f = node(&p, "/etc/f", Follow::Yes).unwrap();
        let fd = p
            .fds
            .install(OpenFile::new(FileKind::Node(f), O_RDONLY), true, 0)
            .unwrap();
        p.fds.get(fd).unwrap().pos.set(2);
        assert_eq!(
            text(&mut p, "/proc/self/fdinfo/3"),
            "pos:\t2\nflags:\t02100000\nmnt_id:\t400\nino:\t7\n"
        );
    }

    #[test]
    fn sys_and_statfs() {
        let mut p = process();
        assert_eq!(
            names(&p, "/sys/devices/system/cpu"),
            ["cpu0", "online", "possible", "present"]
        );
        for f in ["online", "possible", "present"] {
            assert_eq!(text(&mut p, &format!("/sys/devices/system/cpu/{f}")), "0\n");
        }
        assert_eq!(
            names(&p, "/sys/fs/cgroup"),
            ["cgroup.controllers", "memory.current", "memory.max"]
        );
        crate::mem::budget::set_limit(64 << 20, crate::mem::budget::Source::Host);
        assert_eq!(text(&mut p, "/sys/fs/cgroup/memory.max"), "67108864\n");
        let used: u64 = text(&mut p, "/sys/fs/cgroup/memory.current")
            .trim()
            .parse()
            .unwrap();
        assert_eq!(used, crate::mem::budget::used());
        assert!(used > 0, "the test process has written pages");
        let mi = text(&mut p, "/proc/meminfo");
        assert!(mi.starts_with("MemTotal:          65536 kB\n"), "{mi}");
        let cg = node(&p, "/sys/fs/cgroup", Follow::Yes).unwrap();
        assert_eq!(cg.dev.get(), dev::CGROUP);
        let online = node(&p, "/sys/devices/system/cpu/online", Follow::Yes).unwrap();
        assert_eq!(open(&mut p, &online, O_WRONLY).err(), Some(EROFS));
        let sys = node(&p, "/sys", Follow::Yes).unwrap();
        assert_eq!(p.vfs.link(&sys, b"x", &online).err(), Some(EROFS));
        let magic = |p: &Process, path: &str| {
            let b = statfs(p, &node(p, path, Follow::Yes).unwrap());
            (
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u64::from_le_bytes(b[80..88].try_into().unwrap()),
            )
        };
        assert_eq!(magic(&p, "/proc/self"), (0x9fa0, 0x20 | 2 | 4 | 8 | 0x400));
        assert_eq!(magic(&p, "/sys/devices").0, 0x6265_6572);
        assert_eq!(magic(&p, "/sys/devices").1 & 1, 1, "read-only");
        assert_eq!(magic(&p, "/dev/shm").0, 0x0102_1994);
        assert_eq!(magic(&p, "/dev/null").0, 0x0102_1994);
        assert_eq!(magic(&p, "/etc/f").0, 0x794c_7630);
    }
}
