//! The representation store behind the federatedsecure API (the original's "Bus"): every object a
//! client can name by uuid, and the root objects it starts from.
//!
//! Unlike the original, it holds only what the documented methods return: bound methods, plain
//! JSON values (results, invitations, uploads), SIMON tasks and the Sync/Util objects. Nothing
//! reaches private state through attributes (REFERENCE.md §6 W6). Entries expire after a TTL
//! without use and their number is capped, so memory stays bounded; root objects never expire.

use crate::error::Error;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::simon::Task;

/// The root objects, in the original's registration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Simon,
    Barrier,
    Broadcast,
    KeyValueStorage,
}

impl Root {
    pub const ALL: [Root; 4] = [Root::Simon, Root::Barrier, Root::Broadcast, Root::KeyValueStorage];

    /// The description `GET /representations` lists and `POST /representations` matches.
    pub fn description(self) -> Value {
        match self {
            Root::Simon => json!({"namespace": "federatedsecure", "protocol": "Simon", "version": "0.6.0"}),
            Root::Barrier => {
                json!({"namespace": "federatedsecure", "plugin": "Sync", "version": "0.6.0", "microservice": "Barrier"})
            }
            Root::Broadcast => {
                json!({"namespace": "federatedsecure", "plugin": "Sync", "version": "0.6.0", "microservice": "Broadcast"})
            }
            Root::KeyValueStorage => json!({"namespace": "federatedsecure", "plugin": "Util", "version": "0.6.0",
                                            "microservice": "KeyValueStorage"}),
        }
    }
}

/// What a representation stands for.
#[derive(Clone)]
pub enum Repr {
    Root(Root),
    /// A bound method, made by `GET /representation/{u}/{name}`, called by `PATCH`.
    Method(Target, &'static str),
    /// Plain data: results, invitations, uploads, return values.
    Value(Value),
    Task(Arc<Mutex<Task>>),
    /// `Barrier.create(uuid)`: the barrier of that uuid.
    BarrierInstance(String),
    /// `KeyValueStorage.create(storage)`: the storage of that name.
    KvStorage(String),
}

/// An object whose methods can be bound.
#[derive(Clone)]
pub enum Target {
    Root(Root),
    Task(Arc<Mutex<Task>>),
    BarrierInstance(String),
    KvStorage(String),
}

impl Repr {
    /// The public methods of this object (all that an attribute may name).
    pub fn target(&self) -> Option<(Target, &'static [&'static str])> {
        Some(match self {
            Repr::Root(root @ Root::Simon) => (Target::Root(*root), &["compute", "create_task", "join_task"]),
            Repr::Root(root @ Root::Barrier) => (Target::Root(*root), &["create", "delete"]),
            Repr::Root(root @ Root::Broadcast) => (Target::Root(*root), &["create", "send", "receive", "delete"]),
            Repr::Root(root @ Root::KeyValueStorage) => (Target::Root(*root), &["create", "delete"]),
            Repr::Task(task) => (
                Target::Task(task.clone()),
                &["invite", "input", "start", "result", "progress"],
            ),
            Repr::BarrierInstance(id) => (
                Target::BarrierInstance(id.clone()),
                &["arrive", "arrived", "depart", "departed", "reset"],
            ),
            Repr::KvStorage(name) => (
                Target::KvStorage(name.clone()),
                &["store", "retrieve", "exists", "delete"],
            ),
            Repr::Method(..) | Repr::Value(_) => return None,
        })
    }
}

struct Entry {
    repr: Repr,
    used: Instant,
}

/// All representations of one node.
pub struct Bus {
    roots: Vec<(Uuid, Root)>,
    entries: Mutex<HashMap<Uuid, Entry>>,
    ttl: Duration,
    capacity: usize,
}

impl Bus {
    pub fn new(ttl: Duration, capacity: usize) -> Bus {
        Bus {
            roots: Root::ALL.iter().map(|r| (Uuid::new_v4(), *r)).collect(),
            entries: Mutex::default(),
            ttl,
            capacity,
        }
    }

    pub fn list(&self) -> Vec<Value> {
        self.roots.iter().map(|(_, root)| root.description()).collect()
    }

