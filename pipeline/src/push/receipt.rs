//! Trusting nothing that comes back: a receipt is checked against the batch it answers.
//! It must name the batch; every record it rejects must have been sent, once; it may not
//! accept more than were sent; and accepted plus rejected must account for every record.
//! A receipt that contradicts its batch is a protocol error (nothing of the batch is
//! acknowledged); one that leaves records unaccounted for confirms none of them but its
//! rejections (the contract's receipt counts acceptances without naming them).

use crate::platform::contract::Receipt;
use std::collections::HashSet;

/// What a receipt says of its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptCheck {
    /// Every record accounted for: the rejected ones rejected, the others acknowledged.
    Confirmed,
    /// Not every record is accounted for: the rejected ones are rejected, the others
    /// stay owed and go again.
    Unconfirmed {
        /// Records accepted or rejected per the receipt.
        accounted: u64,
        /// Records sent.
        sent: u64,
    },
    /// The receipt contradicts the batch: nothing of it is acknowledged.
    Contradicts(String),
}

/// Checks a receipt against the batch `batch_id` of the records `sent`.
pub fn check(batch_id: &str, sent: &[String], receipt: &Receipt) -> ReceiptCheck {
    if receipt.batch_id != batch_id {
        return ReceiptCheck::Contradicts(format!(
            "the receipt names batch {:?}",
            excerpt(&receipt.batch_id)
        ));
    }
    let sent_ids: HashSet<&str> = sent.iter().map(String::as_str).collect();
    let mut rejected: HashSet<&str> = HashSet::new();
    for r in &receipt.rejected {
        if !sent_ids.contains(r.record_id.as_str()) {
            return ReceiptCheck::Contradicts(format!(
                "the receipt rejects record {:?}, which this batch did not send",
                excerpt(&r.record_id)
            ));
        }
        if !rejected.insert(r.record_id.as_str()) {
            return ReceiptCheck::Contradicts(format!(
                "the receipt rejects record {:?} twice",
                excerpt(&r.record_id)
            ));
        }
    }
    let sent_n = sent_ids.len() as u64;
    let rejected_n = rejected.len() as u64;
    if receipt.accepted > sent_n - rejected_n {
        return ReceiptCheck::Contradicts(format!(
            "the receipt accepts {} and rejects {rejected_n} of {sent_n} records sent",
            receipt.accepted
        ));
    }
    if receipt.accepted + rejected_n < sent_n {
        return ReceiptCheck::Unconfirmed {
            accounted: receipt.accepted + rejected_n,
            sent: sent_n,
        };
    }
    ReceiptCheck::Confirmed
}

fn excerpt(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::contract::{BatchStatus, RejectedRecord};

    fn receipt(batch: &str, accepted: u64, rejected: &[&str]) -> Receipt {
        Receipt {
            batch_id: batch.into(),
            status: BatchStatus::Done,
            accepted,
            rejected: rejected
                .iter()
                .map(|id| RejectedRecord {
                    record_id: id.to_string(),
                    code: "bad_value".into(),
                    message: String::new(),
                })
                .collect(),
            received_at: None,
        }
    }

    #[test]
    fn a_receipt_must_account_for_its_batch() {
        let sent: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(
            check("k", &sent, &receipt("k", 2, &["c"])),
            ReceiptCheck::Confirmed
        );
        assert_eq!(
            check("k", &sent, &receipt("k", 3, &[])),
            ReceiptCheck::Confirmed
        );
        assert_eq!(
            check("k", &sent, &receipt("k", 1, &[])),
            ReceiptCheck::Unconfirmed {
                accounted: 1,
                sent: 3
            }
        );
        for bad in [
            receipt("other", 3, &[]),
            receipt("k", 2, &["zz"]),
            receipt("k", 1, &["a", "a"]),
            receipt("k", 3, &["a"]),
            receipt("k", 9, &[]),
        ] {
            assert!(
                matches!(check("k", &sent, &bad), ReceiptCheck::Contradicts(_)),
                "{bad:?}"
            );
        }
    }
}
