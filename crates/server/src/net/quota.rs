//! Stream slots shared fairly: per connection and per client address, on
//! top of the server-wide `max_streams`.
//!
//! Without these, one client could take every slot: 11 connections × 1,000
//! streams that never read held all 10,000 for the 5-minute idle timeout,
//! and everyone else got RESOURCE_EXHAUSTED. Each accepted connection gets
//! a [`Quota`] (in the accept loop, carried to handlers as a request
//! extension); every stream, reading or request (`request_body.rs`), takes
//! a [`StreamSlot`] through [`open_stream`], which checks the connection's
//! cap, then its address's, then the server's, and says which one refused.
//!
//! Addresses are counted as IPv4 addresses and IPv6 /64 prefixes: a host
//! with a /64 has more addresses than any table could hold, so counting
//! them one by one would bound nothing.

use crate::error::ServeError;
use crate::ops::metrics::{GaugeUnit, Limit, Metrics};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The streams each client address holds, and the per-address and
/// per-connection caps. One per server.
#[derive(Debug)]
pub struct Peers {
    /// The most streams one connection may hold; a configuration reload
    /// changes it for streams opened after.
    per_connection: AtomicUsize,
    /// The most streams one client address may hold; likewise reloadable.
    per_peer: AtomicUsize,
    /// Streams held by each address that holds any; an address leaves the
    /// table when its last stream ends, so the table is as large as the
    /// addresses with streams open, never more.
    open: Mutex<HashMap<IpAddr, usize>>,
    /// Where refusals are counted.
    metrics: Arc<Metrics>,
}

impl Peers {
    /// The table, with `per_connection` and `per_peer` streams at most.
    pub fn new(per_connection: usize, per_peer: usize, metrics: Arc<Metrics>) -> Arc<Peers> {
        Arc::new(Peers {
            per_connection: AtomicUsize::new(per_connection),
            per_peer: AtomicUsize::new(per_peer),
            open: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Replaces both caps (a configuration reload). Streams already open
    /// stay; the new caps apply to the next ones.
    pub fn set_caps(&self, per_connection: usize, per_peer: usize) {
        self.per_connection.store(per_connection, Ordering::Relaxed);
        self.per_peer.store(per_peer, Ordering::Relaxed);
    }

    /// The per-connection state of a connection from `peer`.
    pub fn connection(self: &Arc<Self>, peer: IpAddr) -> Quota {
        Quota(Arc::new(Connection {
            peers: Arc::clone(self),
            peer: peer_key(peer),
            open: AtomicUsize::new(0),
            buffered: AtomicUsize::new(0),
        }))
    }

    /// Takes one slot of `peer`, unless it holds its cap.
    fn take(&self, peer: IpAddr) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let held = open.entry(peer).or_insert(0);
        if *held >= self.per_peer.load(Ordering::Relaxed) {
            if *held == 0 {
                open.remove(&peer);
            }
            return false;
        }
        *held += 1;
        true
    }

    /// Gives one slot of `peer` back.
    fn give_back(&self, peer: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = open.get_mut(&peer) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&peer);
            }
        }
    }
}

/// What a client address is counted as: IPv4 (and IPv4-mapped IPv6) by
/// address, other IPv6 by /64.
fn peer_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// One connection's share: the streams it holds, the unfinished request
/// bytes it holds (charged by `request_body.rs`), and its address. Cheap to
/// clone; every request of the connection carries one as an extension.
#[derive(Debug, Clone)]
pub struct Quota(Arc<Connection>);

/// What a [`Quota`] counts.
#[derive(Debug)]
struct Connection {
    /// The server's table of addresses.
    peers: Arc<Peers>,
    /// The address as counted ([`peer_key`]).
    peer: IpAddr,
    /// Streams open on this connection.
    open: AtomicUsize,
    /// Bytes of unfinished request messages held by this connection's
    /// requests.
    buffered: AtomicUsize,
}

impl Quota {
    /// The unfinished request bytes this connection holds, to charge and
    /// release (`request_body.rs`).
    pub(crate) fn buffered(&self) -> &AtomicUsize {
        &self.0.buffered
    }

