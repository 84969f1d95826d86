//! Encoding detection and cell decoding for departmental text exports: UTF-8 (with or
//! without BOM), UTF-16 with BOM, otherwise GB18030 (a superset of GBK and GB2312).
//! Bytes that are not text in the file's encoding are never replaced silently: the
//! cell shows them as `\xB3` and the row says which cell and which bytes.

use encoding_rs::{DecoderResult, Encoding, GB18030, UTF_16BE, UTF_16LE, UTF_8};

/// How many bytes of a file the encoding is decided on.
pub const SAMPLE_BYTES: usize = 1 << 20;

/// Guesses the encoding of a text file from its first bytes ([`SAMPLE_BYTES`]).
///
/// A BOM decides. Without one, text whose non-ASCII characters are nearly all valid
/// UTF-8 is UTF-8: one stray byte among many UTF-8 characters does not switch the
/// whole file (the row holding it is refused on its own). Text with no valid UTF-8
/// multi-byte character but invalid sequences is GB18030, which is what Chinese office
/// software writes when it says "ANSI" or "GBK". A character cut at the end of the
/// sample is allowed.
pub fn detect(sample: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(sample) {
        return enc;
    }
    let (valid, invalid) = utf8_census(sample);
    // GB18030 text forms a valid 2–4 byte UTF-8 sequence only by accident, and rarely;
    // UTF-8 text with a damaged byte has many valid sequences per invalid one.
    if invalid == 0 || valid >= 8 * invalid {
        UTF_8
    } else {
        GB18030
    }
}

/// (valid multi-byte UTF-8 characters, invalid sequences) in `bytes`; a sequence cut
/// by the end counts as neither.
fn utf8_census(mut bytes: &[u8]) -> (usize, usize) {
    let (mut valid, mut invalid) = (0usize, 0usize);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                valid += count_multibyte(s);
                return (valid, invalid);
            }
            Err(e) => {
                let ok = e.valid_up_to();
                valid += count_multibyte(std::str::from_utf8(&bytes[..ok]).unwrap_or(""));
                match e.error_len() {
                    Some(n) => {
                        invalid += 1;
                        bytes = &bytes[ok + n..];
                    }
                    None => return (valid, invalid),
                }
            }
        }
    }
}

/// Non-ASCII characters of valid text: one lead byte each.
fn count_multibyte(s: &str) -> usize {
    s.bytes().filter(|b| *b >= 0xC0).count()
}

/// A short name for reports.
pub fn name(enc: &'static Encoding) -> &'static str {
    if enc == UTF_8 {
        "UTF-8"
    } else if enc == UTF_16LE {
        "UTF-16LE"
    } else if enc == UTF_16BE {
        "UTF-16BE"
    } else {
        "GB18030"
    }
}

/// One cell decoded from `enc` (UTF-8 or GB18030; the parser cut it at ASCII
/// delimiters) and appended to `out`. Returns the first malformed byte sequence when
/// there is one; every malformed sequence is written as `\xHH` escapes.
pub fn decode_cell(enc: &'static Encoding, bytes: &[u8], out: &mut String) -> Option<Vec<u8>> {
    if enc == UTF_8 {
        return decode_utf8(bytes, out);
    }
    if bytes.is_ascii() {
        // ASCII is the same in GB18030; checked above.
        out.push_str(std::str::from_utf8(bytes).unwrap_or_default());
        return None;
    }
    if enc == GB18030
        && decode_gb18030_record(std::iter::once(bytes), bytes.len(), out, &mut Vec::new())
    {
        return None;
    }
    let mut decoder = enc.new_decoder_without_bom_handling();
    let mut first_bad = None;
    let mut rest = bytes;
    out.reserve(bytes.len() * 3 / 2 + 4);
    loop {
        let (result, read) = decoder.decode_to_string_without_replacement(rest, out, true);
        match result {
            DecoderResult::InputEmpty => return first_bad,
            DecoderResult::OutputFull => out.reserve(rest.len() * 3 + 16),
            DecoderResult::Malformed(bad, after) => {
                // The malformed bytes end `after` bytes before what was read.
                let end = read.saturating_sub(after as usize);
                let start = end.saturating_sub(bad as usize);
                let malformed = &rest[start..end];
                escape(malformed, out);
                first_bad.get_or_insert_with(|| malformed.to_vec());
            }
        }
        rest = &rest[read..];
    }
}

/// Trail bytes of a two-byte GB18030 sequence: 0x40–0xFE (0x7F is never one, and
/// 0x30–0x39 start a four-byte sequence instead).
const TRAILS: usize = 0xFF - 0x40;

/// Every two-byte GB18030 sequence (lead 0x81–0xFE) as the UTF-8 of the one character
/// encoding_rs decodes it to, packed in a `u32`: the bytes in the low three (in order),
/// their count in the high one — 0 where it decodes to anything else (an error, or more
/// than one character). Built once from encoding_rs itself, so the fast path below can
/// only ever agree with it.
fn two_byte_table() -> &'static [u32] {
    static TABLE: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Vec::with_capacity(126 * TRAILS);
        for lead in 0x81..=0xFEu8 {
            for trail in 0x40..0xFFu8 {
                let pair = [lead, trail];
                let decoded = GB18030.decode_without_bom_handling_and_without_replacement(&pair);
                let mut entry = [0u8; 4];
                if let Some(s) = decoded {
                    let mut chars = s.chars();
                    if let (Some(c), None) = (chars.next(), chars.next()) {
                        if c.len_utf8() <= 3 {
                            entry[3] = c.len_utf8() as u8;
                            c.encode_utf8(&mut entry[..3]);
                        }
                    }
                }
                table.push(u32::from_le_bytes(entry));
            }
        }
        table
    })
}

