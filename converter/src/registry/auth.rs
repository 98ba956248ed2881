//! Credentials for a registry, as Docker finds them: `--username` with `--password-stdin`
//! first, else `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`): a credential
//! helper for the registry (`credHelpers`), else the `auths` entry (base64 `user:password`),
//! else the default store (`credsStore`); else none (anonymous, with a token if the registry
//! asks for one).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::error::RegistryError;

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <password>)", self.username)
    }
}

/// Credentials and where they came from (for error messages).
pub struct Found {
    pub credentials: Credentials,
    pub source: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d).join("config.json")),
        _ => dirs::home_dir().map(|h| h.join(".docker").join("config.json")),
    }
}

/// The keys Docker files a registry's credentials under: Docker Hub's is its v1 URL.
fn keys_for(registry: &str) -> Vec<String> {
    if registry == "docker.io"
        || registry == "index.docker.io"
        || registry == "registry-1.docker.io"
    {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
            format!("https://{registry}/v1/"),
            format!("https://{registry}/v2/"),
        ]
    }
}

/// What the Docker configuration says for `registry` (the reference's registry name,
/// `docker.io` for Docker Hub).
pub fn from_docker_config(registry: &str) -> Result<Option<Found>, RegistryError> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::Credentials {
                registry: registry.into(),
                msg: format!("{}: {e}", path.display()),
            })
        }
    };
    let config: DockerConfig =
        serde_json::from_slice(&data).map_err(|e| RegistryError::Credentials {
            registry: registry.into(),
            msg: format!("{}: {e}", path.display()),
        })?;
    let keys = keys_for(registry);
    for key in &keys {
        if let Some(helper) = config.cred_helpers.get(key) {
            return helper_get(helper, &keys[0], registry);
        }
    }
    for key in &keys {
        if let Some(entry) = config.auths.get(key) {
            let what = format!("{} (auths.{key})", path.display());
            if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let bad = |msg: &str| RegistryError::Credentials {
                    registry: registry.into(),
                    msg: format!("{what}: {msg}"),
                };
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| bad("auth is not base64"))?;
                let text = String::from_utf8(raw).map_err(|_| bad("auth is not UTF-8"))?;
                let (u, p) = text
                    .split_once(':')
                    .ok_or_else(|| bad("auth is not user:password"))?;
                return Ok(Some(Found {
                    credentials: Credentials {
                        username: u.into(),
                        password: p.into(),
                    },
                    source: what,
                }));
            }
            if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
                return Ok(Some(Found {
                    credentials: Credentials {
                        username: u.clone(),
                        password: p.clone(),
                    },
                    source: what,
                }));
            }
            // An entry without credentials: the store has them.
        }
    }
    if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
        return helper_get(store, &keys[0], registry);
    }
    Ok(None)
}

/// `docker-credential-NAME get` with the server on stdin; "credentials not found" is none.
fn helper_get(name: &str, server: &str, registry: &str) -> Result<Option<Found>, RegistryError> {
    let prog = format!("docker-credential-{name}");
    let err = |msg: String| RegistryError::Credentials {
        registry: registry.into(),
        msg: format!("{prog}: {msg}"),
    };
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            err(format!(
                "cannot run it ({e}); it is named in the Docker config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(err(format!("{}: {}", out.status, text.trim())));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperOut {
        username: String,
        secret: String,
    }
    let h: HelperOut =
        serde_json::from_slice(&out.stdout).map_err(|e| err(format!("unexpected output: {e}")))?;
    if h.username == "<token>" {
        // An identity token (OAuth refresh token): not something we can use.
        return Err(err(
            "gives an identity token, which rvbox cannot use; give --username and --password-stdin"
                .into(),
        ));
    }
    Ok(Some(Found {
        credentials: Credentials {
            username: h.username,
            password: h.secret,
        },
        source: prog,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_keys() {
        assert_eq!(keys_for("docker.io")[0], "https://index.docker.io/v1/");
        assert_eq!(keys_for("localhost:5000")[0], "localhost:5000");
    }
}