    /// Takes a slot of this connection and of its address, or says which
    /// cap refused it (counted).
    fn take(&self) -> Result<QuotaUnit, ServeError> {
        let connection = &self.0;
        let peers = &connection.peers;
        let per_connection = peers.per_connection.load(Ordering::Relaxed);
        if connection.open.fetch_add(1, Ordering::Relaxed) >= per_connection {
            connection.open.fetch_sub(1, Ordering::Relaxed);
            peers.metrics.limit_hit(Limit::StreamsPerConnection);
            return Err(ServeError::TooManyStreamsOnConnection {
                limit: per_connection,
            });
        }
        if !peers.take(connection.peer) {
            connection.open.fetch_sub(1, Ordering::Relaxed);
            peers.metrics.limit_hit(Limit::StreamsPerPeer);
            tracing::debug!(peer = %connection.peer, limit = peers.per_peer.load(Ordering::Relaxed), "Refused a stream: its client address holds its share of streams.");
            return Err(ServeError::TooManyStreamsFromPeer {
                limit: peers.per_peer.load(Ordering::Relaxed),
            });
        }
        Ok(QuotaUnit(self.clone()))
    }
}

/// One slot of a connection and of its address, given back on drop.
#[derive(Debug)]
struct QuotaUnit(Quota);

impl Drop for QuotaUnit {
    fn drop(&mut self) {
        let connection = &(self.0).0;
        connection.open.fetch_sub(1, Ordering::Relaxed);
        connection.peers.give_back(connection.peer);
    }
}

/// One open stream, counted in `logtap_active_streams`, under
/// `max_streams`, and (when it came through the accept loop) under its
/// connection's and address's caps, until dropped.
#[derive(Debug)]
pub struct StreamSlot {
    /// The connection's and address's slot, if the stream has a connection.
    _quota: Option<QuotaUnit>,
    /// The server-wide slot.
    _server: GaugeUnit,
}

/// Opens a reading stream's slot: the connection's cap first, then its
/// address's, then the server's `max_streams`; the first that refuses
/// names itself in the error and is counted in
/// `logtap_limit_rejections_total`. The slot is in `logtap_active_streams`.
pub fn open_stream(
    metrics: &Metrics,
    max_streams: usize,
    quota: Option<&Quota>,
) -> Result<StreamSlot, ServeError> {
    let quota = quota.map(Quota::take).transpose()?;
    let server = metrics.open_stream(max_streams)?;
    Ok(StreamSlot {
        _quota: quota,
        _server: server,
    })
}

/// Opens a request body's slot, as [`open_stream`] does, but counted in
/// `logtap_request_streams` rather than in the reading streams.
pub fn open_request_stream(
    metrics: &Metrics,
    max_streams: usize,
    quota: Option<&Quota>,
) -> Result<StreamSlot, ServeError> {
    let quota = quota.map(Quota::take).transpose()?;
    let server = metrics.open_request_stream(max_streams)?;
    Ok(StreamSlot {
        _quota: quota,
        _server: server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_connection_and_per_address_refuse_and_give_back() {
        let metrics = Arc::new(Metrics::new());
        let peers = Peers::new(2, 3, Arc::clone(&metrics));
        let one = peers.connection("10.0.0.1".parse().unwrap());
        let other = peers.connection("10.0.0.1".parse().unwrap());
        let elsewhere = peers.connection("10.0.0.2".parse().unwrap());
        let a = open_stream(&metrics, 100, Some(&one)).unwrap();
        let _b = open_stream(&metrics, 100, Some(&one)).unwrap();
        assert!(matches!(
            open_stream(&metrics, 100, Some(&one)),
            Err(ServeError::TooManyStreamsOnConnection { limit: 2 })
        ));
        let _c = open_stream(&metrics, 100, Some(&other)).unwrap();
        assert!(matches!(
            open_stream(&metrics, 100, Some(&other)),
            Err(ServeError::TooManyStreamsFromPeer { limit: 3 })
        ));
        let _d = open_stream(&metrics, 100, Some(&elsewhere)).unwrap();
        assert_eq!(metrics.active_streams.get(), 4);
        drop(a);
        let _e = open_stream(&metrics, 100, Some(&other)).expect("a slot came back");
        assert_eq!(peers.open.lock().unwrap().len(), 2);
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64() {
        let a = peer_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = peer_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = peer_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = peer_key("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(mapped, "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
