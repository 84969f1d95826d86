//! The ranking of departments to call: late, quarantined, rejected, overdue holds.

use super::*;

/// What counts against a department in the ranking.
#[derive(Default)]
pub(super) struct Score {
    late: u64,
    rejected: HashSet<(String, String)>,
    quarantined: u64,
}

pub(super) fn ranking_rows(
    cx: &Context,
    intake: &[IntakeRow],
    late: &[LateRecord],
    rejections: &[LedgerRow],
) -> Vec<RankingRow> {
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    for r in intake {
        scores.entry(r.department.clone()).or_default().quarantined += r.quarantined;
    }
    for r in late {
        scores.entry(r.department.clone()).or_default().late += 1;
    }
    for l in rejections {
        let department = cx.department_of_unit(&l.source_unit);
        let score = scores.entry(department).or_default();
        score
            .rejected
            .insert((l.dataset.clone(), l.record_id.clone()));
    }
    let mut rows: Vec<RankingRow> = scores
        .into_iter()
        .map(|(department, s)| {
            let rejected = s.rejected.len() as u64;
            RankingRow {
                rank: 0,
                department,
                late: s.late,
                rejected,
                quarantined: s.quarantined,
                total: s.late + rejected + s.quarantined,
            }
        })
        .filter(|r| r.total > 0)
        .collect();
    rows.sort_by_key(|r| {
        (
            std::cmp::Reverse(r.total),
            cx.department_order(&r.department),
        )
    });
    rows.truncate(RANKING_SIZE);
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i as u64 + 1;
    }
    rows
}

/// The headline numbers, each summed from its table.
pub(super) fn totals(r: &OfficeReport) -> Totals {
    let sum = |f: &dyn Fn(&IntakeRow) -> u64| r.intake.iter().map(f).sum::<u64>();
    let push = |f: &dyn Fn(&PushRow) -> u64| r.push.iter().map(f).sum::<u64>();
    let timely = |f: &dyn Fn(&TimelinessRow) -> u64| r.timeliness.iter().map(f).sum::<u64>();
    let holds_in_force = r
        .overrides
        .iter()
        .filter(|o| o.kind == "hold" && o.released.is_none());
    let (on_time, late) = (timely(&|t| t.on_time), timely(&|t| t.late));
    Totals {
        collected: sum(&|i| i.collected),
        kept: sum(&|i| i.kept),
        quarantined: sum(&|i| i.quarantined),
        superseded: sum(&|i| i.superseded),
        feed_failures: sum(&|i| i.failures),
        files_set_aside: sum(&|i| i.files_set_aside),
        accepted: push(&|p| p.accepted),
        withdrawn: push(&|p| p.withdrawn),
        rejected: push(&|p| p.rejected),
        pending: push(&|p| p.pending),
        published: timely(&|t| t.published),
        on_time,
        late,
        not_computable: timely(&|t| t.not_computable),
        estimated: timely(&|t| t.estimated),
        on_time_share: timeliness::on_time_share(on_time, late),
        holds_in_force: holds_in_force.clone().count() as u64,
        holds_overdue: holds_in_force.filter(|o| o.overdue).count() as u64,
        corrections: r.corrections.len() as u64,
    }
}