    /// The uuid of the first root whose description has every requirement (`POST /representations`).
    pub fn find_root(&self, requirements: &Map<String, Value>) -> Result<Uuid, Error> {
        self.roots
            .iter()
            .find(|(_, root)| {
                let description = root.description();
                requirements
                    .iter()
                    .all(|(key, value)| description.get(key) == Some(value))
            })
            .map(|(uuid, _)| *uuid)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "root object not available: {}",
                    python_repr(&Value::Object(requirements.clone()))
                ))
            })
    }

    /// Stores `repr` under a new uuid.
    pub fn insert(&self, repr: Repr) -> Result<Uuid, Error> {
        let mut entries = self.entries.lock().expect("bus lock");
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, e| e.used.elapsed() < ttl);
            if entries.len() >= self.capacity {
                return Err(Error::Unavailable(format!(
                    "this node holds {} representations, its limit; release some (DELETE) or retry later",
                    self.capacity
                )));
            }
        }
        let uuid = Uuid::new_v4();
        entries.insert(
            uuid,
            Entry {
                repr,
                used: Instant::now(),
            },
        );
        Ok(uuid)
    }

    pub fn get(&self, uuid: &str) -> Result<Repr, Error> {
        let unknown = || Error::NotFound(format!("invalid identifier: representation_uuid = {uuid}"));
        let uuid = Uuid::parse_str(uuid).map_err(|_| unknown())?;
        if let Some((_, root)) = self.roots.iter().find(|(u, _)| *u == uuid) {
            return Ok(Repr::Root(*root));
        }
        let mut entries = self.entries.lock().expect("bus lock");
        let entry = entries
            .get_mut(&uuid)
            .filter(|e| e.used.elapsed() < self.ttl)
            .ok_or_else(unknown)?;
        entry.used = Instant::now();
        Ok(entry.repr.clone())
    }

    /// `DELETE`: forgets a representation (root objects stay).
    pub fn release(&self, uuid: &str) -> Result<(), Error> {
        let repr = self.get(uuid)?;
        if !matches!(repr, Repr::Root(_)) {
            let uuid = Uuid::parse_str(uuid).expect("get parsed it");
            self.entries.lock().expect("bus lock").remove(&uuid);
        }
        Ok(())
    }

    /// Drops expired entries; called periodically.
    pub fn sweep(&self) -> usize {
        let mut entries = self.entries.lock().expect("bus lock");
        let before = entries.len();
        entries.retain(|_, e| e.used.elapsed() < self.ttl);
        before - entries.len()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("bus lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The original's argument resolution, for one keyword argument: a dict
    /// `{"representation_uuid": U}` naming a data representation is replaced by its value,
    /// repeatedly; anything else (an unknown uuid included) stays as it is.
    pub fn resolve(&self, mut value: Value) -> Value {
        for _ in 0..16 {
            let Some(uuid) = value.get("representation_uuid").and_then(Value::as_str) else {
                break;
            };
            match self.get(uuid) {
                Ok(Repr::Value(resolved)) => value = resolved,
                _ => break,
            }
        }
        value
    }
}

/// Python's `repr` of a JSON value, as the original's error messages print dicts.
pub fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("'{k}': {}", python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_match_on_every_requirement_in_registration_order() {
        let bus = Bus::new(Duration::from_secs(60), 10);
        let simon = bus
            .find_root(json!({"protocol": "Simon"}).as_object().unwrap())
            .unwrap();
        assert!(matches!(bus.get(&simon.to_string()).unwrap(), Repr::Root(Root::Simon)));
        assert_eq!(
            bus.find_root(&Map::new()).unwrap(),
            simon,
            "{{}} matches the first root"
        );
        let barrier = bus.find_root(json!({"plugin": "Sync"}).as_object().unwrap()).unwrap();
        assert!(matches!(
            bus.get(&barrier.to_string()).unwrap(),
            Repr::Root(Root::Barrier)
        ));
        let error = bus
            .find_root(json!({"protocol": "Nope"}).as_object().unwrap())
            .unwrap_err();
        assert_eq!(error.to_string(), "root object not available: {'protocol': 'Nope'}");
    }

    #[test]
    fn kwargs_resolve_data_representations_only() {
        let bus = Bus::new(Duration::from_secs(60), 10);
        let seven = bus.insert(Repr::Value(json!(7))).unwrap();
        let pointer = bus
            .insert(Repr::Value(json!({"representation_uuid": seven.to_string()})))
            .unwrap();
        assert_eq!(
            bus.resolve(json!({"representation_uuid": pointer.to_string()})),
            json!(7)
        );
        let unknown = json!({"representation_uuid": Uuid::new_v4().to_string()});
        assert_eq!(bus.resolve(unknown.clone()), unknown);
    }

    #[test]
    fn entries_expire_and_the_store_is_bounded() {
        let bus = Bus::new(Duration::ZERO, 2);
        let old = bus.insert(Repr::Value(json!(1))).unwrap();
        assert!(bus.get(&old.to_string()).is_err(), "expired at once with a zero TTL");
        let bus = Bus::new(Duration::from_secs(60), 2);
        bus.insert(Repr::Value(json!(1))).unwrap();
        let second = bus.insert(Repr::Value(json!(2))).unwrap();
        assert!(matches!(bus.insert(Repr::Value(json!(3))), Err(Error::Unavailable(_))));
        bus.release(&second.to_string()).unwrap();
        assert!(bus.insert(Repr::Value(json!(3))).is_ok());
    }
}
