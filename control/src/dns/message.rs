//! DNS messages (RFC 1035 §4.1): the header view, names with compression
//! pointers (§4.1.4), questions and resource records, and an owned [`Repr`]
//! of a whole message that parses and emits.
//!
//! Reading follows compression pointers with two guards: a pointer must go
//! strictly backwards, below where the previous jump landed (so a chain of
//! pointers always ends), and a name may not exceed 255 bytes (§2.3.4).
//! Extended label types (RFC 6891 §5, `01` and `10` in the top bits) are
//! refused as unsupported.
//!
//! What this module does not do: decompress names inside record data (RDATA
//! is carried as raw bytes, so a record read from one message must not be
//! re-emitted into another if its type holds names), EDNS (an OPT record is
//! carried like any other), DNSSEC, or anything with sockets. When writing,
//! a name identical to one already written is replaced by a pointer to it;
//! suffixes are not shared.

use std::fmt;
use std::net::Ipv4Addr;

mod field {
    use core::ops::Range;

    pub(super) const ID: Range<usize> = 0..2;
    pub(super) const FLAGS: Range<usize> = 2..4;
    pub(super) const QDCOUNT: Range<usize> = 4..6;
    pub(super) const ANCOUNT: Range<usize> = 6..8;
    pub(super) const NSCOUNT: Range<usize> = 8..10;
    pub(super) const ARCOUNT: Range<usize> = 10..12;
    pub(super) const PAYLOAD: usize = 12;
}

mod flags {
    pub(super) const QR: u16 = 0x8000;
    pub(super) const OPCODE_SHIFT: u16 = 11;
    pub(super) const AA: u16 = 0x0400;
    pub(super) const TC: u16 = 0x0200;
    pub(super) const RD: u16 = 0x0100;
    pub(super) const RA: u16 = 0x0080;
    pub(super) const AD: u16 = 0x0020;
    pub(super) const CD: u16 = 0x0010;
    pub(super) const RCODE: u16 = 0x000f;
}

/// The length of the header (§4.1.1).
pub const HEADER_LEN: usize = field::PAYLOAD;
/// The longest name in wire form, its length octets and the root included (§2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// The longest label (§2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// The largest message over UDP without EDNS (§2.3.4).
pub const MAX_UDP_LEN: usize = 512;
/// The largest message over TCP: what a two-byte length prefix can say (§4.2.2).
pub const MAX_TCP_LEN: usize = 65_535;

/// Why bytes were refused. `Copy`, so tests can assert which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The message ends before a field, a name or a record does.
    Truncated,
    /// A field holds what the format forbids: a pointer that does not go
    /// backwards, a name longer than 255 bytes, bytes after the last record,
    /// a value too large to encode.
    Malformed,
    /// Well-formed but not handled here: an extended label type.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated DNS message",
            Error::Malformed => "malformed DNS message",
            Error::Unsupported => "unsupported DNS message",
        })
    }
}

impl std::error::Error for Error {}

/// The result of a check or a parse in this module.
pub type Result<T> = core::result::Result<T, Error>;

