//! A sealed block's messages as templates and values.
//!
//! Log lines are a few templates filled with numbers and identifiers.
//! Compressed as plain text, every line costs zstd a handful of matches
//! back into the same template (a few bytes each) plus its values spelled
//! out in digits. Here each message is cut into its template, with
//! placeholders where its values were, and the values themselves:
//!
//! - every run of up to 18 decimal digits is a *number*, kept as a varint
//!   (`value * 2`, or `value * 2 + 1` followed by the run's width when the
//!   run has leading zeros, as in `07`);
//! - every run of 8 to 255 lowercase hexadecimal digits holding at least
//!   one letter and one digit (trace ids, hashes, UUID parts) is an *id*,
//!   kept as its length and its nibbles packed two to a byte.
//!
//! A block's distinct templates are kept once, in a dictionary; a message
//! is then a dictionary reference and its values. Templates repeat, so
//! the references cost zstd almost nothing, and the values are stored in
//! binary, near their entropy.
//!
//! ```text
//! n varints     template: index into the dictionary below
//! varint t, then t times: varint length, template
//! varint length, the numbers (varints, in message order)
//! the ids (length byte, packed nibbles), in message order
//! ```
//!
//! A template is the message's text with `NUMBER` or `ID` where a value
//! was; a message byte that equals one of the three marker bytes is
//! written `ESCAPE` and the byte. Any message comes back byte for byte.

use super::block::{varint, Input};
use std::collections::HashMap;

/// In a template: a number from the numbers column goes here.
const NUMBER: u8 = 0x01;
/// In a template: an id from the ids column goes here.
const ID: u8 = 0x02;
/// In a template: the next byte is the message's own.
const ESCAPE: u8 = 0x03;
/// The longest digit run taken as a number: 18 digits and a flag bit fit
/// in a u64.
const MAX_DIGITS: usize = 18;
/// The shortest hexadecimal run taken as an id: shorter ones are words
/// (`cafe`, `dead`) or small numbers more often than identifiers.
const MIN_ID: usize = 8;
/// The longest id: its length is one byte.
const MAX_ID: usize = 255;

/// A block's messages, split as they are pushed.
#[derive(Default)]
pub(crate) struct MessageWriter {
    /// Each distinct template of the block, by its place in `dictionary`.
    templates: HashMap<Vec<u8>, u64>,
    dictionary: Vec<u8>,
    refs: Vec<u8>,
    numbers: Vec<u8>,
    ids: Vec<u8>,
    /// The template being cut, reused from message to message.
    template: Vec<u8>,
}

impl MessageWriter {
    /// Splits `message` into its template and values.
    pub fn push(&mut self, message: &[u8]) {
        self.template.clear();
        let mut i = 0;
        while i < message.len() {
            let byte = message[i];
            if is_lower_hex(byte) {
                let end = i + message[i..]
                    .iter()
                    .take_while(|b| is_lower_hex(**b))
                    .count();
                let run = &message[i..end];
                if (MIN_ID..=MAX_ID).contains(&run.len())
                    && run.iter().any(u8::is_ascii_digit)
                    && run.iter().any(u8::is_ascii_lowercase)
                {
                    self.template.push(ID);
                    push_id(&mut self.ids, run);
                } else {
                    self.cut_numbers(run);
                }
                i = end;
                continue;
            }
            if matches!(byte, NUMBER | ID | ESCAPE) {
                self.template.push(ESCAPE);
            }
            self.template.push(byte);
            i += 1;
        }
        let next = self.templates.len() as u64;
        let index = match self.templates.get(self.template.as_slice()) {
            Some(&index) => index,
            None => {
                self.templates.insert(self.template.clone(), next);
                varint(&mut self.dictionary, self.template.len() as u64);
                self.dictionary.extend_from_slice(&self.template);
                next
            }
        };
        varint(&mut self.refs, index);
    }

    /// Within a hexadecimal run that is not an id: its digit runs become
    /// numbers, its letters stay in the template.
    fn cut_numbers(&mut self, run: &[u8]) {
        let mut i = 0;
        while i < run.len() {
            if !run[i].is_ascii_digit() {
                self.template.push(run[i]);
                i += 1;
                continue;
            }
            let end = i + run[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            let digits = &run[i..end];
            if digits.len() > MAX_DIGITS {
                self.template.extend_from_slice(digits);
            } else {
                let value = digits
                    .iter()
                    .fold(0u64, |value, d| value * 10 + (d - b'0') as u64);
                self.template.push(NUMBER);
                if digits.len() == decimal_width(value) {
                    varint(&mut self.numbers, value << 1);
                } else {
                    varint(&mut self.numbers, (value << 1) | 1);
                    varint(&mut self.numbers, digits.len() as u64);
                }
            }
            i = end;
        }
    }

    /// Appends the messages' section to `out`, templates and all, and
    /// empties the writer for the next block.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.refs);
        self.finish_dictionary(out);
        self.finish_values(out);
    }

