//! Where notifications may be sent (SPEC §3 Subscription): an LA chooses its endpoint, so the
//! server must not become its way into the network the server sits in.
//!
//! An endpoint whose address is loopback, link-local (cloud metadata included), unspecified,
//! multicast, broadcast, private / unique-local, reserved or documentation (`is_internal`; an
//! IPv4 address inside an IPv6 one is judged as IPv4) is refused: at registration when the URL
//! names an IP literal, and at every delivery after name resolution — the delivery then
//! connects to the very addresses that were checked (`CheckedResolver`), never through a proxy
//! (`HTTP_PROXY` and the like are ignored), so a name that resolves elsewhere the second time
//! (DNS re-binding) cannot pass. The operator opts in with
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
/// private (RFC 1918), shared (RFC 6598), IETF protocol (192.0.0.0/24), benchmarking
/// (198.18.0.0/15), documentation, reserved (240.0.0.0/4) and the 6to4 relay anycast
/// addresses; in IPv6 also unique-local (fc00::/7), site-local, documentation, discard-only
/// and local-use NAT64 (64:ff9b:1::/48) addresses. An IPv4 address carried in an IPv6 one
/// (IPv4-mapped, IPv4-compatible, SIIT, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo) is
/// judged as that IPv4 address: a packet to it reaches it.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6) || embedded_v4(v6).into_iter().any(internal_v4),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), RFC 6598.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (DS-Lite, NAT64 discovery, …), RFC 6890.
        || (a == 192 && b == 0 && c == 0)
        // 6to4 relay anycast, RFC 7526.
        || (a == 192 && b == 88 && c == 99)
        // Benchmarking, RFC 2544.
        || (a == 198 && (b & 0xfe) == 18)
        // Reserved for future use (and the broadcast address), RFC 1112.
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let [s0, s1, s2, s3, ..] = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique-local fc00::/7, link-local fe80::/10, site-local fec0::/10 (deprecated).
        || (s0 & 0xfe00) == 0xfc00
        || (s0 & 0xffc0) == 0xfe80
        || (s0 & 0xffc0) == 0xfec0
        // Documentation 2001:db8::/32 and 3fff::/20.
        || (s0 == 0x2001 && s1 == 0x0db8)
        || (s0 == 0x3fff && (s1 & 0xf000) == 0)
        // Discard-only 100::/64.
        || (s0 == 0x0100 && s1 == 0 && s2 == 0 && s3 == 0)
        // Local-use NAT64 64:ff9b:1::/48 (RFC 8215): translated inside a network only.
        || (s0 == 0x0064 && s1 == 0xff9b && s2 == 0x0001)
}

/// The IPv4 addresses an IPv6 address carries, each a way to reach that IPv4 host:
/// IPv4-mapped `::ffff:a.b.c.d`, SIIT `::ffff:0:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::/48`, and Teredo's server and (inverted) client.
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let [s0, s1, s2, s3, s4, s5, s6, s7] = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let last = v4(s6, s7);
    let mut found = Vec::new();
    if s0 == 0 && s1 == 0 && s2 == 0 && s3 == 0 {
        match (s4, s5) {
            // IPv4-compatible (deprecated; `::` and `::1` are judged as IPv6 above).
            (0, 0) if !(s6 == 0 && s7 <= 1) => found.push(last),
            (0, 0xffff) | (0xffff, 0) => found.push(last),
            _ => {}
        }
    }
    // NAT64 well-known prefix, RFC 6052.
    if s0 == 0x0064 && s1 == 0xff9b && s2 == 0 && s3 == 0 && s4 == 0 && s5 == 0 {
        found.push(last);
    }
    // 6to4, RFC 3056: the IPv4 address follows the prefix.
    if s0 == 0x2002 {
        found.push(v4(s1, s2));
    }
    // Teredo 2001::/32, RFC 4380: the server, then the client's address inverted.
    if s0 == 0x2001 && s1 == 0 {
        found.push(v4(s2, s3));
        found.push(v4(!s6, !s7));
    }
    found
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
    fn an_internal_ipv4_inside_an_ipv6_address_is_internal() {
        for endpoint in [
            // NAT64 well-known prefix.
            "http://[64:ff9b::a00:1]/hook",
            "http://[64:ff9b::7f00:1]/hook",
            "http://[64:ff9b::a9fe:a9fe]/hook",
            // Local-use NAT64, whatever it carries.
            "http://[64:ff9b:1::a9fe:a9fe]/hook",
            "http://[64:ff9b:1:abcd::808:808]/hook",
            // 6to4.
            "http://[2002:a9fe:a9fe::1]/hook",
            "http://[2002:7f00:1::]/hook",
            "http://[2002:c0a8:101:1::1]/hook",
            // IPv4-compatible.
            "http://[::127.0.0.1]/hook",
            "http://[::10.1.2.3]/hook",
            "http://[::169.254.169.254]/hook",
            // IPv4-mapped and SIIT.
            "http://[::ffff:192.168.0.1]/hook",
            "http://[::ffff:0:10.0.0.1]/hook",
            // Teredo with a private client (10.0.0.1 inverted) or server.
            "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",
            "http://[2001:0:a00:1::1]/hook",
        ] {
            assert!(strict().check_url(endpoint).is_err(), "{endpoint}");
        }
        for endpoint in [
            "http://[64:ff9b::808:808]/hook",
            "http://[2002:808:808::1]/hook",
            "http://[::ffff:8.8.8.8]/hook",
            "http://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/hook",
        ] {
            assert!(strict().check_url(endpoint).is_ok(), "{endpoint}");
        }
    }

    #[test]
    fn reserved_and_documentation_ranges_are_internal() {
        for ip in [
            "192.0.0.0",
            "192.0.0.8",
            "192.0.0.170",
            "192.0.0.255",
            "192.88.99.1",
            "198.18.0.0",
            "198.19.255.255",
            "240.0.0.1",
            "250.1.2.3",
            "255.255.255.254",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "fec0::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "192.0.1.255",
            "192.0.3.1",
            "198.17.255.255",
            "198.20.0.0",
            "239.255.255.255",
            "2001:db9::1",
            "2a00:1450::1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(is_internal(addr), addr.is_multicast(), "{ip}");
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
