//! OTLP logs (`opentelemetry.proto.collector.logs.v1`): an
//! `ExportLogsServiceRequest`, as protobuf or as OTLP/JSON, into entries.
//!
//! The mapping, the same for both forms:
//!
//! - each `LogRecord` is one entry;
//! - its level comes from `severity_number`: 1–4 trace, 5–8 debug, 9–12
//!   info, 13–16 warn, 17–20 error, 21–24 fatal; 0 (unset) or a number out
//!   of that range: from `severity_text` as [`Level::parse`] reads it
//!   (`WARNING`, `critical`, ...), else info;
//! - its message is the body: a string body as sent, no body as the empty
//!   string, any other body as its JSON (`{"a":1}`, `[1,"x"]`, `true`);
//! - its labels are the resource's attributes, then the record's (a name in
//!   both keeps the record's value, as the server's batcher keeps the last
//!   value of a name given twice), then `trace_id` and `span_id` in lower
//!   hex when set; a string attribute is its text, any other its JSON;
//!   `service.name` is also stored as `service`, the name most users
//!   filter on;
//! - its time is `time_unix_nano`, else `observed_time_unix_nano`, else the
//!   time of receipt. A time past 2262 (outside `i64` nanoseconds) cannot
//!   be stored where it belongs, so that record alone is refused and
//!   counted in [`Decoded::rejected`], which the server reports as OTLP's
//!   `partial_success`.
//!
//! A body that does not decode (malformed protobuf or JSON, invalid UTF-8,
//! a trace id that is not hex) refuses the whole request with an
//! [`OtlpError`]: a client never has half an export stored without being
//! told which half.

use logtap_core::{Level, NewEntry};
use serde::Deserialize;

/// Why an OTLP logs request cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    /// The body is not a protobuf `ExportLogsServiceRequest`.
    #[error("the body is not a protobuf ExportLogsServiceRequest: {0}")]
    Protobuf(String),
    /// The body is not an OTLP/JSON `ExportLogsServiceRequest`.
    #[error("the body is not an OTLP/JSON ExportLogsServiceRequest ({{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[...]}}]}}]}}): {0}")]
    Json(String),
}

/// What a request decodes to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The entries to store, in the request's order.
    pub entries: Vec<NewEntry>,
    /// How many records were refused (their time is out of range).
    pub rejected: u64,
    /// Why, for `partial_success.error_message`; empty when none was.
    pub error_message: String,
}

mod wire;

