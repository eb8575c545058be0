//! Packet formats, from Ethernet to VXLAN: one file per header.
//!
//! Each header has two faces, in the manner of smoltcp:
//!
//! - a zero-copy **view** (`Frame`, `Packet`, `Header`) that borrows a buffer
//!   `T: AsRef<[u8]>`. `new_unchecked` is free; `new_checked` validates the
//!   length fields inside the header against the buffer, after which no getter
//!   panics. Setters need `T: AsMut<[u8]>` and rewrite in place.
//! - an owned **`Repr`** holding the header's meaning: `Repr::parse` reads a
//!   checked view, `buffer_len` says how many bytes `emit` writes, `emit`
//!   writes it into a view.
//!
//! Nothing here allocates, touches a socket or uses `unsafe`. Protocol numbers
//! are enums with an `Unknown` arm, so an unknown EtherType or IP protocol is
//! carried rather than refused. [`dissect`] walks a whole frame, outer headers
//! through VXLAN to the inner transport header.
//!
//! What this module does not do: decide what to do with a packet. Validation
//! here is structural (lengths, versions, flags); whether a bad transport
//! checksum drops a packet is the caller's choice, since frames from a TAP
//! device with offloads carry partial checksums.

use core::fmt;

/// Declares a protocol-number enum with an `Unknown` arm, and the conversions
/// from and to the integer carried on the wire.
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
            #[inline]
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            #[inline]
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

pub mod arp;
pub mod checksum;
pub mod dissect;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod virtio_net;
pub mod vxlan;

pub use ethernet::{EtherType, EthernetAddress};
pub use ip::IpProtocol;

/// Why a buffer was refused. `Copy`, so tests can assert which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field inside
    /// it says.
    Truncated,
    /// A field holds a value the format forbids: a length field too small for
    /// the header, a wrong version, a bad header checksum, a malformed option.
    Malformed,
    /// Well-formed, but not something this module represents (for example
    /// ARP for a hardware type other than Ethernet).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl std::error::Error for Error {}

/// The result of a check or a parse in this module.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian `u16` at `at`. Callers have checked the length. One
/// range check and one load: the slice is exactly two bytes, so the
/// conversion cannot fail.
#[inline(always)]
fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(buf[at..at + 2].try_into().unwrap_or_default())
}

/// Reads a big-endian `u32` at `at`. Callers have checked the length.
#[inline(always)]
fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(buf[at..at + 4].try_into().unwrap_or_default())
}

/// Writes a big-endian `u16` at `at`. Callers have checked the length.
#[inline(always)]
fn write_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Writes a big-endian `u32` at `at`. Callers have checked the length.
#[inline(always)]
fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}
