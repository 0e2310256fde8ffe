//! Reading a report's JSON against the documented shape of its format, so that a malformed
//! report is rejected with the line and the field at fault.
//!
//! The JSON is read once, by serde_json, through a [`DeserializeSeed`] that checks every
//! known field's type as it is read: serde_json fills in the line of the error, and the
//! seed says which finding and field it is about. Values are checked here, never quoted in
//! an error (a report's values are secrets). Unknown fields are skipped, so that newer
//! versions of the scanners still parse.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The expected shape of a JSON value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// Anything (kept as it is).
    Any,
    /// A string.
    Str,
    /// A string that passes a check (described for errors).
    Text(&'static str, fn(&str) -> bool),
    /// A non-negative integer.
    Int,
    /// A number.
    Num,
    /// `true` or `false`.
    Bool,
    /// The kind, or `null`.
    Nullable(&'static Kind),
    /// An object with these known fields (others are skipped).
    Obj(&'static [Field]),
    /// An object whose keys are data (names what a key is, for errors), each value of a kind.
    Map(&'static str, &'static Kind),
    /// An array whose items (named for errors) are of a kind.
    Array(&'static str, &'static Kind),
}

impl Kind {
    fn expected(self) -> String {
        match self {
            Self::Any => "a value".into(),
            Self::Str => "a string".into(),
            Self::Text(what, _) => what.to_string(),
            Self::Int => "a non-negative integer".into(),
            Self::Num => "a number".into(),
            Self::Bool => "true or false".into(),
            Self::Nullable(k) => format!("{} or null", k.expected()),
            Self::Obj(_) | Self::Map(..) => "an object".into(),
            Self::Array(..) => "an array".into(),
        }
    }
}

/// A known field of an object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

/// A required field.
pub(crate) const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

/// An optional field (checked when present).
pub(crate) const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

/// Where a value sits in the report, for errors.
#[derive(Debug, Clone)]
enum Seg {
    /// A field of an object.
    Field(&'static str),
    /// A data key of a map (what the key is, the key).
    Key(&'static str, String),
    /// An item of an array (what the item is, 1-based position).
    Item(&'static str, usize),
}

fn render(path: &[Seg]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut fields: Vec<&str> = Vec::new();
    let flush = |fields: &mut Vec<&str>, parts: &mut Vec<String>| {
        if !fields.is_empty() {
            parts.push(format!("field \"{}\"", fields.join(".")));
            fields.clear();
        }
    };
    for seg in path {
        match seg {
            Seg::Field(f) => fields.push(f),
            Seg::Key(what, k) => {
                flush(&mut fields, &mut parts);
                parts.push(format!("{what} {k:?}"));
            }
            Seg::Item(what, n) => {
                flush(&mut fields, &mut parts);
                parts.push(format!("{what} {n}"));
            }
        }
    }
    flush(&mut fields, &mut parts);
    parts.join(": ")
}

/// A malformed report: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaError {
    /// 1-based line (of the input given to [`read`]).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong (names the finding and field; never quotes a value).
    pub message: String,
}

/// Reads `input` as JSON of the `kind` shape; `what` names the whole document in errors.
pub(crate) fn read(input: &[u8], kind: &'static Kind, what: &str) -> Result<Value, SchemaError> {
    let problem = RefCell::new(None);
    let seed = Seed {
        kind,
        path: Vec::new(),
        problem: &problem,
        what,
    };
    let mut de = serde_json::Deserializer::from_slice(input);
    let value = seed
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            let message = match problem.borrow_mut().take() {
                Some(m) => m,
                None => syntax_message(&e),
            };
            SchemaError {
                line: e.line().max(1),
                column: e.column(),
                message,
            }
        })?;
    Ok(value)
}

/// serde_json's description of a syntax error, without its position (given separately).
fn syntax_message(e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "the JSON ends early (is the report truncated?)".into();
    }
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full);
    format!("not valid JSON: {msg}")
}

struct Seed<'a> {
    kind: &'static Kind,
    path: Vec<Seg>,
    problem: &'a RefCell<Option<String>>,
    what: &'a str,
}

