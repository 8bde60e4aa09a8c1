//! Webhooks (API.md, "Traffic"): which targets are allowed, which events a
//! webhook takes, how a delivery is signed, when it is retried and what a
//! payload may carry. No I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde_json::Value;

use super::events::EventType;

/// Longest target URL.
pub const URL_MAX: usize = 2048;
/// Live webhooks one account may have.
pub const WEBHOOKS_PER_ACCOUNT_MAX: i64 = 20;
/// Entries in a webhook's `events`.
pub const EVENTS_MAX: usize = 20;
/// How long after its event a delivery is retried before it is `failed`.
pub const RETRY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How long events and finished deliveries are kept (the delivery log
/// reaches this far back).
pub const LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest wait between two attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);
/// The first wait (doubled after every failed attempt), unless the
/// operations layer's settings say otherwise.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The subscription that stands for every `account.*` event.
pub const ALL_ACCOUNT_EVENTS: &str = "account.*";

/// A webhook's `events`: known types (or `account.*` for the five account
/// events), at least one, without repeats; returned in the order of
/// [`EventType::ALL`].
pub fn parse_events(names: &[String]) -> Result<Vec<EventType>, String> {
    if names.is_empty() {
        return Err(
            "must name at least one event type, e.g. [\"account.*\", \"budget.low\"]".into(),
        );
    }
    if names.len() > EVENTS_MAX {
        return Err(format!("may name at most {EVENTS_MAX} event types"));
    }
    let mut out = Vec::new();
    for name in names {
        if name == ALL_ACCOUNT_EVENTS {
            out.extend(
                EventType::ALL
                    .into_iter()
                    .filter(|e| e.as_str().starts_with("account.")),
            );
            continue;
        }
        let Some(kind) = EventType::parse(name) else {
            let known: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
            return Err(format!(
                "has an unknown event type `{}`; use {ALL_ACCOUNT_EVENTS} or one of {}",
                name.chars().take(64).collect::<String>(),
                known.join(", ")
            ));
        };
        out.push(kind);
    }
    Ok(EventType::ALL
        .into_iter()
        .filter(|e| out.contains(e))
        .collect())
}

/// A target URL as written: http or https, a host, no user or password, no
/// fragment, at most [`URL_MAX`] bytes. Addresses are checked separately
/// ([`refused_address`]), after name resolution.
pub fn check_url(text: &str) -> Result<url::Url, String> {
    if text.len() > URL_MAX {
        return Err(format!("is longer than {URL_MAX} characters"));
    }
    let url = url::Url::parse(text)
        .map_err(|e| format!("is not an absolute URL ({e}); e.g. https://example.com/hooks"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!(
            "must use https:// (or http://), not {}://",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry a user name or password; check the signature header instead".into(),
        );
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment (it is never sent)".into());
    }
    if url.host().is_none() {
        return Err("must name a host".into());
    }
    Ok(url)
}

/// Why a webhook may not be delivered to `ip` unless the operator allows
/// private targets; `None` for a public unicast address.
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254)
            || ip == Ipv4Addr::new(100, 100, 100, 200)
            || ip == Ipv4Addr::new(192, 0, 0, 192) =>
        {
            "a cloud metadata address"
        }
        _ if ip.is_unspecified() || a == 0 => "an unspecified (0.0.0.0/8) address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_private() => "a private (RFC 1918) address",
        _ if ip.is_link_local() => "a link-local address",
        _ if a == 100 && (64..128).contains(&b) => "a shared (CGNAT, 100.64.0.0/10) address",
        _ if ip.is_multicast() => "a multicast address",
        _ if ip.is_broadcast() || a >= 240 => "a reserved address",
        _ if a == 192 && b == 0 && c == 0 => "an IETF protocol address (192.0.0.0/24)",
        _ if ip.is_documentation() => "a documentation address",
        _ if a == 198 && (b & 0xfe) == 18 => "a benchmarking address (198.18.0.0/15)",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96).
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return refused_v4(Ipv4Addr::new(a, b, c, d));
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16) carries its IPv4 address in the next 32 bits.
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return refused_v4(Ipv4Addr::new(a, b, c, d));
    }
    Some(match () {
        _ if s[0] == 0xfd00 && s[1] == 0x0ec2 && s[2..7] == [0, 0, 0, 0, 0] && s[7] == 0x254 => {
            "a cloud metadata address"
        }
        _ if ip.is_unspecified() => "the unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        // ::/96 (IPv4-compatible, deprecated) and the rest of ::/8.
        _ if s[0] == 0 => "a reserved address",
        _ if (s[0] & 0xfe00) == 0xfc00 => "a unique-local address (fc00::/7)",
        _ if (s[0] & 0xffc0) == 0xfe80 => "a link-local address",
        _ if (s[0] & 0xffc0) == 0xfec0 => "a site-local address",
        _ if ip.is_multicast() => "a multicast address",
        _ if s[0] == 0x2001 && s[1] == 0 => "a Teredo tunnel address",
        _ if s[0] == 0x2001 && s[1] == 0x0db8 => "a documentation address",
        _ if s[0] == 0x0100 && s[1..4] == [0, 0, 0] => "a discard-only address",
        _ => return None,
    })
}

/// The `Canopy-Signature` header of a delivery sent at `unix_secs` with
/// `body`: `t=UNIX,v1=HEX(HMAC-SHA256(secret, "t.body"))`.
pub fn signature(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    let mut message = unix_secs.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    let mac = crate::secrets::hmac_sha256(secret.as_bytes(), &message);
    format!("t={unix_secs},v1={}", hex::encode(mac))
}

