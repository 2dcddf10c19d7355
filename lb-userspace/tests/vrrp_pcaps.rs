//! keepalived's own adverts, captured on the wire: each decodes to the
//! fields tshark shows in the `.txt` next to the capture, re-encodes to the
//! same bytes, carries a checksum our code verifies (v3 over the pseudo-
//! header with the packet's real addresses) and passes an instance's
//! receive checks.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    net::{IpAddr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Instant,
};

use lb_userspace::{
    config,
    vrrp::{
        Advert, Family, Instance, InstanceParams, Received, Version,
        checksum::{internet_checksum, vrrp_v3_checksum},
        ipv4_packet,
    },
};

const IPPROTO_VRRP: u8 = 112;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/samples/vrrp-pcaps")
}

// ---- pcap ---------------------------------------------------------------

/// The records of a classic libpcap file and its link type.
fn read_pcap(path: &Path) -> (u32, Vec<Vec<u8>>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        bytes.len() >= 24,
        "{}: no pcap global header",
        path.display()
    );
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let little = match magic {
        // Microsecond and nanosecond variants, either byte order.
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        other => panic!("{}: not a libpcap file (magic {other:#x})", path.display()),
    };
    let u32_at = |b: &[u8], at: usize| {
        let word: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if little {
            u32::from_le_bytes(word)
        } else {
            u32::from_be_bytes(word)
        }
    };
    let link_type = u32_at(&bytes, 20);
    let mut records = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        assert!(
            at + 16 <= bytes.len(),
            "{}: truncated record header",
            path.display()
        );
        let captured = u32_at(&bytes, at + 8) as usize;
        let start = at + 16;
        assert!(
            start + captured <= bytes.len(),
            "{}: truncated record",
            path.display()
        );
        records.push(bytes[start..start + captured].to_vec());
        at = start + captured;
    }
    (link_type, records)
}

/// The network-layer packet and its ethertype, from a link-layer frame.
fn network_layer(link_type: u32, frame: &[u8]) -> (u16, &[u8]) {
    let (ethertype, mut rest) = match link_type {
        // Ethernet II.
        1 => (u16::from_be_bytes([frame[12], frame[13]]), &frame[14..]),
        // Linux cooked capture v1 (SLL) and v2 (SLL2).
        113 => (u16::from_be_bytes([frame[14], frame[15]]), &frame[16..]),
        276 => (u16::from_be_bytes([frame[0], frame[1]]), &frame[20..]),
        other => panic!("link type {other} is not handled by this test"),
    };
    let mut ethertype = ethertype;
    // 802.1Q tags.
    while ethertype == 0x8100 && rest.len() >= 4 {
        ethertype = u16::from_be_bytes([rest[2], rest[3]]);
        rest = &rest[4..];
    }
    (ethertype, rest)
}

/// A VRRP packet from a captured frame: the parsed `Received` and, for
/// IPv4, the IP identification (to rebuild the header).
fn vrrp_packet(link_type: u32, frame: &[u8]) -> Option<(Received<'_>, Option<u16>)> {
    let (ethertype, packet) = network_layer(link_type, frame);
    match ethertype {
        0x0800 if packet.get(9) == Some(&IPPROTO_VRRP) => {
            let rx = Received::from_ipv4_packet(packet).expect("a well-formed IPv4 header");
            Some((rx, Some(u16::from_be_bytes([packet[4], packet[5]]))))
        }
        0x86dd if packet.get(6) == Some(&IPPROTO_VRRP) => {
            let len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            let src: [u8; 16] = packet[8..24].try_into().unwrap();
            let dst: [u8; 16] = packet[24..40].try_into().unwrap();
            let rx = Received {
                src: IpAddr::V6(Ipv6Addr::from(src)),
                dst: IpAddr::V6(Ipv6Addr::from(dst)),
                ttl_or_hop_limit: packet[7],
                payload: &packet[40..40 + len],
            };
            Some((rx, None))
        }
        _ => None,
    }
}

// ---- tshark's text ------------------------------------------------------

/// What tshark printed for one frame.
#[derive(Debug, Default)]
struct Shown {
    frame: usize,
    src: String,
    dst: String,
    version: Option<u8>,
    kind: Option<u8>,
    vrid: Option<u8>,
    priority: Option<u8>,
    count: Option<u8>,
    auth_type: Option<u8>,
    interval: Option<u16>,
    checksum: Option<u16>,
    checksum_good: bool,
    addresses: Vec<IpAddr>,
    auth_string: Option<String>,
    bytes: Vec<u8>,
}

fn after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.find(key).map(|i| line[i + key.len()..].trim())
}

fn number<T: std::str::FromStr>(text: &str) -> T {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number at the start of `{text}`"))
}

/// The number in the last parentheses: `... (1)`.
fn last_paren_number(text: &str) -> u8 {
    let open = text.rfind('(').expect("a parenthesis");
    number(&text[open + 1..])
}

