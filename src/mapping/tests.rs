use super::*;
use crate::{
    hibob::{FieldMeta, ListItem, NamedList},
    mapping::variables::Setting,
};
use chrono::NaiveDate;
use serde_json::json;

fn meta(id: &str, ty: &str, list: Option<&str>) -> FieldMeta {
    FieldMeta {
        id: id.into(),
        name: id.rsplit('.').next().unwrap_or(id).into(),
        category: "x".into(),
        category_name: None,
        field_type: ty.into(),
        json_path: id.into(),
        is_list: list.is_some(),
        list_name: list.map(Into::into),
        historical: false,
        description: None,
    }
}

fn item(id: &str, name: &str) -> ListItem {
    ListItem {
        id: id.into(),
        name: name.into(),
        archived: false,
        children: vec![],
    }
}

fn schema() -> Schema {
    Schema::from_parts(
        vec![
            meta("root.firstName", "text", None),
            meta("root.surname", "text", None),
            meta("root.email", "text", None),
            meta("work.site", "list", Some("site")),
            meta("work.startDate", "date", None),
            meta("work.department", "list", Some("department")),
            meta("home.mobilePhone", "text", None),
            meta("payroll.employment.weeklyHours", "number", None),
            meta("root.displayName", "text", None),
            meta("work.custom.field_1", "text", None),
            meta("personal.passport", "document", None),
        ],
        vec![
            NamedList {
                name: "site".into(),
                items: vec![item("1", "London"), item("2", "New York")],
            },
            NamedList {
                name: "department".into(),
                items: vec![item("d1", "Engineering")],
            },
        ],
    )
}

fn values(pairs: &[(&str, &str)]) -> Values {
    let mut v = Values::default();
    for (k, val) in pairs {
        v.set(k, *val);
    }
    v.with_setting(&Setting {
        today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
        hired_on: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
        default_site: Some("London".into()),
        start_days_after_hire: 14,
    })
}

fn ada() -> Values {
    values(&[
        ("candidate_first_name", "Ada"),
        ("candidate_last_name", "Lovelace"),
        ("candidate_email", "Ada.Lovelace@Example.com"),
        ("candidate_telephone_number", "07700 900123"),
    ])
}

#[test]
fn the_default_mapping_does_what_the_lambda_did() {
    let compiled = compile(&default_document()).unwrap();
    let r = compiled.render(&ada(), &schema()).unwrap();
    assert_eq!(
        r.draft.body,
        json!({"firstName":"Ada","surname":"Lovelace","email":"Ada.Lovelace@Example.com",
               "work":{"site":"London","startDate":"2026-12-06"}})
    );
    assert_eq!(r.draft.display_name, "Ada Lovelace");
    assert_eq!(r.draft.start_date, "2026-12-06");
    // the offer's date wins when there is one
    let mut v = ada();
    v.set("candidate_start_date", "2027-01-04");
    let r = compiled.render(&v, &schema()).unwrap();
    assert_eq!(r.draft.start_date, "2027-01-04");
}

#[test]
fn fallbacks_fixed_values_and_encodings() {
    let mut doc = default_document();
    doc.fields[1].sources = vec![
        "{{ candidate_last_name }}".into(),
        "{{ candidate_first_name }}".into(),
    ];
    doc.fields.push(FieldRule::new(
        "home.mobilePhone",
        &["{{ candidate_telephone_number | phone('+44') }}"],
    ));
    doc.fields.push(FieldRule::new(
        "work.department",
        &["{{ job_department }}", "engineering"],
    ));
    doc.fields.push(FieldRule {
        target: "payroll.employment.weeklyHours".into(),
        sources: vec![],
        fixed: Some("37.5".into()),
    });
    doc.fields.push(FieldRule::new(
        "work.custom.field_1",
        &["{{ candidate_middle_name }}"],
    ));
    let compiled = compile(&doc).unwrap();
    let mut v = ada();
    v.set("candidate_last_name", "");
    let p = compiled.preview(&v, &schema());
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let body = &p.rendered.draft.body;
    assert_eq!(
        body["surname"],
        json!("Ada"),
        "second template wins when the first is empty"
    );
    assert_eq!(body["home"]["mobilePhone"], json!("+447700900123"));
    assert_eq!(
        body["work"]["department"],
        json!("d1"),
        "list names become item ids"
    );
    assert_eq!(body["payroll"]["employment"]["weeklyHours"], json!(37.5));
    assert!(
        body["work"].get("custom").is_none(),
        "empty optional fields are left out"
    );
    let surname = &p.rendered.trace[1];
    assert_eq!(surname.choice, Choice::Source(1));
    assert_eq!(surname.tried.len(), 2);
    assert_eq!(
        surname.tried[0].reads,
        vec![("candidate_last_name".to_owned(), String::new())]
    );
    let custom = p.rendered.trace.last().unwrap();
    assert_eq!(custom.choice, Choice::Empty);
    assert_eq!(custom.value, None);
}

