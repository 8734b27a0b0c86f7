//! Conflicts: fields that two people set to different values concurrently.
//!
//! automerge keeps every concurrent value of a map key or list slot
//! (`get_all` returns more than one); a silent winner would hide a real
//! disagreement from the CS, so every such field is listed here with each
//! value, who wrote it (user and device, from the document's actor table) and
//! when. Writing one value with [`resolve`] supersedes all of them on every
//! replica once synced.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::SharedError;
use crate::doc::{Author, Inspection, InspectionDoc};

/// One concurrent value of a conflicted field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConflictValue {
    /// Opaque id of the value (`counter@actor`), passed back to [`resolve`].
    pub value_id: String,
    /// The value as JSON (string, number, boolean or null); `"(objet)"` for a nested object.
    pub value: serde_json::Value,
    pub user_name: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// Milliseconds since the epoch of the change that wrote it.
    pub at_ms: i64,
}

/// A field with more than one current value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Stable path: map keys, and for list items their `id` (or `hash`) rather than
    /// their index, e.g. `["components", "B3010", "rating"]`.
    pub path: Vec<String>,
    pub values: Vec<ConflictValue>,
}

impl Conflict {
    /// The path joined with `/`, for URLs and forms.
    pub fn path_string(&self) -> String {
        self.path.join("/")
    }

    /// A French description of the field, e.g. `Toiture – membrane : cote`.
    pub fn label_fr(&self) -> String {
        let field = |f: &str| match f {
            "rating" => "cote".to_string(),
            "present" => "présence".to_string(),
            "note" => "note".to_string(),
            "status" => "statut".to_string(),
            "urgency" => "urgence".to_string(),
            "severity" => "gravité".to_string(),
            "unit_cost" => "coût unitaire".to_string(),
            "quantity" => "quantité".to_string(),
            other => other.replace('_', " "),
        };
        match self.path.as_slice() {
            [c, code, f] if c == "components" => {
                let label = crate::catalogue::Catalogue::current()
                    .component(code)
                    .map(|(_, c)| c.label.clone())
                    .unwrap_or_else(|| code.clone());
                format!("{label} : {}", field(f))
            }
            [.., f] => format!(
                "{} : {}",
                self.path[..self.path.len() - 1].join(" › "),
                field(f)
            ),
            [] => String::new(),
        }
    }
}

fn scalar_json(s: &ScalarValue) -> serde_json::Value {
    match s {
        ScalarValue::Str(s) => serde_json::Value::String(s.to_string()),
        ScalarValue::Int(i) => (*i).into(),
        ScalarValue::Uint(u) => (*u).into(),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f)
            .map(Into::into)
            .unwrap_or_default(),
        ScalarValue::Boolean(b) => (*b).into(),
        ScalarValue::Timestamp(t) => (*t).into(),
        ScalarValue::Counter(c) => i64::from(c).into(),
        ScalarValue::Null => serde_json::Value::Null,
        other => serde_json::Value::String(format!("{other}")),
    }
}

fn value_id(id: &ObjId) -> String {
    match id {
        ObjId::Root => "root".into(),
        ObjId::Id(counter, actor, _) => format!("{counter}@{}", actor.to_hex_string()),
    }
}

/// The path segment naming a list item: its `id` or `hash` field, else its index.
fn item_name(doc: &automerge::Automerge, obj: &ObjId, index: usize) -> String {
    if let Ok(Some((Value::Object(ObjType::Map), item))) = doc.get(obj, index) {
        for key in ["id", "hash"] {
            if let Ok(Some((Value::Scalar(s), _))) = doc.get(&item, key)
                && let ScalarValue::Str(s) = s.as_ref()
            {
                return s.to_string();
            }
        }
    }
    index.to_string()
}

