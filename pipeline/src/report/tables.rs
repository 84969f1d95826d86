//! The report's tables, laid out once for both writers: each becomes a sheet of the
//! XLSX workbook ([`super::xlsx`]) and a table of the HTML page ([`super::html`]), so the
//! two always show the same columns and numbers as the JSON.

use super::*;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A count.
    Int(i64),
    /// A share (0–1); `None` shows as "—".
    Share(Option<f64>),
}

impl Cell {
    /// The cell as text (HTML, column widths).
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Share(Some(x)) => format!("{:.1}%", x * 100.0),
            Cell::Share(None) => "—".into(),
        }
    }

    /// Whether it is a number (right-aligned).
    pub fn numeric(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }
}

fn t(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn n(v: u64) -> Cell {
    Cell::Int(v as i64)
}

fn opt<T: ToString>(v: &Option<T>) -> Cell {
    t(v.as_ref().map(|x| x.to_string()).unwrap_or_default())
}

/// A table: the sheet's name, its header and rows.
#[derive(Debug, Clone)]
pub struct Table {
    /// Sheet name (also the HTML caption's short name).
    pub sheet: &'static str,
    /// Column headers.
    pub headers: Vec<&'static str>,
    /// Rows.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The same table with only the named columns, in that order (the HTML page shows
    /// fewer columns than the workbook).
    pub fn columns(&self, names: &[&'static str]) -> Table {
        let picks: Vec<usize> = names
            .iter()
            .filter_map(|n| self.headers.iter().position(|h| h == n))
            .collect();
        Table {
            sheet: self.sheet,
            headers: picks.iter().map(|&i| self.headers[i]).collect(),
            rows: self
                .rows
                .iter()
                .map(|row| picks.iter().map(|&i| row[i].clone()).collect())
                .collect(),
        }
    }
}

/// The summary's rows: label and value, in the order of [`Totals`].
pub fn summary(r: &OfficeReport) -> Table {
    let x = &r.totals;
    let rows = [
        ("读取记录", n(x.collected)),
        ("保留入库", n(x.kept)),
        ("隔离（未通过校验）", n(x.quarantined)),
        ("被新版本替代", n(x.superseded)),
        ("数据源读取失败（次）", n(x.feed_failures)),
        ("无法读取的文件（已搁置）", n(x.files_set_aside)),
        ("平台接收", n(x.accepted)),
        ("平台撤回", n(x.withdrawn)),
        ("平台退回", n(x.rejected)),
        ("待推送", n(x.pending)),
        ("双公示上报记录", n(x.published)),
        ("按时（7个工作日内）", n(x.on_time)),
        ("逾期", n(x.late)),
        ("无法计算", n(x.not_computable)),
        ("其中按估算日历（节假日表未覆盖）", n(x.estimated)),
        ("双公示按时率", Cell::Share(x.on_time_share)),
        ("异议暂停公示中", n(x.holds_in_force)),
        ("异议超过20个工作日", n(x.holds_overdue)),
        ("整改清单条数", n(x.corrections)),
    ];
    Table {
        sheet: "概况",
        headers: vec!["指标", "数值"],
        rows: rows.into_iter().map(|(k, v)| vec![t(k), v]).collect(),
    }
}

fn reasons_text(by_reason: &BTreeMap<String, u64>, label: fn(&str) -> String) -> String {
    by_reason
        .iter()
        .map(|(code, count)| format!("{} {count}", label(code)))
        .collect::<Vec<_>>()
        .join("；")
}

/// Intake per department and dataset.
pub fn intake(r: &OfficeReport) -> Table {
    Table {
        sheet: "数据接收",
        headers: vec![
            "部门",
            "数据集",
            "读取",
            "保留",
            "其中新增",
            "其中变更",
            "其中未变",
            "隔离",
            "被替代",
            "运行次数",
            "失败次数",
            "无法读取的文件",
            "隔离原因",
        ],
        rows: r
            .intake
            .iter()
            .map(|i| {
                vec![
                    t(&i.department),
                    t(&i.dataset_name),
                    n(i.collected),
                    n(i.kept),
                    n(i.new),
                    n(i.changed),
                    n(i.unchanged),
                    n(i.quarantined),
                    n(i.superseded),
                    n(i.feed_runs),
                    n(i.failures),
                    n(i.files_set_aside),
                    t(reasons_text(
                        &i.quarantined_by_reason,
                        crate::domain::reasons::quarantine_label,
                    )),
                ]
            })
            .collect(),
    }
}

/// Platforms per department and dataset.
pub fn push(r: &OfficeReport) -> Table {
    Table {
        sheet: "上报平台",
        headers: vec![
            "平台",
            "部门",
            "数据集",
            "接收",
            "撤回",
            "退回",
            "待推送",
            "退回原因",
        ],
        rows: r
            .push
            .iter()
            .map(|p| {
                vec![
                    t(&p.platform_title),
                    t(&p.department),
                    t(&p.dataset_name),
                    n(p.accepted),
                    n(p.withdrawn),
                    n(p.rejected),
                    n(p.pending),
                    t(reasons_text(
                        &p.rejected_by_code,
                        crate::domain::reasons::rejection_label,
                    )),
                ]
            })
            .collect(),
    }
}

/// 双公示 timeliness per department and dataset.
pub fn timeliness(r: &OfficeReport) -> Table {
    Table {
        sheet: "双公示及时性",
        headers: vec![
            "部门",
            "数据集",
            "上报记录",
            "按时",
            "逾期",
            "无法计算",
            "其中估算",
            "按时率",
            "最多逾期（工作日）",
        ],
        rows: r
            .timeliness
            .iter()
            .map(|x| {
                vec![
                    t(&x.department),
                    t(&x.dataset_name),
                    n(x.published),
                    n(x.on_time),
                    n(x.late),
                    n(x.not_computable),
                    n(x.estimated),
                    Cell::Share(x.on_time_share),
                    Cell::Int(x.max_days_late),
                ]
            })
            .collect(),
    }
}

/// Late records, most late first.
pub fn late_records(r: &OfficeReport) -> Table {
    Table {
        sheet: "逾期记录",
        headers: vec![
            "部门",
            "数据集",
            "决定文书号",
            "相对人",
            "决定日期",
            "公示期限",
            "上报日期",
            "用时（工作日）",
            "逾期（工作日）",
            "记录编号",
        ],
        rows: r
            .late_records
            .iter()
            .map(|l| {
                vec![
                    t(&l.department),
                    t(OfficeReport::dataset_name(&l.dataset)),
                    t(&l.document_number),
                    t(&l.subject),
                    t(l.decision_date.to_string()),
                    t(if l.estimated {
                        format!("{}（估算）", l.deadline)
                    } else {
                        l.deadline.to_string()
                    }),
                    t(l.published_date.to_string()),
                    Cell::Int(l.working_days),
                    Cell::Int(l.days_late),
                    t(&l.record_id),
                ]
            })
            .collect(),
    }
}

/// Records whose timeliness cannot be computed.
pub fn uncomputable(r: &OfficeReport) -> Table {
    Table {
        sheet: "无法计算",
        headers: vec![
            "部门",
            "数据集",
            "决定文书号",
            "决定日期",
            "上报日期",
            "原因",
            "记录编号",
        ],
        rows: r
            .uncomputable_records
            .iter()
            .map(|u| {
                vec![
                    t(&u.department),
                    t(OfficeReport::dataset_name(&u.dataset)),
                    t(&u.document_number),
                    t(&u.decision_date),
                    opt(&u.published_date),
                    t(&u.reason),
                    t(&u.record_id),
                ]
            })
            .collect(),
    }
}

/// Red and black list entries and exits.
pub fn list_changes(r: &OfficeReport) -> Table {
    Table {
        sheet: "红黑名单",
        headers: vec!["部门", "名单", "列入", "移出"],
        rows: r
            .list_changes
            .iter()
            .map(|l| {
                vec![
                    t(&l.department),
                    t(&l.dataset_name),
                    n(l.entries),
                    n(l.exits),
                ]
            })
            .collect(),
    }
}

/// Withdrawals the platforms acknowledged, by reason.
pub fn withdrawals(r: &OfficeReport) -> Table {
    Table {
        sheet: "平台撤回",
        headers: vec!["平台", "部门", "数据集", "撤回原因", "记录数"],
        rows: r
            .withdrawals
            .iter()
            .map(|w| {
                vec![
                    t(&w.platform_title),
                    t(&w.department),
                    t(OfficeReport::dataset_name(&w.dataset)),
                    t(&w.reason),
                    n(w.records),
                ]
            })
            .collect(),
    }
}

/// Manual withdrawals and objection holds.
pub fn overrides(r: &OfficeReport) -> Table {
    Table {
        sheet: "撤回与异议",
        headers: vec![
            "类型",
            "部门",
            "数据集",
            "原因",
            "登记人",
            "登记日期",
            "已历工作日",
            "解除日期",
            "结果",
            "超过20个工作日",
            "记录编号",
        ],
        rows: r
            .overrides
            .iter()
            .map(|o| {
                vec![
                    t(&o.kind_label),
                    t(&o.department),
                    t(OfficeReport::dataset_name(&o.dataset)),
                    t(&o.reason),
                    t(&o.by_whom),
                    opt(&o.since),
                    o.working_days.map(Cell::Int).unwrap_or(t("无法计算")),
                    opt(&o.released),
                    t(match o.outcome.as_deref() {
                        Some("confirmed") => "维持原记录",
                        Some("corrected") => "更正后重报",
                        Some(other) => other,
                        None => "",
                    }),
                    t(if o.overdue { "是" } else { "" }),
                    t(&o.record_id),
                ]
            })
            .collect(),
    }
}

/// A reconciliation difference kind in Chinese.
pub fn difference_label(kind: &str) -> &str {
    match kind {
        "missing_upstream" => "平台缺少",
        "unknown_upstream" => "平台多出",
        "version_differs" => "版本不一致",
        "withdrawn_one_side" => "撤回状态不一致",
        other => other,
    }
}

/// The latest reconciliation per platform.
pub fn reconciliations(r: &OfficeReport) -> Table {
    Table {
        sheet: "对账",
        headers: vec![
            "平台",
            "最近对账时间",
            "核对组数",
            "一致组数",
            "差异数",
            "差异类型",
        ],
        rows: r
            .reconciliations
            .iter()
            .map(|c| {
                let kinds = c
                    .by_kind
                    .iter()
                    .map(|(k, v)| format!("{} {v}", difference_label(k)))
                    .collect::<Vec<_>>()
                    .join("；");
                vec![
                    t(&c.platform_title),
                    t(china_time_text(&c.at)),
                    n(c.groups),
                    n(c.clean_groups),
                    n(c.differences),
                    t(if c.differences == 0 {
                        "一致".to_string()
                    } else {
                        kinds
                    }),
                ]
            })
            .collect(),
    }
}

/// An RFC 3339 time as China time, to the minute.
pub fn china_time_text(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| {
            t.with_timezone(&crate::clock::CHINA)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}

/// The departments to call.
pub fn ranking(r: &OfficeReport) -> Table {
    Table {
        sheet: "重点关注",
        headers: vec!["名次", "部门", "逾期", "退回", "隔离", "合计"],
        rows: r
            .ranking
            .iter()
            .map(|x| {
                vec![
                    n(x.rank),
                    t(&x.department),
                    n(x.late),
                    n(x.rejected),
                    n(x.quarantined),
                    n(x.total),
                ]
            })
            .collect(),
    }
}

/// Headers of correction lines (the office's sheet adds the department first).
const CORRECTION_HEADERS: [&str; 15] = [
    "数据集",
    "来源",
    "源文件",
    "行号",
    "字段名称",
    "字段代码",
    "当前值",
    "相对人",
    "决定文书号",
    "问题说明及整改要求",
    "问题代码",
    "平台说明",
    "记录编号",
    "首次发现",
    "已挂起（工作日）",
];

fn correction_cells(c: &CorrectionRow) -> Vec<Cell> {
    vec![
        t(&c.dataset_name),
        t(&c.source),
        t(&c.source_file),
        if c.source_line > 0 {
            n(c.source_line)
        } else {
            t("")
        },
        t(&c.field_name),
        t(&c.field),
        t(&c.value),
        t(&c.subject),
        t(&c.document_number),
        t(&c.reason),
        t(&c.reason_code),
        t(&c.platform_message),
        t(&c.record_id),
        t(&c.first_seen),
        match c.working_days_open {
            Some(d) => Cell::Int(d),
            None => t(""),
        },
    ]
}

/// Problems corrected in the period (已整改), of every department or one.
fn resolved_table(rows: Vec<&CorrectionRow>, with_department: bool) -> Table {
    let mut headers = if with_department {
        vec!["部门"]
    } else {
        vec!["序号"]
    };
    headers.extend([
        "数据集",
        "源文件",
        "行号",
        "字段名称",
        "原值",
        "决定文书号",
        "原问题",
        "首次发现",
        "整改日期",
        "用时（工作日）",
    ]);
    Table {
        sheet: "已整改",
        headers,
        rows: rows
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    if with_department {
                        t(&c.department)
                    } else {
                        n(i as u64 + 1)
                    },
                    t(&c.dataset_name),
                    t(&c.source_file),
                    n(c.source_line),
                    t(&c.field_name),
                    t(&c.value),
                    t(&c.document_number),
                    t(&c.reason),
                    t(&c.first_seen),
                    t(&c.resolved_at),
                    Cell::Int(c.working_days_open.unwrap_or(0)),
                ]
            })
            .collect(),
    }
}

