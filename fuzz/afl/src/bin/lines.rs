//! AFL++ harness: one push line (bytes read lossily, as `logtap push` does)
//! through the line parser and the time parser. A panic is a crash.

fn main() {
    const NOW: i64 = 1_714_564_800_000_000_000;
    afl::fuzz!(|data: &[u8]| {
        let line = String::from_utf8_lossy(data);
        let _ = logtap_ingest::parse_line(&line, NOW);
        let _ = logtap_ingest::parse_plain(&line, NOW);
        let _ = logtap_ingest::parse_time(&line, NOW);
    });
}
