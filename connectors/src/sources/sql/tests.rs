//! Tests of the SQL source that need no database.

use super::*;

#[test]
fn masking_removes_the_url_and_its_password() {
    let url = "postgres://zjj:p%40ss-word@db.example:5432/credit";
    let secrets = secrets_of(url);
    let msg = format!("failed to connect to {url} with p@ss-word and p%40ss-word");
    let masked = mask(&msg, &secrets);
    assert!(!masked.contains("p@ss-word"), "{masked}");
    assert!(!masked.contains("p%40ss-word"), "{masked}");
    assert!(!masked.contains("db.example:5432/credit"), "{masked}");
}

#[test]
fn positions_round_trip_with_their_kinds() {
    for cell in [
        Cell::Text("京建罚字〔2024〕17号".into()),
        Cell::Int(-42),
        Cell::Decimal(Decimal::from_str("12500.50").unwrap()),
        Cell::Date(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()),
        Cell::DateTime(
            NaiveDate::from_ymd_opt(2024, 3, 1)
                .unwrap()
                .and_hms_micro_opt(9, 30, 0, 250)
                .unwrap(),
        ),
    ] {
        let typed = cell.typed().unwrap();
        assert_eq!(Cell::from_typed(&typed), Some(cell));
    }
    let whole = Cell::DateTime(
        NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_opt(9, 30, 0)
            .unwrap(),
    );
    assert_eq!(whole.export_text(), "2024-03-01 09:30:00");
}

#[test]
fn a_query_that_is_not_a_select_is_refused() {
    let cfg = SqlConfig {
        url_env: Some("XINYONG_TEST_UNSET_URL".into()),
        url_file: None,
        query: "DELETE FROM penalties".into(),
        watermark: "updated_at".into(),
        key: "id".into(),
        batch_size: 10,
        look_back_seconds: 600,
    };
    let cx = ReadContext {
        feed: "zjj_xzcf".into(),
        ..Default::default()
    };
    let err = SqlSource::new(cfg, &cx).err().unwrap().to_string();
    assert!(err.contains("zjj_xzcf") && err.contains("SELECT"), "{err}");
}
