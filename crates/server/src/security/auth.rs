//! Bearer tokens: the token file, what each request needs, and the
//! middleware that checks every request on every transport.
//!
//! # The token file (`--auth-token-file`)
//!
//! One token a line, `TOKEN SCOPE`, fields separated by blanks. Blank lines
//! and lines whose first non-blank character is `#` are ignored (so a token
//! cannot start with `#`). A token is visible ASCII (it travels in an
//! `authorization` header). SCOPE is `read`, `write`, or `read,write`:
//!
//! - `read` reads: GetLogs and StreamLogs (logtap.v1 and the seed's
//!   service), `GET /api/v1/*` (NDJSON, poll, SSE), `/metrics` unless
//!   `--metrics-public`.
//! - `write` pushes, and only pushes: gRPC `Push`, and any non-GET request
//!   under `/api/v1/` (`POST /api/v1/push`). It does **not** imply read, so
//!   the token a fleet of log shippers carries cannot read anyone's logs
//!   back when one host leaks it. A client that must do both gets
//!   `read,write`.
//!
//! A malformed line stops the server at startup with the file and line
//! number; the message never repeats the line, since it may hold a token.
//!
//! # What each request needs (`access.rs`)
//!
//! Each protocol declares its routes and what they need; the check looks
//! the request up in the assembled table. Open: `/healthz`, the gRPC health
//! and reflection services (they tell nothing about the logs), the viewer's
//! page and assets (`/`, `/index.html`, `/favicon.ico`, `/assets/*`: the
//! page holds no data; its API calls carry the token), and `/metrics` with
//! `--metrics-public`. A request on no declared route needs a valid token
//! like any other (401 without one, so unknown paths are not told from
//! known ones), and is then answered as an unknown route (404, or
//! UNIMPLEMENTED for gRPC) without reaching a handler: a route mounted
//! without a declaration is closed.
//!
//! # Where the token comes from
//!
//! `authorization: Bearer TOKEN` on every transport (gRPC, gRPC-Web, HTTP).
//! Log shippers configure credentials in their own ways, so the same header
//! may also carry the token as:
//!
//! - `Basic base64(USER:TOKEN)`: HTTP Basic with the token as the password
//!   and any user name, as Promtail, Vector, Fluent Bit and Filebeat
//!   send a user and password;
//! - `ApiKey TOKEN`, or `ApiKey base64(ID:TOKEN)` as Elasticsearch clients
//!   encode an API key's id and key (Filebeat's `api_key: "ID:TOKEN"`, the
//!   Python client's `api_key=("ID", "TOKEN")`): the raw value is tried
//!   first, then the part after the first `:` of what it decodes to.
//!
//! A 401 still challenges with `Bearer` only: a `Basic` challenge would
//! make browsers ask for a password in a dialog of their own.
//!
//! A browser's `EventSource` cannot set headers, so `GET /api/v1/sse` and
//! `GET /api/v1/poll` also take `?access_token=TOKEN` (RFC 6750 §2.3). The
//! parameter is removed from every request's URI before routing, so no
//! handler or log line ever sees it; elsewhere it is not honoured, because
//! URLs end up in proxy logs and browser history.
//!
//! # Checking a token
//!
//! The presented token and every configured token are compared as SHA-256
//! digests with `subtle`'s constant-time equality, against every token
//! without stopping at a match: neither the position of the match, nor how
//! many leading bytes were right, nor the configured tokens' lengths show in
//! the time taken. Tokens are never logged.

use crate::error::{Refused, TokenFileError};
use crate::security::access::{Access, Routes};
use crate::stream::metadata::RequestId;
use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Uri};
use ring::digest::{digest, SHA256};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use subtle::{Choice, ConstantTimeEq};

/// Tokens shorter than this draw a warning at startup: easy to guess.
const SHORT_TOKEN: usize = 16;

/// The query parameter that carries a token where headers cannot.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grant {
    /// May read entries (and `/metrics` when it is not public).
    pub read: bool,
    /// May push entries.
    pub write: bool,
}

impl Grant {
    /// The scope as written in the token file.
    fn name(self) -> &'static str {
        match (self.read, self.write) {
            (true, true) => "read,write",
            (true, false) => "read",
            (false, true) => "write",
            (false, false) => "none",
        }
    }
}

/// Whether `grant` allows what `need` asks for.
fn allows(need: Access, grant: Grant) -> bool {
    match need {
        Access::Open => true,
        Access::Read => grant.read,
        Access::Write => grant.write,
    }
}

