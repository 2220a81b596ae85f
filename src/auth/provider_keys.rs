//! The identity provider's signing keys: a JWKS document, named directly (`CPIS_JWT_JWKS_URL`)
//! or found by OpenID Connect discovery from the issuer, cached and chosen by `kid`.
//!
//! Refreshing is rate-limited and single-flight: a token with an unknown `kid` fetches the
//! document at most once per `min_interval` (a flood of made-up `kid`s cannot hammer the
//! provider; concurrent ones wait for the same fetch), and the cache is refreshed in the
//! background when older than `max_age`. A fetched document replaces the cache, so a key the
//! provider removed stops verifying; a failed fetch leaves the cache as it was, so the provider
//! being down breaks only tokens signed by keys never seen.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::RwLock;
use serde_json::Value;
use url::Url;

/// The largest discovery or JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Where the keys are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS document.
    Jwks(Url),
    /// `{issuer}/.well-known/openid-configuration`, whose `jwks_uri` names the JWKS document.
    Discovery { issuer: String },
}

impl KeySource {
    /// The URL first fetched: the JWKS, or the discovery document.
    pub fn first_url(&self) -> Result<Url, String> {
        let url = match self {
            KeySource::Jwks(url) => url.clone(),
            KeySource::Discovery { issuer } => Url::parse(&format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ))
            .map_err(|e| format!("issuer {issuer:?} is not a URL: {e}"))?,
        };
        provider_url(&url)?;
        Ok(url)
    }
}

/// Keys come over https, or over http from this machine only (a provider beside the server in
/// tests and development): anything else could be forged on the way.
pub fn provider_url(url: &Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("{url} must be https (http only on loopback)")),
    }
}

/// How the cache is kept fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRefresh {
    /// Refresh in the background once the keys are this old.
    pub max_age: Duration,
    /// The least time between two fetches (an unknown `kid` waits for the next allowed one).
    pub min_interval: Duration,
    /// How long one fetch may take.
    pub timeout: Duration,
}

