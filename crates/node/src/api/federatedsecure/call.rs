//! Calling methods of federatedsecure objects: Python-style argument binding, and the Sync and
//! Util root objects (`Barrier`, `Broadcast`, `KeyValueStorage`), which keep small, bounded state
//! in memory. SIMON's methods live in `simon`.

use super::bus::{Repr, Root, Target};
use super::simon::Simon;
use crate::caller::Caller;
use crate::error::Error;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Most barriers, broadcast slots, storages, and keys per storage, each.
const MAX_ITEMS: usize = 10_000;
/// Largest value a broadcast slot or a key may hold (bytes of JSON).
const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// A call's arguments: positional first, then by keyword, as Python binds them.
pub struct Arguments {
    args: Vec<Option<Value>>,
    kwargs: Map<String, Value>,
}

impl Arguments {
    pub fn new(args: Vec<Value>, kwargs: Map<String, Value>) -> Arguments {
        Arguments {
            args: args.into_iter().map(Some).collect(),
            kwargs,
        }
    }

    /// The argument `name` (or the positional one at `position`), if given.
    pub fn optional(&mut self, name: &str, position: usize) -> Option<Value> {
        self.args
            .get_mut(position)
            .and_then(Option::take)
            .or_else(|| self.kwargs.remove(name))
    }

    pub fn required(&mut self, name: &str, position: usize) -> Result<Value, Error> {
        self.optional(name, position)
            .ok_or_else(|| Error::bad_request("missing_parameter", format!("missing parameter: {name}")))
    }

    pub fn string(&mut self, name: &str, position: usize) -> Result<String, Error> {
        match self.required(name, position)? {
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

/// The state of the Sync and Util objects of one node.
#[derive(Default)]
pub struct SyncObjects {
    barriers: Mutex<HashMap<String, Barrier>>,
    broadcasts: Mutex<HashMap<String, Value>>,
    storages: Mutex<HashMap<String, HashMap<String, Value>>>,
}

/// Calls `method` of `target`; `Ok(None)` is the original's `{"type": "none"}`.
pub async fn call(
    simon: &Simon,
    objects: &SyncObjects,
    target: &Target,
    method: &str,
    mut args: Arguments,
    caller: &Caller,
) -> Result<Option<Repr>, Error> {
    match (target, method) {
        (Target::Root(Root::Simon), "compute") => simon.compute(args, caller).await,
        (Target::Root(Root::Simon), "create_task") => simon.create_task(args),
        (Target::Root(Root::Simon), "join_task") => simon.join_task(args),
        (Target::Task(task), method) => simon.call_task(task, method, args, caller).await,

        (Target::Root(Root::Barrier), "create") => {
            let id = key(args.required("uuid", 0)?);
            args.finish()?;
            let mut barriers = objects.barriers.lock().expect("barriers lock");
            bounded(&*barriers, &id)?;
            barriers.entry(id.clone()).or_default();
            Ok(Some(Repr::BarrierInstance(id)))
        }
        (Target::Root(Root::Barrier), "delete") => {
            let id = key(args.required("uuid", 0)?);
            args.finish()?;
            objects.barriers.lock().expect("barriers lock").remove(&id);
            Ok(None)
        }
        (Target::BarrierInstance(id), method) => {
            let party = match method {
                "arrive" | "depart" => Some(key(args.required("party", 0)?)),
                _ => None,
            };
            args.finish()?;
            let mut barriers = objects.barriers.lock().expect("barriers lock");
            let barrier = barriers.entry(id.clone()).or_default();
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
                ("arrived", _) => Some(Repr::Value(barrier.arrived.len().into())),
                ("departed", _) => Some(Repr::Value(barrier.departed.len().into())),
                ("reset", _) => {
                    barrier.arrived.clear();
                    None
                }
                _ => return Err(not_available(method)),
            })
        }

        (Target::Root(Root::Broadcast), method) => {
            let id = key(args.required("uuid", 0)?);
            let message = if method == "send" {
                Some(args.required("message", 1)?)
            } else {
                None
            };
            args.finish()?;
            let mut slots = objects.broadcasts.lock().expect("broadcasts lock");
            match method {
                "create" | "send" => {
                    bounded(&*slots, &id)?;
                    let message = message.unwrap_or(Value::Null);
                    check_size(&message)?;
                    slots.insert(id, message);
                    Ok(None)
                }
                "receive" => Ok(slots.get(&id).filter(|m| !m.is_null()).map(|m| Repr::Value(m.clone()))),
                "delete" => {
                    slots.remove(&id);
                    Ok(None)
                }
                _ => Err(not_available(method)),
            }
        }

        (Target::Root(Root::KeyValueStorage), method @ ("create" | "delete")) => {
            let name = args.optional("storage", 0).map_or_else(|| "default".to_string(), key);
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
            let item = key(args.required("key", 0)?);
            let value = if method == "store" {
                Some(args.required("value", 1)?)
            } else {
                None
            };
            args.finish()?;
            let mut storages = objects.storages.lock().expect("storages lock");
            let storage = storages.entry(name.clone()).or_default();
            match method {
                "store" => {
                    bounded(storage, &item)?;
                    let value = value.unwrap_or(Value::Null);
                    check_size(&value)?;
                    storage.insert(item, value);
                    Ok(None)
                }
                "retrieve" => Ok(storage
                    .get(&item)
                    .filter(|v| !v.is_null())
                    .map(|v| Repr::Value(v.clone()))),
                "exists" => Ok(Some(Repr::Value(storage.contains_key(&item).into()))),
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

fn check_size(value: &Value) -> Result<(), Error> {
    if value.to_string().len() > MAX_VALUE_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "values are limited to {MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok(())
}
