//! Lines and SIMs (seeds 003, 004): their identifiers, statuses and the
//! actions that change them. No I/O here.

str_enum!(ResourceKind { Line = "line", Sim = "sim" });
str_enum!(ResourceStatus {
    /// A line that can carry traffic; a SIM activated on the network.
    Active = "active",
    /// A line given back to the carrier (terminal).
    Disconnected = "disconnected",
    /// A SIM delivered but never activated.
    Inventory = "inventory",
    Suspended = "suspended",
    /// A SIM removed from the network (terminal).
    Terminated = "terminated",
});
str_enum!(ResourceAction {
    Activate = "activate",
    Suspend = "suspend",
    Resume = "resume",
    Terminate = "terminate",
    Disconnect = "disconnect",
});

/// Identifiers per provisioning request, resources per list filter's
/// operation (API.md).
pub const BULK_MAX: usize = 10_000;
/// Tags per resource, and the length of one.
pub const TAGS_MAX: usize = 16;
pub const TAG_LEN_MAX: usize = 64;

impl ResourceKind {
    /// The status a resource arrives in: lines are live at once, SIMs wait
    /// in inventory until activated (seed 004).
    pub fn initial_status(self) -> ResourceStatus {
        match self {
            ResourceKind::Line => ResourceStatus::Active,
            ResourceKind::Sim => ResourceStatus::Inventory,
        }
    }

    /// Whether `status` is one this kind can be in (the schema's
    /// `status_of_kind`).
    pub fn has_status(self, status: ResourceStatus) -> bool {
        use ResourceStatus::*;
        match self {
            ResourceKind::Line => matches!(status, Active | Disconnected),
            ResourceKind::Sim => matches!(status, Inventory | Active | Suspended | Terminated),
        }
    }

    /// Checks and normalises an identifier of this kind.
    pub fn identifier(self, raw: &str) -> Result<String, String> {
        match self {
            ResourceKind::Line => e164(raw),
            ResourceKind::Sim => iccid(raw),
        }
    }
}

impl ResourceStatus {
    /// A resource in this status is still the holder's: it keeps a
    /// sub-account from being deleted, and it is billed.
    pub fn is_live(self) -> bool {
        !matches!(
            self,
            ResourceStatus::Disconnected | ResourceStatus::Terminated
        )
    }

    /// Whether a day in this status is charged (API.md "Recurring charges").
    pub fn is_billed(self) -> bool {
        matches!(self, ResourceStatus::Active | ResourceStatus::Suspended)
    }
}

/// Why one item of a bulk operation was refused: a stable code and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRefusal {
    pub code: &'static str,
    pub reason: String,
}

impl ItemRefusal {
    fn new(code: &'static str, reason: impl Into<String>) -> ItemRefusal {
        ItemRefusal {
            code,
            reason: reason.into(),
        }
    }
}

/// The status `action` takes a resource of `kind` in `status` to, or why it
/// cannot.
pub fn apply_action(
    kind: ResourceKind,
    status: ResourceStatus,
    action: ResourceAction,
) -> Result<ResourceStatus, ItemRefusal> {
    use ResourceAction as A;
    use ResourceStatus as S;
    let next = match (kind, action) {
        (ResourceKind::Sim, A::Activate) => (status == S::Inventory).then_some(S::Active),
        (ResourceKind::Sim, A::Suspend) => (status == S::Active).then_some(S::Suspended),
        (ResourceKind::Sim, A::Resume) => (status == S::Suspended).then_some(S::Active),
        (ResourceKind::Sim, A::Terminate) => status.is_live().then_some(S::Terminated),
        (ResourceKind::Line, A::Disconnect) => (status == S::Active).then_some(S::Disconnected),
        (kind, action) => {
            return Err(ItemRefusal::new(
                "wrong_kind",
                format!("a {kind} cannot be told to {action}"),
            ));
        }
    };
    next.ok_or_else(|| {
        if !status.is_live() {
            ItemRefusal::new(
                "terminal_status",
                format!("this {kind} is {status}, which is final"),
            )
        } else {
            ItemRefusal::new(
                "wrong_status",
                format!("a {kind} that is {status} cannot be told to {action}"),
            )
        }
    })
}

/// Whether a resource in `status` may move to another place.
pub fn check_movable(kind: ResourceKind, status: ResourceStatus) -> Result<(), ItemRefusal> {
    if status.is_live() {
        Ok(())
    } else {
        Err(ItemRefusal::new(
            "terminal_status",
            format!("this {kind} is {status} and cannot be moved"),
        ))
    }
}

