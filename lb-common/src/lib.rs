//! Types shared by the XDP program (`lb-ebpf`) and the daemon (`lb-userspace`).
//!
//! Everything here is plain data: `#[repr(C)]`, `Copy`, no `bool`, no enums
//! inside map values, explicit padding, and a compile-time size check beside
//! each type, so both sides agree on every byte.
#![no_std]

pub mod counters;
pub mod csum;
pub mod hash;
pub mod maps;
