use serde::{Deserialize, Serialize};

/// A user's role in one account (seed 002). What each role may do is the
/// `authorize` policy's business; the host only knows that `admin` of a parent
/// reaches the parent's sub-accounts (invariant 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Advanced,
    Basic,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Advanced, Role::Basic];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Advanced => "advanced",
            Role::Basic => "basic",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "advanced" => Some(Role::Advanced),
            "basic" => Some(Role::Basic),
            _ => None,
        }
    }
}
