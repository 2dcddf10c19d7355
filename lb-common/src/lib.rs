//! Types shared by the XDP program (`lb-ebpf`) and the daemon (`lb-userspace`).
//!
//! Everything here is plain data: `#[repr(C)]`, `Copy`, no `bool`, no enums
//! inside map values, explicit padding, and a compile-time size check beside
//! each type, so both sides agree on every byte.
#![no_std]
#![allow(
    clippy::inline_always,
    reason = "the XDP program needs these helpers inlined for the verifier to follow them"
)]
#![allow(
    clippy::pub_underscore_fields,
    reason = "`_pad` fields are explicit padding, public so values can be built with struct literals"
)]

pub mod conntrack;
pub mod counters;
pub mod csum;
pub mod generator;
pub mod hash;
pub mod maps;
