//! A record's identity: `record_id` from the business key, `version` from the
//! content, and their packed 16-byte forms.

use crate::domain::schema::Dataset;
use sha2::{Digest, Sha256};

/// `record_id`: the first 32 lowercase hex characters of SHA-256 over
/// `<dataset>|<key value 1>|<key value 2>…` (for `xzcf`: `xzcf|<credit code>|<文号>`).
pub fn record_id<S: AsRef<str>>(ds: &Dataset, values: &[S]) -> String {
    hex::encode(record_id_bytes(ds, values))
}

/// [`record_id`] as its 16 bytes.
pub fn record_id_bytes<S: AsRef<str>>(ds: &Dataset, values: &[S]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(ds.code.as_bytes());
    for k in &ds.key {
        h.update(b"|");
        h.update(values[*k].as_ref().as_bytes());
    }
    first16(&h.finalize())
}

fn first16(digest: &[u8]) -> [u8; 16] {
    digest[..16].try_into().expect("SHA-256 has 32 bytes")
}

/// `version`: 32 lowercase hex characters of the 128-bit XXH3 hash of the canonical
/// record — each non-empty field as `CODE=value`, in field order, separated by U+001E.
/// The update time and provenance are not content: a re-export that differs only in
/// 更新时间 has the same version. (The platforms take any string of up to 128
/// characters; change detection needs no cryptographic hash, and SHA-256 cost a sixth of
/// the mapping threads' time.)
pub fn version<S: AsRef<str>>(ds: &Dataset, values: &[S]) -> String {
    hex::encode(version_bytes(ds, values))
}

/// [`version`] as its 16 bytes.
pub fn version_bytes<S: AsRef<str>>(ds: &Dataset, values: &[S]) -> [u8; 16] {
    version_of_fields(
        ds.fields
            .iter()
            .zip(values)
            .map(|(f, v)| (f.code.as_str(), v.as_ref())),
    )
}

/// [`version_bytes`] of a record given as its fields' (code, value) in field order (an
/// empty value is left out, as in [`version`]).
pub fn version_of_fields<'a>(fields: impl Iterator<Item = (&'a str, &'a str)>) -> [u8; 16] {
    thread_local! {
        static CANONICAL: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    CANONICAL.with_borrow_mut(|buf| {
        buf.clear();
        for (code, v) in fields {
            if !v.is_empty() {
                buf.extend_from_slice(code.as_bytes());
                buf.push(b'=');
                buf.extend_from_slice(v.as_bytes());
                buf.push(0x1e);
            }
        }
        xxhash_rust::xxh3::xxh3_128(buf).to_be_bytes()
    })
}

/// 16 bytes as 32 lowercase hex characters, without allocating.
pub fn hex32(bytes: &[u8; 16]) -> HexId {
    let mut out = [0u8; 32];
    hex::encode_to_slice(bytes, &mut out).expect("32 bytes of room for 16");
    HexId(out)
}

/// 32 lowercase hex characters on the stack.
pub struct HexId([u8; 32]);

impl std::ops::Deref for HexId {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}

/// A set of packed record ids. Ids are hashes already: foldhash (seeded a process)
/// spreads them at a fraction of SipHash's cost (a night hashes every id of the history
/// two or three times).
pub type IdSet = std::collections::HashSet<[u8; 16], foldhash::fast::RandomState>;

/// A map from packed record ids (see [`IdSet`]).
pub type IdMap<V> = std::collections::HashMap<[u8; 16], V, foldhash::fast::RandomState>;

/// A 32-hex id packed into 16 bytes (for compact in-memory indexes).
pub fn pack_id(hex32: &str) -> [u8; 16] {
    let b = hex32.as_bytes();
    let mut out = [0u8; 16];
    if b.len() == 32 {
        // A table lookup a digit (a snapshot scan packs a million ids a night).
        let mut bad = 0u8;
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let (hi, lo) = (HEX_DIGIT[pair[0] as usize], HEX_DIGIT[pair[1] as usize]);
            bad |= hi | lo;
            *o = (hi << 4) | (lo & 0x0f);
        }
        if bad & 0xf0 == 0 {
            return out;
        }
    }
    // Not one of ours: hash it so it still has a stable compact key.
    let d = Sha256::digest(b);
    out.copy_from_slice(&d[..16]);
    out
}

/// The value of each hexadecimal digit (either case); 0xff for any other byte.
const HEX_DIGIT: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::registry;

    #[test]
    fn pack_id_reads_hex_of_either_case_and_hashes_anything_else() {
        let id = "00ff10aB9c8d7e6f5a4b3c2d1e0f9a8B";
        let mut want = [0u8; 16];
        hex::decode_to_slice(id, &mut want).unwrap();
        assert_eq!(pack_id(id), want);
        for other in [
            "",
            "00ff10ab9c8d7e6f5a4b3c2d1e0f9a8g",
            "00ff",
            "同同同同同同同同同同ab",
        ] {
            let d = Sha256::digest(other.as_bytes());
            assert_eq!(pack_id(other)[..], d[..16], "{other}");
        }
    }

    #[test]
    fn xzcf_record_id_is_the_documented_hash() {
        let ds = registry().get("xzcf").unwrap();
        let mut v = vec![String::new(); ds.fields.len()];
        v[ds.position("CF_XDR_SHXYM").unwrap()] = "91110000802100433B".into();
        v[ds.position("CF_WSH").unwrap()] = "同市监罚〔2024〕12号".into();
        let expected = hex::encode(
            &Sha256::digest("xzcf|91110000802100433B|同市监罚〔2024〕12号".as_bytes())[..16],
        );
        assert_eq!(record_id(&ds, &v), expected);
        let v1 = version(&ds, &v);
        v[ds.position("CF_NR").unwrap()] = "罚款".into();
        assert_ne!(version(&ds, &v), v1);
        assert_eq!(pack_id(&expected).to_vec(), hex::decode(&expected).unwrap());
    }
}
