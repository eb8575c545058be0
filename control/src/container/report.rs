//! What wharf says about containers: `ps`, `inspect` (in docker inspect's
//! shape), `logs` and `stats`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::monitor::{self, Stream};
use super::resources::{human_bytes, Cgroup};
use super::{Container, ContainerStore, MountKind, Status};
use crate::state::{human_duration, parse_rfc3339};

fn since(time: Option<&str>) -> Duration {
    time.and_then(parse_rfc3339).and_then(|t| SystemTime::now().duration_since(t).ok()).unwrap_or_default()
}

/// `docker ps`'s STATUS column.
pub fn status_text(container: &Container) -> String {
    match container.state.status {
        Status::Running => format!("Up {}", human_duration(since(container.state.started_at.as_deref()))),
        Status::Starting => "Starting".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            container.state.exit_code,
            human_duration(since(container.state.finished_at.as_deref()))
        ),
        Status::Created => "Created".into(),
    }
}

/// The `ps` table (all containers, or only running ones).
pub fn ps(containers: &[Container], all: bool, quiet: bool) -> String {
    let shown: Vec<&Container> = containers.iter().rev().filter(|c| all || c.state.status.is_up()).collect();
    if quiet {
        return shown.iter().map(|c| format!("{}\n", c.short_id())).collect();
    }
    let mut rows = vec![[
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "NAMES".into(),
    ]];
    for c in shown {
        let mut command = c.config.cmd.join(" ");
        if command.chars().count() > 20 {
            command = format!("{}…", command.chars().take(19).collect::<String>());
        }
        rows.push([
            c.short_id().to_string(),
            c.rootfs.display(),
            format!("\"{command}\""),
            format!("{} ago", human_duration(since(Some(&c.created)))),
            status_text(c),
            c.name.clone(),
        ]);
    }
    table(&rows)
}

/// Left-aligned columns three spaces apart, as Docker prints them.
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One container as `docker inspect` shows it.
pub fn inspect(container: &Container, store: &ContainerStore) -> Value {
    let state = &container.state;
    let mounts: Vec<Value> = container
        .mounts
        .iter()
        .map(|m| {
            let mut mount = json!({
                "Type": match m.kind { MountKind::Bind => "bind", MountKind::Volume => "volume" },
                "Source": m.source,
                "Destination": m.destination,
                "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only,
            });
            if let Some(name) = &m.name {
                mount["Name"] = json!(name);
                mount["Driver"] = json!("local");
            }
            mount
        })
        .collect();
    let zero_time = "0001-01-01T00:00:00Z";
    json!({
        "Id": container.id,
        "Created": container.created,
        "Path": container.config.cmd.first(),
        "Args": container.config.cmd.get(1..).unwrap_or_default(),
        "State": {
            "Status": state.status.docker_word(),
            "Running": state.status == Status::Running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": state.oom_killed,
            "Dead": false,
            "Pid": state.pid.unwrap_or(0),
            "ExitCode": state.exit_code,
            "Error": state.error.clone().unwrap_or_default(),
            "StartedAt": state.started_at.as_deref().unwrap_or(zero_time),
            "FinishedAt": state.finished_at.as_deref().unwrap_or(zero_time),
        },
        "Image": container.rootfs.display(),
        "LogPath": store.log(&container.id),
        "Name": format!("/{}", container.name),
        "HostConfig": {
            "NetworkMode": container.network.docker_word(),
            "AutoRemove": container.auto_remove,
            "Memory": container.resources.memory,
            "MemorySwap": container.resources.memory_swap,
            "NanoCpus": container.resources.nano_cpus,
            "CpuShares": container.resources.cpu_shares,
            "CpuQuota": container.resources.cpu_quota_us().unwrap_or(0),
            "CpuPeriod": if container.resources.nano_cpus > 0 { super::resources::CPU_PERIOD_US } else { 0 },
            "PidsLimit": container.resources.pids_limit,
            "Binds": container.mounts.iter().filter(|m| m.kind == MountKind::Bind)
                .map(|m| format!("{}:{}{}", m.source.display(), m.destination.display(), if m.read_only { ":ro" } else { "" }))
                .collect::<Vec<_>>(),
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": container.config.hostname,
            "Env": container.config.env,
            "Cmd": container.config.cmd,
            "WorkingDir": container.config.workdir,
            "Image": container.rootfs.display(),
        },
        "NetworkSettings": network_settings(container, store),
    })
}

