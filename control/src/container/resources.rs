//! Resource quotas: Docker's flags (`--memory 64m`, `--memory-swap`,
//! `--cpus 0.5`, `--cpu-shares`, `--pids-limit`) parsed and checked, turned
//! into the OCI `linux.resources` section (runc applies it on cgroup v1 and
//! v2 alike), and read back from the container's cgroup for `wharf stats`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The CFS period wharf uses for `--cpus`, as Docker does.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Docker's smallest memory limit.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The limits of one container, in Docker's units (HostConfig).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Bytes; 0 = no limit.
    pub memory: i64,
    /// Memory plus swap, bytes; 0 = not set, -1 = unlimited.
    pub memory_swap: i64,
    /// CPUs × 10⁹; 0 = no limit.
    pub nano_cpus: i64,
    /// Relative weight; 0 = default.
    pub cpu_shares: u64,
    /// 0 = no limit.
    pub pids_limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("invalid {flag} value \"{value}\": {reason}")]
    Invalid { flag: &'static str, value: String, reason: String },
    #[error("{0}")]
    Conflict(String),
}

/// The flags as given.
#[derive(Debug, Clone, Default)]
pub struct ResourceFlags<'a> {
    pub memory: Option<&'a str>,
    pub memory_swap: Option<&'a str>,
    pub cpus: Option<&'a str>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// Parses and checks the flags the way `docker run` does.
    pub fn from_flags(flags: &ResourceFlags<'_>, host_cpus: usize) -> Result<Resources, ResourceError> {
        let invalid = |flag, value: &str, reason: &str| ResourceError::Invalid {
            flag,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let memory = match flags.memory {
            Some(value) => {
                let bytes = parse_bytes(value).map_err(|reason| invalid("memory", value, &reason))?;
                if bytes < MIN_MEMORY {
                    return Err(invalid("memory", value, "the minimum memory limit is 6MB"));
                }
                bytes
            }
            None => 0,
        };
        let memory_swap = match flags.memory_swap {
            Some("-1") => -1,
            Some(value) => {
                let bytes = parse_bytes(value).map_err(|reason| invalid("memory-swap", value, &reason))?;
                if memory == 0 {
                    return Err(ResourceError::Conflict(
                        "--memory-swap needs --memory: set the memory limit as well".into(),
                    ));
                }
                if bytes < memory {
                    return Err(ResourceError::Conflict(
                        "--memory-swap must be at least --memory (it is memory plus swap)".into(),
                    ));
                }
                bytes
            }
            // Docker's default: as much swap as memory.
            None if memory > 0 => memory.saturating_mul(2),
            None => 0,
        };
        let nano_cpus = match flags.cpus {
            Some(value) => {
                let cpus: f64 = value.parse().map_err(|_| invalid("cpus", value, "not a number"))?;
                if !(cpus.is_finite() && cpus >= 0.01 && cpus <= host_cpus as f64) {
                    return Err(invalid("cpus", value, &format!("the range of CPUs is from 0.01 to {host_cpus}")));
                }
                (cpus * 1e9).round() as i64
            }
            None => 0,
        };
        if let Some(shares) = flags.cpu_shares {
            if shares != 0 && !(2..=262_144).contains(&shares) {
                return Err(invalid("cpu-shares", &shares.to_string(), "must be between 2 and 262144"));
            }
        }
        let pids_limit = match flags.pids_limit {
            Some(limit) if limit < -1 => {
                return Err(invalid("pids-limit", &limit.to_string(), "must be positive, 0 or -1 (unlimited)"))
            }
            Some(limit) => limit.max(0),
            None => 0,
        };
        Ok(Resources { memory, memory_swap, nano_cpus, cpu_shares: flags.cpu_shares.unwrap_or(0), pids_limit })
    }

    /// The CFS quota for `--cpus`, in µs per [`CPU_PERIOD_US`].
    pub fn cpu_quota_us(&self) -> Option<i64> {
        (self.nano_cpus > 0).then(|| self.nano_cpus * CPU_PERIOD_US as i64 / 1_000_000_000)
    }

    /// The OCI `linux.resources` section.
    pub fn oci(&self) -> serde_json::Value {
        let mut resources = serde_json::json!({
            // Deny every device but those runc allows by default.
            "devices": [{ "allow": false, "access": "rwm" }],
        });
        let mut memory = serde_json::Map::new();
        if self.memory > 0 {
            memory.insert("limit".into(), self.memory.into());
        }
        if self.memory_swap != 0 {
            memory.insert("swap".into(), self.memory_swap.into());
        }
        if !memory.is_empty() {
            resources["memory"] = memory.into();
        }
        let mut cpu = serde_json::Map::new();
        if let Some(quota) = self.cpu_quota_us() {
            cpu.insert("quota".into(), quota.into());
            cpu.insert("period".into(), CPU_PERIOD_US.into());
        }
        if self.cpu_shares > 0 {
            cpu.insert("shares".into(), self.cpu_shares.into());
        }
        if !cpu.is_empty() {
            resources["cpu"] = cpu.into();
        }
        if self.pids_limit > 0 {
            resources["pids"] = serde_json::json!({ "limit": self.pids_limit });
        }
        resources
    }
}

