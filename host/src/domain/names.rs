//! Names and e-mail addresses, parsed once so that the rest of the host never
//! holds a malformed one ("parse, don't validate").

use unicode_normalization::UnicodeNormalization;

/// Longest e-mail address accepted (RFC 5321 path limit).
pub const EMAIL_LEN_MAX: usize = 254;

/// The key under which names and e-mails are unique: NFC-normalised and
/// Unicode case-folded, computed here because SQLite's `lower()` folds ASCII
/// only. Two spellings that differ only in case get the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKey(String);

impl NameKey {
    pub fn of(text: &str) -> NameKey {
        let nfc: String = text.trim().nfc().collect();
        NameKey(caseless::default_case_fold_str(&nfc))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A syntactically plausible e-mail address. Whether its domain is acceptable
/// (business, same as the parent's) is a policy's decision, not this type's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    address: String,
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<EmailAddress, &'static str> {
        let address = raw.trim();
        if address.is_empty() {
            return Err("must not be empty");
        }
        if address.chars().count() > EMAIL_LEN_MAX {
            return Err("is longer than 254 characters");
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err("must look like name@example.com");
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && !local.contains('@')
            && !local.chars().any(|c| c.is_whitespace() || c.is_control());
        if !local_ok || !domain_ok {
            return Err("must look like name@example.com");
        }
        Ok(EmailAddress {
            address: address.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The domain, lower-cased, as policies compare it.
    pub fn domain(&self) -> String {
        let (_, domain) = self
            .address
            .rsplit_once('@')
            .expect("parsed address has an @");
        domain.to_lowercase()
    }

    pub fn key(&self) -> NameKey {
        NameKey::of(&self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_keys_fold_unicode_case() {
        assert_eq!(NameKey::of("Straße"), NameKey::of("STRASSE"));
        assert_eq!(NameKey::of("ÉQUIPE"), NameKey::of("équipe"));
        // NFC: a precomposed and a decomposed é are one name.
        assert_eq!(NameKey::of("caf\u{e9}"), NameKey::of("cafe\u{301}"));
        assert_ne!(NameKey::of("Sales"), NameKey::of("Sale"));
    }

    #[test]
    fn emails_parse_or_say_why_not() {
        let e = EmailAddress::parse(" Ops@Acme.Example ").unwrap();
        assert_eq!(e.as_str(), "Ops@Acme.Example");
        assert_eq!(e.domain(), "acme.example");
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "@acme.com",
            "a b@acme.com",
            "a@acme..com",
            "a@.acme.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
