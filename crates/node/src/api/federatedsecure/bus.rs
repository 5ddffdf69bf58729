//! The representation store behind the federatedsecure API (the original's "Bus"): every object a
//! client can name by uuid, and the root objects it starts from.
//!
//! Unlike the original, it holds only what the documented methods return: bound methods, plain
//! JSON values (results, invitations, uploads), SIMON tasks and the Sync/Util objects, each for
//! the API client whose request made it (root objects are everybody's). Nothing
//! reaches private state through attributes (REFERENCE.md §6 W6). Entries expire after a TTL
//! without use and their number is capped; root objects never expire.
//!
//! The bus also owns the node's byte budget (`max_representation_bytes`): every value the API
//! keeps, here or in a task or a Sync/Util object, is made by [`Bus::hold`] and charged to it.

use crate::caller::Caller;
use crate::error::Error;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::budget::{Budget, Data, Json};
use super::task::Task;

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
    Value(Arc<Data>),
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
    /// The API client whose request made it; only it (or an admin) can use it.
    owner: String,
}

/// All representations of one node.
pub struct Bus {
    roots: Vec<(Uuid, Root)>,
    entries: Mutex<HashMap<Uuid, Entry>>,
    ttl: Duration,
    capacity: usize,
    budget: Arc<Budget>,
}

impl Bus {
    /// Entries expire after `ttl` without use; at most `capacity` of them, and at most
    /// `max_bytes` of data held through the bus, are kept at once.
    pub fn new(ttl: Duration, capacity: usize, max_bytes: usize) -> Bus {
        Bus {
            roots: Root::ALL.iter().map(|r| (Uuid::new_v4(), *r)).collect(),
            entries: Mutex::default(),
            ttl,
            capacity,
            budget: Budget::new(max_bytes),
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

    /// Stores `repr` under a new uuid, for `owner` only.
    pub fn insert(&self, repr: Repr, owner: &Caller) -> Result<Uuid, Error> {
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
                owner: owner.name.clone(),
            },
        );
        Ok(uuid)
    }

    /// The representation `uuid` if `caller` may use it: the root objects are everybody's, and
    /// another client's representation is as unknown as one that does not exist.
    pub fn get(&self, uuid: &str, caller: &Caller) -> Result<Repr, Error> {
        let unknown = || Error::NotFound(format!("invalid identifier: representation_uuid = {uuid}"));
        let uuid = Uuid::parse_str(uuid).map_err(|_| unknown())?;
        if let Some((_, root)) = self.roots.iter().find(|(u, _)| *u == uuid) {
            return Ok(Repr::Root(*root));
        }
        let mut entries = self.entries.lock().expect("bus lock");
        let entry = entries
            .get_mut(&uuid)
            .filter(|e| e.used.elapsed() < self.ttl && caller.may_access(Some(&e.owner)))
            .ok_or_else(unknown)?;
        entry.used = Instant::now();
        Ok(entry.repr.clone())
    }

