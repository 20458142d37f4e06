//! Behaviour tests, one per rule of the protocol document, over the testkit's fake host.

mod ffi;
mod login;
mod poll;
mod props;
mod refresh;
mod runtime;
mod status;