fn parse_txt(text: &str) -> Vec<Shown> {
    let mut frames: Vec<Shown> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Frame ") {
            frames.push(Shown {
                frame: number(rest),
                ..Shown::default()
            });
            continue;
        }
        let Some(f) = frames.last_mut() else { continue };
        if let Some(rest) = after(line, "Internet Protocol Version ") {
            let src = after(rest, "Src: ")
                .expect("Src")
                .split(',')
                .next()
                .unwrap();
            src.trim().clone_into(&mut f.src);
            after(rest, "Dst: ").expect("Dst").clone_into(&mut f.dst);
        } else if let Some(v) = after(line, "VRRP protocol version: ") {
            f.version = Some(number(v));
        } else if let Some(v) = after(line, "VRRP packet type: ") {
            f.kind = Some(last_paren_number(v));
        } else if let Some(v) = after(line, "Virtual Rtr ID: ") {
            f.vrid = Some(number(v));
        } else if let Some(v) = line.trim().strip_prefix("Priority: ") {
            f.priority = Some(number(v));
        } else if let Some(v) = after(line, "Addr Count: ") {
            f.count = Some(number(v));
        } else if let Some(v) = after(line, "Auth Type: ") {
            f.auth_type = Some(last_paren_number(v));
        } else if let Some(v) = after(line, "Adver Int: ") {
            f.interval = Some(number(v));
        } else if let Some(v) = line.trim().strip_prefix("Checksum: 0x") {
            f.checksum = Some(u16::from_str_radix(&v[..4], 16).expect("hex checksum"));
        } else if line.contains("[Checksum Status: Good]") {
            f.checksum_good = true;
        } else if let Some(v) = after(line, "IP Address: ") {
            f.addresses.push(v.parse().expect("an address"));
        } else if let Some(v) = after(line, "IPv6 Address: ") {
            f.addresses.push(v.parse().expect("an address"));
        } else if let Some(v) = after(line, "Authentication String: ") {
            f.auth_string = Some(v.to_owned());
        } else if line.len() > 6
            && line[..4].chars().all(|c| c.is_ascii_hexdigit())
            && &line[4..6] == "  "
        {
            // Hex dump: offset, two spaces, up to 16 bytes, then ASCII.
            let hex = &line[6..line.len().min(6 + 16 * 3)];
            f.bytes.extend(
                hex.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).expect("a hex byte")),
            );
        }
    }
    frames
}

// ---- the receiving side -------------------------------------------------

/// An instance configured like the capture's other node, started.
fn receiver(shown: &Shown, rx: &Received<'_>, multicast: bool) -> Instance {
    let version = shown.version.expect("version");
    let interval = if version == 2 {
        format!("{}", shown.interval.expect("interval"))
    } else {
        format!("{}", f64::from(shown.interval.expect("interval")) / 100.0)
    };
    let mut yaml = format!(
        "vrrp_instances:
  - name: RX
    interface: eth0
    virtual_router_id: {}
    version: {version}
    advert_int: {interval}
    virtual_ipaddresses: [{}]
",
        shown.vrid.expect("vrid"),
        shown
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let Some(pass) = &shown.auth_string {
        writeln!(
            yaml,
            "    authentication: {{ auth_type: pass, auth_pass: {pass} }}"
        )
        .expect("writing to a String");
    }
    if multicast {
        yaml.push_str("    unicast_src_ip: 10.200.0.99\n");
    } else {
        writeln!(
            yaml,
            "    unicast_src_ip: {}\n    unicast_peers: [{}]",
            rx.dst, rx.src
        )
        .expect("writing to a String");
    }
    let loaded = config::load_str(&yaml, "receiver.yaml")
        .unwrap_or_else(|e| panic!("receiver config does not load: {e}\n{yaml}"));
    let params = InstanceParams::from_config(&loaded.config.vrrp_instances[0], &[])
        .expect("receiver parameters");
    let now = Instant::now();
    let mut instance = Instance::new(params, now);
    instance.start(now);
    instance
}

// ---- the test -----------------------------------------------------------

/// Per capture: VRRP frames, and of them priority-0 ones (one per node
/// stopping), read off the captures once to make sure the parse is not
/// vacuous.
const EXPECTED: [(&str, usize, usize); 6] = [
    ("vrrp-v2-multicast", 8, 2),
    ("vrrp-v2-multicast-authpass", 8, 2),
    ("vrrp-v2-unicast", 8, 2),
    ("vrrp-v3-multicast", 8, 2),
    ("vrrp-v3-multicast-adv10cs", 19, 2),
    ("vrrp-v3-unicast", 8, 2),
];

#[test]
fn keepalived_captures_decode_reencode_and_verify() {
    let dir = data_dir();
    let mut seen = BTreeMap::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("pcap") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(path.with_extension("txt"))
            .unwrap_or_else(|e| panic!("{stem}.txt: {e}"));
        let shown = parse_txt(&text);
        let (link_type, records) = read_pcap(&path);
        let (frames, zeros) = check_capture(&stem, link_type, &records, &shown);
        seen.insert(stem, (frames, zeros));
    }
    for (stem, frames, zeros) in EXPECTED {
        assert_eq!(
            seen.remove(stem),
            Some((frames, zeros)),
            "{stem}: VRRP frames and priority-0 frames checked"
        );
    }
    assert!(
        seen.is_empty(),
        "captures without expectations here: {seen:?}"
    );
}

