//! One registry connection through `oci-client`: authentication, manifests and blobs, with
//! bounded retries (backoff) on 5xx answers, timeouts and broken transfers, and errors that
//! say what happened. Blobs are streamed into the cache's `BlobWriter`, which verifies them.

use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::cache::{digest_of, BlobWriter, WriteError};
use super::error::RegistryError;

/// Attempts per request (the first and three retries).
const ATTEMPTS: u32 = 4;
/// Backoff before retry n (1-based): FIRST_BACKOFF * 2^(n-1).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the next bytes of a response.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest manifest or index we accept (the distribution spec suggests registries take at
/// most 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

pub struct Remote {
    client: Client,
    auth: RegistryAuth,
    /// Where the credentials came from, if any.
    cred_source: Option<String>,
    pub reference: Reference,
    /// The reference as the user wrote it, normalised (`docker.io/library/busybox:latest`).
    pub name: String,
    plain_http: bool,
}

/// Whether `host` (the reference's registry, `HOST[:PORT]`) is this machine.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

enum Failure {
    /// Worth another attempt (5xx, timeout, broken transfer).
    Retry(RegistryError),
    Fatal(RegistryError),
}

impl Remote {
    pub async fn connect(
        reference: Reference,
        name: String,
        credentials: Option<(super::Credentials, String)>,
        insecure: &[String],
    ) -> Result<Remote, RegistryError> {
        let registry = reference.resolve_registry().to_string();
        let plain_http = is_loopback(&registry)
            || insecure
                .iter()
                .any(|h| *h == registry || h == reference.registry());
        let config = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::HttpsExcept(vec![registry.clone()])
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            user_agent: concat!("rvbox/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = Client::try_from(config).map_err(|e| RegistryError::Setup {
            msg: format!("HTTP client: {e}"),
        })?;
        let (auth, cred_source) = match credentials {
            Some((c, source)) => (RegistryAuth::Basic(c.username, c.password), Some(source)),
            None => (RegistryAuth::Anonymous, None),
        };
        let r = Remote {
            client,
            auth,
            cred_source,
            reference,
            name,
            plain_http,
        };
        // Asks /v2/ how to authenticate and gets a pull token if the registry uses them.
        r.retrying("authentication", || async {
            r.client
                .auth(&r.reference, &r.auth, RegistryOperation::Pull)
                .await
                .map(|_| ())
                .map_err(|e| r.classify(e, "authentication"))
        })
        .await?;
        Ok(r)
    }

    fn registry(&self) -> String {
        self.reference.registry().to_string()
    }

    async fn retrying<T, F, Fut>(&self, _what: &str, mut f: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e)) if attempt >= ATTEMPTS => {
                    return Err(with_attempts(e, attempt));
                }
                Err(Failure::Retry(_)) => {
                    tokio::time::sleep(FIRST_BACKOFF * (1 << (attempt - 1))).await;
                    attempt += 1;
                }
            }
        }
    }

    /// The manifest or index `reference` names (the reference itself, or `digest` in its
    /// repository): its bytes and their digest (checked against `digest` when given).
    pub async fn manifest(&self, digest: Option<&str>) -> Result<(Vec<u8>, String), RegistryError> {
        let reference = match digest {
            Some(d) => self.reference.clone_with_digest(d.to_string()),
            None => self.reference.clone(),
        };
        let what = match digest {
            Some(d) => format!("manifest {d}"),
            None => "manifest".to_string(),
        };
        let (body, _) = self
            .retrying(&what, || async {
                self.client
                    .pull_manifest_raw(&reference, &self.auth, MANIFEST_TYPES)
                    .await
                    .map_err(|e| self.classify(e, &what))
            })
            .await?;
        if body.len() > MAX_MANIFEST {
            return Err(RegistryError::BadManifest {
                reference: self.name.clone(),
                msg: format!(
                    "{what} is {} bytes; refusing more than {MAX_MANIFEST}",
                    body.len()
                ),
            });
        }
        // Our own check, whatever the client did: the bytes are what the digest names.
        let want = digest.or(reference.digest());
        let actual = digest_of(&body, want.unwrap_or("sha256:"));
        if let Some(want) = want {
            if actual != want {
                return Err(RegistryError::Tampered {
                    reference: self.name.clone(),
                    what: "manifest".into(),
                    digest: want.to_string(),
                    actual,
                });
            }
        }
        Ok((body.to_vec(), actual))
    }

    /// Streams blob `digest` of `size` bytes into a fresh `BlobWriter` from `new_writer` per
    /// attempt, committing it (verified) at the end. `progress(bytes)` after each chunk
    /// (bytes of this attempt so far).
    pub async fn blob(
        &self,
        what: &str,
        digest: &str,
        size: u64,
        new_writer: &dyn Fn() -> Result<BlobWriter, RegistryError>,
        progress: &dyn Fn(u64),
    ) -> Result<(), RegistryError> {
        let desc = OciDescriptor {
            digest: digest.to_string(),
            size: size as i64,
            ..Default::default()
        };
        let what_d = format!("{what} {digest}");
        self.retrying(&what_d, || async {
            let mut w = new_writer().map_err(Failure::Fatal)?;
            let mut stream = self
                .client
                .pull_blob_stream(&self.reference, &desc)
                .await
                .map_err(|e| self.classify(e, &what_d))?;
            let mut got = 0u64;
            progress(0);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        got += bytes.len() as u64;
                        w.write(&bytes)
                            .map_err(|e| self.write_failure(e, what, digest))?;
                        progress(got);
                    }
                    // The client's own check fails at the end: ours says why.
                    Err(_) if got == size => break,
                    Err(e) => {
                        return Err(Failure::Retry(RegistryError::Transfer {
                            registry: self.registry(),
                            what: what_d.clone(),
                            cause: e.to_string(),
                            attempts: 1,
                        }))
                    }
                }
            }
            w.commit().map_err(|e| self.write_failure(e, what, digest))
        })
        .await
    }

    fn write_failure(&self, e: WriteError, what: &str, digest: &str) -> Failure {
        Failure::Fatal(match e {
            WriteError::Digest { actual } => RegistryError::Tampered {
                reference: self.name.clone(),
                what: what.into(),
                digest: digest.into(),
                actual,
            },
            WriteError::Size { expected, actual } => RegistryError::WrongSize {
                reference: self.name.clone(),
                what: what.into(),
                digest: digest.into(),
                expected,
                actual,
            },
            e @ WriteError::Io { .. } => e.into_cache(),
        })
    }

    fn unauthorized(&self) -> RegistryError {
        match &self.cred_source {
            Some(source) => RegistryError::BadCredentials {
                registry: self.registry(),
                source_of: source.clone(),
            },
            None => RegistryError::NeedCredentials {
                reference: self.name.clone(),
                registry: self.registry(),
            },
        }
    }

    fn classify(&self, e: OciDistributionError, what: &str) -> Failure {
        use OciDistributionError as E;
        let http = |status: u16, msg: String| RegistryError::Http {
            registry: self.registry(),
            what: what.to_string(),
            status,
            attempts: 1,
            msg,
        };
        let not_found = |code: &str| RegistryError::NotFound {
            reference: self.name.clone(),
            code: code.to_string(),
        };
        match e {
            E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => {
                Failure::Fatal(self.unauthorized())
            }
            E::RegistryError { envelope, .. } => {
                let first = envelope.errors.first();
                let msg = first.map(|e| e.message.clone()).unwrap_or_default();
                Failure::Fatal(match first.map(|e| &e.code) {
                    Some(OciErrorCode::ManifestUnknown) => {
                        not_found("MANIFEST_UNKNOWN: no such tag or digest")
                    }
                    Some(OciErrorCode::NameUnknown) => {
                        not_found("NAME_UNKNOWN: no such repository")
                    }
                    Some(OciErrorCode::BlobUnknown) => {
                        not_found("BLOB_UNKNOWN: a blob the manifest names is missing")
                    }
                    Some(OciErrorCode::NotFound) => not_found("NOT_FOUND"),
                    Some(OciErrorCode::Unauthorized) => self.unauthorized(),
                    Some(OciErrorCode::Denied) => RegistryError::Denied {
                        reference: self.name.clone(),
                        msg,
                    },
                    Some(OciErrorCode::Toomanyrequests) => {
                        http(429, format!("too many requests: {msg}"))
                    }
                    Some(c) => http(0, format!("{c:?}: {msg}")),
                    None => http(0, "error without details".into()),
                })
            }
            E::ServerError { code, message, .. } => match code {
                401 => Failure::Fatal(self.unauthorized()),
                403 => Failure::Fatal(RegistryError::Denied {
                    reference: self.name.clone(),
                    msg: message,
                }),
                404 => Failure::Fatal(not_found("HTTP 404")),
                500.. => Failure::Retry(http(code, first_line(&message))),
                _ => Failure::Fatal(http(code, first_line(&message))),
            },
            E::DigestError(oci_client::errors::DigestError::VerificationError {
                expected,
                actual,
            }) => Failure::Fatal(RegistryError::Tampered {
                reference: self.name.clone(),
                what: what.to_string(),
                digest: expected,
                actual,
            }),
            E::RequestError(r) => {
                let cause = chain(&r);
                if r.is_timeout() {
                    Failure::Retry(RegistryError::Transfer {
                        registry: self.registry(),
                        what: what.to_string(),
                        cause: format!("timed out: {cause}"),
                        attempts: 1,
                    })
                } else if r.is_connect() {
                    Failure::Fatal(RegistryError::Unreachable {
                        registry: self.registry(),
                        cause,
                        plain_http: self.plain_http,
                    })
                } else {
                    Failure::Retry(RegistryError::Transfer {
                        registry: self.registry(),
                        what: what.to_string(),
                        cause,
                        attempts: 1,
                    })
                }
            }
            other => Failure::Fatal(RegistryError::Transfer {
                registry: self.registry(),
                what: what.to_string(),
                cause: other.to_string(),
                attempts: 1,
            }),
        }
    }
}

fn with_attempts(e: RegistryError, n: u32) -> RegistryError {
    match e {
        RegistryError::Http {
            registry,
            what,
            status,
            msg,
            ..
        } => RegistryError::Http {
            registry,
            what,
            status,
            attempts: n,
            msg,
        },
        RegistryError::Transfer {
            registry,
            what,
            cause,
            ..
        } => RegistryError::Transfer {
            registry,
            what,
            cause,
            attempts: n,
        },
        e => e,
    }
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    if l.len() > 200 {
        format!("{}...", &l[..l.floor_char_boundary(200)])
    } else {
        l.to_string()
    }
}

/// An error and its causes, `a: b: c`, without repeats (reqwest's messages are terse at the
/// top and useful at the bottom: "Connection refused", "failed to lookup address").
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:8080",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "docker.io",
            "localhost.example.com:5000",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
