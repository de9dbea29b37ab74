//! Which parts of the template language a mapping template may use, checked on the parsed
//! template before it is ever compiled or run.
//!
//! A field mapping turns a candidate into one short value, so it needs variables, attributes,
//! filters, tests, comparisons, `~` and `{% if %}`. Everything that can repeat or grow work
//! without bound is refused with a message that says what to use instead: loops and `range`
//! (a 40-step doubling loop allocates terabytes), `{% set %}` and namespaces (the doubling's
//! accumulator), macros, calls of any function, and `*` (on Pinpoint's values, which are text,
//! it repeats the text). With those gone every part of a template runs at most once, so a
//! render's memory is bounded by its number of parts times the largest value a part can hold
//! (the capped filters in `templates` and the capped Pinpoint objects in `variables`), and its
//! time by the same product.
//!
//! minijinja's parser is reached through its `unstable_machinery` API, which has no semver
//! promise: the crate is pinned to an exact version in `Cargo.toml` for that reason.

use minijinja::machinery::{
    ast::{BinOpKind, CallArg, Expr, Stmt},
    Span,
};

/// Parts (statements and expressions) one template may have. The longest real mapping
/// templates seen have about twenty.
pub const MAX_PARTS: usize = 120;

/// The filters a mapping template may use: minijinja's own that keep values small, and the
/// console's (each of which caps what it returns).
pub const ALLOWED_FILTERS: &[&str] = &[
    // minijinja's built-ins
    "lower",
    "upper",
    "title",
    "trim",
    "replace",
    "length",
    "count",
    "reverse",
    "join",
    "split",
    "default",
    "d",
    "round",
    "abs",
    "int",
    "float",
    "first",
    "last",
    "min",
    "max",
    "sort",
    "unique",
    "string",
    "list", // the console's own
    "date",
    "add_days",
    "add_months",
    "next_weekday",
    "country_name",
    "country_code",
    "country_code_alpha3",
    "slug",
    "ascii",
    "phone",
];

/// A part of a template the guard refused, and where it starts (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Checks a parsed template; `Ok` when every part is one a mapping may use. Compiling (for the
/// worker, preview and lint alike) refuses what fails here.
pub fn check(template: &Stmt<'_>) -> Result<(), Refusal> {
    Guard {
        parts: 0,
        saving: false,
    }
    .stmt(template)
}

/// [`check`] plus what fails for every candidate though it is safe to run, such as a date
/// format asking for a time: refused when a version is saved. A version saved before such a
/// rule still runs, failing (and naming its field) only for the candidates it cannot render.
pub fn check_for_save(template: &Stmt<'_>) -> Result<(), Refusal> {
    Guard {
        parts: 0,
        saving: true,
    }
    .stmt(template)
}

struct Guard {
    parts: usize,
    saving: bool,
}

fn refuse(span: Span, message: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        line: usize::from(span.start_line),
        column: usize::from(span.start_col) + 1,
    }
}

const NO_LOOPS: &str = "loops ({% for %}) are not available in mapping templates: a field holds \
                        one value; use a filter such as join, first or last on a list";
const NO_SET: &str = "{% set %} is not available in mapping templates: define a custom variable \
                      on the Variables page instead";

impl Guard {
    fn count(&mut self, span: Span) -> Result<(), Refusal> {
        self.parts += 1;
        if self.parts > MAX_PARTS {
            return Err(refuse(
                span,
                format!(
                    "the template has more than {MAX_PARTS} parts; split it into custom variables"
                ),
            ));
        }
        Ok(())
    }

