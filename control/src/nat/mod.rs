//! `wharf nat`: a NAT gateway in userspace between two interfaces, doing
//! what Docker asks of iptables (`MASQUERADE` for container egress, `DNAT`
//! for published ports) with [`dataplane::nat`]. [`spec`] reads and checks
//! the flags, [`run`] moves the packets; the counters are served like the
//! VTEP's.

pub mod run;
pub mod spec;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use dataplane::nat::{DnatRule, Nat, NatConfig, Prefix};
use dataplane::wire::IpProtocol;

use crate::cli::{NatAction, NatCommand};
use crate::paths;
use crate::vtep::stats;

/// The default stats socket of the gateway whose inside interface is `name`.
pub fn socket_path(name: &str) -> PathBuf {
    paths::run_dir().join(format!("nat-{name}.sock"))
}

/// The NAT core's configuration for `spec`.
pub fn nat_config(spec: &spec::NatSpec) -> Result<NatConfig, String> {
    let outside = IpAddr::V4(spec.outside_addr.addr);
    let mut config = NatConfig::new();
    config.max_entries = spec.max_entries;
    for prefix in &spec.masquerade {
        let inside = Prefix::new(IpAddr::V4(prefix.network()), prefix.prefix)
            .map_err(|e| format!("--masquerade {prefix}: {e}"))?;
        config = config.masquerade(inside, outside);
    }
    for publish in &spec.publish {
        config = config.publish(DnatRule {
            protocol: match publish.proto {
                spec::Proto::Tcp => IpProtocol::Tcp,
                spec::Proto::Udp => IpProtocol::Udp,
            },
            external: outside,
            external_ports: publish.external_ports,
            internal: IpAddr::V4(publish.internal_addr),
            internal_ports: publish.internal_ports,
        });
    }
    config.validate().map_err(|e| format!("the NAT rules do not fit together: {e}"))?;
    Ok(config)
}

/// `wharf nat ...`: run a gateway, or print a running one's counters.
pub fn main(command: NatCommand) -> ExitCode {
    let result = match command.action {
        Some(NatAction::Stats { name, socket }) => match (socket, name) {
            (Some(path), _) => stats::fetch(&path).map(|text| print!("{text}")).map_err(|e| e.to_string()),
            (None, Some(name)) => {
                stats::fetch(&socket_path(&name)).map(|text| print!("{text}")).map_err(|e| e.to_string())
            }
            (None, None) => Err("wharf nat stats: give the gateway's inside interface NAME, or --socket PATH".into()),
        },
        None => command
            .run
            .spec()
            .and_then(|spec| {
                let config = nat_config(&spec)?;
                let nat = Nat::new(config).map_err(|e| format!("the NAT rules do not fit together: {e}"))?;
                let socket = command.run.stats_socket.clone().unwrap_or_else(|| socket_path(&spec.inside));
                run::run(&spec, nat, &socket)
            })
            .map_err(|e| format!("wharf nat: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
