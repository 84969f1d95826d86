//! Encoding detection for departmental text exports: UTF-8 (with or without BOM),
//! UTF-16 with BOM, otherwise GB18030 (a superset of GBK and GB2312).

use encoding_rs::{Encoding, GB18030, UTF_16BE, UTF_16LE, UTF_8};

/// Guesses the encoding of a text file from its first bytes.
///
/// A BOM decides. Without one, text that is valid UTF-8 (a character cut at the end of
/// the sample is allowed) is UTF-8; anything else is taken as GB18030, which is what
/// Chinese office software writes when it says "ANSI" or "GBK".
pub fn detect(sample: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(sample) {
        return enc;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => UTF_8,
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => GB18030,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