/// Declares a protocol-number enum with an `Unknown` arm, and the conversions
/// from and to the integer carried on the wire (as `dataplane::wire` does).
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $(
                $( #[$variant_attr:meta] )*
                $variant:ident = $value:expr
            ),+ $(,)?
        }
    ) => {
        $( #[$enum_attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $(
                $( #[$variant_attr] )*
                $variant,
            )+
            /// A value this module has no name for, carried as it is.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// A record or query type (§3.2.2, §3.2.3; AAAA RFC 3596, SRV RFC 2782, OPT RFC 6891).
    pub enum Type(u16) {
        A = 1,
        Ns = 2,
        Cname = 5,
        Soa = 6,
        Ptr = 12,
        Mx = 15,
        Txt = 16,
        Aaaa = 28,
        Srv = 33,
        Opt = 41,
        Any = 255,
    }
}

enum_with_unknown! {
    /// A record or query class (§3.2.4, §3.2.5).
    pub enum Class(u16) {
        In = 1,
        Chaos = 3,
        Hesiod = 4,
        Any = 255,
    }
}

enum_with_unknown! {
    /// The kind of query (§4.1.1; NOTIFY RFC 1996, UPDATE RFC 2136). Four bits on the wire.
    pub enum Opcode(u8) {
        Query = 0,
        InverseQuery = 1,
        Status = 2,
        Notify = 4,
        Update = 5,
    }
}

enum_with_unknown! {
    /// The response code (§4.1.1). Four bits in the header; the extended
    /// codes of EDNS are not represented.
    pub enum Rcode(u8) {
        NoError = 0,
        FormErr = 1,
        ServFail = 2,
        NxDomain = 3,
        NotImp = 4,
        Refused = 5,
    }
}

fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A view of a DNS message in a buffer.
///
/// After [`Message::new_checked`] succeeds the buffer holds a whole header,
/// and no getter panics. The sections after the header are read with
/// [`Question::parse`], [`Record::parse`] or [`Repr::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Message<T> {
        Message { buffer }
    }

    /// Wraps a buffer and checks it with [`Message::check_len`].
    pub fn new_checked(buffer: T) -> Result<Message<T>> {
        let message = Message::new_unchecked(buffer);
        message.check_len()?;
        Ok(message)
    }

    /// `Truncated` unless the buffer holds the 12-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn field(&self, at: usize) -> u16 {
        read_u16(self.buffer.as_ref(), at).unwrap_or(0)
    }

    pub fn id(&self) -> u16 {
        self.field(field::ID.start)
    }

    /// The whole flags word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub fn flags(&self) -> u16 {
        self.field(field::FLAGS.start)
    }

    /// QR: a response rather than a query.
    pub fn is_response(&self) -> bool {
        self.flags() & flags::QR != 0
    }

    pub fn opcode(&self) -> Opcode {
        Opcode::from(((self.flags() >> flags::OPCODE_SHIFT) & 0xf) as u8)
    }

    pub fn authoritative(&self) -> bool {
        self.flags() & flags::AA != 0
    }

    pub fn truncated(&self) -> bool {
        self.flags() & flags::TC != 0
    }

    pub fn recursion_desired(&self) -> bool {
        self.flags() & flags::RD != 0
    }

    pub fn recursion_available(&self) -> bool {
        self.flags() & flags::RA != 0
    }

    /// AD (RFC 4035 §3.2.3).
    pub fn authentic_data(&self) -> bool {
        self.flags() & flags::AD != 0
    }

    /// CD (RFC 4035 §3.2.2).
    pub fn checking_disabled(&self) -> bool {
        self.flags() & flags::CD != 0
    }

    pub fn rcode(&self) -> Rcode {
        Rcode::from((self.flags() & flags::RCODE) as u8)
    }

    pub fn question_count(&self) -> u16 {
        self.field(field::QDCOUNT.start)
    }

    pub fn answer_count(&self) -> u16 {
        self.field(field::ANCOUNT.start)
    }

    pub fn authority_count(&self) -> u16 {
        self.field(field::NSCOUNT.start)
    }

    pub fn additional_count(&self) -> u16 {
        self.field(field::ARCOUNT.start)
    }

    /// The whole message, header included: names are read against it.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Message<T> {
    fn set_field(&mut self, range: core::ops::Range<usize>, value: u16) {
        if let Some(bytes) = self.buffer.as_mut().get_mut(range) {
            bytes.copy_from_slice(&value.to_be_bytes());
        }
    }

    pub fn set_id(&mut self, value: u16) {
        self.set_field(field::ID, value)
    }

    pub fn set_flags(&mut self, value: u16) {
        self.set_field(field::FLAGS, value)
    }

    /// Sets or clears TC.
    pub fn set_truncated(&mut self, value: bool) {
        let f = self.flags();
        self.set_flags(if value { f | flags::TC } else { f & !flags::TC })
    }

    pub fn set_question_count(&mut self, value: u16) {
        self.set_field(field::QDCOUNT, value)
    }

    pub fn set_answer_count(&mut self, value: u16) {
        self.set_field(field::ANCOUNT, value)
    }

    pub fn set_authority_count(&mut self, value: u16) {
        self.set_field(field::NSCOUNT, value)
    }

    pub fn set_additional_count(&mut self, value: u16) {
        self.set_field(field::ARCOUNT, value)
    }
}

/// The header's meaning (§4.1.1), without the section counts (those belong
/// to [`Repr`]). The Z bit is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub response: bool,
    pub opcode: Opcode,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub authentic_data: bool,
    pub checking_disabled: bool,
    pub rcode: Rcode,
}

