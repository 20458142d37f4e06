//! Credentials: the store (`auth.json`), the pool of logins per provider, the device-code
//! driver, and the refresh coordinator with its quarantine.

pub mod choice;
mod doctor;
pub mod login;
pub mod pool;
pub mod refresh;
pub mod store;

pub use pool::{EntryView, Slot};
pub use refresh::{Resolved, TokenSource};
pub use store::{AuthFile, Store};
