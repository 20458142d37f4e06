//! The YAML tree `config.yaml` is kept as: every key in file order, known or not, so that a
//! rewrite loses nothing. Parsed and written by `serde-saphyr` (pure Rust, panic-free, with
//! limits on nesting and alias expansion).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// A YAML value. Tags are dropped; anchors and aliases are expanded.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer; wide enough for any `i64` or `u64` the file may hold.
    Int(i128),
    /// A number with a fraction or exponent (or `.inf`, `.nan`).
    Float(f64),
    /// Text, plain or quoted.
    String(String),
    /// `[a, b]` or a block of `- a` lines.
    Sequence(Vec<Value>),
    /// Keys and values in file order.
    Mapping(Mapping),
}

/// A YAML mapping that keeps its keys in file order. Lookups are linear: a configuration file
/// has a handful of keys per level.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapping {
    entries: Vec<(Value, Value)>,
}

impl Mapping {
    /// An empty mapping.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value under the text key `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Set `key` to `value`, in place when the key exists (keeping its position), else last.
    pub fn insert(&mut self, key: &str, value: Value) {
        match self.position(key) {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((Value::String(key.to_string()), value)),
        }
    }

    /// The value under `key`, first set to `make()` when the key is absent.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> Value) -> &mut Value {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.entries.push((Value::String(key.to_string()), make()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }

    /// Every key and value, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(k, _)| k.as_str() == Some(key))
    }
}

impl Value {
    /// The mapping, when this is one.
    pub fn as_mapping(&self) -> Option<&Mapping> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping, mutable, when this is one.
    pub fn as_mapping_mut(&mut self) -> Option<&mut Mapping> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// The text, when this is a string (not a number or boolean written as text).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text: strings as they are, numbers and booleans as YAML writes them.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(n) => Some(n.to_string()),
            Value::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }
}

/// Parse one YAML document.
pub fn from_str(text: &str) -> Result<Value, serde_saphyr::Error> {
    serde_saphyr::from_str(text)
}

/// Write `value` as a YAML document (block style).
pub fn to_string(value: &Value) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(value)
}

/// A parse error in one line: what is wrong and where (`at line 2 column 13`), without the
/// excerpt of the file the library would add.
pub fn describe(e: &serde_saphyr::Error) -> (String, String) {
    let text = e.without_snippet().to_string();
    let what = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("malformed");
    let what = what.split(" at line ").next().unwrap_or(what).to_string();
    let at = e
        .location()
        .map(|l| format!(" at line {} column {}", l.line(), l.column()))
        .unwrap_or_default();
    (at, what)
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Int(n.into()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Int(n.into()))
    }
    fn visit_i128<E: de::Error>(self, n: i128) -> Result<Value, E> {
        Ok(Value::Int(n))
    }
    fn visit_u128<E: de::Error>(self, n: u128) -> Result<Value, E> {
        i128::try_from(n)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::String(String::from_utf8_lossy(b).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Mapping::new();
        while let Some((k, v)) = map.next_entry::<Value, Value>()? {
            // A repeated key keeps its first place and its last value, as YAML readers do.
            match m.entries.iter().position(|(old, _)| *old == k) {
                Some(i) => m.entries[i].1 = v,
                None => m.entries.push((k, v)),
            }
        }
        Ok(Value::Mapping(m))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(n) => match (i64::try_from(*n), u64::try_from(*n)) {
                (Ok(n), _) => s.serialize_i64(n),
                (_, Ok(n)) => s.serialize_u64(n),
                _ => s.serialize_i128(*n),
            },
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(t) => s.serialize_str(t),
            Value::Sequence(items) => s.collect_seq(items),
            Value::Mapping(m) => {
                let mut out = s.serialize_map(Some(m.entries.len()))?;
                for (k, v) in &m.entries {
                    out.serialize_entry(k, v)?;
                }
                out.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_keeps_every_key_in_order_and_every_type() {
        let text = "zeta: 1\nalpha:\n  nested: [a, 2, true, null]\n  big: 18446744073709551615\nquoted: \"3\"\nratio: 1.5\n";
        let v = from_str(text).unwrap();
        let out = to_string(&v).unwrap();
        assert!(
            out.find("zeta").unwrap() < out.find("alpha").unwrap(),
            "{out}"
        );
        assert_eq!(from_str(&out).unwrap(), v, "{out}");
        let m = v.as_mapping().unwrap();
        assert_eq!(m.get("quoted"), Some(&Value::String("3".into())));
        assert_eq!(m.get("ratio"), Some(&Value::Float(1.5)));
        let alpha = m.get("alpha").unwrap().as_mapping().unwrap();
        assert_eq!(alpha.get("big"), Some(&Value::Int(u64::MAX.into())));
    }

    #[test]
    fn errors_name_line_and_column_in_one_line() {
        let e = from_str("model:\n  provider: [unclosed\n").unwrap_err();
        let (at, what) = describe(&e);
        assert!(at.starts_with(" at line "), "{at}");
        assert!(at.contains(" column "), "{at}");
        assert!(!what.contains('\n') && !what.is_empty(), "{what}");
    }

    #[test]
    fn insert_replaces_in_place() {
        let mut m = Mapping::new();
        m.insert("a", Value::Int(1));
        m.insert("b", Value::Int(2));
        m.insert("a", Value::Int(3));
        let keys: Vec<_> = m.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(m.get("a"), Some(&Value::Int(3)));
    }
}
