//! The template language of mappings: minijinja with Pinpoint's `{{ candidate_email }}` syntax,
//! the filters HR data needs, and limits that keep a hostile or mistaken template from hurting
//! the worker.
//!
//! Limits, and why:
//! - fuel bounds the instructions one render may run, so a loop ends with an error instead of
//!   spinning the worker;
//! - the output of one render is capped, so a template cannot produce a megabyte "name";
//! - there is no loader, no `include`/`import` source and no function that reads files or the
//!   network: a template sees only the variables it is given;
//! - undefined names inside a render are lenient (a missing Pinpoint attribute is empty, so a
//!   fallback can take over), while names unknown to the catalogue are refused before a template
//!   is ever saved or rendered (see [`Compiled::names`]).

pub use crate::dates::{normalise_date, parse_date};
use std::{collections::BTreeSet, io};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use minijinja::{value::Value, Environment, Error, ErrorKind, UndefinedBehavior};

/// Instructions one render may run: far above any real mapping (a 40-field body uses a few
/// hundred), far below what makes a worker stall.
pub const FUEL: u64 = 20_000;
/// Bytes one template may output. HiBob's longest text fields are far shorter.
pub const MAX_OUTPUT: usize = 16 * 1024; // keep TOO_MUCH_TEXT in step
/// Characters of template source accepted, per template.
pub const MAX_SOURCE: usize = 8 * 1024;
/// Bytes any one value inside a render may hold (what a filter returns): above the output cap,
/// so a long intermediate can still be cut down, but small enough that no template, whose
/// every part runs at most once (see `template_guard`), can build a large one.
pub const MAX_VALUE: usize = 64 * 1024;

const TOO_MUCH_WORK: &str = "the template did too much work (a loop that runs too long?)";
const TOO_MUCH_TEXT: &str = "the template produced more than 16 KiB of text";
const TOO_LARGE_VALUE: &str = "a value in the template grew past 64 KiB";

/// Whether a render failure is the template's own fault whatever the candidate (a limit hit),
/// rather than something about this candidate's data.
pub fn is_limit_failure(message: &str) -> bool {
    message.contains(TOO_MUCH_WORK)
        || message.contains(TOO_MUCH_TEXT)
        || message.contains(TOO_LARGE_VALUE)
}

/// A problem with a template, positioned when the parser knows where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateProblem {
    pub message: String,
    /// 1-based line and column in the template's own text.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{} (line {l}, column {c})", self.message),
            (Some(l), None) => write!(f, "{} (line {l})", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl TemplateProblem {
    fn plain(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            line: None,
            column: None,
        }
    }

    fn from_error(error: &Error, source: &str) -> Self {
        let message = match error.kind() {
            ErrorKind::OutOfFuel => TOO_MUCH_WORK.to_owned(),
            ErrorKind::WriteFailure => TOO_MUCH_TEXT.to_owned(),
            _ => match error.detail() {
                Some(detail) => format!("{}: {detail}", kind_text(error.kind())),
                None => kind_text(error.kind()).to_owned(),
            },
        };
        let (line, column) = match error.range() {
            Some(range) => {
                let (l, c) = line_column(source, range.start);
                (Some(l), Some(c))
            }
            None => (error.line(), None),
        };
        Self {
            message,
            line,
            column,
        }
    }
}

fn kind_text(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::SyntaxError => "syntax error",
        ErrorKind::UnknownFilter => "unknown filter",
        ErrorKind::UnknownFunction => "unknown function",
        ErrorKind::UnknownTest => "unknown test",
        ErrorKind::UnknownMethod => "unknown method",
        ErrorKind::UndefinedError => "a value is not set",
        ErrorKind::InvalidOperation => "invalid operation",
        ErrorKind::TooManyArguments => "too many arguments",
        ErrorKind::MissingArgument => "missing argument",
        ErrorKind::BadSerialization => "value cannot be used",
        _ => "cannot render",
    }
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses the template and refuses the constructs a mapping may not use (see `template_guard`).
fn guard(source: &str) -> Result<(), TemplateProblem> {
    let ast = minijinja::machinery::parse(source, "template", Default::default())
        .map_err(|e| TemplateProblem::from_error(&e, source))?;
    crate::mapping::template_guard::check(&ast).map_err(|r| TemplateProblem {
        message: r.message,
        line: Some(r.line),
        column: Some(r.column),
    })
}

