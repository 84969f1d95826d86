//! 双公示 timeliness: each record published in the period judged against its decision date
//! and the working-day calendar.

use super::*;

/// One publication judged.
pub(super) struct Judged<'a> {
    department: String,
    publication: &'a Publication,
    decision: String,
    published: Option<NaiveDate>,
    verdict: Verdict,
    subject: String,
    document: String,
}

pub(super) fn judge<'a>(cx: &Context, p: &'a Publication, snapshot: &SnapshotRows) -> Judged<'a> {
    let ds = registry().get(&p.dataset);
    let snap = snapshot.get(&(p.dataset.clone(), p.record_id.clone()));
    let published = china_date(&p.published_at);
    let decision = match (&ds, snap) {
        (Some(ds), Some(s)) => ds
            .decision_date
            .and_then(|i| s.values.get(i).cloned())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let verdict = match (snap, published) {
        (None, _) => Verdict::NotComputable("快照中已无此记录，无法取得决定日期".into()),
        (_, None) => Verdict::NotComputable("上报时间无法识别".into()),
        (Some(_), Some(day)) => timeliness::assess(cx.cal, &decision, day),
    };
    let (subject, document) = match (&ds, snap) {
        (Some(ds), Some(s)) => {
            describe_record(ds, |i| s.values.get(i).cloned().unwrap_or_default())
        }
        _ => Default::default(),
    };
    Judged {
        department: match snap {
            Some(s) => cx.department_of_feed(&s.feed, &s.source_unit),
            None => cx.department_of_unit(&p.source_unit),
        },
        publication: p,
        decision,
        published,
        verdict,
        subject,
        document,
    }
}

pub(super) fn timeliness_rows(
    cx: &Context,
    publications: &[Publication],
    snapshot: &SnapshotRows,
) -> (Vec<TimelinessRow>, Vec<LateRecord>, Vec<UncomputableRecord>) {
    let mut rows: BTreeMap<(usize, String, String), TimelinessRow> = BTreeMap::new();
    let (mut late, mut uncomputable) = (Vec::new(), Vec::new());
    for p in publications {
        let j = judge(cx, p, snapshot);
        let key = (
            cx.department_order(&j.department),
            j.department.clone(),
            p.dataset.clone(),
        );
        let row = rows.entry(key).or_insert_with(|| TimelinessRow {
            department: j.department.clone(),
            dataset: p.dataset.clone(),
            dataset_name: OfficeReport::dataset_name(&p.dataset),
            ..Default::default()
        });
        row.published += 1;
        match j.verdict {
            Verdict::OnTime { estimated, .. } => {
                row.on_time += 1;
                row.estimated += estimated as u64;
            }
            Verdict::Late {
                deadline,
                working_days,
                days_late,
                estimated,
            } => {
                row.late += 1;
                row.estimated += estimated as u64;
                row.max_days_late = row.max_days_late.max(days_late);
                late.push(LateRecord {
                    department: j.department,
                    dataset: p.dataset.clone(),
                    record_id: p.record_id.clone(),
                    document_number: j.document,
                    subject: j.subject,
                    decision_date: NaiveDate::parse_from_str(&j.decision, "%Y-%m-%d")
                        .unwrap_or(deadline),
                    deadline,
                    published_date: j.published.unwrap_or(deadline),
                    working_days,
                    days_late,
                    estimated,
                });
            }
            Verdict::NotComputable(reason) => {
                row.not_computable += 1;
                uncomputable.push(UncomputableRecord {
                    department: j.department,
                    dataset: p.dataset.clone(),
                    record_id: j.publication.record_id.clone(),
                    document_number: j.document,
                    decision_date: j.decision,
                    published_date: j.published,
                    reason,
                });
            }
        }
    }
    let mut rows: Vec<TimelinessRow> = rows.into_values().collect();
    for r in &mut rows {
        r.on_time_share = timeliness::on_time_share(r.on_time, r.late);
    }
    late.sort_by(|a, b| {
        (
            b.days_late,
            cx.department_order(&a.department),
            &a.record_id,
        )
            .cmp(&(
                a.days_late,
                cx.department_order(&b.department),
                &b.record_id,
            ))
    });
    (rows, late, uncomputable)
}

// ---- withdrawals, holds, reconciliation, ranking, totals -----------------------------
