//! What a query gets, decided without sockets or clocks: an answer from the
//! containers' names, an error reply, "forward it", or nothing.
//!
//! A query (opcode QUERY, one question, class IN) from a container's
//! address for a name visible to that container (see [`Config::resolve`])
//! is answered here: A (and ANY) with the addresses, TTL 600 as Docker's
//! resolver; any other type with an empty NOERROR (the name exists, it has
//! no such data). Everything else that is a well-formed query is forwarded
//! as it is. A message whose header is readable but whose opcode is not
//! QUERY gets NOTIMP, one that is otherwise malformed (not one question,
//! a broken name or record, bytes after the last record) FORMERR (RFC 1035
//! §4.1.1); one too short for a header, or that is itself a response, is
//! dropped.
//!
//! What this module does not do: send anything, or keep counters (the
//! server counts the outcomes).

use std::net::IpAddr;

use super::message::{Class, Header, Message, Opcode, Rcode, Record, Repr, Type, MAX_TCP_LEN, MAX_UDP_LEN};
use super::Config;

/// The TTL of an answer for a container's name, as Docker's.
pub const TTL: u32 = 600;

/// How the query came, which bounds the reply's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// At most 512 bytes; a longer answer is cut and marked TC.
    Udp,
    /// At most 65535 bytes.
    Tcp,
}

impl Transport {
    /// The longest reply this transport carries.
    pub fn max_len(self) -> usize {
        match self {
            Transport::Udp => MAX_UDP_LEN,
            Transport::Tcp => MAX_TCP_LEN,
        }
    }
}

/// Why a message got no reply at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than a header: there is no id to answer to.
    Unreadable,
    /// QR is set: answering responses invites loops.
    NotAQuery,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A container's name: send back this answer.
    Local(Vec<u8>),
    /// A query this resolver will not take: send back this reply, whose code
    /// is FORMERR or NOTIMP.
    Error(Vec<u8>, Rcode),
    /// Not a name of ours: send the query as it is to the upstream servers
    /// and relay the first answer; if none answers, [`servfail`].
    Forward,
    /// Send nothing.
    Drop(DropReason),
}

/// Decides what `query`, which came from `source` over `transport`, gets.
/// Never panics, whatever the bytes.
pub fn handle(config: &Config, query: &[u8], source: IpAddr, transport: Transport) -> Outcome {
    let Ok(message) = Message::new_checked(query) else {
        return Outcome::Drop(DropReason::Unreadable);
    };
    let Ok(header) = Header::parse(&message) else {
        return Outcome::Drop(DropReason::Unreadable);
    };
    if header.response {
        return Outcome::Drop(DropReason::NotAQuery);
    }
    if header.opcode != Opcode::Query {
        return error(&header, Rcode::NotImp);
    }
    let repr = match Repr::parse(query) {
        Ok(repr) if repr.questions.len() == 1 => repr,
        _ => return error(&header, Rcode::FormErr),
    };
    let question = &repr.questions[0];
    if question.qclass != Class::In {
        return Outcome::Forward;
    }
    let source = match source {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return Outcome::Forward,
        },
    };
    let addresses = config.resolve(source, &question.name);
    if addresses.is_empty() {
        return Outcome::Forward;
    }
    let mut reply = Repr::new(Header::reply_to(&header));
    reply.questions.push(question.clone());
    if matches!(question.qtype, Type::A | Type::Any) {
        reply.answers = addresses.into_iter().map(|ip| Record::a(question.name.clone(), ip, TTL)).collect();
    }
    // A question (at most 255 + 4 bytes) behind a header always fits in 512.
    match reply.emit_within(transport.max_len()) {
        Ok(bytes) => Outcome::Local(bytes),
        Err(_) => error(&header, Rcode::FormErr),
    }
}

/// An error reply to `query`: its id, opcode, RD and CD, the code, no records.
fn error(query: &Header, rcode: Rcode) -> Outcome {
    let header = Header { rcode, ..Header::reply_to(query) };
    match Repr::new(header).emit() {
        Ok(bytes) => Outcome::Error(bytes, rcode),
        Err(_) => Outcome::Drop(DropReason::Unreadable),
    }
}

