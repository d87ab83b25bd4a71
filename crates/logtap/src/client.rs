//! Connecting to a server: the address and token options every client
//! subcommand shares, the bearer token, and gRPC errors as sentences.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, Context};
use logtap_proto::v1::log_service_client::LogServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// Where the server is and how to prove who we are.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's address, as http://HOST:PORT.
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
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|error| anyhow!("{url:?} is not a server address: {error}"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("could not connect to {url}"))?;
    Ok(
        LogServiceClient::with_interceptor(channel, BearerToken(token))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}

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
            write!(f, "the server answered {:?}", self.0.code())
        } else {
            f.write_str(message)
        }
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
    }

    #[test]
    fn rpc_errors_read_as_the_servers_message() {
        let error = RpcError(Status::invalid_argument("bad pattern"));
        assert_eq!(error.to_string(), "bad pattern");
        let error = RpcError(Status::unavailable(""));
        assert_eq!(error.to_string(), "the server answered Unavailable");
    }
}