/// Decodes a protobuf `ExportLogsServiceRequest`. `received_ns` is the
/// time of records that carry none.
///
/// The shape exporters send (string bodies and attributes) is decoded
/// field by field straight from the bytes ([`wire`]), each string copied
/// once, into the entry that keeps it; any other request (other value
/// types, a malformed message) is decoded by prost into the messages below,
/// which stay the reference: both give the same entries or the same error.
pub fn decode_protobuf(body: &[u8], received_ns: i64) -> Result<Decoded, OtlpError> {
    if let Some(decoded) = wire::decode(body, received_ns) {
        return Ok(decoded);
    }
    let request = <ExportLogsServiceRequest as prost::Message>::decode(body)
        .map_err(|error| OtlpError::Protobuf(error.to_string()))?;
    Ok(map(request, received_ns))
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`: camelCase fields,
/// 64-bit integers as strings or numbers, trace and span ids in hex.
pub fn decode_json(body: &[u8], received_ns: i64) -> Result<Decoded, OtlpError> {
    let request: json::Request =
        serde_json::from_slice(body).map_err(|error| OtlpError::Json(error.to_string()))?;
    Ok(map(request.into_proto()?, received_ns))
}

/// The level a record's severity says.
pub fn level_of(severity_number: i32, severity_text: &str) -> Level {
    match severity_number {
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=20 => Level::Error,
        21..=24 => Level::Fatal,
        _ => Level::parse(severity_text.trim()).unwrap_or(Level::Info),
    }
}

/// The entries of a request already decoded (by a gRPC server's codec).
pub fn from_request(request: ExportLogsServiceRequest, received_ns: i64) -> Decoded {
    map(request, received_ns)
}

/// The request's records as entries.
fn map(request: ExportLogsServiceRequest, received_ns: i64) -> Decoded {
    let mut decoded = Decoded::default();
    for resource_logs in request.resource_logs {
        map_resource(resource_logs, received_ns, &mut decoded);
    }
    decoded
}

/// One resource's records as entries, added to `decoded`.
fn map_resource(resource_logs: ResourceLogs, received_ns: i64, decoded: &mut Decoded) {
    {
        let mut resource_labels = Vec::new();
        for pair in resource_logs
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default()
        {
            push_label(&mut resource_labels, pair);
        }
        for scope_logs in resource_logs.scope_logs {
            for record in scope_logs.log_records {
                let mut attributes = Vec::new();
                for pair in record.attributes {
                    push_label(&mut attributes, pair);
                }
                let message = match record.body.and_then(|body| body.value) {
                    None => String::new(),
                    Some(Value::StringValue(text)) => text,
                    Some(other) => to_json(&other).to_string(),
                };
                push_record(
                    decoded,
                    &resource_labels,
                    Record {
                        time_unix_nano: record.time_unix_nano,
                        observed_time_unix_nano: record.observed_time_unix_nano,
                        severity_number: record.severity_number,
                        severity_text: &record.severity_text,
                        attributes,
                        trace_id: &record.trace_id,
                        span_id: &record.span_id,
                        message,
                    },
                    received_ns,
                );
            }
        }
    }
}

/// An `ExportLogsServiceRequest` as a gRPC server's codec reads it:
/// straight into entries, each `ResourceLogs` as it comes, by the same
/// field-by-field reader as [`decode_protobuf`] (prost's messages for what
/// it does not take), so the request's messages are never built. Records
/// without a time get the time the request's first field was read. Only
/// decoded: encoding it writes nothing.
#[derive(Debug, Default)]
pub struct ExportLogs {
    decoded: Decoded,
    received_ns: Option<i64>,
}

impl ExportLogs {
    /// The entries read, and the records refused.
    pub fn into_decoded(self) -> Decoded {
        self.decoded
    }
}

impl prost::Message for ExportLogs {
    fn encode_raw(&self, _buf: &mut impl prost::bytes::BufMut) {}

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        use prost::encoding::{decode_varint, WireType};
        if tag != 1 {
            return prost::encoding::skip_field(wire_type, tag, buf, ctx);
        }
        // As prost's own code for `resource_logs` reads and names it.
        let in_field = |mut error: prost::DecodeError| {
            error.push("ExportLogsServiceRequest", "resource_logs");
            error
        };
        prost::encoding::check_wire_type(WireType::LengthDelimited, wire_type).map_err(in_field)?;
        let received_ns = *self.received_ns.get_or_insert_with(now_nanos);
        // The message's length and bytes, read in place when the buffer
        // holds them whole (a gRPC message is one piece).
        let chunk = buf.chunk();
        let mut after = chunk;
        let whole = decode_varint(&mut after).ok().and_then(|len| {
            let start = chunk.len() - after.len();
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            (end <= chunk.len()).then_some((start, end))
        });
        let before = (
            self.decoded.entries.len(),
            self.decoded.rejected,
            self.decoded.error_message.len(),
        );
        if let Some((start, end)) = whole {
            if wire::resource_logs(&chunk[start..end], received_ns, &mut self.decoded).is_some() {
                buf.advance(end);
                return Ok(());
            }
        }
        // What the reader added before it gave up is read again by prost,
        // which also names what is wrong with a malformed message.
        self.decoded.entries.truncate(before.0);
        self.decoded.rejected = before.1;
        self.decoded.error_message.truncate(before.2);
        let mut resource_logs = ResourceLogs::default();
        prost::encoding::message::merge(WireType::LengthDelimited, &mut resource_logs, buf, ctx)
            .map_err(in_field)?;
        map_resource(resource_logs, received_ns, &mut self.decoded);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {
        *self = ExportLogs::default();
    }
}

/// Now, as Unix epoch nanoseconds; 0 for a clock set before 1970.
fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
        })
}

/// What a record's entry is made of, however it was decoded.
struct Record<'a> {
    time_unix_nano: u64,
    observed_time_unix_nano: u64,
    severity_number: i32,
    severity_text: &'a str,
    /// The record's attributes as labels ([`push_pair`]).
    attributes: Vec<(String, String)>,
    trace_id: &'a [u8],
    span_id: &'a [u8],
    message: String,
}

/// Adds a record's entry to `decoded`, or counts it rejected when its time
/// is out of range.
fn push_record(
    decoded: &mut Decoded,
    resource_labels: &[(String, String)],
    record: Record<'_>,
    received_ns: i64,
) {
    let time = [record.time_unix_nano, record.observed_time_unix_nano]
        .into_iter()
        .find(|ns| *ns != 0);
    let timestamp = match time {
        None => received_ns,
        Some(ns) => match i64::try_from(ns) {
            Ok(ns) => ns,
            Err(_) => {
                decoded.rejected += 1;
                if decoded.error_message.is_empty() {
                    decoded.error_message = format!(
                        "time_unix_nano {ns} is after 2262, which this server cannot store; send Unix epoch nanoseconds"
                    );
                }
                return;
            }
        },
    };
    let mut labels = Vec::with_capacity(resource_labels.len() + record.attributes.len() + 2);
    labels.extend_from_slice(resource_labels);
    labels.extend(record.attributes);
    if !record.trace_id.is_empty() {
        labels.push(("trace_id".into(), hex(record.trace_id)));
    }
    if !record.span_id.is_empty() {
        labels.push(("span_id".into(), hex(record.span_id)));
    }
    decoded.entries.push(NewEntry {
        timestamp,
        level: level_of(record.severity_number, record.severity_text),
        message: record.message,
        labels,
    });
}

/// Adds an attribute as a label, and `service.name` also as `service`.
fn push_label(labels: &mut Vec<(String, String)>, pair: KeyValue) {
    let value = match pair.value.and_then(|value| value.value) {
        None => String::new(),
        Some(Value::StringValue(text)) => text,
        Some(other) => to_json(&other).to_string(),
    };
    push_pair(labels, pair.key, value);
}

/// Adds a label, and `service.name` also as `service`, the name most users
/// filter on.
fn push_pair(labels: &mut Vec<(String, String)>, key: String, value: String) {
    if key == "service.name" {
        labels.push(("service".into(), value.clone()));
    }
    labels.push((key, value));
}

/// An attribute value or body as JSON: bytes as base64, as OTLP/JSON
/// writes them.
fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    let inner = |any: &AnyValue| any.value.as_ref().map_or(J::Null, to_json);
    match value {
        Value::StringValue(text) => J::String(text.clone()),
        Value::BoolValue(flag) => J::Bool(*flag),
        Value::IntValue(number) => J::from(*number),
        Value::DoubleValue(number) => serde_json::Number::from_f64(*number)
            .map_or_else(|| J::String(number.to_string()), J::Number),
        Value::ArrayValue(array) => J::Array(array.values.iter().map(inner).collect()),
        Value::KvlistValue(list) => J::Object(
            list.values
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.as_ref().map_or(J::Null, inner)))
                .collect(),
        ),
        Value::BytesValue(bytes) => J::String(base64(bytes)),
    }
}

/// Lower-case hex, as OTLP/JSON writes trace and span ids.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 15)] as char);
    }
    text
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for index in 0..4 {
            if index <= chunk.len() {
                text.push(ALPHABET[((n >> (18 - 6 * index)) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceRequest {
    /// The records, grouped by the resource that made them.
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `opentelemetry.proto.logs.v1.ResourceLogs`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceLogs {
    /// The resource: the service, host or process the records come from.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// The records, grouped by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
    /// The schema of the resource's attributes.
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

/// `opentelemetry.proto.resource.v1.Resource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    /// What describes the resource (`service.name`, `host.name`, ...).
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `opentelemetry.proto.logs.v1.ScopeLogs`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeLogs {
    /// The instrumentation scope (logger) that made the records.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The records.
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<LogRecord>,
}

/// `opentelemetry.proto.common.v1.InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    /// The scope's name, often the logger's.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The scope's version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `opentelemetry.proto.logs.v1.LogRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    /// When the event happened, Unix epoch nanoseconds; 0 when unknown.
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    /// `SeverityNumber`: 1–24, 0 when unset.
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    /// The level as the source named it.
    #[prost(string, tag = "3")]
    pub severity_text: String,
    /// The record's body.
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    /// The record's attributes.
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    /// W3C trace flags.
    #[prost(fixed32, tag = "8")]
    pub flags: u32,
    /// The trace, 16 bytes; empty when none.
    #[prost(bytes = "vec", tag = "9")]
    pub trace_id: Vec<u8>,
    /// The span, 8 bytes; empty when none.
    #[prost(bytes = "vec", tag = "10")]
    pub span_id: Vec<u8>,
    /// When the record was collected, Unix epoch nanoseconds.
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
}

