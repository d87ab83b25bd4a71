//! Realistic generated log entries, the data set of issue 18's benchmarks
//! (the same shape as the side-by-side run with VictoriaLogs it reports):
//! messages of about 150 bytes from a few dozen templates, each carrying a
//! random trace id, from 20 services on 200 hosts, mostly info, with one
//! rare token near the end and one service that only the newest entries
//! come from.
//!
//! Every entry is a pure function of its number and the seed, so batches
//! pushed on concurrent calls need no shared generator state, and a check
//! can recompute the one entry it expects (the trace id in the middle, the
//! needle) without having kept anything.

use crate::client;
use crate::server::{ServerProcess, SyncPolicy};
use crate::Ctx;
use anyhow::bail;
use logtap_core::{Level, NewEntry};
use logtap_proto::v1::LogEntry;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The token that occurs in exactly one entry's message.
pub const NEEDLE: &str = "NEEDLE-7f3a9c";

/// A regular expression whose only match is the needle: the token has a
/// literal part to skip with and a variable part to run the regex on.
pub const NEEDLE_REGEX: &str = "NEEDLE-[0-9a-f]{6}";

/// The service that only the last [`RARE_PER_MILLE`] thousandths of the
/// entries come from.
pub const RARE_SERVICE: &str = "rare-svc";

/// The newest thousandth of the entries comes from [`RARE_SERVICE`]
/// (1,000 entries at 1M, 10,000 at 10M): a label filter that matches only
/// there has the rest of the store to skip.
pub const RARE_PER_MILLE: u64 = 1;

/// The seed of every data set: fixed, so runs and machines compare like
/// with like.
pub const SEED: u64 = 0x6c6f_6774_6170_3138;

/// The 20 services of the data set; every entry but the rare ones carries
/// one as its `service` label.
pub const SERVICES: [&str; 20] = [
    "api-gateway",
    "auth",
    "users",
    "orders",
    "payments",
    "inventory",
    "search",
    "cart",
    "checkout",
    "shipping",
    "notifications",
    "email",
    "recommendations",
    "catalog",
    "pricing",
    "reviews",
    "billing",
    "analytics",
    "scheduler",
    "media",
];

/// Hosts per service: each service runs on 10 hosts of its own, so the
/// `host` label takes 200 values, each always beside the same service, as
/// on a cluster where a host runs one deployment.
pub const HOSTS_PER_SERVICE: u64 = 10;

/// Timestamps start here (2024-01-01T00:00:00Z, Unix epoch nanoseconds):
/// history, fixed, so no run depends on when it ran.
pub const BASE_TIMESTAMP: i64 = 1_704_067_200_000_000_000;

/// Entries are this far apart on average (3 ms); each gets a jitter of up
/// to one step on top, so gaps vary between 0 and 6 ms and time still
/// never goes backwards.
pub const STEP_NANOS: i64 = 3_000_000;

/// One in this many entries is an error (0.2%): rare enough that "show
/// errors" has most of the store to skip, common enough that a few hundred
/// blocks hold one, as in production logs.
pub const ERROR_ONE_IN: u64 = 500;

/// Per ten thousand entries: warnings (3%) and debug lines (12%); the rest
/// is info.
const WARN_PER_10K: u64 = 300;
const DEBUG_PER_10K: u64 = 1_200;

/// The URL paths of access lines and upstream calls.
const PATHS: [&str; 12] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/api/v2/search",
    "/api/v1/payments/authorize",
    "/api/v1/catalog/products",
    "/api/v1/inventory/reserve",
    "/healthz",
    "/api/v1/sessions",
    "/api/v2/recommendations",
    "/static/js/app.bundle.js",
    "/api/v1/shipping/quote",
];

const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const TABLES: [&str; 8] = [
    "users",
    "orders",
    "order_items",
    "payments",
    "sessions",
    "products",
    "inventory",
    "audit_log",
];
const TOPICS: [&str; 5] = [
    "orders.created",
    "payments.settled",
    "inventory.changed",
    "user.events",
    "email.outbox",
];
const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "us-west-2", "ap-south-1"];

/// A small, fast pseudo-random generator (xorshift64*), seeded per entry
/// through splitmix64 so that neighbouring entry numbers give unrelated
/// streams.
struct Rng(u64);

