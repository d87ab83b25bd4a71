//! The on-disk record: one entry, framed and checksummed.
//!
//! ```text
//! u32 LE  payload length
//! u32 LE  CRC-32C of the payload
//! payload:
//!   u64 LE  cursor
//!   i64 LE  timestamp (Unix epoch nanoseconds)
//!   u8      level
//!   u32 LE  message length, then the message's UTF-8 bytes
//!   u32 LE  labels length, then per label: u16 LE name length, name,
//!                                        u16 LE value length, value
//! ```
//!
//! A record is served only if its length fits, its CRC matches, and its
//! fields parse; anything else is corruption, never data.

use crate::checksum;
use crate::{EntryRef, Level, NewEntry, StoreError};
use logtap_core::{encode_labels, EntryLimits, Labels};

/// Bytes before the payload: length and CRC.
pub(crate) const HEADER_LEN: usize = 8;
/// The smallest payload: cursor, timestamp, level, two empty lengths.
pub(crate) const MIN_PAYLOAD_LEN: usize = 8 + 8 + 1 + 4 + 4;
/// The largest payload the store writes or accepts on recovery. Larger
/// length fields are treated as corruption rather than trusted.
pub(crate) const MAX_PAYLOAD_LEN: usize = 1 << 30;

/// The bytes of a payload besides the entry's content
/// ([`logtap_core::content_bytes`]): cursor, timestamp, level, and the
/// message's and labels' lengths.
const PAYLOAD_OVERHEAD: usize = MIN_PAYLOAD_LEN;

/// What the record format can hold: the store's answer to
/// `Backend::limits`, so that ingest paths check the format's own bounds.
pub(crate) const LIMITS: EntryLimits = EntryLimits {
    max_message_bytes: u32::MAX as usize,
    max_labels: u16::MAX as usize,
    max_label_bytes: u16::MAX as usize,
    max_entry_bytes: MAX_PAYLOAD_LEN - PAYLOAD_OVERHEAD,
};

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Fewer bytes than the header or the payload it announces: a torn
    /// write at the end of a file, or a reader's buffer that needs refilling.
    Incomplete { needed: usize },
    /// The bytes are there but are not a valid record.
    Corrupt(&'static str),
}

/// Appends the record for `entry` with `cursor` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, cursor: u64, entry: &NewEntry) -> Result<(), StoreError> {
    let message_len = u32::try_from(entry.message.len())
        .map_err(|_| StoreError::EntryTooLarge("the message is over 4 GiB"))?;
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.extend_from_slice(&cursor.to_le_bytes());
    out.extend_from_slice(&entry.timestamp.to_le_bytes());
    out.push(entry.level as u8);
    out.extend_from_slice(&message_len.to_le_bytes());
    out.extend_from_slice(entry.message.as_bytes());
    let labels_len_at = out.len();
    out.extend_from_slice(&[0u8; 4]);
    if let Err(error) = encode_labels(&entry.labels, out) {
        out.truncate(start);
        return Err(error);
    }
    let labels_len = (out.len() - labels_len_at - 4) as u32;
    out[labels_len_at..labels_len_at + 4].copy_from_slice(&labels_len.to_le_bytes());
    frame(out, start)
}

/// Appends the record of an entry already stored once, from its parts:
/// how a sealed block turns back into records (`labels` in their compact
/// form, as records hold them). The CRC is left 0: these records live in
/// memory only, and their block was checked whole when it was read, so
/// every reader of them skips the check (as for the writer's own chunks).
pub(crate) fn encode_parts(
    out: &mut Vec<u8>,
    head: Head,
    message: &[u8],
    labels: &[u8],
) -> Result<(), StoreError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.extend_from_slice(&head.cursor.to_le_bytes());
    out.extend_from_slice(&head.timestamp.to_le_bytes());
    out.push(head.level as u8);
    out.extend_from_slice(&(message.len() as u32).to_le_bytes());
    out.extend_from_slice(message);
    out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    out.extend_from_slice(labels);
    let payload_len = out.len() - start - HEADER_LEN;
    if payload_len > MAX_PAYLOAD_LEN {
        out.truncate(start);
        return Err(StoreError::EntryTooLarge("the record is over 1 GiB"));
    }
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    Ok(())
}

