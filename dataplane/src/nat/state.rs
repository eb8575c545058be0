//! Protocol state, as netfilter's conntrack keeps it: TCP followed through
//! the handshake and the close (SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT,
//! CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE), UDP unreplied or assured, ICMP
//! echo. The state picks the timeout, and whether the connection may be
//! evicted when the table is full.
//!
//! The TCP machine is a simplified netfilter one. The states mean what
//! netfilter's mean, seen from the middle: FIN_WAIT is "one side sent FIN",
//! CLOSE_WAIT "the other side acknowledged it", LAST_ACK "both sides sent
//! FIN", TIME_WAIT "the last FIN was acknowledged", CLOSE "reset". Which
//! side sent each FIN is remembered, so a retransmitted FIN does not count as
//! the second one. Unlike netfilter, sequence numbers are not checked against
//! the window: any RST of the connection closes it, and no packet is marked
//! invalid (a packet that makes no sense in its state leaves the state
//! alone and is still translated).
//!
//! What this module does not do: look at packets (the caller passes the TCP
//! flags) or at the clock.

use core::fmt;

use super::config::Timeouts;
use super::table::ORIG;

// The state byte: the state in the low nibble, FIN bookkeeping above.
pub(crate) const SYN_SENT: u8 = 0;
pub(crate) const SYN_RECV: u8 = 1;
pub(crate) const ESTABLISHED: u8 = 2;
pub(crate) const FIN_WAIT: u8 = 3;
pub(crate) const CLOSE_WAIT: u8 = 4;
pub(crate) const LAST_ACK: u8 = 5;
pub(crate) const TIME_WAIT: u8 = 6;
pub(crate) const CLOSE: u8 = 7;
pub(crate) const UDP_UNREPLIED: u8 = 8;
pub(crate) const UDP_ASSURED: u8 = 9;
pub(crate) const ICMP: u8 = 10;
const STATES: usize = 11;

pub(crate) const STATE_MASK: u8 = 0x0f;
/// A FIN was seen in the original direction (`<< 1` for the reply one).
const FIN_ORIG: u8 = 0x10;
const FIN_REPLY: u8 = 0x20;
/// The second FIN came in the reply direction.
const LAST_FIN_REPLY: u8 = 0x40;

/// SYN, ACK, FIN and RST, and the value of those bits in a first SYN.
pub(crate) const TH_HANDSHAKE: u8 = TH_FIN | TH_SYN | TH_RST | TH_ACK;
pub(crate) const TH_SYN_ONLY: u8 = TH_SYN;

/// SYN, FIN and RST: the flags that move an established connection.
pub(crate) const TH_CONTROL: u8 = TH_FIN | TH_SYN | TH_RST;

/// TCP flag bits in the flags byte (byte 13 of the header).
const TH_FIN: u8 = 0x01;
const TH_SYN: u8 = 0x02;
const TH_RST: u8 = 0x04;
const TH_ACK: u8 = 0x10;

/// What a TCP segment means for the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpEvent {
    Syn,
    SynAck,
    Fin,
    Ack,
    Rst,
    /// No SYN, FIN, RST or ACK.
    Nothing,
}

impl TcpEvent {
    /// The event of a segment with TCP flags `flags`; RST wins, then SYN,
    /// then FIN.
    #[inline]
    pub(crate) fn of(flags: u8) -> TcpEvent {
        if flags & TH_RST != 0 {
            TcpEvent::Rst
        } else if flags & TH_SYN != 0 {
            if flags & TH_ACK != 0 {
                TcpEvent::SynAck
            } else {
                TcpEvent::Syn
            }
        } else if flags & TH_FIN != 0 {
            TcpEvent::Fin
        } else if flags & TH_ACK != 0 {
            TcpEvent::Ack
        } else {
            TcpEvent::Nothing
        }
    }
}

