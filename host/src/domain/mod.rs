//! The account tree and its rules, as types. No I/O, no HTTP, no SQL, and no
//! knowledge of which policy runtime is in use.

pub mod account;
pub mod money;
pub mod names;
pub mod role;

pub use account::{
    Account, AccountKind, BillingType, CreditMode, LowBalanceAlert, Module, Relation, Status,
    SuspendedBy,
};
pub use money::Amount;
pub use names::{EmailAddress, NameKey};
pub use role::Role;
