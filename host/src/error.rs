//! The one error type of every operation. Each variant is one stable `code`
//! of the public contract (API.md); the HTTP layer turns it into problem+json.

/// Which policy decided or failed, for the `policy` member of a problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PolicyRef {
    pub id: String,
    /// The policy's name as uploaded (a shipped default's is its id).
    pub name: String,
    pub version: i64,
    pub reason: String,
}

/// One field that was wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{}", .0.reason)]
    PolicyDenied(PolicyRef),
    #[error("{0}")]
    AccountSuspended(String),
    #[error("{0}")]
    FeatureNotEnabled(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("{detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
        /// Boxed: keeps every `Result<_, Error>` small.
        policy: Option<Box<PolicyRef>>,
    },
    #[error("{0}")]
    InsufficientFunds(String),
    #[error("{}", .0.reason)]
    PolicyFailed(PolicyRef),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    InvitationExpired(String),
    /// The route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Too many attempts; retry after this many seconds.
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after_secs: u64,
    },
    /// Anything the caller cannot fix; logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every `code` with its HTTP status and title: the one list that the
/// problem document, the OpenAPI document (`Problem.code`) and the table in
/// docs/ERRORS.md are built from or checked against.
pub const CODES: &[(&str, u16, &str)] = &[
    ("unauthenticated", 401, "Authentication required"),
    ("insufficient_funds", 402, "Insufficient funds"),
    ("forbidden", 403, "Forbidden"),
    ("policy_denied", 403, "Denied by policy"),
    ("account_suspended", 403, "Account suspended"),
    ("feature_not_enabled", 403, "Feature not enabled"),
    ("not_found", 404, "Not found"),
    ("method_not_allowed", 405, "Method not allowed"),
    ("conflict", 409, "Conflict"),
    ("idempotency_conflict", 409, "Idempotency key conflict"),
    ("invitation_expired", 410, "Invitation expired"),
    ("payload_too_large", 413, "Payload too large"),
    ("validation_failed", 422, "Validation failed"),
    ("rate_limited", 429, "Too many requests"),
    ("policy_failed", 500, "Policy failed"),
    ("internal", 500, "Internal error"),
];

impl Error {
    /// A 422 about one field.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Error {
        let reason = reason.into();
        Error::Validation {
            detail: format!("`{field}` {reason}"),
            errors: vec![FieldError::new(field, reason)],
            policy: None,
        }
    }

    pub fn not_found(what: &str, id: &str) -> Error {
        Error::NotFound(format!(
            "no {what} `{id}` is within your reach; check the id and the account your key belongs to"
        ))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Error {
        Error::Internal(cause.to_string())
    }

    /// The stable code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::PolicyDenied(_) => "policy_denied",
            Error::AccountSuspended(_) => "account_suspended",
            Error::FeatureNotEnabled(_) => "feature_not_enabled",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::IdempotencyConflict(_) => "idempotency_conflict",
            Error::Validation { .. } => "validation_failed",
            Error::InsufficientFunds(_) => "insufficient_funds",
            Error::PolicyFailed(_) => "policy_failed",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::InvitationExpired(_) => "invitation_expired",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::RateLimited { .. } => "rate_limited",
            Error::Internal(_) => "internal",
        }
    }

    /// One HTTP status per code.
    pub fn status(&self) -> u16 {
        match self {
            Error::Unauthenticated(_) => 401,
            Error::Forbidden(_)
            | Error::PolicyDenied(_)
            | Error::AccountSuspended(_)
            | Error::FeatureNotEnabled(_) => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) | Error::IdempotencyConflict(_) => 409,
            Error::Validation { .. } => 422,
            Error::InsufficientFunds(_) => 402,
            Error::PayloadTooLarge(_) => 413,
            Error::InvitationExpired(_) => 410,
            Error::MethodNotAllowed(_) => 405,
            Error::RateLimited { .. } => 429,
            Error::PolicyFailed(_) | Error::Internal(_) => 500,
        }
    }

    pub fn policy(&self) -> Option<&PolicyRef> {
        match self {
            Error::PolicyDenied(p) | Error::PolicyFailed(p) => Some(p),
            Error::Validation { policy, .. } => policy.as_deref(),
            _ => None,
        }
    }
}