/// How long to wait after the `attempts`-th failed attempt (1 = the first):
/// `base * 2^(attempts-1)`, at most [`BACKOFF_CAP`], of which a random
/// share (`jitter` in 0..1) of the upper half is kept, so receivers that
/// failed together do not retry together.
pub fn backoff(attempts: i64, base: Duration, jitter: f64) -> Duration {
    let doublings = (attempts.max(1) - 1).min(30) as u32;
    let full = base.saturating_mul(1u32 << doublings).min(BACKOFF_CAP);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// The event a status change reports, if any.
pub fn status_event(from: super::Status, to: super::Status) -> Option<EventType> {
    use super::Status;
    match (from, to) {
        (_, Status::Suspended) => Some(EventType::AccountSuspended),
        (_, Status::Deleted) => Some(EventType::AccountDeleted),
        (Status::Suspended, _) => Some(EventType::AccountUnsuspended),
        _ => None,
    }
}

/// Top-level or nested fields of an event's data that belong to a
/// `visibility` group: left out of the payload of a webhook whose owner
/// does not see that group.
pub const GROUP_FIELDS: [(&str, &[&str]); 4] = [
    (
        "balance",
        &["balance", "budget", "threshold", "available_credit"],
    ),
    ("pricing", &["price", "prices", "cost"]),
    ("usage", &["spend", "usage", "volume_limit_used"]),
    (
        "plan",
        &[
            "plan",
            "billing_type",
            "credit_mode",
            "monthly_credit_limit",
            "monthly_usage_limit",
        ],
    ),
];

/// An event's stored data as a webhook with `hidden` groups receives it:
/// fields `NAME_micros` (integers) become `NAME` as decimal text, and the
/// fields of hidden groups are left out, at any depth.
pub fn payload_data(data: &Value, hidden: &[String]) -> Value {
    let hidden_fields: Vec<&str> = GROUP_FIELDS
        .iter()
        .filter(|(group, _)| hidden.iter().any(|h| h == group))
        .flat_map(|(_, fields)| fields.iter().copied())
        .collect();
    shape(data, &hidden_fields)
}

fn shape(value: &Value, hidden: &[&str]) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let (name, v) = match (k.strip_suffix("_micros"), v.as_i64()) {
                    (Some(name), Some(micros)) => (
                        name,
                        Value::String(
                            crate::domain::money::Amount::from_micros(micros).to_api_string(),
                        ),
                    ),
                    _ => (k.as_str(), shape(v, hidden)),
                };
                if !hidden.contains(&name) {
                    out.insert(name.to_string(), v);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| shape(v, hidden)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signatures_are_hmac_sha256_over_time_dot_body() {
        let header = signature("whsec_test", 1_700_000_000, b"{\"id\":\"evt_1\"}");
        let expected = crate::secrets::hmac_sha256(b"whsec_test", b"1700000000.{\"id\":\"evt_1\"}");
        assert_eq!(header, format!("t=1700000000,v1={}", hex::encode(expected)));
        // RFC 4231 test case 2, through the same format.
        let h = signature("Jefe", 0, b"what do ya want for nothing?");
        assert!(h.starts_with("t=0,v1="));
        assert_eq!(h.len(), "t=0,v1=".len() + 64);
    }

    #[test]
    fn addresses_are_classified() {
        let refused = |s: &str| refused_address(s.parse().unwrap());
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.10.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "::127.0.0.1",
        ] {
            assert!(refused(ip).is_some(), "{ip} should be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert_eq!(refused(ip), None, "{ip} should be allowed");
        }
        assert_eq!(refused("169.254.169.254"), Some("a cloud metadata address"));
        assert_eq!(refused("fd00:ec2::254"), Some("a cloud metadata address"));
        assert_eq!(
            refused("::ffff:169.254.169.254"),
            Some("a cloud metadata address")
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(1, base, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(1, base, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(2, base, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(4, base, 1.0), Duration::from_secs(80));
        assert_eq!(backoff(12, base, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(1000, base, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(1000, base, 0.0), BACKOFF_CAP / 2);
        let mid = backoff(3, base, 0.5);
        assert!(mid > Duration::from_secs(20) && mid < Duration::from_secs(40));
        // Over the retry window, a failing receiver is tried a bounded
        // number of times.
        let (mut at, mut tries) = (Duration::ZERO, 0);
        while at < RETRY_WINDOW {
            tries += 1;
            at += backoff(tries, base, 1.0);
        }
        assert!((20..40).contains(&tries), "{tries} attempts in a day");
    }

    #[test]
    fn urls_and_events_are_checked() {
        assert!(check_url("https://example.com/hooks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("ftp://example.com").is_err());
        assert!(check_url("https://user:pw@example.com").is_err());
        assert!(check_url("https://example.com/#x").is_err());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(URL_MAX))).is_err());
        assert!(check_url("/relative").is_err());
        let all = parse_events(&["account.*".into(), "budget.low".into()]).unwrap();
        assert_eq!(all.len(), 6);
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["account.nope".into()]).is_err());
        let dup = parse_events(&["budget.low".into(), "budget.low".into()]).unwrap();
        assert_eq!(dup, vec![EventType::BudgetLow]);
    }

    #[test]
    fn payloads_leave_out_hidden_groups_and_show_money_as_text() {
        let data = json!({"budget_micros": 1_500_000, "threshold_micros": 2_000_000,
            "account": {"id": "a", "prices": {"sms": "0.01"}}});
        assert_eq!(
            payload_data(&data, &[]),
            json!({"budget": "1.50", "threshold": "2.00", "account": {"id": "a", "prices": {"sms": "0.01"}}})
        );
        assert_eq!(
            payload_data(&data, &["balance".into(), "pricing".into()]),
            json!({"account": {"id": "a"}})
        );
    }
}
