//! Names and sizes of the maps the XDP program declares, so the loader
//! refers to them without string literals scattered around.

/// Per-CPU array of `u64`, indexed by [`crate::counters::Counter`].
pub const COUNTERS: &str = "COUNTERS";

/// Name of the XDP entry point in the object file.
pub const XDP_PROGRAM: &str = "lb_xdp";
