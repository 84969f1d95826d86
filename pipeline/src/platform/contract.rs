//! The platforms' contract (shared/upstream-api.md, v1) as types and functions, in one
//! place for both sides: the push and reconcile (through [`super::http_v1`]) and the
//! built-in simulator (in `devtools`) use these same definitions, so they cannot drift.
//!
//! What is here: the request paths, the batch envelope and its record operations, the
//! receipt, the record listing, the summary and its digest, the error body, the limits,
//! and request signing (which lives in `connectors`, because the HTTP source signs its
//! requests the same way, and is re-exported here).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// HMAC request signing (the contract's Authentication section).
pub use connectors::signing;

/// At most this many records in one batch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// At most this many bytes in one batch body.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Page size bounds of the record listing.
pub const MAX_PAGE_SIZE: usize = 5000;

/// `POST` here to send a batch.
pub const BATCHES_PATH: &str = "/api/v1/batches";

/// `GET` here for a page of the record listing (`records_path` adds the query).
pub const RECORDS_PATH: &str = "/api/v1/records";
/// `GET` here for the summary (`summary_path` adds the query).
pub const SUMMARY_PATH: &str = "/api/v1/summary";

/// Where a batch's receipt is polled.
pub fn batch_path(batch_id: &str) -> String {
    format!("{BATCHES_PATH}/{}", percent_encode(batch_id))
}

/// One page of a reporting unit's holdings of a dataset.
pub fn records_path(dataset: &str, source_unit: &str, page_size: usize, token: &str) -> String {
    format!(
        "{RECORDS_PATH}?dataset={}&source_unit={}&page_size={page_size}&page_token={}",
        percent_encode(dataset),
        percent_encode(source_unit),
        percent_encode(token)
    )
}

/// The summary of a reporting unit's holdings of a dataset.
pub fn summary_path(dataset: &str, source_unit: &str) -> String {
    format!(
        "{SUMMARY_PATH}?dataset={}&source_unit={}",
        percent_encode(dataset),
        percent_encode(source_unit)
    )
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether a batch id or record id has the contract's form: 1 to `max` characters of
/// `[A-Za-z0-9._-]`.
pub fn valid_id(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// What a record operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The record at this version is published.
    Upsert,
    /// The record leaves public display.
    Withdraw,
}

impl Op {
    /// As the contract and the ledger spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Withdraw => "withdraw",
        }
    }

    /// From its spelling.
    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "upsert" => Some(Op::Upsert),
            "withdraw" => Some(Op::Withdraw),
            _ => None,
        }
    }
}

/// One record operation of a batch, as sent.
#[derive(Debug, Clone, Serialize)]
pub struct RecordOp<'a> {
    /// The record's stable id.
    pub record_id: &'a str,
    /// Upsert or withdraw.
    pub op: Op,
    /// The content version (a withdrawal's own version).
    pub version: &'a str,
    /// An upsert's fields: every value a string or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<&'a str, Option<&'a str>>>,
    /// A withdrawal's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

/// One record operation encoded for a batch body.
pub fn encode_record(op: &RecordOp<'_>) -> Box<RawValue> {
    serde_json::value::to_raw_value(op).expect("a record of strings serialises")
}

/// The batch envelope as sent: the key, the dataset, the reporting unit, the records.
#[derive(Debug, Serialize)]
pub struct OutgoingBatch<'a> {
    /// Same as the `Idempotency-Key` header.
    pub batch_id: &'a str,
    /// Dataset code.
    pub dataset: &'a str,
    /// The reporting unit's credit code.
    pub source_unit: &'a str,
    /// Encoded record operations ([`encode_record`]).
    pub records: &'a [Box<RawValue>],
}

/// The exact body of a batch (stored before it leaves and resent byte for byte).
pub fn seal_batch(batch: &OutgoingBatch<'_>) -> Vec<u8> {
    serde_json::to_vec(batch).expect("a batch of JSON values serialises")
}