/// Docker's RAMInBytes: a number, optionally with a fraction, then an
/// optional unit b k m g t p (powers of 1024), optionally followed by "b"
/// or "ib", case-insensitive: "64m", "1.5g", "512kb", "1048576".
pub fn parse_bytes(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| "expected a number with an optional unit (b, k, m, g)".to_string())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty())).unwrap_or(&unit);
    let scale: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("unknown unit \"{unit}\" (use b, k, m, g, t or p)")),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err("too large".into());
    }
    Ok(bytes as i64)
}

/// Docker's HumanSize for `stats`: "32MiB", "1.5GiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    // Four significant digits, as Go's %.4g.
    let integer_digits = (value.max(1.0).log10().floor() as usize + 1).min(4);
    let text = format!("{value:.*}", 4 - integer_digits);
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{}", UNITS[unit])
}

/// The cgroup path runc is given for a container (`cgroupsPath`).
pub fn cgroup_path(id: &str) -> String {
    format!("/wharf/{id}")
}

/// Where a container's cgroup files are, by controller.
#[derive(Debug, Clone)]
pub enum Cgroup {
    /// cgroup v1: one directory per controller.
    V1 { memory: PathBuf, cpuacct: PathBuf, pids: PathBuf },
    /// cgroup v2: one directory.
    V2(PathBuf),
}

impl Cgroup {
    /// The container's cgroup under `mount` (normally /sys/fs/cgroup).
    pub fn of(mount: &Path, id: &str) -> Cgroup {
        let relative = cgroup_path(id);
        let relative = relative.trim_start_matches('/');
        if mount.join("cgroup.controllers").exists() {
            Cgroup::V2(mount.join(relative))
        } else {
            Cgroup::V1 {
                memory: mount.join("memory").join(relative),
                cpuacct: mount.join("cpuacct").join(relative),
                pids: mount.join("pids").join(relative),
            }
        }
    }

    /// Whether the memory controller killed a process for exceeding the
    /// limit (read before the runtime deletes the cgroup).
    pub fn oom_killed(&self) -> bool {
        let (file, key) = match self {
            Cgroup::V1 { memory, .. } => (memory.join("memory.oom_control"), "oom_kill"),
            Cgroup::V2(dir) => (dir.join("memory.events"), "oom_kill"),
        };
        read_key(&file, key).is_some_and(|n| n > 0)
    }

    /// Memory in use, its limit, CPU time used (ns) and the process count.
    pub fn sample(&self) -> Option<Sample> {
        match self {
            Cgroup::V1 { memory, cpuacct, pids } => {
                let usage = read_u64(&memory.join("memory.usage_in_bytes"))?;
                // Docker subtracts the page cache that can be dropped.
                let cache = read_key(&memory.join("memory.stat"), "total_inactive_file").unwrap_or(0);
                Some(Sample {
                    memory: usage.saturating_sub(cache),
                    limit: read_u64(&memory.join("memory.limit_in_bytes"))?,
                    cpu_ns: read_u64(&cpuacct.join("cpuacct.usage"))?,
                    pids: read_u64(&pids.join("pids.current")).unwrap_or(0),
                })
            }
            Cgroup::V2(dir) => {
                let usage = read_u64(&dir.join("memory.current"))?;
                let cache = read_key(&dir.join("memory.stat"), "inactive_file").unwrap_or(0);
                let limit = std::fs::read_to_string(dir.join("memory.max")).ok()?;
                Some(Sample {
                    memory: usage.saturating_sub(cache),
                    limit: limit.trim().parse().unwrap_or(u64::MAX),
                    cpu_ns: read_key(&dir.join("cpu.stat"), "usage_usec")? * 1000,
                    pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
                })
            }
        }
    }
}

