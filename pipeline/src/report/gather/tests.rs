//! Tests of the report's gathering.

use super::*;

#[test]
fn report_values_are_masked() {
    let ds = registry().get("xzcf").unwrap();
    let pos = |c: &str| ds.position(c).unwrap();
    // Identity numbers keep 6 + 4, whatever their validity.
    assert_eq!(
        mask_field(&ds, pos("CF_XDR_ZJHM"), "230881198307099457", Some(true)),
        "230881********9457"
    );
    // A natural person's name keeps the surname; an organisation's stays whole;
    // an unknown subject is masked.
    let name = pos("CF_XDR_MC");
    assert_eq!(mask_field(&ds, name, "吴静", Some(true)), "吴*");
    assert_eq!(mask_field(&ds, name, "吴静", None), "吴*");
    assert_eq!(
        mask_field(&ds, name, "同江市江华商贸有限公司", Some(false)),
        "同江市江华商贸有限公司"
    );
    // A legal representative is always a person.
    assert_eq!(
        mask_field(&ds, pos("CF_FRDB"), "王建国", Some(false)),
        "王**"
    );
    // An identity number typed into another field is masked too.
    assert_eq!(
        mask_field(&ds, pos("CF_XDR_SHXYM"), "34052419800101001X", Some(true)),
        "340524********001X"
    );
    assert_eq!(mask_operator("张科长"), "张**");
    assert_eq!(mask_operator("root"), "root");
}

#[test]
fn subjects_and_document_numbers_come_from_the_schema() {
    let ds = registry().get("xzcf").unwrap();
    let mut v = vec![String::new(); ds.fields.len()];
    v[ds.position("CF_XDR_MC").unwrap()] = "李秀兰".into();
    v[ds.position("CF_XDR_LB").unwrap()] = "自然人".into();
    v[ds.position("CF_WSH").unwrap()] = "同市监处罚〔2024〕25号".into();
    let (subject, document) = describe_record(&ds, |i| v[i].clone());
    assert_eq!(subject, "李**");
    assert_eq!(document, "同市监处罚〔2024〕25号");
    v[ds.position("CF_XDR_LB").unwrap()] = "法人及非法人组织".into();
    v[ds.position("CF_XDR_MC").unwrap()] = "同江市江华商贸有限公司".into();
    assert_eq!(
        describe_record(&ds, |i| v[i].clone()).0,
        "同江市江华商贸有限公司"
    );
}
