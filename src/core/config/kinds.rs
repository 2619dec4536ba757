//! What an option can be: its kind (the type read, the bounds), what it is when left out,
//! and the macro that turns the one list of options in `config.rs` into the types and
//! constants that read and document it.

/// What an option is when the config leaves it out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IfAbsent<T> {
    /// This value.
    Value(T),
    /// Nothing, and the config is refused without it; the text says when ("" for always).
    Required(&'static str),
    /// Nothing: what the option turns on stays off.
    Unset,
    /// Found at run time, as the text says (from discovery, from the page).
    Derived(&'static str),
}

impl<T: Copy> IfAbsent<T> {
    /// The default value. Called in `const` blocks only, so that asking an option without
    /// one for its default fails the build rather than a page.
    pub(super) const fn value(self) -> T {
        match self {
            IfAbsent::Value(v) => v,
            IfAbsent::Required(_) | IfAbsent::Unset | IfAbsent::Derived(_) => {
                panic!("this option has no default value")
            }
        }
    }
}

/// A string: a URL, a name, an id. Blank or longer than 2048 characters is refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Text {
    /// When left out.
    pub default: IfAbsent<&'static str>,
}

/// One of a few strings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneOf {
    /// The strings accepted.
    pub values: &'static [&'static str],
    /// When left out.
    pub default: &'static str,
}

/// An array of strings, empty when left out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct List;

/// A number of milliseconds, from `min` to `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Millis {
    /// The smallest accepted.
    pub min: f64,
    /// The largest accepted.
    pub max: f64,
    /// When left out.
    pub default: IfAbsent<f64>,
}

/// `true` or `false`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flag {
    /// When left out.
    pub default: bool,
}

/// An option's kind, as the docs and the tests walk it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Kind {
    Text(Text),
    OneOf(OneOf),
    List(List),
    Millis(Millis),
    Flag(Flag),
}

/// The type serde reads for an option of this kind (a [`Field`](crate::core::Field) of it in
/// [`RawConfig`](super::RawConfig)).
pub trait OptionKind {
    /// What a value of the right type deserializes to.
    type Raw;
}

impl OptionKind for Text {
    type Raw = String;
}
impl OptionKind for OneOf {
    type Raw = String;
}
impl OptionKind for List {
    type Raw = Vec<String>;
}
impl OptionKind for Millis {
    type Raw = f64;
}
impl OptionKind for Flag {
    type Raw = bool;
}

/// An option as validation reads it: its JS name and its kind. (Its meaning is in
/// [`TABLE`](super::TABLE) only, so that the browser build carries no documentation.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Opt<K> {
    /// The key in the config object.
    pub name: &'static str,
    /// Type, bounds, default.
    pub kind: K,
}

/// An option as the docs show it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// The key in the config object.
    pub name: &'static str,
    /// Type, bounds, default.
    pub kind: Kind,
    /// What it means: the README's "Meaning" cell, word for word.
    pub doc: &'static str,
}

/// `"a, b, c"` from identifiers, at compile time (the unknown-key message).
macro_rules! join_names {
    ($first:ident $(, $rest:ident)*) => {
        concat!(stringify!($first) $(, ", ", stringify!($rest))*)
    };
}

/// Makes the options table. Each entry: its meaning as `///` lines (one README cell), then
/// `jsName: Kind { bounds, default }`. The kind decides the type serde reads; the name is the
/// key in JS, so the `RawConfig` fields are spelt in camelCase. Expanded once, in
/// `config.rs`, where the kinds and `IfAbsent`'s variants are in scope.
macro_rules! options {
    ($( $(#[doc = $doc:literal])+ $name:ident: $kind:ident { $($spec:tt)* }, )+) => {
        /// The config object as serde reads it: every option, each of any type (a wrong type
        /// is [`Field::Invalid`], for validation to name). Fields are spelt as in JS.
        #[derive(::serde::Deserialize, Default)]
        #[serde(default)]
        #[allow(non_snake_case)]
        pub struct RawConfig {
            $( $(#[doc = $doc])+ pub $name: $crate::core::Field<<$kind as $crate::core::config::OptionKind>::Raw>, )+
        }

        /// Each option's entry, by its JS name: what validation reads.
        #[allow(non_upper_case_globals)]
        pub mod opt {
            use super::*;
            $( $(#[doc = $doc])+ pub const $name: Opt<$kind> = Opt { name: stringify!($name), kind: $kind { $($spec)* } }; )+
        }

        /// Every option with its meaning, in the order of the unknown-key message.
        pub const TABLE: &[Row] = &[
            $( Row { name: opt::$name.name, kind: Kind::$kind(opt::$name.kind), doc: concat!($($doc),+) }, )+
        ];

        /// Every option name `new Session(config)` accepts.
        pub const OPTIONS: [&str; TABLE.len()] = [$( stringify!($name) ),+];

        /// The unknown-key error text, listing the options.
        const UNKNOWN: &str = concat!("is not an option (options: ", join_names!($($name),+), ")");
    };
}