/// What keeps a template from being saved though it compiles (see
/// `template_guard::check_for_save`), if anything.
pub fn save_problem(source: &str) -> Option<TemplateProblem> {
    if shape_of(source) != Shape::Template {
        return None;
    }
    let ast = minijinja::machinery::parse(source, "template", Default::default()).ok()?;
    crate::mapping::template_guard::check_for_save(&ast)
        .err()
        .map(|r| TemplateProblem {
            message: r.message,
            line: Some(r.line),
            column: Some(r.column),
        })
}

/// How a template is run: most mapping templates are a single variable or plain text, and those
/// need no interpreter at all.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Literal(String),
    Variable(String),
    Template,
}

fn shape_of(source: &str) -> Shape {
    let trimmed = source.trim();
    if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
        return Shape::Literal(source.to_owned());
    }
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .map(str::trim)
    {
        if is_identifier(inner)
            && !matches!(inner, "true" | "false" | "none" | "True" | "False" | "None")
        {
            return Shape::Variable(inner.to_owned());
        }
    }
    Shape::Template
}

/// A name that may be a variable: letters, digits and underscores, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A set of templates compiled once and rendered many times (one per mapping version).
pub struct Engine {
    env: Environment<'static>,
    /// Template names in the environment (the index as text), made once, not per render.
    names: Vec<String>,
    shapes: Vec<Shape>,
    sources: Vec<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("templates", &self.sources.len())
            .finish()
    }
}

/// Handle of one template inside an [`Engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(usize);

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Self {
            env: environment(),
            names: Vec::new(),
            shapes: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// Compiles a template, or says what is wrong with it and where.
    pub fn add(&mut self, source: &str) -> Result<TemplateId, TemplateProblem> {
        if source.len() > MAX_SOURCE {
            return Err(TemplateProblem::plain(format!(
                "the template is longer than {} KiB",
                MAX_SOURCE / 1024
            )));
        }
        let id = TemplateId(self.sources.len());
        let shape = shape_of(source);
        if shape == Shape::Template {
            guard(source)?;
            self.env
                .add_template_owned(id.0.to_string(), source.to_owned())
                .map_err(|e| TemplateProblem::from_error(&e, source))?;
        }
        self.shapes.push(shape);
        self.names.push(id.0.to_string());
        self.sources.push(source.to_owned());
        Ok(id)
    }

    fn template_name(&self, id: TemplateId) -> &str {
        self.names.get(id.0).map_or("", String::as_str)
    }

    pub fn source(&self, id: TemplateId) -> &str {
        self.sources.get(id.0).map_or("", String::as_str)
    }

    /// The top-level names a template reads (`candidate_email`, `application`), for checking
    /// them against the variable catalogue and for the "why this value" trace.
    pub fn names(&self, id: TemplateId) -> BTreeSet<String> {
        match self.shapes.get(id.0) {
            Some(Shape::Variable(name)) => BTreeSet::from([name.clone()]),
            Some(Shape::Template) => self
                .env
                .get_template(self.template_name(id))
                .map(|t| t.undeclared_variables(false).into_iter().collect())
                .unwrap_or_default(),
            _ => BTreeSet::new(),
        }
    }

    /// Renders with the given variables, within the fuel and output limits.
    pub fn render(&self, id: TemplateId, context: &Context) -> Result<String, TemplateProblem> {
        match self.shapes.get(id.0) {
            Some(Shape::Literal(text)) => Ok(text.clone()),
            Some(Shape::Variable(name)) => Ok(context.text(name)),
            Some(Shape::Template) => {
                let source = self.source(id);
                let template = self
                    .env
                    .get_template(self.template_name(id))
                    .map_err(|e| TemplateProblem::from_error(&e, source))?;
                let mut out = Capped::default();
                template
                    .render_captured_to(context.value.clone(), &mut out)
                    .map_err(|e| TemplateProblem::from_error(&e, source))?;
                String::from_utf8(out.buf)
                    .map_err(|_| TemplateProblem::plain("the template produced invalid text"))
            }
            None => Err(TemplateProblem::plain("unknown template")),
        }
    }
}

