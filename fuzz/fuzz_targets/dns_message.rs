//! The DNS resolver's query handler, with a fixed configuration and no
//! network: a selector byte (bit 0: TCP; bits 1-2: the source, one of a
//! container on one network, one on two, an unknown address, an IPv6
//! address), then the message. Nothing may panic; every reply parses, keeps
//! the query's id, is a response and fits its transport; a forwarded query
//! has a SERVFAIL to fall back on. A message that parses emits back to one
//! that parses to the same thing. A name compares with dotted text as the
//! name the text parses to.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use control::dns::message::{Message, Name, Rcode, Repr};
use control::dns::resolver::{self, Outcome, Transport};
use control::dns::{Config, Endpoint};
use libfuzzer_sys::fuzz_target;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let endpoint = |network: &str, container: &str, name: &str, aliases: &[&str], ip: [u8; 4]| Endpoint {
            network: network.into(),
            container: container.into(),
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ip: Ipv4Addr::from(ip),
        };
        Config {
            listen: vec![Ipv4Addr::new(172, 22, 16, 1), Ipv4Addr::new(172, 23, 0, 1)],
            endpoints: vec![
                endpoint("front", "aa", "web", &["www", "shop.example"], [172, 22, 16, 2]),
                endpoint("front", "bb", "api", &[], [172, 22, 16, 3]),
                endpoint("back", "bb", "api", &["service"], [172, 23, 0, 3]),
                endpoint("back", "cc", "db", &["postgres"], [172, 23, 0, 2]),
            ],
            upstream: vec![],
        }
    })
}

const SOURCES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(172, 22, 16, 2)),
    IpAddr::V4(Ipv4Addr::new(172, 23, 0, 3)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
    IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
];

fn check_reply(query: &[u8], reply: &[u8], max_len: usize) -> Repr {
    assert!(reply.len() <= max_len, "reply of {} bytes over a {max_len}-byte transport", reply.len());
    let repr = Repr::parse(reply).unwrap_or_else(|e| panic!("reply does not parse ({e}): {reply:02x?}"));
    let query = Message::new_checked(query).expect("a reply to an unreadable header");
    assert_eq!(repr.header.id, query.id());
    assert!(repr.header.response);
    assert!(resolver::is_reply_to(query.as_bytes(), reply));
    repr
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, query)) = data.split_first() else { return };
    let transport = if selector & 1 == 0 { Transport::Udp } else { Transport::Tcp };
    let source = SOURCES[usize::from(selector >> 1) & 3];
    match resolver::handle(config(), query, source, transport) {
        Outcome::Local(reply) => {
            let repr = check_reply(query, &reply, transport.max_len());
            assert_eq!(repr.header.rcode, Rcode::NoError);
            assert_eq!(repr.questions.len(), 1);
            assert!(repr.answers.iter().all(|a| a.ipv4().is_some() && a.ttl == resolver::TTL));
        }
        Outcome::Error(reply, rcode) => {
            let repr = check_reply(query, &reply, transport.max_len());
            assert_eq!(repr.header.rcode, rcode);
            assert!(matches!(rcode, Rcode::FormErr | Rcode::NotImp));
        }
        Outcome::Forward => {
            let reply = resolver::servfail(query).expect("a forwarded query has a SERVFAIL");
            let repr = check_reply(query, &reply, 512);
            assert_eq!(repr.header.rcode, Rcode::ServFail);
        }
        Outcome::Drop(_) => {}
    }
    if let Ok(repr) = Repr::parse(query) {
        let bytes = repr.emit().expect("a parsed message emits");
        assert_eq!(Repr::parse(&bytes).as_ref(), Ok(&repr), "emit → parse changed the message");
    }
    for offset in 0..query.len().min(64) {
        if let Ok((name, end)) = Name::parse(query, offset) {
            assert!(name.wire_len() <= 255 && end <= query.len() && end > offset);
            let _ = name.to_string();
            // The resolver's quick comparison agrees with parsing the text.
            if let Ok(text) = std::str::from_utf8(&query[end..]) {
                let slow = Name::from_dotted(text).is_ok_and(|own| own.eq_ignore_case(&name));
                assert_eq!(name.eq_dotted_ignore_case(text), slow, "{name:?} against {text:?}");
            }
        }
    }
});
