//! JWT verification. The algorithm is pinned by configuration: a token whose header names any
//! other algorithm (or `none`) is rejected before its signature is looked at. Issuing tokens
//! is `token`'s; what a verified token says of its caller is an `Identity`.

use std::str::FromStr;

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::claims::ClaimMap;
use super::identity::Identity;
use super::provider_keys::{KeyRefresh, KeySource, ProviderKeys};

/// Leeway for `exp`/`nbf`, in seconds (SPEC §2: at most 60).
pub const LEEWAY_SECONDS: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    PS256,
    ES256,
}

impl FromStr for JwtAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "HS256" => Ok(Self::HS256),
            "RS256" => Ok(Self::RS256),
            "PS256" => Ok(Self::PS256),
            "ES256" => Ok(Self::ES256),
            other => Err(format!(
                "unsupported algorithm {other:?} (HS256, RS256, PS256 or ES256)"
            )),
        }
    }
}

impl JwtAlgorithm {
    pub fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::RS256 => Algorithm::RS256,
            Self::PS256 => Algorithm::PS256,
            Self::ES256 => Algorithm::ES256,
        }
    }
}

/// The configured verification key.
#[derive(Clone)]
pub enum KeyConfig {
    Secret(String),
    PublicKey {
        alg: JwtAlgorithm,
        pem: Vec<u8>,
    },
    /// The identity provider's published keys (JWKS, or OIDC discovery), with the algorithms
    /// its tokens may use.
    Provider {
        source: KeySource,
        algorithms: Vec<JwtAlgorithm>,
        refresh: KeyRefresh,
    },
}

impl KeyConfig {
    /// An identity provider's keys (a JWKS URL or OIDC discovery): keys it signs every realm's
    /// and client's tokens with, so the issuer must be checked too.
    pub fn is_provider(&self) -> bool {
        matches!(self, KeyConfig::Provider { .. })
    }

    /// The algorithms a token may be signed with.
    pub fn algorithms(&self) -> Vec<JwtAlgorithm> {
        match self {
            KeyConfig::Secret(_) => vec![JwtAlgorithm::HS256],
            KeyConfig::PublicKey { alg, .. } => vec![*alg],
            KeyConfig::Provider { algorithms, .. } => algorithms.clone(),
        }
    }
    /// A description safe to log (never the key material).
    pub fn describe(&self) -> String {
        match self {
            KeyConfig::Secret(_) => "HS256 shared secret (redacted)".into(),
            KeyConfig::PublicKey { alg, .. } => format!("{alg:?} public key"),
            KeyConfig::Provider {
                source, algorithms, ..
            } => format!("{algorithms:?} keys from {source:?}"),
        }
    }
}

/// Where the keys come from.
enum Keys {
    Static(Arc<DecodingKey>),
    Provider(Arc<ProviderKeys>),
}

/// Verifies bearer tokens against the configured keys, algorithms, issuer and audience, and
/// reads the caller's identity from their claims (`claims::ClaimMap`).
pub struct Verifier {
    keys: Keys,
    /// One validation per allowed algorithm: a token naming any other is refused before its
    /// signature is looked at.
    validations: Vec<(Algorithm, Validation)>,
    claims: ClaimMap,
}

impl Verifier {
    /// A verifier that reads this server's own claim names.
    pub fn new(key: &KeyConfig, issuer: Option<&str>, audience: &str) -> Result<Verifier, String> {
        Self::with_claims(key, issuer, audience, ClaimMap::default())
    }