/// SERVFAIL for `query`, when no upstream server answered: with its
/// question if it has exactly one that parses. `None` if the header is
/// unreadable.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let header = Header::parse(&Message::new_checked(query).ok()?).ok()?;
    let mut reply = Repr::new(Header { rcode: Rcode::ServFail, ..Header::reply_to(&header) });
    if let Ok(parsed) = Repr::parse(query) {
        if parsed.questions.len() == 1 {
            reply.questions = parsed.questions;
        }
    }
    reply.emit_within(MAX_UDP_LEN).or_else(|_| Repr::new(reply.header).emit()).ok()
}

/// Whether `reply`, from an upstream server, answers `query`: a response
/// with the same id (RFC 5452 §9.1 asks for the question too; the socket is
/// connected to the server and on a random port, which is what keeps
/// forgeries out here).
pub fn is_reply_to(query: &[u8], reply: &[u8]) -> bool {
    match (Message::new_checked(query), Message::new_checked(reply)) {
        (Ok(query), Ok(reply)) => reply.is_response() && reply.id() == query.id(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::dns::message::{Name, Question};
    use crate::dns::Endpoint;

    fn config() -> Config {
        let endpoint = |network: &str, container: &str, name: &str, ip: [u8; 4]| Endpoint {
            network: network.into(),
            container: container.into(),
            name: name.into(),
            aliases: vec![format!("{name}-alias")],
            ip: Ipv4Addr::from(ip),
        };
        Config {
            listen: vec![Ipv4Addr::new(172, 22, 16, 1)],
            endpoints: vec![
                endpoint("front", "aa", "web", [172, 22, 16, 2]),
                endpoint("front", "bb", "api", [172, 22, 16, 3]),
                endpoint("back", "cc", "db", [172, 23, 0, 2]),
            ],
            upstream: vec![],
        }
    }

    const WEB: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 22, 16, 2));

    fn query(name: &str, qtype: Type) -> Vec<u8> {
        let mut repr = Repr::new(Header {
            id: 0xbeef,
            response: false,
            opcode: Opcode::Query,
            authoritative: false,
            truncated: false,
            recursion_desired: true,
            recursion_available: false,
            authentic_data: false,
            checking_disabled: false,
            rcode: Rcode::NoError,
        });
        repr.questions.push(Question { name: Name::from_dotted(name).unwrap(), qtype, qclass: Class::In });
        repr.emit().unwrap()
    }

    fn local(outcome: Outcome) -> Repr {
        match outcome {
            Outcome::Local(bytes) => Repr::parse(&bytes).unwrap(),
            other => panic!("not a local answer: {other:?}"),
        }
    }

    #[test]
    fn a_local_name_gets_its_address() {
        let reply = local(handle(&config(), &query("API.", Type::A), WEB, Transport::Udp));
        assert_eq!(reply.header.id, 0xbeef);
        assert!(reply.header.response && reply.header.recursion_desired && reply.header.recursion_available);
        assert_eq!(reply.header.rcode, Rcode::NoError);
        assert_eq!(reply.questions[0].name.to_string(), "API", "the question as asked");
        assert_eq!(reply.answers.len(), 1);
        assert_eq!(reply.answers[0].ipv4(), Some(Ipv4Addr::new(172, 22, 16, 3)));
        assert_eq!(reply.answers[0].ttl, TTL);
        // Its owner is a pointer to the question.
        let bytes = match handle(&config(), &query("api", Type::A), WEB, Transport::Udp) {
            Outcome::Local(bytes) => bytes,
            other => panic!("{other:?}"),
        };
        assert_eq!(&bytes[bytes.len() - 16..bytes.len() - 14], &[0xc0, 0x0c]);
        // ANY gets the address too; an IPv4-mapped source is that container.
        let mapped = IpAddr::V6(Ipv4Addr::new(172, 22, 16, 2).to_ipv6_mapped());
        let reply = local(handle(&config(), &query("api-alias", Type::Any), mapped, Transport::Tcp));
        assert_eq!(reply.answers[0].ipv4(), Some(Ipv4Addr::new(172, 22, 16, 3)));
    }

    #[test]
    fn other_types_of_a_local_name_are_empty_noerror() {
        for qtype in [Type::Aaaa, Type::Mx, Type::Txt, Type::Unknown(65)] {
            let reply = local(handle(&config(), &query("web", qtype), WEB, Transport::Udp));
            assert_eq!(reply.header.rcode, Rcode::NoError);
            assert!(reply.answers.is_empty(), "{qtype:?}");
            assert_eq!(reply.questions[0].qtype, qtype);
        }
    }

    #[test]
    fn names_on_other_networks_and_unknown_sources_are_forwarded() {
        assert_eq!(handle(&config(), &query("db", Type::A), WEB, Transport::Udp), Outcome::Forward);
        assert_eq!(handle(&config(), &query("example.com", Type::A), WEB, Transport::Udp), Outcome::Forward);
        let stranger = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        assert_eq!(handle(&config(), &query("web", Type::A), stranger, Transport::Udp), Outcome::Forward);
        let v6 = "2001:db8::2".parse().unwrap();
        assert_eq!(handle(&config(), &query("web", Type::A), v6, Transport::Udp), Outcome::Forward);
        // Class CHAOS (version.bind and friends) is not ours either.
        let mut chaos = query("web", Type::Txt);
        let at = chaos.len() - 1;
        chaos[at] = 3;
        assert_eq!(handle(&config(), &chaos, WEB, Transport::Udp), Outcome::Forward);
    }

    #[test]
    fn malformed_queries_get_formerr_with_their_id() {
        let good = query("web", Type::A);
        let mut two_questions = good.clone();
        two_questions[5] = 2;
        let mut no_question = good.clone();
        no_question[5] = 0;
        let mut trailing = good.clone();
        trailing.push(0);
        let cut = good[..good.len() - 1].to_vec();
        let mut looping = good[..12].to_vec();
        looping.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        for bad in [two_questions, no_question, trailing, cut, looping] {
            let Outcome::Error(bytes, Rcode::FormErr) = handle(&config(), &bad, WEB, Transport::Udp) else {
                panic!("no FORMERR for {bad:?}");
            };
            let reply = Repr::parse(&bytes).unwrap();
            assert_eq!((reply.header.id, reply.header.rcode), (0xbeef, Rcode::FormErr));
            assert!(reply.header.response && reply.questions.is_empty());
        }
    }

    #[test]
    fn other_opcodes_get_notimp_and_junk_is_dropped() {
        let mut notify = query("web", Type::Soa);
        notify[2] |= 4 << 3;
        let Outcome::Error(bytes, Rcode::NotImp) = handle(&config(), &notify, WEB, Transport::Udp) else {
            panic!("no NOTIMP");
        };
        let reply = Repr::parse(&bytes).unwrap();
        assert_eq!((reply.header.opcode, reply.header.rcode), (Opcode::Notify, Rcode::NotImp));
        for short in [&[][..], &[0xbe], &query("web", Type::A)[..11]] {
            assert_eq!(handle(&config(), short, WEB, Transport::Udp), Outcome::Drop(DropReason::Unreadable));
        }
        let mut response = query("web", Type::A);
        response[2] |= 0x80;
        assert_eq!(handle(&config(), &response, WEB, Transport::Udp), Outcome::Drop(DropReason::NotAQuery));
    }

    #[test]
    fn many_answers_are_cut_over_udp_but_not_tcp() {
        let mut config = config();
        for i in 0..40 {
            config.endpoints.push(Endpoint {
                network: "front".into(),
                container: format!("c{i}"),
                name: format!("n{i}"),
                aliases: vec!["pool".into()],
                ip: Ipv4Addr::new(172, 22, 17, i),
            });
        }
        let udp = local(handle(&config, &query("pool", Type::A), WEB, Transport::Udp));
        assert!(udp.header.truncated);
        assert!(udp.answers.len() < 40);
        let tcp = local(handle(&config, &query("pool", Type::A), WEB, Transport::Tcp));
        assert!(!tcp.header.truncated);
        assert_eq!(tcp.answers.len(), 40);
    }

    #[test]
    fn servfail_keeps_id_and_question() {
        let q = query("example.com", Type::Aaaa);
        let reply = Repr::parse(&servfail(&q).unwrap()).unwrap();
        assert_eq!((reply.header.id, reply.header.rcode), (0xbeef, Rcode::ServFail));
        assert_eq!(reply.questions, Repr::parse(&q).unwrap().questions);
        let reply = Repr::parse(&servfail(&q[..14]).unwrap()).unwrap();
        assert!(reply.questions.is_empty());
        assert_eq!(servfail(&q[..5]), None);
    }

    #[test]
    fn replies_are_matched_by_id_and_qr() {
        let q = query("example.com", Type::A);
        let reply = servfail(&q).unwrap();
        assert!(is_reply_to(&q, &reply));
        assert!(!is_reply_to(&q, &q), "a query is no reply");
        let mut other = reply.clone();
        other[1] ^= 1;
        assert!(!is_reply_to(&q, &other));
        assert!(!is_reply_to(&q, &reply[..11]));
    }
}
