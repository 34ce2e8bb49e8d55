//! Where a completion notice may go. A `callback_url` is checked when the task is created
//! (an absolute http(s) URL without credentials, not a literal address in a refused range),
//! and the sender checks every address the host resolves to again on each attempt, so a name
//! that later points somewhere private is refused too.
//!
//! Refused unless `callbacks.allow_private` is set: loopback, private, link-local (cloud
//! metadata), carrier-grade NAT, multicast, documentation and other non-public ranges.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

use crate::EngineError;

/// Longest accepted callback URL.
pub const MAX_URL_LEN: usize = 2048;

/// Whether an address is on the public internet (what a callback may reach by default).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT (RFC 6598).
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (RFC 6890), benchmarking (RFC 2544), reserved (RFC 1112).
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let first = s[0];
    // Forms that carry an IPv4 address inside: 6to4 (2002::/16, RFC 3056) and SIIT's
    // IPv4-translated addresses (::ffff:0:a.b.c.d, RFC 2765) reach that IPv4 address.
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if first == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return is_public_v4(embedded(s[6], s[7]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation (2001:db8::/32).
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 forms are refused rather than reasoned about.
        || ip.segments()[..6].iter().all(|s| *s == 0)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        // Teredo (2001::/32) hides its IPv4 address; discard-only (100::/64).
        || (first == 0x2001 && s[1] == 0)
        || (first == 0x0100 && s[1..4] == [0, 0, 0]))
}

/// Checks a `callback_url` form field: an absolute http(s) URL without credentials, and not an
/// address in a refused range. Host names are checked again on every attempt, after lookup.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, EngineError> {
    let bad = |why: &str| {
        EngineError::invalid(
            "invalid_callback_url",
            format!("callback_url {why}; send an absolute http:// or https:// URL"),
        )
    };
    if raw.len() > MAX_URL_LEN {
        return Err(bad(&format!("is longer than {MAX_URL_LEN} characters")));
    }
    let url = Url::parse(raw).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!("has the scheme {:?}", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("holds credentials (user:password@)"));
    }
    let Some(host) = url.host() else {
        return Err(bad("has no host"));
    };
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(d) => {
            // A trailing dot names the same host (`localhost.`).
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                return Err(refused());
            }
            None
        }
    };
    if let Some(ip) = literal
        && !allow_private
        && !is_public(ip)
    {
        return Err(refused());
    }
    Ok(url)
}

fn refused() -> EngineError {
    EngineError::invalid(
        "callback_url_refused",
        "callback_url points at a loopback, private or reserved address; the server's \
         configuration does not allow that (callbacks.allow_private)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    #[test]
    fn private_and_reserved_ranges_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(s)), "{s} should be refused");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(is_public(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn callback_urls_are_checked() {
        assert!(check_url("https://hooks.example.com/numcheck?x=1", false).is_ok());
        // The same forms around a public IPv4 address are public.
        assert!(check_url("http://[2002:5db8:d822::1]/", false).is_ok());
        assert!(check_url("http://[::ffff:0:93.184.216.34]/", false).is_ok());
        let (invalid, refused) = ("invalid_callback_url", "callback_url_refused");
        for (url, code) in [
            ("ftp://example.com/", invalid),
            ("not a url", invalid),
            ("https://user:pw@example.com/", invalid),
            ("/relative", invalid),
            ("http://127.0.0.1:8080/", refused),
            ("http://[::1]/", refused),
            ("http://localhost/", refused),
            ("http://169.254.169.254/latest/meta-data/", refused),
            ("http://10.0.0.5/", refused),
            ("http://localhost./", refused),
            ("http://foo.localhost./", refused),
            ("http://LOCALHOST/", refused),
            ("http://[::ffff:0:127.0.0.1]/", refused),
            ("http://[::ffff:0:10.1.2.3]/", refused),
            ("http://[2002:7f00:1::]/", refused),
            ("http://[2002:a00:1::]/", refused),
            ("http://[2001:0:4136:e378::1]/", refused),
        ] {
            let e = check_url(url, false).unwrap_err();
            assert_eq!(e.code(), Some(code), "{url}");
            if code == refused {
                assert!(check_url(url, true).is_ok(), "{url} allowed by config");
            }
        }
    }
}
