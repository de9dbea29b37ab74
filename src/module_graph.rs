//! Sibling modules must not depend on each other in a circle: a cycle means none of them can be
//! read, tested or moved without the others, and such knots only grow. Checked here for all four
//! crates of the workspace, from their sources as text, so it costs no build of its own.
//!
//! The modules come from the file layout (`a.rs`, `a/mod.rs`, `a/b.rs`; an inline `mod` is part
//! of its file). A dependency is any path starting with `crate::`, `super::` or `self::`, in a
//! `use` tree or in code. Test code is left out: tests may reach anywhere.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    path::{Path, PathBuf},
};

/// Cycles older than this check, between modules being reworked at the moment; each is to be
/// broken there. One that has gone fails the check until its line goes too, so this only shrinks.
const TOLERATED: [&str; 0] = [];

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Rust source as words, `::` and single punctuation; comments and literals are dropped, so that
/// a path in a doc comment or a string is no dependency.
fn tokenize(src: &str) -> Vec<String> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or(' ');
    let (mut i, mut out) = (0, Vec::new());
    while i < c.len() {
        let start = i;
        i += 1;
        match (c[start], at(i)) {
            (ch, _) if ch.is_whitespace() => {}
            ('/', '/') => i = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len()),
            ('/', '*') => {
                let mut depth = 1;
                while i < c.len() && depth > 0 {
                    match (c[i], at(i + 1)) {
                        ('/', '*') => (depth, i) = (depth + 1, i + 2),
                        ('*', '/') => (depth, i) = (depth - 1, i + 2),
                        _ => i += 1,
                    }
                }
            }
            ('"', _) => i = skip_string(&c, i, None),
            // a character literal, or the quote of a lifetime or label
            ('\'', _) => {
                i = match (at(i), at(i + 1)) {
                    ('\\', _) => (i + 2..c.len())
                        .find(|&j| c[j] == '\'')
                        .map_or(i, |j| j + 1),
                    (_, '\'') => i + 2,
                    _ => i,
                }
            }
            (':', ':') => {
                out.push("::".to_owned());
                i += 1;
            }
            (ch, _) if word_char(ch) => {
                while i < c.len() && word_char(c[i]) {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                // other prefixes (`b"…"`, `r#type`) read as a word before what follows
                let hashes = c[i..].iter().take_while(|&&x| x == '#').count();
                if matches!(word.as_str(), "r" | "br" | "cr") && at(i + hashes) == '"' {
                    i = skip_string(&c, i + hashes + 1, Some(hashes));
                } else {
                    out.push(word);
                }
            }
            (ch, _) => out.push(ch.to_string()),
        }
    }
    out
}

