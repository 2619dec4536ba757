//! The options table in `src/core/config.rs` is the one place where an option is written.
//! These tests hold the validation to it (defaults, choices, bounds, the unknown-key message)
//! and the two copies users read: the README's option table (type with bounds, default,
//! meaning, word for word) and the TypeScript config types in `src/web/js.rs` (every
//! option declared with its type; a default, where one is stated, the table's). A failure
//! prints what the README or the TypeScript should say.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use wasm_session::core::config::{opt, Config, IfAbsent, Kind, Millis, Mode, Row, StorageMode, OPTIONS, TABLE};
use wasm_session::core::error::Error;

const README: &str = include_str!("../README.md");
const SESSION_RS: &str = include_str!("../src/web/js.rs");
const SESSION_OIDC_RS: &str = include_str!("../src/web/js_oidc.rs");
const DPOP_RS: &str = include_str!("../src/web/dpop.rs");

/// What `new Session(config)` makes of a JSON config.
fn parse(v: Value) -> Result<Config, Error> {
    let keys: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    Config::from_raw(&keys, serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}")))
}

/// The JSON for an option's default, if it has one.
fn default_json(kind: Kind) -> Option<Value> {
    match kind {
        Kind::Text(t) => match t.default {
            IfAbsent::Value(v) => Some(json!(v)),
            IfAbsent::Required(_) | IfAbsent::Unset | IfAbsent::Derived(_) => None,
        },
        Kind::OneOf(o) => Some(json!(o.default)),
        Kind::List(_) => Some(json!([])),
        Kind::Millis(m) => match m.default {
            IfAbsent::Value(v) => Some(json!(v)),
            IfAbsent::Required(_) | IfAbsent::Unset | IfAbsent::Derived(_) => None,
        },
        Kind::Flag(f) => Some(json!(f.default)),
    }
}

#[test]
fn each_documented_default_is_what_leaving_the_option_out_gives() {
    // An OpenID Connect base, where every option with a default may be given.
    let base = json!({ "issuer": "https://id.example.com", "clientId": "spa" });
    let left_out = parse(base.clone());
    assert!(left_out.is_ok(), "{left_out:?}");
    let mut checked = 0;
    for row in TABLE {
        let Some(v) = default_json(row.kind) else { continue };
        let mut given = base.clone();
        given[row.name] = v;
        assert_eq!(parse(given), left_out, "{}: its documented default is not the default", row.name);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} defaults checked");
}

#[test]
fn choices_are_the_enums_spellings_and_a_wrong_one_is_told_them_all() {
    let modes = [Mode::Token, Mode::Cookie].map(Mode::as_str);
    let storages = [StorageMode::Memory, StorageMode::Session, StorageMode::Local].map(StorageMode::as_str);
    assert_eq!((opt::mode.kind.values, opt::storage.kind.values), (&modes[..], &storages[..]));
    for o in [opt::mode, opt::storage] {
        for v in o.kind.values {
            let mut config = if *v == "cookie" { json!({ "sessionUrl": "/s" }) } else { json!({ "tokenUrl": "/t" }) };
            config[o.name] = json!(v);
            assert!(parse(config).is_ok(), "{}: {v}", o.name);
        }
        match parse(json!({ "tokenUrl": "/t", o.name: "other" })) {
            Err(Error::Config(field, why)) => {
                assert_eq!(field, o.name);
                assert!(o.kind.values.iter().all(|v| why.contains(&format!("\"{v}\""))), "{why}");
            }
            r => panic!("{}: {r:?}", o.name),
        }
    }
}

#[test]
fn numbers_are_refused_outside_the_tables_bounds_only() {
    let out_of_range = |r: Result<Config, Error>, name: &str| matches!(r, Err(Error::Config(f, why)) if f == name && why.contains("out of range"));
    let mut checked = 0;
    for row in TABLE {
        let Kind::Millis(m) = row.kind else { continue };
        // With the longest idle timeout, so that an idle warning may be given alone.
        let with = |n: f64| parse(json!({ "tokenUrl": "/t", "idleTimeoutMs": 30.0 * 86_400_000.0, row.name: n }));
        for n in [m.min, m.max] {
            assert!(!out_of_range(with(n), row.name), "{} {n}", row.name);
        }
        for n in [m.min - 1.0, m.max + 1.0] {
            assert!(out_of_range(with(n), row.name), "{} {n}", row.name);
        }
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} numbers checked");
}

