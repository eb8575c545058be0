//! Command-line flags of `wharf-proxy`, parsed the way Go's `flag` package
//! parses docker-proxy's: `-flag value`, `-flag=value`, `--flag value`,
//! boolean flags bare or `-flag=false`, parsing stops at `--`. The messages
//! and exit codes are Go's, so dockerd and people see what they expect.
//!
//! What this module does not do: open sockets or files other than a
//! `-config` file.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::mapping::{parse_ip, parse_port, Mapping, PortRange, Protocol};
use super::proxy_protocol::Version;

/// How TCP bytes move between the two sockets of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// `splice(2)` through a pooled pipe: the bytes never enter the process.
    Splice,
    /// `read`/`write` through a pooled buffer.
    Copy,
}

/// The TCP congestion control of the proxy's connections within the host:
/// to the container, and from clients on a loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Congestion {
    /// [`DEFAULT_LOCAL_CONGESTION`] where the kernel lets the proxy set
    /// it, else the kernel's default.
    Default,
    /// The kernel's default (`net.ipv4.tcp_congestion_control`).
    System,
    /// This algorithm; start-up fails when the kernel refuses it.
    Named(String),
}

/// The congestion control of connections within the host, chosen by
/// measurement (README, "wharf-proxy"): one that does not pace. A pacing
/// one (BBR, a common system default) on the proxy's side adds a second
/// paced sender behind the client's, and the two leave the CPUs idle.
pub const DEFAULT_LOCAL_CONGESTION: &str = "cubic";

/// What a run of `wharf-proxy` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub mappings: Vec<Mapping>,
    /// The listening (TCP) or bound (UDP) socket of the single legacy
    /// mapping is fd 4.
    pub use_listen_fd: bool,
    pub drain_timeout: Duration,
    pub udp_timeout: Duration,
    pub udp_max_flows: usize,
    pub proxy_protocol: Option<Version>,
    pub stats_socket: Option<PathBuf>,
    pub tcp_relay: Relay,
    pub local_congestion: Congestion,
    /// Worker threads for TCP (UDP runs on the first).
    pub threads: usize,
}

/// The most worker threads `-threads` takes.
pub const MAX_THREADS: usize = 64;

/// The default TCP relay, chosen by measurement (README, "wharf-proxy").
pub const DEFAULT_RELAY: Relay = Relay::Splice;

impl Default for Options {
    fn default() -> Options {
        Options {
            mappings: Vec::new(),
            use_listen_fd: false,
            drain_timeout: Duration::from_secs(5),
            udp_timeout: Duration::from_secs(90),
            udp_max_flows: 4096,
            proxy_protocol: None,
            stats_socket: None,
            tcp_relay: DEFAULT_RELAY,
            local_congestion: Congestion::Default,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS),
        }
    }
}

/// The outcome of parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Version,
    Help,
}

/// A command line that cannot run: print it, then the usage, exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError(pub String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgsError {}

/// The usage text, printed on stderr after an error and for `-h`.
pub const USAGE: &str = "\
Usage of wharf-proxy:
  -proto tcp|udp|sctp     protocol of the legacy mapping (default tcp)
  -host-ip IP             host address to listen on (default 0.0.0.0; IPv6 means a v6 socket)
  -host-port N            host port
  -container-ip IP        container address to forward to
  -container-port N       container port
  -use-listen-fd          the listening (tcp) or bound (udp) socket is inherited as fd 4
  -map SPEC               also forward proto:host-ip:host-ports:container-ip:container-ports
                          (ports N or N-M; IPv6 in brackets); repeatable
  -config FILE            read SPECs from FILE, one per line, # comments
  -proxy-protocol v1|v2   send a PROXY protocol header to the container (udp: v2 only)
  -drain-timeout DUR      on SIGTERM/SIGINT, let open connections finish this long (default 5s)
  -udp-timeout DUR        idle UDP flow timeout (default 1m30s)
  -udp-max-flows N        most UDP flows at once; the idlest is evicted (default 4096)
  -stats-socket PATH      serve the counters on this unix socket (also on SIGUSR1, to stderr)
  -tcp-relay splice|copy  how TCP bytes move (default splice)
  -local-congestion NAME  TCP congestion control to the container and for clients on a
                          loopback address (default cubic when the kernel allows it;
                          system keeps the kernel's default)
  -threads N              worker threads for TCP connections (default: one per core)
  -v, -version            print the version and exit
Readiness is written to fd 3 when it is open: \"0\\n\", or \"1\\n\" and the error.
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Value,
}

