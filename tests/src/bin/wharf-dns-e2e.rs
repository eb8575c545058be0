//! The pieces of the DNS resolver's end-to-end tests, each run inside a
//! test's namespace:
//!
//! - `serve ROOT`: the resolver, `control::dns::serve` on the state root
//!   ROOT (what `wharf dns` runs).
//! - `upstream ADDR`: a fake upstream nameserver on ADDR:53 answering every
//!   query with one A record, 192.0.2.99, TTL 30; prints `ready`.
//! - `query [--tcp] [--from ADDR] [--type TYPE] SERVER NAME...`: asks SERVER
//!   (port 53) for each NAME, over UDP from ADDR (any port), or over one TCP
//!   connection (the source is what routing picks), and prints one line per
//!   name: `NAME rcode=NoError tc=false answers=172.22.16.3/600,...` or
//!   `NAME timeout`.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use control::dns::message::{Class, Header, Name, Opcode, Question, Rcode, Record, Repr, Type};
use control::state::Root;

const TIMEOUT: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") if args.len() == 2 => control::dns::serve(&Root::new(&args[1])),
        Some("upstream") if args.len() == 2 => upstream(&args[1]),
        Some("query") => query(&args[1..]),
        _ => Err("usage: wharf-dns-e2e serve ROOT | upstream ADDR | query [--tcp] [--from ADDR] [--type TYPE] SERVER NAME...".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf-dns-e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

fn upstream(addr: &str) -> Result<(), String> {
    let addr: Ipv4Addr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let socket = UdpSocket::bind((addr, 53)).map_err(|e| format!("bind {addr}:53: {e}"))?;
    println!("upstream ready on {addr}:53");
    let mut buf = [0; 4096];
    loop {
        let (len, from) = socket.recv_from(&mut buf).map_err(|e| e.to_string())?;
        let Ok(query) = Repr::parse(&buf[..len]) else { continue };
        let Some(question) = query.questions.first().cloned() else { continue };
        let mut reply = Repr::new(Header::reply_to(&query.header));
        reply.answers.push(Record::a(question.name.clone(), Ipv4Addr::new(192, 0, 2, 99), 30));
        reply.questions.push(question);
        if let Ok(bytes) = reply.emit() {
            let _ = socket.send_to(&bytes, from);
        }
    }
}

fn query(args: &[String]) -> Result<(), String> {
    let (mut tcp, mut from, mut qtype) = (false, None, Type::A);
    let mut rest = args.iter();
    let mut positional = Vec::new();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--tcp" => tcp = true,
            "--from" => {
                from =
                    Some(rest.next().ok_or("--from needs an address")?.parse::<Ipv4Addr>().map_err(|e| e.to_string())?)
            }
            "--type" => {
                qtype = match rest.next().map(String::as_str) {
                    Some("A") => Type::A,
                    Some("AAAA") => Type::Aaaa,
                    Some("MX") => Type::Mx,
                    Some("TXT") => Type::Txt,
                    other => return Err(format!("unknown type {other:?}")),
                }
            }
            _ => positional.push(arg.as_str()),
        }
    }
    let (server, names) = positional.split_first().ok_or("query needs SERVER NAME...")?;
    let server: Ipv4Addr = server.parse().map_err(|e| format!("{server}: {e}"))?;
    let server = SocketAddr::from((server, 53));
    let mut transport = if tcp {
        let stream = TcpStream::connect_timeout(&server, TIMEOUT).map_err(|e| format!("connect {server}: {e}"))?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
        Transport::Tcp(stream)
    } else {
        let socket = UdpSocket::bind((from.unwrap_or(Ipv4Addr::UNSPECIFIED), 0)).map_err(|e| e.to_string())?;
        socket.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
        socket.connect(server).map_err(|e| e.to_string())?;
        Transport::Udp(socket)
    };
    for (i, name) in names.iter().enumerate() {
        let id = 0x4000 + i as u16;
        let mut repr = Repr::new(Header {
            id,
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
        let qname = Name::from_dotted(name).map_err(|e| format!("{name}: {e}"))?;
        repr.questions.push(Question { name: qname, qtype, qclass: Class::In });
        let bytes = repr.emit().map_err(|e| e.to_string())?;
        match transport.ask(&bytes) {
            Some(reply) => {
                let reply = Repr::parse(&reply).map_err(|e| format!("the reply for {name} does not parse: {e}"))?;
                if reply.header.id != id {
                    return Err(format!("the reply for {name} has id {}, not {id}", reply.header.id));
                }
                let answers: Vec<String> = reply
                    .answers
                    .iter()
                    .map(|r| r.ipv4().map_or_else(|| format!("{:?}", r.rtype), |ip| format!("{ip}/{}", r.ttl)))
                    .collect();
                println!(
                    "{name} rcode={:?} tc={} answers={}",
                    reply.header.rcode,
                    reply.header.truncated,
                    answers.join(",")
                );
            }
            None => println!("{name} timeout"),
        }
    }
    Ok(())
}

enum Transport {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Transport {
    fn ask(&mut self, query: &[u8]) -> Option<Vec<u8>> {
        match self {
            Transport::Udp(socket) => {
                socket.send(query).ok()?;
                let mut buf = vec![0; 65_536];
                let len = socket.recv(&mut buf).ok()?;
                buf.truncate(len);
                Some(buf)
            }
            Transport::Tcp(stream) => {
                let mut framed = (query.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(query);
                stream.write_all(&framed).ok()?;
                let mut len = [0; 2];
                stream.read_exact(&mut len).ok()?;
                let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
                stream.read_exact(&mut buf).ok()?;
                Some(buf)
            }
        }
    }
}
