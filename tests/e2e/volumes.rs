//! Volumes (`-v HOST:GUEST[:ro]`): host directories in the container, under `rvbox run`
//! and Node. What the guest does reaches the host when the call returns, so nothing is
//! lost however the run ends.

use std::path::Path;

use crate::support::*;

/// File work in a volume: create, append, directories, rename, hard and symbolic links,
/// times, truncate, a script of the host run from the volume, listing, removal.
const WORK: &str = r#"
set -e
cd /work
cat in.txt
printf 'line1\nline2\n' > out.txt
echo appended >> out.txt
mkdir -p a/b/c
echo deep > a/b/c/f
mv a/b/c/f a/moved
ln a/moved a/hard
stat -c 'links %h size %s' a/moved
rm a/hard
ln -s moved a/rel
cat a/rel
touch -d '2001-02-03 04:05:06 UTC' out.txt
cp in.txt cut.txt
truncate -s 3 cut.txt
./tool.sh arg
rmdir a/b/c a/b
find . | sort
python3 -c 'import os; os.replace("cut.txt", "a/cut"); f = open("a/synced", "w"); f.write("x"); f.flush(); os.fsync(f.fileno())'
ls -l --time-style=+%Y out.txt | cut -d' ' -f1,5,6,7
stat -c '%U %a' in.txt tool.sh a
grep ' /work ' /proc/self/mounts
"#;

fn setup_work(dir: &Path) {
    std::fs::write(dir.join("in.txt"), "from the host\n").unwrap();
    std::fs::write(
        dir.join("tool.sh"),
        "#!/bin/sh\necho \"tool ran with $1 in $PWD\"\n",
    )
    .unwrap();
}

#[test]
fn guest_file_work_reaches_the_host_under_every_host() {
    let m = module("debian");
    let mut outputs = Vec::new();
    for host in HOSTS {
        let dir = fresh_dir(&format!("vol-work-{host:?}"));
        setup_work(&dir);
        let spec = format!("{}:/work", dir.display());
        let r = host_run(host, &["-v", &spec], &m, &["bash", "-c", WORK], b"");
        assert_eq!(r.status, 0, "{host:?}: {}", r.stderr_str());
        let out = r.stdout_str();
        assert!(
            out.starts_with("from the host\nlinks 2 size 5\ndeep\ntool ran with arg in /work\n"),
            "{host:?}: {out}"
        );
        assert!(
            out.contains("./a/moved\n./a/rel\n./cut.txt\n"),
            "{host:?}: {out}"
        );
        assert!(
            out.contains("-rw-r--r-- 21 2001 out.txt\n"),
            "{host:?}: {out}"
        );
        // The container's user owns volume files; a #! script of the host is executable.
        assert!(
            out.contains("root 644\nroot 755\nroot 755\n"),
            "{host:?}: {out}"
        );
        assert!(
            out.ends_with("volume /work wasi rw,relatime 0 0\n"),
            "{host:?}: {out}"
        );
        // The host has it all, as the guest left it.
        let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
        assert_eq!(read("out.txt"), "line1\nline2\nappended\n");
        assert_eq!(read("a/moved"), "deep\n");
        assert_eq!(read("a/cut"), "fro");
        assert_eq!(read("a/synced"), "x");
        assert!(!dir.join("a/hard").exists() && !dir.join("a/b").exists());
        assert_eq!(
            std::fs::read_link(dir.join("a/rel")).unwrap(),
            Path::new("moved")
        );
        let mtime = std::fs::metadata(dir.join("out.txt"))
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(mtime, 981173106, "2001-02-03 04:05:06 UTC");
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1], "rvbox run and Node agree");
}