impl Default for KeyRefresh {
    fn default() -> KeyRefresh {
        KeyRefresh {
            max_age: Duration::from_secs(300),
            min_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

/// One usable verification key from the document.
struct ProviderKey {
    kid: Option<String>,
    /// The `alg` the document pins this key to, if any.
    alg: Option<Algorithm>,
    curve: KeyKind,
    key: Arc<DecodingKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
}

impl KeyKind {
    fn signs(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(alg, Algorithm::RS256 | Algorithm::PS256),
            KeyKind::EcP256 => alg == Algorithm::ES256,
        }
    }
}

struct Cache {
    keys: Vec<ProviderKey>,
    fetched_at: Option<Instant>,
}

/// The provider's keys, cached.
pub struct ProviderKeys {
    source: KeySource,
    refresh: KeyRefresh,
    client: reqwest::Client,
    cache: RwLock<Cache>,
    /// Held while fetching (single flight); holds when the last fetch started.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// A background refresh is on its way: the next stale read does not start another.
    refreshing: AtomicBool,
    fetches: AtomicU64,
}

impl ProviderKeys {
    pub fn new(source: KeySource, refresh: KeyRefresh) -> Result<ProviderKeys, String> {
        source.first_url()?;
        let client = reqwest::Client::builder()
            .timeout(refresh.timeout)
            // Fetches are rare and may come from any worker's runtime: no pooled connection is
            // kept that a runtime other than its own would use.
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(ProviderKeys {
            source,
            refresh,
            client,
            cache: RwLock::new(Cache {
                keys: Vec::new(),
                fetched_at: None,
            }),
            last_fetch: tokio::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many times the documents were fetched (tests and metrics).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key for a token signed with `alg` whose header names `kid`; fetches the document
    /// when the key is not cached (rate-limited).
    pub async fn key_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<DecodingKey>, String> {
        if let Some(key) = self.cached(kid, alg) {
            if self.is_stale() && !self.refreshing.swap(true, Ordering::AcqRel) {
                let keys = self.clone();
                tokio::spawn(async move {
                    keys.refresh().await;
                    keys.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(key);
        }
        self.refresh().await;
        self.cached(kid, alg).ok_or_else(|| match kid {
            Some(kid) => format!("no key of the identity provider has kid {kid:?}"),
            None => "the token names no kid, and the identity provider has more than one key \
                     (or none) for its algorithm"
                .into(),
        })
    }

    fn is_stale(&self) -> bool {
        self.cache
            .read()
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.refresh.max_age)
    }

    fn cached(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<DecodingKey>> {
        let cache = self.cache.read();
        let mut usable = cache
            .keys
            .iter()
            .filter(|k| k.curve.signs(alg) && k.alg.is_none_or(|a| a == alg));
        match kid {
            Some(kid) => usable
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| k.key.clone()),
            // Without a kid, only when there is no choice to make.
            None => match (usable.next(), usable.next()) {
                (Some(only), None) => Some(only.key.clone()),
                _ => None,
            },
        }
    }

    /// Fetches the keys unless a fetch started less than `min_interval` ago; concurrent callers
    /// wait for the fetch under way rather than start their own.
    pub async fn refresh(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.refresh.min_interval) {
            return;
        }
        *last = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "identity provider keys refreshed");
                *self.cache.write() = Cache {
                    keys,
                    fetched_at: Some(Instant::now()),
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, "identity provider keys could not be fetched; the cached keys stay in use")
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<ProviderKey>, String> {
        let jwks_url = match &self.source {
            KeySource::Jwks(url) => url.clone(),
            KeySource::Discovery { issuer } => {
                let doc = self.get_json(self.source.first_url()?).await?;
                // OpenID Connect Discovery §4.3: the document must name the issuer asked for.
                if doc.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
                    return Err(format!(
                        "the discovery document does not name issuer {issuer:?}"
                    ));
                }
                let uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or("the discovery document has no jwks_uri")?;
                let url = Url::parse(uri).map_err(|e| format!("jwks_uri: {e}"))?;
                provider_url(&url)?;
                url
            }
        };
        let doc = self.get_json(jwks_url).await?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS document has no keys array")?;
        // One key we cannot use (an encryption key, another curve) must not hide the others.
        Ok(keys.iter().filter_map(usable_key).collect())
    }

    async fn get_json(&self, url: Url) -> Result<Value, String> {
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", without_url(&e)))?;
        if !response.status().is_success() {
            return Err(format!(
                "{url} answered HTTP {}",
                response.status().as_u16()
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", without_url(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "{url}: document larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "").replace(" ()", "");
    }
    text
}

/// A signing key we can verify with: RSA, or EC on P-256; not one for encryption.
fn usable_key(value: &Value) -> Option<ProviderKey> {
    let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    let curve = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => KeyKind::EcP256,
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(_) => return None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(ProviderKey {
        kid: jwk.common.key_id,
        alg,
        curve,
        key: Arc::new(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_over_https_or_from_loopback_only() {
        let ok = |u: &str| provider_url(&Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://login.example.org/jwks"));
        assert!(ok("http://127.0.0.1:9000/jwks"));
        assert!(ok("http://[::1]:9000/jwks"));
        assert!(ok("http://localhost/jwks"));
        assert!(!ok("http://login.example.org/jwks"));
        assert!(!ok("http://10.0.0.1/jwks"));
        assert!(!ok("ftp://127.0.0.1/jwks"));
    }

    #[test]
    fn encryption_keys_other_curves_and_symmetric_keys_are_not_used() {
        use serde_json::json;
        assert!(usable_key(&json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"})).is_none());
        assert!(
            usable_key(&json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"})).is_none()
        );
        assert!(usable_key(&json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"})).is_none());
        assert!(usable_key(&json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r"})).is_some());
    }
}
