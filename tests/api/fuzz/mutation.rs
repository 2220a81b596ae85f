//! How a valid resource is mutated: strings, JSON and keys worth trying, and where to put them.

use super::*;

/// One change to a valid resource. A path is a list of choices: at each level the child
/// `choice % children` is taken (object keys in order, array items), stopping at a scalar.
#[derive(Debug, Clone)]
pub(super) enum Mutation {
    Remove(Vec<usize>),
    Replace(Vec<usize>, Value),
    Insert(Vec<usize>, String, Value),
    /// Changes a string or number a little (a digit, a character, a sign, the type).
    Tweak(Vec<usize>, u8),
}

pub(super) fn interesting_string() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        " ",
        "9449306753",
        "9449306754",
        "944930675",
        "0000000060",
        "2026-01-05",
        "2026-02-30",
        "2025-12-31",
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:00:00",
        "active",
        "finished",
        "cancelled",
        "entered-in-error",
        "342191000000101",
        "764841000000100",
        "818901000000100",
        "Looked after child",
        LA_A,
        LA_B,
        "e09000030",
        "E06000001",
        "https://fhir.nhs.uk/Id/nhs-number",
        "https://fhir.nhs.uk/Id/ods-organization-code",
        "http://snomed.info/sct",
        "phone",
        "work",
        "mobile",
        "<div>x</div>",
        "\u{0}",
        "\u{1F476}",
        "Organization",
        "EpisodeOfCare",
    ])
    .prop_map(str::to_string)
}

pub(super) fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        interesting_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

pub(super) fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,9}",
        prop::sample::select(vec![
            "resourceType",
            "id",
            "meta",
            "text",
            "extension",
            "modifierExtension",
            "reason",
            "diagnosis",
            "team",
            "display",
            "reference",
            "start",
            "end",
            "system",
            "value",
            "use",
            "code",
            "coding",
            "_status",
            "telecom",
            "identifier",
        ])
        .prop_map(str::to_string),
    ]
}

pub(super) fn path() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 1..5)
}

pub(super) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => path().prop_map(Mutation::Remove),
        2 => (path(), arbitrary_json()).prop_map(|(p, v)| Mutation::Replace(p, v)),
        // Plausible values, so that some changes are valid and get stored.
        3 => (path(), interesting_string())
            .prop_map(|(p, v)| Mutation::Replace(p, Value::from(v))),
        2 => (path(), key(), arbitrary_json()).prop_map(|(p, k, v)| Mutation::Insert(p, k, v)),
        2 => (path(), any::<u8>()).prop_map(|(p, seed)| Mutation::Tweak(p, seed)),
    ]
}

/// The container holding the element `path` leads to, and that element's key or index.
pub(super) fn locate<'a>(root: &'a mut Value, path: &[usize]) -> Option<(&'a mut Value, String)> {
    let (&choice, rest) = path.split_first()?;
    let key = match &*root {
        Value::Object(o) if !o.is_empty() => o.keys().nth(choice % o.len())?.clone(),
        Value::Array(a) if !a.is_empty() => (choice % a.len()).to_string(),
        _ => return None,
    };
    let descend =
        !rest.is_empty() && matches!(child(root, &key), Some(c) if c.is_object() || c.is_array());
    if descend {
        let next = match root {
            Value::Object(o) => o.get_mut(&key)?,
            Value::Array(a) => a.get_mut(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
        locate(next, rest)
    } else {
        Some((root, key))
    }
}

pub(super) fn child<'a>(container: &'a Value, key: &str) -> Option<&'a Value> {
    match container {
        Value::Object(o) => o.get(key),
        Value::Array(a) => a.get(key.parse::<usize>().ok()?),
        _ => None,
    }
}

pub(super) fn slot<'a>(container: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match container {
        Value::Object(o) => o.get_mut(key),
        Value::Array(a) => a.get_mut(key.parse::<usize>().ok()?),
        _ => None,
    }
}

pub(super) fn tweak(value: &Value, seed: u8) -> Value {
    match value {
        Value::String(s) => {
            let mut s = s.clone();
            match seed % 6 {
                0 => s.push('0'),
                1 => {
                    s.pop();
                }
                2 => s = s.to_ascii_lowercase(),
                3 => s = format!(" {s}"),
                4 => {
                    // Change the last digit, if any (NHS numbers, dates, codes).
                    if let Some(i) = s.rfind(|c: char| c.is_ascii_digit()) {
                        let d = s.as_bytes()[i] - b'0';
                        let new = char::from(b'0' + (d + 1 + seed / 6 % 9) % 10);
                        s.replace_range(i..=i, &new.to_string());
                    }
                }
                _ => return json!([s]),
            }
            Value::String(s)
        }
        Value::Number(n) => match seed % 3 {
            0 => json!(n.as_f64().unwrap_or_default() + 1.0),
            1 => json!(n.to_string()),
            _ => json!(-n.as_f64().unwrap_or_default()),
        },
        Value::Bool(b) => json!(!b),
        Value::Null => json!("null"),
        Value::Array(a) => json!(a.first()),
        Value::Object(_) => json!(null),
    }
}

pub(super) fn apply(resource: &mut Value, mutation: &Mutation) {
    match mutation {
        Mutation::Remove(path) => {
            if let Some((container, key)) = locate(resource, path) {
                match container {
                    Value::Object(o) => {
                        o.remove(&key);
                    }
                    Value::Array(a) => {
                        a.remove(key.parse().unwrap());
                    }
                    _ => {}
                }
            }
        }
        Mutation::Replace(path, value) => {
            if let Some((container, key)) = locate(resource, path) {
                if let Some(slot) = slot(container, &key) {
                    *slot = value.clone();
                }
            }
        }
        Mutation::Insert(path, new_key, value) => {
            // Into the object the path ends in (or at the top level).
            let target = match locate(resource, path) {
                Some((container, key)) => match slot(container, &key) {
                    Some(v) if v.is_object() => v,
                    _ => container,
                },
                None => resource,
            };
            match target {
                Value::Object(o) => {
                    o.insert(new_key.clone(), value.clone());
                }
                Value::Array(a) => a.push(value.clone()),
                _ => {}
            }
        }
        Mutation::Tweak(path, seed) => {
            if let Some((container, key)) = locate(resource, path) {
                if let Some(slot) = slot(container, &key) {
                    *slot = tweak(slot, *seed);
                }
            }
        }
    }
}