/// An E.164 number: `+` and 8 to 15 digits, the first not zero. Numbering
/// plans are not checked.
pub fn e164(raw: &str) -> Result<String, String> {
    let digits = raw
        .strip_prefix('+')
        .ok_or_else(|| format!("`{raw}` is not E.164: it must start with `+`"))?;
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{raw}` is not E.164: `+` and then 8 to 15 digits, e.g. +14155550100"
        ));
    }
    if digits.starts_with('0') {
        return Err(format!(
            "`{raw}` is not E.164: a country code never starts with 0"
        ));
    }
    Ok(raw.to_string())
}

/// An ICCID: 19 or 20 digits whose last is the Luhn check digit (ITU-T
/// E.118).
pub fn iccid(raw: &str) -> Result<String, String> {
    if !(19..=20).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{raw}` is not an ICCID: 19 or 20 digits"));
    }
    if !luhn_valid(raw) {
        return Err(format!(
            "`{raw}` is not an ICCID: its last digit fails the Luhn check"
        ));
    }
    Ok(raw.to_string())
}

/// The Luhn check over a string of ASCII digits, check digit last.
pub fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// The Luhn check digit that completes `body` (for tests and tools that
/// make ICCIDs).
pub fn luhn_check_digit(body: &str) -> char {
    for d in b'0'..=b'9' {
        let candidate = format!("{body}{}", d as char);
        if luhn_valid(&candidate) {
            return d as char;
        }
    }
    unreachable!("one of ten digits always completes a Luhn sum")
}

/// Checks a resource's tags: few, short, visible text.
pub fn tags(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > TAGS_MAX {
        return Err(format!("at most {TAGS_MAX} tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        if tag.is_empty() || tag.chars().count() > TAG_LEN_MAX {
            return Err(format!("each tag is 1 to {TAG_LEN_MAX} characters"));
        }
        if tag.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "tag `{}` holds spaces or control characters",
                tag.escape_debug()
            ));
        }
        if !out.contains(tag) {
            out.push(tag.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_takes_plus_and_8_to_15_digits() {
        assert!(e164("+14155550100").is_ok());
        assert!(e164("+12345678").is_ok());
        assert!(e164("+123456789012345").is_ok());
        assert!(e164("14155550100").is_err());
        assert!(e164("+1234567").is_err());
        assert!(e164("+1234567890123456").is_err());
        assert!(e164("+1415555010a").is_err());
        assert!(e164("+04155550100").is_err());
        assert!(e164("+١٤١٥٥٥٥٠١٠٠").is_err(), "only ASCII digits");
    }

    #[test]
    fn iccid_checks_length_and_luhn() {
        // A well-known test ICCID with a valid check digit.
        let body = "894400000000000000";
        let valid = format!("{body}{}", luhn_check_digit(body));
        assert_eq!(valid.len(), 19);
        assert!(iccid(&valid).is_ok());
        let last = valid.chars().last().unwrap().to_digit(10).unwrap();
        let wrong = format!("{body}{}", (last + 1) % 10);
        assert!(iccid(&wrong).unwrap_err().contains("Luhn"));
        assert!(iccid("123").is_err());
        let twenty = format!(
            "8944000000000000000{}",
            luhn_check_digit("8944000000000000000")
        );
        assert!(iccid(&twenty).is_ok());
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
    }

    #[test]
    fn actions_follow_the_status_machine() {
        use ResourceAction as A;
        use ResourceKind::*;
        use ResourceStatus as S;
        assert_eq!(apply_action(Sim, S::Inventory, A::Activate), Ok(S::Active));
        assert_eq!(apply_action(Sim, S::Active, A::Suspend), Ok(S::Suspended));
        assert_eq!(apply_action(Sim, S::Suspended, A::Resume), Ok(S::Active));
        assert_eq!(
            apply_action(Sim, S::Inventory, A::Terminate),
            Ok(S::Terminated)
        );
        assert_eq!(
            apply_action(Line, S::Active, A::Disconnect),
            Ok(S::Disconnected)
        );
        assert_eq!(
            apply_action(Sim, S::Active, A::Activate).unwrap_err().code,
            "wrong_status"
        );
        assert_eq!(
            apply_action(Sim, S::Terminated, A::Resume)
                .unwrap_err()
                .code,
            "terminal_status"
        );
        assert_eq!(
            apply_action(Line, S::Active, A::Activate).unwrap_err().code,
            "wrong_kind"
        );
        assert_eq!(
            apply_action(Sim, S::Active, A::Disconnect)
                .unwrap_err()
                .code,
            "wrong_kind"
        );
        assert!(check_movable(Sim, S::Terminated).is_err());
        assert!(check_movable(Line, S::Disconnected).is_err());
        assert!(check_movable(Sim, S::Suspended).is_ok());
    }

    #[test]
    fn every_status_belongs_to_a_kind() {
        for s in ResourceStatus::ALL {
            assert!(ResourceKind::ALL.iter().any(|k| k.has_status(*s)));
        }
        for k in ResourceKind::ALL {
            assert!(k.has_status(k.initial_status()));
        }
    }

    #[test]
    fn tags_are_checked_and_deduplicated() {
        assert_eq!(
            tags(&["fleet".into(), "fleet".into(), "eu".into()]).unwrap(),
            vec!["fleet".to_string(), "eu".to_string()]
        );
        assert!(tags(&["has space".into()]).is_err());
        assert!(tags(&["".into()]).is_err());
    }
}