fn network_settings(container: &Container, store: &ContainerStore) -> Value {
    let networks = if container.networks.is_empty() {
        Vec::new()
    } else {
        crate::network::ipam::NetworkStore::new(store.root()).list().unwrap_or_default()
    };
    let mut shown = serde_json::Map::new();
    for attachment in &container.networks {
        let network = networks.iter().find(|n| n.name == attachment.network);
        shown.insert(
            attachment.network.clone(),
            json!({
                "NetworkID": network.map(|n| n.id.clone()).unwrap_or_default(),
                "IPAddress": attachment.ip.to_string(),
                "IPPrefixLen": network.map_or(0, |n| n.subnet.len),
                "Gateway": network.map(|n| n.gateway.to_string()).unwrap_or_default(),
                "MacAddress": attachment.mac,
                "Aliases": attachment.aliases,
            }),
        );
    }
    let mut ports = serde_json::Map::new();
    for port in &container.ports {
        for i in 0..port.count {
            let host_ip = port.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string());
            ports.insert(
                format!("{}/{}", port.container_port + i, port.proto.name()),
                json!([{"HostIp": host_ip, "HostPort": (port.host_port + i).to_string()}]),
            );
        }
    }
    let first = container.networks.first();
    json!({
        "SandboxKey": container.state.pid.map(|pid| format!("/proc/{pid}/ns/net")).unwrap_or_default(),
        "IPAddress": first.map(|a| a.ip.to_string()).unwrap_or_default(),
        "MacAddress": first.map(|a| a.mac.clone()).unwrap_or_default(),
        "Ports": ports,
        "Networks": shown,
    })
}

/// Writes the container's log to stdout and stderr, each record to the
/// stream it came from; with `follow`, keeps going until the container
/// stops.
pub fn logs(store: &ContainerStore, container: &Container, follow: bool) -> io::Result<()> {
    let path = store.log(&container.id);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            wait_for_file(&path);
            File::open(&path)?
        }
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let (stdout, stderr) = (io::stdout(), io::stderr());
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n > 0 && line.ends_with('\n') {
            if let Some(record) = monitor::parse_record(&line) {
                let result = match record.stream {
                    Stream::Stdout => stdout.lock().write_all(record.text.as_bytes()),
                    Stream::Stderr => stderr.lock().write_all(record.text.as_bytes()),
                };
                if let Err(e) = result {
                    // A closed pipe (`wharf logs c | head`) ends the command.
                    return if e.kind() == io::ErrorKind::BrokenPipe { Ok(()) } else { Err(e) };
                }
            }
            continue;
        }
        if n > 0 {
            // A record being written: read the rest of it next time.
            reader.seek_relative(-(n as i64))?;
        }
        if !follow {
            return Ok(());
        }
        stdout.lock().flush()?;
        let running = store.load(&container.id).map(|c| c.state.status.is_up()).unwrap_or(false);
        if !running {
            // One more pass picks up what was written before it stopped.
            return logs_rest(&mut reader);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn logs_rest(reader: &mut BufReader<File>) -> io::Result<()> {
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        if let Some(record) = monitor::parse_record(&line) {
            match record.stream {
                Stream::Stdout => io::stdout().write_all(record.text.as_bytes())?,
                Stream::Stderr => io::stderr().write_all(record.text.as_bytes())?,
            }
        }
        line.clear();
    }
    io::stdout().flush()
}

fn wait_for_file(path: &Path) {
    while !path.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `stats --no-stream`: one reading per running container, CPU use taken
/// over a short interval.
pub fn stats(containers: &[Container]) -> String {
    let cgroups = Path::new("/sys/fs/cgroup");
    let running: Vec<&Container> = containers.iter().filter(|c| c.state.status == Status::Running).collect();
    let first: Vec<_> = running.iter().map(|c| Cgroup::of(cgroups, &c.id).sample()).collect();
    let interval = Duration::from_millis(500);
    std::thread::sleep(interval);
    let mut rows = vec![[
        "CONTAINER ID".to_string(),
        "NAME".into(),
        "CPU %".into(),
        "MEM USAGE / LIMIT".into(),
        "MEM %".into(),
        "PIDS".into(),
    ]];
    let host_memory = host_memory_bytes();
    for (container, before) in running.iter().zip(first) {
        let Some(after) = Cgroup::of(cgroups, &container.id).sample() else { continue };
        let cpu =
            before.map_or(0.0, |b| after.cpu_ns.saturating_sub(b.cpu_ns) as f64 / interval.as_nanos() as f64 * 100.0);
        let limit = after.limit.min(host_memory);
        let percent = if limit > 0 { after.memory as f64 / limit as f64 * 100.0 } else { 0.0 };
        rows.push([
            container.short_id().to_string(),
            container.name.clone(),
            format!("{cpu:.2}%"),
            format!("{} / {}", human_bytes(after.memory), human_bytes(limit)),
            format!("{percent:.2}%"),
            after.pids.to_string(),
        ]);
    }
    table(&rows)
}

fn host_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(u64::MAX, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_like_docker() {
        let rows = [["A".to_string(), "BB".into(), "C".into()], ["long".to_string(), "x".into(), "y".into()]];
        assert_eq!(table(&rows), "A      BB   C\nlong   x    y\n");
    }
}
