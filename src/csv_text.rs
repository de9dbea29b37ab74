//! CSV for downloads that people open in spreadsheets: every cell quoted (RFC 4180), and cells
//! that a spreadsheet would run as a formula are defused.

/// Characters that make Excel, LibreOffice or Sheets read a cell as a formula (or, for tab and
/// carriage return, shift it so the next character leads).
const FORMULA_LEADS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One cell: a leading formula character gets a `'` in front (spreadsheets show the text as
/// typed), and the cell is always quoted. Spreadsheets guess the separator from the file or
/// the locale, and one that splits on `;` would start a new, unquoted cell after a `;`, where a
/// formula could lead again; inside quotes nothing splits.
pub fn cell(value: &str) -> String {
    let prefix = if value.starts_with(FORMULA_LEADS) {
        "'"
    } else {
        ""
    };
    format!("\"{prefix}{}\"", value.replace('"', "\"\""))
}

/// One record, ended with CRLF as RFC 4180 asks.
pub fn row<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = cells.into_iter().map(cell).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_is_quoted() {
        assert_eq!(cell("admin@example.com"), "\"admin@example.com\"");
        assert_eq!(cell(""), "\"\"");
        assert_eq!(
            cell("2026-11-22T08:00:00.000Z"),
            "\"2026-11-22T08:00:00.000Z\""
        );
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn semicolons_cannot_open_a_cell_of_their_own() {
        for raw in [";=1+1", "x;=HYPERLINK(\"http://x\")", ";@cmd", "a;b"] {
            let out = cell(raw);
            assert!(out.starts_with('"') && out.ends_with('"'), "{out}");
            let inner = &out[1..out.len() - 1];
            assert!(
                !inner.replace("\"\"", "").contains('"'),
                "no quote ends the cell early: {out}"
            );
        }
    }

    #[test]
    fn formula_leads_are_defused() {
        for (raw, out) in [
            ("=1+1", "\"'=1+1\""),
            ("+SUM(A1)", "\"'+SUM(A1)\""),
            ("-2", "\"'-2\""),
            ("@cmd", "\"'@cmd\""),
            ("\tx", "\"'\tx\""),
            ("\rx", "\"'\rx\""),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
        ] {
            assert_eq!(cell(raw), out, "{raw:?}");
        }
        assert_eq!(cell("a=b"), "\"a=b\"", "only a leading character counts");
    }

    #[test]
    fn rows_join_and_end_with_crlf() {
        assert_eq!(row(["id", "a,b", "=x"]), "\"id\",\"a,b\",\"'=x\"\r\n");
    }
}
