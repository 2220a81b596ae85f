#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, loudly; the scanner indexes within bounds it checks"
)]

//! The rooms of `src/` are layered: README's Layout lists them from the top (the command line)
//! down, and a module may use only rooms listed below its own. A room is a top-level file
//! (`src/clock.rs`) or a folder (`src/api/`); inside one room anything goes. This test reads
//! README's Layout and every `crate::…` path in `src/`, and fails on each import of a room
//! above the importer, on each circle between rooms, and on a room the Layout does not list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One room's use of another: where, and the path as written.
#[derive(Debug, Clone)]
struct Import {
    /// The importing file, relative to the crate root.
    file: String,
    line: usize,
    /// The room that imports.
    from: String,
    /// The room imported.
    to: String,
    /// The path from `crate::` up to the first name after the room, for the message.
    path: String,
}

/// README's Layout: each `src/` room and its rank (0 = top). Rooms on one line share a rank.
fn layout(readme: &str) -> BTreeMap<String, usize> {
    let section = readme
        .split("\n## Layout")
        .nth(1)
        .expect("README has a Layout section");
    let block = section
        .split("```")
        .nth(1)
        .expect("the Layout section has a code block");
    let mut ranks = BTreeMap::new();
    let mut rank = 0;
    for line in block.lines() {
        // A line that starts with a space continues the description above it.
        if line.is_empty() || line.starts_with(' ') {
            continue;
        }
        let names = line.split("  ").next().unwrap_or_default();
        let mut listed = false;
        let mut in_src = false;
        for name in names.split(',').map(str::trim) {
            // `src/main.rs, cli.rs`: a name after the first is in the first one's folder.
            in_src = name.starts_with("src/") || (in_src && !name.contains('/'));
            if !in_src {
                continue;
            }
            let room = name
                .trim_start_matches("src/")
                .trim_end_matches('/')
                .trim_end_matches(".rs");
            if ranks.insert(room.to_string(), rank).is_some() {
                panic!("README's Layout lists {name} twice");
            }
            listed = true;
        }
        if listed {
            rank += 1;
        }
    }
    ranks
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The room a source file belongs to: `src/api/read.rs` → `api`, `src/clock.rs` → `clock`.
/// `src/lib.rs` only declares the rooms, so it is in none.
fn room_of(relative: &str) -> Option<String> {
    let inside = relative.strip_prefix("src/")?;
    match inside.split_once('/') {
        Some((folder, _)) => Some(folder.to_string()),
        None if inside == "lib.rs" => None,
        None => Some(inside.trim_end_matches(".rs").to_string()),
    }
}

/// The code of a Rust file with comments and the insides of string and character literals
/// blanked (newlines kept, so line numbers still hold): a doc link or a message that mentions
/// `crate::x` is not an import.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match not_code_end(&chars, i) {
            Some(end) => {
                let end = end.min(chars.len());
                out.extend(
                    chars[i..end]
                        .iter()
                        .map(|&c| if c == '\n' { '\n' } else { ' ' }),
                );
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Where the comment or literal that starts at `i` ends (exclusive), if one starts there.
fn not_code_end(chars: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| chars.get(k).copied();
    // The first `close` at or after `from` (escapes skipped in strings), and past it.
    let past = |from: usize, close: &[char], escapes: bool| {
        let mut k = from;
        while k < chars.len() && !chars[k..].starts_with(close) {
            k += if escapes && chars[k] == '\\' { 2 } else { 1 };
        }
        k + close.len()
    };
    match (at(i)?, at(i + 1)) {
        ('/', Some('/')) => Some(past(i, &['\n'], false) - 1),
        ('/', Some('*')) => Some(block_comment_end(chars, i)),
        ('"', _) => Some(past(i + 1, &['"'], true)),
        // A raw string: r"…" or r#"…"#, closed by a quote and as many hashes.
        ('r', Some('"' | '#')) if !i.checked_sub(1).and_then(at).is_some_and(is_ident) => {
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            let quote = i + 1 + hashes;
            (at(quote) == Some('"')).then(|| {
                let close: Vec<char> = std::iter::once('"').chain(vec!['#'; hashes]).collect();
                past(quote + 1, &close, false)
            })
        }
        // A character literal ('x', '\n', '\''); a lifetime ('a) has no closing quote.
        ('\'', Some('\\')) => Some(past(i + 3, &['\''], false)),
        ('\'', _) if at(i + 2) == Some('\'') => Some(i + 3),
        _ => None,
    }
}

/// Where the block comment (nested ones in it) that starts at `i` ends.
fn block_comment_end(chars: &[char], i: usize) -> usize {
    let (mut depth, mut k) = (0, i);
    while k < chars.len() {
        if chars[k..].starts_with(&['/', '*']) {
            depth += 1;
            k += 2;
        } else if chars[k..].starts_with(&['*', '/']) {
            depth -= 1;
            k += 2;
            if depth == 0 {
                break;
            }
        } else {
            k += 1;
        }
    }
    k
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The path written at `at`, up to its second name after the root, for the message.
fn written(chars: &[char], at: usize) -> String {
    let mut end = at;
    let mut names = 0;
    while end < chars.len() && (is_ident(chars[end]) || chars[end] == ':') {
        if chars[end..].starts_with(&[':', ':']) {
            names += 1;
            if names == 3 {
                break;
            }
        }
        end += 1;
    }
    let path: String = chars[at..end].iter().collect();
    if chars.get(end) == Some(&'{') {
        format!("{path}{{…}}")
    } else {
        path
    }
}

/// Where each item of the group `{a::…, b::…}` opened at `open` starts, and where it closes.
fn group_items(chars: &[char], open: usize) -> (Vec<usize>, usize) {
    let (mut items, mut depth, mut item_start, mut k) = (Vec::new(), 0, true, open);
    while k < chars.len() {
        match chars[k] {
            '{' => depth += 1,
            '}' if depth == 1 => break,
            '}' => depth -= 1,
            ',' if depth == 1 => item_start = true,
            c if depth == 1 && item_start && is_ident(c) => {
                items.push(k);
                item_start = false;
            }
            _ => {}
        }
        k += 1;
    }
    (items, k)
}

/// The rooms named by every `crate::` path in `code` (and `cpis::` in the binary): the first
/// name after it, or each first name inside a `crate::{a::…, b::…}` group.
fn imports(file: &str, code: &str, from: &str) -> Vec<Import> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut add = |name_at: usize, path: String| {
        let to: String = chars[name_at..]
            .iter()
            .take_while(|&&c| is_ident(c))
            .collect();
        if !to.is_empty() && to != from {
            let line = chars[..name_at].iter().filter(|&&c| c == '\n').count() + 1;
            let (file, from) = (file.to_string(), from.to_string());
            found.push(Import {
                file,
                line,
                from,
                to,
                path,
            });
        }
    };
    let roots: &[&str] = if file == "src/main.rs" {
        &["crate::", "cpis::"]
    } else {
        &["crate::"]
    };
    for root in roots {
        let pattern: Vec<char> = root.chars().collect();
        let mut i = 0;
        while i + pattern.len() <= chars.len() {
            let starts = chars[i..].starts_with(&pattern)
                && !i
                    .checked_sub(1)
                    .is_some_and(|p| is_ident(chars[p]) || chars[p] == '$');
            let after = i + pattern.len();
            if !starts {
                i += 1;
            } else if chars.get(after) == Some(&'{') {
                // A group: each item at the group's own depth names a room.
                let (items, close) = group_items(&chars, after);
                for item in items {
                    add(item, format!("{root}{{{}…}}", written(&chars, item)));
                }
                i = close;
            } else {
                add(after, written(&chars, i));
                i = after;
            }
        }
    }
    found
}

/// The strongly connected components of more than one room (Tarjan's algorithm): each is a
/// circle, or several that share rooms.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, room: &'a str) {
            let n = self.index.len();
            self.index.insert(room, n);
            self.low.insert(room, n);
            self.stack.push(room);
            self.on_stack.insert(room);
            for next in self.edges.get(room).into_iter().flatten() {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[room].min(self.low[next.as_str()]);
                    self.low.insert(room, low);
                } else if self.on_stack.contains(next.as_str()) {
                    let low = self.low[room].min(self.index[next.as_str()]);
                    self.low.insert(room, low);
                }
            }
            if self.low[room] == self.index[room] {
                let mut component = BTreeSet::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.insert(top.to_string());
                    if top == room {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for room in edges.keys() {
        if !walk.index.contains_key(room.as_str()) {
            walk.visit(room);
        }
    }
    walk.found
}

/// Every import between two rooms in `src/`, with README's Layout.
fn read_the_tree() -> (BTreeMap<String, usize>, BTreeSet<String>, Vec<Import>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md is readable");
    let ranks = layout(&readme);
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    files.sort();
    let mut rooms = BTreeSet::new();
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let Some(room) = room_of(&relative) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        found.extend(imports(&relative, &code_only(&text), &room));
        rooms.insert(room);
    }
    (ranks, rooms, found)
}

#[test]
fn every_room_imports_only_rooms_below_it_and_none_in_a_circle() {
    let (ranks, rooms, found) = read_the_tree();
    assert!(rooms.len() > 20, "the source tree was found");
    let mut wrong = Vec::new();
    for room in &rooms {
        if !ranks.contains_key(room) {
            wrong.push(format!(
                "{room}: not in README's Layout, so it has no place in the order"
            ));
        }
    }
    for room in ranks.keys() {
        if !rooms.contains(room) {
            wrong.push(format!(
                "{room}: README's Layout lists it, but src/ has no such room"
            ));
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for import in &found {
        edges
            .entry(import.from.clone())
            .or_default()
            .insert(import.to.clone());
        let (Some(from), Some(to)) = (ranks.get(&import.from), ranks.get(&import.to)) else {
            continue;
        };
        // Rooms on one line of the Layout share a rank: either may use the other, but not
        // both (that is a circle, below).
        if to < from {
            wrong.push(format!(
                "{}:{}: `{}`: {} imports {}, which README's Layout lists above it",
                import.file, import.line, import.path, import.from, import.to,
            ));
        }
    }
    for circle in circles(&edges) {
        let mut lines = vec![format!(
            "circle between {}:",
            circle.iter().cloned().collect::<Vec<_>>().join(", ")
        )];
        // One example of each import that closes the circle, so it can be found and moved.
        let mut shown = BTreeSet::new();
        for import in &found {
            if circle.contains(&import.from)
                && circle.contains(&import.to)
                && shown.insert((import.from.clone(), import.to.clone()))
            {
                let count = found
                    .iter()
                    .filter(|i| i.from == import.from && i.to == import.to)
                    .count();
                lines.push(format!(
                    "    {} → {}: {}:{} `{}` ({count} in all)",
                    import.from, import.to, import.file, import.line, import.path
                ));
            }
        }
        wrong.push(lines.join("\n"));
    }
    assert!(
        wrong.is_empty(),
        "a room may use only rooms README's Layout lists below it, and no two rooms may \
         depend on each other; move the shared piece down to a room both may use:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_layout_is_read_in_order_with_rooms_on_one_line_sharing_a_rank() {
    let readme = "# x\n\n## Layout\n\n```\nsrc/main.rs, cli.rs    the command line\n\
                  src/api/               routes, and a description\n                       \
                  that continues: src/db/ is not listed here\n\
                  templates/viewer/      not a room\nsrc/db/                storage\n```\n";
    let ranks = layout(readme);
    let expected: BTreeMap<String, usize> = [("main", 0), ("cli", 0), ("api", 1), ("db", 2)]
        .into_iter()
        .map(|(room, rank)| (room.to_string(), rank))
        .collect();
    assert_eq!(ranks, expected);
}

#[test]
fn imports_are_found_in_paths_and_groups_but_not_in_comments_or_strings() {
    let code = code_only(
        "use crate::api::respond::FhirResponse;\n\
         use crate::{\n    db::{DbConn, store},\n    fhir::Index,\n};\n\
         fn f() { crate::clock::now(); let s = \"crate::viewer::x\"; } // crate::config\n\
         /// [`crate::metrics::Metrics`]\n\
         let c = '\"'; let r = r#\"crate::sandbox\"#; crate::error::FhirError::Gone\n\
         use crate::search::params; fn g<'a>(x: &'a str) { crate::views::y() }\n",
    );
    let found: Vec<(usize, String)> = imports("src/service/x.rs", &code, "service")
        .into_iter()
        .map(|i| (i.line, i.to))
        .collect();
    let expected: Vec<(usize, String)> = [
        (1, "api"),
        (3, "db"),
        (4, "fhir"),
        (6, "clock"),
        (8, "error"),
        (9, "search"),
        (9, "views"),
    ]
    .into_iter()
    .map(|(line, room)| (line, room.to_string()))
    .collect();
    assert_eq!(found, expected);
    // An import of the importer's own room is not between rooms.
    assert!(imports("src/api/read.rs", "use crate::api::respond;", "api").is_empty());
}

#[test]
fn a_circle_is_found_through_any_number_of_rooms() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a", "d"]),
        ("d", vec![]),
        ("e", vec!["f"]),
        ("f", vec!["e"]),
    ]
    .into_iter()
    .map(|(from, to)| {
        (
            from.to_string(),
            to.into_iter().map(str::to_string).collect(),
        )
    })
    .collect();
    let found: BTreeSet<Vec<String>> = circles(&edges)
        .into_iter()
        .map(|c| c.into_iter().collect())
        .collect();
    let expected: BTreeSet<Vec<String>> = [vec!["a", "b", "c"], vec!["e", "f"]]
        .into_iter()
        .map(|c| c.into_iter().map(str::to_string).collect())
        .collect();
    assert_eq!(found, expected);
}
