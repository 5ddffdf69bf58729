//! Calling methods of federatedsecure objects: Python-style argument binding, and the Sync and
//! Util root objects (`Barrier`, `Broadcast`, `KeyValueStorage`), which keep small, bounded state
//! in memory: their values are data charged to the node's byte budget (see `budget`), shared
//! with the representations `receive` and `retrieve` return. SIMON's methods live in `simon`.

use super::Federatedsecure;
use super::budget::{Data, Json};
use super::bus::{Bus, Repr, Root, Target};
use crate::caller::Caller;
use crate::error::Error;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Most barriers, broadcast slots, storages, and keys per storage, each.
const MAX_ITEMS: usize = 10_000;
/// Largest value a broadcast slot or a key may hold (bytes of JSON).
const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// A call's arguments: positional first, then by keyword, as Python binds them. They stay JSON
/// text until a method uses them.
pub struct Arguments {
    args: Vec<Option<Json>>,
    kwargs: BTreeMap<String, Json>,
}

impl Arguments {
    pub fn new(args: Vec<Json>, kwargs: BTreeMap<String, Json>) -> Arguments {
        Arguments {
            args: args.into_iter().map(Some).collect(),
            kwargs,
        }
    }

    /// The argument `name` (or the positional one at `position`), if given.
    pub fn optional(&mut self, name: &str, position: usize) -> Option<Json> {
        self.args
            .get_mut(position)
            .and_then(Option::take)
            .or_else(|| self.kwargs.remove(name))
    }

    pub fn required(&mut self, name: &str, position: usize) -> Result<Json, Error> {
        self.optional(name, position)
            .ok_or_else(|| Error::bad_request("missing_parameter", format!("missing parameter: {name}")))
    }

    /// [`Arguments::optional`], parsed.
    pub fn optional_value(&mut self, name: &str, position: usize) -> Result<Option<Value>, Error> {
        self.optional(name, position).map(|a| a.value()).transpose()
    }

    /// [`Arguments::required`], parsed.
    pub fn value(&mut self, name: &str, position: usize) -> Result<Value, Error> {
        self.required(name, position)?.value()
    }

    pub fn string(&mut self, name: &str, position: usize) -> Result<String, Error> {
        match self.value(name, position)? {
            Value::String(s) => Ok(s),
            other => Err(Error::bad_request(
                "invalid_parameter",
                format!("invalid parameter: {name} = {other}"),
            )),
        }
    }

    /// Fails if anything was given that the method does not take.
    pub fn finish(self) -> Result<(), Error> {
        if let Some(name) = self.kwargs.keys().next() {
            return Err(Error::bad_request(
                "invalid_parameter",
                format!("unexpected keyword argument: {name}"),
            ));
        }
        if self.args.iter().any(Option::is_some) {
            return Err(Error::bad_request(
                "invalid_parameter",
                "too many positional arguments".to_string(),
            ));
        }
        Ok(())
    }
}

#[derive(Default)]
struct Barrier {
    arrived: HashSet<String>,
    departed: HashSet<String>,
}

/// A Broadcast message or a stored value; `None` is `null`, which `receive` and `retrieve`
/// answer as nothing.
type Slot = Option<Arc<Data>>;

/// The state of the Sync and Util objects of one node.
#[derive(Default)]
pub struct SyncObjects {
    barriers: Mutex<HashMap<String, Barrier>>,
    broadcasts: Mutex<HashMap<String, Slot>>,
    storages: Mutex<HashMap<String, HashMap<String, Slot>>>,
}

/// Calls `method` of `target`; `Ok(None)` is the original's `{"type": "none"}`.
pub async fn call(
    fs: &Federatedsecure,
    target: &Target,
    method: &str,
    args: Arguments,
    caller: &Caller,
) -> Result<Option<Repr>, Error> {
    let (simon, bus) = (&fs.simon, &fs.bus);
    match (target, method) {
        (Target::Root(Root::Simon), "compute") => simon.compute(bus, args, caller).await,
        (Target::Root(Root::Simon), "create_task") => simon.create_task(args),
        (Target::Root(Root::Simon), "join_task") => simon.join_task(args),
        (Target::Task(task), method) => simon.call_task(bus, task, method, args, caller).await,
        _ => call_object(&fs.objects, bus, target, method, args),
    }
}

