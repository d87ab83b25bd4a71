//! Labels: an entry's `(name, value)` pairs, and the compact form every
//! backend keeps them in.
//!
//! The form is a sequence of pairs, each text preceded by its length:
//!
//! ```text
//! per label: u16 LE name length, name, u16 LE value length, value
//! ```
//!
//! It lives here, not in a backend, because a stored entry
//! ([`EntryRef`](crate::EntryRef)) borrows its labels in this form from
//! whatever buffer the backend read, and walks them only when asked.

use crate::StoreError;

/// The most labels one entry may carry (the count is a u16 on disk).
pub const MAX_LABELS: usize = u16::MAX as usize;

/// The longest label name or value, in bytes (its length is a u16).
pub const MAX_LABEL_TEXT_BYTES: usize = u16::MAX as usize;

/// Appends `labels` in the compact form to `out`. On error `out` is left
/// as it was, so a caller encoding a whole record can go on with the next.
/// Inlined: a backend calls it for every entry it appends.
#[inline]
pub fn encode_labels(labels: &[(String, String)], out: &mut Vec<u8>) -> Result<(), StoreError> {
    if labels.len() > MAX_LABELS {
        return Err(StoreError::EntryTooLarge("over 65,535 labels"));
    }
    let start = out.len();
    for (name, value) in labels {
        for text in [name, value] {
            let Ok(len) = u16::try_from(text.len()) else {
                out.truncate(start);
                return Err(StoreError::EntryTooLarge(
                    "a label name or value is over 64 KiB",
                ));
            };
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    Ok(())
}

/// Puts labels in the one form every ingest path stores: sorted by name, a
/// name given more than once keeping its last value. That is what a label
/// map (gRPC's, OTLP's attributes) makes of the same pairs, so an entry is
/// stored alike whichever protocol brought it.
pub fn normalize_labels(labels: &mut Vec<(String, String)>) {
    // Most senders' labels come sorted already (a map's order): one pass
    // tells, and spares the sort and the two reversals.
    if labels.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return;
    }
    // A stable sort keeps equal names in the order written; reversed, the
    // last written comes first in its run, which is the one dedup keeps.
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    labels.reverse();
    labels.dedup_by(|later, kept| later.0 == kept.0);
    labels.reverse();
}

/// The bytes `labels` take in the compact form.
#[inline]
pub fn encoded_labels_len(labels: &[(String, String)]) -> usize {
    labels
        .iter()
        .map(|(name, value)| 4 + name.len() + value.len())
        .sum()
}

/// An entry's labels, borrowed in the compact form; iterating gives
/// `(name, value)` in stored order.
///
/// The only way to make one is [`Labels::parse`], which checks the whole
/// block, so iteration cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels<'a> {
    /// The pairs not yet yielded.
    rest: &'a [u8],
}

impl<'a> Labels<'a> {
    /// Checks that `bytes` are whole labels in the compact form, each text
    /// UTF-8. Inlined: a backend calls it for every record it decodes, and
    /// most records carry few labels or none.
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<Labels<'a>, &'static str> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (_, after_name) = take_str(rest).ok_or("malformed label name")?;
            let (_, after_value) = take_str(after_name).ok_or("malformed label value")?;
            rest = after_value;
        }
        Ok(Labels { rest: bytes })
    }

    /// No labels.
    #[inline]
    pub fn empty() -> Labels<'static> {
        Labels { rest: &[] }
    }

    /// The labels not yet yielded, in the compact form: what a caller that
    /// must keep an entry beyond its reader's buffer copies, and gives back
    /// to [`Labels::parse`].
    pub fn as_bytes(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (name, rest) = take_str(self.rest)?;
        let (value, rest) = take_str(rest)?;
        self.rest = rest;
        Some((name, value))
    }
}

/// Splits a u16-length-prefixed UTF-8 string off the front of `bytes`.
#[inline]
fn take_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let len = u16::from_le_bytes(bytes.get(0..2)?.try_into().ok()?) as usize;
    let text = bytes.get(2..2 + len)?;
    Some((std::str::from_utf8(text).ok()?, &bytes[2 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_round_trip_in_order_with_repeats() {
        let given = pairs(&[("service", "api"), ("", ""), ("service", "é")]);
        let mut out = vec![9];
        encode_labels(&given, &mut out).unwrap();
        assert_eq!(out.len(), 1 + encoded_labels_len(&given));
        let back: Vec<_> = Labels::parse(&out[1..]).unwrap().collect();
        assert_eq!(back, vec![("service", "api"), ("", ""), ("service", "é")]);
        assert_eq!(Labels::empty().count(), 0);
    }

    #[test]
    fn an_oversized_label_leaves_the_buffer_as_it_was() {
        let mut out = vec![1, 2, 3];
        let given = pairs(&[("a", "b"), ("k", &"v".repeat(70_000))]);
        assert!(matches!(
            encode_labels(&given, &mut out),
            Err(StoreError::EntryTooLarge(_))
        ));
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn normalized_labels_are_sorted_with_the_last_value_of_a_repeated_name() {
        let mut labels = pairs(&[("b", "1"), ("a", "x"), ("b", "2"), ("c", ""), ("b", "3")]);
        normalize_labels(&mut labels);
        assert_eq!(labels, pairs(&[("a", "x"), ("b", "3"), ("c", "")]));
        let mut none = Vec::new();
        normalize_labels(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn malformed_blocks_are_refused() {
        assert_eq!(Labels::parse(&[1]), Err("malformed label name"));
        assert_eq!(Labels::parse(&[1, 0, b'a']), Err("malformed label value"));
        assert_eq!(
            Labels::parse(&[1, 0, 0xff, 0, 0]),
            Err("malformed label name")
        );
        assert!(Labels::parse(&[1, 0, b'a', 0, 0]).is_ok());
    }
}
