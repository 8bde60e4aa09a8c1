//! Canopy: a sub-account engine for communications platforms.
//!
//! A tour of the code, in the order a request meets it:
//! - [`http`]: routes, the caller extractor, problem+json errors,
//!   idempotency; calls [`ops`] only.
//! - [`console`]: the web console's HTML pages over the same [`ops`]
//!   calls.
//! - [`ops`]: one function per product operation; checks reach, calls the
//!   policy hooks, opens the transaction.
//! - [`policy`]: the policy interface, hook documents, the Rhai runtime.
//! - [`domain`]: accounts, the status machine, names, money. No I/O.
//! - [`store`]: SQL for SQLite and PostgreSQL.
//! - [`server`] and [`cli`]: start-up, shutdown, the command line.
//!
//! `ARCHITECTURE.md` at the repository root states the invariants.

/// Every binary built on the host (the server, its tests, the load tool and
/// benches) allocates with mimalloc; see `host/Cargo.toml`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod cli;
pub mod clock;
pub mod console;
pub mod crashpoint;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod policy;
pub mod secrets;
pub mod server;
pub mod store;

pub use error::{Error, Result};
