//! The SQL source against real databases: PostgreSQL (127.0.0.1:5432) and MariaDB
//! (127.0.0.1:3306) running on this machine, and SQLite in a temporary file. Each test
//! creates its own table of 住建局 行政处罚 records (Chinese text, DECIMAL amounts, DATE,
//! DATETIME, NULLs) and checks that every row arrives exactly once, that rows sharing a
//! timestamp across a batch boundary survive an interrupted read, and that values arrive
//! as a file export's strings.
//!
//! Under `CI=true` a database that cannot be reached fails the test; elsewhere the test
//! prints why it skips. `XINYONG_TEST_POSTGRES_URL` and `XINYONG_TEST_MARIADB_URL`
//! point the tests at other servers.

use connectors::sources::sql::{SqlConfig, SqlSource};
use connectors::{ReadContext, Source};
use sqlx::{Connection, Executor};
use std::collections::BTreeMap;

const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const MARIADB_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// A database under test: its URL, how it quotes names, and its column types.
struct Database {
    label: &'static str,
    url: String,
    quote: char,
    /// (id, name, amount, date, datetime, text) column types.
    types: [&'static str; 6],
}

fn postgres() -> Database {
    Database {
        label: "PostgreSQL",
        url: std::env::var("XINYONG_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_URL.into()),
        quote: '"',
        types: [
            "INTEGER PRIMARY KEY",
            "VARCHAR(200)",
            "NUMERIC(14,2)",
            "DATE",
            "TIMESTAMP",
            "TEXT",
        ],
    }
}

fn mariadb() -> Database {
    Database {
        label: "MariaDB",
        url: std::env::var("XINYONG_TEST_MARIADB_URL").unwrap_or_else(|_| MARIADB_URL.into()),
        quote: '`',
        types: [
            "INT PRIMARY KEY",
            // Departments' older databases collate Chinese text in GBK.
            "VARCHAR(200) CHARACTER SET gbk COLLATE gbk_chinese_ci",
            "DECIMAL(14,2)",
            "DATE",
            "DATETIME",
            "TEXT",
        ],
    }
}

fn sqlite(dir: &std::path::Path) -> Database {
    Database {
        label: "SQLite",
        url: format!("sqlite://{}?mode=rwc", dir.join("zjj.db").display()),
        quote: '"',
        types: [
            "INTEGER PRIMARY KEY",
            "TEXT",
            "TEXT",
            "TEXT",
            "TEXT",
            "TEXT",
        ],
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs statements on the database; `Err` when it cannot be reached.
fn execute(url: &str, sql: &str) -> Result<(), String> {
    let sql = sql.to_string();
    runtime().block_on(async move {
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            c.execute(sqlx::raw_sql(&sql))
                .await
                .map_err(|e| e.to_string())?;
        } else if url.starts_with("mysql") {
            let mut c = sqlx::MySqlConnection::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            c.execute(sqlx::raw_sql(&sql))
                .await
                .map_err(|e| e.to_string())?;
        } else {
            let mut c = sqlx::SqliteConnection::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            c.execute(sqlx::raw_sql(&sql))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// Whether the database is there: under `CI=true` a missing one fails the test.
fn available(db: &Database) -> bool {
    match execute(&db.url, "SELECT 1") {
        Ok(()) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true: the {} test database is required: {e}", db.label)
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: {} is not reachable ({e}); under CI=true this fails",
                db.label
            );
            false
        }
    }
}

fn unique_table(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// (id, 行政相对人名称, 罚款金额, 处罚决定日期, 更新时间, 备注) — ids 3 to 7 share a
/// timestamp, as do 9 and 10; inserted out of key order.
type Penalty = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

const ROWS: &[Penalty] = &[
    (
        7,
        "佳木斯市龙腾物业服务有限公司",
        "3000.00",
        "2024-02-28",
        "2024-03-02 10:00:00",
        Some("逾期未整改"),
    ),
    (
        1,
        "哈尔滨市某某建筑工程有限公司",
        "12500.00",
        "2024-02-27",
        "2024-03-01 08:00:00",
        None,
    ),
    (
        3,
        "同江市鸿运房地产开发有限公司",
        "50000.50",
        "2024-02-28",
        "2024-03-02 10:00:00",
        Some("已缴纳"),
    ),
    (
        2,
        "同江市兴华建材经销部",
        "800.00",
        "2024-02-27",
        "2024-03-01 09:15:00",
        None,
    ),
    (
        5,
        "黑龙江省三江建设集团有限公司",
        "120000.00",
        "2024-02-28",
        "2024-03-02 10:00:00",
        None,
    ),
    (
        4,
        "同江市安居劳务派遣有限公司",
        "0.00",
        "2024-02-28",
        "2024-03-02 10:00:00",
        Some("警告"),
    ),
    (
        6,
        "王某某",
        "2000.00",
        "2024-02-28",
        "2024-03-02 10:00:00",
        None,
    ),
    (
        8,
        "同江市恒泰混凝土有限公司",
        "45000.00",
        "2024-02-29",
        "2024-03-02 10:00:01",
        None,
    ),
    (
        10,
        "同江市北疆装饰工程有限公司",
        "15000.00",
        "2024-03-01",
        "2024-03-03 14:20:00",
        Some("“双随机”检查发现"),
    ),
    (
        9,
        "佳木斯市宏图监理咨询有限公司",
        "9999.99",
        "2024-03-01",
        "2024-03-03 14:20:00",
        None,
    ),
    (
        11,
        "同江市瑞丰电力安装有限公司",
        "30000.00",
        "2024-03-02",
        "2024-03-04 16:45:30",
        None,
    ),
    (
        12,
        "李某",
        "500.00",
        "2024-03-03",
        "2024-03-05 09:30:00",
        None,
    ),
    (
        13,
        "同江市江畔小区业主委员会",
        "1000.00",
        "2024-03-04",
        "2024-03-05 09:30:00",
        Some(""),
    ),
];

/// Creates the table and fills it; returns its name.
fn create_penalties(db: &Database) -> String {
    let table = unique_table("zjj_xzcf");
    let [id, name, amount, date, datetime, text] = db.types;
    let mut sql = format!(
        "CREATE TABLE {table} (id {id}, xdr_mc {name}, cf_wsh VARCHAR(100) NOT NULL, fk_je {amount}, jdrq {date}, gxsj {datetime}, bz {text});\n"
    );
    for (i, n, fine, decided, updated, note) in ROWS {
        sql.push_str(&insert(&table, *i, n, fine, decided, updated, *note));
    }
    execute(&db.url, &sql).unwrap();
    table
}

fn insert(
    table: &str,
    id: i64,
    name: &str,
    fine: &str,
    decided: &str,
    updated: &str,
    note: Option<&str>,
) -> String {
    let note = note.map_or("NULL".to_string(), |n| format!("'{n}'"));
    format!(
        "INSERT INTO {table} (id, xdr_mc, cf_wsh, fk_je, jdrq, gxsj, bz) VALUES ({id}, '{name}', '同建罚字〔2024〕第{id:03}号', '{fine}', '{decided}', '{updated}', {note});\n"
    )
}

/// The feed's configuration, its URL in a secret file under `secrets`.
fn config(db: &Database, table: &str, batch_size: usize, secrets: &std::path::Path) -> SqlConfig {
    let url_file = secrets.join(format!("{table}.url"));
    std::fs::write(&url_file, format!("{}\n", db.url)).unwrap();
    let q = db.quote;
    SqlConfig {
        url_env: None,
        url_file: Some(url_file),
        query: format!(
            "SELECT id, xdr_mc AS {q}行政相对人名称{q}, cf_wsh AS {q}行政处罚决定书文号{q}, fk_je AS {q}罚款金额（元）{q}, jdrq AS {q}处罚决定日期{q}, gxsj AS {q}更新时间{q}, bz AS {q}备注{q} FROM {table}"
        ),
        watermark: "更新时间".into(),
        key: "id".into(),
        batch_size,
        look_back_seconds: 600,
    }
}

fn open(cfg: &SqlConfig, position: Option<String>) -> SqlSource {
    SqlSource::new(
        cfg.clone(),
        &ReadContext {
            feed: "zjj_xzcf".into(),
            position,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Reads up to `max_batches` batches: the rows as header → value maps, and the checkpoint.
fn read(
    source: &mut SqlSource,
    max_batches: usize,
) -> (Vec<BTreeMap<String, String>>, Option<String>) {
    let mut rows = Vec::new();
    for _ in 0..max_batches {
        let Some(batch) = source.next_batch().unwrap() else {
            break;
        };
        for r in batch.rows {
            rows.push(
                batch
                    .unit
                    .headers
                    .iter()
                    .cloned()
                    .zip(r.values.to_vec())
                    .collect::<BTreeMap<_, _>>(),
            );
        }
    }
    (rows, source.checkpoint())
}

fn ids(rows: &[BTreeMap<String, String>]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].parse().unwrap()).collect()
}

/// Every row once, in (更新时间, id) order, with the values a file export would give.
fn every_row_once_as_export_strings(db: &Database) {
    let secrets = tempfile::tempdir().unwrap();
    let table = create_penalties(db);
    let cfg = config(db, &table, 4, secrets.path());
    let (rows, checkpoint) = read(&mut open(&cfg, None), usize::MAX);
    assert_eq!(ids(&rows), (1..=13).collect::<Vec<_>>(), "{}", db.label);
    let first = &rows[0];
    assert_eq!(first["行政相对人名称"], "哈尔滨市某某建筑工程有限公司");
    assert_eq!(first["行政处罚决定书文号"], "同建罚字〔2024〕第001号");
    assert_eq!(first["罚款金额(元)"], "12500.00");
    assert_eq!(first["处罚决定日期"], "2024-02-27");
    assert_eq!(first["更新时间"], "2024-03-01 08:00:00");
    assert_eq!(first["备注"], "", "NULL arrives empty");
    let by_id = |i: usize| &rows[i - 1];
    assert_eq!(by_id(3)["罚款金额(元)"], "50000.50");
    assert_eq!(by_id(4)["罚款金额(元)"], "0.00");
    assert_eq!(by_id(10)["备注"], "“双随机”检查发现");
    assert_eq!(by_id(11)["更新时间"], "2024-03-04 16:45:30");
    let checkpoint = checkpoint.expect("a position after reading");
    assert!(checkpoint.contains("2024-03-05 09:30:00") && checkpoint.contains("13"));
    // A later run from that position reads nothing.
    let (again, _) = read(&mut open(&cfg, Some(checkpoint)), usize::MAX);
    assert!(again.is_empty(), "{}: {:?}", db.label, ids(&again));
}

/// An interrupted read whose last batch ended inside a group of rows sharing a
/// timestamp resumes strictly after the last (watermark, key) pair; later runs see rows
/// added at the watermark's own timestamp and rows updated since.
fn watermark_tie_survives_an_interrupted_read(db: &Database) {
    let secrets = tempfile::tempdir().unwrap();
    let table = create_penalties(db);
    let cfg = config(db, &table, 3, secrets.path());
    // The first run reads one batch (ids 1, 2, 3: the batch ends inside the tie of
    // 3–7) and stops there, as a crash would.
    let (first, position) = read(&mut open(&cfg, None), 1);
    assert_eq!(ids(&first), vec![1, 2, 3], "{}", db.label);
    let position = position.unwrap();
    // The next run resumes after (2024-03-02 10:00:00, 3): 4–7 share that timestamp.
    let (rest, position) = read(&mut open(&cfg, Some(position)), usize::MAX);
    assert_eq!(ids(&rest), (4..=13).collect::<Vec<_>>(), "{}", db.label);
    // Each row exactly once over the two runs.
    let mut all = ids(&first);
    all.extend(ids(&rest));
    assert_eq!(all, (1..=13).collect::<Vec<_>>());

    // Between runs: a row at the watermark's own timestamp with a greater key, and an
    // update of an old row.
    let mut sql = insert(
        &table,
        14,
        "同江市新城置业有限公司",
        "7000.00",
        "2024-03-04",
        "2024-03-05 09:30:00",
        None,
    );
    sql.push_str(&format!(
        "UPDATE {table} SET fk_je = '900.00', gxsj = '2024-03-06 11:00:00' WHERE id = 2;\n"
    ));
    execute(&db.url, &sql).unwrap();
    let (third, _) = read(&mut open(&cfg, position), usize::MAX);
    // In (watermark, key) order; a text watermark (SQLite) is walked by key.
    let mut got = ids(&third);
    got.sort();
    assert_eq!(got, vec![2, 14], "{}", db.label);
    let two = third.iter().find(|r| r["id"] == "2").unwrap();
    assert_eq!(two["罚款金额(元)"], "900.00");
}

/// A row committed late, its watermark 60 s older than the stored position, is read by
/// the next run; a run with nothing new reads nothing (the rows near the position are
/// re-read but not handed on again); rows with a NULL watermark are counted in a
/// warning.
fn late_commits_are_read_and_null_watermarks_warned(db: &Database) {
    let secrets = tempfile::tempdir().unwrap();
    let table = create_penalties(db);
    let cfg = config(db, &table, 4, secrets.path());
    let (first, position) = read(&mut open(&cfg, None), usize::MAX);
    assert_eq!(first.len(), 13, "{}", db.label);
    // Nothing new: nothing handed on.
    let (again, position) = read(&mut open(&cfg, position), usize::MAX);
    assert_eq!(ids(&again), Vec::<i64>::new(), "{}", db.label);
    // The position is 2024-03-05 09:30:00; a late commit 60 s older, and one without
    // a watermark.
    let mut sql = insert(
        &table,
        15,
        "同江市迟到商贸有限公司",
        "100.00",
        "2024-03-05",
        "2024-03-05 09:29:00",
        None,
    );
    sql.push_str(&format!(
        "INSERT INTO {table} (id, xdr_mc, cf_wsh, fk_je, jdrq, gxsj, bz) VALUES (16, '无更新时间', 'x16', '1.00', '2024-03-05', NULL, NULL);\n"
    ));
    execute(&db.url, &sql).unwrap();
    let mut source = open(&cfg, position);
    let (late, position) = read(&mut source, usize::MAX);
    assert_eq!(ids(&late), vec![15], "{}", db.label);
    let warnings = connectors::Source::warnings(&source);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("1 rows") && w.contains("NULL")),
        "{warnings:?}"
    );
    let (again, _) = read(&mut open(&cfg, position), usize::MAX);
    assert_eq!(ids(&again), Vec::<i64>::new(), "{}", db.label);
}

#[test]
fn postgres_late_commits_are_read_and_null_watermarks_warned() {
    let db = postgres();
    if available(&db) {
        late_commits_are_read_and_null_watermarks_warned(&db);
    }
}

#[test]
fn mariadb_late_commits_are_read_and_null_watermarks_warned() {
    let db = mariadb();
    if available(&db) {
        late_commits_are_read_and_null_watermarks_warned(&db);
    }
}

#[test]
fn sqlite_late_commits_are_read_and_null_watermarks_warned() {
    let dir = tempfile::tempdir().unwrap();
    late_commits_are_read_and_null_watermarks_warned(&sqlite(dir.path()));
}

/// A text watermark written in another format is compared as the time it says: it
/// does not move the position past the rows after it.
#[test]
fn text_watermarks_compare_as_times() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    let table = create_penalties(&db);
    let cfg = config(&db, &table, 5, dir.path());
    // '2024/3/9 8:00' sorts after every '2024-…' text but is 2024-03-09.
    let mut sql = insert(
        &table,
        20,
        "另一格式有限公司",
        "1.00",
        "2024-03-05",
        "2024/03/09 08:00",
        None,
    );
    sql.push_str(&insert(
        &table,
        21,
        "以后有限公司",
        "1.00",
        "2024-03-05",
        "2024-03-10 08:00:00",
        None,
    ));
    execute(&db.url, &sql).unwrap();
    let (first, position) = read(&mut open(&cfg, None), usize::MAX);
    assert_eq!(first.len(), 15);
    let sql = insert(
        &table,
        22,
        "再以后有限公司",
        "1.00",
        "2024-03-05",
        "2024-03-11 08:00:00",
        None,
    );
    execute(&db.url, &sql).unwrap();
    let (next, position) = read(&mut open(&cfg, position), usize::MAX);
    assert_eq!(ids(&next), vec![22]);
    assert!(position.unwrap().contains("2024-03-11 08:00:00"));
}

#[test]
fn postgres_every_row_once_as_export_strings() {
    let db = postgres();
    if available(&db) {
        every_row_once_as_export_strings(&db);
    }
}

#[test]
fn postgres_watermark_tie_survives_an_interrupted_read() {
    let db = postgres();
    if available(&db) {
        watermark_tie_survives_an_interrupted_read(&db);
    }
}

#[test]
fn mariadb_every_row_once_as_export_strings() {
    let db = mariadb();
    if available(&db) {
        every_row_once_as_export_strings(&db);
    }
}

#[test]
fn mariadb_watermark_tie_survives_an_interrupted_read() {
    let db = mariadb();
    if available(&db) {
        watermark_tie_survives_an_interrupted_read(&db);
    }
}

#[test]
fn sqlite_every_row_once_as_export_strings() {
    let dir = tempfile::tempdir().unwrap();
    every_row_once_as_export_strings(&sqlite(dir.path()));
}

#[test]
fn sqlite_watermark_tie_survives_an_interrupted_read() {
    let dir = tempfile::tempdir().unwrap();
    watermark_tie_survives_an_interrupted_read(&sqlite(dir.path()));
}

#[test]
fn errors_name_the_feed_and_never_the_url() {
    let env = "XINYONG_TEST_BAD_URL";
    std::env::set_var(
        env,
        "postgres://zjj_reader:s3cret-Pass@127.0.0.1:1/credit_db",
    );
    let cfg = SqlConfig {
        url_env: Some(env.into()),
        url_file: None,
        query: "SELECT * FROM penalties".into(),
        watermark: "updated_at".into(),
        key: "id".into(),
        batch_size: 10,
        look_back_seconds: 600,
    };
    let err = SqlSource::new(
        cfg,
        &ReadContext {
            feed: "zjj_xzcf".into(),
            ..Default::default()
        },
    )
    .err()
    .expect("nothing listens on port 1")
    .to_string();
    assert!(err.contains("zjj_xzcf"), "{err}");
    assert!(
        !err.contains("s3cret-Pass") && !err.contains("credit_db"),
        "{err}"
    );
}