/// Checks one capture; returns how many VRRP frames and priority-0 frames.
fn check_capture(
    stem: &str,
    link_type: u32,
    records: &[Vec<u8>],
    shown: &[Shown],
) -> (usize, usize) {
    let vrrp_frames: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| vrrp_packet(link_type, r).is_some())
        .map(|(i, _)| i + 1)
        .collect();
    let shown_frames: Vec<usize> = shown.iter().map(|s| s.frame).collect();
    assert_eq!(
        vrrp_frames, shown_frames,
        "{stem}: the .txt shows every VRRP frame"
    );

    let mut zeros = 0;
    for s in shown {
        let what = format!("{stem} frame {}", s.frame);
        let record = &records[s.frame - 1];
        assert_eq!(record, &s.bytes, "{what}: capture and .txt hex dump differ");
        let (rx, ip_id) = vrrp_packet(link_type, record).expect("a VRRP packet");
        let family = Family::of(rx.src);

        // The fields tshark shows.
        assert_eq!(rx.src.to_string(), s.src, "{what}: source");
        assert_eq!(rx.dst.to_string(), s.dst, "{what}: destination");
        assert_eq!(rx.ttl_or_hop_limit, 255, "{what}: TTL");
        let advert = Advert::decode(rx.payload, family)
            .unwrap_or_else(|e| panic!("{what}: does not decode: {e}"));
        let version = match advert.version {
            Version::V2 => 2,
            Version::V3 => 3,
        };
        assert_eq!(Some(version), s.version, "{what}: version");
        assert_eq!(s.kind, Some(1), "{what}: tshark says advertisement");
        assert_eq!(Some(advert.vrid), s.vrid, "{what}: VRID");
        assert_eq!(Some(advert.priority), s.priority, "{what}: priority");
        assert_eq!(
            Some(advert.addresses.len()),
            s.count.map(usize::from),
            "{what}: address count"
        );
        assert_eq!(advert.addresses, s.addresses, "{what}: addresses");
        assert_eq!(Some(advert.interval), s.interval, "{what}: interval");
        assert_eq!(Some(advert.checksum), s.checksum, "{what}: checksum field");
        assert!(s.checksum_good, "{what}: tshark found the checksum good");
        if advert.version == Version::V2 {
            assert_eq!(Some(advert.auth.kind), s.auth_type, "{what}: auth type");
            let text: Vec<u8> = advert
                .auth
                .data
                .iter()
                .copied()
                .take_while(|b| *b != 0)
                .collect();
            match &s.auth_string {
                Some(pass) => assert_eq!(text, pass.as_bytes(), "{what}: password"),
                None => assert!(text.is_empty(), "{what}: no password"),
            }
        }

        // The checksum verifies by our code too.
        let verified = match advert.version {
            Version::V2 => internet_checksum(rx.payload) == 0,
            Version::V3 => vrrp_v3_checksum(rx.src, rx.dst, rx.payload) == Some(0),
        };
        assert!(verified, "{what}: checksum does not verify");

        // Re-encoding gives keepalived's bytes, IP header included.
        let bytes = advert.encode(rx.src, rx.dst).expect("encodes");
        assert_eq!(bytes, rx.payload, "{what}: re-encoded VRRP message differs");
        if let (IpAddr::V4(src), IpAddr::V4(dst), Some(id)) = (rx.src, rx.dst, ip_id) {
            let packet = ipv4_packet(src, dst, id, &bytes).expect("fits");
            assert_eq!(
                &record[14..],
                &packet[..],
                "{what}: rebuilt IPv4 packet differs"
            );
        }

        // An instance configured like the other node accepts it.
        let multicast = match rx.dst {
            IpAddr::V4(a) => a.is_multicast(),
            IpAddr::V6(a) => a.is_multicast(),
        };
        let mut instance = receiver(s, &rx, multicast);
        instance
            .handle_advert(Instant::now(), &rx)
            .unwrap_or_else(|reason| panic!("{what}: receiver drops it: {reason}"));
        assert_eq!(instance.counters().adverts_received, 1, "{what}");

        if advert.priority == 0 {
            zeros += 1;
        }
    }
    (shown.len(), zeros)
}