/// One line of the token file, kept as the digest of its token.
struct TokenEntry {
    /// SHA-256 of the token; the token itself is not kept.
    digest: [u8; 32],
    /// What the token may do.
    grant: Grant,
    /// The line it came from, for warnings.
    line: usize,
    /// Whether the token is shorter than [`SHORT_TOKEN`].
    short: bool,
}

/// The tokens the server accepts. Its `Debug` form shows how many there are,
/// never the tokens.
pub struct TokenSet {
    /// Every token, in file order.
    entries: Vec<TokenEntry>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

/// SHA-256 of a token, the form in which tokens are compared.
fn token_digest(token: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token).as_ref());
    out
}

/// A scope field: `read`, `write`, or both separated by a comma.
fn parse_scope(field: &str) -> Option<Grant> {
    let mut grant = Grant::default();
    for part in field.split(',') {
        match part.trim().to_ascii_lowercase().as_str() {
            "read" => grant.read = true,
            "write" => grant.write = true,
            _ => return None,
        }
    }
    Some(grant)
}

impl TokenSet {
    /// Reads and parses the token file at `path`, logging a warning for
    /// short tokens and for a file other users can read.
    pub fn load(path: &Path) -> Result<TokenSet, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| TokenFileError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let tokens = TokenSet::parse(&text, path)?;
        for entry in tokens.entries.iter().filter(|entry| entry.short) {
            tracing::warn!(
                file = %path.display(),
                line = entry.line,
                "A token is shorter than {SHORT_TOKEN} characters and easy to guess; use a long random one (openssl rand -hex 32)."
            );
        }
        warn_if_others_can_read(path);
        Ok(tokens)
    }

    /// Parses the token file's text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<TokenSet, TokenFileError> {
        let line_error = |line: usize, reason: &str| TokenFileError::Line {
            path: path.to_path_buf(),
            line,
            reason: reason.to_string(),
        };
        let mut entries: Vec<TokenEntry> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [token, scope] = fields[..] else {
                return Err(line_error(
                    line,
                    &format!(
                        "expected `TOKEN SCOPE` (SCOPE is read, write or read,write), found {} field{}",
                        fields.len(),
                        if fields.len() == 1 { "" } else { "s" }
                    ),
                ));
            };
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(line_error(
                    line,
                    "the token has characters other than visible ASCII, which cannot travel in an `authorization` header",
                ));
            }
            let grant = parse_scope(scope).ok_or_else(|| {
                line_error(
                    line,
                    "the second field must be the scope: read, write or read,write",
                )
            })?;
            let token_digest = token_digest(token.as_bytes());
            // Startup only: a plain comparison is fine here.
            if let Some(first) = entries.iter().find(|entry| entry.digest == token_digest) {
                return Err(line_error(
                    line,
                    &format!(
                        "the same token is already on line {}; give it one line with scope read,write",
                        first.line
                    ),
                ));
            }
            entries.push(TokenEntry {
                digest: token_digest,
                grant,
                line,
                short: token.len() < SHORT_TOKEN,
            });
        }
        if entries.is_empty() {
            return Err(TokenFileError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(TokenSet { entries })
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// What `token` may do, or `None` when it is not one of ours. Takes the
    /// same time whichever token matches, or none.
    pub fn grant_for(&self, token: &str) -> Option<Grant> {
        let presented = token_digest(token.as_bytes());
        let mut found = Choice::from(0);
        let mut read = Choice::from(0);
        let mut write = Choice::from(0);
        for entry in &self.entries {
            let equal = entry.digest.ct_eq(&presented);
            found |= equal;
            read |= equal & Choice::from(u8::from(entry.grant.read));
            write |= equal & Choice::from(u8::from(entry.grant.write));
        }
        bool::from(found).then(|| Grant {
            read: read.into(),
            write: write.into(),
        })
    }
}

/// A token file others can read is a token file others can use.
#[cfg(unix)]
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:o}"),
                "The token file can be read by other users; chmod 600 it."
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_path: &Path) {}

/// Decodes `%XX` escapes; `+` stays `+` (tokens never hold spaces, and
/// base64 tokens do hold `+`). `None` for a broken escape or non-UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Removes every `access_token` parameter from `uri`, returning the URI
/// without it and the last value found (decoded).
fn strip_query_token(uri: &Uri) -> Option<(Uri, Option<String>)> {
    let query = uri.query()?;
    let mut token = None;
    let mut kept: Vec<&str> = Vec::new();
    let mut found = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == ACCESS_TOKEN_PARAM {
            found = true;
            token = percent_decode(value);
        } else {
            kept.push(pair);
        }
    }
    if !found {
        return None;
    }
    let path = uri.path();
    let path_and_query = if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    let stripped = Uri::from_parts(parts).ok()?;
    Some((stripped, token))
}