#[test]
fn a_required_field_left_empty_names_the_field_and_the_fix() {
    let compiled = compile(&default_document()).unwrap();
    let mut v = ada();
    v.set("candidate_last_name", "  ");
    let e = compiled.render(&v, &schema()).unwrap_err();
    assert_eq!(e.field, "root.surname");
    assert!(e.problem.contains("(candidate_last_name is empty)"), "{e}");
    // what HR wants: the hire held until Pinpoint is complete, or a placeholder they will spot;
    // never another field's value passed off as the surname
    assert!(e.problem.contains("retry"), "{e}");
    assert!(e.problem.contains("needing attention"), "{e}");
    assert!(e.problem.contains("TO COMPLETE"), "{e}");
    assert!(!e.problem.contains("fallback"), "{e}");
    assert!(!e.problem.contains("first name"), "{e}");
    let mut v = ada();
    v.set("default_site", "");
    let e = compiled.render(&v, &schema()).unwrap_err();
    assert_eq!(e.field, "work.site");
    assert!(e.problem.contains("Settings"), "{e}");
}

#[test]
fn a_value_outside_the_list_fails_at_render() {
    let mut doc = default_document();
    doc.fields[3] = FieldRule {
        target: "work.site".into(),
        sources: vec![],
        fixed: Some("Mars".into()),
    };
    let e = compile(&doc)
        .unwrap()
        .render(&ada(), &schema())
        .unwrap_err();
    assert_eq!(e.field, "work.site");
    assert!(e.problem.contains("not in HiBob's site list"), "{e}");
    // and lint says so before saving
    let issues = lint(&doc, &schema(), None);
    assert!(
        issues.iter().any(|i| i.is_error()
            && i.field == Some(3)
            && i.message.contains("not in HiBob's site list")),
        "{issues:?}"
    );
}

#[test]
fn custom_variables_build_on_each_other() {
    let mut doc = default_document();
    doc.variables = vec![
        CustomVariable {
            name: "work_email".into(),
            template: "{{ handle }}@{{ domain }}".into(),
            description: String::new(),
        },
        CustomVariable {
            name: "handle".into(),
            template: "{{ candidate_first_name | ascii | lower }}.{{ candidate_last_name | slug }}"
                .into(),
            description: String::new(),
        },
        CustomVariable {
            name: "domain".into(),
            template: "example.org".into(),
            description: String::new(),
        },
        CustomVariable {
            name: "company_name".into(),
            template: "Analytical Engines Ltd".into(),
            description: "settable catalogue variable".into(),
        },
    ];
    doc.fields[2].sources = vec!["{{ work_email }}".into()];
    let mut v = ada();
    v.set("candidate_first_name", "Zoë");
    v.set("candidate_last_name", "Núñez García");
    let r = compile(&doc).unwrap().render(&v, &schema()).unwrap();
    assert_eq!(r.draft.email, "zoe.nunez-garcia@example.org");
    assert!(r.variables.contains(&(
        "company_name".to_owned(),
        "Analytical Engines Ltd".to_owned()
    )));
}

#[test]
fn cycles_unknown_names_and_bad_names_are_refused() {
    let var = |name: &str, template: &str| CustomVariable {
        name: name.into(),
        template: template.into(),
        description: String::new(),
    };
    let mut doc = default_document();
    doc.variables = vec![
        var("a", "{{ b }}"),
        var("b", "{{ c }}"),
        var("c", "{{ a }}"),
    ];
    let issues = compile(&doc).unwrap_err();
    assert!(
        issues.iter().any(|i| i.message.contains("a → b → c → a")),
        "{issues:?}"
    );

    doc.variables = vec![var("me", "{{ me }}x")];
    let issues = compile(&doc).unwrap_err();
    assert!(
        issues.iter().any(|i| i.message.contains("me → me")),
        "{issues:?}"
    );

    doc.variables = vec![
        var("candidate_email", "x"),
        var("2bad", "x"),
        var("ok", "{{ candidat_email }}"),
    ];
    let issues = compile(&doc).unwrap_err();
    assert!(
        issues
            .iter()
            .any(|i| i.variable == Some(0) && i.message.contains("catalogue variable")),
        "{issues:?}"
    );
    assert!(
        issues
            .iter()
            .any(|i| i.variable == Some(1) && i.message.contains("letters")),
        "{issues:?}"
    );
    assert!(
        issues
            .iter()
            .any(|i| i.variable == Some(2) && i.message.contains("Did you mean candidate_email?")),
        "{issues:?}"
    );
}