impl Header {
    /// Reads the header of a message; `Truncated` if it is shorter than 12 bytes.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(message: &Message<&T>) -> Result<Header> {
        message.check_len()?;
        Ok(Header {
            id: message.id(),
            response: message.is_response(),
            opcode: message.opcode(),
            authoritative: message.authoritative(),
            truncated: message.truncated(),
            recursion_desired: message.recursion_desired(),
            recursion_available: message.recursion_available(),
            authentic_data: message.authentic_data(),
            checking_disabled: message.checking_disabled(),
            rcode: message.rcode(),
        })
    }

    /// The header of a reply to `query`: same id and opcode, RD and CD
    /// copied, QR and RA set, NOERROR, as resolvers answer (RFC 1035 §4.1.1).
    pub fn reply_to(query: &Header) -> Header {
        Header {
            id: query.id,
            response: true,
            opcode: query.opcode,
            authoritative: false,
            truncated: false,
            recursion_desired: query.recursion_desired,
            recursion_available: true,
            authentic_data: false,
            checking_disabled: query.checking_disabled,
            rcode: Rcode::NoError,
        }
    }

    /// The flags word; `Malformed` if the opcode or rcode does not fit in four bits.
    pub fn flags(&self) -> Result<u16> {
        let opcode = u8::from(self.opcode);
        let rcode = u8::from(self.rcode);
        if opcode > 0xf || rcode > 0xf {
            return Err(Error::Malformed);
        }
        let bit = |set: bool, bit: u16| if set { bit } else { 0 };
        Ok(bit(self.response, flags::QR)
            | u16::from(opcode) << flags::OPCODE_SHIFT
            | bit(self.authoritative, flags::AA)
            | bit(self.truncated, flags::TC)
            | bit(self.recursion_desired, flags::RD)
            | bit(self.recursion_available, flags::RA)
            | bit(self.authentic_data, flags::AD)
            | bit(self.checking_disabled, flags::CD)
            | u16::from(rcode))
    }

    /// Writes id and flags into a message; the counts are left alone.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, message: &mut Message<&mut T>) -> Result<()> {
        message.check_len()?;
        let flags = self.flags()?;
        message.set_id(self.id);
        message.set_flags(flags);
        Ok(())
    }
}

/// A domain name as a list of labels (bytes, case as written), the root
/// being the empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Name {
    labels: Vec<Vec<u8>>,
}

impl Name {
    /// The root, `.`.
    pub fn root() -> Name {
        Name::default()
    }

    /// A name from its dotted text: `web`, `web.`, `www.example.com`; `.` is
    /// the root. `Malformed` for an empty label (`a..b`, a leading dot), a
    /// label over 63 bytes or a name over 255. No escapes are read.
    pub fn from_dotted(text: &str) -> Result<Name> {
        if text == "." {
            return Ok(Name::root());
        }
        let text = text.strip_suffix('.').unwrap_or(text);
        let mut name = Name::root();
        for label in text.split('.') {
            name.push(label.as_bytes())?;
        }
        Ok(name)
    }

    /// Appends a label; `Malformed` if it is empty, longer than 63 bytes, or
    /// makes the name longer than 255.
    pub fn push(&mut self, label: &[u8]) -> Result<()> {
        if label.is_empty() || label.len() > MAX_LABEL_LEN || self.wire_len() + 1 + label.len() > MAX_NAME_LEN {
            return Err(Error::Malformed);
        }
        self.labels.push(label.to_vec());
        Ok(())
    }

