//! Names and e-mail addresses, parsed once so that the rest of the host never
//! holds a malformed one ("parse, don't validate").

use unicode_normalization::UnicodeNormalization;

/// Longest e-mail address accepted (RFC 5321 path limit).
pub const EMAIL_LEN_MAX: usize = 254;

/// Format characters (Unicode category Cf): invisible, and used to make
/// two different names look alike (`Mar\u{200B}keting`) or to reorder how
/// text is shown (bidi overrides).
#[rustfmt::skip]
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{AD}', '\u{AD}'), ('\u{600}', '\u{605}'), ('\u{61C}', '\u{61C}'),
    ('\u{6DD}', '\u{6DD}'), ('\u{70F}', '\u{70F}'), ('\u{890}', '\u{891}'),
    ('\u{8E2}', '\u{8E2}'), ('\u{180E}', '\u{180E}'), ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'), ('\u{2060}', '\u{2064}'), ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'), ('\u{FFF9}', '\u{FFFB}'), ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'), ('\u{13430}', '\u{1343F}'), ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'), ('\u{E0001}', '\u{E0001}'), ('\u{E0020}', '\u{E007F}'),
];

/// Other characters that show as nothing: line and paragraph separators,
/// the combining grapheme joiner, Hangul fillers, invisible Khmer vowels,
/// Mongolian variation selectors, the Braille blank.
#[rustfmt::skip]
const OTHER_INVISIBLE: &[(char, char)] = &[
    ('\u{34F}', '\u{34F}'), ('\u{115F}', '\u{1160}'), ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180D}'), ('\u{180F}', '\u{180F}'), ('\u{2028}', '\u{2029}'),
    ('\u{2800}', '\u{2800}'), ('\u{3164}', '\u{3164}'), ('\u{FFA0}', '\u{FFA0}'),
];

/// Whether `c` is a control character or one that shows as nothing.
pub fn is_invisible(c: char) -> bool {
    let within = |ranges: &[(char, char)]| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c));
    c.is_control()
        || within(FORMAT_CHARACTERS)
        || within(OTHER_INVISIBLE)
        // Noncharacters: never text.
        || ('\u{FDD0}'..='\u{FDEF}').contains(&c)
        || (c as u32) & 0xFFFE == 0xFFFE
}

/// Refuses text holding a control or invisible character, naming the first.
pub fn visible_text(text: &str) -> Result<(), String> {
    match text.chars().enumerate().find(|(_, c)| is_invisible(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "must not contain control or invisible characters; remove U+{:04X} at character {}",
            c as u32,
            at + 1
        )),
    }
}

/// The key under which names and e-mails are unique: NFKC-normalised and
/// Unicode case-folded, computed here because SQLite's `lower()` folds ASCII
/// only. Two spellings that differ only in case or in compatibility form
/// (full-width letters, ligatures) get the same key. (Keys stored before
/// NFKC were NFC; they differ only for such compatibility characters.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKey(String);

