//! Time in input documents: every document gets `now` (UTC, RFC 3339, from
//! the host's [`Clock`](crate::clock::Clock), so `--test-clock` moves it and
//! a decision can be replayed), and every account document its `timezone`
//! and `local_now` (RFC 3339 with that zone's offset): policies have no
//! clock and no time-zone database of their own (MISSION.md "Sandbox").
//!
//! Zones come from jiff's bundled copy of the IANA database, so every host
//! computes the same offset whatever its operating system ships.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// The zone of an account that has none, or whose stored name is unknown.
pub const DEFAULT_ZONE: &str = "UTC";

/// The canonical IANA name of a zone (`europe/rome` is `Europe/Rome`), or
/// `None` if the database has no such zone.
pub fn known_zone(name: &str) -> Option<String> {
    let zone = jiff::tz::TimeZone::get(name).ok()?;
    Some(zone.iana_name().unwrap_or(name).to_string())
}

/// `now` in `zone` as RFC 3339 with the zone's offset at that instant, and
/// the zone it was computed in (UTC for an unknown name).
pub fn local(now: DateTime<Utc>, zone: &str) -> (String, String) {
    let (tz, name) = match jiff::tz::TimeZone::get(zone) {
        Ok(tz) => (tz, zone.to_string()),
        Err(_) => (jiff::tz::TimeZone::UTC, DEFAULT_ZONE.to_string()),
    };
    let at = jiff::Timestamp::from_second(now.timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let text = at.to_zoned(tz).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    (text, name)
}

/// Puts `now` in the document and `local_now` in each account document in
/// it (an object with `id` and `timezone`: the target, its parent, the
/// parent of a validation; submitted `fields` have no `id`).
pub fn stamp(input: &mut Value, now: DateTime<Utc>) {
    if let Value::Object(doc) = input {
        doc.insert(
            "now".into(),
            Value::String(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
        for child in doc.values_mut() {
            stamp_accounts(child, now);
        }
    }
}

fn stamp_accounts(v: &mut Value, now: DateTime<Utc>) {
    let Value::Object(map) = v else {
        return;
    };
    if map.contains_key("id")
        && let Some(zone) = map.get("timezone").and_then(Value::as_str)
    {
        let (local_now, zone) = local(now, zone);
        map.insert("timezone".into(), Value::String(zone));
        map.insert("local_now".into(), Value::String(local_now));
    }
    if let Some(parent) = map.get_mut("parent") {
        stamp_accounts(parent, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn local_now_carries_the_zone_offset_of_that_instant() {
        // Rome is UTC+1 in winter and UTC+2 in summer.
        assert_eq!(
            local(at("2026-01-15T16:59:30Z"), "Europe/Rome").0,
            "2026-01-15T17:59:30+01:00"
        );
        assert_eq!(
            local(at("2026-07-15T16:59:30Z"), "Europe/Rome").0,
            "2026-07-15T18:59:30+02:00"
        );
        assert_eq!(
            local(at("2026-07-15T16:59:30Z"), "America/New_York").0,
            "2026-07-15T12:59:30-04:00"
        );
        assert_eq!(
            local(at("2026-07-15T16:59:30Z"), "UTC").0,
            "2026-07-15T16:59:30+00:00"
        );
        // An unknown stored name reads as UTC, and says so.
        assert_eq!(
            local(at("2026-07-15T16:59:30Z"), "Mars/Olympus"),
            ("2026-07-15T16:59:30+00:00".into(), "UTC".into())
        );
    }

    #[test]
    fn zones_are_checked_against_the_database() {
        assert_eq!(known_zone("Europe/Rome").as_deref(), Some("Europe/Rome"));
        assert_eq!(known_zone("UTC").as_deref(), Some("UTC"));
        assert_eq!(known_zone("Mars/Olympus"), None);
        assert_eq!(known_zone("../../etc/passwd"), None);
    }

    #[test]
    fn every_document_gets_now_and_every_account_its_local_time() {
        let mut doc = json!({
            "hook": "authorize",
            "principal": {"account_id": "acct_1"},
            "target": {"id": "acct_2", "kind": "subaccount", "timezone": "Asia/Tokyo",
                "parent": {"id": "acct_1", "timezone": "Europe/Rome"}},
            "fields": {"timezone": "Europe/Paris"},
        });
        stamp(&mut doc, at("2026-03-02T07:30:00Z"));
        assert_eq!(doc["now"], "2026-03-02T07:30:00Z");
        assert_eq!(doc["target"]["local_now"], "2026-03-02T16:30:00+09:00");
        assert_eq!(
            doc["target"]["parent"]["local_now"],
            "2026-03-02T08:30:00+01:00"
        );
        assert!(
            doc["fields"].get("local_now").is_none(),
            "submitted fields are not an account"
        );
        assert!(doc["principal"].get("local_now").is_none());
    }
}
