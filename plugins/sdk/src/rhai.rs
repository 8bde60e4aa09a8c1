//! Rhai's semantics, for ports of Rhai policies that must answer exactly as
//! the script does (the default policies in `plugins/defaults/`).
//!
//! The host turns the input document into Rhai values with `rhai::serde`
//! (`null` is `()`, an integer that fits `i64` is an `i64`, any other number
//! is an `f64`, objects are maps sorted by key) and runs the script under its
//! sandbox limits. What follows mirrors Rhai 1.27 as the host configures it
//! (`host/src/policy/rhai_script.rs`):
//!
//! - [`get`]: `x.name` and `x["name"]` on a map give the value, or `()` when
//!   the key is missing; on anything else they are a runtime error;
//! - [`eq`]: `==` compares values of different types as unequal (never an
//!   error), an `i64` and an `f64` as numbers (`i as f64`), arrays and maps
//!   element by element; comparing arrays or maps checks the data size of
//!   each left-hand element it reaches (see [`check_size`]);
//! - [`contains_str`]: `["a", "b"].contains(x)` is true only for a string
//!   equal to one of them;
//! - [`to_string`]: what `${x}` inserts in a back-quoted string: `()` is
//!   empty, floats use Rhai's own format, arrays and maps their debug form
//!   ([`to_debug`]); only the length of the whole string is checked
//!   ([`check_string`]), not the values shown;
//! - [`check_size`], [`check_string`]: the sandbox's data limits (strings of
//!   65,536 bytes, arrays of 20,000 items, maps of 10,000 properties, counted
//!   recursively); Rhai checks them on the results of function calls, not on
//!   values read from the input;
//! - [`rhai_value`]: a value as it comes back out of Rhai (an integer above
//!   `i64::MAX` has become an `f64`).
//!
//! A Rhai runtime error is an `Err` here: both fail closed.

use serde_json::{Map, Number, Value};

/// Longest string, in bytes (`set_max_string_size`).
pub const STRING_LEN_MAX: usize = 1024 * 1024;
/// Most items of an array, nested arrays' items included (`set_max_array_size`).
pub const ARRAY_LEN_MAX: usize = 20_000;
/// Most properties of a map, nested maps' included (`set_max_map_size`).
pub const MAP_LEN_MAX: usize = 50_000;

static UNIT: Value = Value::Null;

/// Rhai's `type_of`.
pub fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "()",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.as_i64().is_some() => "i64",
        Value::Number(_) => "f64",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
    }
}

/// `v.key` or `v["key"]`: `()` for a missing key of a map; an error on
/// anything but a map.
pub fn get<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    match v {
        Value::Object(map) => Ok(map.get(key).unwrap_or(&UNIT)),
        other => Err(format!(
            "Unknown property '{key}' - a getter is not registered for type '{}'",
            type_of(other)
        )),
    }
}

/// The map a value is, or the error Rhai raises on a property access.
pub fn map<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    match v {
        Value::Object(map) => Ok(map),
        other => Err(format!(
            "{what}: a map was expected, not '{}'",
            type_of(other)
        )),
    }
}

enum Num {
    Int(i64),
    Float(f64),
}

fn num(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

fn num_eq(a: &Number, b: &Number) -> bool {
    match (num(a), num(b)) {
        (Num::Int(x), Num::Int(y)) => x == y,
        (Num::Int(x), Num::Float(y)) => x as f64 == y,
        (Num::Float(x), Num::Int(y)) => x == y as f64,
        (Num::Float(x), Num::Float(y)) => x == y,
    }
}

/// `a == b` (and `!(a != b)`).
///
/// Arrays (maps) of the same length (size) are compared element by element,
/// in order (maps: in key order), up to the first difference; after each
/// comparison Rhai checks the data size of the left-hand element, which is an
/// error if it breaks a limit.
pub fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => num_eq(x, y),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (l, r) in x.iter().zip(y) {
                let same = eq(l, r)?;
                check_size(l)?;
                if !same {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (k, l) in x {
                let Some(r) = y.get(k) else {
                    return Ok(false);
                };
                let same = eq(l, r)?;
                check_size(l)?;
                if !same {
                    return Ok(false);
                }
            }
            true
        }
        _ => false,
    })
}

/// `v == s` for a string literal `s`.
pub fn is_str(v: &Value, s: &str) -> bool {
    v.as_str() == Some(s)
}

/// `[..strings].contains(v)`.
pub fn contains_str(list: &[&str], v: &Value) -> bool {
    v.as_str().is_some_and(|s| list.contains(&s))
}

/// Rhai's `len()` of a string: its characters.
pub fn len(s: &str) -> usize {
    s.chars().count()
}

