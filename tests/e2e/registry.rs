//! `rvbox convert` from a real registry: Debian's `docker-registry` (the CNCF distribution
//! registry) started on 127.0.0.1 by each test, images from `images/out` pushed into it with
//! skopeo. Every request the registry serves is in its access log (stderr), which tells what
//! rvbox fetched.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

struct Registry {
    child: Child,
    port: u16,
    dir: PathBuf,
    creds: Option<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn need(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(
        found,
        "{tool} is not installed: the registry tests need Debian's {package} package (.ci/setup installs it)"
    );
}

impl Registry {
    /// A registry of the test's own (storage in a fresh directory); with `creds`, behind
    /// htpasswd basic auth.
    fn start(name: &str, creds: Option<(&str, &str)>) -> Registry {
        need("docker-registry", "docker-registry");
        need("skopeo", "skopeo");
        let dir = fresh_dir(&format!("registry-{name}"));
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("store").display()
        );
        if let Some((user, pass)) = creds {
            need("htpasswd", "apache2-utils");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .unwrap();
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            config += &format!(
                "auth:\n  htpasswd:\n    realm: rvbox-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let r = Registry {
            child,
            port,
            dir,
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not listen on 127.0.0.1:{port}: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `skopeo copy` of layout `images/out/IMAGE` to REPO:TAG here (`--all`: every platform
    /// of an index).
    fn push(&self, image: &str, repo_tag: &str, all: bool) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if all {
            cmd.arg("--all");
        }
        if let Some((u, p)) = &self.creds {
            cmd.arg("--dest-creds").arg(format!("{u}:{p}"));
        }
        cmd.arg(format!("oci:{}:latest", images().join(image).display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// rvbox's requests in the access log from byte `from` of the log on (skopeo's pushes
    /// are there too).
    fn requests_since(&self, from: usize) -> Vec<String> {
        let log = self.log();
        log.get(from..)
            .unwrap_or("")
            .lines()
            .filter(|l| l.contains("\"GET /v2/") || l.contains("\"HEAD /v2/"))
            .filter(|l| l.contains("\"rvbox/"))
            .map(str::to_string)
            .collect()
    }

    fn blob_gets_since(&self, from: usize) -> Vec<String> {
        self.requests_since(from)
            .into_iter()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/"))
            .collect()
    }

    /// The file the registry serves blob `digest` from.
    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .join("store/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client's own world: an image cache, an empty Docker configuration (no credentials of
/// the machine's), an output directory.
struct Client {
    dir: PathBuf,
}

impl Client {
    fn new(name: &str) -> Client {
        let dir = fresh_dir(&format!("registry-client-{name}"));
        std::fs::create_dir_all(dir.join("docker")).unwrap();
        Client { dir }
    }

    fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn convert_cmd(&self, image: &str, out: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(rvbox_bin());
        cmd.arg("convert")
            .arg(image)
            .arg("-o")
            .arg(out)
            .args(extra)
            .env("RVBOX_CACHE_DIR", self.cache())
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .env_remove("RVBOX_LOG");
        cmd
    }

    fn convert(&self, image: &str, out: &Path, extra: &[&str], stdin: &[u8]) -> Run {
        run_cmd(self.convert_cmd(image, out, extra), stdin)
    }
}

fn assert_converted(r: &Run, what: &str) {
    assert_eq!(r.status, 0, "{what}: {}", r.stderr_str());
}

/// Fails with status 125, a message containing each of `want`, and no output file.
fn assert_fails(r: &Run, out: &Path, want: &[&str]) {
    assert_eq!(r.status, 125, "expected failure, got: {}", r.stderr_str());
    let err = r.stderr_str();
    for w in want {
        assert!(err.contains(w), "message lacks {w:?}: {err}");
    }
    assert!(!out.exists(), "{} was written", out.display());
}

fn echo_works(module: &Path) {
    let r = rvbox_run(module, &["echo", "hello from the registry"], b"");
    assert_eq!(r.status, 0, "{}", r.stderr_str());
    assert_eq!(r.stdout_str(), "hello from the registry\n");
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    read_json(
        &layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
}

/// The (single-platform) manifest of layout `images/out/NAME`: (digest, layer digests).
fn layout_manifest(name: &str) -> (String, Vec<String>) {
    let layout = images().join(name);
    let index = read_json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let m = blob_json(&layout, &digest);
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (digest, layers)
}

#[test]
fn pull_by_tag_and_digest_then_from_the_cache() {
    let reg = Registry::start("tag", None);
    reg.push("busybox", "tools/busybox:1.0", false);
    let (digest, layers) = layout_manifest("busybox");
    let c = Client::new("tag");

    // By tag: everything fetched, the module runs, and it names the reference.
    let m1 = c.out("by-tag.wasm");
    let from = reg.log().len();
    let started = Instant::now();
    let r = c.convert(&format!("{}/tools/busybox:1.0", reg.host()), &m1, &[], b"");
    let first = started.elapsed();
    assert_converted(&r, "by tag");
    let gets = reg.blob_gets_since(from);
    for l in &layers {
        assert!(
            gets.iter().any(|g| g.contains(l.as_str())),
            "layer {l} not fetched: {gets:?}"
        );
    }
    echo_works(&m1);
    let inspect = rvbox(&["inspect", "--json", m1.to_str().unwrap()], b"");
    assert!(
        inspect
            .stdout_str()
            .contains(&format!("{}/tools/busybox:1.0", reg.host())),
        "{}",
        inspect.stdout_str()
    );
    // The cache is an OCI layout whose index.json names the reference.
    let index = std::fs::read_to_string(c.cache().join("oci/index.json")).unwrap();
    assert!(
        index.contains(&format!("{}/tools/busybox:1.0", reg.host())),
        "{index}"
    );

    // Again: from the cache, without a single request (--pull missing, the default).
    let from = reg.log().len();
    let m2 = c.out("by-tag-again.wasm");
    let started = Instant::now();
    let r = c.convert(&format!("{}/tools/busybox:1.0", reg.host()), &m2, &[], b"");
    let second = started.elapsed();
    assert_converted(&r, "by tag, cached");
    assert_eq!(
        reg.blob_gets_since(from),
        Vec::<String>::new(),
        "blobs fetched again"
    );
    assert_eq!(
        reg.requests_since(from),
        Vec::<String>::new(),
        "registry asked again"
    );
    echo_works(&m2);
    eprintln!("busybox by tag: {first:?} uncached, {second:?} cached");

    // --pull always asks for the manifest, but fetches no blob it has.
    let from = reg.log().len();
    let r = c.convert(
        &format!("docker://{}/tools/busybox:1.0", reg.host()),
        &c.out("always.wasm"),
        &["--pull", "always"],
        b"",
    );
    assert_converted(&r, "--pull always");
    assert!(
        !reg.requests_since(from).is_empty(),
        "--pull always asked nothing"
    );
    assert_eq!(reg.blob_gets_since(from), Vec::<String>::new());

    // By digest, into another cache: fetched and runs; then from that cache, no request.
    let c2 = Client::new("digest");
    let by_digest = format!("{}/tools/busybox@{digest}", reg.host());
    let m3 = c2.out("by-digest.wasm");
    let r = c2.convert(&by_digest, &m3, &[], b"");
    assert_converted(&r, "by digest");
    echo_works(&m3);
    let from = reg.log().len();
    let r = c2.convert(&by_digest, &c2.out("again.wasm"), &["--pull", "never"], b"");
    assert_converted(&r, "by digest, cached, --pull never");
    assert_eq!(reg.requests_since(from), Vec::<String>::new());

    // --pull never with what the cache does not have.
    let out = c2.out("never.wasm");
    let r = c2.convert(
        &format!("{}/tools/busybox:1.0", reg.host()),
        &out,
        &["--pull", "never"],
        b"",
    );
    assert_fails(&r, &out, &["not in the local image cache", "--pull never"]);
}

#[test]
fn a_multi_platform_index_gives_riscv64_only() {
    let reg = Registry::start("multi", None);
    reg.push("busybox-multi", "multi:latest", true);
    let c = Client::new("multi");
    let out = c.out("multi.wasm");
    let r = c.convert(&format!("{}/multi", reg.host()), &out, &[], b"");
    assert_converted(&r, "multi");
    echo_works(&out);
    // Only the riscv64 image's manifest and blobs were fetched, none of the amd64 one's.
    let layout = images().join("busybox-multi");
    let top = read_json(&layout.join("index.json"));
    let index = blob_json(&layout, top["manifests"][0]["digest"].as_str().unwrap());
    let entries = index["manifests"].as_array().unwrap();
    let arch_of =
        |e: &serde_json::Value| e["platform"]["architecture"].as_str().unwrap().to_string();
    let amd64 = entries
        .iter()
        .find(|e| arch_of(e) == "amd64")
        .expect("an amd64 entry");
    let riscv64 = entries
        .iter()
        .find(|e| arch_of(e) == "riscv64")
        .expect("a riscv64 entry");
    let requests = reg.requests_since(0);
    let asked = |d: &str| requests.iter().any(|r| r.contains(d));
    for (e, wanted) in [(riscv64, true), (amd64, false)] {
        let digest = e["digest"].as_str().unwrap();
        let config = blob_json(&layout, digest)["config"]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            asked(digest),
            wanted,
            "manifest {} {digest}: {requests:#?}",
            arch_of(e)
        );
        assert_eq!(
            asked(&config),
            wanted,
            "config of {}: {requests:#?}",
            arch_of(e)
        );
    }
    let inspect = rvbox(&["inspect", "--json", out.to_str().unwrap()], b"");
    assert!(
        inspect.stdout_str().contains("linux/riscv64"),
        "{}",
        inspect.stdout_str()
    );
}

#[test]
fn an_amd64_only_image_is_refused_with_its_platform() {
    let reg = Registry::start("amd64", None);
    reg.push("busybox-amd64", "amd64only:latest", false);
    let c = Client::new("amd64");
    let out = c.out("amd64.wasm");
    let r = c.convert(&format!("{}/amd64only:latest", reg.host()), &out, &[], b"");
    assert_fails(&r, &out, &["no linux/riscv64 image", "linux/amd64"]);
    // Its layers were not downloaded (only the config, which says the platform).
    let (_, layers) = layout_manifest("busybox-amd64");
    let gets = reg.blob_gets_since(0);
    for l in &layers {
        assert!(
            !gets.iter().any(|g| g.contains(l.as_str())),
            "layer {l} fetched"
        );
    }
}

#[test]
fn credentials_wrong_missing_and_right() {
    let reg = Registry::start("auth", Some(("alice", "s3cret-pass")));
    reg.push("busybox", "private/busybox:latest", false);
    let image = format!("{}/private/busybox:latest", reg.host());
    let c = Client::new("auth");

    let out = c.out("none.wasm");
    let r = c.convert(&image, &out, &[], b"");
    assert_fails(&r, &out, &["wants credentials", "--password-stdin"]);

    let out = c.out("wrong.wasm");
    let r = c.convert(
        &image,
        &out,
        &["--username", "alice", "--password-stdin"],
        b"wrong\n",
    );
    assert_fails(
        &r,
        &out,
        &[
            "authentication failed",
            "refused the credentials",
            &reg.host(),
        ],
    );

    let out = c.out("right.wasm");
    let r = c.convert(
        &image,
        &out,
        &["--username", "alice", "--password-stdin"],
        b"s3cret-pass\n",
    );
    assert_converted(&r, "--password-stdin");
    echo_works(&out);

    // From the Docker configuration: `auths` (base64 user:password), into a fresh cache.
    let c = Client::new("auth-config");
    std::fs::write(
        c.dir.join("docker/config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0LXBhc3M="}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let out = c.out("config.wasm");
    assert_converted(&c.convert(&image, &out, &[], b""), "auths");
    echo_works(&out);

    // A credential helper (credHelpers), giving a wrong password: the error says where
    // the credentials came from.
    let c = Client::new("auth-helper");
    let bin = c.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-rvboxtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\necho \"{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"alice\\\",\\\"Secret\\\":\\\"$RVBOX_TEST_SECRET\\\"}\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        c.dir.join("docker/config.json"),
        format!(r#"{{"credHelpers":{{"{}":"rvboxtest"}}}}"#, reg.host()),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = c.out("helper-wrong.wasm");
    let mut cmd = c.convert_cmd(&image, &out, &[]);
    cmd.env("PATH", &path).env("RVBOX_TEST_SECRET", "nope");
    assert_fails(
        &run_cmd(cmd, b""),
        &out,
        &["authentication failed", "docker-credential-rvboxtest"],
    );
    let out = c.out("helper.wasm");
    let mut cmd = c.convert_cmd(&image, &out, &[]);
    cmd.env("PATH", &path)
        .env("RVBOX_TEST_SECRET", "s3cret-pass");
    assert_converted(&run_cmd(cmd, b""), "credHelpers");
    echo_works(&out);
}

#[test]
fn missing_tag_and_unreachable_registry_are_clear_errors() {
    let reg = Registry::start("missing", None);
    reg.push("busybox", "there:latest", false);
    let c = Client::new("missing");

    let out = c.out("tag.wasm");
    let r = c.convert(&format!("{}/there:nope", reg.host()), &out, &[], b"");
    assert_fails(&r, &out, &["there:nope", "not found", "MANIFEST_UNKNOWN"]);

    let out = c.out("repo.wasm");
    let r = c.convert(&format!("{}/nothere:latest", reg.host()), &out, &[], b"");
    assert_fails(&r, &out, &["nothere:latest", "not found"]);

    // Nothing listens on this port.
    let port = free_port();
    let out = c.out("unreachable.wasm");
    let started = Instant::now();
    let r = c.convert(&format!("127.0.0.1:{port}/x:1"), &out, &[], b"");
    assert_fails(
        &r,
        &out,
        &[
            &format!("127.0.0.1:{port}: cannot reach the registry"),
            "onnection refused",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_written() {
    let reg = Registry::start("tamper", None);
    reg.push("busybox", "busybox:latest", false);
    let (_, layers) = layout_manifest("busybox");
    let layer = layers.last().unwrap();
    let data = reg.blob_data(layer);
    let mut bytes = std::fs::read(&data)
        .unwrap_or_else(|e| panic!("{}: {e} (registry storage layout changed?)", data.display()));
    // Same size, different content: only the digest can tell.
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let c = Client::new("tamper");
    let out = c.out("tampered.wasm");
    let r = c.convert(&format!("{}/busybox:latest", reg.host()), &out, &[], b"");
    assert_fails(
        &r,
        &out,
        &[layer.as_str(), "does not match its digest", "tampered"],
    );
    // Not in the cache, not even partly; and the reference is not recorded.
    let hex = layer.strip_prefix("sha256:").unwrap();
    let blobs = c.cache().join("oci/blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name != hex && !name.starts_with(".partial"),
            "{name} left in the cache"
        );
    }
    let index = std::fs::read_to_string(c.cache().join("oci/index.json")).unwrap();
    assert!(!index.contains("busybox:latest"), "{index}");
    // No temp file left beside the output either.
    let left: Vec<_> = std::fs::read_dir(&c.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wasm") || n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