#[test]
fn an_unknown_key_is_named_with_every_option() {
    match parse(json!({ "tokenUrl": "/t", "tokenUrI": "/t" })) {
        Err(Error::Config(field, why)) => {
            assert_eq!(field, "tokenUrI");
            let listed = why.strip_prefix("is not an option (options: ").and_then(|l| l.strip_suffix(')'));
            assert_eq!(listed.map(|l| l.split(", ").collect::<Vec<_>>()), Some(OPTIONS.to_vec()));
            assert!(OPTIONS.iter().eq(TABLE.iter().map(|r| &r.name)));
        }
        r => panic!("{r:?}"),
    }
}

/// Milliseconds as the README writes bounds: `100 ms`, `10 min`, `30 days`.
fn human_ms(ms: f64) -> String {
    if ms == 0.0 {
        return "0".into();
    }
    for (unit, size) in [("day", 86_400_000.0), ("h", 3_600_000.0), ("min", 60_000.0), ("s", 1_000.0)] {
        if ms >= size && ms % size == 0.0 {
            let n = ms / size;
            let plural = if unit == "day" && n != 1.0 { "s" } else { "" };
            return format!("{n} {unit}{plural}");
        }
    }
    format!("{ms} ms")
}

/// The README's Type cell.
fn readme_type(kind: Kind) -> String {
    match kind {
        Kind::Text(_) => "string".into(),
        Kind::OneOf(o) => o.values.iter().map(|v| format!("`\"{v}\"`")).collect::<Vec<_>>().join(" \\| "),
        Kind::List(_) => "string[]".into(),
        Kind::Millis(Millis { min, max, .. }) => format!("number, {} – {}", human_ms(min), human_ms(max)),
        Kind::Flag(_) => "boolean".into(),
    }
}

/// The default as code, where the option has a value when left out.
fn default_value(kind: Kind) -> Option<String> {
    match kind {
        Kind::Text(t) => match t.default {
            IfAbsent::Value(v) => Some(format!("`\"{v}\"`")),
            IfAbsent::Required(_) | IfAbsent::Unset | IfAbsent::Derived(_) => None,
        },
        Kind::OneOf(o) => Some(format!("`\"{}\"`", o.default)),
        Kind::List(_) => Some("`[]`".into()),
        Kind::Millis(m) => match m.default {
            IfAbsent::Value(v) => Some(format!("{v}")),
            IfAbsent::Required(_) | IfAbsent::Unset | IfAbsent::Derived(_) => None,
        },
        Kind::Flag(f) => Some(f.default.to_string()),
    }
}

/// What happens when the option is left out, if no value: required, unset, or found at run time.
fn absent<T>(default: IfAbsent<T>) -> Option<String> {
    match default {
        IfAbsent::Value(_) => None,
        IfAbsent::Required("") => Some("**required**".into()),
        IfAbsent::Required(when) => Some(format!("**required {when}**")),
        IfAbsent::Unset => Some("–".into()),
        IfAbsent::Derived(how) => Some(how.into()),
    }
}

/// The README's Default cell.
fn readme_default(kind: Kind) -> String {
    let without_value = match kind {
        Kind::Text(t) => absent(t.default),
        Kind::Millis(m) => absent(m.default),
        Kind::OneOf(_) | Kind::List(_) | Kind::Flag(_) => None,
    };
    without_value.or_else(|| default_value(kind)).unwrap_or_default()
}

fn readme_row(row: &Row) -> String {
    format!("| `{}` | {} | {} | {} |", row.name, readme_type(row.kind), readme_default(row.kind), row.doc.trim())
}

/// The rows of the README's option table, by option name.
fn readme_rows() -> BTreeMap<&'static str, &'static str> {
    let header = "| Option | Type | Default | Meaning |";
    assert_eq!(README.matches(header).count(), 1, "the README has one option table");
    let mut rows = BTreeMap::new();
    for line in README.lines().skip_while(|l| *l != header).skip(2).take_while(|l| l.starts_with('|')) {
        let name = line.strip_prefix("| `").and_then(|l| l.split('`').next()).unwrap_or(line);
        assert!(rows.insert(name, line).is_none(), "the README lists {name} twice");
    }
    rows
}