/// One reading of a container's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub memory: u64,
    pub limit: u64,
    pub cpu_ns: u64,
    pub pids: u64,
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key N` lines (memory.stat, memory.oom_control, cpu.stat).
fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_values_parse_like_dockers() {
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("64mb"), Ok(64 << 20));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("100b"), Ok(100));
        assert!(parse_bytes("abc").is_err());
        assert!(parse_bytes("12x").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("-5m").is_err());
        assert!(parse_bytes("99999999999p").is_err());
    }

    fn flags<'a>(memory: Option<&'a str>, swap: Option<&'a str>, cpus: Option<&'a str>) -> ResourceFlags<'a> {
        ResourceFlags { memory, memory_swap: swap, cpus, ..ResourceFlags::default() }
    }

    #[test]
    fn flags_become_docker_host_config_values() {
        let r = Resources::from_flags(&flags(Some("64m"), None, Some("0.5")), 2).unwrap();
        assert_eq!(r.memory, 64 << 20);
        assert_eq!(r.memory_swap, 128 << 20, "Docker's default swap is as much as memory");
        assert_eq!(r.nano_cpus, 500_000_000);
        assert_eq!(r.cpu_quota_us(), Some(50_000));
        let r = Resources::from_flags(&flags(Some("32m"), Some("32m"), None), 2).unwrap();
        assert_eq!(r.memory_swap, 32 << 20);
        let r = Resources::from_flags(&flags(Some("32m"), Some("-1"), None), 2).unwrap();
        assert_eq!(r.memory_swap, -1);
        assert_eq!(Resources::from_flags(&flags(None, None, None), 2).unwrap(), Resources::default());
        // Found by the fuzzer: the default swap of a huge limit must not overflow.
        let r = Resources::from_flags(&flags(Some("4994499944944444444"), None, None), 2).unwrap();
        assert_eq!(r.memory_swap, i64::MAX);
    }

    #[test]
    fn bad_flags_say_which_and_why() {
        let err = Resources::from_flags(&flags(Some("abc"), None, None), 2).unwrap_err();
        assert!(err.to_string().starts_with("invalid memory value \"abc\""), "{err}");
        assert!(Resources::from_flags(&flags(Some("1m"), None, None), 2).unwrap_err().to_string().contains("6MB"));
        assert!(matches!(Resources::from_flags(&flags(None, Some("1g"), None), 2), Err(ResourceError::Conflict(_))));
        assert!(matches!(
            Resources::from_flags(&flags(Some("64m"), Some("32m"), None), 2),
            Err(ResourceError::Conflict(_))
        ));
        let err = Resources::from_flags(&flags(None, None, Some("3")), 2).unwrap_err();
        assert!(err.to_string().contains("from 0.01 to 2"), "{err}");
        assert!(Resources::from_flags(&flags(None, None, Some("x")), 2).is_err());
        assert!(Resources::from_flags(&flags(None, None, Some("NaN")), 2).is_err());
        let shares = ResourceFlags { cpu_shares: Some(1), ..ResourceFlags::default() };
        assert!(Resources::from_flags(&shares, 2).is_err());
        let pids = ResourceFlags { pids_limit: Some(-2), ..ResourceFlags::default() };
        assert!(Resources::from_flags(&pids, 2).is_err());
    }

    #[test]
    fn the_oci_section_carries_only_what_is_set() {
        let r = Resources {
            memory: 64 << 20,
            memory_swap: 64 << 20,
            nano_cpus: 500_000_000,
            cpu_shares: 512,
            pids_limit: 10,
        };
        let oci = r.oci();
        assert_eq!(oci["memory"]["limit"], 64 << 20);
        assert_eq!(oci["memory"]["swap"], 64 << 20);
        assert_eq!(oci["cpu"]["quota"], 50_000);
        assert_eq!(oci["cpu"]["period"], 100_000);
        assert_eq!(oci["cpu"]["shares"], 512);
        assert_eq!(oci["pids"]["limit"], 10);
        let none = Resources::default().oci();
        assert!(none.get("memory").is_none() && none.get("cpu").is_none() && none.get("pids").is_none());
        assert_eq!(none["devices"][0]["allow"], false);
    }

    #[test]
    fn sizes_print_like_docker_stats() {
        assert_eq!(human_bytes(32 << 20), "32MiB");
        assert_eq!(human_bytes(1536), "1.5KiB");
        assert_eq!(human_bytes(0), "0B");
    }

    #[test]
    fn cgroup_files_are_read_by_key() {
        let scratch = crate::state::Scratch::new("cgroup-v1");
        let dir = scratch.0.clone();
        let memory = dir.join("memory/wharf/c1");
        std::fs::create_dir_all(&memory).unwrap();
        std::fs::write(memory.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n").unwrap();
        assert!(Cgroup::of(&dir, "c1").oom_killed());
        std::fs::write(memory.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").unwrap();
        assert!(!Cgroup::of(&dir, "c1").oom_killed());
        assert!(!Cgroup::of(&dir, "gone").oom_killed());
    }

    #[test]
    fn cgroup_v2_files_are_read_too() {
        // This machine runs cgroup v1; a v2 hierarchy is laid out by hand.
        let scratch = crate::state::Scratch::new("cgroup-v2");
        let mount = scratch.0.clone();
        std::fs::write(mount.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let dir = mount.join("wharf/c2");
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in [
            ("memory.current", "10485760\n"),
            ("memory.stat", "anon 8000000\ninactive_file 2097152\n"),
            ("memory.max", "max\n"),
            ("cpu.stat", "usage_usec 1500\nuser_usec 1000\n"),
            ("pids.current", "3\n"),
            ("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"),
        ] {
            std::fs::write(dir.join(file), text).unwrap();
        }
        let cgroup = Cgroup::of(&mount, "c2");
        assert!(matches!(cgroup, Cgroup::V2(_)));
        assert!(cgroup.oom_killed());
        assert_eq!(
            cgroup.sample(),
            Some(Sample { memory: 10485760 - 2097152, limit: u64::MAX, cpu_ns: 1_500_000, pids: 3 })
        );
    }
}