/// Every department's problems corrected in the period.
pub fn resolved(r: &OfficeReport) -> Table {
    resolved_table(r.resolved_corrections.iter().collect(), true)
}

/// One department's problems corrected in the period.
pub fn resolved_of(r: &OfficeReport, department: &str) -> Table {
    resolved_table(r.resolved_of(department).collect(), false)
}

/// Every department's correction lines.
pub fn corrections(r: &OfficeReport) -> Table {
    let mut headers = vec!["部门"];
    headers.extend(CORRECTION_HEADERS);
    Table {
        sheet: "整改明细",
        headers,
        rows: r
            .corrections
            .iter()
            .map(|c| {
                let mut row = vec![t(&c.department)];
                row.extend(correction_cells(c));
                row
            })
            .collect(),
    }
}

/// One department's correction lines, numbered.
pub fn corrections_of(r: &OfficeReport, department: &str) -> Table {
    let mut headers = vec!["序号"];
    headers.extend(CORRECTION_HEADERS);
    Table {
        sheet: "整改清单",
        headers,
        rows: r
            .corrections_of(department)
            .enumerate()
            .map(|(i, c)| {
                let mut row = vec![n(i as u64 + 1)];
                row.extend(correction_cells(c));
                row
            })
            .collect(),
    }
}

/// Every table of the office's workbook, in order.
pub fn all(r: &OfficeReport) -> Vec<Table> {
    vec![
        summary(r),
        ranking(r),
        intake(r),
        push(r),
        timeliness(r),
        late_records(r),
        uncomputable(r),
        list_changes(r),
        withdrawals(r),
        overrides(r),
        reconciliations(r),
        corrections(r),
        resolved(r),
    ]
}
