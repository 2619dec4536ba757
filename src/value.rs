//! A typed view of one value that came from outside (a JS object field, storage, another tab).
//!
//! The pure parsers (config, token responses) read fields through this enum, so they run on
//! the host in `cargo test` and give errors that name the field and what was wrong with it.

use crate::prelude::*;

/// One value read from JavaScript, already sorted by type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The field is absent or `undefined`.
    Missing,
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (any JS number, including NaN and infinities).
    Num(f64),
    /// A string.
    Str(String),
    /// An array, element by element.
    List(Vec<Value>),
    /// Anything else (object, function, symbol, bigint), by kind name.
    Other(&'static str),
}

impl Value {
    /// The JS-style kind name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Missing => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::List(_) => "array",
            Value::Other(kind) => kind,
        }
    }

    /// True for `undefined` and `null`: an optional field left out.
    pub fn is_absent(&self) -> bool {
        matches!(self, Value::Missing | Value::Null)
    }
}

#[cfg(target_arch = "wasm32")]
pub use js::to_object;

#[cfg(target_arch = "wasm32")]
mod js {
    use super::Value;
    use crate::prelude::*;
    use wasm_bindgen::{JsCast, JsValue};

    /// A plain JS object from flat fields.
    pub fn to_object(fields: &[(&str, Value)]) -> JsValue {
        let o = js_sys::Object::new();
        for (k, v) in fields {
            let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), &v.to_js());
        }
        o.into()
    }

    impl Value {
        /// Sorts a JS value by type. Arrays are read one level deep (config needs no more).
        pub fn from_js(v: &JsValue) -> Value {
            Self::read(v, true)
        }

        fn read(v: &JsValue, nested: bool) -> Value {
            if v.is_undefined() {
                Value::Missing
            } else if v.is_null() {
                Value::Null
            } else if let Some(b) = v.as_bool() {
                Value::Bool(b)
            } else if let Some(n) = v.as_f64() {
                Value::Num(n)
            } else if let Some(s) = v.as_string() {
                Value::Str(s)
            } else if let Some(a) = v.dyn_ref::<js_sys::Array>().filter(|_| nested) {
                let mut items = Vec::new();
                for i in 0..a.length().min(1000) {
                    items.push(Self::read(&a.get(i), false));
                }
                Value::List(items)
            } else if v.is_function() {
                Value::Other("function")
            } else {
                Value::Other("object")
            }
        }

        /// The JS value of a plain value (`Missing` becomes `undefined`).
        pub fn to_js(&self) -> JsValue {
            match self {
                Value::Missing | Value::Other(_) => JsValue::UNDEFINED,
                Value::Null => JsValue::NULL,
                Value::Bool(b) => JsValue::from_bool(*b),
                Value::Num(n) => JsValue::from_f64(*n),
                Value::Str(s) => JsValue::from_str(s),
                Value::List(items) => {
                    let a = js_sys::Array::new();
                    for item in items {
                        a.push(&item.to_js());
                    }
                    a.into()
                }
            }
        }

        /// Reads `obj[key]` without running into a throwing getter or a non-object.
        pub fn field(obj: &JsValue, key: &str) -> Value {
            if !obj.is_object() {
                return Value::Missing;
            }
            js_sys::Reflect::get(obj, &JsValue::from_str(key)).map_or(Value::Missing, |v| Self::from_js(&v))
        }
    }
}