    /// Like [`finish`](Self::finish), with the templates apart in
    /// `dictionary`: a search reads them alone to rule a block out (see
    /// [`may_contain`]).
    pub fn finish_apart(&mut self, dictionary: &mut Vec<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.refs);
        self.finish_dictionary(dictionary);
        self.finish_values(out);
    }

    fn finish_dictionary(&mut self, out: &mut Vec<u8>) {
        varint(out, self.templates.len() as u64);
        out.extend_from_slice(&self.dictionary);
        self.templates.clear();
        self.dictionary.clear();
    }

    fn finish_values(&mut self, out: &mut Vec<u8>) {
        varint(out, self.numbers.len() as u64);
        out.extend_from_slice(&self.numbers);
        out.extend_from_slice(&self.ids);
        self.refs.clear();
        self.numbers.clear();
        self.ids.clear();
    }
}

/// A block's messages being put back together, one after another.
pub(crate) struct MessageReader<'a> {
    refs: Input<'a>,
    /// Each template's parts, by template: a range of `parts`.
    templates: Vec<std::ops::Range<usize>>,
    /// Every template cut once into literal text and values, so a message
    /// is put together without looking for markers again.
    parts: Vec<Part<'a>>,
    numbers: Input<'a>,
    ids: Input<'a>,
}

/// A piece of a template.
enum Part<'a> {
    Text(&'a [u8]),
    Number,
    Id,
}

impl<'a> MessageReader<'a> {
    /// Reads the section of `n` messages that `input` starts with; it runs
    /// to the end of `input`.
    pub fn new(input: &'a [u8], n: usize) -> Result<Self, &'static str> {
        let mut rest = Input(input);
        let refs = rest.column(n)?;
        let (templates, parts) = read_dictionary(&mut rest, n)?;
        Self::with_values(refs, templates, parts, rest)
    }

    /// Reads a section written by [`MessageWriter::finish_apart`].
    pub fn apart(dictionary: &'a [u8], input: &'a [u8], n: usize) -> Result<Self, &'static str> {
        let mut rest = Input(input);
        let refs = rest.column(n)?;
        let mut dictionary = Input(dictionary);
        let (templates, parts) = read_dictionary(&mut dictionary, n)?;
        if !dictionary.0.is_empty() {
            return Err("the templates run past their count");
        }
        Self::with_values(refs, templates, parts, rest)
    }