    /// The labels, most specific first.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.labels.iter().map(Vec::as_slice)
    }

    pub fn is_root(&self) -> bool {
        self.labels.is_empty()
    }

    /// The length of the name in uncompressed wire form.
    pub fn wire_len(&self) -> usize {
        self.labels.iter().map(|label| 1 + label.len()).sum::<usize>() + 1
    }

    /// Equal but for ASCII case (RFC 4343).
    /// Whether `text`, read as [`Name::from_dotted`] reads it, is this name
    /// (ASCII case ignored; text that is no valid name is none), without
    /// building the other name: the resolver asks this of every endpoint
    /// name for every query.
    pub fn eq_dotted_ignore_case(&self, text: &str) -> bool {
        if text == "." {
            return self.is_root();
        }
        let mut labels = text.strip_suffix('.').unwrap_or(text).split('.');
        self.labels.iter().all(|own| labels.next().is_some_and(|label| label.as_bytes().eq_ignore_ascii_case(own)))
            && labels.next().is_none()
    }

    pub fn eq_ignore_case(&self, other: &Name) -> bool {
        self.labels.len() == other.labels.len()
            && self.labels.iter().zip(&other.labels).all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// Reads the name at `offset` in `message` (the whole message, header
    /// included, for pointers), following compression pointers (§4.1.4).
    /// Returns the name and the offset just past it where it was written
    /// (past its first pointer, if any).
    ///
    /// `Truncated` if the message ends inside the name; `Malformed` for a
    /// pointer that does not point below the place the previous jump landed
    /// (the name's start for the first one: a loop, or a forward pointer),
    /// or a name longer than 255 bytes; `Unsupported` for an extended label type.
    pub fn parse(message: &[u8], offset: usize) -> Result<(Name, usize)> {
        let mut name = Name::root();
        let mut wire_len = 1;
        let mut pos = offset;
        let mut end = None;
        let mut limit = offset;
        loop {
            let len = *message.get(pos).ok_or(Error::Truncated)?;
            match len & 0xc0 {
                0x00 if len == 0 => return Ok((name, end.unwrap_or(pos + 1))),
                0x00 => {
                    let len = usize::from(len);
                    let label = message.get(pos + 1..pos + 1 + len).ok_or(Error::Truncated)?;
                    wire_len += 1 + len;
                    if wire_len > MAX_NAME_LEN {
                        return Err(Error::Malformed);
                    }
                    name.labels.push(label.to_vec());
                    pos += 1 + len;
                }
                0xc0 => {
                    let low = *message.get(pos + 1).ok_or(Error::Truncated)?;
                    let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                    end.get_or_insert(pos + 2);
                    if target >= limit {
                        return Err(Error::Malformed);
                    }
                    limit = target;
                    pos = target;
                }
                _ => return Err(Error::Unsupported),
            }
        }
    }

    /// Appends the uncompressed wire form.
    pub fn emit(&self, out: &mut Vec<u8>) {
        for label in &self.labels {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
    }
}

impl fmt::Display for Name {
    /// Dotted, without the trailing dot (`.` for the root); a dot or a
    /// backslash inside a label is escaped with a backslash, other bytes
    /// outside printable ASCII as `\DDD` (RFC 1035 §5.1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &byte in label {
                match byte {
                    b'.' | b'\\' => write!(f, "\\{}", byte as char)?,
                    0x21..=0x7e => write!(f, "{}", byte as char)?,
                    _ => write!(f, "\\{byte:03}")?,
                }
            }
        }
        Ok(())
    }
}

/// One entry of the question section (§4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: Type,
    pub qclass: Class,
}

impl Question {
    /// Reads the question at `offset`; returns it and the offset past it.
    pub fn parse(message: &[u8], offset: usize) -> Result<(Question, usize)> {
        let (name, at) = Name::parse(message, offset)?;
        let qtype = read_u16(message, at).ok_or(Error::Truncated)?;
        let qclass = read_u16(message, at + 2).ok_or(Error::Truncated)?;
        Ok((Question { name, qtype: Type::from(qtype), qclass: Class::from(qclass) }, at + 4))
    }
}

/// One resource record (§4.1.3). The data is carried raw: names inside it
/// are not decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: Type,
    pub class: Class,
    pub ttl: u32,
    pub data: Vec<u8>,
}

impl Record {
    /// An A record, class IN.
    pub fn a(name: Name, addr: Ipv4Addr, ttl: u32) -> Record {
        Record { name, rtype: Type::A, class: Class::In, ttl, data: addr.octets().to_vec() }
    }

    /// Reads the record at `offset`; returns it and the offset past it.
    /// `Truncated` if the data runs past the message.
    pub fn parse(message: &[u8], offset: usize) -> Result<(Record, usize)> {
        let (name, at) = Name::parse(message, offset)?;
        let rtype = read_u16(message, at).ok_or(Error::Truncated)?;
        let class = read_u16(message, at + 2).ok_or(Error::Truncated)?;
        let ttl = read_u32(message, at + 4).ok_or(Error::Truncated)?;
        let len = usize::from(read_u16(message, at + 8).ok_or(Error::Truncated)?);
        let data = message.get(at + 10..at + 10 + len).ok_or(Error::Truncated)?;
        let record = Record { name, rtype: Type::from(rtype), class: Class::from(class), ttl, data: data.to_vec() };
        Ok((record, at + 10 + len))
    }