    fn body(&mut self, body: &[Stmt<'_>]) -> Result<(), Refusal> {
        body.iter().try_for_each(|s| self.stmt(s))
    }

    fn stmt(&mut self, stmt: &Stmt<'_>) -> Result<(), Refusal> {
        match stmt {
            Stmt::Template(t) => {
                self.count(t.span())?;
                self.body(&t.children)
            }
            Stmt::EmitExpr(e) => {
                self.count(e.span())?;
                self.expr(&e.expr)
            }
            Stmt::EmitRaw(r) => self.count(r.span()),
            Stmt::IfCond(c) => {
                self.count(c.span())?;
                self.expr(&c.expr)?;
                self.body(&c.true_body)?;
                self.body(&c.false_body)
            }
            Stmt::ForLoop(f) => Err(refuse(f.span(), NO_LOOPS)),
            Stmt::Set(s) => Err(refuse(s.span(), NO_SET)),
            Stmt::SetBlock(s) => Err(refuse(s.span(), NO_SET)),
            Stmt::WithBlock(w) => Err(refuse(
                w.span(),
                "{% with %} is not available in mapping templates: define a custom variable instead",
            )),
            Stmt::FilterBlock(f) => Err(refuse(
                f.span(),
                "{% filter %} blocks are not available in mapping templates: apply the filter to \
                 the value, as in {{ candidate_last_name | upper }}",
            )),
            Stmt::AutoEscape(a) => Err(refuse(
                a.span(),
                "{% autoescape %} is not available in mapping templates: values are sent as text",
            )),
            Stmt::Do(d) => Err(refuse(
                d.span(),
                "{% do %} is not available in mapping templates",
            )),
        }
    }

    fn args(&mut self, args: &[CallArg<'_>]) -> Result<(), Refusal> {
        for arg in args {
            match arg {
                CallArg::Pos(e) | CallArg::Kwarg(_, e) => self.expr(e)?,
                CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
                    return Err(refuse(
                        e.span(),
                        "argument splats (*args, **kwargs) are not available in mapping templates",
                    ))
                }
            }
        }
        Ok(())
    }

    fn expr(&mut self, expr: &Expr<'_>) -> Result<(), Refusal> {
        self.count(expr.span())?;
        match expr {
            Expr::Var(_) | Expr::Const(_) => Ok(()),
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                if matches!(b.op, BinOpKind::Mul | BinOpKind::Pow) {
                    return Err(refuse(
                        b.span(),
                        "`*` and `**` are not available in mapping templates (Pinpoint's values \
                         are text, and `*` on text repeats it)",
                    ));
                }
                self.expr(&b.left)?;
                self.expr(&b.right)
            }
            Expr::Compare(c) => {
                self.expr(&c.expr)?;
                c.ops.iter().try_for_each(|op| self.expr(&op.expr))
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr)?;
                self.expr(&i.true_expr)?;
                i.false_expr.as_ref().map_or(Ok(()), |e| self.expr(e))
            }
            Expr::Filter(f) => {
                if !ALLOWED_FILTERS.contains(&f.name) {
                    return Err(refuse(
                        f.span(),
                        format!(
                            "unknown filter `{}`: mapping templates may use {}",
                            f.name.chars().take(40).collect::<String>(),
                            ALLOWED_FILTERS.join(", ")
                        ),
                    ));
                }
                if self.saving && f.name == "date" {
                    check_date_format(f.span(), &f.args)?;
                }
                if let Some(e) = &f.expr {
                    self.expr(e)?;
                }
                self.args(&f.args)
            }
            Expr::Test(t) => {
                self.expr(&t.expr)?;
                self.args(&t.args)
            }
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr)?;
                self.expr(&g.subscript_expr)
            }
            Expr::Slice(s) => {
                self.expr(&s.expr)?;
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part)?;
                }
                Ok(())
            }
            Expr::List(l) => l.items.iter().try_for_each(|e| self.expr(e)),
            Expr::Tuple(t) => t.items.iter().try_for_each(|e| self.expr(e)),
            Expr::Map(m) => Err(refuse(
                m.span(),
                "map literals ({…}) are not available in mapping templates",
            )),
            Expr::Call(c) => Err(refuse(
                c.span(),
                "functions and methods (such as range() or namespace()) are not available in \
                 mapping templates; use filters, as in {{ candidate_email | lower }}",
            )),
        }
    }
}