    pub fn with_claims(
        key: &KeyConfig,
        issuer: Option<&str>,
        audience: &str,
        claims: ClaimMap,
    ) -> Result<Verifier, String> {
        if key.is_provider() && issuer.is_none() {
            return Err(
                "an identity provider's keys need the issuer (CPIS_JWT_ISSUER) to be checked"
                    .into(),
            );
        }
        let keys = match key {
            KeyConfig::Secret(s) => Keys::Static(Arc::new(DecodingKey::from_secret(s.as_bytes()))),
            KeyConfig::PublicKey {
                alg: JwtAlgorithm::RS256 | JwtAlgorithm::PS256,
                pem,
            } => Keys::Static(Arc::new(
                DecodingKey::from_rsa_pem(pem).map_err(|e| e.to_string())?,
            )),
            KeyConfig::PublicKey { pem, .. } => Keys::Static(Arc::new(
                DecodingKey::from_ec_pem(pem).map_err(|e| e.to_string())?,
            )),
            KeyConfig::Provider {
                source, refresh, ..
            } => Keys::Provider(Arc::new(ProviderKeys::new(
                source.clone(),
                refresh.clone(),
            )?)),
        };
        let validations = key
            .algorithms()
            .into_iter()
            .map(|alg| {
                let alg = alg.jsonwebtoken();
                let mut validation = Validation::new(alg);
                validation.leeway = LEEWAY_SECONDS;
                validation.validate_exp = true;
                validation.validate_nbf = true;
                validation.set_audience(&[audience]);
                match issuer {
                    Some(iss) => {
                        validation.set_issuer(&[iss]);
                        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
                    }
                    None => validation.set_required_spec_claims(&["exp", "aud"]),
                }
                (alg, validation)
            })
            .collect();
        Ok(Verifier {
            keys,
            validations,
            claims,
        })
    }

    /// The provider's keys, when they come from one.
    pub fn provider_keys(&self) -> Option<Arc<ProviderKeys>> {
        match &self.keys {
            Keys::Provider(keys) => Some(keys.clone()),
            Keys::Static(_) => None,
        }
    }

