//! The built-in mapping from a Pinpoint application to a HiBob employee: what the original
//! Lambda did (names, email, site, start date), with the site and the fallback start date taken
//! from settings instead of the code.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::pinpoint::Application;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDefaults {
    pub site: Option<String>,
    pub start_days_after_hire: i64,
}

/// The employee HiBob will be asked to create, and what the console shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmployeeDraft {
    pub body: Value,
    pub email: String,
    pub display_name: String,
    pub start_date: String,
}

/// A value the mapping could not produce, named by the HiBob field it was for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct MappingError {
    pub field: &'static str,
    pub problem: String,
}

fn required(value: Option<&str>, field: &'static str, what: &str) -> Result<String, MappingError> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| MappingError {
            field,
            problem: format!("the Pinpoint application has no {what}"),
        })
}

/// Reads the common date spellings Pinpoint may use and returns HiBob's `YYYY-MM-DD`.
pub fn normalise_date(text: &str) -> Option<String> {
    let text = text.trim();
    let day = text.get(..10).unwrap_or(text);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d/%m/%Y"))
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

pub fn employee_from_application(
    app: &Application,
    defaults: &ExportDefaults,
    hired_on: NaiveDate,
) -> Result<EmployeeDraft, MappingError> {
    let first = required(app.first_name.as_deref(), "firstName", "first name")?;
    let last = required(app.last_name.as_deref(), "surname", "last name")?;
    let email = required(app.email.as_deref(), "email", "email address")?;
    let site = defaults
        .site
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MappingError {
            field: "work.site",
            problem: "no default HiBob site is set: choose one under Settings → Default HiBob site"
                .into(),
        })?;
    let offered = app
        .offers
        .iter()
        .filter_map(|o| o.start_date.as_deref())
        .find_map(normalise_date);
    let start_date = offered.unwrap_or_else(|| {
        (hired_on + Duration::days(defaults.start_days_after_hire))
            .format("%Y-%m-%d")
            .to_string()
    });
    Ok(EmployeeDraft {
        body: json!({
            "firstName": first,
            "surname": last,
            "email": email,
            "work": { "site": site, "startDate": start_date },
        }),
        display_name: format!("{first} {last}"),
        email,
        start_date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pinpoint::Offer;

    fn app() -> Application {
        serde_json::from_value(json!({
            "id": "1",
            "attributes": {},
            "first_name": "Jane",
            "last_name": "Doe",
            "email": "jane.doe@example.com",
            "phone": null,
            "attachments": [],
            "job": null,
            "offers": []
        }))
        .unwrap()
    }

    fn defaults() -> ExportDefaults {
        ExportDefaults {
            site: Some("London".into()),
            start_days_after_hire: 14,
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn maps_like_the_original_lambda() {
        let d = employee_from_application(&app(), &defaults(), day("2026-11-22")).unwrap();
        assert_eq!(
            d.body,
            json!({"firstName":"Jane","surname":"Doe","email":"jane.doe@example.com",
                   "work":{"site":"London","startDate":"2026-12-06"}})
        );
        assert_eq!(d.display_name, "Jane Doe");
    }

    #[test]
    fn the_offer_start_date_wins() {
        let mut a = app();
        a.offers.push(Offer {
            id: "9".into(),
            start_date: Some("2027-01-04T00:00:00.000Z".into()),
            attributes: Default::default(),
        });
        let d = employee_from_application(&a, &defaults(), day("2026-11-22")).unwrap();
        assert_eq!(d.start_date, "2027-01-04");
    }

    #[test]
    fn missing_values_name_the_field() {
        let mut a = app();
        a.last_name = Some("  ".into());
        let e = employee_from_application(&a, &defaults(), day("2026-11-22")).unwrap_err();
        assert_eq!(e.field, "surname");
        let e = employee_from_application(
            &app(),
            &ExportDefaults {
                site: None,
                start_days_after_hire: 0,
            },
            day("2026-11-22"),
        )
        .unwrap_err();
        assert_eq!(e.field, "work.site");
        assert!(e.to_string().contains("Settings"));
    }

    #[test]
    fn dates() {
        assert_eq!(normalise_date("2027-01-04").as_deref(), Some("2027-01-04"));
        assert_eq!(normalise_date("04/01/2027").as_deref(), Some("2027-01-04"));
        assert_eq!(normalise_date("soon"), None);
    }
}