/// The credentials a request carries.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    /// None at all.
    Nothing,
    /// An `authorization` header that is none of the accepted forms.
    Malformed,
    /// A token, and for an `ApiKey` that decodes to `ID:KEY`, the key as a
    /// second candidate.
    Token(String, Option<String>),
}

/// Base64 as HTTP Basic and API keys use it: the standard alphabet,
/// padding optional (some clients leave it out).
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The part after the first `:` of `encoded` decoded from base64, when it
/// is UTF-8 and that part is not empty: the password of HTTP Basic, the
/// key of an Elasticsearch API key.
fn after_colon(encoded: &str) -> Option<String> {
    use base64::Engine;
    let decoded = String::from_utf8(BASE64.decode(encoded).ok()?).ok()?;
    let (_, secret) = decoded.split_once(':')?;
    (!secret.is_empty()).then(|| secret.to_string())
}

/// The token in an `authorization` header value: `Bearer TOKEN`, `Basic`
/// with the token as password, or `ApiKey` (see the module's doc).
fn credentials(value: &HeaderValue) -> Presented {
    let Ok(text) = value.to_str() else {
        return Presented::Malformed;
    };
    let Some((scheme, token)) = text.trim().split_once(' ') else {
        return Presented::Malformed;
    };
    let token = token.trim();
    if token.is_empty() {
        return Presented::Malformed;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Presented::Token(token.to_string(), None)
    } else if scheme.eq_ignore_ascii_case("basic") {
        match after_colon(token) {
            Some(password) => Presented::Token(password, None),
            None => Presented::Malformed,
        }
    } else if scheme.eq_ignore_ascii_case("apikey") {
        Presented::Token(token.to_string(), after_colon(token))
    } else {
        Presented::Malformed
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No credentials at all.
    Missing,
    /// An `authorization` header that is not `Bearer TOKEN`.
    Malformed,
    /// A token that is not in the token file.
    Invalid,
    /// A valid token without the scope the request needs.
    Scope {
        /// What the request needed.
        need: Access,
        /// What the token may do.
        grant: Grant,
    },
}

impl Refusal {
    /// A sentence the client can act on.
    fn message(self) -> String {
        match self {
            Refusal::Missing => {
                "this server requires a bearer token: send `authorization: Bearer TOKEN` (HTTP Basic with the token as password, or `ApiKey TOKEN`, also work)".into()
            }
            Refusal::Malformed => "the authorization header is not `Bearer TOKEN`, HTTP Basic with the token as password, or `ApiKey TOKEN`".into(),
            Refusal::Invalid => "the bearer token is not valid for this server".into(),
            Refusal::Scope { need, grant } => {
                let (verb, scope) = match need {
                    Access::Write => ("push logs", "write"),
                    _ => ("read logs", "read"),
                };
                format!(
                    "this token may not {verb} (its scope is {}); that needs a token with scope {scope}",
                    grant.name()
                )
            }
        }
    }

    /// Which refusal it is: unauthenticated without a valid token,
    /// permission denied with one that lacks the scope (`error.rs` says
    /// what each is on the wire).
    fn kind(self) -> Refused {
        match self {
            Refusal::Scope { .. } => Refused::PermissionDenied,
            _ => Refused::Unauthenticated,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3).
    fn challenge(self) -> &'static str {
        match self {
            Refusal::Missing => r#"Bearer realm="logtap""#,
            Refusal::Malformed => r#"Bearer realm="logtap", error="invalid_request""#,
            Refusal::Invalid => r#"Bearer realm="logtap", error="invalid_token""#,
            Refusal::Scope {
                need: Access::Write,
                ..
            } => r#"Bearer realm="logtap", error="insufficient_scope", scope="write""#,
            Refusal::Scope { .. } => {
                r#"Bearer realm="logtap", error="insufficient_scope", scope="read""#
            }
        }
    }

    /// Short name for the debug log.
    fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "no token",
            Refusal::Malformed => "malformed authorization header",
            Refusal::Invalid => "unknown token",
            Refusal::Scope { .. } => "insufficient scope",
        }
    }
}