#[test]
fn lint_finds_what_would_fail() {
    let mut doc = default_document();
    doc.fields.remove(4); // work.startDate
    doc.fields[0].sources = vec!["{{ candidate_first_name | }}".into()];
    doc.fields.push(FieldRule::new(
        "root.displayName",
        &["{{ candidate_full_name }}"],
    ));
    doc.fields.push(FieldRule::new("work.nothing", &["x"]));
    doc.fields.push(FieldRule::new("personal.passport", &["x"]));
    doc.fields
        .push(FieldRule::new("root.email", &["{{ candidate_email }}"]));
    doc.fields
        .push(FieldRule::new("home.mobilePhone", &["", " "]));
    let issues = lint(&doc, &schema(), None);
    let has = |field: Option<usize>, text: &str| {
        issues
            .iter()
            .any(|i| i.is_error() && i.field == field && i.message.contains(text))
    };
    assert!(has(Some(0), "syntax error"), "{issues:?}");
    let syntax = issues.iter().find(|i| i.field == Some(0)).unwrap();
    assert_eq!((syntax.line, syntax.source), (Some(1), Some(0)));
    assert!(syntax.column.is_some());
    assert!(has(None, "HiBob requires this field"), "{issues:?}");
    assert!(has(Some(4), "computes this field"), "{issues:?}");
    assert!(has(Some(5), "no field with this id"), "{issues:?}");
    assert!(has(Some(6), "cannot be set from a template"), "{issues:?}");
    assert!(has(Some(7), "already mapped in row 3"), "{issues:?}");
    assert!(has(Some(8), "template or a fixed value"), "{issues:?}");

    // without HiBob's catalogue: a warning, and unknown ids pass
    let issues = lint(&default_document(), &Schema::builtin(), None);
    assert!(issues.iter().all(|i| !i.is_error()), "{issues:?}");
    assert!(issues
        .iter()
        .any(|i| i.message.contains("could not be read")));
}

#[test]
fn lint_renders_the_sample_and_warns() {
    let mut doc = default_document();
    doc.fields.push(FieldRule::new(
        "payroll.employment.weeklyHours",
        &["{{ candidate_first_name }}"],
    ));
    let issues = lint(&doc, &schema(), Some(&ada()));
    let w = issues
        .iter()
        .find(|i| i.severity == Severity::Warning)
        .unwrap();
    assert_eq!(w.field, Some(5));
    assert!(
        w.message.contains("for the sample candidate") && w.message.contains("not a number"),
        "{w:?}"
    );
}