/// Fills in the length and CRC of the record whose header starts at
/// `start`, the payload following it to the end of `out`.
fn frame(out: &mut Vec<u8>, start: usize) -> Result<(), StoreError> {
    let payload_len = out.len() - start - HEADER_LEN;
    if payload_len > MAX_PAYLOAD_LEN {
        out.truncate(start);
        return Err(StoreError::EntryTooLarge("the record is over 1 GiB"));
    }
    let crc = checksum::crc32c(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Decodes the record at the start of `bytes`, checking its CRC and fields.
/// Returns the entry and the record's whole length.
pub(crate) fn decode(bytes: &[u8]) -> Result<(EntryRef<'_>, usize), DecodeError> {
    let (payload, total) = framed(bytes, true)?;
    Ok((parse_payload(payload)?, total))
}

/// What a reader needs to know of a record before it knows whether the
/// record matches: where it sits and what the store's own filters look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub cursor: u64,
    pub timestamp: i64,
    pub level: Level,
}

/// Reads the head of the record at the start of `bytes` and its whole
/// length, checking the CRC when `verify` says so, but not parsing the
/// message or labels: a record a filter rejects is never parsed in full,
/// and one that matches is parsed once, by [`decode_checked`].
pub(crate) fn decode_head(bytes: &[u8], verify: bool) -> Result<(Head, usize), DecodeError> {
    let (payload, total) = framed(bytes, verify)?;
    Ok((parse_head(payload)?, total))
}

/// Decodes a record whose CRC was already checked by this reader: parses
/// the fields again without hashing the bytes a second time.
pub(crate) fn decode_checked(bytes: &[u8]) -> Result<(EntryRef<'_>, usize), DecodeError> {
    let (payload, total) = framed(bytes, false)?;
    Ok((parse_payload(payload)?, total))
}

/// The payload of the record at the start of `bytes` and the record's
/// whole length, its CRC checked when `verify` says so.
fn framed(bytes: &[u8], verify: bool) -> Result<(&[u8], usize), DecodeError> {
    let total = HEADER_LEN + payload_len(bytes)?;
    let payload = &bytes[HEADER_LEN..total];
    let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    if verify && checksum::crc32c(payload) != crc {
        return Err(DecodeError::Corrupt("checksum mismatch"));
    }
    Ok((payload, total))
}

/// The announced payload length, checked against the format's bounds and
/// against what `bytes` holds.
fn payload_len(bytes: &[u8]) -> Result<usize, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Incomplete { needed: HEADER_LEN });
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    if !(MIN_PAYLOAD_LEN..=MAX_PAYLOAD_LEN).contains(&len) {
        return Err(DecodeError::Corrupt("impossible record length"));
    }
    if bytes.len() < HEADER_LEN + len {
        return Err(DecodeError::Incomplete {
            needed: HEADER_LEN + len,
        });
    }
    Ok(len)
}

/// The cursor a record claims, read without checking anything else: lets
/// recovery discard candidate records cheaply before computing a CRC.
pub(crate) fn peek_cursor(bytes: &[u8]) -> Option<u64> {
    let raw = bytes.get(HEADER_LEN..HEADER_LEN + 8)?;
    Some(u64::from_le_bytes(raw.try_into().unwrap()))
}

/// The fields every payload starts with (its length is already checked
/// against `MIN_PAYLOAD_LEN`).
fn parse_head(payload: &[u8]) -> Result<Head, DecodeError> {
    Ok(Head {
        cursor: u64::from_le_bytes(payload[0..8].try_into().unwrap()),
        timestamp: i64::from_le_bytes(payload[8..16].try_into().unwrap()),
        level: Level::from_byte(payload[16]).ok_or(DecodeError::Corrupt("unknown level byte"))?,
    })
}