fn sizes(v: &Value) -> (usize, usize, usize) {
    fn add(acc: &mut (usize, usize, usize), v: &Value) {
        match v {
            Value::Array(a) => {
                let (x, m, s) = array_sizes(a);
                acc.0 += x;
                acc.1 += m;
                acc.2 += s;
            }
            Value::Object(o) => {
                let (x, m, s) = map_sizes(o);
                acc.0 += x;
                acc.1 += m;
                acc.2 += s;
            }
            Value::String(s) => acc.2 += s.len(),
            _ => {}
        }
    }
    fn array_sizes(a: &[Value]) -> (usize, usize, usize) {
        let mut acc = (a.len(), 0, 0);
        a.iter().for_each(|v| add(&mut acc, v));
        acc
    }
    fn map_sizes(o: &Map<String, Value>) -> (usize, usize, usize) {
        let mut acc = (0, o.len(), 0);
        o.values().for_each(|v| add(&mut acc, v));
        acc
    }
    match v {
        Value::Array(a) => array_sizes(a),
        Value::Object(o) => map_sizes(o),
        Value::String(s) => (0, 0, s.len()),
        _ => (0, 0, 0),
    }
}

/// The sandbox's data limits on a value (Rhai's `calc_data_sizes`: the
/// items of every nested array, the properties of every nested map, the bytes
/// of every string in it; map keys do not count).
pub fn check_size(v: &Value) -> Result<(), String> {
    let (arrays, maps, strings) = sizes(v);
    if strings > STRING_LEN_MAX {
        return Err("Length of string too large".into());
    }
    if arrays > ARRAY_LEN_MAX {
        return Err("Size of array/BLOB too large".into());
    }
    if maps > MAP_LEN_MAX {
        return Err("Size of object map too large".into());
    }
    Ok(())
}

/// The string limit on a string the script builds.
pub fn check_string(s: String) -> Result<String, String> {
    if s.len() > STRING_LEN_MAX {
        return Err("Length of string too large".into());
    }
    Ok(s)
}

/// Rhai's display of an `f64` (`FloatWrapper`): scientific notation outside
/// [1e-13, 1e13] (bounds that are `f32` constants in Rhai), `.0` after whole
/// numbers, `0.0` for both zeros.
pub fn float_to_string(f: f64) -> String {
    let max = 10_000_000_000_000.0_f32 as f64;
    let min = 0.000_000_000_000_1_f32 as f64;
    let abs = f.abs();
    if abs == 0.0 {
        "0.0".into()
    } else if abs > max || abs < min {
        format!("{f:e}")
    } else if abs.fract() == 0.0 {
        format!("{f}.0")
    } else {
        format!("{f}")
    }
}

/// `to_string(v)`: what `${v}` inserts.
pub fn to_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match num(n) {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => float_to_string(f),
        },
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => to_debug(v),
    }
}

/// `to_debug(v)`: how a value shows inside an array or a map.
pub fn to_debug(v: &Value) -> String {
    match v {
        Value::Null => "()".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match num(n) {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => format!("{f:?}"),
        },
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(to_debug).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k:?}: {}", to_debug(v)))
                .collect();
            format!("#{{{}}}", items.join(", "))
        }
    }
}

/// A value as it comes out of Rhai into the output document: an integer that
/// does not fit `i64` has become an `f64`.
pub fn rhai_value(v: &Value) -> Value {
    match v {
        Value::Number(n) => match num(n) {
            Num::Int(_) => v.clone(),
            Num::Float(f) => Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        },
        Value::Array(a) => Value::Array(a.iter().map(rhai_value).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), rhai_value(v))).collect())
        }
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_show_as_in_rhai() {
        assert_eq!(float_to_string(1.0), "1.0");
        assert_eq!(float_to_string(-0.0), "0.0");
        assert_eq!(float_to_string(1e13), "1e13");
        assert_eq!(float_to_string(1e-13), "0.0000000000001");
        assert_eq!(float_to_string(9.9e-14), "9.9e-14");
        assert_eq!(float_to_string(1e15), "1e15");
        assert_eq!(float_to_string(123.456), "123.456");
        assert_eq!(
            to_debug(&json!([1.0, 1e16, 1e15, -0.0])),
            "[1.0, 1e16, 1000000000000000.0, -0.0]"
        );
        assert_eq!(
            to_string(&json!(18446744073709551615u64)),
            "1.8446744073709552e19"
        );
    }

    #[test]
    fn values_show_as_in_rhai() {
        assert_eq!(to_string(&json!(null)), "");
        assert_eq!(
            to_string(&json!({"b": [null, true, {"c": "d\"é\u{200b}"}], "": 1})),
            "#{\"\": 1, \"b\": [(), true, #{\"c\": \"d\\\"é\\u{200b}\"}]}"
        );
    }

    #[test]
    fn equality_is_rhai_s() {
        assert!(eq(&json!(1), &json!(1.0)).unwrap());
        assert!(!eq(&json!("1"), &json!(1)).unwrap());
        assert!(eq(&json!(null), &json!(null)).unwrap());
        assert!(eq(&json!({"k": [1]}), &json!({"k": [1.0]})).unwrap());
        let big = "x".repeat(70_000);
        assert!(eq(&json!([big]), &json!([1])).is_err());
        assert!(!eq(&json!(["x"]), &json!([big])).unwrap());
        assert!(!eq(&json!([1, big]), &json!([2, big])).unwrap());
        assert!(!eq(&json!([big]), &json!("x")).unwrap());
    }
}