const FLAGS: &[(&str, Kind)] = &[
    ("proto", Kind::Value),
    ("host-ip", Kind::Value),
    ("host-port", Kind::Value),
    ("container-ip", Kind::Value),
    ("container-port", Kind::Value),
    ("use-listen-fd", Kind::Bool),
    ("v", Kind::Bool),
    ("version", Kind::Bool),
    ("map", Kind::Value),
    ("config", Kind::Value),
    ("proxy-protocol", Kind::Value),
    ("drain-timeout", Kind::Value),
    ("udp-timeout", Kind::Value),
    ("udp-max-flows", Kind::Value),
    ("stats-socket", Kind::Value),
    ("tcp-relay", Kind::Value),
    ("local-congestion", Kind::Value),
    ("threads", Kind::Value),
];

/// The legacy docker-proxy flags, before they become a mapping.
#[derive(Default)]
struct Legacy {
    proto: Option<Protocol>,
    host_ip: Option<IpAddr>,
    host_port: Option<u16>,
    container_ip: Option<IpAddr>,
    container_port: Option<u16>,
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, ArgsError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args.into_iter();
    let mut options = Options::default();
    let mut legacy = Legacy::default();
    let mut version = false;
    while let Some(arg) = args.next() {
        let arg = arg.into_string().map_err(|arg| ArgsError(format!("argument {arg:?} is not UTF-8")))?;
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix('-').filter(|b| !b.is_empty()) else {
            return Err(ArgsError(format!("unexpected argument {arg:?}: wharf-proxy takes only flags")));
        };
        let body = body.strip_prefix('-').unwrap_or(body);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(ArgsError(format!("bad flag syntax: {arg}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Ok(Command::Help);
        }
        let Some(&(_, kind)) = FLAGS.iter().find(|(flag, _)| *flag == name) else {
            return Err(ArgsError(format!("flag provided but not defined: -{name}")));
        };
        let value = match (kind, inline) {
            (Kind::Bool, None) => "true".to_owned(),
            (_, Some(value)) => value,
            (Kind::Value, None) => match args.next() {
                Some(value) => value
                    .into_string()
                    .map_err(|v| ArgsError(format!("invalid value {v:?} for flag -{name}: not UTF-8")))?,
                None => return Err(ArgsError(format!("flag needs an argument: -{name}"))),
            },
        };
        let invalid = |why: String| ArgsError(format!("invalid value {value:?} for flag -{name}: {why}"));
        match name {
            "proto" => legacy.proto = Some(value.parse().map_err(invalid)?),
            "host-ip" => legacy.host_ip = Some(parse_ip(&value).map_err(invalid)?),
            "host-port" => legacy.host_port = Some(parse_port(&value).map_err(invalid)?),
            "container-ip" => legacy.container_ip = Some(parse_ip(&value).map_err(invalid)?),
            "container-port" => legacy.container_port = Some(parse_port(&value).map_err(invalid)?),
            "use-listen-fd" => options.use_listen_fd = parse_bool(&value).map_err(invalid)?,
            "v" | "version" => version = parse_bool(&value).map_err(invalid)?,
            "map" => options.mappings.push(value.parse().map_err(invalid)?),
            "config" => options.mappings.extend(read_config(&value).map_err(invalid)?),
            "proxy-protocol" => {
                options.proxy_protocol = match value.as_str() {
                    "v1" | "1" => Some(Version::V1),
                    "v2" | "2" => Some(Version::V2),
                    "off" | "none" | "" => None,
                    _ => return Err(invalid("use v1 or v2".into())),
                }
            }
            "drain-timeout" => options.drain_timeout = parse_duration(&value).map_err(invalid)?,
            "udp-timeout" => options.udp_timeout = parse_duration(&value).map_err(invalid)?,
            "udp-max-flows" => {
                options.udp_max_flows = match value.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(invalid("give a number of flows, at least 1".into())),
                }
            }
            "stats-socket" => options.stats_socket = Some(PathBuf::from(&value)),
            "tcp-relay" => {
                options.tcp_relay = match value.as_str() {
                    "splice" => Relay::Splice,
                    "copy" => Relay::Copy,
                    _ => return Err(invalid("use splice or copy".into())),
                }
            }
            "local-congestion" => options.local_congestion = parse_congestion(&value).map_err(invalid)?,
            "threads" => {
                options.threads = match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_THREADS).contains(&n) => n,
                    _ => return Err(invalid(format!("give 1 to {MAX_THREADS} threads"))),
                }
            }
            _ => unreachable!("every name in FLAGS has an arm"),
        }
    }
    if let Some(extra) = args.next() {
        return Err(ArgsError(format!("unexpected argument {extra:?} after --: wharf-proxy takes only flags")));
    }
    if version {
        return Ok(Command::Version);
    }
    let legacy_given = legacy.host_port.is_some() || legacy.container_ip.is_some() || legacy.container_port.is_some();
    if legacy_given {
        let missing =
            |flag: &str| ArgsError(format!("-{flag} is required with -host-port, -container-ip and -container-port"));
        let host_port = legacy.host_port.ok_or_else(|| missing("host-port"))?;
        let container_ip = legacy.container_ip.ok_or_else(|| missing("container-ip"))?;
        let container_port = legacy.container_port.ok_or_else(|| missing("container-port"))?;
        let mapping = Mapping::new(
            legacy.proto.unwrap_or(Protocol::Tcp),
            legacy.host_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            PortRange::single(host_port).map_err(ArgsError)?,
            container_ip,
            PortRange::single(container_port).map_err(ArgsError)?,
        )
        .map_err(ArgsError)?;
        options.mappings.insert(0, mapping);
    }
    if options.mappings.is_empty() {
        return Err(ArgsError(
            "no mapping: give -host-port, -container-ip and -container-port, or -map, or -config".into(),
        ));
    }
    if options.use_listen_fd && (!legacy_given || options.mappings.len() != 1) {
        return Err(ArgsError(
            "-use-listen-fd goes with the single mapping of -host-port/-container-ip/-container-port, not with -map"
                .into(),
        ));
    }
    if options.proxy_protocol == Some(Version::V1) && options.mappings.iter().any(|m| m.proto == Protocol::Udp) {
        return Err(ArgsError("-proxy-protocol v1 is for TCP only; UDP mappings need v2".into()));
    }
    Ok(Command::Run(options))
}