/// Every conflicted field of the inspection.
pub fn list(insp: &Inspection) -> Result<Vec<Conflict>, SharedError> {
    let doc = insp.automerge();
    // One author's changes are totally ordered: concurrent values need two
    // actors, so most documents (one inspector's) are settled without a walk.
    let changes = doc.get_changes(&[]);
    if changes
        .first()
        .is_none_or(|first| changes.iter().all(|c| c.actor_id() == first.actor_id()))
    {
        return Ok(Vec::new());
    }
    let actors = insp
        .read()
        .map(|d: InspectionDoc| d.actors)
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut stack: Vec<(ObjId, Vec<String>)> = vec![(ROOT, vec![])];
    while let Some((obj, path)) = stack.pop() {
        let props: Vec<(automerge::Prop, String)> = match doc.object_type(&obj)? {
            ObjType::Map | ObjType::Table => doc
                .keys(&obj)
                .map(|k| (automerge::Prop::Map(k.clone()), k))
                .collect(),
            ObjType::List => (0..doc.length(&obj))
                .map(|i| (automerge::Prop::Seq(i), item_name(doc, &obj, i)))
                .collect(),
            ObjType::Text => vec![],
        };
        for (prop, name) in props {
            let all = doc.get_all(&obj, prop.clone())?;
            let mut child_path = path.clone();
            child_path.push(name);
            // Two people writing the same value concurrently agree: not a conflict.
            let disagree = all.windows(2).any(|w| match (&w[0].0, &w[1].0) {
                (Value::Scalar(a), Value::Scalar(b)) => a != b,
                _ => true,
            });
            if all.len() > 1 && disagree {
                let values: Vec<ConflictValue> = all
                    .iter()
                    .map(|(v, id)| {
                        let meta = doc
                            .hash_for_opid(id)
                            .and_then(|h| doc.get_change_by_hash(&h));
                        let actor_hex = match id {
                            ObjId::Id(_, a, _) => a.to_hex_string(),
                            ObjId::Root => String::new(),
                        };
                        let info = actors.get(&actor_hex);
                        ConflictValue {
                            value_id: value_id(id),
                            value: match v {
                                Value::Scalar(s) => scalar_json(s),
                                Value::Object(_) => "(objet)".into(),
                            },
                            user_name: info.map(|i| i.user_name.clone()).unwrap_or_else(|| {
                                format!("appareil {}", &actor_hex[..actor_hex.len().min(8)])
                            }),
                            user_id: info.map(|i| i.user_id.to_string()),
                            device_id: info.map(|i| i.device_id.to_string()),
                            at_ms: meta.map(|m| m.timestamp()).unwrap_or(0),
                        }
                    })
                    .collect();
                out.push(Conflict {
                    path: child_path.clone(),
                    values,
                });
            }
            // Descend into the winning object (the others are listed above as whole values).
            if let Some((Value::Object(_), child)) = all.last().cloned() {
                stack.push((child, child_path));
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Resolves a conflict by writing the chosen value (one of `list`'s `value_id`s)
/// over all concurrent ones. Returns the change to sync.
pub fn resolve(
    insp: &mut Inspection,
    author: &Author,
    path: &[String],
    chosen_value_id: &str,
) -> Result<automerge::Change, SharedError> {
    let (parent, prop) = locate(insp.automerge(), path)?;
    let doc = insp.automerge();
    let all = doc.get_all(&parent, prop.clone())?;
    if all.len() < 2 {
        return Err(SharedError::NoSuchConflict(path.join("/")));
    }
    let chosen = all
        .iter()
        .find(|(_, id)| value_id(id) == chosen_value_id)
        .ok_or_else(|| {
            SharedError::NoSuchConflict(format!("{} ({chosen_value_id})", path.join("/")))
        })?;
    let scalar = match &chosen.0 {
        Value::Scalar(s) => s.as_ref().clone(),
        Value::Object(_) => return Err(SharedError::ObjectConflict(path.join("/"))),
    };
    // Record who resolved it, like any other edit.
    insp.edit(author, |_| Ok(()))?;
    let doc = insp.automerge_mut();
    doc.set_actor(author.actor.clone());
    let mut tx = doc.transaction();
    // Putting a value equal to one of the current ones is a no-op in automerge,
    // so delete the key (superseding every concurrent value), then write.
    tx.delete(&parent, prop.clone())?;
    match prop {
        automerge::Prop::Map(key) => tx.put(&parent, key, scalar)?,
        automerge::Prop::Seq(i) => tx.insert(&parent, i, scalar)?,
    }
    let (hash, _) = tx.commit_with(
        CommitOptions::default()
            .with_time(crate::doc::now_ms())
            .with_message("résolution de conflit"),
    );
    let hash = hash.ok_or(SharedError::NoChange)?;
    insp.automerge()
        .get_change_by_hash(&hash)
        .cloned()
        .ok_or(SharedError::NoChange)
}

/// Walks a conflict path back to (parent object, property).
fn locate(
    doc: &automerge::Automerge,
    path: &[String],
) -> Result<(ObjId, automerge::Prop), SharedError> {
    let not_found = || SharedError::NoSuchConflict(path.join("/"));
    let (last, parents) = path.split_last().ok_or_else(not_found)?;
    let mut obj = ROOT;
    let seg_prop = |obj: &ObjId, seg: &str| -> Result<automerge::Prop, SharedError> {
        match doc.object_type(obj)? {
            ObjType::List => (0..doc.length(obj))
                .find(|i| item_name(doc, obj, *i) == seg)
                .map(automerge::Prop::Seq)
                .ok_or_else(not_found),
            _ => Ok(automerge::Prop::Map(seg.to_string())),
        }
    };
    for seg in parents {
        let prop = seg_prop(&obj, seg)?;
        obj = match doc.get(&obj, prop)? {
            Some((Value::Object(_), id)) => id,
            _ => return Err(not_found()),
        };
    }
    let prop = seg_prop(&obj, last)?;
    Ok((obj, prop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::doc::NewInspection;
    use crate::domain::Rating;
    use crate::ids::*;

    #[test]
    fn two_ratings_of_one_component_are_one_conflict_with_both_authors_and_resolve_everywhere() {
        let a = Author::device(DeviceId::new(), UserId::new(), "Julie");
        let b = Author::device(DeviceId::new(), UserId::new(), "Marc");
        let new = NewInspection {
            inspection_id: InspectionId::new(),
            territory_id: TerritoryId::new(),
            office_id: OfficeId::new(),
            complex_id: ComplexId::new(),
        };
        let (mut one, _) = Inspection::create(&a, new, Catalogue::current()).unwrap();
        let mut two = Inspection::load(&one.save()).unwrap();
        one.edit(&a, |d| d.rate("B3010", Rating::D)).unwrap();
        two.edit(&b, |d| d.rate("B3010", Rating::B)).unwrap();
        one.apply_changes(two.changes_since(&[])).unwrap();
        two.apply_changes(one.changes_since(&[])).unwrap();

        let conflicts = list(&one).unwrap();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        let c = &conflicts[0];
        assert_eq!(c.path, ["components", "B3010", "rating"]);
        let mut names: Vec<_> = c.values.iter().map(|v| v.user_name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["Julie", "Marc"]);
        assert!(c.label_fr().starts_with("Toiture – membrane"));
        assert_eq!(list(&two).unwrap(), conflicts);

        let marc = c.values.iter().find(|v| v.user_name == "Marc").unwrap();
        let change = resolve(&mut one, &a, &c.path, &marc.value_id).unwrap();
        assert!(list(&one).unwrap().is_empty());
        two.apply_changes(vec![change]).unwrap();
        two.apply_changes(one.changes_since(&[])).unwrap();
        assert!(list(&two).unwrap().is_empty());
        assert_eq!(
            two.read().unwrap().components["B3010"].rating,
            Some(Rating::B)
        );
    }
}
