//! The XDP object built from `lb-ebpf` by this crate's build script.

/// The ELF object of the XDP program, aligned for aya's loader.
pub fn object_bytes() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf.o"))
}
