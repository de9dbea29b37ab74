//! Renders a 40-field mapping for many candidates and reports the time per employee body.
//!
//! `cargo run --release --example mapping_bench -- [renders]`
//!
//! The mapping mixes what real ones hold: plain variables, filters (case, dates, phone, country,
//! slug), fallbacks, fixed values, list fields resolved against a HiBob named list, and two custom
//! variables. Each render builds the whole body (values encoded per field type and nested), as the
//! export worker does; candidates differ so nothing is cached between renders.

use std::time::Instant;

use chrono::NaiveDate;
use integration::{
    hibob::schema::Schema,
    hibob::{FieldMeta, ListItem, NamedList},
    mapping::variables::{self as variables, Setting},
    mapping::{self, CustomVariable, FieldRule, MappingDocument},
};

fn field(id: &str, ty: &str, list: Option<&str>) -> FieldMeta {
    FieldMeta {
        id: id.to_owned(),
        name: id.to_owned(),
        category: "bench".to_owned(),
        category_name: None,
        field_type: ty.to_owned(),
        json_path: id.to_owned(),
        is_list: list.is_some(),
        list_name: list.map(str::to_owned),
        historical: false,
        description: None,
    }
}

fn main() {
    let renders: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);

    let mut rules = vec![
        FieldRule::new(
            "root.firstName",
            &[
                "{{ candidate_preferred_name }}",
                "{{ candidate_first_name | title }}",
            ],
        ),
        FieldRule::new(
            "root.surname",
            &["{{ candidate_last_name }}", "{{ candidate_first_name }}"],
        ),
        FieldRule::new("root.email", &["{{ work_email }}"]),
        FieldRule::new("work.site", &["{{ job_location }}", "{{ default_site }}"]),
        FieldRule::new(
            "work.startDate",
            &["{{ candidate_start_date }}", "{{ default_start_date }}"],
        ),
        FieldRule::new("work.department", &["{{ job_department }}"]),
        FieldRule::new(
            "home.mobilePhone",
            &["{{ candidate_telephone_number | phone('+44') }}"],
        ),
        FieldRule::new("home.privateEmail", &["{{ candidate_email | lower }}"]),
        FieldRule::new("personal.birthDate", &["{{ candidate_birth_date | date }}"]),
        FieldRule::new(
            "address.country",
            &["{{ candidate_address_country_code | country_name }}"],
        ),
        FieldRule::new("address.city", &["{{ candidate_address_city | title }}"]),
        FieldRule::new("payroll.employment.weeklyHours", &[]),
        FieldRule::new("work.custom.field_handle", &["{{ handle }}"]),
        FieldRule::new(
            "work.custom.field_probation_end",
            &["{{ candidate_start_date | add_months(6) }}"],
        ),
        FieldRule::new(
            "work.custom.field_first_monday",
            &["{{ candidate_start_date | next_weekday('monday') }}"],
        ),
    ];
    rules[11].fixed = Some("37.5".to_owned());
    let mut fields = vec![
        field("root.firstName", "text", None),
        field("root.surname", "text", None),
        field("root.email", "text", None),
        field("work.site", "list", Some("site")),
        field("work.startDate", "date", None),
        field("work.department", "list", Some("department")),
        field("home.mobilePhone", "text", None),
        field("home.privateEmail", "text", None),
        field("personal.birthDate", "date", None),
        field("address.country", "text", None),
        field("address.city", "text", None),
        field("payroll.employment.weeklyHours", "number", None),
        field("work.custom.field_handle", "text", None),
        field("work.custom.field_probation_end", "date", None),
        field("work.custom.field_first_monday", "date", None),
    ];
    // 25 more custom text fields, a third of them with a filter, to reach 40
    for i in 0..25 {
        let id = format!("custom.category_1.field_{i}");
        let source = match i % 3 {
            0 => "{{ job_title | upper }}".to_owned(),
            1 => "{{ candidate_channel }}".to_owned(),
            _ => format!("{{{{ application.linkedin_url }}}}{i}"),
        };
        rules.push(FieldRule::new(&id, &[source.as_str()]));
        fields.push(field(&id, "text", None));
    }
    assert_eq!(rules.len(), 40);
    let doc = MappingDocument {
        fields: rules,
        variables: vec![
            CustomVariable {
                name: "handle".to_owned(),
                template:
                    "{{ candidate_first_name | ascii | lower }}.{{ candidate_last_name | slug }}"
                        .to_owned(),
                description: String::new(),
            },
            CustomVariable {
                name: "work_email".to_owned(),
                template: "{{ handle }}@example.com".to_owned(),
                description: String::new(),
            },
        ],
    };
    let item = |id: &str, name: &str| ListItem {
        id: id.to_owned(),
        name: name.to_owned(),
        archived: false,
        children: vec![],
    };
    let schema = Schema::from_parts(
        fields,
        vec![
            NamedList {
                name: "site".to_owned(),
                items: vec![item("1", "London"), item("2", "New York")],
            },
            NamedList {
                name: "department".to_owned(),
                items: (0..30)
                    .map(|i| item(&format!("d{i}"), &format!("Department {i}")))
                    .chain([item("d99", "Engineering")])
                    .collect(),
            },
        ],
    );
    let compiled = match mapping::compile(&doc) {
        Ok(c) => c,
        Err(issues) => panic!("the benchmark mapping does not compile: {issues:?}"),
    };
    let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default();
    let setting = Setting {
        today,
        hired_on: today,
        default_site: Some("London".to_owned()),
        start_days_after_hire: 14,
    };
    let base = variables::sample(&setting);
    let candidates: Vec<_> = (0..1000)
        .map(|i| {
            let mut v = base.clone();
            v.set("candidate_first_name", format!("Ada{i}"));
            v.set("candidate_last_name", format!("Lovelace-Núñez {i}"));
            v
        })
        .collect();

    // each candidate's context is built once, as for an export (its first render builds it)
    let fresh_started = Instant::now();
    let fresh: Vec<_> = candidates
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.set("hired_on", "2026-11-22");
            compiled.render(&c, &schema).map(|_| ())
        })
        .collect();
    let fresh_time = fresh_started.elapsed();
    assert!(fresh.iter().all(Result::is_ok));
    println!(
        "{} first renders of fresh candidates (context built + body): mean {:.1} µs",
        candidates.len(),
        fresh_time.as_secs_f64() * 1e6 / candidates.len() as f64
    );

    // warm-up, and a check that the body is complete
    let first = compiled
        .render(&candidates[0], &schema)
        .expect("the sample renders");
    assert_eq!(first.draft.body["work"]["department"], "d99");

    let mut samples = Vec::with_capacity(renders);
    let cpu_before = thread_cpu_ticks();
    let started = Instant::now();
    for i in 0..renders {
        let t = Instant::now();
        let rendered = compiled.render(&candidates[i % candidates.len()], &schema);
        samples.push(t.elapsed());
        if rendered.is_err() {
            panic!("render {i} failed: {rendered:?}");
        }
    }
    let total = started.elapsed();
    let cpu = thread_cpu_ticks()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{renders} renders of a 40-field body: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        total.as_secs_f64() * 1e6 / renders as f64,
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6,
    );
    // wall time includes waiting for a core when other work runs; CPU time does not
    if let Some(ticks) = cpu {
        println!(
            "CPU time of the rendering thread: {:.1} µs per body (clock ticks of 10 ms)",
            ticks as f64 * 10_000.0 / renders as f64
        );
    }
}

/// User plus system time of this thread so far, in clock ticks (Linux).
fn thread_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // the command name may contain spaces; the fields after it are space separated
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
