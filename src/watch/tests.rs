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
fn the_work_e_mail_and_custom_table_columns_are_changed_by_hand_the_work_entry_by_the_console() {
    let mut title = field("work.title", "Title", json!("Staff engineer"));
    title.historical = true;
    let mut column = field("work.custom.field_9", "Badge", json!("B-7"));
    column.historical = true;
    let now = [
        field("root.email", "Email", json!("jane.doe@example.com")),
        title,
        column,
    ];
    let found = compare(&now, &sent(), &sent(), Some(&sent()));
    let routes: Vec<(&str, Route)> = found
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.route))
        .collect();
    assert_eq!(
        routes,
        [
            ("root.email", Route::ByHand),
            ("work.title", Route::WorkEntry),
            ("work.custom.field_9", Route::ByHand)
        ]
    );
    assert!(found.changes[1].safe_to_apply() && !found.changes[0].safe_to_apply());
}

#[test]
fn the_work_entry_in_force_at_the_start_is_written_back_whole_with_the_change() {
    let entries = [
        json!({"id": 7, "effectiveDate": "2026-01-01", "title": "111", "site": "Paris",
               "isCurrent": true}),
        json!({"id": 9, "effectiveDate": "2027-01-04", "title": "222", "department": "333",
               "site": "London", "siteId": 2510068, "reportsTo": {"id": "42", "displayName": "Ann"},
               "customColumns": {"column_1": "x"}, "workChangeType": "hire"}),
    ];
    let entry = entry_in_force(&entries, Some("2027-01-11")).expect("an entry");
    assert_eq!(entry["id"], 9);
    assert_eq!(
        entry_in_force(&entries, Some("2026-06-01")).expect("entry")["id"],
        7
    );
    assert_eq!(
        entry_in_force(&entries, None).expect("entry")["id"],
        7,
        "the current one"
    );
    assert_eq!(
        entry_in_force(&entries, Some("2025-01-01")).expect("entry")["id"],
        7
    );
    assert!(entry_in_force(&[], Some("2027-01-04")).is_none());

    let mut title = field("work.title", "Title", json!("444"));
    title.historical = true;
    let mut site = field("work.site", "Site", json!("Berlin"));
    site.historical = true;
    let found = compare(&[title, site], &sent(), &sent(), Some(&sent()));
    let chosen: Vec<&Change> = found.changes.iter().collect();
    let (id, body) = work_entry_body(entry, &chosen, "moved").expect("a body");
    assert_eq!(id, 9);
    assert_eq!(
        body,
        json!({"effectiveDate": "2027-01-04", "title": "444", "department": "333",
               "site": "Berlin", "reportsTo": {"id": "42"}, "customColumns": {"column_1": "x"},
               "reason": "moved"})
    );
    assert!(work_entry_body(&json!({"effectiveDate": "2027-01-04"}), &chosen, "r").is_none());
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
