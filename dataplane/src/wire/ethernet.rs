//! placeholder: being written
enum_with_unknown! {
    /// placeholder
    pub enum EtherType(u16) { Ipv4 = 0x0800 }
}
/// placeholder
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetAddress(pub [u8; 6]);
