//! The data the federatedsecure API holds in memory, and the byte budget that bounds it.
//!
//! Values are kept as their JSON text ([`Data`]), never as `Value` trees: with
//! `arbitrary_precision` every number of a tree is a heap string, so a tree costs 5 to 13 times
//! its text. Each `Data` holds a [`Charge`] on the node's one [`Budget`] and is shared (`Arc`) by
//! whatever holds it (representations, task inputs, Broadcast and KeyValueStorage values), so
//! its bytes are counted once and returned when the last holder drops it: expiry, `DELETE`, an
//! overwrite or a task's `start` need no bookkeeping of their own.

use crate::error::Error;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most bytes of data one node holds, and how many it holds now.
pub struct Budget {
    limit: usize,
    held: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// Reserves `bytes` until the returned charge is dropped; `None` if they would pass the limit.
    pub fn charge(self: &Arc<Self>, bytes: usize) -> Option<Charge> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .ok()
            .map(|_| Charge {
                budget: self.clone(),
                bytes,
            })
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Bytes reserved on a budget; dropping the charge returns them.
pub struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A JSON value held as its text, charged to the budget for as long as it lives.
pub struct Data {
    text: Box<RawValue>,
    _charge: Charge,
    /// The computation whose output this is, if it is one (`Bus::hold_result`).
    pub computation: Option<uuid::Uuid>,
}

impl Data {
    /// `charge` must cover `text` (see `Bus::hold`).
    pub fn new(text: Box<RawValue>, charge: Charge) -> Data {
        debug_assert_eq!(charge.bytes, text.get().len());
        Data {
            text,
            _charge: charge,
            computation: None,
        }
    }

    pub fn text(&self) -> &str {
        self.text.get()
    }

    /// The value parsed, for a caller that uses it (a computation's input, an argument).
    pub fn value(&self) -> Result<Value, Error> {
        parse(self.text())
    }
}

/// An argument of a call: its JSON text as the request sent it, or the data representation it
/// named (`{"representation_uuid": U}`), shared rather than copied.
pub enum Json {
    Sent(Box<RawValue>),
    Held(Arc<Data>),
}

impl Json {
    pub fn text(&self) -> &str {
        match self {
            Json::Sent(text) => text.get(),
            Json::Held(data) => data.text(),
        }
    }

    pub fn is_null(&self) -> bool {
        self.text() == "null"
    }

    pub fn value(&self) -> Result<Value, Error> {
        parse(self.text())
    }
}

/// Parses JSON text known to be valid; it can still be nested deeper than a `Value` may be.
fn parse(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::bad_request("invalid_parameter", format!("invalid parameter: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_refused_past_the_limit_and_returned_when_dropped() {
        let budget = Budget::new(10);
        let six = budget.charge(6).unwrap();
        assert!(budget.charge(5).is_none(), "6 + 5 > 10");
        let four = budget.charge(4).unwrap();
        assert_eq!(budget.held(), 10);
        drop(six);
        assert_eq!(budget.held(), 4);
        assert!(budget.charge(usize::MAX).is_none(), "no overflow");
        drop(four);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn shared_data_is_charged_once_until_its_last_holder_drops_it() {
        let budget = Budget::new(100);
        let text = RawValue::from_string("[1, 2.0, 100000000000000000000000000000]".into()).unwrap();
        let data = Arc::new(Data::new(text, budget.charge(40).unwrap()));
        let shared = Json::Held(data.clone());
        assert_eq!(budget.held(), 40);
        assert_eq!(shared.text(), "[1, 2.0, 100000000000000000000000000000]");
        assert_eq!(
            shared.value().unwrap().to_string(),
            "[1,2.0,100000000000000000000000000000]",
            "numbers stay exact (arbitrary_precision works with raw values)"
        );
        drop(data);
        assert_eq!(budget.held(), 40);
        drop(shared);
        assert_eq!(budget.held(), 0);
    }
}