#[test]
fn the_readme_option_table_is_the_table() {
    let mut rows = readme_rows();
    let mut wrong = Vec::new();
    for row in TABLE {
        let want = readme_row(row);
        match rows.remove(row.name) {
            Some(line) if line == want => {}
            Some(line) => wrong.push(format!("README has\n  {line}\nthe table says\n  {want}")),
            None => wrong.push(format!("README lacks\n  {want}")),
        }
    }
    for name in rows.keys() {
        wrong.push(format!("README lists {name}, which is not an option"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(readme_rows().len(), TABLE.len());
}

/// A property of a config interface: where, which option, its type and its JSDoc.
struct Declared {
    interface: String,
    option: String,
    ty: String,
    doc: String,
}

/// An interface: what it extends and what it declares.
struct Interface {
    extends: String,
    props: Vec<Declared>,
}

/// The TypeScript of the `typescript_custom_section`s.
fn typescript() -> String {
    // The `wasm-session/oidc` build's types: the shared ones, OpenID Connect's configs, and
    // DPoP's option (merged into `CommonConfig` by TypeScript).
    let section = |file: &'static str, name: &str, start: &str| -> &'static str {
        let at = file.find(start).map(|i| i + start.len()).unwrap_or_else(|| panic!("no {start} in {name}"));
        let rest = &file[at..];
        &rest[..rest.find("\"#;").unwrap_or(rest.len())]
    };
    let shared = section(SESSION_RS, "js.rs", "const TS_TYPES: &'static str = r#\"");
    let oidc = section(SESSION_OIDC_RS, "js_oidc.rs", "const TS_OIDC_TYPES: &'static str = r#\"");
    let dpop = section(DPOP_RS, "dpop.rs", "const TS_DPOP: &'static str = r#\"");
    format!("{shared}\n{oidc}\n{dpop}")
}

/// Type aliases (`export type A = ...;`, one line each) and interfaces, by name.
fn parse_typescript(ts: &str) -> (BTreeMap<String, String>, BTreeMap<String, Interface>) {
    let mut aliases = BTreeMap::new();
    let mut interfaces = BTreeMap::new();
    let mut open: Option<(String, Interface)> = None;
    let mut doc = String::new();
    let mut in_doc = false;
    for line in ts.lines().map(str::trim) {
        if let Some(alias) = line.strip_prefix("export type ") {
            if let Some((name, ty)) = alias.split_once(" = ") {
                aliases.insert(name.to_string(), ty.trim_end_matches(';').to_string());
            }
        } else if let Some(head) = line.strip_prefix("export interface ").or_else(|| line.strip_prefix("interface ")) {
            let head = head.trim_end_matches('{').trim();
            let (name, extends) = head.split_once(" extends ").unwrap_or((head, ""));
            open = Some((name.to_string(), Interface { extends: extends.to_string(), props: Vec::new() }));
            doc.clear();
        } else if line == "}" {
            if let Some((name, interface)) = open.take() {
                // Two declarations of one interface merge, as in TypeScript.
                match interfaces.get_mut(&name) {
                    Some(Interface { props, .. }) => props.extend(interface.props),
                    None => {
                        interfaces.insert(name, interface);
                    }
                }
            }
        } else if line.starts_with("/**") || in_doc {
            if line.starts_with("/**") {
                doc.clear();
            }
            doc.push_str(line.trim_start_matches("/**").trim_end_matches("*/").trim_start_matches('*'));
            doc.push(' ');
            in_doc = !line.ends_with("*/");
        } else if let Some((interface, Interface { props, .. })) = open.as_mut() {
            if let Some((option, ty)) = line.trim_end_matches(';').split_once(": ") {
                props.push(Declared {
                    interface: interface.clone(),
                    option: option.trim_end_matches('?').to_string(),
                    ty: ty.to_string(),
                    doc: doc.trim().to_string(),
                });
            }
            doc.clear();
        }
    }
    (aliases, interfaces)
}

/// Every property of the interfaces that `SessionConfig` is made of, by option name.
fn config_declarations() -> (BTreeMap<String, String>, BTreeMap<String, Vec<Declared>>) {
    let (aliases, mut interfaces) = parse_typescript(&typescript());
    let roots = aliases.get("SessionConfig").unwrap_or_else(|| panic!("no `export type SessionConfig`"));
    let mut todo: Vec<String> = roots.split('|').map(|r| r.trim().to_string()).collect();
    let mut seen = BTreeSet::new();
    let mut by_option: BTreeMap<String, Vec<Declared>> = BTreeMap::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Interface { extends, props } = interfaces.remove(&name).unwrap_or_else(|| panic!("no interface {name}"));
        // `extends Omit<CommonConfig, "a" | "b">`: the interfaces named in the clause.
        let words = extends.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty() && *w != "Omit");
        todo.extend(words.filter(|w| !extends.contains(&format!("\"{w}\""))).map(str::to_string));
        for declared in props {
            by_option.entry(declared.option.clone()).or_default().push(declared);
        }
    }
    (aliases, by_option)
}

/// The string literals of a union type (`"a" | "b"`), or `None` if it is not one.
fn literals(ty: &str) -> Option<BTreeSet<String>> {
    ty.split('|').map(|t| t.trim().strip_prefix('"')?.strip_suffix('"').map(str::to_string)).collect()
}

/// `text` begins with the value `w`: `10000.` does, `100000` does not.
fn states(text: &str, w: &str) -> bool {
    text.strip_prefix(w).is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric()))
}