/// Decodes the cells of one GB18030 record (`total_bytes` in all) at once, appending
/// them to `out` and each cell's end in `out` to `ends`: the path of nearly every row of
/// a Chinese office export, which holds only ASCII and two-byte characters. Eight ASCII
/// bytes are copied at a time and a character is one table load (a table built from
/// encoding_rs itself) and one store, with one reservation for the record. `false`, with
/// `out` as it was, when any cell holds anything else (a four-byte sequence, a malformed
/// byte) or the text is too long for `u32` ends: the general decoder then takes the
/// cells one by one ([`decode_cell`], whose own fast path is this with one cell).
pub fn decode_gb18030_record<'a>(
    cells: impl Iterator<Item = &'a [u8]>,
    total_bytes: usize,
    out: &mut String,
    ends: &mut Vec<u32>,
) -> bool {
    let start = out.len();
    let (start_ends, most) = (ends.len(), total_bytes + total_bytes / 2);
    if u32::try_from(start + most).is_err() {
        return false;
    }
    let table = two_byte_table();
    // SAFETY: the vector's length is set once at the end, to the bytes written, which
    // are whole UTF-8 sequences (ASCII bytes and table entries' first `len` bytes, each
    // the UTF-8 of one `char`) after `start`, a character boundary; on failure it stays
    // `start`. Every store is within the reservation: the output so far is at most 1.5×
    // the input consumed (ASCII one for one, two bytes to at most three), and a store of
    // 8 ASCII bytes or of a 4-byte entry starts at least 8 or 2 input bytes before the
    // end, so it ends within `start` + 1.5 × `total_bytes` + 1 bytes.
    let v = unsafe { out.as_mut_vec() };
    v.reserve(most + 8);
    let room = v.capacity();
    let base = v.as_mut_ptr();
    let mut len = start;
    let mut seen = 0usize;
    let refuse = |ends: &mut Vec<u32>| {
        ends.truncate(start_ends);
        false
    };
    for cell in cells {
        seen += cell.len();
        if seen > total_bytes {
            return refuse(ends);
        }
        let n = cell.len();
        let mut i = 0;
        while i < n {
            if i + 8 <= n {
                let word = u64::from_ne_bytes(cell[i..i + 8].try_into().expect("8 bytes"));
                if word & 0x8080_8080_8080_8080 == 0 {
                    debug_assert!(len + 8 <= room);
                    // SAFETY: within the reservation (see above).
                    unsafe {
                        std::ptr::copy_nonoverlapping(cell.as_ptr().add(i), base.add(len), 8)
                    };
                    len += 8;
                    i += 8;
                    continue;
                }
            }
            let lead = cell[i];
            if lead < 0x80 {
                debug_assert!(len < room);
                // SAFETY: within the reservation.
                unsafe { *base.add(len) = lead };
                len += 1;
                i += 1;
                continue;
            }
            let entry = match (lead, cell.get(i + 1)) {
                (0x81..=0xFE, Some(&trail)) if (0x40..0xFF).contains(&trail) => {
                    table[usize::from(lead - 0x81) * TRAILS + usize::from(trail - 0x40)]
                }
                _ => return refuse(ends),
            };
            let width = (entry >> 24) as usize;
            if width == 0 {
                return refuse(ends);
            }
            debug_assert!(len + 4 <= room);
            // SAFETY: within the reservation; the bytes past `width` are overwritten
            // by what follows or left outside the length.
            unsafe {
                base.add(len)
                    .cast::<[u8; 4]>()
                    .write_unaligned(entry.to_le_bytes())
            };
            len += width;
            i += 2;
        }
        ends.push(len as u32);
    }
    // SAFETY: `len` bytes were written, all whole UTF-8 sequences (see above).
    unsafe { v.set_len(len) };
    true
}

