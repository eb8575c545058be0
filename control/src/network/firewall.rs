//! Forwarding, masquerade and isolation for container networks, as Docker
//! asks of iptables: `-s SUBNET ! -o BRIDGE -j MASQUERADE` for each
//! network's egress; traffic between two networks' bridges dropped; an
//! `--internal` network's traffic kept on its bridge.
//!
//! wharf's rules live in its own chains, `WHARF-FORWARD` (filter, jumped to
//! from FORWARD) and `WHARF-POSTROUTING` (nat, from POSTROUTING), and are
//! written whole from the list of networks with `iptables-restore
//! --noflush`: one atomic replacement of wharf's chains that never touches
//! anyone else's rules, and that reconciles whatever a crash left.
//! [`Recording`] writes the rule text down for unit tests.

use std::cell::RefCell;
use std::io::Write;
use std::process::{Command, Stdio};

use super::ipam::Cidr;

/// What the rules need to know of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: Cidr,
    pub internal: bool,
}

/// The rule text for `iptables-restore --noflush`: wharf's two chains,
/// declared (and so emptied) and filled for `networks`.
pub fn rules(networks: &[NetworkRules]) -> String {
    let mut text = String::from("*filter\n:WHARF-FORWARD - [0:0]\n");
    for network in networks.iter().filter(|n| n.internal) {
        let bridge = &network.bridge;
        text.push_str(&format!("-A WHARF-FORWARD -i {bridge} ! -o {bridge} -j DROP\n"));
        text.push_str(&format!("-A WHARF-FORWARD ! -i {bridge} -o {bridge} -j DROP\n"));
    }
    for a in networks {
        for b in networks.iter().filter(|b| b.bridge != a.bridge) {
            text.push_str(&format!("-A WHARF-FORWARD -i {} -o {} -j DROP\n", a.bridge, b.bridge));
        }
    }
    text.push_str("COMMIT\n*nat\n:WHARF-POSTROUTING - [0:0]\n");
    for network in networks.iter().filter(|n| !n.internal) {
        text.push_str(&format!("-A WHARF-POSTROUTING -s {} ! -o {} -j MASQUERADE\n", network.subnet, network.bridge));
    }
    text.push_str("COMMIT\n");
    text
}

/// What container networking asks of the packet filter.
pub trait Firewall {
    /// Makes wharf's rules exactly those for `networks` and turns on IPv4
    /// forwarding.
    fn sync(&self, networks: &[NetworkRules]) -> Result<(), String>;
}

/// iptables (whichever backend Debian's `iptables` is).
#[derive(Debug, Clone, Copy, Default)]
pub struct Iptables;

fn iptables(args: &[&str]) -> Result<(), String> {
    let output = Command::new("iptables")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run iptables: {e} (is iptables installed?)"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("iptables {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

impl Firewall for Iptables {
    fn sync(&self, networks: &[NetworkRules]) -> Result<(), String> {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(|e| format!("turn on IPv4 forwarding (/proc/sys/net/ipv4/ip_forward): {e}"))?;
        let mut restore = Command::new("iptables-restore")
            .arg("--noflush")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("run iptables-restore: {e} (is iptables installed?)"))?;
        if let Some(mut stdin) = restore.stdin.take() {
            stdin.write_all(rules(networks).as_bytes()).map_err(|e| format!("write to iptables-restore: {e}"))?;
        }
        let output = restore.wait_with_output().map_err(|e| format!("iptables-restore: {e}"))?;
        if !output.status.success() {
            return Err(format!("iptables-restore: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        // The jumps into wharf's chains, once each, first.
        for (table, chain, target) in
            [("filter", "FORWARD", "WHARF-FORWARD"), ("nat", "POSTROUTING", "WHARF-POSTROUTING")]
        {
            if iptables(&["-t", table, "-C", chain, "-j", target]).is_err() {
                iptables(&["-t", table, "-I", chain, "-j", target])?;
            }
        }
        Ok(())
    }
}

/// A [`Firewall`] that keeps the last rule text, for unit tests.
#[derive(Debug, Default)]
pub struct Recording {
    pub last: RefCell<Option<String>>,
}

impl Firewall for Recording {
    fn sync(&self, networks: &[NetworkRules]) -> Result<(), String> {
        *self.last.borrow_mut() = Some(rules(networks));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(bridge: &str, subnet: &str, internal: bool) -> NetworkRules {
        NetworkRules { bridge: bridge.into(), subnet: subnet.parse().unwrap(), internal }
    }

    #[test]
    fn rules_masquerade_egress_and_isolate_networks() {
        let text = rules(&[
            network("wharf0", "172.17.0.0/16", false),
            network("wh-a", "172.22.16.0/24", false),
            network("wh-i", "172.23.0.0/24", true),
        ]);
        assert_eq!(
            text,
            "*filter\n:WHARF-FORWARD - [0:0]\n\
             -A WHARF-FORWARD -i wh-i ! -o wh-i -j DROP\n\
             -A WHARF-FORWARD ! -i wh-i -o wh-i -j DROP\n\
             -A WHARF-FORWARD -i wharf0 -o wh-a -j DROP\n\
             -A WHARF-FORWARD -i wharf0 -o wh-i -j DROP\n\
             -A WHARF-FORWARD -i wh-a -o wharf0 -j DROP\n\
             -A WHARF-FORWARD -i wh-a -o wh-i -j DROP\n\
             -A WHARF-FORWARD -i wh-i -o wharf0 -j DROP\n\
             -A WHARF-FORWARD -i wh-i -o wh-a -j DROP\n\
             COMMIT\n*nat\n:WHARF-POSTROUTING - [0:0]\n\
             -A WHARF-POSTROUTING -s 172.17.0.0/16 ! -o wharf0 -j MASQUERADE\n\
             -A WHARF-POSTROUTING -s 172.22.16.0/24 ! -o wh-a -j MASQUERADE\n\
             COMMIT\n"
        );
        assert_eq!(rules(&[]), "*filter\n:WHARF-FORWARD - [0:0]\nCOMMIT\n*nat\n:WHARF-POSTROUTING - [0:0]\nCOMMIT\n");
    }
}