/// Past the string whose body starts at `i`; `raw` is the number of `#`s of a raw string.
fn skip_string(c: &[char], mut i: usize, raw: Option<usize>) -> usize {
    while i < c.len() {
        match (c[i], raw) {
            ('\\', None) => i += 1,
            ('"', None) => return i + 1,
            ('"', Some(n)) if c[i + 1..].starts_with(&vec!['#'; n]) => return i + 1 + n,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Where the item starting at `i` ends: after its `;` or its outermost `{ … }`, or at the close
/// of what encloses it.
fn item_end(t: &[String], mut i: usize) -> usize {
    let mut depth = 0;
    while i < t.len() {
        match t[i].as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 0 => return i,
            "}" if depth == 1 => return i + 1,
            ")" | "]" | "}" => depth -= 1,
            ";" if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Every path the code outside tests names, as written; those of `use` trees one by one.
fn paths(t: &[String]) -> Vec<Vec<String>> {
    let (cfg_test, mod_tests) = (tokenize("#[cfg(test)]"), tokenize("mod tests {"));
    let sep = |i: usize| t.get(i).is_some_and(|s| s == "::");
    let (mut i, mut out) = (0, Vec::new());
    while i < t.len() {
        let prev = if i > 0 { t[i - 1].as_str() } else { "" };
        if t[i..].starts_with(&cfg_test) || t[i..].starts_with(&mod_tests) {
            i = item_end(t, i);
        } else if t[i] == "use" {
            i += 1;
            use_tree(t, &mut i, Vec::new(), &mut out);
        } else {
            // where a path starts, unless it is `$crate` in a macro or `pub(in crate::x)`
            if matches!(t[i].as_str(), "crate" | "self" | "super")
                && sep(i + 1)
                && !matches!(prev, "::" | "$" | "in")
            {
                let mut path = vec![t[i].clone()];
                while sep(i + 1) && t.get(i + 2).is_some_and(|s| s.starts_with(word_char)) {
                    path.push(t[i + 2].clone());
                    i += 2;
                }
                out.push(path);
            }
            i += 1;
        }
    }
    out
}

fn use_tree(t: &[String], i: &mut usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) {
    while let Some(token) = t.get(*i) {
        match token.as_str() {
            "{" => {
                *i += 1;
                while t.get(*i).is_some_and(|s| s != "}") {
                    let before = *i;
                    use_tree(t, i, path.clone(), out);
                    *i += usize::from(t.get(*i).is_some_and(|s| s == ",") || *i == before);
                }
                *i += 1;
                return;
            }
            "::" | "*" => *i += 1,
            "as" => *i += 2,
            // `{self, …}` names the path so far
            "self" if !path.is_empty() => *i += 1,
            word if word.starts_with(word_char) => {
                path.push(word.to_owned());
                *i += 1;
            }
            _ => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// Where a path written in `module` leads, from the crate root; `None` for another crate.
fn resolve(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut at = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "self" => module.to_vec(),
        "super" => module.split_last()?.1.to_vec(),
        _ => return None,
    };
    for segment in &path[1..] {
        match segment.as_str() {
            "super" => at.pop().map(drop)?,
            _ => at.push(segment.clone()),
        }
    }
    Some(at)
}

struct Module {
    path: Vec<String>,
    file: PathBuf,
    source: String,
}

/// For each parent module, which of its children use which others: `from → to → an example`.
type Graph = BTreeMap<Vec<String>, BTreeMap<String, BTreeMap<String, String>>>;

fn sibling_edges(modules: &[Module]) -> Graph {
    let known: BTreeSet<&[String]> = modules.iter().map(|m| m.path.as_slice()).collect();
    let mut graph = Graph::new();
    for m in modules {
        let written = paths(&tokenize(&m.source)).into_iter();
        for (full, written) in written.filter_map(|w| Some((resolve(&m.path, &w)?, w))) {
            let Some(target) = (0..=full.len()).rev().find(|&n| known.contains(&full[..n])) else {
                continue;
            };
            let common = m.path.iter().zip(&full).take_while(|(a, b)| a == b).count();
            // a module using its own ancestors or descendants is no edge between siblings
            if common >= m.path.len() || common >= target {
                continue;
            }
            graph
                .entry(m.path[..common].to_vec())
                .or_default()
                .entry(m.path[common].clone())
                .or_default()
                .entry(full[common].clone())
                .or_insert_with(|| format!("{} uses {}", m.file.display(), written.join("::")));
        }
    }
    graph
}

/// The shortest cycle through each module that is on one, each cycle told once: the parent, and
/// the names along the cycle with the first again at the end.
fn cycles(graph: &Graph) -> Vec<(Vec<String>, Vec<String>)> {
    let mut found = BTreeSet::new();
    for (parent, edges) in graph {
        for from in edges.keys() {
            // breadth first, remembering how each name was reached, until back at `from`
            let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
            let mut queue = VecDeque::from([from]);
            while let Some(n) = queue.pop_front() {
                for m in edges.get(n).into_iter().flat_map(|to| to.keys()) {
                    if !came_from.contains_key(m) {
                        came_from.insert(m, n);
                        queue.push_back(m);
                    }
                }
            }
            let Some(mut at) = came_from.get(from).copied() else {
                continue;
            };
            let mut cycle = vec![from.clone()];
            while at != from {
                cycle.push(at.clone());
                at = came_from[at];
            }
            cycle.reverse();
            let first = (0..cycle.len()).min_by_key(|&k| &cycle[k]).unwrap_or(0);
            cycle.rotate_left(first);
            cycle.push(cycle[0].clone());
            found.insert((parent.clone(), cycle));
        }
    }
    found.into_iter().collect()
}

fn read_crate(root: &Path, dir: &Path, under: &[String], out: &mut Vec<Module>) {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let mut files: Vec<_> = entries.map(|e| e.path()).collect();
    files.sort();
    for file in files {
        let name = file.file_stem().unwrap_or_default().to_string_lossy();
        let mut path = under.to_vec();
        if !(name == "mod" || (under.is_empty() && (name == "lib" || name == "main"))) {
            path.push(name.to_string());
        }
        if file.is_dir() {
            read_crate(root, &file, &path, out);
        } else if file.extension().is_some_and(|e| e == "rs") && name != "tests" {
            out.push(Module {
                path,
                file: file.strip_prefix(root).unwrap_or(&file).to_owned(),
                source: std::fs::read_to_string(&file).unwrap_or_default(),
            });
        }
    }
}

#[test]
fn sibling_modules_form_no_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut report, mut seen) = (String::new(), Vec::new());
    for (name, dir) in [
        ("core", ""),
        ("app", "app/"),
        ("server", "server/"),
        ("postgres", "stores/postgres/"),
    ] {
        let mut modules = Vec::new();
        read_crate(root, &root.join(dir).join("src"), &[], &mut modules);
        assert!(modules.len() > 3, "{name}: no sources found in {dir}src");
        let graph = sibling_edges(&modules);
        for (parent, cycle) in cycles(&graph) {
            let prefix: String = parent.iter().map(|p| p.clone() + "::").collect();
            let line = format!("{name}: {prefix}{}", cycle.join(&format!(" -> {prefix}")));
            if let Some(known) = TOLERATED.iter().find(|t| **t == line) {
                seen.push(*known);
                continue;
            }
            report += &format!("{line}\n");
            for (from, to) in cycle.iter().zip(&cycle[1..]) {
                report += &format!("    {}\n", graph[&parent][from][to]);
            }
        }
    }
    assert!(report.is_empty(), "modules in a circle:\n{report}");
    let gone: Vec<_> = TOLERATED.iter().filter(|t| !seen.contains(*t)).collect();
    assert!(gone.is_empty(), "take off TOLERATED: {gone:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(src: &str) -> String {
        let paths = paths(&tokenize(src));
        paths.iter().map(|p| p.join("::") + " ").collect()
    }

    #[test]
    fn use_trees_are_spelled_out() {
        let src =
            "pub use crate::{a::{b, c as d, self}, e::*}; use super::f::{g, h}; use ::std::i;";
        let expected = "crate::a::b crate::a::c crate::a crate::e super::f::g super::f::h std::i ";
        assert_eq!(written(src), expected);
    }

    #[test]
    fn comments_strings_and_tests_are_no_paths() {
        let src = r##"
            //! [`crate::doc`] /* crate::block /* nested */ crate::still */
            fn f<'a>(x: &'a str) -> char {
                let _ = ("crate::quoted", r#"crate::raw "quote""#, b"crate::bytes");
                crate::kept::call::<u8>(super::up::X, self::down::Y, $crate::macro_arg);
                '"'
            }
            #[cfg(test)]
            fn helper() { crate::test_only::f(); }
            mod tests { use crate::tested; }
            pub(in crate::vis) fn g() -> char { crate::after::Z; '\'' }
        "##;
        let expected = "crate::kept::call super::up::X self::down::Y crate::after::Z ";
        assert_eq!(written(src), expected);
    }

    #[test]
    fn edges_count_where_the_modules_are_siblings() {
        let module = |path: &[&str], source: &str| Module {
            path: path.iter().map(|s| s.to_string()).collect(),
            file: PathBuf::from(path.join("/")),
            source: source.to_owned(),
        };
        let graph = sibling_edges(&[
            module(&[], "mod a; mod c;"),
            module(&["a"], "use self::b::X; use crate::c::d::Y;"),
            module(&["a", "b"], "use super::super::c::Z; use super::e;"),
            module(&["a", "e"], "use crate::a::b; use crate::std;"),
            module(&["c"], "use crate::a::b::X;"),
            module(&["c", "d"], ""),
        ]);
        let to = |parent: &[&str], from: &str| -> String {
            let parent: Vec<String> = parent.iter().map(|s| s.to_string()).collect();
            graph[&parent][from]
                .keys()
                .map(|k| k.clone() + " ")
                .collect()
        };
        let found = [to(&[], "a"), to(&[], "c"), to(&["a"], "b"), to(&["a"], "e")];
        assert_eq!(found, ["c ", "a ", "e ", "b "]);
        assert_eq!(graph.len(), 2, "a using its child b is no edge: {graph:?}");
        let cycles: Vec<String> = cycles(&graph)
            .iter()
            .map(|(p, c)| p.join("::") + ": " + &c.join(" -> "))
            .collect();
        assert_eq!(cycles, [": a -> c -> a", "a: b -> e -> b"]);
    }
}