    /// The address of an A record of class IN, else `None`.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        let octets: [u8; 4] = self.data.as_slice().try_into().ok()?;
        (self.rtype == Type::A && self.class == Class::In).then_some(Ipv4Addr::from(octets))
    }
}

/// A whole message: header and the four sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl Repr {
    /// A message with `header` and empty sections.
    pub fn new(header: Header) -> Repr {
        Repr { header, questions: Vec::new(), answers: Vec::new(), authority: Vec::new(), additional: Vec::new() }
    }

    /// Reads a whole message: as many questions and records as the header
    /// counts; `Malformed` if bytes are left after the last one.
    pub fn parse(bytes: &[u8]) -> Result<Repr> {
        let message = Message::new_checked(bytes)?;
        let mut repr = Repr::new(Header::parse(&message)?);
        let mut at = HEADER_LEN;
        for _ in 0..message.question_count() {
            let (question, next) = Question::parse(bytes, at)?;
            repr.questions.push(question);
            at = next;
        }
        for (count, section) in [
            (message.answer_count(), &mut repr.answers),
            (message.authority_count(), &mut repr.authority),
            (message.additional_count(), &mut repr.additional),
        ] {
            for _ in 0..count {
                let (record, next) = Record::parse(bytes, at)?;
                section.push(record);
                at = next;
            }
        }
        if at != bytes.len() {
            return Err(Error::Malformed);
        }
        Ok(repr)
    }

    /// Writes the message. A name identical (case included) to a whole name
    /// written before it becomes a pointer to that one. `Malformed` if a
    /// section has more than 65535 entries, a record's data more than 65535
    /// bytes, or the header cannot be encoded; the length is not limited
    /// here (see [`Repr::emit_within`]).
    pub fn emit(&self) -> Result<Vec<u8>> {
        let count = |n: usize| u16::try_from(n).map_err(|_| Error::Malformed);
        let mut out = vec![0; HEADER_LEN];
        {
            let mut message = Message::new_unchecked(&mut out[..]);
            self.header.emit(&mut message)?;
            message.set_question_count(count(self.questions.len())?);
            message.set_answer_count(count(self.answers.len())?);
            message.set_authority_count(count(self.authority.len())?);
            message.set_additional_count(count(self.additional.len())?);
        }
        let mut written = Vec::new();
        for question in &self.questions {
            emit_name(&mut out, &mut written, &question.name);
            out.extend_from_slice(&u16::from(question.qtype).to_be_bytes());
            out.extend_from_slice(&u16::from(question.qclass).to_be_bytes());
        }
        for record in self.answers.iter().chain(&self.authority).chain(&self.additional) {
            emit_name(&mut out, &mut written, &record.name);
            out.extend_from_slice(&u16::from(record.rtype).to_be_bytes());
            out.extend_from_slice(&u16::from(record.class).to_be_bytes());
            out.extend_from_slice(&record.ttl.to_be_bytes());
            out.extend_from_slice(&count(record.data.len())?.to_be_bytes());
            out.extend_from_slice(&record.data);
        }
        Ok(out)
    }

    /// [`Repr::emit`], keeping the message within `max_len` bytes: records
    /// are dropped from the end (additional, then authority, then answers)
    /// until it fits, and TC is set if any answer or authority record had to
    /// go (RFC 2181 §9: dropping additional records alone is not truncation).
    /// `Malformed` if even the header and questions do not fit.
    pub fn emit_within(&self, max_len: usize) -> Result<Vec<u8>> {
        let mut repr = self.clone();
        loop {
            let out = repr.emit()?;
            if out.len() <= max_len {
                return Ok(out);
            }
            if repr.additional.pop().is_some() {
                continue;
            }
            if repr.authority.pop().is_none() && repr.answers.pop().is_none() {
                return Err(Error::Malformed);
            }
            repr.header.truncated = true;
        }
    }
}

