//! The packet-rate benchmark's traffic: one UDP/IPv4 frame that an XDP
//! generator program sends in live-frames mode (`BPF_PROG_TEST_RUN`).
//!
//! Live frames are recycled with whatever the data planes under test wrote
//! into them (NAT rewrites addresses, ports and MACs in place), so the
//! generator restores the whole header from [`FRAME`] before each send.

/// The generator's source MAC.
pub const SOURCE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x30, 0x03];
/// The MAC of the balancer's interface facing the generator.
pub const BALANCER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 0x01];
pub const SOURCE_IP: [u8; 4] = [10, 201, 1, 2];
/// The virtual IP the frames are sent to.
pub const VIP: [u8; 4] = [10, 201, 1, 100];
pub const DEST_PORT: u16 = 9;
/// Source ports are `FIRST_PORT .. FIRST_PORT + FLOWS`, one flow each.
pub const FIRST_PORT: u16 = 20_000;
pub const FLOWS: u16 = 64;
/// Header bytes the generator rewrites: Ethernet, IPv4, UDP.
pub const HEADER_LEN: usize = 14 + 20 + 8;
/// The whole frame without FCS: 64 bytes on the wire.
pub const FRAME_LEN: usize = 60;
/// Offset of the UDP source port in [`FRAME`].
pub const SOURCE_PORT_OFFSET: usize = 34;

/// The frame with source port [`FIRST_PORT`] and UDP checksum 0 ("none"),
/// so changing the port needs no checksum update.
pub const FRAME: [u8; FRAME_LEN] = frame();

const fn frame() -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let mut i = 0;
    while i < 6 {
        f[i] = BALANCER_MAC[i];
        f[6 + i] = SOURCE_MAC[i];
        i += 1;
    }
    f[12] = 0x08; // IPv4
    let ip = 14;
    f[ip] = 0x45;
    let total = (FRAME_LEN - ip) as u16;
    f[ip + 2] = (total >> 8) as u8;
    f[ip + 3] = total as u8;
    f[ip + 8] = 64; // TTL
    f[ip + 9] = 17; // UDP
    let mut j = 0;
    while j < 4 {
        f[ip + 12 + j] = SOURCE_IP[j];
        f[ip + 16 + j] = VIP[j];
        j += 1;
    }
    let check = ipv4_checksum(&f, ip);
    f[ip + 10] = (check >> 8) as u8;
    f[ip + 11] = check as u8;
    let udp = ip + 20;
    f[udp] = (FIRST_PORT >> 8) as u8;
    f[udp + 1] = FIRST_PORT as u8;
    f[udp + 2] = (DEST_PORT >> 8) as u8;
    f[udp + 3] = DEST_PORT as u8;
    let udp_len = (FRAME_LEN - udp) as u16;
    f[udp + 4] = (udp_len >> 8) as u8;
    f[udp + 5] = udp_len as u8;
    f
}

/// The RFC 791 header checksum of the 20-byte header at `at`.
const fn ipv4_checksum(f: &[u8; FRAME_LEN], at: usize) -> u16 {
    let mut sum: u32 = 0;
    let mut k = 0;
    while k < 20 {
        sum += ((f[at + k] as u32) << 8) | f[at + k + 1] as u32;
        k += 2;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checksum_verifies() {
        // Summing a header including its checksum gives 0xffff.
        let mut sum: u32 = 0;
        for k in (0..20).step_by(2) {
            sum += (u32::from(FRAME[14 + k]) << 8) | u32::from(FRAME[15 + k]);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn ports_and_addresses_are_where_the_generator_writes() {
        assert_eq!(
            u16::from_be_bytes([FRAME[SOURCE_PORT_OFFSET], FRAME[SOURCE_PORT_OFFSET + 1]]),
            FIRST_PORT
        );
        assert_eq!(FRAME[30..34], VIP);
        assert_eq!(FRAME[40..42], [0, 0], "UDP checksum none");
    }
}
