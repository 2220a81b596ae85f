//! The test client: every response is checked on arrival.

use super::*;

/// A reqwest client whose every response is checked on arrival: a body that is a FHIR
/// resource must conform to its profile (`conform`), whether or not the test reads it, and a
/// body sent as `application/fhir+json` must be a FHIR resource. The response is then handed
/// back as it came, so tests read status, headers and body as usual.
#[derive(Clone, Default)]
pub struct Client(pub(super) reqwest::Client);

pub struct RequestBuilder(pub(super) reqwest::RequestBuilder);

impl Client {
    pub fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        RequestBuilder(self.0.request(method, url))
    }
    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }
    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }
}

impl RequestBuilder {
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        Self(self.0.bearer_auth(token))
    }
    pub fn header(self, name: &str, value: &str) -> Self {
        Self(self.0.header(name, value))
    }
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self(self.0.body(body))
    }
    pub async fn send(self) -> reqwest::Result<Response> {
        checked(self.0.send().await?).await
    }
}

async fn checked(res: Response) -> reqwest::Result<Response> {
    let (status, version, url) = (res.status(), res.version(), res.url().clone());
    let headers = res.headers().clone();
    let bytes = res.bytes().await?;
    let fhir_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/fhir+json"));
    let context = format!("{status} from {url}");
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) if value.get("resourceType").is_some() => conform(&value, &context),
        _ if fhir_json && !bytes.is_empty() => panic!(
            "{context}: an application/fhir+json body that is not a FHIR resource: {}",
            String::from_utf8_lossy(&bytes)
        ),
        _ => {}
    }
    let mut rebuilt = http::Response::builder()
        .status(status)
        .version(version)
        .url(url);
    for (name, value) in &headers {
        rebuilt = rebuilt.header(name, value);
    }
    Ok(Response::from(
        rebuilt.body(bytes).expect("the response as it came"),
    ))
}