/// `system`, or a name the kernel could know: up to 15 letters, digits,
/// `_` or `-` (its `TCP_CA_NAME_MAX` is 16 with the NUL).
fn parse_congestion(s: &str) -> Result<Congestion, String> {
    if s == "system" {
        return Ok(Congestion::System);
    }
    let plausible = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if s.is_empty() || s.len() > 15 || !s.chars().all(plausible) {
        return Err("give a congestion control algorithm (cubic, reno, bbr...) or system".into());
    }
    Ok(Congestion::Named(s.to_owned()))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("parse error".into()),
    }
}

/// The longest duration Go's `time.Duration` holds (`math.MaxInt64`
/// nanoseconds, about 292 years): longer ones are refused, as Go refuses
/// them, and every deadline the proxy adds one to stays representable.
pub const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

/// A Go duration (`300ms`, `1m30s`, `1.5h`), or a bare number of seconds;
/// at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let duration = parse_unbounded_duration(s)?;
    if duration > MAX_DURATION {
        return Err(format!("{s:?} is longer than the longest duration, 2562047h47m16.854775807s"));
    }
    Ok(duration)
}

fn parse_unbounded_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (like 300ms, 5s, 1m30s)");
    if let Ok(seconds) = s.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// The largest `-config` file read: some 100,000 mappings. A path to
