//! The kinds the state store keeps as text, typed: a ledger row's status, a run's kind,
//! an override's kind. (A record operation is the contract's [`crate::platform::contract::Op`].)

use serde::{Serialize, Serializer};

/// Where a record version stands with a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedgerStatus {
    /// Owed: to be sent.
    Pending,
    /// In an open batch, without a final answer yet.
    Sent,
    /// Acknowledged by the platform.
    Acked,
    /// Refused by the platform, with its code; not resent until the content changes.
    Rejected,
}

impl LedgerStatus {
    /// Every status.
    pub const ALL: [LedgerStatus; 4] = [
        LedgerStatus::Pending,
        LedgerStatus::Sent,
        LedgerStatus::Acked,
        LedgerStatus::Rejected,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerStatus::Pending => "pending",
            LedgerStatus::Sent => "sent",
            LedgerStatus::Acked => "acked",
            LedgerStatus::Rejected => "rejected",
        }
    }

    /// From its stored text.
    pub fn parse(s: &str) -> Option<LedgerStatus> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Not yet answered for good (`pending` or `sent`).
    pub fn is_owed(self) -> bool {
        matches!(self, LedgerStatus::Pending | LedgerStatus::Sent)
    }
}

/// What started a run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// `xinyong run`.
    Run,
    /// `xinyong backfill`.
    Backfill,
    /// `xinyong push`: no feed read.
    Push,
    /// `xinyong demo`.
    Demo,
    /// `xinyong reconcile --repair`'s push.
    ReconcileRepair,
    /// A scheduled job, by name.
    Schedule(String),
}

impl RunKind {
    /// From its stored text (an unknown kind is kept as a schedule's, by name).
    pub fn parse(s: &str) -> RunKind {
        match s {
            "run" => RunKind::Run,
            "backfill" => RunKind::Backfill,
            "push" => RunKind::Push,
            "demo" => RunKind::Demo,
            "reconcile-repair" => RunKind::ReconcileRepair,
            other => RunKind::Schedule(other.strip_prefix("schedule:").unwrap_or(other).into()),
        }
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunKind::Run => f.write_str("run"),
            RunKind::Backfill => f.write_str("backfill"),
            RunKind::Push => f.write_str("push"),
            RunKind::Demo => f.write_str("demo"),
            RunKind::ReconcileRepair => f.write_str("reconcile-repair"),
            RunKind::Schedule(job) => write!(f, "schedule:{job}"),
        }
    }
}

impl Serialize for RunKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A manual withdrawal or an objection hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideKind {
    /// Withdrawn by hand (credit repair, revocation).
    Withdraw,
    /// Under objection (异议): withdrawn from display while it is checked.
    Hold,
}

impl OverrideKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideKind::Withdraw => "withdraw",
            OverrideKind::Hold => "hold",
        }
    }

    /// From its stored text.
    pub fn parse(s: &str) -> Option<OverrideKind> {
        match s {
            "withdraw" => Some(OverrideKind::Withdraw),
            "hold" => Some(OverrideKind::Hold),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for s in LedgerStatus::ALL {
            assert_eq!(LedgerStatus::parse(s.as_str()), Some(s));
        }
        for k in [
            RunKind::Run,
            RunKind::Backfill,
            RunKind::Push,
            RunKind::Demo,
            RunKind::ReconcileRepair,
            RunKind::Schedule("nightly".into()),
        ] {
            assert_eq!(RunKind::parse(&k.to_string()), k);
        }
        for k in [OverrideKind::Withdraw, OverrideKind::Hold] {
            assert_eq!(OverrideKind::parse(k.as_str()), Some(k));
        }
    }
}
