//! FHIR JSON's rule that no array or object is empty (R4 JSON §2.6.2): applied to every body
//! the server writes, so no builder has to remember it.

use serde_json::Value;

/// Removes every empty array and object under `value` (and those emptied by the removal).
pub fn prune_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                prune_empty(child);
            }
            map.retain(|_, child| !is_empty(child));
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune_empty(item);
            }
            items.retain(|item| !is_empty(item));
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_arrays_and_objects_go_at_every_depth() {
        let mut bundle = json!({"resourceType": "Bundle", "entry": [],
            "link": [{"relation": "self", "url": "u", "extension": [{}]}], "meta": {"tag": []}});
        prune_empty(&mut bundle);
        assert_eq!(
            bundle,
            json!({"resourceType": "Bundle", "link": [{"relation": "self", "url": "u"}]})
        );
    }
}
