//! The process's open-file limit. Every connection holds a descriptor, and
//! many systems start processes with a soft limit of 1,024 while allowing
//! far more (the hard limit): the server raises its own soft limit to the
//! hard one at start, once per process, so `max_connections` rather than a
//! login default decides how many clients it serves.

use std::sync::OnceLock;

/// The soft and hard `RLIMIT_NOFILE` after raising, or `None` where the
/// platform has no such limit or it could not be read.
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    static RAISED: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    *RAISED.get_or_init(raise)
}

#[cfg(unix)]
// `rlim_t` is `u64` on Linux but not everywhere.
#[allow(clippy::unnecessary_cast)]
fn raise() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(error = %error, "Could not read the open-file limit.");
        return None;
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given, nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
            tracing::info!(
                from = before as u64,
                to = limit.rlim_cur as u64,
                "Raised the open-file limit to the hard limit."
            );
        } else {
            let error = std::io::Error::last_os_error();
            tracing::warn!(
                limit = before as u64,
                hard = limit.rlim_max as u64,
                error = %error,
                "Could not raise the open-file limit; it bounds the connections served."
            );
        }
    }
    Some((limit.rlim_cur as u64, limit.rlim_max as u64))
}

#[cfg(not(unix))]
fn raise() -> Option<(u64, u64)> {
    None
}