fn parse_payload(payload: &[u8]) -> Result<EntryRef<'_>, DecodeError> {
    let corrupt = DecodeError::Corrupt;
    let Head {
        cursor,
        timestamp,
        level,
    } = parse_head(payload)?;
    let message_len = u32::from_le_bytes(payload[17..21].try_into().unwrap()) as usize;
    let message_end = 21usize
        .checked_add(message_len)
        .filter(|end| end + 4 <= payload.len())
        .ok_or(corrupt("message length past the record's end"))?;
    let message = std::str::from_utf8(&payload[21..message_end])
        .map_err(|_| corrupt("message is not UTF-8"))?;
    let labels_len =
        u32::from_le_bytes(payload[message_end..message_end + 4].try_into().unwrap()) as usize;
    let labels = &payload[message_end + 4..];
    if labels.len() != labels_len {
        return Err(corrupt("labels length does not match the record's length"));
    }
    let labels = Labels::parse(labels).map_err(corrupt)?;
    Ok(EntryRef::new(cursor, timestamp, level, message, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_entry() -> impl Strategy<Value = NewEntry> {
        (
            any::<i64>(),
            0u8..6,
            ".{0,200}",
            proptest::collection::vec((".{0,20}", ".{0,40}"), 0..5),
        )
            .prop_map(|(timestamp, level, message, labels)| NewEntry {
                timestamp,
                level: Level::from_byte(level).unwrap(),
                message,
                labels,
            })
    }

    proptest! {
        #[test]
        fn every_entry_round_trips(cursor in any::<u64>(), entry in arb_entry()) {
            let mut bytes = Vec::new();
            encode(&mut bytes, cursor, &entry).unwrap();
            let (decoded, len) = decode(&bytes).unwrap();
            prop_assert_eq!(len, bytes.len());
            let owned = decoded.to_entry();
            prop_assert_eq!(owned.cursor, cursor);
            prop_assert_eq!(owned.timestamp, entry.timestamp);
            prop_assert_eq!(owned.level, entry.level);
            prop_assert_eq!(owned.message, entry.message);
            prop_assert_eq!(owned.labels, entry.labels);
            // The head alone says the same, checked or not.
            for verify in [true, false] {
                let (head, head_len) = decode_head(&bytes, verify).unwrap();
                prop_assert_eq!(head_len, bytes.len());
                prop_assert_eq!(head, Head { cursor, timestamp: entry.timestamp, level: entry.level });
            }
        }

        #[test]
        fn every_prefix_is_incomplete(entry in arb_entry(), cut in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            encode(&mut bytes, 7, &entry).unwrap();
            let cut = cut.index(bytes.len());
            let incomplete = matches!(decode(&bytes[..cut]), Err(DecodeError::Incomplete { .. }));
            prop_assert!(incomplete, "a prefix of {} bytes was not incomplete", cut);
        }

        #[test]
        fn any_flipped_bit_is_caught(entry in arb_entry(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = Vec::new();
            encode(&mut bytes, 7, &entry).unwrap();
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
            // A flip in the length may make the record look longer than the
            // bytes (incomplete) or impossible; anywhere else the CRC fails.
            prop_assert!(decode(&bytes).is_err());
            prop_assert!(decode_head(&bytes, true).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let _ = decode_head(&bytes, false);
            let _ = decode_checked(&bytes);
        }
    }

    #[test]
    fn oversized_label_is_refused_and_leaves_the_buffer_as_it_was() {
        let mut out = vec![1, 2, 3];
        let entry = NewEntry {
            timestamp: 0,
            level: Level::Info,
            message: "m".into(),
            labels: vec![("k".into(), "v".repeat(70_000))],
        };
        assert!(matches!(
            encode(&mut out, 1, &entry),
            Err(StoreError::EntryTooLarge(_))
        ));
        assert_eq!(out, vec![1, 2, 3]);
    }
}