impl Rng {
    fn for_entry(seed: u64, seq: u64) -> Rng {
        let mut z = seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // xorshift must not start at 0.
        Rng(z | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One generated entry, before it takes a wire or store form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub timestamp: i64,
    pub level: Level,
    pub message: String,
    pub service: &'static str,
    pub host: String,
    pub trace_id: String,
}

impl Generated {
    /// The labels, sorted by name: the server's one normal form, so what
    /// the store holds is the same whichever way the entry came in. The
    /// trace id is in the message only, as in the data set (an
    /// app's plain log line, not an OpenTelemetry record).
    pub fn labels(&self) -> Vec<(String, String)> {
        vec![
            ("host".to_string(), self.host.clone()),
            ("service".to_string(), self.service.to_string()),
        ]
    }

    /// The message as an app that logs JSON writes it: the text under
    /// `msg`, each of its `key=value` fields (values without quotes or
    /// spaces) under its own key, and the trace id.
    pub fn json_message(&self) -> String {
        let mut object = serde_json::Map::new();
        object.insert("msg".into(), self.message.clone().into());
        for (key, value) in self
            .message
            .split(' ')
            .filter_map(|word| word.split_once('='))
        {
            let plain = |text: &str| {
                !text.is_empty()
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-:".contains(&b))
            };
            if plain(key) && plain(value) {
                object.insert(key.into(), value.into());
            }
        }
        object.insert("trace_id".into(), self.trace_id.clone().into());
        serde_json::Value::Object(object).to_string()
    }

    /// The entry as a Push carries it.
    pub fn into_proto(self) -> LogEntry {
        LogEntry {
            labels: self.labels().into_iter().collect(),
            message: self.message,
            timestamp: self.timestamp,
            level: self.level.as_str().to_string(),
            cursor: 0,
        }
    }

    /// The entry as the store library takes it.
    pub fn into_new_entry(self) -> NewEntry {
        NewEntry {
            labels: self.labels(),
            message: self.message,
            timestamp: self.timestamp,
            level: self.level,
        }
    }
}

/// A data set of `n` entries, numbered `0..n`.
#[derive(Debug, Clone, Copy)]
pub struct Realistic {
    n: u64,
    seed: u64,
}

impl Realistic {
    pub fn new(n: u64) -> Realistic {
        Realistic { n, seed: SEED }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    /// The first entry of [`RARE_SERVICE`]; every entry from here on is
    /// one.
    pub fn rare_start(&self) -> u64 {
        self.n - self.rare_count()
    }

    /// How many entries [`RARE_SERVICE`] has.
    pub fn rare_count(&self) -> u64 {
        (self.n * RARE_PER_MILLE / 1000).max(1)
    }

    /// The entry holding [`NEEDLE`]: the last one before the rare service
    /// starts, at 99.9% of the data, so a search that reads everything
    /// pays for nearly the whole store before it finds it.
    pub fn needle_seq(&self) -> u64 {
        self.rare_start().saturating_sub(1)
    }

    /// The entry whose trace id the trace-id search looks for: in the
    /// middle, where neither end of the store helps.
    pub fn middle_seq(&self) -> u64 {
        self.n / 2
    }

    /// The trace id of entry `seq`: 16 hex digits, random. No other hex
    /// run in a message is that long, so grepping it can only match its
    /// own entry (two of 10M random 64-bit ids collide with a chance of
    /// about 3 in a million).
    pub fn trace_id(&self, seq: u64) -> String {
        format!(
            "{:016x}",
            Rng::for_entry(self.seed ^ 0x0074_7261_6365, seq).next()
        )
    }

    /// The level of entry `seq`, drawn on its own stream so that counting
    /// the errors does not make every message.
    pub fn level(&self, seq: u64) -> Level {
        let mut rng = Rng::for_entry(self.seed ^ 0x006c_6576_656c, seq);
        if rng.below(ERROR_ONE_IN) == 0 {
            return Level::Error;
        }
        match rng.below(10_000) {
            r if r < WARN_PER_10K => Level::Warn,
            r if r < WARN_PER_10K + DEBUG_PER_10K => Level::Debug,
            _ => Level::Info,
        }
    }

    /// Entry `seq`.
    pub fn generate(&self, seq: u64) -> Generated {
        let mut rng = Rng::for_entry(self.seed, seq);
        let level = self.level(seq);
        let trace_id = self.trace_id(seq);
        let (service, host) = if seq >= self.rare_start() {
            let host = format!("rare-{:02}", rng.below(4));
            (RARE_SERVICE, host)
        } else {
            let index = rng.below(SERVICES.len() as u64);
            let host = format!(
                "{}-{:02}",
                SERVICES[index as usize],
                rng.below(HOSTS_PER_SERVICE)
            );
            (SERVICES[index as usize], host)
        };
        // The thread a line was logged from, as JVM and Go services
        // prefix it: part of most real lines, and of their length.
        let mut message = format!(
            "[pool-{}-thread-{}] ",
            rng.between(1, 4),
            rng.between(1, 32)
        );
        message.push_str(&template(&mut rng, level));
        if seq == self.needle_seq() {
            message.push_str(" marker=");
            message.push_str(NEEDLE);
        }
        message.push_str(" trace_id=");
        message.push_str(&trace_id);
        let jitter = rng.below(STEP_NANOS as u64) as i64;
        Generated {
            timestamp: BASE_TIMESTAMP + seq as i64 * STEP_NANOS + jitter,
            level,
            message,
            service,
            host,
            trace_id,
        }
    }

    /// Entry `seq` as a Push carries it.
    pub fn entry(&self, seq: u64) -> LogEntry {
        self.generate(seq).into_proto()
    }

    /// Entry `seq` with its message in [`Generated::json_message`]'s form.
    pub fn json_entry(&self, seq: u64) -> LogEntry {
        let generated = self.generate(seq);
        let message = generated.json_message();
        LogEntry {
            message,
            ..generated.into_proto()
        }
    }

    /// How many errors the data set holds.
    pub fn errors(&self) -> u64 {
        (0..self.n)
            .filter(|&seq| self.level(seq) == Level::Error)
            .count() as u64
    }
}

/// A message of `level` without its trace id: 28 templates in all (16
/// info, 5 debug, 4 warn, 3 error), the kinds a web shop's services log,
/// with the numbers, paths, durations and ids that make real lines differ
/// from one another. Weights are equal within a level: access lines are
/// common anyway, as two of the info templates are access lines.
fn template(rng: &mut Rng, level: Level) -> String {
    let user = rng.between(1_000, 999_999);
    let ms = rng.between(1, 1_500);
    let path = rng.pick(&PATHS);
    let table = rng.pick(&TABLES);
    let topic = rng.pick(&TOPICS);
    let region = rng.pick(&REGIONS);
    let ip = format!(
        "10.{}.{}.{}",
        rng.below(16),
        rng.below(256),
        rng.between(1, 254)
    );
    match level {
        Level::Error => match rng.below(3) {
            0 => format!(
                "db query failed: table={table} op=update rows=0 error=\"deadlock detected\" attempt={} of 3 elapsed_ms={ms} user_id={user}",
                rng.between(1, 3)
            ),
            1 => format!(
                "upstream request failed: POST {path} -> 503 Service Unavailable after {ms}ms retries=3 region={region} peer={ip}:8080"
            ),
            _ => format!(
                "unhandled exception in handler {path}: java.lang.NullPointerException at com.shop.{}Controller.handle(line {})",
                rng.pick(&["Order", "User", "Cart", "Payment"]),
                rng.between(40, 900)
            ),
        },
        Level::Warn => match rng.below(4) {
            0 => format!(
                "slow query: SELECT * FROM {table} WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50 took {}ms (threshold 500ms)",
                rng.between(500, 4_000)
            ),
            1 => format!(
                "auth: failed login for user_id={user} from {ip} reason=bad_password attempts={} lockout_in={}",
                rng.between(1, 5),
                rng.between(0, 5)
            ),
            2 => format!(
                "kafka consumer lag on topic={topic} partition={} lag={} messages group=svc-consumers rebalance=false",
                rng.below(32),
                rng.between(1_000, 90_000)
            ),
            _ => format!(
                "retrying request to {path} after timeout ({ms}ms) attempt={} backoff_ms={} region={region}",
                rng.between(1, 4),
                rng.between(50, 800)
            ),
        },
        Level::Debug => match rng.below(5) {
            0 => format!(
                "cache miss key=user:{user}:profile backend=redis-{} ttl=300s fetch_ms={} size={}B",
                rng.below(6),
                rng.between(1, 40),
                rng.between(200, 9_000)
            ),
            1 => format!(
                "db query: SELECT id, status, total FROM {table} WHERE id = {} took {}.{:03}ms rows=1 pool=primary",
                rng.between(1, 50_000_000),
                rng.below(20),
                rng.below(1_000)
            ),
            2 => format!(
                "feature flag evaluated flag=checkout_v{} user_id={user} variant={} rule={} source=remote",
                rng.between(2, 5),
                rng.pick(&["control", "treatment", "holdout"]),
                rng.below(12)
            ),
            3 => format!(
                "grpc call /shop.{}Service/Get started deadline={}ms peer={ip}:9090 metadata_keys=3",
                rng.pick(&["Inventory", "Pricing", "User", "Catalog"]),
                rng.between(100, 2_000)
            ),
            _ => format!(
                "span finished name=http.{} duration_us={} status=ok attributes=7 events=0 sampled=true",
                rng.pick(&["request", "client", "db", "cache"]),
                rng.between(20, 900_000)
            ),
        },
        _ => match rng.below(16) {
            0 | 1 => format!(
                "{ip} - - \"{} {path}?page={} HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" {ms}ms",
                rng.pick(&METHODS),
                rng.below(40),
                rng.between(200, 60_000)
            ),
            2 => format!(
                "request completed method={} path={path} status={} duration_ms={ms} bytes={} user_id={user}",
                rng.pick(&METHODS),
                rng.pick(&["200", "200", "201", "204", "304", "404"]),
                rng.between(100, 50_000)
            ),
            3 => format!(
                "db query: UPDATE {table} SET updated_at = now() WHERE id = {} took {}ms rows_affected=1 pool=primary",
                rng.between(1, 50_000_000),
                rng.between(1, 60)
            ),
            4 => format!(
                "cache hit ratio for namespace={} over last 60s: {}.{}% (hits={} misses={})",
                rng.pick(&["sessions", "products", "prices", "profiles"]),
                rng.between(70, 99),
                rng.below(10),
                rng.between(1_000, 90_000),
                rng.between(10, 9_000)
            ),
            5 => format!(
                "user login succeeded user_id={user} method={} ip={ip} session={:08x} mfa={}",
                rng.pick(&["password", "oauth_google", "sso", "magic_link"]),
                rng.next() as u32,
                rng.pick(&["true", "false"])
            ),
            6 => format!(
                "kafka produced message topic={topic} partition={} offset={} key=order-{} size={}B",
                rng.below(32),
                rng.between(1_000_000, 900_000_000),
                rng.between(100_000, 9_999_999),
                rng.between(200, 4_000)
            ),
            7 => format!(
                "kafka consumed batch topic={topic} partition={} records={} commit_offset={} took {ms}ms",
                rng.below(32),
                rng.between(1, 500),
                rng.between(1_000_000, 900_000_000)
            ),
            8 => format!(
                "order created order_id=ord_{:08x} user_id={user} items={} total_cents={} currency={}",
                rng.next() as u32,
                rng.between(1, 12),
                rng.between(500, 250_000),
                rng.pick(&["EUR", "USD", "GBP", "INR"])
            ),
            9 => format!(
                "payment authorized payment_id=pay_{:08x} amount_cents={} provider={} latency_ms={ms} 3ds=false",
                rng.next() as u32,
                rng.between(500, 250_000),
                rng.pick(&["stripe", "adyen", "paypal"])
            ),
            10 => format!(
                "inventory reserved sku=SKU-{} qty={} warehouse={} remaining={} reservation_ttl=900s",
                rng.between(10_000, 99_999),
                rng.between(1, 5),
                rng.pick(&["fra1", "iad2", "sfo3", "bom1"]),
                rng.between(0, 5_000)
            ),
            11 => format!(
                "email queued template={} to=user_id:{user} provider=ses message_id=<{:08x}@mail.shop.example>",
                rng.pick(&["order_confirmation", "password_reset", "shipping_update"]),
                rng.next() as u32
            ),
            12 => format!(
                "scheduled job {} finished in {ms}ms processed={} failed=0 next_run_in={}s",
                rng.pick(&["cleanup_sessions", "reindex_products", "send_digests", "expire_carts"]),
                rng.between(0, 20_000),
                rng.between(30, 3_600)
            ),
            13 => format!(
                "search query q=\"{}\" results={} took {ms}ms index=products-v{} shard_hits={}/12",
                rng.pick(&["running shoes", "usb c cable", "coffee grinder", "desk lamp"]),
                rng.between(0, 2_000),
                rng.between(3, 9),
                rng.between(1, 12)
            ),
            14 => format!(
                "connection pool stats pool=primary active={} idle={} waiting={} max=50 region={region}",
                rng.between(1, 50),
                rng.between(0, 20),
                rng.below(4)
            ),
            _ => format!(
                "shipment label created shipment_id=shp_{:08x} carrier={} weight_g={} zone={} eta_days={}",
                rng.next() as u32,
                rng.pick(&["dhl", "ups", "fedex", "usps"]),
                rng.between(100, 20_000),
                rng.between(1, 8),
                rng.between(1, 9)
            ),
        },
    }
}

/// A store filled with a [`Realistic`] data set through a real server,
/// kept for every scenario of a run that reads it (search, open,
/// store-size), so a `--large` run fills 10M entries once.
pub struct Filled {
    pub dir: tempfile::TempDir,
    pub data: Realistic,
}

/// The run's filled store, its data set and directory: made on first use
/// (`--large`: 10M entries, --smoke: 20,000, else 1M), left with every
/// closed segment sealed.
pub async fn filled(ctx: &mut Ctx) -> anyhow::Result<(Realistic, PathBuf)> {
    filled_as(ctx, Form::Text).await
}

/// How a filled store's messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As [`Realistic::entry`] makes them: plain text with `key=value`
    /// fields.
    Text,
    /// As [`Realistic::json_entry`] makes them: JSON objects.
    Json,
}

/// [`filled`], with the messages in `form`; each form's store is filled
/// once a run.
pub async fn filled_as(ctx: &mut Ctx, form: Form) -> anyhow::Result<(Realistic, PathBuf)> {
    let slot = |ctx: &Ctx| match form {
        Form::Text => ctx.realistic.is_none(),
        Form::Json => ctx.realistic_json.is_none(),
    };
    if slot(ctx) {
        let n = if ctx.large {
            ctx.size(10_000_000, 20_000)
        } else {
            ctx.size(1_000_000, 20_000)
        };
        let data = Realistic::new(n);
        let dir = ctx.tempdir("realistic")?;
        eprintln!("  filling a store with {n} realistic entries ({form:?} messages)");
        // --sync never: how fast a store fills is the ingest scenario's
        // business; these scenarios read what is stored.
        let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Never)?;
        let started = Instant::now();
        client::fill(&server.channel().await?, 0..n, 4, move |seq| match form {
            Form::Text => data.entry(seq),
            Form::Json => data.json_entry(seq),
        })
        .await?;
        let fill_seconds = started.elapsed().as_secs_f64();
        // The sealer stops with the server and picks up what is left
        // when the store opens again.
        server.stop()?;
        let server = ServerProcess::logtap(&ctx.logtap, dir.path(), SyncPolicy::Never)?;
        let waited = wait_sealed(&server).await?;
        server.stop()?;
        ctx.report.note(format!(
            "realistic data set ({form:?} messages): {n} entries pushed in {fill_seconds:.1} s on 4 Push calls (--sync never, sealing in the background), the rest sealed {waited:.1} s after a restart"
        ));
        let filled = Some(Filled { dir, data });
        match form {
            Form::Text => ctx.realistic = filled,
            Form::Json => ctx.realistic_json = filled,
        }
    }
    let filled = match form {
        Form::Text => ctx.realistic.as_ref(),
        Form::Json => ctx.realistic_json.as_ref(),
    }
    .expect("filled above");
    Ok((filled.data, filled.dir.path().to_path_buf()))
}

/// How long a store may take to seal what its last run left: 10M entries'
/// worth of closed segments, sealed by one thread, well within it.
const SEAL_TIMEOUT: Duration = Duration::from_secs(900);

/// Waits until `server` has sealed every closed segment (its /metrics
/// shows at most the segment being written as unsealed); the seconds it
/// took.
pub async fn wait_sealed(server: &ServerProcess) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        let unsealed = server.metric("logtap_store_unsealed_segments").await?;
        if unsealed <= 1.0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > SEAL_TIMEOUT {
            bail!("{unsealed} segments are still unsealed after {SEAL_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bytes on disk under `dir`, by kind of file: sealed segments, record
/// logs (`.seg`), and the rest (the lock file).
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskUse {
    pub sealed: u64,
    pub logs: u64,
    pub other: u64,
}

impl DiskUse {
    pub fn of(dir: &Path) -> anyhow::Result<DiskUse> {
        let mut usage = DiskUse::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let len = entry.metadata()?.len();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".sealed") {
                usage.sealed += len;
            } else if name.ends_with(".seg") {
                usage.logs += len;
            } else {
                usage.other += len;
            }
        }
        Ok(usage)
    }

    pub fn total(&self) -> u64 {
        self.sealed + self.logs + self.other
    }
}

/// The base cursors of the sealed segments and of the record logs in
/// `dir`, each sorted: a segment holds the cursors from its base to the
/// next segment's.
pub fn segment_bases(dir: &Path) -> anyhow::Result<(Vec<u64>, Vec<u64>)> {
    let mut sealed = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(digits) = name.strip_suffix(".sealed") {
            sealed.push(digits.parse()?);
        } else if let Some(digits) = name.strip_suffix(".seg") {
            logs.push(digits.parse()?);
        }
    }
    sealed.sort_unstable();
    logs.sort_unstable();
    Ok((sealed, logs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_message_holds_the_text_and_its_fields() {
        let data = Realistic::new(100_000);
        let lagging = (0..100_000)
            .map(|seq| data.generate(seq))
            .find(|entry| entry.message.contains("kafka consumer lag"))
            .expect("the data set has lag warnings");
        let object: serde_json::Value =
            serde_json::from_str(&lagging.json_message()).expect("JSON");
        assert_eq!(object["msg"], lagging.message.as_str());
        assert_eq!(object["trace_id"], lagging.trace_id.as_str());
        let lag = lagging
            .message
            .split(' ')
            .find_map(|word| word.strip_prefix("lag="))
            .unwrap();
        assert_eq!(object["lag"], lag);
        // A quoted value with spaces stays in `msg` only.
        let failing = (0..100_000)
            .map(|seq| data.generate(seq))
            .find(|entry| entry.message.contains("error=\"deadlock detected\""))
            .expect("the data set has deadlocks");
        let object: serde_json::Value = serde_json::from_str(&failing.json_message()).unwrap();
        assert!(object.get("error").is_none());
        assert_eq!(
            object["table"],
            failing
                .message
                .split("table=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        );
    }

    #[test]
    fn entries_are_a_function_of_their_number() {
        let data = Realistic::new(100_000);
        assert_eq!(data.generate(12_345), data.generate(12_345));
        assert_ne!(data.generate(12_345), data.generate(12_346));
    }

    #[test]
    fn messages_are_about_150_bytes_and_carry_their_trace_id() {
        let data = Realistic::new(200_000);
        let mut total = 0;
        for seq in 0..20_000 {
            let entry = data.generate(seq);
            assert!(entry
                .message
                .ends_with(&format!("trace_id={}", entry.trace_id)));
            assert_eq!(entry.trace_id.len(), 16);
            total += entry.message.len();
        }
        let mean = total / 20_000;
        assert!((130..=170).contains(&mean), "mean message {mean} bytes");
    }

    #[test]
    fn the_needle_and_the_rare_service_are_where_they_are_said_to_be() {
        let data = Realistic::new(1_000_000);
        assert_eq!(data.rare_count(), 1_000);
        assert_eq!(data.rare_start(), 999_000);
        assert_eq!(data.needle_seq(), 998_999);
        let needle = data.generate(data.needle_seq());
        assert!(needle.message.contains(NEEDLE));
        assert_ne!(needle.service, RARE_SERVICE);
        assert_eq!(data.generate(data.rare_start()).service, RARE_SERVICE);
        for seq in (0..data.len()).step_by(997) {
            let entry = data.generate(seq);
            assert_eq!(seq == data.needle_seq(), entry.message.contains("NEEDLE"));
            assert_eq!(seq >= data.rare_start(), entry.service == RARE_SERVICE);
        }
    }

    #[test]
    fn no_other_hex_run_is_as_long_as_a_trace_id() {
        let data = Realistic::new(100_000);
        for seq in 0..20_000 {
            let entry = data.generate(seq);
            let text = entry.message.replace(&entry.trace_id, " ");
            let longest = text
                .split(|c: char| !c.is_ascii_hexdigit())
                .map(str::len)
                .max()
                .unwrap_or(0);
            assert!(longest < 16, "{}", entry.message);
        }
    }

    #[test]
    fn time_never_goes_backwards() {
        let data = Realistic::new(10_000);
        for seq in 1..10_000 {
            assert!(data.generate(seq).timestamp >= data.generate(seq - 1).timestamp);
        }
    }

    #[test]
    fn levels_are_mostly_info_with_a_few_errors() {
        let data = Realistic::new(100_000);
        let errors = data.errors();
        assert!((100..=300).contains(&errors), "{errors} errors");
        let info = (0..100_000)
            .filter(|&seq| data.level(seq) == Level::Info)
            .count();
        assert!(info > 80_000, "{info} info");
    }
}