/// Checks every request; shared by all connections.
#[derive(Clone)]
pub struct Guard {
    /// The accepted tokens, swapped whole when the server reloads its
    /// configuration: a request checks against one table or the other,
    /// never a mix.
    tokens: Arc<ArcSwap<TokenSet>>,
    /// What each declared route needs.
    routes: Arc<Routes>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("tokens", &self.tokens.load().len())
            .field("routes", &self.routes.iter().count())
            .finish()
    }
}

impl Guard {
    /// A guard accepting `tokens` on the declared `routes`.
    pub fn new(tokens: TokenSet, routes: Routes) -> Guard {
        Guard {
            tokens: Arc::new(ArcSwap::from_pointee(tokens)),
            routes: Arc::new(routes),
        }
    }

    /// The table the guard checks against, for replacing it while the
    /// server runs.
    pub fn tokens(&self) -> Arc<ArcSwap<TokenSet>> {
        Arc::clone(&self.tokens)
    }
}

/// `router` behind the guard; unchanged when tokens are off.
pub fn protect(router: Router, guard: Option<Guard>) -> Router {
    match guard {
        Some(guard) => router.layer(axum::middleware::from_fn_with_state(guard, check)),
        None => router.layer(axum::middleware::from_fn(strip_only)),
    }
}

/// Without tokens, `access_token` still never reaches a handler or a log.
async fn strip_only(mut request: Request, next: Next) -> Response {
    if let Some((uri, _)) = strip_query_token(request.uri()) {
        *request.uri_mut() = uri;
    }
    next.run(request).await
}

/// The middleware: finds the token, decides, and either passes the request
/// on or answers for the handler.
async fn check(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let query_token = match strip_query_token(request.uri()) {
        Some((uri, token)) => {
            *request.uri_mut() = uri;
            token
        }
        None => None,
    };
    let route = guard
        .routes
        .lookup(request.method(), request.uri().path())
        .copied();
    if route.is_some_and(|route| route.access == Access::Open) {
        return next.run(request).await;
    }
    let presented = match request.headers().get(AUTHORIZATION) {
        Some(value) => credentials(value),
        None => match query_token {
            Some(token) if route.is_some_and(|route| route.query_token) => {
                Presented::Token(token, None)
            }
            _ => Presented::Nothing,
        },
    };
    let refusal = match presented {
        Presented::Nothing => Refusal::Missing,
        Presented::Malformed => Refusal::Malformed,
        // Each candidate is checked in constant time; whether the second
        // was tried tells only that the first (the raw API key) was wrong.
        Presented::Token(token, key) => match (
            {
                let tokens = guard.tokens.load();
                tokens
                    .grant_for(&token)
                    .or_else(|| key.and_then(|key| tokens.grant_for(&key)))
            },
            route,
        ) {
            (None, _) => Refusal::Invalid,
            (Some(_), None) => return undeclared(&request),
            (Some(grant), Some(route)) if allows(route.access, grant) => {
                request.extensions_mut().insert(grant);
                return next.run(request).await;
            }
            (Some(grant), Some(route)) => Refusal::Scope {
                need: route.access,
                grant,
            },
        },
    };
    refuse(&request, refusal)
}

/// The answer to a request with a valid token on a route no protocol
/// declared: the unknown-route answer, so the handler (if one was mounted
/// without its declaration) is never reached.
fn undeclared(request: &Request) -> Response {
    tracing::debug!(
        path = request.uri().path(),
        "A request on a route with no declared access was refused."
    );
    crate::error::unknown_route(request.headers(), request.uri().path())
}

/// The answer to a refused request: a gRPC status for gRPC and gRPC-Web
/// (tonic-web has translated the latter to gRPC by now), else HTTP 401/403
/// with a `WWW-Authenticate` challenge and a JSON body.
fn refuse(request: &Request, refusal: Refusal) -> Response {
    let request_id = RequestId::from_headers(request.headers());
    // The path only: the query could hold anything.
    tracing::debug!(
        request_id = %request_id,
        path = request.uri().path(),
        reason = refusal.reason(),
        "A request was refused."
    );
    let is_grpc = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    if is_grpc {
        let mut status = refusal.kind().to_status(refusal.message());
        request_id.insert_into(status.metadata_mut());
        return status.into_http::<axum::body::Body>();
    }
    let mut response = refusal
        .kind()
        .to_http(refusal.challenge(), &json_string(&refusal.message()));
    request_id.insert_into_headers(response.headers_mut());
    response
}