/// Writes `name`, or a pointer to an identical whole name in `written`
/// (names already written, with their offsets below 0x4000).
fn emit_name<'a>(out: &mut Vec<u8>, written: &mut Vec<(&'a Name, u16)>, name: &'a Name) {
    if !name.is_root() {
        if let Some(&(_, at)) = written.iter().find(|(seen, _)| *seen == name) {
            out.extend_from_slice(&(0xc000 | at).to_be_bytes());
            return;
        }
    }
    if let Ok(at) = u16::try_from(out.len()) {
        if at < 0x4000 {
            written.push((name, at));
        }
    }
    name.emit(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dotted_name_compares_as_the_name_it_parses_to() {
        let names =
            ["web", "WEB.", "web.net1", "a.b.c", ".", "", "..", "web..net", "web.", &"x".repeat(64), "Web.Net1."];
        for query in ["web", "web.net1", "a.b.c", ".", "wEb.NET1"] {
            let query = Name::from_dotted(query).unwrap();
            for text in names {
                let slow = Name::from_dotted(text).is_ok_and(|own| own.eq_ignore_case(&query));
                assert_eq!(query.eq_dotted_ignore_case(text), slow, "{query:?} against {text:?}");
            }
        }
        // A name at the 255-byte limit and one label past it.
        let long = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
        let name = Name::from_dotted(&long).unwrap();
        assert!(name.eq_dotted_ignore_case(&long.to_uppercase()));
        assert!(!name.eq_dotted_ignore_case(&format!("{long}.e")));
    }

    /// `dig @172.22.16.1 web` (BIND 9.18): a query for `web.` A IN with RD
    /// and AD set and an EDNS OPT record carrying a client cookie.
    const DIG_QUERY: [u8; 44] = [
        0x9a, 0x3c, // id
        0x01, 0x20, // flags: RD, AD
        0x00, 0x01, // QDCOUNT 1
        0x00, 0x00, // ANCOUNT 0
        0x00, 0x00, // NSCOUNT 0
        0x00, 0x01, // ARCOUNT 1
        0x03, b'w', b'e', b'b', 0x00, // QNAME web.
        0x00, 0x01, // QTYPE A
        0x00, 0x01, // QCLASS IN
        0x00, // OPT: root name
        0x00, 0x29, // TYPE OPT
        0x04, 0xd0, // CLASS: UDP payload size 1232
        0x00, 0x00, 0x00, 0x00, // TTL: extended rcode, version, flags
        0x00, 0x0c, // RDLENGTH 12
        0x00, 0x0a, 0x00, 0x08, // option COOKIE, length 8
        0x6b, 0x1d, 0x9f, 0x02, 0x44, 0xe3, 0x71, 0xa5, // client cookie
    ];

    /// An upstream's answer for `www.example.com` A: a CNAME whose owner is
    /// a pointer to the question, then an A record whose owner is a label
    /// followed by a pointer into the question's name (`cdn.example.com`).
    const COMPRESSED_RESPONSE: [u8; 79] = [
        0x12, 0x34, // id
        0x81, 0x80, // flags: QR, RD, RA, NOERROR
        0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, // 1 question, 2 answers
        // 12: QNAME www.example.com.
        0x03, b'w', b'w', b'w', // 16: example.com.
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, //
        0x00, 0x01, 0x00, 0x01, // A IN
        // 33: answer 1: NAME pointer to 12, CNAME IN, TTL 300, RDATA cdn + pointer to 16
        0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x06, //
        0x03, b'c', b'd', b'n', 0xc0, 0x10, //
        // 51: answer 2: NAME pointer to 45 (cdn + pointer to 16), A IN, TTL 60, 192.0.2.10
        0xc0, 0x2d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, //
        192, 0, 2, 10, //
        // 67: 12 bytes of padding that the header does not count
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn header_getters_on_a_dig_query() {
        let message = Message::new_checked(&DIG_QUERY[..]).unwrap();
        assert_eq!(message.id(), 0x9a3c);
        assert!(!message.is_response());
        assert_eq!(message.opcode(), Opcode::Query);
        assert!(message.recursion_desired());
        assert!(message.authentic_data());
        assert!(!message.authoritative() && !message.truncated() && !message.recursion_available());
        assert!(!message.checking_disabled());
        assert_eq!(message.rcode(), Rcode::NoError);
        assert_eq!(
            (message.question_count(), message.answer_count(), message.authority_count(), message.additional_count()),
            (1, 0, 0, 1)
        );
    }

    #[test]
    fn dig_query_parses_and_emits_back() {
        let repr = Repr::parse(&DIG_QUERY).unwrap();
        assert_eq!(repr.header.id, 0x9a3c);
        assert_eq!(repr.questions.len(), 1);
        let question = &repr.questions[0];
        assert_eq!(question.name, Name::from_dotted("web").unwrap());
        assert_eq!(question.name.to_string(), "web");
        assert_eq!((question.qtype, question.qclass), (Type::A, Class::In));
        assert_eq!(repr.additional.len(), 1);
        let opt = &repr.additional[0];
        assert!(opt.name.is_root());
        assert_eq!((opt.rtype, opt.class, opt.ttl), (Type::Opt, Class::Unknown(1232), 0));
        assert_eq!(opt.data.len(), 12);
        assert_eq!(repr.emit().unwrap(), DIG_QUERY);
    }

    #[test]
    fn compression_pointers_in_answers_are_followed() {
        let bytes = &COMPRESSED_RESPONSE[..67];
        let repr = Repr::parse(bytes).unwrap();
        assert!(repr.header.response && repr.header.recursion_available);
        assert_eq!(repr.questions[0].name.to_string(), "www.example.com");
        let (cname, a) = (&repr.answers[0], &repr.answers[1]);
        assert_eq!(cname.name.to_string(), "www.example.com");
        assert_eq!((cname.rtype, cname.ttl), (Type::Cname, 300));
        // The CNAME's data holds a pointer; read against the message it is the target.
        assert_eq!(Name::parse(bytes, 45).unwrap(), (Name::from_dotted("cdn.example.com").unwrap(), 51));
        assert_eq!(a.name.to_string(), "cdn.example.com");
        assert_eq!(a.ipv4(), Some(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(cname.ipv4(), None);
        // Emitting again compresses only whole names: the CNAME's owner.
        let again = repr.emit().unwrap();
        assert_eq!(&again[..51], &bytes[..51]);
        assert_eq!(Repr::parse(&again).unwrap(), repr);
    }

    #[test]
    fn bytes_after_the_last_record_are_refused() {
        assert_eq!(Repr::parse(&COMPRESSED_RESPONSE), Err(Error::Malformed));
    }

    #[test]
    fn pointers_must_go_backwards() {
        // A pointer to itself.
        let mut msg = DIG_QUERY[..12].to_vec();
        msg.extend_from_slice(&[0xc0, 0x0c]);
        assert_eq!(Name::parse(&msg, 12), Err(Error::Malformed));
        // A two-step loop: at 12 a label spanning to 16, where a pointer goes back to 12.
        let mut msg = DIG_QUERY[..12].to_vec();
        msg.extend_from_slice(&[0x03, b'a', b'b', b'c', 0xc0, 0x0c]);
        assert_eq!(Name::parse(&msg, 12), Err(Error::Malformed));
        // A loop through two pointers: 14 → 12 → 14.
        let mut msg = DIG_QUERY[..12].to_vec();
        msg.extend_from_slice(&[0xc0, 0x0e, 0xc0, 0x0c]);
        assert_eq!(Name::parse(&msg, 14), Err(Error::Malformed));
        // A forward pointer.
        let mut msg = DIG_QUERY[..12].to_vec();
        msg.extend_from_slice(&[0xc0, 0x0e, 0x00]);
        assert_eq!(Name::parse(&msg, 12), Err(Error::Malformed));
        // A pointer into the header is backwards, whatever it reads there.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0x01, b'x', 0xc0, 0x00]);
        assert_eq!(Name::parse(&msg, 12).unwrap().0.to_string(), "x");
    }

    #[test]
    fn truncated_names_and_pointers_are_refused() {
        let header = &DIG_QUERY[..12];
        for tail in [&[][..], &[0x03, b'w', b'e'], &[0x03, b'w', b'e', b'b'], &[0xc0]] {
            let msg = [header, tail].concat();
            assert_eq!(Name::parse(&msg, 12), Err(Error::Truncated), "{tail:?}");
        }
        for cut in 12..DIG_QUERY.len() {
            assert_eq!(Repr::parse(&DIG_QUERY[..cut]), Err(Error::Truncated), "cut at {cut}");
        }
        assert_eq!(Message::new_checked(&DIG_QUERY[..11]).unwrap_err(), Error::Truncated);
        assert_eq!(Repr::parse(&[]), Err(Error::Truncated));
    }

    #[test]
    fn extended_labels_and_long_names_are_refused() {
        let header = &DIG_QUERY[..12];
        for first in [0x40u8, 0x80] {
            let msg = [header, &[first, 0, 0]].concat();
            assert_eq!(Name::parse(&msg, 12), Err(Error::Unsupported));
        }
        // Four labels of 63: 256 bytes with the root.
        let mut msg = header.to_vec();
        for _ in 0..4 {
            msg.push(63);
            msg.extend_from_slice(&[b'a'; 63]);
        }
        msg.push(0);
        assert_eq!(Name::parse(&msg, 12), Err(Error::Malformed));
        // 255 is the limit: three of 63 and one of 61.
        let mut msg = header.to_vec();
        for len in [63, 63, 63, 61] {
            msg.push(len);
            msg.extend(std::iter::repeat_n(b'a', usize::from(len)));
        }
        msg.push(0);
        let (name, end) = Name::parse(&msg, 12).unwrap();
        assert_eq!((name.wire_len(), end), (255, msg.len()));
    }

    #[test]
    fn dotted_names() {
        let name = Name::from_dotted("www.Example.com.").unwrap();
        assert_eq!(name, Name::from_dotted("www.Example.com").unwrap());
        assert_eq!(name.wire_len(), 17);
        assert!(name.eq_ignore_case(&Name::from_dotted("WWW.example.COM").unwrap()));
        assert!(!name.eq_ignore_case(&Name::from_dotted("www.example").unwrap()));
        assert!(Name::from_dotted(".").unwrap().is_root());
        assert_eq!(Name::root().to_string(), ".");
        for bad in ["", "a..b", ".a", &"x".repeat(64), &["abc"; 64].join(".")] {
            assert_eq!(Name::from_dotted(bad), Err(Error::Malformed), "{bad}");
        }
        let mut odd = Name::root();
        odd.push(b"a.b\\").unwrap();
        odd.push(&[0, b' ']).unwrap();
        assert_eq!(odd.to_string(), "a\\.b\\\\.\\000\\032");
    }

    #[test]
    fn header_round_trips_and_refuses_wide_codes() {
        let query = Header::parse(&Message::new_checked(&DIG_QUERY[..]).unwrap()).unwrap();
        let reply = Header::reply_to(&query);
        assert_eq!(reply.flags(), Ok(0x8180));
        let mut buf = [0u8; 12];
        reply.emit(&mut Message::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(Header::parse(&Message::new_checked(&buf[..]).unwrap()).unwrap(), reply);
        let wide = Header { rcode: Rcode::Unknown(16), ..reply };
        assert_eq!(wide.flags(), Err(Error::Malformed));
        let wide = Header { opcode: Opcode::Unknown(16), ..reply };
        assert_eq!(wide.emit(&mut Message::new_unchecked(&mut buf[..])), Err(Error::Malformed));
        assert_eq!(reply.emit(&mut Message::new_unchecked(&mut buf[..4])), Err(Error::Truncated));
        let mut message = Message::new_unchecked(&mut buf[..]);
        message.set_truncated(true);
        assert!(message.truncated());
        message.set_truncated(false);
        assert!(!message.truncated());
    }

    #[test]
    fn emit_within_drops_records_and_sets_tc() {
        let query = Repr::parse(&DIG_QUERY).unwrap();
        let mut reply = Repr::new(Header::reply_to(&query.header));
        reply.questions = query.questions.clone();
        for i in 0..40 {
            reply.answers.push(Record::a(reply.questions[0].name.clone(), Ipv4Addr::new(192, 0, 2, i), 600));
        }
        let full = reply.emit().unwrap();
        // 12 + 9 (question `web.` A IN) + 40 × 16 (pointer, type, class, ttl, length, address).
        assert_eq!(full.len(), 12 + 9 + 40 * 16);
        assert_eq!(reply.emit_within(4096).unwrap(), full);
        let cut = Repr::parse(&reply.emit_within(MAX_UDP_LEN).unwrap()).unwrap();
        assert!(cut.header.truncated);
        assert_eq!(cut.answers.len(), (512 - 21) / 16);
        assert_eq!(cut.answers[..], reply.answers[..cut.answers.len()]);
        assert_eq!(reply.emit_within(20), Err(Error::Malformed));
    }
}