    fn with_values(
        refs: Input<'a>,
        templates: Vec<std::ops::Range<usize>>,
        parts: Vec<Part<'a>>,
        mut rest: Input<'a>,
    ) -> Result<Self, &'static str> {
        let len = rest.varint()? as usize;
        let numbers = Input(rest.take(len)?);
        Ok(MessageReader {
            refs,
            templates,
            parts,
            numbers,
            ids: rest,
        })
    }

    /// Appends the next message to `out`.
    pub fn next(&mut self, out: &mut Vec<u8>) -> Result<(), &'static str> {
        let index = self.refs.varint()? as usize;
        let range = self
            .templates
            .get(index)
            .ok_or("a message refers past its block's templates")?
            .clone();
        for part in &self.parts[range] {
            match part {
                Part::Text(text) => out.extend_from_slice(text),
                Part::Number => {
                    let coded = self.numbers.varint()?;
                    let value = coded >> 1;
                    let width = if coded & 1 == 1 {
                        self.numbers.varint()? as usize
                    } else {
                        0
                    };
                    if width > MAX_DIGITS {
                        return Err("a number wider than a number can be");
                    }
                    push_decimal(out, value, width);
                }
                Part::Id => {
                    let len = self.ids.take(1)?[0] as usize;
                    let packed = self.ids.take(len.div_ceil(2))?;
                    for &byte in packed {
                        out.extend_from_slice(&HEX_PAIRS[byte as usize]);
                    }
                    if len % 2 == 1 {
                        out.pop();
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether every value was used: a block whose columns disagree is
    /// damaged.
    pub fn is_spent(&self) -> bool {
        self.refs.0.is_empty() && self.numbers.0.is_empty() && self.ids.0.is_empty()
    }
}

/// Reads a dictionary of templates, each cut into its parts.
fn read_dictionary<'a>(
    input: &mut Input<'a>,
    n: usize,
) -> Result<(Vec<std::ops::Range<usize>>, Vec<Part<'a>>), &'static str> {
    let count = input.varint()? as usize;
    let mut templates = Vec::with_capacity(count.min(n));
    let mut parts = Vec::new();
    for _ in 0..count {
        let len = input.varint()? as usize;
        let start = parts.len();
        cut(input.take(len)?, &mut parts)?;
        templates.push(start..parts.len());
    }
    Ok((templates, parts))
}

/// The runs of `text` (folded when `ignore_case`: see `tokens::fold`)
/// that no value can have made: its maximal runs of bytes other than
/// digits and `a`-`f`. A number expands to digits and an id to lowercase
/// hexadecimal, so in any message containing `text`, these runs come
/// from the message's template, whole.
pub(crate) fn literal_runs(text: &str, ignore_case: bool) -> Vec<Vec<u8>> {
    let mut folded = Vec::new();
    let bytes = if ignore_case {
        super::tokens::fold(text, &mut folded);
        &folded[..]
    } else {
        text.as_bytes()
    };
    bytes
        .split(|&b| is_lower_hex(b))
        .filter(|run| !run.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Whether a message made from one of the templates of `dictionary` (as
/// [`MessageWriter::finish_apart`] wrote it) may contain a text whose
/// [`literal_runs`] are `runs`: some template must hold every run in its
/// own text. A dictionary that cannot be read rules nothing out.
pub(crate) fn may_contain(dictionary: &[u8], runs: &[Vec<u8>], ignore_case: bool) -> bool {
    if runs.is_empty() {
        return true;
    }
    let mut input = Input(dictionary);
    let Ok(count) = input.varint() else {
        return true;
    };
    let mut folded = Vec::new();
    for _ in 0..count {
        let Ok(template) = input.varint().and_then(|len| input.take(len as usize)) else {
            return true;
        };
        // An escaped byte splits the text it is in; such a template is
        // rare, and taken as holding anything.
        if template.contains(&ESCAPE) {
            return true;
        }
        let text = if ignore_case {
            let Ok(template) = std::str::from_utf8(template) else {
                return true;
            };
            super::tokens::fold(template, &mut folded);
            &folded[..]
        } else {
            template
        };
        if runs
            .iter()
            .all(|run| memchr::memmem::find(text, run).is_some())
        {
            return true;
        }
    }
    false
}

/// Cuts `template` into its parts, appended to `parts`.
fn cut<'a>(template: &'a [u8], parts: &mut Vec<Part<'a>>) -> Result<(), &'static str> {
    let mut i = 0;
    while i < template.len() {
        let literal =
            memchr::memchr3(NUMBER, ID, ESCAPE, &template[i..]).unwrap_or(template.len() - i);
        if literal > 0 {
            parts.push(Part::Text(&template[i..i + literal]));
        }
        i += literal;
        match template.get(i) {
            None => break,
            Some(&NUMBER) => parts.push(Part::Number),
            Some(&ID) => parts.push(Part::Id),
            Some(_) => {
                let escaped = template
                    .get(i + 1..i + 2)
                    .ok_or("a template ends in an escape")?;
                parts.push(Part::Text(escaped));
                i += 1;
            }
        }
        i += 1;
    }
    Ok(())
}

/// Each byte's two hexadecimal digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [digits[i >> 4], digits[i & 0x0f]];
        i += 1;
    }
    pairs
};

fn is_lower_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

fn push_id(out: &mut Vec<u8>, run: &[u8]) {
    out.push(run.len() as u8);
    for pair in run.chunks(2) {
        let high = nibble(pair[0]);
        let low = pair.get(1).map_or(0, |&b| nibble(b));
        out.push(high << 4 | low);
    }
}

fn nibble(hex: u8) -> u8 {
    match hex {
        b'0'..=b'9' => hex - b'0',
        _ => hex - b'a' + 10,
    }
}

/// How many digits `value` takes without leading zeros.
fn decimal_width(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// `value` in decimal, zero-padded to `width` digits (a value too large
/// for its width, which only damage makes, is written whole).
fn push_decimal(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while value >= 100 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DECIMAL_PAIRS[(value % 100) as usize]);
        value /= 100;
    }
    if value >= 10 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DECIMAL_PAIRS[value as usize]);
    } else {
        at -= 1;
        digits[at] = b'0' + value as u8;
    }
    let start = at.min(digits.len() - width.min(MAX_DIGITS));
    out.extend_from_slice(&digits[start..]);
}

/// The numbers below 100 as two decimal digits.
const DECIMAL_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    pairs
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut writer = MessageWriter::default();
        for message in messages {
            writer.push(message);
        }
        let mut section = Vec::new();
        writer.finish(&mut section);
        let mut reader = MessageReader::new(&section, messages.len()).unwrap();
        let back = messages
            .iter()
            .map(|_| {
                let mut out = Vec::new();
                reader.next(&mut out).unwrap();
                out
            })
            .collect();
        assert!(reader.is_spent());
        back
    }

    #[test]
    fn values_leave_the_template() {
        let mut writer = MessageWriter::default();
        writer.push(b"GET /users/42 took 007ms trace_id=5b8efff798038103");
        writer.push(b"GET /users/1234 took 120ms trace_id=0123456789abcdef");
        assert_eq!(writer.templates.len(), 1);
        assert_eq!(
            writer.dictionary[1..],
            b"GET /users/\x01 took \x01ms trace_id=\x02"[..]
        );
    }

    #[test]
    fn templates_rule_out_texts_no_message_can_hold() {
        let mut writer = MessageWriter::default();
        writer.push(b"GET /users/42 took 7ms trace_id=5b8efff798038103");
        writer.push(b"cache miss key=user:9");
        let (mut dictionary, mut rest) = (Vec::new(), Vec::new());
        writer.finish_apart(&mut dictionary, &mut rest);
        let may =
            |text: &str, fold: bool| may_contain(&dictionary, &literal_runs(text, fold), fold);
        assert!(may("/users/1234 took", false));
        assert!(may("ms trace_id=", false));
        assert!(!may("NEEDLE-", false));
        assert!(
            !may("GET /users/42 took 7ms cache", false),
            "two templates' texts"
        );
        assert!(!may("get /USERS", false));
        assert!(may("get /USERS", true));
        // All digits and a-f: any value may have made it.
        assert!(may("deadbeef", false));
        assert_eq!(
            literal_runs("NEEDLE-7f3a9c", false),
            vec![b"NEEDLE-".to_vec()]
        );
    }

    #[test]
    fn edges_come_back() {
        let messages: Vec<Vec<u8>> = [
            &b""[..],
            b"0",
            b"00",
            b"000123",
            b"18446744073709551615",
            b"999999999999999999",
            b"1000000000000000000",
            b"\x01\x02\x03 marker bytes \x03",
            b"deadbeefcafe",
            b"abc123def456",
            b"5b8efff7-9803-8103-d269-b633813fc60c",
            b"ABCDEF0123456789",
            "Ünïcode 12 ✓".as_bytes(),
            &[b'a'; 300][..],
            b"1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f",
        ]
        .iter()
        .map(|m| m.to_vec())
        .collect();
        assert_eq!(round_trip(&messages), messages);
    }

    proptest! {
        #[test]
        fn any_messages_come_back_byte_for_byte(
            messages in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        Just(b'0'), Just(b'7'), Just(b'9'), Just(b'a'), Just(b'f'),
                        Just(b'g'), Just(b' '), Just(0x01u8), Just(0x02u8), Just(0x03u8),
                        any::<u8>(),
                    ],
                    0..80,
                ),
                1..20,
            )
        ) {
            prop_assert_eq!(round_trip(&messages), messages);
        }

        /// The property skipping by templates rests on: the templates of a
        /// block holding a message hold the literal runs of any text the
        /// message contains, in either case mode.
        #[test]
        fn a_block_holding_a_text_has_templates_that_may_contain_it(
            messages in proptest::collection::vec("[a-hA-H0-9 =:_-]{0,40}( [0-9a-f]{16})?[xyz0-9 ]{0,10}", 1..12),
            pick in any::<prop::sample::Index>(),
            from in any::<prop::sample::Index>(),
            len in 0usize..30,
            upper in any::<bool>(),
        ) {
            let mut writer = MessageWriter::default();
            for message in &messages {
                writer.push(message.as_bytes());
            }
            let (mut dictionary, mut rest) = (Vec::new(), Vec::new());
            writer.finish_apart(&mut dictionary, &mut rest);
            let message = &messages[pick.index(messages.len())];
            let from = from.index(message.len() + 1);
            let text = &message[from..(from + len).min(message.len())];
            prop_assert!(may_contain(&dictionary, &literal_runs(text, false), false));
            let shouted = if upper { text.to_uppercase() } else { text.to_string() };
            prop_assert!(may_contain(&dictionary, &literal_runs(&shouted, true), true));
        }

        #[test]
        fn damaged_sections_never_panic(flip in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
            let mut writer = MessageWriter::default();
            for i in 0..20u64 {
                writer.push(format!("req {i} id=5b8efff79803{i:04} 00{i}").as_bytes());
            }
            let mut section = Vec::new();
            writer.finish(&mut section);
            let at = flip.index(section.len());
            section[at] ^= 0x5a;
            let cut = cut.index(section.len() + 1);
            if let Ok(mut reader) = MessageReader::new(&section[..cut], 20) {
                let mut out = Vec::new();
                for _ in 0..20 {
                    if reader.next(&mut out).is_err() {
                        break;
                    }
                }
            }
        }
    }
}
