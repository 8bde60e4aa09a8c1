//! The account tree and its rules, as types. No I/O, no HTTP, no SQL, and no
//! knowledge of which policy runtime is in use.

/// A closed set of names with their wire spelling.
macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod account;
pub mod billing;
pub mod currency;
pub mod events;
pub mod ledger;
pub mod merges;
pub mod money;
pub mod names;
pub mod operations;
pub mod resources;
pub mod retention;
pub mod role;
pub mod traffic;
pub mod webhooks;

pub use account::{
    Account, AccountKind, BillingType, CreditMode, LowBalanceAlert, Module, Relation, Status,
    SuspendedBy,
};
pub use currency::Currency;
pub use money::{Amount, MoneyText};
pub use names::{EmailAddress, NameKey};
pub use role::Role;
