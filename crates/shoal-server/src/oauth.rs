//! OAUTHBEARER on a SASL listener: the validator built from its settings, and the JWKS file
//! it checks signatures against, loaded again when the identity provider rotates its keys.
//!
//! Kafka fetches the JWKS from `sasl.oauthbearer.jwks.endpoint.url` every
//! `sasl.oauthbearer.jwks.endpoint.refresh.ms`; Shoal reads a file (it fetches nothing over the
//! network) and checks it on the same schedule: when its modification time or size changed it
//! is parsed again, and only a JWKS that parses replaces the keys (a half-written file keeps
//! the old ones, with an error line). Validations already running keep the keys they started
//! with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use shoal_sasl::{JwksKeys, OAuthValidator};

/// The JWKS file of one listener.
#[derive(Debug, Clone)]
pub struct JwksFile {
    listener: String,
    path: PathBuf,
    keys: Arc<JwksKeys>,
    refresh: Duration,
}

/// The OAUTHBEARER validator of `listener` (settings read through `get`): a JWKS read now, or
/// unsecured tokens with a warning.
pub fn oauth_validator(
    listener: &str,
    get: &dyn Fn(&str) -> String,
) -> anyhow::Result<(OAuthValidator, Option<JwksFile>)> {
    let jwks_url = get("sasl.oauthbearer.jwks.endpoint.url");
    let jwks = if jwks_url.trim().is_empty() {
        tracing::warn!(
            listener,
            "OAUTHBEARER without sasl.oauthbearer.jwks.endpoint.url accepts \
            unsecured tokens (alg none) that anyone can make: for development only"
        );
        None
    } else {
        let path = jwks_url
            .trim()
            .strip_prefix("file://")
            .unwrap_or(jwks_url.trim());
        if path.contains("://") {
            bail!(
                "listener {listener}: sasl.oauthbearer.jwks.endpoint.url={jwks_url:?}: only file: URLs and paths are read (Shoal does not fetch JWKS over the network)"
            );
        }
        let refresh_ms = get("sasl.oauthbearer.jwks.endpoint.refresh.ms");
        let refresh_ms: u64 = refresh_ms.trim().parse().with_context(|| {
            format!(
                "listener {listener}: sasl.oauthbearer.jwks.endpoint.refresh.ms={refresh_ms:?} \
                 is not a count of ms"
            )
        })?;
        let path = PathBuf::from(path);
        let keys = read_jwks(&path).with_context(|| format!("listener {listener}"))?;
        Some(JwksFile {
            listener: listener.to_owned(),
            path,
            keys: JwksKeys::new(keys),
            refresh: Duration::from_millis(refresh_ms.max(100)),
        })
    };
    let optional = |name: &str| Some(get(name)).filter(|v| !v.trim().is_empty());
    let validator = OAuthValidator {
        keys: jwks.as_ref().map(|j| Arc::clone(&j.keys)),
        expected_issuer: optional("sasl.oauthbearer.expected.issuer"),
        expected_audience: shoal_config::list_elements(&get("sasl.oauthbearer.expected.audience"))
            .into_iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect(),
        sub_claim_name: optional("sasl.oauthbearer.sub.claim.name").unwrap_or_else(|| "sub".into()),
        clock_skew_s: get("sasl.oauthbearer.clock.skew.seconds")
            .trim()
            .parse()
            .unwrap_or(30),
    };
    Ok((validator, jwks))
}

/// Largest JWKS file read; a real one holds a handful of keys.
const MAX_JWKS_FILE_BYTES: u64 = 1 << 20;

fn read_jwks(path: &std::path::Path) -> anyhow::Result<Vec<shoal_sasl::Jwk>> {
    let what = || format!("the JWKS {}", path.display());
    let size = std::fs::metadata(path).with_context(what)?.len();
    if size > MAX_JWKS_FILE_BYTES {
        bail!(
            "{}: {size} bytes is more than a JWKS ({MAX_JWKS_FILE_BYTES})",
            what()
        );
    }
    let text = std::fs::read_to_string(path).with_context(what)?;
    shoal_sasl::parse_jwks(&text).map_err(|e| anyhow::anyhow!("{}: {e}", what()))
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

impl JwksFile {
    /// Checks the file every refresh interval until the task is aborted.
    pub fn spawn_reloader(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let seen = std::sync::Mutex::new(stamp(&self.path));
        shoal_tls::spawn_every(self.refresh, move || {
            let now = stamp(&this.path);
            {
                let mut seen = seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if *seen == now {
                    return;
                }
                *seen = now;
            }
            match read_jwks(&this.path) {
                Ok(keys) => {
                    tracing::info!(listener = %this.listener, path = %this.path.display(),
                        keys = keys.len(), "JWKS reloaded");
                    this.keys.replace(keys);
                }
                Err(error) => {
                    tracing::error!(listener = %this.listener, error = format!("{error:#}"),
                    "the JWKS changed but does not load; keeping the previous keys")
                }
            }
        })
    }
}