impl NameKey {
    pub fn of(text: &str) -> NameKey {
        let nfkc: String = text.trim().nfkc().collect();
        // Folding can leave text that NFKC changes again (e.g. U+0345).
        NameKey(caseless::default_case_fold_str(&nfkc).nfkc().collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail domain as every rule sees it: NFKC-normalised (full-width
/// `ｇｍａｉｌ.com` is `gmail.com`) and lower-cased.
pub fn normalize_domain(domain: &str) -> String {
    // ASCII is its own NFKC form: every policy input document asks this
    // of its accounts' domains, almost always plain ASCII.
    if domain.is_ascii() {
        return domain.to_ascii_lowercase();
    }
    domain.nfkc().collect::<String>().to_lowercase()
}

/// A syntactically plausible e-mail address. Whether its domain is acceptable
/// (business, same as the parent's) is a policy's decision, not this type's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    address: String,
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<EmailAddress, String> {
        let address = raw.trim();
        if address.is_empty() {
            return Err("must not be empty".into());
        }
        if address.chars().count() > EMAIL_LEN_MAX {
            return Err("is longer than 254 characters".into());
        }
        visible_text(address)?;
        let malformed = || "must look like name@example.com".to_string();
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(malformed());
        };
        // The domain is checked as the rules will see it.
        let domain = normalize_domain(domain);
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
            return Err(malformed());
        }
        Ok(EmailAddress {
            address: address.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The domain, NFKC-normalised and lower-cased, as policies compare it.
    pub fn domain(&self) -> String {
        let (_, domain) = self
            .address
            .rsplit_once('@')
            .expect("parsed address has an @");
        normalize_domain(domain)
    }

    /// The key an e-mail is unique under: NFKC and lower-cased, never
    /// fully case-folded. Folding maps `ß` to `ss`, so `x@straße.de` and
    /// `x@strasse.de`, two domains with two owners, would share one
    /// identity and whoever proves one would hold the other.
    pub fn key(&self) -> NameKey {
        NameKey(
            self.address
                .trim()
                .nfkc()
                .collect::<String>()
                .to_lowercase()
                .nfkc()
                .collect(),
        )
    }
}

/// Shortest and longest E.164 number, in digits after the `+`.
const E164_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

/// An E.164 telephone number: `+`, then 8 to 15 digits, the first not 0.
pub fn e164(raw: &str) -> Result<&str, String> {
    let digits = raw.strip_prefix('+').unwrap_or("");
    let ok = E164_DIGITS.contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(raw)
    } else {
        Err(format!(
            "must be an E.164 number: `+`, then {} to {} digits with no spaces, the first not 0, such as `+393471234567`",
            E164_DIGITS.start(),
            E164_DIGITS.end()
        ))
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
    fn ascii_domains_normalize_as_nfkc_does() {
        let slow = |d: &str| d.nfkc().collect::<String>().to_lowercase();
        for d in [
            "Example.COM",
            "a-b_c.0.de",
            "x",
            "",
            "MiXeD.Co.Uk",
            "~!@#$%^&*()",
        ] {
            assert_eq!(normalize_domain(d), slow(d), "{d}");
        }
        assert_eq!(normalize_domain("ｅｘａｍｐｌｅ.COM"), "example.com");
        assert_eq!(normalize_domain("STRAẞE.de"), slow("STRAẞE.de"));
    }

    #[test]
    fn email_keys_never_fold_one_domain_into_another() {
        let key = |a: &str| EmailAddress::parse(a).unwrap().key();
        assert_ne!(key("victim@straße.de"), key("victim@strasse.de"));
        assert_eq!(key("Victim@Example.COM"), key("victim@example.com"));
        assert_eq!(key("victim@ｅｘａｍｐｌｅ.com"), key("victim@example.com"));
    }

    #[test]
    fn name_keys_are_nfkc_and_case_folded() {
        assert_eq!(NameKey::of("ＭＡＲＫＥＴＩＮＧ"), NameKey::of("marketing"));
        assert_eq!(NameKey::of("ﬁnance"), NameKey::of("FINANCE"));
        assert_eq!(NameKey::of("Team①"), NameKey::of("team1"));
        assert_eq!(
            NameKey::of("ｏｐｓ@ａｃｍｅ．example").as_str(),
            "ops@acme.example"
        );
    }

    #[test]
    fn invisible_characters_are_refused_in_each_class() {
        assert!(visible_text("Marketing").is_ok());
        assert!(visible_text("Équipe 東京 😀").is_ok());
        let classes = [
            ('\u{0}', "NUL"),
            ('\u{7}', "control"),
            ('\n', "line feed"),
            ('\u{9F}', "C1 control"),
            ('\u{202A}', "bidi embedding"),
            ('\u{202E}', "bidi override"),
            ('\u{2066}', "bidi isolate"),
            ('\u{2069}', "bidi isolate end"),
            ('\u{200B}', "zero-width space"),
            ('\u{200C}', "zero-width non-joiner"),
            ('\u{200D}', "zero-width joiner"),
            ('\u{FEFF}', "byte-order mark"),
            ('\u{2060}', "word joiner"),
            ('\u{AD}', "soft hyphen"),
            ('\u{E0041}', "tag"),
            ('\u{2028}', "line separator"),
            ('\u{3164}', "Hangul filler"),
            ('\u{FFFF}', "noncharacter"),
        ];
        for (c, what) in classes {
            let name = format!("Mar{c}keting");
            let reason = visible_text(&name).expect_err(what);
            assert!(
                reason.contains(&format!("U+{:04X} at character 4", c as u32)),
                "{what}: {reason}"
            );
            assert!(
                EmailAddress::parse(&format!("a{c}b@acme.example")).is_err(),
                "{what}"
            );
        }
    }

    #[test]
    fn email_domains_are_normalised_before_any_rule() {
        let e = EmailAddress::parse("x@ｇｍａｉｌ.com").unwrap();
        assert_eq!(e.domain(), "gmail.com");
        assert_eq!(e.key(), EmailAddress::parse("X@GMAIL.COM").unwrap().key());
        assert_eq!(
            EmailAddress::parse("x@Mail.GMail.com").unwrap().domain(),
            "mail.gmail.com"
        );
        // Full-width dots become dots: then the domain is checked.
        assert!(EmailAddress::parse("x@acme\u{FF0E}\u{FF0E}com").is_err());
        assert!(EmailAddress::parse("x@zero\u{200B}width.example").is_err());
    }

    #[test]
    fn e164_numbers() {
        for ok in [
            "+393471234567",
            "+14155550100",
            "+12345678",
            "+123456789012345",
        ] {
            assert_eq!(e164(ok), Ok(ok));
        }
        for bad in [
            "",
            "+",
            "393471234567",
            "+1234567",
            "+1234567890123456",
            "+0393471234567",
            "+39 347 1234567",
            "+39-347",
            "++393471234567",
            "+３９３４７１２３４５６７",
            "+39347123456a",
        ] {
            assert!(e164(bad).is_err(), "{bad:?}");
        }
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