/// Calls `method` of a Sync or Util object; what it keeps is charged to `bus`'s budget.
fn call_object(
    objects: &SyncObjects,
    bus: &Bus,
    target: &Target,
    method: &str,
    mut args: Arguments,
) -> Result<Option<Repr>, Error> {
    match (target, method) {
        (Target::Root(Root::Barrier), "create") => {
            let id = key(args.value("uuid", 0)?);
            args.finish()?;
            let mut barriers = objects.barriers.lock().expect("barriers lock");
            bounded(&*barriers, &id)?;
            barriers.entry(id.clone()).or_default();
            Ok(Some(Repr::BarrierInstance(id)))
        }
        (Target::Root(Root::Barrier), "delete") => {
            let id = key(args.value("uuid", 0)?);
            args.finish()?;
            objects.barriers.lock().expect("barriers lock").remove(&id);
            Ok(None)
        }
        (Target::BarrierInstance(id), method) => {
            let party = match method {
                "arrive" | "depart" => Some(key(args.value("party", 0)?)),
                _ => None,
            };
            args.finish()?;
            let mut barriers = objects.barriers.lock().expect("barriers lock");
            let barrier = barriers.entry(id.clone()).or_default();
            let count = |parties: &HashSet<String>| bus.hold_value(&parties.len().into()).map(Repr::Value);
            Ok(match (method, party) {
                ("arrive", Some(party)) => {
                    if barrier.arrived.len() < MAX_ITEMS {
                        barrier.arrived.insert(party);
                    }
                    barrier.departed.clear();
                    None
                }
                ("depart", Some(party)) => {
                    if barrier.departed.len() < MAX_ITEMS {
                        barrier.departed.insert(party);
                    }
                    None
                }
                ("arrived", _) => Some(count(&barrier.arrived)?),
                ("departed", _) => Some(count(&barrier.departed)?),
                ("reset", _) => {
                    barrier.arrived.clear();
                    None
                }
                _ => return Err(not_available(method)),
            })
        }

        (Target::Root(Root::Broadcast), method) => {
            let id = key(args.value("uuid", 0)?);
            let message = if method == "send" {
                Some(args.required("message", 1)?)
            } else {
                None
            };
            args.finish()?;
            let message = slot(bus, message)?;
            let mut slots = objects.broadcasts.lock().expect("broadcasts lock");
            match method {
                "create" | "send" => {
                    bounded(&*slots, &id)?;
                    slots.insert(id, message);
                    Ok(None)
                }
                "receive" => Ok(slots.get(&id).cloned().flatten().map(Repr::Value)),
                "delete" => {
                    slots.remove(&id);
                    Ok(None)
                }
                _ => Err(not_available(method)),
            }
        }

        (Target::Root(Root::KeyValueStorage), method @ ("create" | "delete")) => {
            let name = args
                .optional_value("storage", 0)?
                .map_or_else(|| "default".to_string(), key);
            args.finish()?;
            let mut storages = objects.storages.lock().expect("storages lock");
            if method == "delete" {
                storages.remove(&name);
                return Ok(None);
            }
            bounded(&*storages, &name)?;
            storages.entry(name.clone()).or_default();
            Ok(Some(Repr::KvStorage(name)))
        }
        (Target::KvStorage(name), method) => {
            let item = key(args.value("key", 0)?);
            let value = if method == "store" {
                Some(args.required("value", 1)?)
            } else {
                None
            };
            args.finish()?;
            let value = slot(bus, value)?;
            let mut storages = objects.storages.lock().expect("storages lock");
            let storage = storages.entry(name.clone()).or_default();
            match method {
                "store" => {
                    bounded(storage, &item)?;
                    storage.insert(item, value);
                    Ok(None)
                }
                "retrieve" => Ok(storage.get(&item).cloned().flatten().map(Repr::Value)),
                "exists" => Ok(Some(Repr::Value(bus.hold_value(&storage.contains_key(&item).into())?))),
                "delete" => {
                    storage.remove(&item);
                    Ok(None)
                }
                _ => Err(not_available(method)),
            }
        }
        (_, method) => Err(not_available(method)),
    }
}

fn not_available(method: &str) -> Error {
    Error::NotFound(format!("attribute not available: {method}"))
}

