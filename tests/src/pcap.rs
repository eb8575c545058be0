//! Reads the classic pcap files that tcpdump writes (not pcapng): the global
//! header, then a record header and the captured bytes per packet.

use std::io;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// A capture: its link type and every packet's captured bytes.
#[derive(Debug)]
pub struct Capture {
    pub link_type: u32,
    pub packets: Vec<Vec<u8>>,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("pcap: {what}"))
}

/// Parses a whole pcap file. Packets cut short by the snap length are an
/// error: the tests capture whole frames.
pub fn parse(bytes: &[u8]) -> io::Result<Capture> {
    let header = bytes.get(..24).ok_or_else(|| bad("file shorter than the global header"))?;
    let magic_le = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let read_u32: fn([u8; 4]) -> u32 = match magic_le {
        MAGIC_MICROS | MAGIC_NANOS => u32::from_le_bytes,
        m if m.swap_bytes() == MAGIC_MICROS || m.swap_bytes() == MAGIC_NANOS => u32::from_be_bytes,
        _ => return Err(bad("not a pcap file (pcapng is not supported)")),
    };
    let word = |b: &[u8], at: usize| read_u32([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let link_type = word(header, 20);
    let mut packets = Vec::new();
    let mut rest = &bytes[24..];
    while !rest.is_empty() {
        let record = rest.get(..16).ok_or_else(|| bad("record header cut short"))?;
        let captured = word(record, 8) as usize;
        let original = word(record, 12) as usize;
        if captured != original {
            return Err(bad("a packet was cut short by the snap length"));
        }
        let data = rest.get(16..16 + captured).ok_or_else(|| bad("packet data cut short"))?;
        packets.push(data.to_vec());
        rest = &rest[16 + captured..];
    }
    Ok(Capture { link_type, packets })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_capture() {
        let mut file = Vec::new();
        for word in [MAGIC_MICROS, 0x0004_0002, 0, 0, 65535, LINKTYPE_ETHERNET] {
            file.extend_from_slice(&word.to_le_bytes()[..]);
        }
        // The version is two u16s, not a u32; it is not read.
        for (ts, data) in [(1u32, &[1u8, 2, 3][..]), (2, &[4u8][..])] {
            for word in [ts, 0, data.len() as u32, data.len() as u32] {
                file.extend_from_slice(&word.to_le_bytes());
            }
            file.extend_from_slice(data);
        }
        let capture = parse(&file).unwrap();
        assert_eq!(capture.link_type, LINKTYPE_ETHERNET);
        assert_eq!(capture.packets, vec![vec![1, 2, 3], vec![4]]);
        assert!(parse(&file[..file.len() - 1]).is_err());
        assert!(parse(&file[..10]).is_err());
    }
}
