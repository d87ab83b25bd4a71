//! The systemd notification protocol (`sd_notify`), for `Type=notify`
//! units: `READY=1` once the store is open and the listeners bound,
//! `RELOADING=1` and `READY=1` around a reload, `STOPPING=1` at shutdown,
//! and `WATCHDOG=1` pings when the unit sets `WatchdogSec=`.
//!
//! The protocol is one datagram per message, `KEY=VALUE` lines, sent to the
//! Unix datagram socket named by `$NOTIFY_SOCKET`: a path, or an abstract
//! name written with a leading `@`. Without the variable (not started by
//! systemd) nothing is sent. A message that cannot be sent is logged and
//! the server goes on: systemd then notices by itself (a start timeout, a
//! missed watchdog).

use std::time::Duration;

/// Where the service manager listens, when it does.
#[derive(Debug)]
pub struct Notifier {
    /// An unbound socket to send from.
    #[cfg(unix)]
    socket: std::os::unix::net::UnixDatagram,
    /// `$NOTIFY_SOCKET`'s address.
    #[cfg(unix)]
    address: std::os::unix::net::SocketAddr,
    /// `$NOTIFY_SOCKET` as given, for messages.
    name: String,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names; `None` when it is unset or
    /// empty, or (logged) when it cannot be used.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var("NOTIFY_SOCKET").ok()?;
        if name.is_empty() {
            return None;
        }
        match Notifier::open(&name) {
            Ok(notifier) => Some(notifier),
            Err(error) => {
                tracing::warn!(socket = %name, %error, "Cannot use NOTIFY_SOCKET; systemd will not hear that the server is ready.");
                None
            }
        }
    }

    #[cfg(unix)]
    fn open(name: &str) -> std::io::Result<Notifier> {
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        // Abstract names are Linux's; elsewhere systemd does not run.
        let address = match name.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name.as_bytes())?
            }
            _ => SocketAddr::from_pathname(name)?,
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            address,
            name: name.to_string(),
        })
    }

    #[cfg(not(unix))]
    fn open(_name: &str) -> std::io::Result<Notifier> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "NOTIFY_SOCKET is a Unix datagram socket",
        ))
    }

    /// Sends one message (`READY=1`, or several lines); a failure is
    /// logged.
    pub fn send(&self, message: &str) {
        #[cfg(unix)]
        if let Err(error) = self.socket.send_to_addr(message.as_bytes(), &self.address) {
            tracing::warn!(socket = %self.name, %error, message, "Could not notify the service manager.");
        }
    }
}

/// How often to ping the watchdog: half of `$WATCHDOG_USEC`, as
/// sd_watchdog_enabled(3) advises, when it is set for this process
/// (`$WATCHDOG_PID` unset or this pid).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// `RELOADING=1` with the `MONOTONIC_USEC` systemd asks for since v253
/// (`Type=notify-reload`), so it can tell this reload from an earlier one.
pub fn reloading_message() -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec())
}

/// `CLOCK_MONOTONIC` in microseconds.
#[cfg(unix)]
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill in.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64) * 1_000_000 + (now.tv_nsec as u64) / 1_000
}

#[cfg(not(unix))]
fn monotonic_usec() -> u64 {
    0
}