fn decode_utf8(mut bytes: &[u8], out: &mut String) -> Option<Vec<u8>> {
    let mut first_bad = None;
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return first_bad;
            }
            Err(e) => {
                let ok = e.valid_up_to();
                out.push_str(std::str::from_utf8(&bytes[..ok]).unwrap_or_default());
                let n = e.error_len().unwrap_or(bytes.len() - ok);
                let malformed = &bytes[ok..ok + n];
                escape(malformed, out);
                first_bad.get_or_insert_with(|| malformed.to_vec());
                bytes = &bytes[ok + n..];
            }
        }
    }
}

/// `\xB3\xFE` for bytes that are not text.
fn escape(bytes: &[u8], out: &mut String) {
    use std::fmt::Write;
    for b in bytes {
        let _ = write!(out, "\\x{b:02X}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `decode_cell` gives through encoding_rs alone (no table).
    fn decode_by_encoding_rs(bytes: &[u8]) -> (String, Option<Vec<u8>>) {
        let mut out = String::new();
        let mut decoder = GB18030.new_decoder_without_bom_handling();
        let mut first_bad = None;
        let mut rest = bytes;
        out.reserve(bytes.len() * 3 + 16);
        loop {
            let (result, read) = decoder.decode_to_string_without_replacement(rest, &mut out, true);
            match result {
                DecoderResult::InputEmpty => return (out, first_bad),
                DecoderResult::OutputFull => out.reserve(rest.len() * 3 + 16),
                DecoderResult::Malformed(bad, after) => {
                    let end = read.saturating_sub(after as usize);
                    let start = end.saturating_sub(bad as usize);
                    escape(&rest[start..end], &mut out);
                    first_bad.get_or_insert_with(|| rest[start..end].to_vec());
                }
            }
            rest = &rest[read..];
        }
    }

    #[test]
    fn every_two_byte_gb18030_sequence_decodes_as_encoding_rs_does() {
        for lead in 0x80..=0xFFu8 {
            for trail in 0x00..=0xFFu8 {
                for bytes in [vec![lead, trail], vec![b'a', lead, trail, b'z']] {
                    let mut out = String::new();
                    let bad = decode_cell(GB18030, &bytes, &mut out);
                    assert_eq!((out, bad), decode_by_encoding_rs(&bytes), "{bytes:02X?}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn gb18030_cells_decode_as_encoding_rs_does(
            text in "[a-z0-9,。（）同江市监督管理局〔〕€𠀀\u{E5E5}\u{FFFD} ]{0,40}",
            noise in proptest::collection::vec((0usize..64, 0x80u8..=0xFF), 0..3),
        ) {
            let mut bytes = GB18030.encode(&text).0.into_owned();
            for (at, b) in noise {
                let at = at.min(bytes.len());
                bytes.insert(at, b);
            }
            let mut out = String::new();
            let bad = decode_cell(GB18030, &bytes, &mut out);
            proptest::prop_assert_eq!((out, bad), decode_by_encoding_rs(&bytes));
        }
    }

    proptest::proptest! {
        #[test]
        fn a_gb18030_record_decodes_as_its_cells_do(
            cells in proptest::collection::vec(
                ("[a-zA-Z0-9,.:\\-。（）同江市监督管理局〔〕€𠀀 ]{0,30}",
                 proptest::collection::vec((0usize..64, 0x80u8..=0xFF), 0..2)),
                0..8),
        ) {
            // Only ASCII and two-byte characters, nothing inserted: the fast path's case.
            let two_byte_only = cells
                .iter()
                .all(|(text, noise)| noise.is_empty() && !text.contains(['€', '𠀀']));
            let cells: Vec<Vec<u8>> = cells
                .into_iter()
                .map(|(text, noise)| {
                    let mut bytes = GB18030.encode(&text).0.into_owned();
                    for (at, b) in noise {
                        let at = at.min(bytes.len());
                        bytes.insert(at, b);
                    }
                    bytes
                })
                .collect();
            let total = cells.iter().map(Vec::len).sum();
            // Appended after what the buffers held.
            let (mut text, mut ends) = (String::from("left over"), vec![9]);
            let whole = decode_gb18030_record(cells.iter().map(Vec::as_slice), total, &mut text, &mut ends);
            let mut by_cell = String::from("left over");
            let mut cell_ends = vec![9];
            for cell in &cells {
                decode_cell(GB18030, cell, &mut by_cell);
                cell_ends.push(by_cell.len() as u32);
            }
            // Anything else may be sent back to the cell-by-cell path (€ is one byte,
            // 𠀀 four, an inserted byte may be malformed); what it decodes is the same.
            proptest::prop_assert!(whole || !two_byte_only, "refused a record of two-byte cells");
            if whole {
                proptest::prop_assert_eq!((text, ends), (by_cell, cell_ends));
            } else {
                proptest::prop_assert_eq!((text.as_str(), ends), ("left over", vec![9]));
            }
        }
    }

    #[test]
    fn detects_bom_utf8_gb18030() {
        assert_eq!(detect(b"\xEF\xBB\xBFa,b"), UTF_8);
        assert_eq!(detect("企业名称,代码".as_bytes()), UTF_8);
        let (gbk, _, _) = GB18030.encode("企业名称,代码");
        assert_eq!(detect(&gbk), GB18030);
        // A UTF-8 character cut by the end of the sample is still UTF-8.
        let s = "企业".as_bytes();
        assert_eq!(detect(&s[..4]), UTF_8);
    }

    #[test]
    fn one_stray_byte_does_not_switch_a_utf8_file() {
        let mut text = "企业名称,统一社会信用代码\n".repeat(20).into_bytes();
        text.extend_from_slice(b"\xB3abc\n");
        text.extend_from_slice("某某公司,代码\n".repeat(20).as_bytes());
        assert_eq!(detect(&text), UTF_8);
        let text = "某某公司,代码\n".repeat(50);
        let (gbk, _, _) = GB18030.encode(&text);
        assert_eq!(detect(&gbk), GB18030);
    }

    #[test]
    fn malformed_bytes_are_escaped_and_reported() {
        let mut out = String::new();
        assert_eq!(decode_cell(UTF_8, b"ab\xB3c", &mut out), Some(vec![0xB3]));
        assert_eq!(out, "ab\\xB3c");
        let mut gbk = GB18030.encode("张三").0.into_owned();
        gbk.insert(2, 0xFF);
        let mut out = String::new();
        let bad = decode_cell(GB18030, &gbk, &mut out);
        assert!(bad.is_some(), "{out}");
        assert!(!out.contains('\u{FFFD}'), "{out}");
        assert!(
            out.starts_with('张') && out.ends_with('三') && out.contains("\\xFF"),
            "{out}"
        );
        let mut out = String::new();
        let lisi = GB18030.encode("李四").0.into_owned();
        assert_eq!(decode_cell(GB18030, &lisi, &mut out), None);
        assert_eq!(out, "李四");
    }
}