/// The variables a render sees: text values plus the raw Pinpoint objects.
#[derive(Debug, Clone, Default)]
pub struct Context {
    value: Value,
}

impl Context {
    pub fn new(map: std::collections::BTreeMap<String, Value>) -> Self {
        Self {
            value: Value::from(map),
        }
    }

    /// These variables on top of this context, without copying it.
    pub fn with(&self, extra: &[(String, String)]) -> Self {
        if extra.is_empty() {
            return self.clone();
        }
        let map: std::collections::BTreeMap<String, Value> = extra
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        Self {
            value: minijinja::value::merge_maps([Value::from(map), self.value.clone()]),
        }
    }

    fn text(&self, name: &str) -> String {
        match self.value.get_attr(name) {
            Ok(v) if v.is_undefined() || v.is_none() => String::new(),
            Ok(v) => v.to_string(),
            Err(_) => String::new(),
        }
    }
}

/// Refuses bytes past [`MAX_OUTPUT`], which ends the render with a write failure.
#[derive(Default)]
struct Capped {
    buf: Vec<u8>,
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT {
            return Err(io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The names of the filters mapping templates may use beyond minijinja's built-ins, with what
/// they do, for the Variables page.
pub const FILTERS: &[(&str, &str)] = &[
    ("lower / upper / title", "change case: {{ candidate_last_name | upper }}"),
    ("trim", "remove spaces at both ends"),
    ("default(\"x\")", "use x when the value is empty (empty text counts as missing)"),
    ("date(\"%d/%m/%Y\")", "read a date written in any common way and write it in the given format (default YYYY-MM-DD)"),
    ("add_days(n) / add_months(n)", "date arithmetic: {{ today | add_days(1) }} is tomorrow"),
    ("next_weekday(\"monday\")", "the first given weekday on or after the date"),
    ("country_name / country_code / country_code_alpha3", "ISO 3166 country from a code or a name: {{ \"GB\" | country_name }} is United Kingdom"),
    ("slug", "lowercase ASCII words joined by dashes: José Núñez → jose-nunez"),
    ("ascii", "replace accented and non-Latin letters with plain ASCII"),
    ("phone(\"+44\")", "a phone number as +digits; a national number starting with 0 takes the given country prefix"),
    ("replace(\"a\", \"b\") / split / join / first / last / length", "minijinja's own text and list filters; also reverse, sort, unique, min, max, round, abs, int, float, string and list"),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(32);
    // text, not HTML: HiBob receives exactly what the template says
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("default", default_filter);
    env.add_filter("replace", bounded_replace);
    env.add_filter("join", bounded_join);
    env.add_filter("d", default_filter);
    env.add_filter("date", date_filter);
    env.add_filter("add_days", add_days);
    env.add_filter("add_months", add_months);
    env.add_filter("next_weekday", next_weekday);
    env.add_filter("country_name", |v: Value| country(&v, country_name));
    env.add_filter("country_code", |v: Value| {
        country(&v, |c| c.alpha2.to_owned())
    });
    env.add_filter("country_code_alpha3", |v: Value| {
        country(&v, |c| c.alpha3.to_owned())
    });
    env.add_filter("slug", |v: Value| bounded(slug(&text(&v))));
    env.add_filter("ascii", |v: Value| bounded(deunicode::deunicode(&text(&v))));
    env.add_filter("phone", |v: Value, prefix: Option<String>| {
        bounded(normalise_phone(&text(&v), prefix.as_deref()))
    });
    env
}

/// A filter's result, or an error when it is larger than any value may be.
fn bounded(value: String) -> Result<String, Error> {
    if value.len() > MAX_VALUE {
        Err(invalid(TOO_LARGE_VALUE.to_owned()))
    } else {
        Ok(value)
    }
}

/// minijinja's `replace`, refusing a result past [`MAX_VALUE`] before building it: replacing
/// the empty string inserts between every character, so a chain of them squares the length.
fn bounded_replace(value: Value, from: String, to: String) -> Result<String, Error> {
    let value = text(&value);
    let hits = if from.is_empty() {
        value.chars().count().saturating_add(1)
    } else {
        value.matches(from.as_str()).count()
    };
    let size = value
        .len()
        .saturating_sub(hits.saturating_mul(from.len()))
        .saturating_add(hits.saturating_mul(to.len()));
    if size > MAX_VALUE {
        return Err(invalid(TOO_LARGE_VALUE.to_owned()));
    }
    Ok(value.replace(from.as_str(), &to))
}

/// minijinja's `join` for a list (or the characters of a text), stopping past [`MAX_VALUE`].
fn bounded_join(value: Value, joiner: Option<String>) -> Result<String, Error> {
    use std::fmt::Write;
    let joiner = joiner.unwrap_or_default();
    if value.is_undefined() || value.is_none() {
        return Ok(String::new());
    }
    let items: Box<dyn Iterator<Item = Value>> = match value.as_str() {
        Some(s) => Box::new(s.chars().map(Value::from).collect::<Vec<_>>().into_iter()),
        None => Box::new(value.try_iter()?),
    };
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(&joiner);
        }
        match item.as_str() {
            Some(s) => out.push_str(s),
            None => write!(out, "{item}").map_err(|_| invalid("cannot join".to_owned()))?,
        }
        if out.len() > MAX_VALUE {
            return Err(invalid(TOO_LARGE_VALUE.to_owned()));
        }
    }
    Ok(out)
}

fn text(value: &Value) -> String {
    if value.is_undefined() || value.is_none() {
        String::new()
    } else {
        value.to_string()
    }
}

fn is_empty(value: &Value) -> bool {
    value.is_undefined() || value.is_none() || value.as_str().is_some_and(|s| s.trim().is_empty())
}

/// Unlike Jinja's, empty text counts as missing: Pinpoint sends "" for unset attributes as often
/// as it leaves them out.
fn default_filter(value: Value, fallback: Option<Value>) -> Value {
    if is_empty(&value) {
        fallback.unwrap_or_else(|| Value::from(""))
    } else {
        value
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

fn date_arg(value: &Value) -> Result<Option<NaiveDate>, Error> {
    let raw = text(value);
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_date(&raw)
        .map(Some)
        .ok_or_else(|| invalid(format!("{raw:?} is not a date")))
}

fn date_filter(value: Value, format: Option<String>) -> Result<String, Error> {
    let Some(day) = date_arg(&value)? else {
        return Ok(String::new());
    };
    // NaiveDate displays as YYYY-MM-DD, HiBob's format, without parsing a format string
    let Some(format) = format else {
        return Ok(day.to_string());
    };
    crate::mapping::template_guard::format_date(day, &format).map_err(invalid)
}

fn add_days(value: Value, days: i64) -> Result<String, Error> {
    let Some(day) = date_arg(&value)? else {
        return Ok(String::new());
    };
    Duration::try_days(days)
        .and_then(|d| day.checked_add_signed(d))
        .map(|d| d.to_string())
        .ok_or_else(|| invalid(format!("cannot add {days} days")))
}

fn add_months(value: Value, months: i32) -> Result<String, Error> {
    let Some(day) = date_arg(&value)? else {
        return Ok(String::new());
    };
    let shifted = if months >= 0 {
        day.checked_add_months(chrono::Months::new(months.unsigned_abs()))
    } else {
        day.checked_sub_months(chrono::Months::new(months.unsigned_abs()))
    };
    shifted
        .map(|d| d.to_string())
        .ok_or_else(|| invalid(format!("cannot add {months} months")))
}

fn next_weekday(value: Value, weekday: String) -> Result<String, Error> {
    let Some(day) = date_arg(&value)? else {
        return Ok(String::new());
    };
    let wanted: Weekday = weekday
        .trim()
        .parse()
        .map_err(|_| invalid(format!("{weekday:?} is not a weekday")))?;
    let ahead = (7 + wanted.num_days_from_monday() - day.weekday().num_days_from_monday()) % 7;
    day.checked_add_signed(Duration::days(i64::from(ahead)))
        .map(|d| d.to_string())
        .ok_or_else(|| invalid(format!("no {weekday} after {day}")))
}

fn country(value: &Value, pick: impl Fn(&celes::Country) -> String) -> Result<String, Error> {
    let raw = text(value);
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(String::new());
    }
    find_country(raw)
        .map(|c| pick(&c))
        .ok_or_else(|| invalid(format!("{raw:?} is not a country code or name")))
}

/// ISO 3166-1 by alpha-2, alpha-3, numeric code or English name (long or common).
pub fn find_country(raw: &str) -> Option<celes::Country> {
    use std::str::FromStr;
    let raw = raw.trim();
    if raw.chars().all(|c| c.is_ascii_digit()) {
        return raw
            .parse::<usize>()
            .ok()
            .and_then(|n| celes::Country::from_value(n).ok());
    }
    celes::Country::from_str(raw)
        .ok()
        .or_else(|| celes::Country::from_str(&raw.replace([' ', '-', '\''], "")).ok())
        .or_else(|| {
            let wanted = raw.to_lowercase();
            celes::Country::get_countries()
                .into_iter()
                .find(|c| c.long_name.to_lowercase() == wanted)
        })
}

/// The short English name people write on forms ("United Kingdom"), not the official one
/// ("The United Kingdom Of Great Britain And Northern Ireland").
pub fn country_name(c: &celes::Country) -> String {
    const COMMON: &[(&str, &str)] = &[
        ("GB", "United Kingdom"),
        ("US", "United States"),
        ("KR", "South Korea"),
        ("KP", "North Korea"),
        ("RU", "Russia"),
        ("IR", "Iran"),
        ("SY", "Syria"),
        ("VE", "Venezuela"),
        ("TZ", "Tanzania"),
        ("TW", "Taiwan"),
        ("MD", "Moldova"),
        ("LA", "Laos"),
        ("CZ", "Czechia"),
        ("BO", "Bolivia"),
        ("VN", "Vietnam"),
    ];
    if let Some((_, name)) = COMMON.iter().find(|(code, _)| *code == c.alpha2) {
        return (*name).to_owned();
    }
    let name = c.long_name.strip_prefix("The ").unwrap_or(c.long_name);
    name.replace(" Of ", " of ")
        .replace(" And ", " and ")
        .replace(" The ", " the ")
}

/// Lowercase ASCII words joined by single dashes.
pub fn slug(raw: &str) -> String {
    let folded = deunicode::deunicode(raw).to_lowercase();
    let mut out = String::with_capacity(folded.len());
    for word in folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(word);
    }
    out
}

/// `+` and digits only. `00` becomes `+`; a national number (leading `0`) takes `prefix` when one
/// is given. Anything without digits is left empty so a fallback can take over.
pub fn normalise_phone(raw: &str, prefix: Option<&str>) -> String {
    let trimmed = raw.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return String::new();
    }
    if trimmed.starts_with('+') {
        return format!("+{digits}");
    }
    if let Some(rest) = digits.strip_prefix("00") {
        return format!("+{rest}");
    }
    match (digits.strip_prefix('0'), prefix) {
        (Some(national), Some(prefix)) => {
            let code: String = prefix.chars().filter(char::is_ascii_digit).collect();
            format!("+{code}{national}")
        }
        _ => digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        Context::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn render(source: &str, pairs: &[(&str, &str)]) -> Result<String, TemplateProblem> {
        let mut engine = Engine::new();
        let id = engine.add(source)?;
        engine.render(id, &ctx(pairs))
    }

    #[test]
    fn variables_and_case_filters() {
        let vars = [
            ("candidate_first_name", "ada"),
            ("candidate_last_name", "Lovelace"),
        ];
        assert_eq!(render("{{candidate_first_name}}", &vars).unwrap(), "ada");
        assert_eq!(
            render(
                "{{ candidate_first_name | title }} {{ candidate_last_name | upper }}",
                &vars
            )
            .unwrap(),
            "Ada LOVELACE"
        );
        assert_eq!(render("plain text", &vars).unwrap(), "plain text");
        assert_eq!(render("{{ missing }}", &vars).unwrap(), "");
        assert_eq!(render("{{ a.b.c }}", &vars).unwrap(), "", "chainable");
    }

    #[test]
    fn default_treats_empty_text_as_missing() {
        let vars = [("x", ""), ("y", "set")];
        assert_eq!(
            render("{{ x | default('fallback') }}", &vars).unwrap(),
            "fallback"
        );
        assert_eq!(
            render("{{ y | default('fallback') }}", &vars).unwrap(),
            "set"
        );
        assert_eq!(render("{{ nope | d('z') }}", &vars).unwrap(), "z");
    }

    #[test]
    fn dates_and_arithmetic() {
        let vars = [("today", "2026-11-22"), ("dob", "09/12/1990")];
        assert_eq!(
            render("{{ today | add_days(1) }}", &vars).unwrap(),
            "2026-11-23"
        );
        assert_eq!(
            render("{{ today | add_months(-11) }}", &vars).unwrap(),
            "2025-12-22"
        );
        assert_eq!(render("{{ dob | date }}", &vars).unwrap(), "1990-12-09");
        assert_eq!(
            render("{{ dob | date('%d %B %Y') }}", &vars).unwrap(),
            "09 December 1990"
        );
        // Sunday 22 Nov 2026 → Monday 23
        assert_eq!(
            render("{{ today | next_weekday('monday') }}", &vars).unwrap(),
            "2026-11-23"
        );
        assert_eq!(
            render("{{ today | next_weekday('sunday') }}", &vars).unwrap(),
            "2026-11-22"
        );
        let e = render("{{ 'soon' | date }}", &vars).unwrap_err();
        assert!(e.message.contains("\"soon\" is not a date"), "{e}");
        assert_eq!(render("{{ '' | add_days(3) }}", &vars).unwrap(), "");
        assert!(render("{{ today | date('%Q') }}", &vars).is_err());
    }

    #[test]
    fn countries_slugs_and_phones() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            render("{{ 'GB' | country_name }}", &none).unwrap(),
            "United Kingdom"
        );
        assert_eq!(
            render("{{ 'NL' | country_name }}", &none).unwrap(),
            "Netherlands"
        );
        assert_eq!(
            render("{{ 'United Kingdom' | country_code }}", &none).unwrap(),
            "GB"
        );
        assert_eq!(render("{{ 'DEU' | country_code }}", &none).unwrap(), "DE");
        assert_eq!(
            render("{{ 'france' | country_code_alpha3 }}", &none).unwrap(),
            "FRA"
        );
        assert_eq!(render("{{ '840' | country_code }}", &none).unwrap(), "US");
        assert!(render("{{ 'Narnia' | country_code }}", &none).is_err());
        assert_eq!(
            render("{{ 'José  Núñez-García' | slug }}", &none).unwrap(),
            "jose-nunez-garcia"
        );
        assert_eq!(render("{{ 'Zoë' | ascii | lower }}", &none).unwrap(), "zoe");
        assert_eq!(
            normalise_phone("07700 900123", Some("+44")),
            "+447700900123"
        );
        assert_eq!(
            normalise_phone("0044 (0)7700-900123", None),
            "+4407700900123"
        );
        assert_eq!(
            normalise_phone("+1 (415) 555-0100", Some("+44")),
            "+14155550100"
        );
        assert_eq!(normalise_phone("n/a", None), "");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = render("Hello\n  {{ candidate_first_name | }}", &[]).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.column.is_some_and(|c| c > 3), "{e:?}");
        assert!(e.message.starts_with("syntax error"), "{e}");
        let e = render("{{ x | no_such_filter }}", &[]).unwrap_err();
        assert!(e.message.contains("unknown filter"), "{e}");
    }

    #[test]
    fn loops_and_explosions_are_stopped() {
        let e = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("loops"), "{e}");
        let e = render("{{ 'x' * 1000000 }}", &[]).unwrap_err();
        assert!(e.message.contains("`*`"), "{e}");
        let e = render(&"a".repeat(MAX_SOURCE + 1), &[]).unwrap_err();
        assert!(e.message.contains("longer"), "{e}");
        let e = render(
            &format!("{{{{ x ~ '{}' }}}}", "y".repeat(8000)),
            &[("x", "a")],
        );
        assert!(e.is_ok(), "a long literal is fine: {e:?}");
        let output = "{{ x }}".repeat(50);
        let e = render(&output, &[("x", &"z".repeat(1000))]).unwrap_err();
        assert!(e.message.contains("16 KiB"), "{e}");
    }

    #[test]
    fn hostile_templates_are_refused_quickly_and_small() {
        for hostile in [
            "{% set ns = namespace(s=\"xxxxxxxx\") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
            "{{ 'x' * 99999999999 }}",
            "{{ range(99999999999) | join }}",
        ] {
            let e = render(hostile, &[]).unwrap_err();
            assert!(e.line.is_some(), "refusals say where: {e:?}");
        }
        // replacing the empty string inserts between every character: each step here is nine
        // times the last, and the value cap or the output cap stops it
        let e = render(
            "{{ 'xxxxxxxx' | replace('', 'xxxxxxxx') | replace('', 'xxxxxxxx') | replace('', 'xxxxxxxx') | replace('', 'xxxxxxxx') }}",
            &[],
        )
        .unwrap_err();
        assert!(is_limit_failure(&e.message), "{e}");
        let e = render(
            "{{ x | join(y) }}",
            &[("x", &"a".repeat(60_000)), ("y", "bb")],
        )
        .unwrap_err();
        assert!(is_limit_failure(&e.message), "{e}");
    }

    #[test]
    fn a_date_format_a_date_cannot_fill_is_an_error_not_a_panic() {
        let vars = [("created_at", "2027-01-04T10:15:00.000Z")];
        let e = render("{{ created_at | date('%d/%m/%Y %H:%M') }}", &vars).unwrap_err();
        assert!(e.message.contains("more than a date has"), "{e}");
        for format in ["%s", "%z", "%Z", "%:z", "%T", "%c", "%+", "%P", "%f"] {
            let result = render(&format!("{{{{ created_at | date('{format}') }}}}"), &vars);
            assert!(result.is_ok() || result.is_err(), "{format}");
        }
        assert_eq!(
            render("{{ '9999-12-31' | next_weekday('monday') }}", &[]).unwrap(),
            "+10000-01-03"
        );
        assert!(render("{{ '9999-12-31' | add_days(99999999999) }}", &[]).is_err());
        assert!(render("{{ '9999-12-31' | add_months(2147483647) }}", &[]).is_err());
    }

    /// Every filter a mapping may use, with odd values and odd arguments: each render returns a
    /// value or an error, and none panics.
    #[test]
    fn every_filter_survives_odd_values_and_arguments() {
        let mut values: Vec<String> = [
            "",
            " ",
            "0",
            "-1",
            "1e309",
            "NaN",
            "18446744073709551616",
            "-9223372036854775808",
            "2027-01-04",
            "9999-12-31",
            "0000-01-01",
            "+262142-12-31",
            "31/02/2027",
            "29.02.2027",
            "4 January 2027",
            "2027-01-04T10:15:00.000Z",
            "%H",
            "%",
            "%%%",
            "%Q",
            "%-",
            "%E",
            "é",
            "日本語",
            "\u{0}",
            "\u{202e}",
            "GB",
            "Narnia",
            "+44 (0)7700 900123",
            "00",
            "a,b,,c",
            "{{ x }}",
            "<script>",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // a small deterministic generator for more odd text
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet: Vec<char> = "09/-.:%HMSYmdz +eé日\u{0}T,aZ".chars().collect();
        for _ in 0..40 {
            let len = usize::try_from(seed % 24).unwrap_or(0);
            let mut text = String::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = usize::try_from(seed % alphabet.len() as u64).unwrap_or(0);
                text.push(alphabet[i]);
            }
            values.push(text);
        }
        let arguments = [
            "",
            "('%H:%M %Y')",
            "('%Q')",
            "('')",
            "(-99999999999)",
            "(99999999999)",
            "(2147483648)",
            "('monday')",
            "('funday')",
            "('+44')",
            "('', '')",
            "('a', 'bbbbbbbb')",
            "(none)",
            "(1, 2)",
        ];
        let mut renders = 0;
        for filter in crate::mapping::template_guard::ALLOWED_FILTERS {
            for args in arguments {
                let source = format!("{{{{ v | {filter}{args} }}}}");
                let mut engine = Engine::new();
                let Ok(id) = engine.add(&source) else {
                    continue;
                };
                for value in &values {
                    let context = ctx(&[("v", value)]);
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        engine.render(id, &context)
                    }));
                    assert!(outcome.is_ok(), "{source} with v = {value:?} panicked");
                    renders += 1;
                }
            }
        }
        assert!(renders > 10_000, "{renders}");
    }

    #[test]
    fn names_are_the_top_level_variables_read() {
        let mut engine = Engine::new();
        let a = engine
            .add("{{ candidate_first_name | lower }}.{{ application.custom }}@{{ domain }}")
            .unwrap();
        let names: Vec<_> = engine.names(a).into_iter().collect();
        assert_eq!(names, ["application", "candidate_first_name", "domain"]);
        let b = engine.add("{{ candidate_email }}").unwrap();
        assert_eq!(
            engine.names(b).into_iter().collect::<Vec<_>>(),
            ["candidate_email"]
        );
    }

    #[test]
    fn html_is_not_escaped() {
        assert_eq!(
            render("{{ x }}", &[("x", "O'Brien & <Sons>")]).unwrap(),
            "O'Brien & <Sons>"
        );
        assert_eq!(render("{{ x | upper }}", &[("x", "a&b")]).unwrap(), "A&B");
    }

    #[test]
    fn lenient_dates() {
        for (input, want) in [
            ("2027-01-04", "2027-01-04"),
            ("2027-01-04T00:00:00.000Z", "2027-01-04"),
            ("04/01/2027", "2027-01-04"),
            ("2027/01/04", "2027-01-04"),
            ("04.01.2027", "2027-01-04"),
            ("4 January 2027", "2027-01-04"),
            ("January 4, 2027", "2027-01-04"),
        ] {
            assert_eq!(normalise_date(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(normalise_date("soon"), None);
    }
}