/// `opentelemetry.proto.common.v1.KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The attribute's name.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The attribute's value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `opentelemetry.proto.common.v1.AnyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The value; none is an empty value.
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Value>,
}

/// The cases of `AnyValue`'s `value` oneof.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// A string.
    #[prost(string, tag = "1")]
    StringValue(String),
    /// A boolean.
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    /// A 64-bit integer.
    #[prost(int64, tag = "3")]
    IntValue(i64),
    /// A double.
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    /// A list of values.
    #[prost(message, tag = "5")]
    ArrayValue(ArrayValue),
    /// A list of named values.
    #[prost(message, tag = "6")]
    KvlistValue(KeyValueList),
    /// Bytes.
    #[prost(bytes = "vec", tag = "7")]
    BytesValue(Vec<u8>),
}

/// `opentelemetry.proto.common.v1.ArrayValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// `opentelemetry.proto.common.v1.KeyValueList`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValueList {
    /// The named values.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceResponse {
    /// Set when some records were refused.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportLogsPartialSuccess>,
}

/// `opentelemetry.proto.collector.logs.v1.ExportLogsPartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsPartialSuccess {
    /// How many records were refused.
    #[prost(int64, tag = "1")]
    pub rejected_log_records: i64,
    /// Why.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

impl ExportLogsServiceResponse {
    /// The answer to a request that decoded to `decoded` and was stored.
    pub fn for_decoded(decoded: &Decoded) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: (decoded.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(decoded.rejected).unwrap_or(i64::MAX),
                error_message: decoded.error_message.clone(),
            }),
        }
    }

    /// The OTLP/JSON form: `{}`, or `{"partialSuccess":{...}}` with the
    /// count as a string, as OTLP/JSON writes 64-bit integers.
    pub fn to_json(&self) -> String {
        match &self.partial_success {
            None => "{}".into(),
            Some(partial) => serde_json::json!({
                "partialSuccess": {
                    "rejectedLogRecords": partial.rejected_log_records.to_string(),
                    "errorMessage": partial.error_message,
                }
            })
            .to_string(),
        }
    }
}