/// Keys are compared as the original compared Python values: strings as they are, others as JSON.
fn key(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn bounded<V>(map: &HashMap<String, V>, key: &str) -> Result<(), Error> {
    if map.len() >= MAX_ITEMS && !map.contains_key(key) {
        return Err(Error::Unavailable(format!(
            "at most {MAX_ITEMS} entries; delete some first"
        )));
    }
    Ok(())
}

/// What a Broadcast slot or a key will hold: nothing for `null`, else the value, at most
/// `MAX_VALUE_BYTES` of JSON, charged to the budget (or shared with the representation it names).
fn slot(bus: &Bus, value: Option<Json>) -> Result<Slot, Error> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if value.text().len() > MAX_VALUE_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "values are limited to {MAX_VALUE_BYTES} bytes"
        )));
    }
    bus.keep(value).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::Caller;
    use serde_json::value::RawValue;
    use std::time::Duration;

    fn sent(text: &str) -> Json {
        Json::Sent(RawValue::from_string(text.to_string()).unwrap())
    }

    fn call(
        bus: &Bus,
        objects: &SyncObjects,
        target: &Target,
        method: &str,
        args: &[&str],
    ) -> Result<Option<Repr>, Error> {
        let args = Arguments::new(args.iter().map(|a| sent(a)).collect(), BTreeMap::new());
        call_object(objects, bus, target, method, args)
    }

    fn text(repr: Option<Repr>) -> String {
        match repr {
            Some(Repr::Value(data)) => data.text().to_string(),
            _ => panic!("not data"),
        }
    }

    #[test]
    fn broadcast_messages_are_charged_until_overwritten_or_deleted() {
        let (bus, objects) = (Bus::new(Duration::from_secs(60), 10, 20), SyncObjects::default());
        let broadcast = Target::Root(Root::Broadcast);
        call(&bus, &objects, &broadcast, "send", &[r#""s""#, "[1,2,3]"]).unwrap();
        assert_eq!(bus.held_bytes(), 7);
        call(&bus, &objects, &broadcast, "send", &[r#""s""#, "[1]"]).unwrap();
        assert_eq!(bus.held_bytes(), 3, "the overwritten message is returned");
        let received = call(&bus, &objects, &broadcast, "receive", &[r#""s""#]).unwrap();
        let received = bus.insert(received.unwrap(), &Caller::local()).unwrap();
        assert_eq!(bus.held_bytes(), 3, "receive shares the message");
        call(&bus, &objects, &broadcast, "delete", &[r#""s""#]).unwrap();
        assert_eq!(bus.held_bytes(), 3, "the representation still holds it");
        bus.release(&received.to_string(), &Caller::local()).unwrap();
        assert_eq!(bus.held_bytes(), 0);

        call(&bus, &objects, &broadcast, "send", &[r#""s""#, "[1,2,3,4,5,6,7,8]"]).unwrap();
        let refused = call(&bus, &objects, &broadcast, "send", &[r#""t""#, "[1,2,3,4,5]"]);
        assert!(matches!(refused, Err(Error::InsufficientStorage(_))));
        call(&bus, &objects, &broadcast, "create", &[r#""s""#]).unwrap();
        assert_eq!(bus.held_bytes(), 0, "create empties the slot");
        assert!(
            call(&bus, &objects, &broadcast, "receive", &[r#""s""#])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn stored_values_are_charged_until_overwritten_or_deleted() {
        let (bus, objects) = (Bus::new(Duration::from_secs(60), 10, 20), SyncObjects::default());
        let storage = call(&bus, &objects, &Target::Root(Root::KeyValueStorage), "create", &[]).unwrap();
        let Some(Repr::KvStorage(name)) = storage else {
            panic!("not a storage");
        };
        let storage = Target::KvStorage(name);
        call(&bus, &objects, &storage, "store", &[r#""k""#, r#"{"a":1}"#]).unwrap();
        call(&bus, &objects, &storage, "store", &[r#""l""#, "[1,2]"]).unwrap();
        assert_eq!(bus.held_bytes(), 7 + 5);
        let refused = call(&bus, &objects, &storage, "store", &[r#""m""#, "[1,2,3,4,5]"]);
        assert!(matches!(refused, Err(Error::InsufficientStorage(_))));
        call(&bus, &objects, &storage, "store", &[r#""k""#, "null"]).unwrap();
        assert_eq!(bus.held_bytes(), 5, "null is stored as nothing");
        assert_eq!(
            text(call(&bus, &objects, &storage, "exists", &[r#""k""#]).unwrap()),
            "true"
        );
        assert!(
            call(&bus, &objects, &storage, "retrieve", &[r#""k""#])
                .unwrap()
                .is_none()
        );
        assert_eq!(
            text(call(&bus, &objects, &storage, "retrieve", &[r#""l""#]).unwrap()),
            "[1,2]"
        );
        call(&bus, &objects, &storage, "delete", &[r#""l""#]).unwrap();
        assert_eq!(bus.held_bytes(), 0);
        call(&bus, &objects, &storage, "store", &[r#""l""#, "[1,2]"]).unwrap();
        call(&bus, &objects, &Target::Root(Root::KeyValueStorage), "delete", &[]).unwrap();
        assert_eq!(bus.held_bytes(), 0, "deleting the storage returns its values");
    }

    #[test]
    fn a_value_named_by_its_representation_is_shared_not_copied() {
        let (bus, objects) = (Bus::new(Duration::from_secs(60), 10, 20), SyncObjects::default());
        let upload = bus
            .hold(RawValue::from_string("[1,2,3,4,5,6,7,8]".into()).unwrap())
            .unwrap();
        let upload = bus.insert(Repr::Value(upload), &Caller::local()).unwrap();
        let mut kwargs = BTreeMap::new();
        kwargs.insert("uuid".to_string(), sent(r#""s""#));
        let pointer = RawValue::from_string(format!(r#"{{"representation_uuid": "{upload}"}}"#)).unwrap();
        kwargs.insert("message".to_string(), bus.resolve(pointer, &Caller::local()));
        let args = Arguments::new(Vec::new(), kwargs);
        call_object(&objects, &bus, &Target::Root(Root::Broadcast), "send", args).unwrap();
        assert_eq!(bus.held_bytes(), 17, "17 bytes, held once");
        bus.release(&upload.to_string(), &Caller::local()).unwrap();
        assert_eq!(bus.held_bytes(), 17, "the slot holds it still");
    }
}
