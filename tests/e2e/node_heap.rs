//! Node without V8 flags on the workloads that crashed Node 20 when wasm called node:wasi
//! through V8's fast API calls (a GC started inside such a call corrupted V8's heap; see
//! runner/node/run.mjs's header). With the imports handed to wasm as they come from
//! node:wasi, each of these runs crashed Node (SIGSEGV or a V8 fatal error) in 8 runs of 8
//! on Node 20.20.2; run.mjs wraps them in JS functions, and `node_command` gives no flags.

use crate::support::*;

/// File work on a volume: many path_open, path_filestat_get, path_rename, path_symlink,
/// path_unlink_file and fd_write calls, each one allocating inside node:wasi.
const FILE_WORK: &str = r#"
set -e
cd /w && mkdir t && cd t
for i in $(seq 1 150); do
  echo "line $i" > f$i; cat f$i >> all; mv f$i g$i; ln -s g$i s$i; stat -c %s g$i > /dev/null
  test -f s$i
  if [ $((i % 4)) = 0 ]; then rm g$i s$i; fi
  mkdir -p d$((i % 7))/e; touch d$((i % 7))/e/x$i
done
ls | wc -l; wc -l < all; find . -type f | wc -l
"#;

#[test]
fn node_survives_file_work_on_a_volume() {
    let m = module("debian");
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let vol = format!("{}:/w", dir.path().display());
        let r = host_run(
            Host::Node,
            &["-v", &vol],
            &m,
            &["bash", "-c", FILE_WORK],
            b"",
        );
        assert_eq!(
            (r.status, r.stdout_str().as_str()),
            (0, "234\n150\n264\n"),
            "round {round}: {}",
            r.stderr_str()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("t/all"))
                .unwrap()
                .lines()
                .count(),
            150
        );
    }
}

/// xz -9 reserves 674 MiB: the module's memory grows by hundreds of MiB, V8 starts
/// incremental marking for the memory pressure and ends it in a later allocation report,
/// which came from inside node:wasi's next fast call.
#[test]
fn node_survives_xz_9() {
    let m = module("debian");
    let script =
        "seq 1 60000 > /tmp/in; xz -9 -T1 < /tmp/in | xz -dc | sha256sum; sha256sum < /tmp/in";
    for round in 0..2 {
        let r = host_run(Host::Node, &[], &m, &["sh", "-c", script], b"");
        let out = r.stdout_str();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(r.status, 0, "round {round}: {}", r.stderr_str());
        assert_eq!(lines.len(), 2, "round {round}: {out}");
        assert_eq!(
            lines[0], lines[1],
            "round {round}: the round trip changed the data"
        );
    }
}