#[test]
fn hostile_templates_fail_with_the_field_named() {
    let hostile = [
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loops"),
        ("{% set ns = namespace(s=\"xxxxxxxx\") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "{% set %}"),
        ("{{ 'x' * 99999999999 }}", "`*`"),
        ("{{ candidate_first_name * 30 }}", "`*`"),
    ];
    for (template, says) in hostile {
        let mut doc = default_document();
        doc.fields[0].sources = vec![template.into()];
        let issues = lint(&doc, &schema(), Some(&ada()));
        assert!(
            issues.iter().any(|i| i.is_error()
                && i.field == Some(0)
                && i.source == Some(0)
                && i.message.contains(says)),
            "refused at lint time, on its field: {template}: {issues:?}"
        );
        // the worker compiles the same way, so a version saved before these rules cannot run
        let refused = compile(&doc).err().unwrap_or_default();
        assert!(
            refused
                .iter()
                .any(|i| i.field == Some(0) && i.message.contains(says)),
            "{template}: {refused:?}"
        );
    }
    // a limit reached while rendering still names the field
    let mut doc = default_document();
    doc.fields[0].sources = vec!["{{ candidate_first_name | replace('', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxxxxxx') }}".into()];
    let e = compile(&doc)
        .unwrap()
        .render(&ada(), &schema())
        .unwrap_err();
    assert_eq!(e.field, "root.firstName");
    assert!(
        crate::mapping::templates::is_limit_failure(&e.problem),
        "{e}"
    );
}

#[test]
fn diff_shows_what_changed() {
    let before = default_document();
    let mut after = default_document();
    after.fields[1]
        .sources
        .push("{{ candidate_first_name }}".into());
    after.fields.remove(3);
    after.fields.push(FieldRule {
        target: "work.site".into(),
        sources: vec![],
        fixed: Some("London".into()),
    });
    after.fields.push(FieldRule::new(
        "home.mobilePhone",
        &["{{ candidate_telephone_number }}"],
    ));
    after.variables.push(CustomVariable {
        name: "x".into(),
        template: "y".into(),
        description: String::new(),
    });
    let d = diff(&before, &after);
    let find = |s: &str| d.iter().find(|l| l.subject == s).unwrap();
    assert_eq!(find("root.surname").change, Change::Changed);
    assert!(find("root.surname").after.contains("candidate_first_name"));
    assert_eq!(find("work.site").after, "fixed: London");
    assert_eq!(find("home.mobilePhone").change, Change::Added);
    assert_eq!(find("variable x").change, Change::Added);
    assert_eq!(d.len(), 4, "{d:?}");
    assert!(diff(&before, &before).is_empty());
}

#[test]
fn the_fixed_value_is_the_last_resort_after_the_templates() {
    let mut doc = default_document();
    doc.fields[1].fixed = Some("Unknown".into());
    let compiled = compile(&doc).unwrap();
    let with_surname = compiled.preview(&ada(), &schema());
    assert_eq!(
        with_surname.rendered.draft.body["surname"],
        json!("Lovelace")
    );
    assert_eq!(with_surname.rendered.trace[1].choice, Choice::Source(0));
    let mut v = ada();
    v.set("candidate_last_name", " ");
    let without = compiled.preview(&v, &schema());
    assert!(without.errors.is_empty(), "{:?}", without.errors);
    assert_eq!(without.rendered.draft.body["surname"], json!("Unknown"));
    assert_eq!(without.rendered.trace[1].choice, Choice::Fixed);
    assert_eq!(
        without.rendered.trace[1].tried.len(),
        1,
        "the template was tried first"
    );
    // nothing hides anything here, so lint has nothing to say about it
    let issues = lint(&doc, &schema(), Some(&ada()));
    assert!(issues.iter().all(|i| i.field != Some(1)), "{issues:?}");
}

#[test]
fn lint_warns_when_a_constant_template_hides_what_follows_it() {
    let mut doc = default_document();
    doc.fields[1].sources = vec!["Unknown".into(), "{{ candidate_last_name }}".into()];
    doc.fields[3].sources = vec!["London".into()];
    doc.fields[3].fixed = Some("Paris".into());
    let issues = lint(&doc, &schema(), None);
    let about = |f: usize| issues.iter().find(|i| i.field == Some(f)).cloned();
    let surname = about(1).expect("a warning on the surname");
    assert_eq!(surname.severity, Severity::Warning);
    assert_eq!(surname.source, Some(0));
    assert!(
        surname
            .message
            .contains("templates after it are never used"),
        "{surname:?}"
    );
    let site = about(3).expect("a warning on the site");
    assert!(
        site.message.contains("fixed value is never used"),
        "{site:?}"
    );
    // a constant as the very last template hides nothing
    doc.fields[1].sources = vec!["{{ candidate_last_name }}".into(), "Unknown".into()];
    doc.fields[3].fixed = None;
    let issues = lint(&doc, &schema(), None);
    assert!(
        issues
            .iter()
            .all(|i| i.field != Some(1) && i.field != Some(3)),
        "{issues:?}"
    );
}

#[test]
fn a_constant_template_hibob_refuses_blocks_saving_and_suggests_the_nearest_value() {
    let mut doc = default_document();
    let sample = ada();
    for constant in ["London HQ", "{{ 'London HQ' }}"] {
        doc.fields[3].sources = vec![constant.into()];
        let issues = lint(&doc, &schema(), Some(&sample));
        let found = issues
            .iter()
            .find(|i| i.is_error() && i.field == Some(3) && i.source == Some(0));
        let Some(found) = found else {
            panic!("{constant}: no error in {issues:?}")
        };
        assert!(
            found.message.contains("not in HiBob's site list")
                && found.message.contains("Did you mean London?"),
            "{found:?}"
        );
        assert_eq!(
            issues.iter().filter(|i| i.field == Some(3)).count(),
            1,
            "the sample's failure repeats the error: {issues:?}"
        );
    }
    // a template that reads a variable can suit some candidates: a warning, never an error
    doc.fields[3].sources = vec!["{{ default_site }} HQ".into()];
    let issues = lint(&doc, &schema(), Some(&sample));
    assert!(
        issues.iter().all(|i| !i.is_error() || i.field != Some(3)),
        "{issues:?}"
    );
    // an empty constant falls through to the next template, so it is not refused
    doc.fields[3].sources = vec!["{{ '' }}".into(), "{{ default_site }}".into()];
    assert!(!lint(&doc, &schema(), Some(&sample))
        .iter()
        .any(|i| i.is_error() && i.field == Some(3)));
    // the fixed value gets the same suggestion
    doc.fields[3].sources = Vec::new();
    doc.fields[3].fixed = Some("new york city".into());
    let issues = lint(&doc, &schema(), Some(&sample));
    assert!(
        issues
            .iter()
            .any(|i| i.is_error() && i.message.contains("Did you mean New York?")),
        "{issues:?}"
    );
}