/// OTLP/JSON's shapes, read into the protobuf messages.
mod json {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Request {
        #[serde(default)]
        resource_logs: Vec<JResourceLogs>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct JResourceLogs {
        #[serde(default)]
        resource: Option<JResource>,
        #[serde(default)]
        scope_logs: Vec<JScopeLogs>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct JResource {
        #[serde(default)]
        attributes: Vec<JKeyValue>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct JScopeLogs {
        #[serde(default)]
        log_records: Vec<JLogRecord>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct JLogRecord {
        #[serde(default)]
        time_unix_nano: Option<Int>,
        #[serde(default)]
        observed_time_unix_nano: Option<Int>,
        #[serde(default)]
        severity_number: Option<Severity>,
        #[serde(default)]
        severity_text: String,
        #[serde(default)]
        body: Option<JAnyValue>,
        #[serde(default)]
        attributes: Vec<JKeyValue>,
        #[serde(default)]
        trace_id: String,
        #[serde(default)]
        span_id: String,
    }

    #[derive(Deserialize)]
    struct JKeyValue {
        key: String,
        #[serde(default)]
        value: Option<JAnyValue>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct JAnyValue {
        string_value: Option<String>,
        bool_value: Option<bool>,
        int_value: Option<Int>,
        double_value: Option<f64>,
        array_value: Option<JArray>,
        kvlist_value: Option<JKvList>,
        bytes_value: Option<String>,
    }

    #[derive(Deserialize)]
    struct JArray {
        #[serde(default)]
        values: Vec<JAnyValue>,
    }

    #[derive(Deserialize)]
    struct JKvList {
        #[serde(default)]
        values: Vec<JKeyValue>,
    }

    /// A 64-bit integer: OTLP/JSON writes them as strings, some clients as
    /// numbers.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Unsigned(u64),
        Signed(i64),
        Text(String),
    }

    /// A severity: its number, or its enum name (`SEVERITY_NUMBER_WARN`).
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Severity {
        Number(i32),
        Name(String),
    }

    impl Int {
        fn value(&self, field: &str) -> Result<i128, OtlpError> {
            match self {
                Int::Unsigned(number) => Ok(i128::from(*number)),
                Int::Signed(number) => Ok(i128::from(*number)),
                Int::Text(text) => text.trim().parse().map_err(|_| {
                    OtlpError::Json(format!("{field} {:?} is not an integer", clip(text)))
                }),
            }
        }

        fn nanos(&self, field: &str) -> Result<u64, OtlpError> {
            u64::try_from(self.value(field)?).map_err(|_| {
                OtlpError::Json(format!(
                    "{field} is not Unix epoch nanoseconds (0 to 2^64-1)"
                ))
            })
        }
    }

    impl Severity {
        fn number(&self) -> i32 {
            const NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
            match self {
                Severity::Number(number) => *number,
                Severity::Name(name) => {
                    let rest = name.strip_prefix("SEVERITY_NUMBER_").unwrap_or(name);
                    let (base, step) = rest.split_at(
                        rest.find(|c: char| c.is_ascii_digit())
                            .unwrap_or(rest.len()),
                    );
                    let step: i32 = if step.is_empty() {
                        1
                    } else {
                        step.parse().unwrap_or(1)
                    };
                    NAMES
                        .iter()
                        .position(|known| *known == base)
                        .map_or(0, |index| index as i32 * 4 + step.clamp(1, 4))
                }
            }
        }
    }

    fn clip(text: &str) -> String {
        text.chars().take(100).collect()
    }

    /// Trace and span ids: hex, as OTLP/JSON writes them.
    fn unhex(text: &str, field: &str) -> Result<Vec<u8>, OtlpError> {
        let bad = || OtlpError::Json(format!("{field} {:?} is not hex", clip(text)));
        if !text.len().is_multiple_of(2) {
            return Err(bad());
        }
        text.as_bytes()
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(bad)
            })
            .collect()
    }

    impl Request {
        pub(super) fn into_proto(self) -> Result<ExportLogsServiceRequest, OtlpError> {
            let mut request = ExportLogsServiceRequest::default();
            for resource_logs in self.resource_logs {
                let mut scopes = Vec::new();
                for scope_logs in resource_logs.scope_logs {
                    let mut records = Vec::new();
                    for record in scope_logs.log_records {
                        records.push(LogRecord {
                            time_unix_nano: match &record.time_unix_nano {
                                Some(int) => int.nanos("timeUnixNano")?,
                                None => 0,
                            },
                            observed_time_unix_nano: match &record.observed_time_unix_nano {
                                Some(int) => int.nanos("observedTimeUnixNano")?,
                                None => 0,
                            },
                            severity_number: record
                                .severity_number
                                .as_ref()
                                .map_or(0, Severity::number),
                            severity_text: record.severity_text,
                            body: record.body.map(any).transpose()?,
                            attributes: pairs(record.attributes)?,
                            flags: 0,
                            trace_id: unhex(&record.trace_id, "traceId")?,
                            span_id: unhex(&record.span_id, "spanId")?,
                        });
                    }
                    scopes.push(ScopeLogs {
                        scope: None,
                        log_records: records,
                    });
                }
                request.resource_logs.push(ResourceLogs {
                    resource: resource_logs
                        .resource
                        .map(|resource| {
                            pairs(resource.attributes).map(|attributes| Resource { attributes })
                        })
                        .transpose()?,
                    scope_logs: scopes,
                    schema_url: String::new(),
                });
            }
            Ok(request)
        }
    }

    fn pairs(list: Vec<JKeyValue>) -> Result<Vec<KeyValue>, OtlpError> {
        list.into_iter()
            .map(|pair| {
                Ok(KeyValue {
                    key: pair.key,
                    value: pair.value.map(any).transpose()?,
                })
            })
            .collect()
    }

    fn any(value: JAnyValue) -> Result<AnyValue, OtlpError> {
        let value = if let Some(text) = value.string_value {
            Some(Value::StringValue(text))
        } else if let Some(flag) = value.bool_value {
            Some(Value::BoolValue(flag))
        } else if let Some(int) = value.int_value {
            let number = int.value("intValue")?;
            Some(Value::IntValue(i64::try_from(number).map_err(|_| {
                OtlpError::Json("intValue is outside 64-bit integers".into())
            })?))
        } else if let Some(number) = value.double_value {
            Some(Value::DoubleValue(number))
        } else if let Some(array) = value.array_value {
            Some(Value::ArrayValue(ArrayValue {
                values: array
                    .values
                    .into_iter()
                    .map(any)
                    .collect::<Result<_, _>>()?,
            }))
        } else if let Some(list) = value.kvlist_value {
            Some(Value::KvlistValue(KeyValueList {
                values: pairs(list.values)?,
            }))
        } else {
            // Already base64, which is how bytes are shown anyway.
            value.bytes_value.map(Value::StringValue)
        };
        Ok(AnyValue { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Value::StringValue(text.into())),
        })
    }

