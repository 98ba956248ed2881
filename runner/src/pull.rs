//! `rvbox convert`'s registry options and its download progress bars (one per layer, on a
//! terminal only).

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rvbox_converter::registry::{self, BlobState, Credentials, PullEvent, PullPolicy};

#[derive(clap::Args)]
pub struct RegistryArgs {
    /// For registry images: when to ask the registry what the reference names: `missing`
    /// (only when the local image cache does not know it), `always`, `never` (the cache
    /// must have it). Blobs already in the cache are never fetched again.
    #[arg(long, value_name = "WHEN", default_value = "missing")]
    pull: PullPolicy,
    /// The user name to log in to the registry with (the password comes from
    /// --password-stdin). Without it: `~/.docker/config.json`'s credentials, else none.
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from standard input (with --username).
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Speak plain HTTP to this registry (HOST[:PORT]); loopback registries (localhost,
    /// 127.0.0.1, [::1]) always are. May be given more than once.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registry: Vec<String>,
}

/// The converter's pull options from the command line.
pub fn options(args: RegistryArgs, quiet: bool) -> anyhow::Result<registry::Options> {
    let credentials = match args.username {
        Some(username) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .map_err(|e| anyhow::anyhow!("--password-stdin: reading stdin: {e}"))?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                anyhow::bail!("--password-stdin: no password on standard input");
            }
            Some(Credentials { username, password })
        }
        None => None,
    };
    let show = !quiet && std::io::stderr().is_terminal();
    Ok(registry::Options {
        pull: args.pull,
        credentials,
        insecure: args.insecure_registry,
        cache_dir: None,
        progress: show.then(bars),
    })
}

/// One bar per blob being downloaded; cached and downloaded blobs get a line saying so.
fn bars() -> registry::ProgressFn {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:>10} {msg:12} [{bar:30}] {bytes:>9}/{total_bytes:9} {bytes_per_sec:>11}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let bars: Mutex<HashMap<String, ProgressBar>> = Mutex::new(HashMap::new());
    Arc::new(move |e: &PullEvent| {
        let (what, digest, size, done, state) = match e {
            PullEvent::Blob {
                what,
                digest,
                size,
                done,
                state,
                ..
            } => (what, digest, size, done, state),
            PullEvent::Finished {
                fetched,
                fetched_bytes,
                cached,
            } => {
                // No bar is left drawn (finished ones became lines): a plain line.
                say!(
                    "pulled {fetched} blobs ({:.1} MiB); {cached} layers from the cache",
                    *fetched_bytes as f64 / 1048576.0
                );
                return;
            }
        };
        let short = digest
            .split(':')
            .nth(1)
            .unwrap_or(digest)
            .get(..12)
            .unwrap_or(digest);
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        match state {
            BlobState::Cached => {
                let _ = multi.println(format!("{what:>10} {short:12} cached"));
            }
            BlobState::Downloading => {
                let bar = bars.entry(digest.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(*size));
                    b.set_style(style.clone());
                    b.set_prefix(what.clone());
                    b.set_message(short.to_string());
                    b
                });
                bar.set_position(*done);
            }
            BlobState::Done => {
                // A finished bar becomes a line above the others (so that nothing is left
                // drawn when the pull ends and the conversion prints).
                if let Some(bar) = bars.remove(digest) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(format!(
                    "{what:>10} {short:12} downloaded, {:.1} MiB",
                    *size as f64 / 1048576.0
                ));
            }
        }
    })
}
