//! The VTEP's counters over a Unix socket: the runner serves a text snapshot
//! to each connection (`wharf vtep stats NAME` reads it), and prints the same
//! on SIGUSR1.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::paths;

/// The default socket of the VTEP serving device `name`.
pub fn socket_path(name: &str) -> PathBuf {
    paths::run_dir().join(format!("vtep-{name}.sock"))
}

/// A listening stats socket, removed on drop.
#[derive(Debug)]
pub struct StatsServer {
    listener: UnixListener,
    path: PathBuf,
}

impl StatsServer {
    /// Binds `path`, replacing a stale socket left by a runner that is
    /// gone; refuses if another still answers there, or if `path` is a file
    /// that is not a socket.
    pub fn bind(path: &Path) -> io::Result<StatsServer> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
        }
        dataplane::sys::socket_path::claim_socket_path(path)?;
        let listener =
            UnixListener::bind(path).map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", path.display())))?;
        listener.set_nonblocking(true)?;
        Ok(StatsServer { listener, path: path.to_owned() })
    }

    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Answers every waiting connection with `snapshot()`; never blocks.
    pub fn serve(&self, snapshot: impl Fn() -> String) {
        while let Ok((mut stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.write_all(snapshot().as_bytes());
        }
    }
}

impl Drop for StatsServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads a snapshot from a VTEP's stats socket.
pub fn fetch(path: &Path) -> io::Result<String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        io::Error::new(e.kind(), format!("no VTEP answers at {}: {e} (is `wharf vtep` running?)", path.display()))
    })?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_and_fetch() {
        let dir = std::env::temp_dir().join(format!("wharf-stats-{}", std::process::id()));
        let path = dir.join("vtep-t.sock");
        let server = StatsServer::bind(&path).unwrap();
        assert!(StatsServer::bind(&path).is_err(), "a second VTEP on the same socket is refused");
        let reader = std::thread::spawn({
            let path = path.clone();
            move || fetch(&path).unwrap()
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !reader.is_finished() && std::time::Instant::now() < deadline {
            server.serve(|| "rx_packets 7\n".to_owned());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(reader.join().unwrap(), "rx_packets 7\n");
        drop(server);
        assert!(!path.exists());
        assert!(fetch(&path).unwrap_err().to_string().contains("is `wharf vtep` running?"));
        // A mistyped --stats-socket that names somebody's file is refused.
        let file = dir.join("notes.txt");
        std::fs::write(&file, "keep").unwrap();
        assert!(StatsServer::bind(&file).unwrap_err().to_string().contains("is not a socket"));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
        let _ = std::fs::remove_dir_all(dir);
    }
}