#[test]
fn the_typescript_config_types_are_the_table() {
    let (aliases, mut declared) = config_declarations();
    let mut wrong = Vec::new();
    for row in TABLE {
        let Some(decls) = declared.remove(row.name) else {
            wrong.push(format!("the TypeScript config types lack {}", row.name));
            continue;
        };
        let mut choices = BTreeSet::new();
        for d in &decls {
            let ty = aliases.get(&d.ty).unwrap_or(&d.ty);
            let fits = match row.kind {
                Kind::Text(_) => ty == "string",
                Kind::List(_) => ty == "string[]",
                Kind::Millis(_) => ty == "number",
                Kind::Flag(_) => ty == "boolean",
                Kind::OneOf(o) => literals(ty).is_some_and(|l| {
                    choices.extend(l.iter().cloned());
                    l.iter().all(|v| o.values.contains(&v.as_str()))
                }),
            };
            if !fits {
                wrong.push(format!("{}.{}: {ty} is not {}", d.interface, row.name, readme_type(row.kind)));
            }
        }
        if let Kind::OneOf(o) = row.kind {
            let all: BTreeSet<String> = o.values.iter().map(|v| v.to_string()).collect();
            if choices != all {
                wrong.push(format!("{}: the TypeScript accepts {choices:?}, the table {all:?}", row.name));
            }
        }
        // A default stated in a JSDoc is the table's; a value default is stated somewhere.
        let want = default_value(row.kind).or_else(|| match row.kind {
            Kind::Text(t) => absent(t.default).filter(|_| matches!(t.default, IfAbsent::Derived(_))),
            _ => None,
        });
        let mut stated = false;
        for d in &decls {
            for (_, after) in d.doc.match_indices("Default").map(|(i, m)| d.doc.split_at(i + m.len())) {
                let after = after.trim_start_matches(':').trim_start();
                match &want {
                    Some(w) if states(after, w) => stated = true,
                    Some(w) => {
                        wrong.push(format!("{}.{}: \"Default {after}\", the table says {w}", d.interface, row.name))
                    }
                    None => wrong.push(format!("{}.{}: states a default, the table has none", d.interface, row.name)),
                }
            }
        }
        if let (false, Some(w)) = (stated, default_value(row.kind)) {
            wrong.push(format!("{}: no JSDoc says \"Default {w}\"", row.name));
        }
    }
    for option in declared.keys() {
        wrong.push(format!("the TypeScript config types declare {option}, which is not an option"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_readers_of_both_copies_see_what_they_check() {
    // The parsers above find what is there: a property, an alias, an option row.
    let (aliases, declared) = config_declarations();
    assert_eq!(aliases.get("StorageMode").map(String::as_str), Some("\"memory\" | \"session\" | \"local\""));
    let token_url = declared.get("tokenUrl").map(|d| d.iter().map(|d| d.interface.as_str()).collect::<BTreeSet<_>>());
    assert_eq!(
        token_url,
        Some(BTreeSet::from(["OidcEndpointsConfig", "OidcSessionConfig", "TokenSessionConfig"])),
        "tokenUrl is declared by the token and OpenID Connect configs"
    );
    assert!(readme_rows().get("tokenUrl").is_some_and(|l| l.contains("**required**")));
    assert_eq!(human_ms(600_000.0), "10 min");
    assert_eq!(human_ms(31_622_400_000.0), "366 days");
    assert_eq!(human_ms(0.0), "0");
}
