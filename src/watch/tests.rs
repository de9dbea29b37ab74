use chrono::NaiveDate;
use serde_json::{json, Value};

use super::*;

fn field(id: &str, label: &str, value: Value) -> FieldNow {
    FieldNow {
        field: id.into(),
        label: label.into(),
        value: Some(value),
        historical: false,
    }
}

fn sent() -> Value {
    json!({"firstName": "Jane", "surname": "Doe", "email": "jane@example.com",
           "work": {"startDate": "2027-01-04", "title": "Engineer"}})
}

#[test]
fn a_new_start_date_in_pinpoint_is_a_change_hibob_can_take_safely() {
    let now = [
        field("root.firstName", "First name", json!("Jane")),
        field("work.startDate", "Start date", json!("2027-01-11")),
    ];
    let found = compare(&now, &sent(), &sent(), Some(&sent()));
    assert_eq!(found.changes.len(), 1, "{found:?}");
    let c = &found.changes[0];
    assert_eq!(
        (c.sent.as_str(), c.pinpoint.as_str(), c.hibob.as_deref()),
        ("2027-01-04", "2027-01-11", Some("2027-01-04"))
    );
    assert_eq!(c.route, Route::StartDate);
    assert!(!c.edited_in_hibob && c.safe_to_apply());
}

#[test]
fn a_value_edited_in_hibob_is_shown_and_never_safe() {
    let now = [field("work.startDate", "Start date", json!("2027-01-11"))];
    let hibob = json!({"work": {"startDate": "2027-02-01"}});
    let found = compare(&now, &sent(), &sent(), Some(&hibob));
    let c = &found.changes[0];
    assert!(c.edited_in_hibob, "{c:?}");
    assert_eq!(c.hibob.as_deref(), Some("2027-02-01"));
    assert!(!c.safe_to_apply());
    // a field HiBob does not let the service user read is not safe either
    let found = compare(&now, &sent(), &sent(), Some(&json!({})));
    assert_eq!(found.changes[0].hibob, None);
    assert!(!found.changes[0].safe_to_apply());
}

#[test]
fn hibob_already_holding_the_new_value_settles_it_quietly() {
    let now = [field("root.surname", "Last name", json!("Doe-Smith"))];
    let hibob = json!({"surname": "doe-smith"});
    let found = compare(&now, &sent(), &sent(), Some(&hibob));
    assert!(found.changes.is_empty());
    assert_eq!(
        found.settled,
        vec![("root.surname".to_owned(), json!("Doe-Smith"))]
    );
}

#[test]
fn unchanged_emptied_and_computed_fields_are_no_change() {
    let mut emptied = field("work.title", "Title", json!(""));
    emptied.value = None;
    let now = [
        field("root.firstName", "First name", json!("Jane")),
        emptied,
        field("root.displayName", "Display name", json!("Someone Else")),
        field("work.startDate", "Start date", json!("04/01/2027")),
    ];
    let found = compare(&now, &sent(), &sent(), Some(&sent()));
    assert!(found.changes.is_empty(), "{found:?}");
}

#[test]
fn the_work_e_mail_and_work_history_fields_are_changed_by_hand() {
    let mut title = field("work.title", "Title", json!("Staff engineer"));
    title.historical = true;
    let now = [
        field("root.email", "Email", json!("jane.doe@example.com")),
        title,
    ];
    let found = compare(&now, &sent(), &sent(), Some(&sent()));
    assert_eq!(found.changes.len(), 2);
    assert!(found
        .changes
        .iter()
        .all(|c| c.route == Route::ByHand && !c.safe_to_apply()));
}

#[test]
fn an_update_body_nests_fields_as_a_create_does() {
    let now = [
        field("root.surname", "Last name", json!("Doe-Smith")),
        field("work.custom.field_1", "Badge", json!("B-7")),
    ];
    let found = compare(&now, &sent(), &sent(), Some(&sent()));
    let chosen: Vec<&Change> = found.changes.iter().collect();
    assert_eq!(
        update_body(&chosen),
        json!({"surname": "Doe-Smith", "work": {"custom": {"field_1": "B-7"}}})
    );
    assert_eq!(
        with_value(&sent(), "work.startDate", json!("2027-01-11"))["work"],
        json!({"startDate": "2027-01-11", "title": "Engineer"})
    );
}

fn application(attributes: Value, offers: Vec<Value>) -> Application {
    let included: Vec<Value> = offers
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"type": "offers", "id": i.to_string(), "attributes": a}))
        .collect();
    Application::from_document(&json!({
        "data": {"id": "1", "type": "applications", "attributes": attributes},
        "included": included
    }))
    .expect("application")
}

#[test]
fn a_hire_falls_through_when_pinpoint_says_so_in_any_of_its_words() {
    let hired = application(json!({"first_name": "Jane", "stage_name": "Hired"}), vec![]);
    assert_eq!(fallen_through(&hired), None);
    let plain = application(
        json!({"first_name": "Jane"}),
        vec![json!({"status": "accepted"})],
    );
    assert_eq!(fallen_through(&plain), None);
    for (attributes, offers, says) in [
        (
            json!({"rejected_at": "2026-12-01T10:00:00Z"}),
            vec![],
            "rejected",
        ),
        (json!({"status": "Withdrawn"}), vec![], "Withdrawn"),
        (json!({"stage_name": "Offer"}), vec![], "\"Offer\""),
        (json!({"stage": {"name": "Interview"}}), vec![], "Interview"),
        (json!({}), vec![json!({"status": "withdrawn"})], "offer"),
    ] {
        let why = fallen_through(&application(attributes, offers)).expect("fallen through");
        assert!(why.contains(says), "{why}");
    }
}

#[test]
fn watching_lasts_past_the_start_and_checks_more_often_near_it() {
    let exported = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
    let start = NaiveDate::from_ymd_opt(2027, 1, 4);
    assert_eq!(watch_until(start, exported, 14).to_string(), "2027-01-18");
    assert_eq!(watch_until(None, exported, 14).to_string(), "2027-03-01");
    assert!(next_check_in(Some(3)) < next_check_in(Some(20)));
    assert!(next_check_in(Some(20)) < next_check_in(Some(60)));
    assert_eq!(next_check_in(Some(-3)), next_check_in(None));
}

#[test]
fn the_policy_setting_names_fields_loosely() {
    assert_eq!(
        auto_fields(" work.startDate, root.firstName;;"),
        vec!["work.startDate".to_owned(), "firstName".to_owned()]
    );
    assert!(auto_fields("").is_empty());
}