    fn pair(key: &str, value: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value,
        }
    }

    fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        pair("service.name", string("shop")),
                        pair("host", string("a")),
                    ],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: records,
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn severities_map_to_levels() {
        let cases = [
            (1, "", Level::Trace),
            (4, "", Level::Trace),
            (5, "", Level::Debug),
            (9, "", Level::Info),
            (13, "", Level::Warn),
            (16, "", Level::Warn),
            (17, "", Level::Error),
            (21, "", Level::Fatal),
            (24, "", Level::Fatal),
            (0, "WARNING", Level::Warn),
            (0, "critical", Level::Fatal),
            (0, "nonsense", Level::Info),
            (0, "", Level::Info),
            (99, "error", Level::Error),
        ];
        for (number, text, level) in cases {
            assert_eq!(level_of(number, text), level, "{number} {text}");
        }
    }

    #[test]
    fn records_become_entries_with_labels_and_times() {
        let records = vec![
            LogRecord {
                time_unix_nano: 5,
                observed_time_unix_nano: 6,
                severity_number: 13,
                body: string("slow"),
                attributes: vec![
                    pair("host", string("b")),
                    pair(
                        "n",
                        Some(AnyValue {
                            value: Some(Value::IntValue(7)),
                        }),
                    ),
                ],
                trace_id: vec![0xab; 16],
                span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                ..LogRecord::default()
            },
            LogRecord {
                observed_time_unix_nano: 6,
                body: Some(AnyValue {
                    value: Some(Value::KvlistValue(KeyValueList {
                        values: vec![pair("a", string("x"))],
                    })),
                }),
                ..LogRecord::default()
            },
            LogRecord::default(),
            LogRecord {
                time_unix_nano: u64::MAX,
                ..LogRecord::default()
            },
        ];
        let body = prost::Message::encode_to_vec(&request(records));
        let decoded = decode_protobuf(&body, 99).unwrap();
        assert_eq!(decoded.rejected, 1);
        assert!(
            decoded.error_message.contains("2262"),
            "{}",
            decoded.error_message
        );
        let entries = decoded.entries;
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].timestamp, 5);
        assert_eq!(entries[0].level, Level::Warn);
        assert_eq!(entries[0].message, "slow");
        let labels: Vec<(&str, &str)> = entries[0]
            .labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("service", "shop"),
                ("service.name", "shop"),
                ("host", "a"),
                ("host", "b"),
                ("n", "7"),
                ("trace_id", "abababababababababababababababab"),
                ("span_id", "0102030405060708"),
            ]
        );
        assert_eq!(entries[1].timestamp, 6);
        assert_eq!(entries[1].message, r#"{"a":"x"}"#);
        assert_eq!(entries[2].timestamp, 99);
        assert_eq!(entries[2].message, "");
        assert!(matches!(
            decode_protobuf(b"\xff\xff", 0),
            Err(OtlpError::Protobuf(_))
        ));
    }

    #[test]
    fn json_reads_camel_case_hex_ids_and_string_integers() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
            "scopeLogs":[{"scope":{"name":"x"},"logRecords":[
              {"timeUnixNano":"1700000000000000001","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"boom"},
               "attributes":[{"key":"code","value":{"intValue":"42"}},{"key":"ok","value":{"boolValue":false}}],
               "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174"},
              {"timeUnixNano":3,"severityNumber":"SEVERITY_NUMBER_WARN2","body":{"arrayValue":{"values":[{"intValue":1},{"stringValue":"a"}]}}}]}]}]}"#;
        let decoded = decode_json(body, 0).unwrap();
        assert_eq!(decoded.rejected, 0);
        let entries = decoded.entries;
        assert_eq!(entries[0].timestamp, 1_700_000_000_000_000_001);
        assert_eq!(entries[0].level, Level::Error);
        assert_eq!(entries[0].message, "boom");
        assert!(entries[0].labels.contains(&("code".into(), "42".into())));
        assert!(entries[0].labels.contains(&("ok".into(), "false".into())));
        assert!(entries[0]
            .labels
            .contains(&("trace_id".into(), "5b8efff798038103d269b633813fc60c".into())));
        assert_eq!(entries[1].timestamp, 3);
        assert_eq!(entries[1].level, Level::Warn);
        assert_eq!(entries[1].message, r#"[1,"a"]"#);
        for (bad, wanted) in [
            (&br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}"#[..], "traceId"),
            (br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"-1"}]}]}]}"#, "timeUnixNano"),
            (br#"{"resourceLogs":"#, "OTLP/JSON"),
            (b"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityText\":\"\xff\"}]}]}]}", "OTLP/JSON"),
        ] {
            let error = decode_json(bad, 0).unwrap_err().to_string();
            assert!(error.contains(wanted), "{error}");
        }
    }

    #[test]
    fn responses_say_what_was_refused() {
        let none = ExportLogsServiceResponse::for_decoded(&Decoded::default());
        assert_eq!(none.to_json(), "{}");
        let some = ExportLogsServiceResponse::for_decoded(&Decoded {
            entries: vec![],
            rejected: 2,
            error_message: "why".into(),
        });
        assert_eq!(
            some.to_json(),
            r#"{"partialSuccess":{"errorMessage":"why","rejectedLogRecords":"2"}}"#
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
