//! What can go wrong talking to a registry. Each message names the registry or reference and
//! says what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{reference}: not a valid image reference: {msg}")]
    BadReference { reference: String, msg: String },

    #[error(
        "{registry}: authentication failed: the registry refused the credentials from {source_of}; check the user name and password"
    )]
    BadCredentials {
        registry: String,
        /// Where the credentials came from (`--username`, `~/.docker/config.json`, ...).
        source_of: String,
    },

    #[error(
        "{reference}: the registry wants credentials (HTTP 401 without any given){}",
        hint_login(registry)
    )]
    NeedCredentials { reference: String, registry: String },

    #[error("{reference}: access denied by the registry (HTTP 403): {msg}")]
    Denied { reference: String, msg: String },

    #[error("{reference}: not found in the registry ({code})")]
    NotFound { reference: String, code: String },

    /// An argument like `images/out/app` that was taken for a Docker Hub name.
    #[error(
        "{error}; and there is no local directory {path:?} (local layouts: DIR, oci:DIR[:TAG])"
    )]
    NotAPathEither {
        path: String,
        #[source]
        error: Box<RegistryError>,
    },

    #[error(
        "{registry}: cannot reach the registry: {cause}{}",
        if *plain_http || cause.contains("dns error") { "" } else { " (a plain-HTTP registry needs --insecure-registry HOST[:PORT])" }
    )]
    Unreachable {
        registry: String,
        cause: String,
        plain_http: bool,
    },

    #[error("{registry}: {what}: HTTP {status}{}: {msg}", if *attempts > 1 { format!(" after {attempts} attempts") } else { String::new() })]
    Http {
        registry: String,
        what: String,
        status: u16,
        attempts: u32,
        msg: String,
    },

    #[error("{registry}: {what}: {cause}{}", if *attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() })]
    Transfer {
        registry: String,
        what: String,
        cause: String,
        attempts: u32,
    },

    #[error(
        "{what} {digest} from {reference}: content does not match its digest (it hashes to {actual}); the registry's copy is damaged or was tampered with; refused, nothing was kept"
    )]
    Tampered {
        reference: String,
        what: String,
        digest: String,
        actual: String,
    },

    #[error(
        "{what} {digest} from {reference}: the registry sent {actual} bytes but the descriptor says {expected}; refused, nothing was kept"
    )]
    WrongSize {
        reference: String,
        what: String,
        digest: String,
        expected: u64,
        actual: u64,
    },

    /// Becomes `ConvertError::NoPlatform` (one message for local and remote images).
    #[error("{reference}: no linux/riscv64 image; it has {}", available.join(", "))]
    NoPlatform {
        reference: String,
        available: Vec<String>,
    },

    #[error("{reference}: {msg}")]
    BadManifest { reference: String, msg: String },

    #[error(
        "{reference}: not in the local image cache ({}) and --pull never forbids asking the registry",
        cache.display()
    )]
    NotCached { reference: String, cache: PathBuf },

    #[error("image cache {}: {msg}", path.display())]
    Cache { path: PathBuf, msg: String },

    #[error("credentials for {registry}: {msg}")]
    Credentials { registry: String, msg: String },

    #[error("{msg}")]
    Setup { msg: String },
}

fn hint_login(registry: &str) -> String {
    format!("; log in with `docker login {registry}`, or give --username and --password-stdin")
}