/// something endless (`/dev/zero`) gets an error, not all the memory.
const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// Reads mapping SPECs from a file: one per line, `#` comments.
fn read_config(path: &str) -> Result<Vec<Mapping>, String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
        .map_err(|err| format!("cannot read {path}: {err}"))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("{path} is larger than {} MiB; is it a mapping file?", MAX_CONFIG_BYTES >> 20));
    }
    parse_config(&text)
}

/// Parses the text of a `-config` file.
pub fn parse_config(text: &str) -> Result<Vec<Mapping>, String> {
    let mut mappings = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        mappings.push(line.parse().map_err(|err| format!("line {}: {err}", number + 1))?);
    }
    if mappings.is_empty() {
        return Err("no mapping in the file".into());
    }
    Ok(mappings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, ArgsError> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Options {
        match parse_strs(args) {
            Ok(Command::Run(options)) => options,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn docker_proxy_command_lines_parse() {
        let options = run(&[
            "-proto",
            "tcp",
            "-host-ip",
            "0.0.0.0",
            "-host-port",
            "8080",
            "-container-ip",
            "172.17.0.2",
            "-container-port",
            "80",
            "-use-listen-fd",
        ]);
        assert_eq!(options.mappings, vec!["tcp:0.0.0.0:8080:172.17.0.2:80".parse().unwrap()]);
        assert!(options.use_listen_fd);
        let same = run(&[
            "--proto=tcp",
            "-host-ip=0.0.0.0",
            "--host-port",
            "8080",
            "-container-ip",
            "172.17.0.2",
            "-container-port=80",
            "-use-listen-fd=true",
        ]);
        assert_eq!(same, options);
        let v6 = run(&[
            "-proto",
            "udp",
            "-host-ip",
            "::",
            "-host-port",
            "53",
            "-container-ip",
            "fd00::2",
            "-container-port",
            "53",
        ]);
        assert_eq!(v6.mappings[0].to_string(), "udp:[::]:53:[fd00::2]:53");
        assert!(!v6.use_listen_fd);
    }

    #[test]
    fn defaults_and_extensions() {
        let options = run(&["-map", "tcp:127.0.0.1:8000-8999:10.0.0.2:8000-8999"]);
        assert_eq!(options.drain_timeout, Duration::from_secs(5));
        assert_eq!(options.udp_timeout, Duration::from_secs(90));
        assert_eq!(options.udp_max_flows, 4096);
        assert_eq!(options.tcp_relay, DEFAULT_RELAY);
        assert_eq!(options.local_congestion, Congestion::Default);
        let options = run(&[
            "-map",
            "tcp:127.0.0.1:80:10.0.0.2:80",
            "--map=udp:127.0.0.1:53:10.0.0.2:53",
            "-proxy-protocol",
            "v2",
            "-drain-timeout",
            "1m30s",
            "-udp-timeout=300ms",
            "-udp-max-flows",
            "10",
            "-stats-socket",
            "/run/p.sock",
            "-tcp-relay",
            "copy",
            "-threads",
            "3",
            "-local-congestion",
            "reno",
        ]);
        assert_eq!(options.mappings.len(), 2);
        assert_eq!(options.proxy_protocol, Some(Version::V2));
        assert_eq!(options.drain_timeout, Duration::from_secs(90));
        assert_eq!(options.udp_timeout, Duration::from_millis(300));
        assert_eq!(options.udp_max_flows, 10);
        assert_eq!(options.stats_socket, Some(PathBuf::from("/run/p.sock")));
        assert_eq!(options.tcp_relay, Relay::Copy);
        assert_eq!(options.threads, 3);
        assert_eq!(options.local_congestion, Congestion::Named("reno".into()));
        let system = run(&["-map", "tcp:127.0.0.1:80:10.0.0.2:80", "--local-congestion=system"]);
        assert_eq!(system.local_congestion, Congestion::System);
        assert_eq!(parse_strs(&["-v"]), Ok(Command::Version));
        assert_eq!(parse_strs(&["--version"]), Ok(Command::Version));
        assert_eq!(parse_strs(&["-h"]), Ok(Command::Help));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (&["-bogus"], "flag provided but not defined: -bogus"),
            (&["-host-port"], "flag needs an argument: -host-port"),
            (&["-proto", "icmp"], "invalid value \"icmp\" for flag -proto"),
            (&["-host-port", "70000"], "invalid value \"70000\" for flag -host-port: port 70000 is out of range"),
            (&["-container-ip", "1.2.3"], "invalid value \"1.2.3\" for flag -container-ip"),
            (&["-drain-timeout", "soon"], "invalid value \"soon\" for flag -drain-timeout"),
            (&["-use-listen-fd=maybe"], "invalid value \"maybe\" for flag -use-listen-fd"),
            (&["-map", "tcp:1.2.3.4:80"], "invalid value \"tcp:1.2.3.4:80\" for flag -map"),
            (&["-host-port", "80", "-container-ip", "10.0.0.2"], "-container-port is required"),
            (&[], "no mapping"),
            (&["stray"], "unexpected argument"),
            (&["---x"], "bad flag syntax"),
            (&["-udp-max-flows", "0"], "at least 1"),
            (&["-threads", "0"], "give 1 to 64 threads"),
            (&["-local-congestion", ""], "invalid value \"\" for flag -local-congestion: give a congestion"),
            (&["-local-congestion", "cu bic"], "invalid value \"cu bic\" for flag -local-congestion"),
            (&["-local-congestion", "a_name_far_too_long"], "for flag -local-congestion"),
            (&["-map", "tcp:127.0.0.1:80:10.0.0.2:80", "-use-listen-fd"], "-use-listen-fd goes with"),
            (&["-map", "udp:127.0.0.1:53:10.0.0.2:53", "-proxy-protocol", "v1"], "UDP mappings need v2"),
            (&["-config", "/nonexistent/wharf.conf"], "cannot read /nonexistent/wharf.conf"),
        ];
        for (args, want) in cases {
            let err = parse_strs(args).unwrap_err();
            assert!(err.0.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "s", "5x", "-5s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_stop_where_go_stops() {
        // math.MaxInt64 nanoseconds is 9,223,372,036.854775807 s.
        assert_eq!(parse_duration("9223372036"), Ok(Duration::from_secs(9_223_372_036)));
        assert_eq!(parse_duration("2562047h"), Ok(Duration::from_secs(2_562_047 * 3600)));
        for long in ["9223372037", "2562048h", "10000000000000000000", "18446744073709551615", "3000000000000000h"] {
            let err = parse_duration(long).unwrap_err();
            assert!(err.contains("longer than the longest duration"), "{long}: {err}");
        }
        let err =
            parse_strs(&["-map", "udp:127.0.0.1:53:10.0.0.2:53", "-udp-timeout", "10000000000000000000"]).unwrap_err();
        assert!(err.0.contains("udp-timeout") && err.0.contains("longest duration"), "{err:?}");
    }

    #[test]
    fn an_endless_config_is_refused() {
        let err = parse_strs(&["-config", "/dev/zero"]).unwrap_err();
        assert!(err.0.contains("/dev/zero is larger than 8 MiB"), "{err:?}");
        let err = parse_strs(&["-config", "/nonexistent/wharf.conf"]).unwrap_err();
        assert!(err.0.contains("cannot read /nonexistent/wharf.conf"), "{err:?}");
    }

    #[test]
    fn config_files_hold_one_spec_per_line() {
        let text =
            "# published ports\ntcp:0.0.0.0:8000-8009:10.0.0.2:8000-8009\n\n  udp:0.0.0.0:53:10.0.0.2:53  # dns\n";
        let mappings = parse_config(text).unwrap();
        assert_eq!(mappings.len(), 2);
        assert_eq!(mappings[1].to_string(), "udp:0.0.0.0:53:10.0.0.2:53");
        assert!(parse_config("tcp:0.0.0.0:80\n").unwrap_err().starts_with("line 1:"));
        assert!(parse_config("# nothing\n").is_err());
    }
}