/// The state after a segment with `event` in direction `dir`.
#[inline]
pub(crate) fn tcp_next(state: u8, dir: usize, event: TcpEvent) -> u8 {
    let current = state & STATE_MASK;
    let fins = state & !STATE_MASK;
    let (mine, theirs) = if dir == ORIG { (FIN_ORIG, FIN_REPLY) } else { (FIN_REPLY, FIN_ORIG) };
    match event {
        TcpEvent::Rst => CLOSE | fins,
        // A new connection on the same tuple after the old one ended.
        TcpEvent::Syn if dir == ORIG && matches!(current, TIME_WAIT | CLOSE) => SYN_SENT,
        // Simultaneous open.
        TcpEvent::Syn if dir != ORIG && current == SYN_SENT => SYN_RECV,
        TcpEvent::SynAck if dir != ORIG && current == SYN_SENT => SYN_RECV,
        TcpEvent::Ack if dir == ORIG && current == SYN_RECV => ESTABLISHED,
        // The side that did not close acknowledges the FIN.
        TcpEvent::Ack if current == FIN_WAIT && fins & theirs != 0 => CLOSE_WAIT | fins,
        // The side that closed first acknowledges the second FIN.
        TcpEvent::Ack if current == LAST_ACK && (fins & LAST_FIN_REPLY != 0) != (dir != ORIG) => TIME_WAIT | fins,
        TcpEvent::Fin if matches!(current, SYN_RECV | ESTABLISHED) => FIN_WAIT | mine,
        TcpEvent::Fin if matches!(current, FIN_WAIT | CLOSE_WAIT) && fins & mine == 0 => {
            LAST_ACK | fins | mine | if dir == ORIG { 0 } else { LAST_FIN_REPLY }
        }
        _ => state,
    }
}

/// Whether a connection in `state` may be evicted: unassured ones, and TCP
/// connections on their way out (as netfilter's early drop).
#[inline]
pub(crate) fn evictable(state: u8, assured: bool) -> bool {
    !assured || matches!(state & STATE_MASK, FIN_WAIT | CLOSE_WAIT | LAST_ACK | TIME_WAIT | CLOSE)
}

/// The timeouts in ticks (seconds, rounded up), by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticks([u32; STATES]);

impl Ticks {
    pub(crate) fn new(timeouts: &Timeouts) -> Ticks {
        let t = |d: std::time::Duration| {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX / 2).max(1)
        };
        let mut ticks = [0; STATES];
        ticks[usize::from(SYN_SENT)] = t(timeouts.tcp_syn_sent);
        ticks[usize::from(SYN_RECV)] = t(timeouts.tcp_syn_recv);
        ticks[usize::from(ESTABLISHED)] = t(timeouts.tcp_established);
        ticks[usize::from(FIN_WAIT)] = t(timeouts.tcp_fin_wait);
        ticks[usize::from(CLOSE_WAIT)] = t(timeouts.tcp_close_wait);
        ticks[usize::from(LAST_ACK)] = t(timeouts.tcp_last_ack);
        ticks[usize::from(TIME_WAIT)] = t(timeouts.tcp_time_wait);
        ticks[usize::from(CLOSE)] = t(timeouts.tcp_close);
        ticks[usize::from(UDP_UNREPLIED)] = t(timeouts.udp_unreplied);
        ticks[usize::from(UDP_ASSURED)] = t(timeouts.udp_assured);
        ticks[usize::from(ICMP)] = t(timeouts.icmp);
        Ticks(ticks)
    }

    /// The timeout of `state`.
    #[inline(always)]
    pub(crate) fn of(&self, state: u8) -> u32 {
        self.0.get(usize::from(state & STATE_MASK)).copied().unwrap_or(1)
    }
}

/// A connection's protocol state, as [`crate::nat::Connection`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    TcpSynSent,
    TcpSynRecv,
    TcpEstablished,
    TcpFinWait,
    TcpCloseWait,
    TcpLastAck,
    TcpTimeWait,
    TcpClose,
    UdpUnreplied,
    UdpAssured,
    Icmp,
}

impl ConnState {
    pub(crate) fn from_byte(state: u8) -> ConnState {
        match state & STATE_MASK {
            SYN_SENT => ConnState::TcpSynSent,
            SYN_RECV => ConnState::TcpSynRecv,
            ESTABLISHED => ConnState::TcpEstablished,
            FIN_WAIT => ConnState::TcpFinWait,
            CLOSE_WAIT => ConnState::TcpCloseWait,
            LAST_ACK => ConnState::TcpLastAck,
            TIME_WAIT => ConnState::TcpTimeWait,
            CLOSE => ConnState::TcpClose,
            UDP_UNREPLIED => ConnState::UdpUnreplied,
            UDP_ASSURED => ConnState::UdpAssured,
            _ => ConnState::Icmp,
        }
    }

    /// The name `conntrack -L` would print.
    pub const fn name(self) -> &'static str {
        match self {
            ConnState::TcpSynSent => "SYN_SENT",
            ConnState::TcpSynRecv => "SYN_RECV",
            ConnState::TcpEstablished => "ESTABLISHED",
            ConnState::TcpFinWait => "FIN_WAIT",
            ConnState::TcpCloseWait => "CLOSE_WAIT",
            ConnState::TcpLastAck => "LAST_ACK",
            ConnState::TcpTimeWait => "TIME_WAIT",
            ConnState::TcpClose => "CLOSE",
            ConnState::UdpUnreplied => "UNREPLIED",
            ConnState::UdpAssured => "ASSURED",
            ConnState::Icmp => "ICMP",
        }
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::table::REPLY;