/// `text` as a JSON string literal, with the one escaper every JSON body
/// uses (`logtap_core::json`).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    logtap_core::json::write_string(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TokenSet, TokenFileError> {
        TokenSet::parse(text, Path::new("tokens.txt"))
    }

    #[test]
    fn the_file_format_with_comments_blank_lines_and_scopes() {
        let tokens = parse(
            "# shippers\n\n  reader-0123456789abcdef read\nwriter-0123456789abcdef\twrite  \n\
             both-0123456789abcdef READ,Write\n   # indented comment\n",
        )
        .unwrap();
        assert_eq!(tokens.len(), 3);
        let read = Grant {
            read: true,
            write: false,
        };
        let write = Grant {
            read: false,
            write: true,
        };
        let both = Grant {
            read: true,
            write: true,
        };
        assert_eq!(tokens.grant_for("reader-0123456789abcdef"), Some(read));
        assert_eq!(tokens.grant_for("writer-0123456789abcdef"), Some(write));
        assert_eq!(tokens.grant_for("both-0123456789abcdef"), Some(both));
        assert_eq!(tokens.grant_for("reader-0123456789abcde"), None);
        assert_eq!(tokens.grant_for(""), None);
        assert!(!format!("{tokens:?}").contains("reader"));
    }

    #[test]
    fn malformed_lines_name_the_line_and_never_the_token() {
        let cases = [
            ("ok-token-0123456789 read\nsecret-one\n", 2, "found 1 field"),
            ("secret-two read extra\n", 1, "found 3 fields"),
            ("\n\nsecret-three admin\n", 3, "read, write or read,write"),
            ("read secret-four\n", 1, "read, write or read,write"),
            ("secret-five read,\n", 1, "read, write or read,write"),
            ("sécret read\n", 1, "visible ASCII"),
            (
                "secret-six read\n#\nsecret-six write\n",
                3,
                "already on line 1",
            ),
        ];
        for (text, line, reason) in cases {
            let error = parse(text).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(&format!("tokens.txt, line {line}:")),
                "{message}"
            );
            assert!(message.contains(reason), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
        let empty = parse("# nothing\n\n").unwrap_err().to_string();
        assert!(empty.contains("holds no token"), "{empty}");
    }

    #[test]
    fn the_query_token_is_removed_and_decoded() {
        let uri: Uri = "/api/v1/sse?level=error&access_token=a%2Bb%3D&after=3"
            .parse()
            .unwrap();
        let (stripped, token) = strip_query_token(&uri).unwrap();
        assert_eq!(stripped, "/api/v1/sse?level=error&after=3");
        assert_eq!(token.as_deref(), Some("a+b="));
        let uri: Uri = "/api/v1/poll?access_token=t".parse().unwrap();
        let (stripped, token) = strip_query_token(&uri).unwrap();
        assert_eq!(stripped, "/api/v1/poll");
        assert_eq!(token.as_deref(), Some("t"));
        assert!(strip_query_token(&"/api/v1/poll?after=1".parse().unwrap()).is_none());
    }

    #[test]
    fn bearer_basic_and_api_key_headers() {
        use base64::Engine;
        let token = |text: &str| credentials(&HeaderValue::from_str(text).unwrap());
        let plain = |text: &str| Presented::Token(text.into(), None);
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(token("Bearer abc"), plain("abc"));
        assert_eq!(token("bearer   abc "), plain("abc"));
        assert_eq!(token("Bearer "), Presented::Malformed);
        assert_eq!(token("abc"), Presented::Malformed);
        assert_eq!(token("Digest abc"), Presented::Malformed);
        // Basic: the password, whatever the user; padding optional.
        assert_eq!(
            token(&format!("Basic {}", encode("logtap:s3cr:et"))),
            plain("s3cr:et")
        );
        assert_eq!(token(&format!("basic {}", encode(":tok"))), plain("tok"));
        assert_eq!(token("Basic dTp0b2s"), plain("tok"));
        for bad in [
            "Basic abc",
            "Basic !!!!",
            &format!("Basic {}", encode("user:")),
        ] {
            assert_eq!(token(bad), Presented::Malformed, "{bad}");
        }
        // ApiKey: the raw value, and the key of id:key.
        let encoded = encode("some-id:the-key");
        assert_eq!(
            token(&format!("ApiKey {encoded}")),
            Presented::Token(encoded.clone(), Some("the-key".into()))
        );
        assert_eq!(token("ApiKey raw-token"), plain("raw-token"));
    }

    #[test]
    fn json_bodies_are_escaped() {
        assert_eq!(json_string("a \"b\" \\ \n"), "\"a \\\"b\\\" \\\\ \\n\"");
    }
}
