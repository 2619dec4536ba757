//! The shape of `src/`, held by a test: no import loop among its modules, and the core never
//! reaches the browser side (neither `crate::web` nor the browser crates).
//!
//! Each file is a module (`src/web/http.rs` is `web::http`, `src/core/machine/mod.rs` is
//! `core::machine`). Its imports are the paths it names, in `use` items and in code, that
//! start with `crate::`, `super::`, `self::` or the name of one of its child modules; each
//! resolves to the deepest module it names. A path to an enclosing module (`use
//! super::Field` in `core::token`) is not an edge: a module is part of its parent, and
//! parents declare their children. A loop among the rest is a design loop: two modules that
//! each need the other (the driver and its adapters, before issue 22).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A module path: `[]` is the crate root, `["web", "http"]` is `web::http`.
type Module = Vec<String>;

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// The module of a file, from its path under `src/`.
fn module_of(relative: &Path) -> Module {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let Some(last) = parts.pop() else { return Vec::new() };
    let stem = last.trim_end_matches(".rs");
    if !(stem == "mod" || (parts.is_empty() && (stem == "lib" || stem == "main"))) {
        parts.push(stem.to_string());
    }
    parts
}

/// The source with comments, string and char literals blanked out (newlines kept), so that
/// a path in a doc comment or in the TypeScript types is not an import.
fn strip(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && next == Some('r')))
            && !chars.get(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric() || *p == '_')
            && {
                let start = if c == 'b' { i + 2 } else { i + 1 };
                let hashes = chars[start.min(chars.len())..].iter().take_while(|h| **h == '#').count();
                chars.get(start + hashes) == Some(&'"')
            }
        {
            // A raw string: r"…", r#"…"#, br"…".
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let hashes = chars[start..].iter().take_while(|h| **h == '#').count();
            i = start + hashes + 1;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).filter(|h| **h == '#').count() == hashes {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
            out.push(' ');
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    blank(&mut out, ch);
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\''); a lifetime ('a) has no closing quote.
            i += if next == Some('\\') { 3 } else { 1 }; // past the escaped char: '\''
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

fn tokens(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        let token = match c {
            ':' if chars.get(i + 1) == Some(&':') => {
                i += 1;
                Token::PathSep
            }
            '{' => Token::Open,
            '}' => Token::Close,
            ',' => Token::Comma,
            ';' => Token::Semi,
            '*' => Token::Star,
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            _ => Token::Other,
        };
        out.push(token);
        i += 1;
    }
    out
}