    const SYN: u8 = TH_SYN;
    const SYNACK: u8 = TH_SYN | TH_ACK;
    const ACK: u8 = TH_ACK;
    const FINACK: u8 = TH_FIN | TH_ACK;
    const RST: u8 = TH_RST;

    /// Runs `(dir, flags)` from SYN_SENT and returns the states passed.
    fn run(steps: &[(usize, u8)]) -> Vec<ConnState> {
        let mut state = SYN_SENT;
        steps
            .iter()
            .map(|&(dir, flags)| {
                state = tcp_next(state, dir, TcpEvent::of(flags));
                ConnState::from_byte(state)
            })
            .collect()
    }

    use ConnState::*;

    #[test]
    fn handshake_and_orderly_close() {
        let states = run(&[
            (REPLY, SYNACK),
            (ORIG, ACK),
            (ORIG, ACK),
            (REPLY, ACK),
            (ORIG, FINACK),  // client closes
            (ORIG, FINACK),  // retransmitted: still the first FIN
            (REPLY, ACK),    // server acknowledges
            (REPLY, FINACK), // server closes
            (REPLY, FINACK), // retransmitted
            (REPLY, ACK),    // not the last ACK: it comes from the server
            (ORIG, ACK),     // client acknowledges the last FIN
        ]);
        assert_eq!(
            states,
            [
                TcpSynRecv,
                TcpEstablished,
                TcpEstablished,
                TcpEstablished,
                TcpFinWait,
                TcpFinWait,
                TcpCloseWait,
                TcpLastAck,
                TcpLastAck,
                TcpLastAck,
                TcpTimeWait
            ]
        );
    }

    #[test]
    fn simultaneous_close_and_fin_ack_together() {
        // The server answers the client's FIN with FIN+ACK at once.
        let states = run(&[(REPLY, SYNACK), (ORIG, ACK), (REPLY, FINACK), (ORIG, FINACK), (REPLY, ACK)]);
        assert_eq!(states, [TcpSynRecv, TcpEstablished, TcpFinWait, TcpLastAck, TcpTimeWait]);
    }

    #[test]
    fn resets_close_and_syn_reopens() {
        assert_eq!(run(&[(REPLY, RST)]), [TcpClose]);
        assert_eq!(run(&[(REPLY, SYNACK), (ORIG, ACK), (ORIG, RST | ACK)]), [TcpSynRecv, TcpEstablished, TcpClose]);
        assert_eq!(run(&[(REPLY, SYNACK), (ORIG, ACK), (REPLY, RST), (ORIG, SYN)]).last(), Some(&TcpSynSent));
        // A SYN in the middle of an open connection changes nothing.
        assert_eq!(run(&[(REPLY, SYNACK), (ORIG, ACK), (ORIG, SYN)]).last(), Some(&TcpEstablished));
        // Simultaneous open.
        assert_eq!(run(&[(REPLY, SYN), (ORIG, SYNACK), (ORIG, ACK)]), [TcpSynRecv, TcpSynRecv, TcpEstablished]);
        // An ACK before the SYN-ACK, a FIN in SYN_SENT, a bare segment: ignored.
        assert_eq!(run(&[(ORIG, ACK), (ORIG, FINACK), (ORIG, 0)]), [TcpSynSent, TcpSynSent, TcpSynSent]);
    }

    #[test]
    fn eviction_rules() {
        assert!(evictable(ESTABLISHED, false));
        assert!(!evictable(ESTABLISHED, true));
        assert!(evictable(TIME_WAIT | FIN_ORIG, true));
        assert!(evictable(CLOSE, true));
        assert!(!evictable(UDP_ASSURED, true));
        assert!(evictable(ICMP, false));
    }

    #[test]
    fn ticks_round_up() {
        let timeouts = Timeouts { icmp: std::time::Duration::from_millis(1500), ..Timeouts::default() };
        let ticks = Ticks::new(&timeouts);
        assert_eq!(ticks.of(ICMP), 2);
        assert_eq!(ticks.of(ESTABLISHED | FIN_ORIG), 432_000);
        assert_eq!(ticks.of(CLOSE), 10);
        assert_eq!(ConnState::from_byte(UDP_UNREPLIED).to_string(), "UNREPLIED");
    }
}