/// A `date` filter's format, when written out in the template, must be one a date can fill:
/// `%H` on a start date fails for every candidate, so it is refused at save, not at export.
fn check_date_format(span: Span, args: &[CallArg<'_>]) -> Result<(), Refusal> {
    let Some(CallArg::Pos(Expr::Const(c))) = args.first() else {
        return Ok(());
    };
    let Some(format) = c.value.as_str() else {
        return Ok(());
    };
    let sample = chrono::NaiveDate::from_ymd_opt(2027, 1, 4).unwrap_or_default();
    format_date(sample, format)
        .map(drop)
        .map_err(|why| refuse(span, format!("date: {why}")))
}

/// `day` in a strftime format, or why the format cannot write a date. chrono's Display fails
/// (and `to_string` would panic) on specifiers a date cannot fill, such as `%H`, so the text is
/// written into a string and that failure becomes the message.
pub fn format_date(day: chrono::NaiveDate, format: &str) -> Result<String, String> {
    if format.len() > 200 {
        return Err("the date format is longer than 200 characters".to_owned());
    }
    let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
    if items
        .iter()
        .any(|i| matches!(i, chrono::format::Item::Error))
    {
        return Err(format!("{format:?} is not a date format"));
    }
    let mut out = String::new();
    std::fmt::Write::write_fmt(
        &mut out,
        format_args!("{}", day.format_with_items(items.into_iter())),
    )
    .map_err(|_| {
        format!(
            "{format:?} asks for more than a date has (a time such as %H or %M, or a time zone)"
        )
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::{machinery::parse, syntax::SyntaxConfig};

    fn checked(source: &str) -> Result<(), Refusal> {
        let ast = parse(source, "t", SyntaxConfig::default()).expect("parses");
        check_for_save(&ast)
    }

    #[test]
    fn a_format_a_date_cannot_fill_is_refused_at_save_but_runs() {
        let source = "{{ application.created_at | date('%d/%m/%Y %H:%M') }}";
        let ast = parse(source, "t", SyntaxConfig::default()).expect("parses");
        assert_eq!(check(&ast), Ok(()));
        assert!(check_for_save(&ast).is_err());
    }

    #[test]
    fn what_a_field_mapping_needs_is_allowed() {
        for ok in [
            "{{ candidate_first_name | title }} {{ candidate_last_name | upper }}",
            "{{ offer.start_date | date('%d/%m/%Y') | default(hired_on | add_days(14)) }}",
            "{% if candidate_country == 'GB' %}London{% elif x in ['a', 'b'] %}B{% else %}{{ default_site }}{% endif %}",
            "{{ (candidate_email | split('@'))[0] | lower ~ '@acme.com' }}",
            "{{ application.tags | join(', ') if application.tags is defined else '' }}",
            "{{ candidate_phone | phone('+44') }}{{ candidate_name[:3] }}{{ 1 + 2 - 1 }}",
            "plain text",
        ] {
            assert_eq!(checked(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_can_grow_without_bound_is_refused_with_a_reason() {
        for (bad, says) in [
            ("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "{% set %}"),
            ("{% for i in range(40) %}x{% endfor %}", "loops"),
            ("{{ 'x' * 99999999999 }}", "`*`"),
            ("{{ 2 ** 10 }}", "`*`"),
            ("{{ range(10) | join }}", "functions"),
            ("{{ 'a'.upper() }}", "functions"),
            ("{{ x | tojson }}", "unknown filter `tojson`"),
            ("{{ x | map('upper') | join }}", "unknown filter `map`"),
            ("{% with a = 1 %}{{ a }}{% endwith %}", "{% with %}"),
            ("{% filter upper %}x{% endfilter %}", "{% filter %}"),
            ("{{ {'a': 1} }}", "map literals"),
            ("{{ x | join(*y) }}", "splats"),
            ("{{ application.created_at | date(\"%d/%m/%Y %H:%M\") }}", "more than a date has"),
            ("{{ x | date('%Q') }}", "not a date format"),
        ] {
            let refusal = checked(bad).expect_err(bad);
            assert!(refusal.message.contains(says), "{bad}: {refusal:?}");
            assert!(refusal.line >= 1 && refusal.column >= 1, "{refusal:?}");
        }
    }

    #[test]
    fn refusals_point_at_the_part() {
        let refusal = checked("Hello\n  {{ 'x' * 3 }}").expect_err("refused");
        assert_eq!(refusal.line, 2);
        assert!(refusal.column > 3, "{refusal:?}");
    }

    #[test]
    fn a_template_has_a_bounded_number_of_parts() {
        let long = "{{ a }}".repeat(MAX_PARTS);
        let refusal = checked(&long).expect_err("too many parts");
        assert!(refusal.message.contains("custom variables"), "{refusal:?}");
        assert_eq!(checked(&"{{ a }}".repeat(MAX_PARTS / 3)), Ok(()));
    }
}