/// Expands the use tree starting at `tokens[*i]` under `prefix` into full paths.
fn use_tree(tokens: &[Token], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match tokens.get(*i) {
            Some(Token::Ident(s)) if s == "as" => {
                *i += 2; // `as name`
                out.push(path);
                return;
            }
            Some(Token::Ident(s)) => {
                path.push(s.clone());
                *i += 1;
            }
            Some(Token::PathSep) => *i += 1,
            Some(Token::Star) => {
                *i += 1;
                out.push(path);
                return;
            }
            Some(Token::Open) => {
                *i += 1;
                loop {
                    match tokens.get(*i) {
                        Some(Token::Close) => {
                            *i += 1;
                            return;
                        }
                        Some(Token::Comma) => *i += 1,
                        None => return,
                        Some(_) => use_tree(tokens, i, path.clone(), out),
                    }
                }
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// The module paths `file` (module `me`, whose child modules are `children`) names.
fn imports(src: &str, me: &[String], children: &BTreeSet<String>) -> Vec<(Module, Vec<String>)> {
    let tokens = tokens(&strip(src));
    // The module the code at hand is in: `me`, or an inline `mod name { … }` inside it.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut found = Vec::new();
    let here = |inline: &[(String, usize)]| -> Module {
        me.iter().cloned().chain(inline.iter().map(|(n, _)| n.clone())).collect()
    };
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Open => depth += 1,
            Token::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Token::Ident(kw) if kw == "mod" => {
                if let (Some(Token::Ident(n)), Some(Token::Open)) = (tokens.get(i + 1), tokens.get(i + 2)) {
                    inline.push((n.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Token::Ident(kw) if kw == "use" => {
                let mut paths = Vec::new();
                i += 1;
                use_tree(&tokens, &mut i, Vec::new(), &mut paths);
                let at = here(&inline);
                found.extend(paths.into_iter().map(|p| (at.clone(), p)));
                continue;
            }
            Token::Ident(first)
                if matches!(tokens.get(i + 1), Some(Token::PathSep))
                    && (i == 0 || tokens[i - 1] != Token::PathSep)
                    && (matches!(first.as_str(), "crate" | "super" | "self")
                        || (inline.is_empty() && children.contains(first))) =>
            {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while let (Some(Token::PathSep), Some(Token::Ident(s))) = (tokens.get(j), tokens.get(j + 1)) {
                    path.push(s.clone());
                    j += 2;
                }
                found.push((here(&inline), path));
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The absolute path a path names from module `at`; `None` for another crate's.
fn resolve(at: &[String], path: &[String], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut out: Vec<String> = at.to_vec();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            out.clear();
            rest = &path[1..];
        }
        Some("self") => rest = &path[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                out.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) if children.contains(first) => {}
        _ => return None,
    }
    out.extend(rest.iter().filter(|s| s.as_str() != "self").cloned());
    Some(out)
}

/// The modules of `files` (path under `src/` → source) and the import edges between them:
/// module → modules it imports, and every absolute path each module names.
struct Graph {
    edges: BTreeMap<Module, BTreeSet<Module>>,
    named: BTreeMap<Module, Vec<Vec<String>>>,
}

fn graph(files: &BTreeMap<String, String>) -> Graph {
    let modules: BTreeMap<Module, &String> = files.iter().map(|(p, src)| (module_of(Path::new(p)), src)).collect();
    let children_of = |m: &Module| -> BTreeSet<String> {
        modules.keys().filter(|c| c.len() == m.len() + 1 && c.starts_with(m)).map(|c| c[m.len()].clone()).collect()
    };
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut named: BTreeMap<Module, Vec<Vec<String>>> = BTreeMap::new();
    for (me, src) in &modules {
        let children = children_of(me);
        edges.entry(me.clone()).or_default();
        for (at, path) in imports(src, me, &children) {
            // Relative paths name children of the file's module only (`inline` code is
            // checked with `crate`, `super` and `self`).
            let Some(absolute) = resolve(&at, &path, &children) else { continue };
            named.entry(me.clone()).or_default().push(absolute.clone());
            let target = (0..=absolute.len()).rev().map(|n| absolute[..n].to_vec()).find(|m| modules.contains_key(m));
            let Some(target) = target else { continue };
            if target != *me && !me.starts_with(&target) {
                edges.entry(me.clone()).or_default().insert(target);
            }
        }
    }
    Graph { edges, named }
}

/// Every knot of modules that import each other, as its shortest loop through its first
/// module and the modules it ties: `a -> b -> a (knot: a, b, c)`.
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    // Tarjan's strongly connected components; a component of more than one module holds a
    // loop, shown as the shortest one through its first module.
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        components: Vec<Vec<&'a Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let Some((w, _)) = s.edges.get_key_value(w) else { continue };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    let mut out = Vec::new();
    for component in s.components.iter().filter(|c| c.len() > 1) {
        let inside: BTreeSet<&Module> = component.iter().copied().collect();
        let Some(start) = inside.iter().next().copied() else { continue };
        // Breadth-first from `start` back to it, inside the component.
        let mut came_from: BTreeMap<&Module, &Module> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut end = None;
        'search: while let Some(v) = queue.pop_front() {
            for w in edges.get(v).into_iter().flatten() {
                if w == start {
                    end = Some(v);
                    break 'search;
                }
                if let Some(w) = inside.get(w) {
                    if !came_from.contains_key(w) {
                        came_from.insert(w, v);
                        queue.push_back(w);
                    }
                }
            }
        }
        let mut path = vec![name(start)];
        let mut v = end;
        let mut back = Vec::new();
        while let Some(m) = v.filter(|m| *m != start) {
            back.push(name(m));
            v = came_from.get(m).copied();
        }
        path.extend(back.into_iter().rev());
        path.push(name(start));
        let knot: Vec<String> = inside.iter().map(|m| name(m)).collect();
        out.push(format!("{} (knot: {})", path.join(" -> "), knot.join(", ")));
    }
    out
}

/// Every `.rs` file under `dir`, by its path relative to `root`.
fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.insert(relative, fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

fn src() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    assert!(files.contains_key("lib.rs") && files.len() > 10, "src/ not found at {}", root.display());
    files
}

/// Modules under `core` that name a path under `web`, with the path.
fn core_to_web(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (m, paths) in &g.named {
        if m.first().map(String::as_str) != Some("core") {
            continue;
        }
        for p in paths.iter().filter(|p| p.first().map(String::as_str) == Some("web")) {
            out.push(format!("{} names crate::{}", name(m), p.join("::")));
        }
    }
    out
}

#[test]
fn no_import_loop_among_the_modules_of_src() {
    let g = graph(&src());
    let loops = cycles(&g.edges);
    assert!(loops.is_empty(), "import loops in src/:\n  {}", loops.join("\n  "));
}

#[test]
fn the_core_never_imports_the_browser_side() {
    let files = src();
    let g = graph(&files);
    let found = core_to_web(&g);
    assert!(found.is_empty(), "src/core imports src/web:\n  {}", found.join("\n  "));
    // Nor the browser crates: the core runs on the host, in `cargo test` and the simulation.
    let browser = ["wasm_bindgen", "wasm_bindgen_futures", "web_sys", "js_sys", "gloo_timers", "serde_wasm_bindgen"];
    let mut named = Vec::new();
    for (path, src) in files.iter().filter(|(p, _)| p.starts_with("core/")) {
        for t in tokens(&strip(src)) {
            if let Token::Ident(id) = t {
                if browser.contains(&id.as_str()) {
                    named.push(format!("{path}: {id}"));
                }
            }
        }
    }
    assert!(named.is_empty(), "src/core names browser crates:\n  {}", named.join("\n  "));
}

// The checks themselves: they must see what they are meant to see.

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(p, s)| (p.to_string(), s.to_string())).collect()
}

#[test]
fn a_loop_between_siblings_is_found_and_printed() {
    let files = tree(&[
        ("lib.rs", "pub mod web;"),
        ("web/mod.rs", "pub mod driver; pub mod http; pub mod tabs;"),
        ("web/driver.rs", "use super::{http::post, tabs::Bus};\nfn f() { super::tabs::open(); }"),
        ("web/http.rs", "use crate::web::driver::Driver;"),
        ("web/tabs.rs", "pub(super) fn open(d: &super::driver::Driver) {}"),
    ]);
    let loops = cycles(&graph(&files).edges);
    assert_eq!(loops, ["web::driver -> web::http -> web::driver (knot: web::driver, web::http, web::tabs)"]);
    let fixed = tree(&[
        ("lib.rs", "pub mod web;"),
        ("web/mod.rs", "pub mod driver; pub mod http; pub mod sink;"),
        ("web/driver.rs", "use super::{http::post, sink::Sink};"),
        ("web/http.rs", "use super::sink::Sink; // not super::driver::Driver\nconst T: &str = \"crate::web::driver\";"),
        ("web/sink.rs", "use crate::core::machine::Input;"),
    ]);
    assert_eq!(cycles(&graph(&fixed).edges), Vec::<String>::new(), "comments and strings are not imports");
}

#[test]
fn parents_may_be_named_by_their_children_but_not_siblings_in_a_loop() {
    let files = tree(&[
        ("lib.rs", "pub mod core;"),
        ("core/mod.rs", "pub mod machine; pub mod policy; pub struct Field;"),
        ("core/machine/mod.rs", "mod refresh; use refresh::Refresh; use super::policy; pub enum Input {}"),
        ("core/machine/refresh.rs", "use super::Input; use super::super::Field;\nmod tests { use super::*; }"),
        ("core/policy.rs", "use crate::core::machine::Input;"),
    ]);
    let g = graph(&files);
    assert!(g.edges[&vec!["core".to_string(), "machine".to_string()]].contains(&vec![
        "core".to_string(),
        "machine".to_string(),
        "refresh".to_string()
    ]));
    assert_eq!(
        cycles(&g.edges),
        ["core::machine -> core::policy -> core::machine (knot: core::machine, core::policy)"]
    );
}

#[test]
fn the_core_naming_the_web_is_found() {
    let files = tree(&[
        ("lib.rs", "pub mod core; pub mod web;"),
        ("core/mod.rs", "pub mod token;"),
        ("core/token.rs", "fn f() { let _ = super::super::web::http::claims(\"a.b.c\"); }"),
        ("web/mod.rs", "pub mod http;"),
        ("web/http.rs", "use crate::core::token;"),
    ]);
    assert_eq!(core_to_web(&graph(&files)), ["core::token names crate::web::http::claims"]);
}

#[test]
fn literals_and_comments_are_blanked() {
    let s = strip(
        "keep1 /* gone1 /* gone2 */ gone3 */ keep2 // gone4\nkeep3 \"gone5 \\\" gone6\" r#\"gone7\"# 'q' '\\n' '\\'' keep4 \"gone8\" fn f<'life>()",
    );
    assert!(!s.contains("gone") && !s.contains('q'), "{s:?}");
    assert!(
        s.contains("keep1")
            && s.contains("keep2")
            && s.contains("keep3")
            && s.contains("keep4")
            && s.contains("<'life>"),
        "{s:?}"
    );
}

/// A core file a newcomer can hold in mind: its code (tests apart) stays under this.
const CORE_FILE_LINES: usize = 500;

#[test]
fn no_core_file_is_over_500_lines_of_code() {
    let long: Vec<String> = src()
        .iter()
        .filter(|(path, _)| path.starts_with("core/"))
        .filter_map(|(path, text)| {
            let code = text.lines().take_while(|l| !l.trim_start().starts_with("#[cfg(test)]")).count();
            (code > CORE_FILE_LINES).then(|| format!("src/{path}: {code} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "core files over {CORE_FILE_LINES} lines of code (split them by concern):\n{}",
        long.join("\n")
    );
}
