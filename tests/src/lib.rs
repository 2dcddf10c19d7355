//! Support for the project's tests and for `cargo xtask run`'s lab:
//! network namespaces that clean up after themselves, packet fixtures run
//! through the real XDP program, and helpers to find the built binaries.

pub mod binaries;
pub mod fixture;
pub mod hexdiff;
pub mod netns;
pub mod privileges;