    /// Verifies the token and the claims its role needs. The error text is safe to return to
    /// the caller: it never contains the token.
    pub async fn verify(&self, token: &str) -> Result<Identity, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("invalid token: {e}"))?;
        let validation = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("invalid token: algorithm {:?} is not accepted", header.alg))?;
        let key = match &self.keys {
            Keys::Static(key) => key.clone(),
            Keys::Provider(keys) => keys
                .key_for(header.kid.as_deref(), header.alg)
                .await
                .map_err(|e| format!("invalid token: {e}"))?,
        };
        let data = jsonwebtoken::decode::<Value>(token, &key, validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        self.claims.identity(&data.claims)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::*;
    use crate::auth::policy::Role;
    use crate::auth::token::{issue, TokenRequest};
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &str = "unit-test-secret-of-at-least-32-bytes";

    fn request(role: Role) -> TokenRequest {
        TokenRequest {
            sub: "user-1".into(),
            role,
            org: Some("RJ1".into()),
            name: Some("Dr Jane Smith".into()),
            org_name: None,
            job_role: Some("Staff Nurse".into()),
            job_role_code: None,
            ttl_seconds: 300,
        }
    }

    fn verifier() -> Verifier {
        Verifier::new(&KeyConfig::Secret(SECRET.into()), Some("iss-1"), "cpis").unwrap()
    }

    fn sign(req: &TokenRequest, iss: Option<&str>, aud: &str) -> String {
        issue(req, JwtAlgorithm::HS256, SECRET.as_bytes(), iss, aud).unwrap()
    }

    #[tokio::test]
    async fn a_well_formed_token_verifies() {
        let id = verifier()
            .verify(&sign(&request(Role::HealthCare), Some("iss-1"), "cpis"))
            .await
            .unwrap();
        assert_eq!(id.role, Role::HealthCare);
        assert_eq!(id.org.as_deref(), Some("RJ1"));
    }

    #[tokio::test]
    async fn wrong_issuer_audience_or_expiry_is_rejected() {
        let v = verifier();
        let req = request(Role::HealthCare);
        assert!(v.verify(&sign(&req, Some("other"), "cpis")).await.is_err());
        assert!(v.verify(&sign(&req, Some("iss-1"), "other")).await.is_err());
        let mut expired = request(Role::HealthCare);
        expired.ttl_seconds = -(LEEWAY_SECONDS as i64) - 5;
        assert!(v
            .verify(&sign(&expired, Some("iss-1"), "cpis"))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn health_care_token_without_name_is_rejected() {
        let mut req = request(Role::HealthCare);
        req.name = None;
        assert!(verifier()
            .verify(&sign(&req, Some("iss-1"), "cpis"))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn unsigned_alg_none_token_is_rejected() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let exp = chrono::Utc::now().timestamp() + 300;
        let body = b64(format!(
            r#"{{"sub":"x","role":"operations","exp":{exp},"iss":"iss-1","aud":"cpis"}}"#
        )
        .as_bytes());
        assert!(verifier()
            .verify(&format!("{header}.{body}."))
            .await
            .is_err());
    }

    // --- keys from an identity provider ---

    const RSA_A: &str = include_str!("testdata/rsa_a.pem");
    const RSA_B: &str = include_str!("testdata/rsa_b.pem");
    const EC_C: &str = include_str!("testdata/ec_c.pem");
    const JWK_A: &str = include_str!("testdata/rsa-a.jwk.json");
    const JWK_B: &str = include_str!("testdata/rsa-b.jwk.json");
    const JWK_C: &str = include_str!("testdata/ec-c.jwk.json");

    /// A JWKS endpoint on loopback serving whatever `document` holds (`None`: answers 503, as
    /// a provider that is down), counting requests.
    struct Provider {
        url: String,
        document: Arc<Mutex<Option<String>>>,
        requests: Arc<AtomicUsize>,
    }

    impl Provider {
        fn start(keys: &[&str]) -> Provider {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/jwks", listener.local_addr().unwrap());
            let document = Arc::new(Mutex::new(Some(jwks(keys))));
            let requests = Arc::new(AtomicUsize::new(0));
            let (doc, count) = (document.clone(), requests.clone());
            std::thread::spawn(move || {
                for mut stream in listener.incoming().flatten() {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    count.fetch_add(1, Ordering::SeqCst);
                    let answer = match doc.lock().clone() {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
                    };
                    let _ = stream.write_all(answer.as_bytes());
                }
            });
            Provider {
                url,
                document,
                requests,
            }
        }

        fn publish(&self, keys: Option<&[&str]>) {
            *self.document.lock() = keys.map(jwks);
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }

        fn verifier(&self, algorithms: &[JwtAlgorithm], min_interval: Duration) -> Verifier {
            self.verifier_refreshing(algorithms, min_interval, KeyRefresh::default().max_age)
        }

        fn verifier_refreshing(
            &self,
            algorithms: &[JwtAlgorithm],
            min_interval: Duration,
            max_age: Duration,
        ) -> Verifier {
            let key = KeyConfig::Provider {
                source: KeySource::Jwks(url::Url::parse(&self.url).unwrap()),
                algorithms: algorithms.to_vec(),
                refresh: KeyRefresh {
                    min_interval,
                    max_age,
                    ..KeyRefresh::default()
                },
            };
            Verifier::new(&key, Some("iss-1"), "cpis").unwrap()
        }
    }

    fn jwks(keys: &[&str]) -> String {
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| serde_json::from_str(k).unwrap())
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    fn signed(alg: JwtAlgorithm, kid: Option<&str>, pem: &str) -> String {
        let mut header = Header::new(alg.jsonwebtoken());
        header.kid = kid.map(str::to_string);
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({"sub": "u1", "role": "operations", "exp": now + 300,
            "iss": "iss-1", "aud": "cpis"});
        let key = match alg {
            JwtAlgorithm::HS256 => EncodingKey::from_secret(pem.as_bytes()),
            JwtAlgorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        };
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    const ALL: [JwtAlgorithm; 3] = [
        JwtAlgorithm::RS256,
        JwtAlgorithm::PS256,
        JwtAlgorithm::ES256,
    ];

    #[tokio::test]
    async fn the_key_is_chosen_by_kid_among_the_providers_keys() {
        let provider = Provider::start(&[JWK_A, JWK_B, JWK_C]);
        let v = provider.verifier(&ALL, Duration::from_secs(60));
        for token in [
            signed(JwtAlgorithm::RS256, Some("rsa-a"), RSA_A),
            signed(JwtAlgorithm::PS256, Some("rsa-b"), RSA_B),
            signed(JwtAlgorithm::ES256, Some("ec-c"), EC_C),
        ] {
            assert_eq!(v.verify(&token).await.unwrap().role, Role::Operations);
        }
        // Signed by A but naming B's kid: B's key does not verify it.
        let crossed = signed(JwtAlgorithm::RS256, Some("rsa-b"), RSA_A);
        assert!(v.verify(&crossed).await.is_err());
        // No kid and two RSA keys: no choice is made.
        let anonymous = signed(JwtAlgorithm::RS256, None, RSA_A);
        assert!(v.verify(&anonymous).await.unwrap_err().contains("no kid"));
        assert_eq!(provider.requests(), 1, "one fetch served every token");
    }

    #[tokio::test]
    async fn only_the_pinned_algorithms_are_accepted() {
        let provider = Provider::start(&[JWK_A]);
        let v = provider.verifier(&[JwtAlgorithm::RS256], Duration::from_secs(60));
        // An HS256 token against a JWKS of RSA keys, even one "signed" with the public key
        // as the secret (the algorithm-confusion attack).
        let public = serde_json::to_string(&serde_json::from_str::<Value>(JWK_A).unwrap()).unwrap();
        let hs = signed(JwtAlgorithm::HS256, Some("rsa-a"), &public);
        assert!(v.verify(&hs).await.unwrap_err().contains("HS256"));
        let ps = signed(JwtAlgorithm::PS256, Some("rsa-a"), RSA_A);
        assert!(v.verify(&ps).await.unwrap_err().contains("PS256"));
        assert!(v
            .verify(&signed(JwtAlgorithm::RS256, Some("rsa-a"), RSA_A))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_and_a_removed_one_stops_verifying() {
        let provider = Provider::start(&[JWK_A]);
        let v = provider.verifier(&ALL, Duration::ZERO);
        let old = signed(JwtAlgorithm::RS256, Some("rsa-a"), RSA_A);
        assert!(v.verify(&old).await.is_ok());
        provider.publish(Some(&[JWK_B]));
        let new = signed(JwtAlgorithm::RS256, Some("rsa-b"), RSA_B);
        assert!(v.verify(&new).await.is_ok(), "unknown kid: fetched again");
        assert!(v.verify(&old).await.is_err(), "A is gone from the document");
    }

    #[tokio::test]
    async fn with_the_provider_down_cached_keys_work_and_new_kids_are_refused() {
        let provider = Provider::start(&[JWK_A]);
        let v = provider.verifier(&ALL, Duration::ZERO);
        let cached = signed(JwtAlgorithm::RS256, Some("rsa-a"), RSA_A);
        assert!(v.verify(&cached).await.is_ok());
        provider.publish(None);
        assert!(v.verify(&cached).await.is_ok());
        let unseen = signed(JwtAlgorithm::RS256, Some("rsa-b"), RSA_B);
        assert!(v.verify(&unseen).await.is_err());
        assert!(
            v.verify(&cached).await.is_ok(),
            "a failed fetch keeps the cache"
        );
    }

    #[tokio::test]
    async fn stale_keys_are_refreshed_in_the_background() {
        let provider = Provider::start(&[JWK_A]);
        let v = provider.verifier_refreshing(&ALL, Duration::ZERO, Duration::ZERO);
        let a = signed(JwtAlgorithm::RS256, Some("rsa-a"), RSA_A);
        assert!(v.verify(&a).await.is_ok());
        provider.publish(Some(&[JWK_A, JWK_B]));
        // A is cached but stale: answered at once, and the keys fetched again behind it.
        assert!(v.verify(&a).await.is_ok());
        let started = std::time::Instant::now();
        while provider.requests() < 2 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        provider.publish(None);
        let b = signed(JwtAlgorithm::RS256, Some("rsa-b"), RSA_B);
        assert!(
            v.verify(&b).await.is_ok(),
            "B came with the background refresh"
        );
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
        let provider = Provider::start(&[JWK_A]);
        let v = Arc::new(provider.verifier(&ALL, Duration::from_secs(60)));
        let tokens: Vec<String> = (0..50)
            .map(|n| signed(JwtAlgorithm::RS256, Some(&format!("bogus-{n}")), RSA_A))
            .collect();
        let verdicts = futures::future::join_all(tokens.iter().map(|t| v.verify(t))).await;
        assert!(verdicts.iter().all(Result::is_err));
        assert_eq!(provider.requests(), 1, "{} fetches", provider.requests());
    }
}
