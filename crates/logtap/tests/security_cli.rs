//! The real `logtap` binary with TLS and tokens: `serve --tls-cert/--tls-key
//! --auth-token-file`, and `push`/`logs` with `--server https://…`,
//! `--ca-cert`, `--token` and `$LOGTAP_TOKEN`. Certificates are made at test
//! time with rcgen.

use std::path::{Path, PathBuf};
use std::process::{Child, Output};

mod common;

const READ: &str = "cli-read-token-0123456789abcdef";
const WRITE: &str = "cli-write-token-0123456789abcdef";

/// A test CA and a server certificate it signed, as files in `dir`.
struct Pki {
    /// The CA certificate clients are told to trust.
    ca: PathBuf,
    /// The server's certificate.
    cert: PathBuf,
    /// The server's private key.
    key: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "logtap CLI test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let pki = Pki {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        };
        std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }
}

/// A `logtap serve` child, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts `logtap serve --listen 127.0.0.1:0 --data DIR EXTRA...` and
    /// reads the address it took from the line it logs.
    fn start(data: &Path, extra: &[&str]) -> Server {
        let (child, url) = common::start_serve(data, extra);
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `logtap ARGS` to the end with `env` set (and the client variables
/// otherwise cleared), `stdin` as its standard input.
fn logtap(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    common::run(args, env, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The messages of `logs --output json`.
fn messages(output: &Output) -> Vec<String> {
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            value["message"].as_str().unwrap().to_string()
        })
        .collect()
}

fn write_tokens(dir: &Path) -> PathBuf {
    let path = dir.join("tokens.txt");
    std::fs::write(&path, format!("# cli\n{READ} read\n{WRITE} write\n")).unwrap();
    path
}

#[test]
fn push_and_logs_over_https_with_a_ca_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
        ],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let ca = pki.ca.to_str().unwrap();

    let output = logtap(
        &["push", "--server", &server.url, "--ca-cert", ca],
        &[],
        "ERROR over tls\nINFO second line\n",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("stored 2 entries"),
        "{}",
        text(&output.stdout)
    );

    // $LOGTAP_CA_CERT and $LOGTAP_SERVER work as the flags do.
    let output = logtap(
        &["logs", "--output", "json"],
        &[("LOGTAP_SERVER", &server.url), ("LOGTAP_CA_CERT", ca)],
        "",
    );
    assert_eq!(messages(&output), ["ERROR over tls", "INFO second line"]);

    // Without trusting the CA, the connection is refused, with a reason.
    let output = logtap(&["logs", "--server", &server.url], &[], "");
    assert!(!output.status.success());
    let error = text(&output.stderr);
    assert!(error.contains("could not connect to https://"), "{error}");
    assert!(error.contains("not trusted"), "{error}");
    assert!(error.contains("--ca-cert"), "{error}");

    // A CA file that is not one says so.
    let output = logtap(
        &[
            "logs",
            "--server",
            &server.url,
            "--ca-cert",
            pki.key.to_str().unwrap(),
        ],
        &[],
        "",
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("holds no PEM certificate"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn tokens_from_the_flag_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write_tokens(dir.path());
    let server = Server::start(
        &dir.path().join("data"),
        &["--auth-token-file", tokens.to_str().unwrap()],
    );

    let output = logtap(
        &["push", "--server", &server.url, "--token", WRITE],
        &[],
        "ERROR with a token\n",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));

    let output = logtap(
        &["logs", "--server", &server.url, "--output", "json"],
        &[("LOGTAP_TOKEN", READ)],
        "",
    );
    assert_eq!(messages(&output), ["ERROR with a token"]);
}

#[test]
fn a_missing_or_insufficient_token_is_a_clear_sentence_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write_tokens(dir.path());
    let server = Server::start(
        &dir.path().join("data"),
        &["--auth-token-file", tokens.to_str().unwrap()],
    );

    let output = logtap(&["logs", "--server", &server.url], &[], "");
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(error.starts_with("error: "), "{error}");
    assert!(error.contains("requires a bearer token"), "{error}");
    assert!(error.contains("--token"), "{error}");
    assert_eq!(error.trim().lines().count(), 1, "one sentence: {error}");

    let output = logtap(&["push", "--server", &server.url], &[], "INFO nope\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("requires a bearer token"));

    let output = logtap(
        &["logs", "--server", &server.url, "--token", "not-a-token"],
        &[],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("not valid"),
        "{}",
        text(&output.stderr)
    );

    let output = logtap(
        &["push", "--server", &server.url, "--token", READ],
        &[],
        "INFO a reader pushing\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(error.contains("may not push"), "{error}");
    assert!(!error.contains(READ), "the token is never printed: {error}");
}

/// Runs `logtap serve ARGS` expecting it to refuse to start.
fn serve_refuses(data: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = logtap(&args, &[], "");
    assert_eq!(
        output.status.code(),
        Some(1),
        "serve should refuse to start"
    );
    text(&output.stderr)
}

#[test]
fn serve_refuses_a_malformed_token_file_or_certificate_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, format!("{READ} read\n{WRITE}\n")).unwrap();
    let error = serve_refuses(&data, &["--auth-token-file", tokens.to_str().unwrap()]);
    assert!(error.contains("tokens.txt, line 2"), "{error}");
    assert!(
        !error.contains(WRITE),
        "the token is never printed: {error}"
    );

    let missing = dir.path().join("missing.crt");
    let error = serve_refuses(
        &data,
        &[
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            missing.to_str().unwrap(),
        ],
    );
    assert!(
        error.contains("could not read the TLS certificate file"),
        "{error}"
    );
    assert!(
        !data.exists(),
        "nothing is created before the settings are checked"
    );

    // Half a TLS configuration is a usage error.
    let output = logtap(&["serve", "--tls-cert", "x.crt"], &[], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--tls-key"));
}
