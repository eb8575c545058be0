//! `wharf vtep --tunnel-gso`'s readers of `/proc/net/route` and
//! `/proc/net/arp`: arbitrary text (the first four bytes the address to look
//! up). Checked: nothing panics; a route found names a device that appears
//! in the text; a neighbour found is not the all-zero MAC.
#![no_main]

use std::net::Ipv4Addr;

use control::vtep::tunnel::{neighbour, route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((addr, text)) = data.split_first_chunk::<4>() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let addr = Ipv4Addr::from(*addr);
    if let Some((device, _)) = route(text, addr) {
        assert!(text.contains(&device), "{device:?}");
    }
    for device in ["u0", "eth0"] {
        if let Some(mac) = neighbour(text, addr, device) {
            assert_ne!(mac.0, [0; 6]);
        }
    }
});
