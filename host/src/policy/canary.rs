//! Which versions of one policy run: at most one enforced and at most one in
//! shadow beside it (a canary). Activating a version in one mode never stops
//! the version running in the other, so a shadow never replaces the enforced
//! version; `promote` moves the shadow into enforcement in one step.
//!
//! Stored as `active_version`/`mode` (the enforced version, or the only
//! version when it runs in shadow alone, as before canaries existed) and
//! `shadow_version` (a shadow beside an enforced version).

use super::Mode;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slots {
    pub enforced: Option<i64>,
    pub shadow: Option<i64>,
}

impl Slots {
    /// Reads the stored columns.
    pub fn from_columns(active: Option<i64>, mode: Option<&str>, shadow: Option<i64>) -> Slots {
        match (active, mode.and_then(Mode::parse)) {
            (Some(v), Some(Mode::Enforce)) => Slots {
                enforced: Some(v),
                shadow,
            },
            (Some(v), Some(Mode::Shadow)) => Slots {
                enforced: None,
                shadow: Some(v),
            },
            _ => Slots::default(),
        }
    }

    /// `(active_version, mode, shadow_version)` to store.
    pub fn columns(self) -> (Option<i64>, Option<&'static str>, Option<i64>) {
        match (self.enforced, self.shadow) {
            (Some(e), shadow) => (Some(e), Some(Mode::Enforce.as_str()), shadow),
            (None, Some(s)) => (Some(s), Some(Mode::Shadow.as_str()), None),
            (None, None) => (None, None, None),
        }
    }

    /// `version` runs in `mode`; the other slot keeps its version unless it
    /// was this one (a version runs in one mode at a time).
    pub fn activate(self, version: i64, mode: Mode) -> Slots {
        let other = |v: Option<i64>| v.filter(|v| *v != version);
        match mode {
            Mode::Enforce => Slots {
                enforced: Some(version),
                shadow: other(self.shadow),
            },
            Mode::Shadow => Slots {
                enforced: other(self.enforced),
                shadow: Some(version),
            },
        }
    }

    /// The shadow version is enforced and the enforced one retired; `None`
    /// when nothing runs in shadow.
    pub fn promote(self) -> Option<Slots> {
        self.shadow.map(|v| Slots {
            enforced: Some(v),
            shadow: None,
        })
    }

    pub fn clear_shadow(self) -> Slots {
        Slots {
            shadow: None,
            ..self
        }
    }

    pub fn is_inactive(self) -> bool {
        self == Slots::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(s: Slots) -> Slots {
        let (a, m, sh) = s.columns();
        Slots::from_columns(a, m, sh)
    }

    #[test]
    fn a_shadow_runs_beside_the_enforced_version_and_promotes_in_one_step() {
        let v1 = Slots::default().activate(1, Mode::Enforce);
        let canary = v1.activate(2, Mode::Shadow);
        assert_eq!(
            canary,
            Slots {
                enforced: Some(1),
                shadow: Some(2)
            }
        );
        assert_eq!(canary.columns(), (Some(1), Some("enforce"), Some(2)));
        assert_eq!(stored(canary), canary);
        let promoted = canary.promote().unwrap();
        assert_eq!(
            promoted,
            Slots {
                enforced: Some(2),
                shadow: None
            }
        );
        assert_eq!(promoted.promote(), None, "nothing left to promote");
        assert_eq!(canary.clear_shadow(), v1);
    }

    #[test]
    fn a_version_runs_in_one_mode_and_a_lone_shadow_is_stored_as_before() {
        let lone = Slots::default().activate(3, Mode::Shadow);
        assert_eq!(lone.columns(), (Some(3), Some("shadow"), None));
        assert_eq!(stored(lone), lone);
        // The enforced version switched into shadow leaves enforcement.
        let switched = Slots {
            enforced: Some(1),
            shadow: Some(2),
        }
        .activate(1, Mode::Shadow);
        assert_eq!(
            switched,
            Slots {
                enforced: None,
                shadow: Some(1)
            }
        );
        // Enforcing the shadow version takes it out of shadow.
        let enforced = Slots {
            enforced: Some(1),
            shadow: Some(2),
        }
        .activate(2, Mode::Enforce);
        assert_eq!(
            enforced,
            Slots {
                enforced: Some(2),
                shadow: None
            }
        );
        // Rolling the enforced version back keeps the canary.
        let rolled = Slots {
            enforced: Some(3),
            shadow: Some(4),
        }
        .activate(1, Mode::Enforce);
        assert_eq!(
            rolled,
            Slots {
                enforced: Some(1),
                shadow: Some(4)
            }
        );
        assert!(Slots::default().is_inactive());
        assert!(!lone.is_inactive());
    }
}
