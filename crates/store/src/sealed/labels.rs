//! A sealed block's labels: a column of values per label name.
//!
//! Entries of a block carry the same few label names (`service`, `host`,
//! `trace_id`) with values that vary independently. Kept per name, each
//! value column is as regular as that label is: a service is one of a few
//! dozen, a host one of a few hundred, a trace id a fresh identifier. Each
//! column goes through the message coder (`template.rs`), so `host-042`
//! becomes a template reference and the number 42, and a trace id its
//! packed nibbles.
//!
//! ```text
//! n varints     shape: index into the shapes below
//! varint s, then s times: varint k, k varints (name indexes, in order)
//! varint m, then m times: varint length, name
//! m times: varint length, the name's values (`template.rs`)
//! ```
//!
//! A shape is the names an entry carries, in the order it carries them,
//! so any list of labels (a name twice, any order) comes back as it was.

use super::block::{varint, Input};
use super::template::{MessageReader, MessageWriter};
use logtap_core::Labels;
use std::collections::HashMap;

/// A block's labels, split by name as they are pushed.
#[derive(Default)]
pub(crate) struct LabelWriter {
    /// Each distinct shape of the block, by its place in `shape_dictionary`.
    shapes: HashMap<Vec<u32>, u64>,
    shape_dictionary: Vec<u8>,
    shape_refs: Vec<u8>,
    /// Each name of the block, by its index.
    names: HashMap<Vec<u8>, u32>,
    name_list: Vec<u8>,
    /// Each name's values, by the name's index.
    values: Vec<MessageWriter>,
    /// The shape being built, reused from entry to entry.
    shape: Vec<u32>,
}

impl LabelWriter {
    /// Splits `labels` into their shape and values.
    pub fn push(&mut self, labels: Labels<'_>) {
        self.shape.clear();
        for (name, value) in labels {
            let next = self.names.len() as u32;
            let index = *self
                .names
                .entry(name.as_bytes().to_vec())
                .or_insert_with(|| {
                    varint(&mut self.name_list, name.len() as u64);
                    self.name_list.extend_from_slice(name.as_bytes());
                    next
                });
            if index == next {
                self.values.push(MessageWriter::default());
            }
            self.values[index as usize].push(value.as_bytes());
            self.shape.push(index);
        }
        let next = self.shapes.len() as u64;
        let index = match self.shapes.get(self.shape.as_slice()) {
            Some(&index) => index,
            None => {
                self.shapes.insert(self.shape.clone(), next);
                varint(&mut self.shape_dictionary, self.shape.len() as u64);
                for &name in &self.shape {
                    varint(&mut self.shape_dictionary, name as u64);
                }
                next
            }
        };
        varint(&mut self.shape_refs, index);
    }

    /// Appends the labels' section to `out` and empties the writer for the
    /// next block.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.shape_refs);
        varint(out, self.shapes.len() as u64);
        out.extend_from_slice(&self.shape_dictionary);
        varint(out, self.names.len() as u64);
        out.extend_from_slice(&self.name_list);
        let mut section = Vec::new();
        for values in &mut self.values {
            section.clear();
            values.finish(&mut section);
            varint(out, section.len() as u64);
            out.extend_from_slice(&section);
        }
        self.shapes.clear();
        self.shape_dictionary.clear();
        self.shape_refs.clear();
        self.names.clear();
        self.name_list.clear();
        self.values.clear();
    }
}

/// A block's labels being put back together, entry by entry.
pub(crate) struct LabelReader<'a> {
    shape_refs: Input<'a>,
    /// Each shape's name indexes: a range of `shape_names`.
    shapes: Vec<std::ops::Range<usize>>,
    shape_names: Vec<usize>,
    names: Vec<&'a [u8]>,
    values: Vec<MessageReader<'a>>,
}

impl<'a> LabelReader<'a> {
    /// Reads the labels of `n` entries that `input` starts with; returns
    /// the reader and what follows the section.
    pub fn new(input: &'a [u8], n: usize) -> Result<(Self, &'a [u8]), &'static str> {
        let mut rest = Input(input);
        let shape_refs = rest.column(n)?;
        let count = rest.varint()? as usize;
        let mut shapes = Vec::with_capacity(count.min(n));
        let mut shape_names = Vec::new();
        for _ in 0..count {
            let len = rest.varint()? as usize;
            let start = shape_names.len();
            for _ in 0..len.min(rest.0.len()) {
                shape_names.push(rest.varint()? as usize);
            }
            shapes.push(start..shape_names.len());
        }
        let count = rest.varint()? as usize;
        let mut names = Vec::with_capacity(count.min(rest.0.len()));
        for _ in 0..count {
            let len = rest.varint()? as usize;
            names.push(rest.take(len)?);
        }
        // How many values each name has: one per entry whose shape holds it.
        let mut per_name = vec![0usize; names.len()];
        let mut refs = Input(shape_refs.0);
        for _ in 0..n {
            let shape = shapes
                .get(refs.varint()? as usize)
                .ok_or("an entry refers past its block's label shapes")?;
            for &name in &shape_names[shape.clone()] {
                *per_name
                    .get_mut(name)
                    .ok_or("a label shape refers past its block's names")? += 1;
            }
        }
        let mut values = Vec::with_capacity(names.len());
        for &count in &per_name {
            let len = rest.varint()? as usize;
            values.push(MessageReader::new(rest.take(len)?, count)?);
        }
        let reader = LabelReader {
            shape_refs,
            shapes,
            shape_names,
            names,
            values,
        };
        Ok((reader, rest.0))
    }

    /// Appends the next entry's labels, in their compact form, to `out`.
    pub fn next(&mut self, out: &mut Vec<u8>) -> Result<(), &'static str> {
        let shape = self.shapes[self.shape_refs.varint()? as usize].clone();
        for &name in &self.shape_names[shape] {
            let text = self.names[name];
            push_len(out, text.len())?;
            out.extend_from_slice(text);
            let at = out.len();
            out.extend_from_slice(&[0, 0]);
            self.values[name].next(out)?;
            let len = u16::try_from(out.len() - at - 2)
                .map_err(|_| "a label value longer than a label can be")?;
            out[at..at + 2].copy_from_slice(&len.to_le_bytes());
        }
        Ok(())
    }

    /// Whether every value was used.
    pub fn is_spent(&self) -> bool {
        self.shape_refs.0.is_empty() && self.values.iter().all(MessageReader::is_spent)
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) -> Result<(), &'static str> {
    let len = u16::try_from(len).map_err(|_| "a label name longer than a label can be")?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtap_core::encode_labels;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_labels_come_back_byte_for_byte(
            entries in proptest::collection::vec(
                proptest::collection::vec(("[a-c]{0,3}", "(svc-[0-9]{1,3}|[0-9a-f]{16}|.{0,6})"), 0..4),
                1..40,
            )
        ) {
            let encoded: Vec<Vec<u8>> = entries
                .iter()
                .map(|labels| {
                    let mut out = Vec::new();
                    encode_labels(labels, &mut out).unwrap();
                    out
                })
                .collect();
            let mut writer = LabelWriter::default();
            for labels in &encoded {
                writer.push(Labels::parse(labels).unwrap());
            }
            let mut section = Vec::new();
            writer.finish(&mut section);
            section.extend_from_slice(b"after");
            let (mut reader, rest) = LabelReader::new(&section, encoded.len()).unwrap();
            prop_assert_eq!(rest, b"after");
            for labels in &encoded {
                let mut out = Vec::new();
                reader.next(&mut out).unwrap();
                prop_assert_eq!(&out, labels);
            }
            prop_assert!(reader.is_spent());
        }
    }
}