impl Seed<'_> {
    fn child(&self, kind: &'static Kind, seg: Seg) -> Self {
        let mut path = self.path.clone();
        path.push(seg);
        Seed {
            kind,
            path,
            problem: self.problem,
            what: self.what,
        }
    }

    /// Records the problem and returns an error for serde_json to place.
    fn fail<E: de::Error>(&self, message: String) -> E {
        let at = if self.path.is_empty() {
            self.what.to_string()
        } else {
            render(&self.path)
        };
        let full = format!("{at}: {message}");
        let mut slot = self.problem.borrow_mut();
        if slot.is_none() {
            *slot = Some(full);
        }
        E::custom("malformed report")
    }

    fn wrong<E: de::Error>(&self) -> E {
        self.fail(format!("expected {}", self.kind.expected()))
    }

    fn accepts(&self, test: impl Fn(&Kind) -> bool) -> bool {
        match self.kind {
            Kind::Any => true,
            Kind::Nullable(k) => test(k),
            k => test(k),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind.expected())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        if self.accepts(|k| matches!(k, Kind::Bool)) {
            Ok(Value::Bool(v))
        } else {
            Err(self.wrong())
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if self.accepts(|k| matches!(k, Kind::Num) || (matches!(k, Kind::Int) && v >= 0)) {
            Ok(Value::from(v))
        } else {
            Err(self.wrong())
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if self.accepts(|k| matches!(k, Kind::Int | Kind::Num)) {
            Ok(Value::from(v))
        } else {
            Err(self.wrong())
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if self.accepts(|k| matches!(k, Kind::Num)) {
            Ok(Value::from(v))
        } else {
            Err(self.wrong())
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.visit_string(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        if self.accepts(|k| match k {
            Kind::Str => true,
            Kind::Text(_, check) => check(&v),
            _ => false,
        }) {
            Ok(Value::String(v))
        } else {
            Err(self.wrong())
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        if matches!(self.kind, Kind::Any | Kind::Nullable(_)) {
            Ok(Value::Null)
        } else {
            Err(self.wrong())
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let (label, item) = match self.kind {
            Kind::Array(label, item) | Kind::Nullable(Kind::Array(label, item)) => (*label, *item),
            Kind::Any => ("item", &Kind::Any),
            _ => return Err(self.wrong()),
        };
        let mut out = Vec::new();
        loop {
            let seed = self.child(item, Seg::Item(label, out.len() + 1));
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let kind = match self.kind {
            Kind::Nullable(k) => **k,
            k => *k,
        };
        let mut out = Map::new();
        match kind {
            Kind::Any => {
                while let Some(key) = map.next_key::<String>()? {
                    let v =
                        map.next_value_seed(self.child(&Kind::Any, Seg::Key("key", key.clone())))?;
                    out.insert(key, v);
                }
            }
            Kind::Map(label, item) => {
                while let Some(key) = map.next_key::<String>()? {
                    let v = map.next_value_seed(self.child(item, Seg::Key(label, key.clone())))?;
                    out.insert(key, v);
                }
            }
            Kind::Obj(fields) => {
                let mut seen = vec![false; fields.len()];
                while let Some(key) = map.next_key::<String>()? {
                    match fields.iter().position(|f| f.name == key) {
                        Some(i) => {
                            let f = &fields[i];
                            let v = map.next_value_seed(self.child(&f.kind, Seg::Field(f.name)))?;
                            seen[i] = true;
                            out.insert(key, v);
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if let Some(f) = fields
                    .iter()
                    .zip(&seen)
                    .find_map(|(f, seen)| (f.required && !seen).then_some(f))
                {
                    let mut path = self.path.clone();
                    path.push(Seg::Field(f.name));
                    let at = render(&path);
                    let mut slot = self.problem.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(format!("{at}: missing"));
                    }
                    return Err(de::Error::custom("malformed report"));
                }
            }
            _ => return Err(self.wrong()),
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INNER: &[Field] = &[req("line", Kind::Int), opt("file", Kind::Str)];
    const FINDING: &[Field] = &[
        req("Secret", Kind::Str),
        opt("Tags", Kind::Array("tag", &Kind::Str)),
        opt("Meta", Kind::Nullable(&Kind::Obj(INNER))),
        opt("Entropy", Kind::Num),
    ];
    const REPORT: Kind = Kind::Array("finding", &Kind::Obj(FINDING));

    #[test]
    fn names_line_finding_and_field_without_the_value() {
        let input = b"[\n {\"Secret\": \"a\"},\n {\n  \"Secret\": 5\n }\n]\n";
        let e = read(input, &REPORT, "the report").unwrap_err();
        assert_eq!(e.line, 4);
        assert_eq!(e.message, "finding 2: field \"Secret\": expected a string");

        let input = b"[{\"Secret\": \"x\", \"Meta\": {\"file\": \"f\", \"line\": \"top-secret\"}}]";
        let e = read(input, &REPORT, "the report").unwrap_err();
        assert_eq!(
            e.message,
            "finding 1: field \"Meta.line\": expected a non-negative integer"
        );
        assert!(!e.message.contains("top-secret"));
    }

    #[test]
    fn missing_fields_syntax_errors_and_the_top_level() {
        let e = read(b"[\n{\"Entropy\": 1.5}\n]", &REPORT, "the report").unwrap_err();
        assert_eq!(e.message, "finding 1: field \"Secret\": missing");
        assert_eq!(e.line, 2);
        let e = read(b"[\n{\"Secret\": \"x\"\n", &REPORT, "the report").unwrap_err();
        assert!(e.message.contains("truncated"), "{}", e.message);
        let e = read(b"[{\"Secret\" \"x\"}]", &REPORT, "the report").unwrap_err();
        assert!(e.message.starts_with("not valid JSON: "), "{}", e.message);
        assert!(!e.message.contains(" at line "), "{}", e.message);
        let e = read(b"{}", &REPORT, "the report").unwrap_err();
        assert_eq!(e.message, "the report: expected an array");
        let e = read(b"[{\"Secret\": \"x\", \"Tags\": [\"a\", 3]}]", &REPORT, "r").unwrap_err();
        assert_eq!(
            e.message,
            "finding 1: field \"Tags\": tag 2: expected a string"
        );
    }

    #[test]
    fn unknown_fields_null_and_numbers() {
        let v = read(
            b"[{\"Secret\": \"x\", \"New\": {\"a\": [1]}, \"Meta\": null, \"Entropy\": 3}]",
            &REPORT,
            "r",
        )
        .unwrap();
        assert_eq!(v[0]["Secret"], "x");
        assert!(v[0].get("New").is_none());
        assert!(v[0]["Meta"].is_null());
    }
}