#[test]
fn read_only_volumes_refuse_every_change() {
    let m = module("debian");
    let script = r#"
cat /ro/in.txt
echo x > /ro/new 2>&1 || true
echo x >> /ro/in.txt || true
rm /ro/in.txt || true
mkdir /ro/d || true
mv /ro/in.txt /ro/moved || true
touch /ro/in.txt || true
chmod 600 /ro/in.txt || true
ln -s in.txt /ro/l || true
grep ' /ro ' /proc/self/mounts
"#;
    for host in HOSTS {
        let dir = fresh_dir(&format!("vol-ro-{host:?}"));
        std::fs::write(dir.join("in.txt"), "keep me\n").unwrap();
        let spec = format!("{}:/ro:ro", dir.display());
        let r = host_run(host, &["-v", &spec], &m, &["bash", "-c", script], b"");
        assert_eq!(
            r.stdout_str(),
            "keep me\nvolume /ro wasi ro,relatime 0 0\n",
            "{host:?}"
        );
        let err = r.stderr_str();
        assert_eq!(
            err.matches("Read-only file system").count(),
            8,
            "{host:?}: {err}"
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["in.txt"], "{host:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join("in.txt")).unwrap(),
            "keep me\n"
        );
    }
}

/// 100 MiB written by the guest through a volume, checked by hash on the host.
#[test]
fn a_large_file_arrives_whole() {
    use sha2::{Digest, Sha256};
    let m = module("debian");
    let line = b"rvbox-volume-test-line\n";
    let size = 100 << 20;
    let mut expect = Sha256::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(line.len());
        expect.update(&line[..n]);
        left -= n;
    }
    let expect = expect.finalize();
    for host in HOSTS {
        let dir = fresh_dir(&format!("vol-big-{host:?}"));
        let spec = format!("{}:/data", dir.display());
        let cmd = format!("yes rvbox-volume-test-line | head -c {size} > /data/big");
        let r = host_run(host, &["-v", &spec], &m, &["sh", "-c", &cmd], b"");
        assert_eq!(r.status, 0, "{host:?}: {}", r.stderr_str());
        let got = std::fs::read(dir.join("big")).unwrap();
        assert_eq!(got.len(), size, "{host:?}");
        assert_eq!(Sha256::digest(&got), expect, "{host:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// What the guest wrote before it died of a signal is on the host.
#[test]
fn writes_survive_a_guest_killed_by_a_signal() {
    let m = module("debian");
    for host in HOSTS {
        let dir = fresh_dir(&format!("vol-kill-{host:?}"));
        let spec = format!("{}:/data", dir.display());
        // 1 MiB of random bytes and their hash, then SIGSEGV in a child, and in pid 1 (a
        // `kill -9 $$` from inside would not end it: pid 1 is the container's init).
        let script = "head -c 1048576 /dev/urandom > /data/r; sha256sum /data/r > /data/sum; \
                      python3 -c 'import ctypes; open(\"/data/p\", \"w\").write(\"before\"); ctypes.string_at(0)'; \
                      exec python3 -c 'import ctypes; ctypes.string_at(0)'";
        let r = host_run(host, &["-v", &spec], &m, &["bash", "-c", script], b"");
        assert_eq!(r.status, 139, "{host:?}: {}", r.stderr_str());
        let data = std::fs::read(dir.join("r")).unwrap();
        assert_eq!(data.len(), 1 << 20);
        let sum = std::fs::read_to_string(dir.join("sum")).unwrap();
        use sha2::{Digest, Sha256};
        assert_eq!(
            sum,
            format!("{}  /data/r\n", hex::encode(Sha256::digest(&data))),
            "{host:?}"
        );
        assert_eq!(std::fs::read_to_string(dir.join("p")).unwrap(), "before");
    }
}

#[test]
fn volume_misuse_is_a_clear_error() {
    let m = module("busybox");
    let dir = fresh_dir("vol-misuse");
    std::fs::write(dir.join("file"), "x").unwrap();
    let d = dir.display().to_string();
    let cases: Vec<(String, &str)> = vec![
        (format!("{d}/missing:/data"), "No such file or directory"),
        (format!("{d}/file:/data"), "is not a directory"),
        (format!("{d}:data"), "must be absolute"),
        (format!("{d}:/data:rx"), "unknown option \"rx\""),
        (format!("{d}:/"), "cannot be mounted on /"),
        (format!("{d}:/a/../b"), "must not contain '..'"),
        ("nocolon".to_string(), "expected HOST-DIR:CONTAINER-DIR"),
    ];
    for host in HOSTS {
        for (spec, msg) in &cases {
            let r = host_run(host, &["-v", spec], &m, &["true"], b"");
            let err = r.stderr_str();
            assert_eq!(r.status, 125, "{host:?} -v {spec}: {err}");
            assert!(
                err.starts_with("rvbox: ") && err.contains(msg) && err.lines().count() == 1,
                "{host:?} -v {spec}: {err}"
            );
        }
        let two = ["-v", &format!("{d}:/data"), "-v", &format!("{d}:/data/")];
        let r = host_run(host, &two, &m, &["true"], b"");
        assert_eq!(r.status, 125, "{host:?}");
        assert!(r.stderr_str().contains("two volumes at /data"), "{host:?}");
        // Where the runtime's own file systems are.
        let r = host_run(host, &["-v", &format!("{d}:/proc/x")], &m, &["true"], b"");
        assert_eq!(r.status, 125, "{host:?}");
        assert!(
            r.stderr_str()
                .contains("/proc belongs to the container runtime"),
            "{host:?}: {}",
            r.stderr_str()
        );
    }
}

/// The guest cannot leave a volume: `..` at its root is the container's directory above
/// it, and a symlink in the volume pointing out of it resolves in the container, as
/// absolute symlinks in a bind mount do.
#[test]
fn the_guest_sees_only_what_it_was_handed() {
    let m = module("busybox");
    let outer = fresh_dir("vol-escape");
    std::fs::create_dir(outer.join("inner")).unwrap();
    std::fs::write(outer.join("secret"), "host secret\n").unwrap();
    std::os::unix::fs::symlink("../secret", outer.join("inner/up")).unwrap();
    std::os::unix::fs::symlink(outer.join("secret"), outer.join("inner/abs")).unwrap();
    let spec = format!("{}:/data", outer.join("inner").display());
    for host in HOSTS {
        let r = host_run(
            host,
            &["-v", &spec],
            &m,
            &[
                "sh",
                "-c",
                "cat /data/../secret; cat /data/up; cat /data/abs; ls /data/..; echo done",
            ],
            b"",
        );
        let out = r.stdout_str();
        assert!(!out.contains("host secret"), "{host:?}: {out}");
        assert!(
            out.ends_with("done\n"),
            "{host:?}: {out} {}",
            r.stderr_str()
        );
    }
}

/// Shared mappings of a volume file: what a mapping writes, a read sees (and the host, by
/// munmap or the end of the run), what a write writes, the mapping sees; a child shares
/// the pages. sqlite's WAL mode (a shared mapping of its -shm file) works in a volume.
#[test]
fn shared_mappings_of_volume_files() {
    let m = module("debian");
    let script = r#"
import mmap, os
f = open("/v/m.bin", "r+b")
m = mmap.mmap(f.fileno(), 0)
m[0:3] = b"XYZ"
print(open("/v/m.bin", "rb").read())
os.pwrite(f.fileno(), b"QQ", 5)
print(m[:10])
pid = os.fork()
if pid == 0:
    m[9:10] = b"!"
    os._exit(0)
os.waitpid(pid, 0)
print(m[:10])
m[1:2] = b"y"
"#;
    let sql = "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES(1),(2),(3); \
               SELECT sum(x) FROM t;";
    for host in HOSTS {
        let dir = fresh_dir(&format!("vol-mmap-{host:?}"));
        std::fs::write(dir.join("m.bin"), "abcdefghij").unwrap();
        std::fs::write(dir.join("t.py"), script).unwrap();
        let spec = format!("{}:/v", dir.display());
        let r = host_run(host, &["-v", &spec], &m, &["python3", "/v/t.py"], b"");
        assert_eq!(
            (r.status, r.stdout_str().as_str()),
            (0, "b'XYZdefghij'\nb'XYZdeQQhij'\nb'XYZdeQQhi!'\n"),
            "{host:?}: {}",
            r.stderr_str()
        );
        // The last write through the mapping reached the host when the run ended.
        assert_eq!(std::fs::read(dir.join("m.bin")).unwrap(), b"XyZdeQQhi!");
        let r = host_run(host, &["-v", &spec], &m, &["sqlite3", "/v/w.db", sql], b"");
        assert_eq!(
            (r.status, r.stdout_str().as_str()),
            (0, "wal\n6\n"),
            "{host:?}: {}",
            r.stderr_str()
        );
        let r = host_run(
            host,
            &["-v", &spec],
            &m,
            &["sqlite3", "/v/w.db", "SELECT count(*) FROM t;"],
            b"",
        );
        assert_eq!(r.stdout_str(), "3\n", "{host:?}: {}", r.stderr_str());
    }
}

/// A run stopped by `--timeout` or killed by the memory limit keeps what it wrote to a
/// volume: by write(2), and through a shared mapping (written back as the run ends).
#[test]
fn writes_survive_timeout_and_out_of_memory() {
    let m = module("debian");
    let py = |then: &str| {
        format!(
            "import mmap, os\n\
             open('/data/w', 'w').write('written')\n\
             f = open('/data/m', 'r+b')\n\
             m = mmap.mmap(f.fileno(), 0)\n\
             m[0:6] = b'mapped'\n\
             {then}\n"
        )
    };
    let cases = [
        (
            "timeout",
            vec!["--timeout", "3"],
            py("import time\ntime.sleep(100)"),
            124,
        ),
        (
            "oom",
            vec!["--memory", "64m"],
            py("x = []\nwhile True: x.append(bytearray(1 << 20))"),
            137,
        ),
    ];
    for host in HOSTS {
        for (what, opts, script, status) in &cases {
            let dir = fresh_dir(&format!("vol-{what}-{host:?}"));
            std::fs::write(dir.join("m"), "......").unwrap();
            let spec = format!("{}:/data", dir.display());
            let mut all = opts.clone();
            all.extend(["-v", &spec]);
            let r = host_run(host, &all, &m, &["python3", "-c", script], b"");
            assert_eq!(r.status, *status, "{host:?} {what}: {}", r.stderr_str());
            let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
            assert_eq!(read("w"), "written", "{host:?} {what}");
            assert_eq!(read("m"), "mapped", "{host:?} {what}");
        }
    }
}

/// Symlinks in a volume stay in the volume, the same under every host (vfs/volume.rs): an
/// absolute target or one that climbs out is refused (EPERM) when the guest reads, follows
/// or makes one; links within the volume work.
#[test]
fn volume_symlinks_behave_the_same_under_every_host() {
    let m = module("busybox");
    let script = "cd /mnt; for l in in abs up; do readlink $l || echo \"readlink $l failed\"; \
                  cat $l || echo \"cat $l failed\"; done; \
                  ln -s x new-in && cat new-in; ln -s /etc/hostname new-abs || echo abs refused; \
                  ln -s ../../../../../.. new-up || echo up refused; ls";
    for host in HOSTS {
        let dir = fresh_dir(&format!("vol-links-{host:?}"));
        std::fs::write(dir.join("x"), "in the volume\n").unwrap();
        std::os::unix::fs::symlink("x", dir.join("in")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../x", dir.join("up")).unwrap();
        let spec = format!("{}:/mnt", dir.display());
        let r = host_run(host, &["-v", &spec], &m, &["sh", "-c", script], b"");
        assert_eq!(r.status, 0, "{host:?}: {}", r.stderr_str());
        let out = r.stdout_str();
        assert_eq!(
            out,
            "x\nin the volume\nreadlink abs failed\ncat abs failed\nreadlink up failed\n\
             cat up failed\nin the volume\nabs refused\nup refused\n\
             abs\nin\nnew-in\nup\nx\n",
            "{host:?}: {}",
            r.stderr_str()
        );
        assert_eq!(
            // busybox readlink fails quietly: cat's two and ln's two.
            r.stderr_str().matches("Operation not permitted").count(),
            4,
            "{host:?}: {}",
            r.stderr_str()
        );
        assert!(dir.join("new-abs").symlink_metadata().is_err());
        assert!(dir.join("new-up").symlink_metadata().is_err());
    }
}
