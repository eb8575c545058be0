//! wharf's state on disk, under `WHARF_ROOT`: the lock that serialises
//! commands, atomic JSON records, and random ids.
//!
//! Every record is written to a temporary file in the same directory,
//! synced and renamed over the old one, so a reader (or a crash) sees either
//! the old record or the new one, never half of one. Commands that read,
//! change and write state hold [`Lock`] (an exclusive `flock` on
//! `WHARF_ROOT/wharf.lock`) for as long as that takes, never while a
//! container runs, so two wharf commands at once cannot lose an update.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The state directory and its parts.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// The root at `WHARF_ROOT` (default /var/lib/wharf).
    pub fn from_env() -> Root {
        Root::new(crate::paths::wharf_root())
    }

    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What marks a kernel object (a bridge's alias) as made by this root,
    /// so that another `WHARF_ROOT` on the host leaves it alone: `wharf `
    /// and a hash of the root's path.
    pub fn owner_tag(&self) -> String {
        format!("wharf {:016x}", fnv1a(self.dir.as_os_str().as_encoded_bytes()))
    }

    /// `WHARF_ROOT/images`.
    pub fn images(&self) -> PathBuf {
        self.dir.join("images")
    }

    /// `WHARF_ROOT/containers`.
    pub fn containers(&self) -> PathBuf {
        self.dir.join("containers")
    }

    /// `WHARF_ROOT/volumes`.
    pub fn volumes(&self) -> PathBuf {
        self.dir.join("volumes")
    }

    /// `WHARF_ROOT/runc`: the runtime's own state (`runc --root`).
    pub fn runtime_state(&self) -> PathBuf {
        self.dir.join("runc")
    }

    /// Takes the state lock, creating the root if it does not exist yet;
    /// blocks while another wharf command holds it.
    pub fn lock(&self) -> io::Result<Lock> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", self.dir.display())))?;
        let path = self.dir.join("wharf.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
        let file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io::Error::other(format!("lock {}: {e}", path.display())))?;
        Ok(Lock { _file: file })
    }
}

/// The exclusive state lock; released on drop (and by the kernel if the
/// process dies).
#[derive(Debug)]
pub struct Lock {
    _file: nix::fcntl::Flock<File>,
}

/// Writes `value` as JSON to `path` atomically: a synced temporary file in
/// the same directory, renamed over `path`.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("write {}: {e}", path.display()));
    let name = path.file_name().ok_or_else(|| context(io::Error::other("not a file path")))?;
    let mut temporary = name.to_os_string();
    temporary.push(format!(".tmp{}", std::process::id()));
    let temporary = path.with_file_name(temporary);
    let result = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(context)
}

/// Reads a JSON record written by [`write_json`].
pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let mut text = String::new();
    File::open(path)
        .and_then(|mut file| file.read_to_string(&mut text))
        .map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("parse {}: {e}", path.display())))
}

/// FNV-1a (64-bit) of `bytes`: a stable short name for something, not a
/// secret.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The first 12 characters of an id, as Docker shows ids (all of a
/// shorter one).
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A new random id: 64 lowercase hex digits, as Docker's.
pub fn random_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The current time as RFC 3339 UTC with nanoseconds, as Docker prints it.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// `time` as RFC 3339 UTC (`2026-11-28T17:42:07.123456789Z`).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let since = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// Parses what [`rfc3339`] writes back to a time; `None` for anything
/// else, a field out of its range included (a record edited by hand or cut
/// short must not stop `wharf ps`).
pub fn parse_rfc3339(text: &str) -> Option<std::time::SystemTime> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    let in_range = (0..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && h < 24
        && m < 60
        && s < 60;
    if !in_range {
        return None;
    }
    let nanos: u32 = format!("{fraction:0<9}").get(..9)?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(secs, nanos))
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A duration the way `docker ps` says it: "3 seconds", "About a minute",
/// "5 minutes", "2 hours", "3 days".
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".to_string(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// A scratch directory for unit tests, named for the test and this
/// process, removed on drop even when the test fails.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Scratch(pub(crate) PathBuf);

#[cfg(test)]
impl Scratch {
    pub(crate) fn new(tag: &str) -> Scratch {
        // Tests run in parallel threads of one process: pid and tag alone
        // could name one directory for two tests.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wharf-test-{}-{n}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A state root inside the scratch directory.
    pub(crate) fn root(&self) -> Root {
        Root::new(self.0.join("root"))
    }
}

#[cfg(test)]
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_round_trips() {
        let t = UNIX_EPOCH + Duration::new(1_795_887_727, 123_456_789);
        let text = rfc3339(t);
        assert_eq!(text, "2026-11-28T17:42:07.123456789Z");
        assert_eq!(parse_rfc3339(&text), Some(t));
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(UNIX_EPOCH + Duration::from_secs(1_709_164_800)));
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn out_of_range_timestamps_are_refused_not_overflowed() {
        // The last time a four-digit year holds; no leap second (Go, which
        // writes Docker's times, refuses second 60 too).
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59.999999999Z"),
            Some(UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999))
        );
        for bad in [
            "1970-01-01T00:00:10000000000000000000Z",
            "1970-01-01T18446744073709551615:00:00Z",
            "9223372036854775807-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-32T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:60Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn atomic_writes_replace_whole_records() {
        let scratch = Scratch::new("atomic");
        let dir = &scratch.0;
        let path = dir.join("record.json");
        write_json(&path, &vec![1, 2, 3]).unwrap();
        write_json(&path, &vec![4]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), vec![4]);
        assert_eq!(fs::read_dir(dir).unwrap().count(), 1, "no temporary file left behind");
        let err = read_json::<Vec<u32>>(&dir.join("missing.json")).unwrap_err();
        assert!(err.to_string().contains("missing.json"), "{err}");
    }

    #[test]
    fn ids_are_64_hex_and_differ() {
        let (a, b) = (random_id().unwrap(), random_id().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn durations_read_like_docker_ps() {
        assert_eq!(human_duration(Duration::from_secs(3)), "3 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(300)), "5 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
    }
}
