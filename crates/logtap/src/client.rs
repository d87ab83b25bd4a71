//! Connecting to a server: the address and token options every client
//! subcommand shares, the bearer token, and gRPC errors as sentences.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use logtap_proto::v1::log_service_client::LogServiceClient;
use std::path::{Path, PathBuf};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// Where the server is and how to prove who we are.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's address, as http://HOST:PORT, or https://HOST:PORT for
    /// a server with TLS.
    #[arg(
        long,
        env = "LOGTAP_SERVER",
        default_value = DEFAULT_SERVER,
        value_name = "URL"
    )]
    pub server: String,

    /// Bearer token sent as `authorization: Bearer TOKEN`.
    #[arg(
        long,
        env = "LOGTAP_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Also trust this PEM CA certificate for https:// servers (a private
    /// CA, or a self-signed server certificate). The system's roots are
    /// trusted either way.
    #[arg(long, env = "LOGTAP_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// A connected client that adds the token to every call.
pub type Client = LogServiceClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer …` to each request when there is a token.
#[derive(Debug, Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Entries can be large; the default 4 MiB would cut a stream short on one
/// big entry, which the server's own limits already bound.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Connects at once, so an unreachable server is reported before any work
/// (reading files, say) is done for nothing.
pub async fn connect(args: &ServerArgs) -> anyhow::Result<Client> {
    let url = server_url(&args.server);
    let token = match &args.token {
        Some(token) => Some(
            format!("Bearer {}", token.trim())
                .parse::<MetadataValue<Ascii>>()
                .map_err(|_| anyhow!("the token has characters that cannot go in a header"))?,
        ),
        None => None,
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|error| anyhow!("{url:?} is not a server address: {error}"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if is_https(&url) {
        endpoint = endpoint
            .tls_config(tls_config(args.ca_cert.as_deref())?)
            .map_err(|error| anyhow!("could not set up TLS for {url}: {error}"))?;
    }
    let channel = endpoint.connect().await.map_err(|error| {
        let error = anyhow::Error::new(error).context(format!("could not connect to {url}"));
        // rustls says "invalid peer certificate: UnknownIssuer"; say what
        // fixes it.
        if format!("{error:#}").contains("invalid peer certificate") {
            error.context(
                "the server's certificate is not trusted: for a private CA or a self-signed certificate, pass it with --ca-cert FILE or $LOGTAP_CA_CERT",
            )
        } else {
            error
        }
    })?;
    Ok(
        LogServiceClient::with_interceptor(channel, BearerToken(token))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}

/// Whether `url` asks for TLS.
fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// TLS for an https:// server: the system's roots and the Mozilla roots
/// (for machines without a CA store), plus `--ca-cert` when given.
fn tls_config(ca_cert: Option<&Path>) -> anyhow::Result<ClientTlsConfig> {
    let mut config = ClientTlsConfig::new().with_enabled_roots();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("could not read the CA certificate {}", path.display()))?;
        // tonic would only say "invalid certificate" at connect time.
        if !pem
            .windows(PEM_CERTIFICATE.len())
            .any(|window| window == PEM_CERTIFICATE)
        {
            bail!(
                "the CA certificate {} holds no PEM certificate ({})",
                path.display(),
                String::from_utf8_lossy(PEM_CERTIFICATE)
            );
        }
        config = config.ca_certificate(Certificate::from_pem(pem));
    }
    Ok(config)
}

/// How a PEM certificate starts.
const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// The address every client uses when none is given.
const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// `HOST:PORT` without a scheme means plain HTTP: people type it that way.
/// An empty address (`LOGTAP_SERVER=` set but empty) means the default.
fn server_url(server: &str) -> String {
    let server = server.trim();
    if server.is_empty() {
        DEFAULT_SERVER.to_string()
    } else if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    }
}

/// A gRPC error, shown as the server's message; `main` reads its code for
/// the exit code.
#[derive(Debug)]
pub struct RpcError(pub Status);

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.0.message();
        if message.is_empty() {
            write!(f, "the server answered {:?}", self.0.code())?;
        } else {
            f.write_str(message)?;
        }
        // The server's message speaks of headers; say what to do here.
        if self.0.code() == tonic::Code::Unauthenticated {
            f.write_str("; give logtap a token with --token TOKEN or $LOGTAP_TOKEN")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

impl From<Status> for RpcError {
    fn from(status: Status) -> Self {
        RpcError(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_without_a_scheme_are_http() {
        assert_eq!(server_url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(server_url(" https://h:1 "), "https://h:1");
        assert_eq!(server_url(""), DEFAULT_SERVER);
        assert!(is_https("HTTPS://h:1"));
        assert!(!is_https("http://h:1"));
    }

    #[test]
    fn rpc_errors_read_as_the_servers_message() {
        let error = RpcError(Status::invalid_argument("bad pattern"));
        assert_eq!(error.to_string(), "bad pattern");
        let error = RpcError(Status::unavailable(""));
        assert_eq!(error.to_string(), "the server answered Unavailable");
        let error = RpcError(Status::unauthenticated("no token"));
        assert!(error.to_string().contains("--token"));
    }
}
