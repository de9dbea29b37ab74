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
