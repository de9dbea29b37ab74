//! Reading the dates people and systems write, for the templates and for HiBob's date fields.

use chrono::NaiveDate;

/// Reads the date spellings seen in Pinpoint data: ISO dates and timestamps, `DD/MM/YYYY`,
/// `YYYY/MM/DD`, `DD.MM.YYYY`, and `4 January 2027` / `January 4, 2027`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if let Some(day) = text
        .get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    {
        return Some(day);
    }
    [
        "%d/%m/%Y",
        "%Y/%m/%d",
        "%d.%m.%Y",
        "%d %B %Y",
        "%d %b %Y",
        "%B %d, %Y",
        "%b %d, %Y",
        "%B %d %Y",
    ]
    .iter()
    .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
}

/// HiBob's `YYYY-MM-DD`, from any spelling [`parse_date`] reads.
pub fn normalise_date(text: &str) -> Option<String> {
    parse_date(text).map(|d| d.to_string())
}

/// A hire that starts within this many days (or already started) is urgent: a stopped export or
/// a change to it is sent at once and listed first.
pub const URGENT_WITHIN_DAYS: i64 = 7;

/// Days from `today` to a `YYYY-MM-DD` start date; negative once it has passed.
pub fn days_until(start_date: &str, today: NaiveDate) -> Option<i64> {
    let day = NaiveDate::parse_from_str(start_date.get(..10)?, "%Y-%m-%d").ok()?;
    Some((day - today).num_days())
}

/// Urgent: the hire starts within a week or already has. An unknown date is not, but it is
/// listed after every dated one.
pub fn is_urgent(days_to_start: Option<i64>) -> bool {
    days_to_start.is_some_and(|d| d <= URGENT_WITHIN_DAYS)
}
