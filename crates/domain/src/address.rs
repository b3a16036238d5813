//! Which URLs the service may fetch.
//!
//! Two layers use these rules: the api checks the URL literal at submit time
//! ([`SourceUrl::parse`]), and every process that connects out checks the address it is
//! about to connect to ([`is_public_ip`]) after resolving the name, so a name that
//! resolves to a private address is refused too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// Longest URL accepted, in bytes (the contract's limit).
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL was refused. The `Display` text is what the client reads in `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("is not a valid absolute URL ({0})")]
    Invalid(String),
    #[error("must use http or https, not {0}:")]
    Scheme(String),
    #[error("must not carry a user name or password (use the auth field)")]
    UserInfo,
    #[error("has no host")]
    NoHost,
    #[error("points at a private, loopback or reserved address ({0})")]
    PrivateAddress(String),
}

/// Hosts and networks exempt from the private-address refusal
/// (`ENCONVERT_ALLOW_PRIVATE_TARGETS`). Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl AllowList {
    /// Parses a comma-separated list of host names, IP addresses and CIDRs.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut list = AllowList::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = item.trim_matches(['[', ']']).parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if item
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                list.hosts.push(item.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "`{item}` is neither a host name, an IP address nor a CIDR"
                ));
            }
        }
        Ok(list)
    }

    /// True when the address is covered by an allowed network.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// True when the host name is listed.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    /// True when the address may be connected to: public, or explicitly allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public_ip(ip) || self.allows_ip(ip)
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.nets.is_empty()
    }
}

/// IPv4-mapped and IPv4-compatible IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                // ::a.b.c.d (deprecated IPv4-compatible) and 64:ff9b::/96 (NAT64)
                if (s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1))
                    || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
                {
                    let o = v6.octets();
                    IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
                } else {
                    IpAddr::V6(v6)
                }
            }
        },
        v4 => v4,
    }
}

/// True only for globally routable unicast addresses: loopback, private (RFC 1918),
/// CGNAT, link-local (which holds the cloud metadata address), multicast, documentation,
/// benchmarking, unique-local, reserved and unspecified ranges are all refused.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network", 0.0.0.0/8
        || a == 10                            // RFC 1918
        || a == 127                           // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 169 && b == 254)             // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // RFC 1918
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)   // 6to4 relay anycast
        || (a == 192 && b == 168)             // RFC 1918
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)   // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID...)
        || s[0] == 0x2002 // 6to4: embeds an IPv4 address we cannot vouch for
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || s[0] < 0x2000 // everything outside global unicast 2000::/3
        || s[0] >= 0x4000)
}

/// A target or callback URL that passed the literal checks: http(s), a host, no user info,
/// and, when the host is an IP literal, a public (or allowed) address.
///
/// Names are checked again when they are resolved, at connection time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceUrl(Url);

impl SourceUrl {
    pub fn parse(input: &str, allow: &AllowList) -> Result<Self, UrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        if input.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let url = Url::parse(input).map_err(|e| UrlError::Invalid(e.to_string()))?;
        // The parser lower-cases the scheme, so `HTTP:` and `FILE:` are judged as usual.
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(UrlError::Scheme(other.to_string())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::UserInfo);
        }
        check_host(&url, allow)?;
        Ok(SourceUrl(url))
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn into_string(self) -> String {
        self.0.into()
    }
}

impl fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Checks the host of a parsed http(s) URL: IP literals (in any encoding the WHATWG parser
/// accepts: decimal, hex, octal, IPv4-mapped IPv6) must be public or allowed, and the
/// `localhost` names are refused unless allowed.
pub fn check_host(url: &Url, allow: &AllowList) -> Result<(), UrlError> {
    match url.host() {
        None => Err(UrlError::NoHost),
        Some(Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4), allow),
        Some(Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6), allow),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err(UrlError::NoHost);
            }
            let local = name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".local")
                || name.ends_with(".internal")
                || !name.contains('.');
            if local && !allow.allows_host(&name) {
                return Err(UrlError::PrivateAddress(name));
            }
            Ok(())
        }
    }
}

fn check_ip(ip: IpAddr, allow: &AllowList) -> Result<(), UrlError> {
    if allow.permits(ip) {
        Ok(())
    } else {
        Err(UrlError::PrivateAddress(ip.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(u: &str) -> bool {
        SourceUrl::parse(u, &AllowList::default()).is_err()
    }

    #[test]
    fn public_urls_pass() {
        for u in [
            "https://example.com/",
            "http://example.com:8080/a?b=c#d",
            "HTTPS://EXAMPLE.COM/",
            "https://93.184.216.34/",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
        ] {
            assert!(!refused(u), "{u} should pass");
        }
    }

    #[test]
    fn private_and_odd_literals_are_refused() {
        for u in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://0.0.0.0/",
            "http://0/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://100.127.255.255/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://foo.localhost/",
            "http://metadata.google.internal/",
            "http://intranet/",
            "file:///etc/passwd",
            "FILE:///etc/passwd",
            "view-source:http://example.com/",
            "chrome://settings",
            "data:text/html,<h1>x</h1>",
            "javascript:alert(1)",
            "ftp://example.com/",
            "gopher://example.com/",
            "http://user:pass@example.com/",
            "http://example.com@127.0.0.1/",
            "http://example.com%40127.0.0.1/",
            "http://",
            "",
            "not a url",
        ] {
            assert!(refused(u), "{u} should be refused");
        }
    }

    #[test]
    fn too_long_is_refused() {
        let u = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            SourceUrl::parse(&u, &AllowList::default()),
            Err(UrlError::TooLong)
        );
    }

    #[test]
    fn public_ranges_table() {
        let cases: &[(&str, bool)] = &[
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("169.253.1.1", true),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("198.51.100.1", false),
            ("203.0.113.9", false),
            ("240.0.0.1", false),
            ("2001:4860:4860::8888", true),
            ("2001:db8::1", false),
            ("2002:7f00:1::", false),
            ("::ffff:8.8.8.8", true),
            ("::ffff:10.1.2.3", false),
            ("::127.0.0.1", false),
            ("fec0::1", false),
        ];
        for (ip, public) in cases {
            let ip: IpAddr = ip.parse().expect("test address parses");
            assert_eq!(is_public_ip(ip), *public, "{ip}");
        }
    }

    #[test]
    fn allow_list_exempts_named_hosts_and_networks() {
        let allow = AllowList::parse("127.0.0.1, 10.1.0.0/16,intranet , ::1").expect("parses");
        for u in [
            "http://127.0.0.1:8099/",
            "http://10.1.2.3/",
            "http://intranet/",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(SourceUrl::parse(u, &allow).is_ok(), "{u} should be allowed");
        }
        for u in ["http://127.0.0.2/", "http://10.2.0.1/", "http://localhost/"] {
            assert!(
                SourceUrl::parse(u, &allow).is_err(),
                "{u} should be refused"
            );
        }
        assert!(AllowList::parse("bad host!").is_err());
    }
}