/// The batch envelope as received (by the simulator), records left as JSON values.
#[derive(Debug, Clone, Deserialize)]
pub struct IncomingBatch {
    /// Batch id.
    pub batch_id: String,
    /// Dataset code.
    pub dataset: String,
    /// Reporting unit.
    pub source_unit: String,
    /// Record operations.
    pub records: Vec<serde_json::Value>,
}

/// A per-record rejection in a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// Record id.
    pub record_id: String,
    /// Machine code (`bad_uscc`, …: [`crate::domain::reasons::UpstreamCode`]).
    pub code: String,
    /// Human text.
    #[serde(default)]
    pub message: String,
}

/// Whether a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    /// Applied: the receipt is final.
    Done,
    /// Taken, still being applied: poll again.
    Processing,
}

/// A batch receipt (200 and 202 answers, and the poll's answer).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    /// Batch id.
    pub batch_id: String,
    /// `done` or `processing`.
    pub status: BatchStatus,
    /// Records applied.
    #[serde(default)]
    pub accepted: u64,
    /// Records refused.
    #[serde(default)]
    pub rejected: Vec<RejectedRecord>,
    /// When the platform received the batch (RFC 3339): the publication time the
    /// 7-working-day rule is measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
}

/// A record as a platform holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRecord {
    /// Record id.
    pub record_id: String,
    /// The version held.
    pub version: String,
    /// `active` or `withdrawn`.
    pub status: String,
    /// When the platform first accepted the record.
    #[serde(default)]
    pub received_at: Option<String>,
}

/// One page of the record listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordPage {
    /// Records, ordered by id.
    pub records: Vec<HeldRecord>,
    /// The next page's token; none on the last page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// The summary of a reporting unit's holdings of a dataset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Records active.
    #[serde(default)]
    pub active: u64,
    /// Records withdrawn.
    #[serde(default)]
    pub withdrawn: u64,
    /// [`digest`] over the holdings.
    #[serde(default)]
    pub digest: String,
}

/// The status of a held record, as the listing and the digest spell it.
pub const ACTIVE: &str = "active";
/// See [`ACTIVE`].
pub const WITHDRAWN: &str = "withdrawn";

/// The contract's digest over holdings: SHA-256 of `id\tversion\tstatus\n` for every
/// record, sorted by id (the caller passes them in that order).
pub fn digest<'a>(items: impl Iterator<Item = (&'a str, &'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (id, v, s) in items {
        h.update(id.as_bytes());
        h.update(b"\t");
        h.update(v.as_bytes());
        h.update(b"\t");
        h.update(s.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What an error answer says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine code.
    pub code: String,
    /// Human text.
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    /// An error body.
    pub fn new(code: &str, message: &str) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_batch_is_the_documented_envelope() {
        let data = BTreeMap::from([("CF_WSH", Some("同罚〔2024〕1号")), ("CF_GSJZQ", None)]);
        let records = [
            encode_record(&RecordOp {
                record_id: "a1",
                op: Op::Upsert,
                version: "v1",
                data: Some(data),
                reason: None,
            }),
            encode_record(&RecordOp {
                record_id: "b2",
                op: Op::Withdraw,
                version: "w-v0",
                data: None,
                reason: Some("信用修复"),
            }),
        ];
        let body = seal_batch(&OutgoingBatch {
            batch_id: "k-1",
            dataset: "xzcf",
            source_unit: "11230881MB00123433",
            records: &records,
        });
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["batch_id"], "k-1");
        assert_eq!(v["records"][0]["op"], "upsert");
        assert_eq!(v["records"][0]["data"]["CF_GSJZQ"], serde_json::Value::Null);
        assert_eq!(v["records"][1]["reason"], "信用修复");
        assert!(v["records"][1].get("data").is_none());
        let back: IncomingBatch = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.records.len(), 2);
    }

    #[test]
    fn digest_is_sha256_of_the_lines() {
        let d = digest([("a", "1", ACTIVE), ("b", "2", WITHDRAWN)].into_iter());
        let expected = hex::encode(Sha256::digest(b"a\t1\tactive\nb\t2\twithdrawn\n"));
        assert_eq!(d, expected);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(
            summary_path("xzcf", "1123"),
            "/api/v1/summary?dataset=xzcf&source_unit=1123"
        );
    }
}
