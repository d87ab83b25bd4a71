//! TLS on the one port (`--tls-cert`, `--tls-key`): rustls with the ring
//! provider, offering ALPN `h2` and `http/1.1`, so gRPC (HTTP/2), gRPC-Web
//! and plain HTTP/1.1 all work over it as they do without TLS (hyper-util's
//! `auto` builder still picks the protocol from the first bytes).
//!
//! The handshake runs in the connection's own task, bounded by
//! [`HANDSHAKE_TIMEOUT`], so a slow or silent client never holds up the
//! accept loop. A client that speaks plain HTTP/1.1 to the TLS port gets a
//! `400` that says to use `https://` (as Go's and nginx's servers do); any
//! other non-TLS bytes (an h2c gRPC client, say) close the connection.

use crate::error::TlsError;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of every TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Where the server's certificate chain and private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
}

/// Reads a whole file, with the file's role in the error.
fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_path_buf(),
        error,
    })
}

/// Loads the certificate chain and key and builds the acceptor.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_pem = read("certificate", &files.cert)?;
    let key_pem = read("key", &files.key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|error| TlsError::NoCertificate {
            path: files.cert.clone(),
            detail: format!(": {error}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
            detail: String::new(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::NoKey {
        path: files.key.clone(),
        detail: match error {
            tokio_rustls::rustls::pki_types::pem::Error::NoItemsFound => String::new(),
            error => format!(": {error}"),
        },
    })?;
    let rejected = |error: tokio_rustls::rustls::Error| TlsError::Rejected {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: error.to_string(),
    };
    // The provider is named rather than taken from the process default:
    // with both ring and aws-lc-rs in a build, the default is undecided and
    // `ServerConfig::builder()` would panic.
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        // Checks that the key matches the certificate's public key.
        .with_single_cert(chain, key)
        .map_err(rejected)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The body of the answer to plain HTTP on a TLS port.
const PLAIN_HTTP_MESSAGE: &str =
    "This server speaks TLS on this port: use https:// instead of http://\n";

/// The whole answer to plain HTTP on a TLS port.
fn plain_http_answer() -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{PLAIN_HTTP_MESSAGE}",
        PLAIN_HTTP_MESSAGE.len()
    )
}

/// Runs the TLS handshake on an accepted connection, within
/// [`HANDSHAKE_TIMEOUT`]. `None` when the client failed it, went silent, or
/// spoke plain HTTP (which gets a `400` first); the reason is logged at
/// debug level, since a bad client is not the server's problem.
pub async fn accept(acceptor: &TlsAcceptor, mut tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
    let peer = tcp.peer_addr().ok();
    let handshake = async {
        if !starts_with_tls(&tcp).await? {
            if looks_like_http1(&tcp).await {
                answer_plain_http(&mut tcp).await?;
            }
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the client did not start with a TLS handshake",
            ));
        }
        acceptor.accept(tcp).await
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(peer = ?peer, error = %error, "A TLS handshake failed.");
            None
        }
        Err(_) => {
            tracing::debug!(peer = ?peer, "A client did not finish the TLS handshake in time.");
            None
        }
    }
}

/// Answers a plain HTTP request with [`plain_http_answer`]. The request is
/// read first and the socket drained after: closing a socket with unread
/// bytes makes the kernel send a reset, and the client would see that
/// instead of the answer.
async fn answer_plain_http(tcp: &mut TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 4096];
    while let Ok(n) = tcp.try_read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    tcp.write_all(plain_http_answer().as_bytes()).await?;
    tcp.shutdown().await?;
    let drain = async { while tcp.read(&mut sink).await.is_ok_and(|n| n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

/// Whether the first byte is a TLS handshake record (without consuming it).
async fn starts_with_tls(tcp: &TcpStream) -> io::Result<bool> {
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first).await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(first[0] == TLS_HANDSHAKE_RECORD)
}

/// Whether the bytes waiting look like an HTTP/1.x request line (a method
/// in capitals, then a space), and not HTTP/2's `PRI *` preface, which an
/// h2c client would not understand a text answer to.
async fn looks_like_http1(tcp: &TcpStream) -> bool {
    let mut head = [0u8; 8];
    // The request line may arrive in pieces; a few peeks, briefly.
    for _ in 0..10 {
        let Ok(n) = tcp.peek(&mut head).await else {
            return false;
        };
        if n == head.len() || head[..n].contains(&b' ') {
            let head = &head[..n];
            let method_len = head.iter().take_while(|b| b.is_ascii_uppercase()).count();
            return method_len > 0
                && head.get(method_len) == Some(&b' ')
                && !head.starts_with(b"PRI ");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
