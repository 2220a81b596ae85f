//! Where notifications may be sent (SPEC §3 Subscription): an LA chooses its endpoint, so the
//! server must not become its way into the network the server sits in.
//!
//! An endpoint whose address is loopback, link-local (cloud metadata included), unspecified,
//! multicast, broadcast or private / unique-local is refused: at registration when the URL
//! names an IP literal, and at every delivery after name resolution — the delivery then
//! connects to the very addresses that were checked (`CheckedResolver`), so a name that
//! resolves elsewhere the second time (DNS re-binding) cannot pass. The operator opts in with
//! `CPIS_NOTIFY_ALLOWED_HOSTS` (then only those hosts, which skip the address check) or
//! `CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS=1` (an HSCN deployment).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// Headers the server sets on every notification: a Subscription may not set them.
const SERVER_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "x-cpis-notification-id",
    "x-cpis-attendance-pattern",
];

#[derive(Debug, Clone, Default)]
pub struct EndpointPolicy {
    /// `CPIS_NOTIFY_ALLOWED_HOSTS`: when set, only these hosts (any address).
    pub allowed_hosts: Option<Vec<String>>,
    /// `CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS=1`: internal addresses are allowed.
    pub allow_private_networks: bool,
}

impl EndpointPolicy {
    /// Checks an endpoint URL as far as it can be without resolving it: an absolute http(s)
    /// URL, of an allowed host, not an internal IP literal. The reason is for the LA.
    pub fn check_url(&self, endpoint: &str) -> Result<Url, String> {
        let url = Url::parse(endpoint).map_err(|e| format!("not an absolute URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("the endpoint must be an http(s) URL".into());
        }
        let host = url.host_str().unwrap_or_default();
        if let Some(allowed) = &self.allowed_hosts {
            return if allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
                Ok(url)
            } else {
                Err(format!("notifications may not be sent to {host}"))
            };
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        match literal {
            Some(ip) if !self.allow_private_networks && is_internal(ip) => Err(format!(
                "notifications may not be sent to an internal address ({host})"
            )),
            _ => Ok(url),
        }
    }

    /// Whether the addresses `host` resolved to may be connected to.
    fn addresses_allowed(&self, host: &str, addresses: &[SocketAddr]) -> bool {
        let listed = self
            .allowed_hosts
            .as_ref()
            .is_some_and(|allowed| allowed.iter().any(|a| a.eq_ignore_ascii_case(host)));
        listed
            || self.allow_private_networks
            || (!addresses.is_empty() && addresses.iter().all(|a| !is_internal(a.ip())))
    }

    /// A resolver for the delivery client that answers only with addresses this policy allows.
    pub fn resolver(self: &Arc<Self>) -> Arc<CheckedResolver> {
        Arc::new(CheckedResolver {
            policy: self.clone(),
        })
    }
}

/// Checks one `channel.header` entry: `Name: value`, a valid header name and value, not a
/// header the server sets. The reason is for the LA.
pub fn check_header(entry: &str) -> Result<(), String> {
    let (name, value) = entry
        .split_once(':')
        .ok_or("a header is written `Name: value`")?;
    let name = name.trim();
    let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    reqwest::header::HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of {name} is not a valid header value"))?;
    if SERVER_HEADERS.contains(&header.as_str()) {
        return Err(format!("{name} is set by the server"));
    }
    Ok(())
}

/// Loopback, link-local (169.254.0.0/16: cloud metadata), unspecified, multicast, broadcast,
/// private (RFC 1918), shared (RFC 6598) and unique-local (fc00::/7) addresses; an IPv4 address
/// mapped into IPv6 is judged as IPv4.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments().first().copied().unwrap_or_default();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// The delivery client's name resolution: the system resolver, then the policy. What it
/// returns is all the client connects to.
pub struct CheckedResolver {
    policy: Arc<EndpointPolicy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !policy.addresses_allowed(&host, &addresses) {
                return Err(
                    "the endpoint resolves to an address notifications may not reach".into(),
                );
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> EndpointPolicy {
        EndpointPolicy::default()
    }

    #[test]
    fn internal_ip_literals_are_refused_at_registration() {
        for endpoint in [
            "http://127.0.0.1/hook",
            "http://127.8.9.10/hook",
            "http://10.1.2.3/hook",
            "http://172.16.0.1/hook",
            "http://172.31.255.255/hook",
            "http://192.168.1.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/hook",
            "http://224.0.0.1/hook",
            "http://255.255.255.255/hook",
            "http://100.64.0.1/hook",
            "http://[::1]/hook",
            "http://[::]/hook",
            "http://[fe80::1]/hook",
            "http://[fc00::1]/hook",
            "http://[fd12:3456::1]/hook",
            "http://[ff02::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::ffff:169.254.169.254]/hook",
        ] {
            assert!(strict().check_url(endpoint).is_err(), "{endpoint}");
        }
        for endpoint in [
            "https://notify.la.gov.uk/hook",
            "http://8.8.8.8/hook",
            "http://172.32.0.1/hook",
            "http://[2001:4860:4860::8888]/hook",
        ] {
            assert!(strict().check_url(endpoint).is_ok(), "{endpoint}");
        }
    }

    #[test]
    fn the_opt_ins_allow_internal_addresses() {
        let private = EndpointPolicy {
            allow_private_networks: true,
            ..EndpointPolicy::default()
        };
        assert!(private.check_url("http://10.1.2.3/hook").is_ok());
        let listed = EndpointPolicy {
            allowed_hosts: Some(vec!["127.0.0.1".into(), "hook.hscn".into()]),
            ..EndpointPolicy::default()
        };
        assert!(listed.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(
            listed.check_url("http://10.1.2.3/hook").is_err(),
            "not listed"
        );
        let loopback = [SocketAddr::from(([127, 0, 0, 1], 0))];
        assert!(listed.addresses_allowed("hook.hscn", &loopback));
        assert!(!strict().addresses_allowed("localhost", &loopback));
        assert!(!strict().addresses_allowed("nowhere", &[]));
    }

    #[test]
    fn headers_are_name_colon_value_and_never_the_servers() {
        assert!(check_header("Authorization: Bearer abc").is_ok());
        assert!(check_header("X-LA-Key:secret").is_ok());
        for bad in [
            "no colon",
            "Bad Name: x",
            ": empty name",
            "X-Injected: a\r\nHost: evil",
            "X-Newline: a\nb",
            "Host: evil.example",
            "content-type: text/plain",
            "X-CPIS-Notification-Id: forged",
            "Transfer-Encoding: chunked",
        ] {
            assert!(check_header(bad).is_err(), "{bad:?}");
        }
    }
}