    /// `DELETE`: forgets a representation (root objects stay).
    pub fn release(&self, uuid: &str, caller: &Caller) -> Result<(), Error> {
        let repr = self.get(uuid, caller)?;
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

    /// Bytes of data held now (representations, task inputs, Sync/Util values).
    pub fn held_bytes(&self) -> usize {
        self.budget.held()
    }

    /// Keeps `text` as data charged to the budget. Past the budget, expired entries are swept
    /// first; if it is still full the request is refused, with what to do about it.
    pub fn hold(&self, text: Box<RawValue>) -> Result<Arc<Data>, Error> {
        let bytes = text.get().len();
        let charge = match self.budget.charge(bytes) {
            Some(charge) => charge,
            None => {
                self.sweep();
                self.budget.charge(bytes).ok_or_else(|| self.full(bytes))?
            }
        };
        Ok(Arc::new(Data::new(text, charge)))
    }

    /// [`Bus::hold`] for computation `id`'s output: downloading it is recorded in the audit log.
    pub fn hold_result(&self, text: Box<RawValue>, id: Uuid) -> Result<Arc<Data>, Error> {
        let mut data = self.hold(text)?;
        Arc::get_mut(&mut data).expect("just made").computation = Some(id);
        Ok(data)
    }

    /// [`Bus::hold`] for a value made here (a result, an invitation, a count).
    pub fn hold_value(&self, value: &Value) -> Result<Arc<Data>, Error> {
        let text = serde_json::value::to_raw_value(value).expect("a Value always serialises");
        self.hold(text)
    }

    /// An argument, to be kept: what the request sent is charged, a representation it named is
    /// shared (its bytes are charged already).
    pub fn keep(&self, argument: Json) -> Result<Arc<Data>, Error> {
        match argument {
            Json::Sent(text) => self.hold(text),
            Json::Held(data) => Ok(data),
        }
    }

    fn full(&self, bytes: usize) -> Error {
        Error::InsufficientStorage(format!(
            "this node holds {} of federatedsecure data (representations, task inputs not yet started, \
             Broadcast and KeyValueStorage values); {} more would pass its limit of {} \
             (max_representation_bytes). Release representations you no longer need \
             (DELETE /representation/{{uuid}}) or wait until unused ones expire \
             (representation_ttl_s = {} s), then retry",
            mib(self.budget.held()),
            mib(bytes),
            mib(self.budget.limit()),
            self.ttl.as_secs()
        ))
    }

    /// The original's argument resolution, for one keyword argument: a dict
    /// `{"representation_uuid": U}` naming a data representation is replaced by its value,
    /// repeatedly; anything else (an unknown uuid, or another client's, included) stays as it is.
    pub fn resolve(&self, argument: Box<RawValue>, caller: &Caller) -> Json {
        let mut argument = Json::Sent(argument);
        for _ in 0..16 {
            let Some(uuid) = pointer(argument.text()) else {
                break;
            };
            match self.get(&uuid, caller) {
                Ok(Repr::Value(resolved)) => argument = Json::Held(resolved),
                _ => break,
            }
        }
        argument
    }
}

/// The uuid of a dict `{"representation_uuid": U, ...}`, read without building the dict.
fn pointer(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Pointer {
        representation_uuid: String,
    }
    // A struct also deserialises from a list; only a dict may name a representation.
    if !text.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Pointer>(text)
        .ok()
        .map(|p| p.representation_uuid)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
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
    use crate::caller::Caller;

    const BIG: usize = 1024 * 1024;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    fn value(bus: &Bus, text: &str) -> Uuid {
        bus.insert(Repr::Value(bus.hold(raw(text)).unwrap()), &Caller::local())
            .unwrap()
    }

    fn text(bus: &Bus, uuid: Uuid) -> String {
        match bus.get(&uuid.to_string(), &Caller::local()).unwrap() {
            Repr::Value(data) => data.text().to_string(),
            _ => panic!("not data"),
        }
    }

    #[test]
    fn a_representation_is_its_clients_alone() {
        let bus = Bus::new(Duration::from_secs(60), 10, 1 << 20);
        let (app1, app2) = (client("app1", false), client("app2", false));
        let upload = bus
            .insert(Repr::Value(bus.hold(raw("[1]")).unwrap()), &app1)
            .unwrap()
            .to_string();
        assert!(bus.get(&upload, &app1).is_ok());
        assert!(matches!(bus.get(&upload, &app2), Err(Error::NotFound(_))));
        assert!(bus.get(&upload, &client("ops", true)).is_ok(), "an admin reaches it");
        let pointer = raw(&format!(r#"{{"representation_uuid": "{upload}"}}"#));
        assert!(
            matches!(bus.resolve(pointer, &app2), Json::Sent(_)),
            "not resolved for another client"
        );
        assert!(bus.release(&upload, &app2).is_err());
        let simon = bus.find_root(&Map::new()).unwrap().to_string();
        assert!(bus.get(&simon, &app2).is_ok(), "root objects are everybody's");
    }

    fn client(name: &str, admin: bool) -> Caller {
        Caller {
            name: name.into(),
            admin,
            monitor: false,
        }
    }

    #[test]
    fn roots_match_on_every_requirement_in_registration_order() {
        let bus = Bus::new(Duration::from_secs(60), 10, BIG);
        let simon = bus
            .find_root(json!({"protocol": "Simon"}).as_object().unwrap())
            .unwrap();
        assert!(matches!(
            bus.get(&simon.to_string(), &Caller::local()).unwrap(),
            Repr::Root(Root::Simon)
        ));
        assert_eq!(
            bus.find_root(&Map::new()).unwrap(),
            simon,
            "{{}} matches the first root"
        );
        let barrier = bus.find_root(json!({"plugin": "Sync"}).as_object().unwrap()).unwrap();
        assert!(matches!(
            bus.get(&barrier.to_string(), &Caller::local()).unwrap(),
            Repr::Root(Root::Barrier)
        ));
        let error = bus
            .find_root(json!({"protocol": "Nope"}).as_object().unwrap())
            .unwrap_err();
        assert_eq!(error.to_string(), "root object not available: {'protocol': 'Nope'}");
    }

    #[test]
    fn kwargs_resolve_data_representations_only() {
        let bus = Bus::new(Duration::from_secs(60), 10, BIG);
        let seven = value(&bus, "7");
        let pointer = value(&bus, &format!(r#"{{"representation_uuid": "{seven}", "other": [1]}}"#));
        let resolved = bus.resolve(
            raw(&format!(r#"{{"representation_uuid": "{pointer}"}}"#)),
            &Caller::local(),
        );
        assert!(matches!(resolved, Json::Held(_)), "shared, not copied");
        assert_eq!(resolved.text(), "7");
        let unknown = format!(r#"{{"representation_uuid": "{}"}}"#, Uuid::new_v4());
        assert_eq!(bus.resolve(raw(&unknown), &Caller::local()).text(), unknown);
        let list = format!(r#"["{seven}"]"#);
        assert_eq!(
            bus.resolve(raw(&list), &Caller::local()).text(),
            list,
            "only a dict names a representation"
        );
    }

    #[test]
    fn entries_expire_and_the_store_is_bounded() {
        let bus = Bus::new(Duration::ZERO, 2, BIG);
        let old = value(&bus, "1");
        assert!(
            bus.get(&old.to_string(), &Caller::local()).is_err(),
            "expired at once with a zero TTL"
        );
        let bus = Bus::new(Duration::from_secs(60), 2, BIG);
        value(&bus, "1");
        let second = value(&bus, "2");
        let third = bus.hold(raw("3")).unwrap();
        assert!(matches!(
            bus.insert(Repr::Value(third.clone()), &Caller::local()),
            Err(Error::Unavailable(_))
        ));
        bus.release(&second.to_string(), &Caller::local()).unwrap();
        assert!(bus.insert(Repr::Value(third), &Caller::local()).is_ok());
    }

    #[test]
    fn data_is_charged_until_released_or_expired_and_refused_past_the_budget() {
        let bus = Bus::new(Duration::from_secs(60), 10, 10);
        let first = value(&bus, "[1,2,3]");
        assert_eq!(bus.held_bytes(), 7);
        let Err(Error::InsufficientStorage(message)) = bus.hold(raw("[4,5]")) else {
            panic!("not refused");
        };
        for needed in ["max_representation_bytes", "DELETE", "representation_ttl_s = 60 s"] {
            assert!(message.contains(needed), "{needed:?} missing from: {message}");
        }
        assert_eq!(bus.held_bytes(), 7, "a refusal holds nothing");
        bus.release(&first.to_string(), &Caller::local()).unwrap();
        assert_eq!(bus.held_bytes(), 0, "DELETE returns the bytes");
        value(&bus, "[4,5]");
        assert_eq!(bus.held_bytes(), 5);

        // Expired entries: swept by the sweeper, or when the budget is full.
        let bus = Bus::new(Duration::ZERO, 10, 10);
        value(&bus, "[1,2,3]");
        assert_eq!(bus.held_bytes(), 7, "expired but not yet swept");
        let fits = bus.hold(raw("[4,5,6]")).unwrap();
        assert_eq!(bus.held_bytes(), 7, "the expired entry made room");
        drop(fits);
        value(&bus, "[1]");
        assert_eq!(bus.sweep(), 1);
        assert_eq!(bus.held_bytes(), 0);
    }

    #[test]
    fn a_value_shared_by_representations_is_charged_once() {
        let bus = Bus::new(Duration::from_secs(60), 10, 100);
        let data = bus.hold_value(&json!({"a": [1, 2]})).unwrap();
        let first = bus.insert(Repr::Value(data.clone()), &Caller::local()).unwrap();
        let second = bus.insert(Repr::Value(data), &Caller::local()).unwrap();
        assert_eq!(bus.held_bytes(), r#"{"a":[1,2]}"#.len());
        assert_eq!(text(&bus, second), r#"{"a":[1,2]}"#);
        bus.release(&first.to_string(), &Caller::local()).unwrap();
        assert_eq!(bus.held_bytes(), 11, "the second still holds it");
        bus.release(&second.to_string(), &Caller::local()).unwrap();
        assert_eq!(bus.held_bytes(), 0);
    }
}
