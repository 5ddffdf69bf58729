//! Runs one computation for all its parties inside one process, delivering messages in a random
//! order: the engine's own test harness, and a reference for what a node must compute. Like a
//! node, it stores every machine (as JSON) between steps and resumes from the stored copy.

use crate::machine::{EngineError, Machine, Spec};
use crate::protocol::PartyIndex;
use rand_core::RngCore;
use serde_json::Value;

/// One message as a party received it.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub from: PartyIndex,
    pub to: PartyIndex,
    pub bytes: Vec<u8>,
}

/// Every party's output, or the first engine error. `rng` supplies both the protocols'
/// randomness and the delivery order. One input per participant (a helper from outside the
/// computation, the last, takes `null`).
pub fn run_all(spec: &Spec, inputs: &[Value], rng: &mut dyn RngCore) -> Result<Vec<Value>, EngineError> {
    run_observed(spec, inputs, rng, &mut |_, _, _| {})
}

/// As [`run_all`], also returning every message in delivery order: what privacy tests inspect.
pub fn run_all_recorded(
    spec: &Spec,
    inputs: &[Value],
    rng: &mut dyn RngCore,
) -> Result<(Vec<Value>, Vec<Delivered>), EngineError> {
    let mut delivered = Vec::new();
    let mut record = |from, to, bytes: &[u8]| {
        delivered.push(Delivered {
            from,
            to,
            bytes: bytes.to_vec(),
        })
    };
    let outputs = run_observed(spec, inputs, rng, &mut record)?;
    Ok((outputs, delivered))
}

/// [`run_all`], showing `observe` every message as it is delivered: `(from, to, bytes)`. Privacy
/// tests record what each party receives with it.
pub fn run_observed(
    spec: &Spec,
    inputs: &[Value],
    rng: &mut dyn RngCore,
    observe: &mut dyn FnMut(PartyIndex, PartyIndex, &[u8]),
) -> Result<Vec<Value>, EngineError> {
    assert_eq!(inputs.len(), spec.participants(), "one input per participant");
    let mut machines = inputs
        .iter()
        .enumerate()
        .map(|(me, input)| spec.machine(me, input))
        .collect::<Result<Vec<_>, _>>()?;
    let mut outputs: Vec<Option<Value>> = vec![None; inputs.len()];
    // (from, to, bytes) of messages in flight
    let mut in_flight: Vec<(PartyIndex, PartyIndex, Vec<u8>)> = Vec::new();
    for (me, machine) in machines.iter_mut().enumerate() {
        let step = machine.start(rng)?;
        in_flight.extend(step.outgoing.into_iter().map(|(to, bytes)| (me, to, bytes)));
        outputs[me] = step.output;
    }
    while !in_flight.is_empty() {
        let pick = (rng.next_u64() % in_flight.len() as u64) as usize;
        let (from, to, bytes) = in_flight.swap_remove(pick);
        observe(from, to, &bytes);
        machines[to] = persisted(&machines[to]);
        let step = machines[to].receive(from, &bytes, rng)?;
        in_flight.extend(step.outgoing.into_iter().map(|(next, bytes)| (to, next, bytes)));
        if let Some(output) = step.output {
            assert!(outputs[to].is_none(), "party {to} finished twice");
            outputs[to] = Some(output);
        }
    }
    Ok(outputs
        .into_iter()
        .enumerate()
        .map(|(party, output)| output.unwrap_or_else(|| panic!("party {party} did not finish")))
        .collect())
}

fn persisted(machine: &Machine) -> Machine {
    let stored = serde_json::to_vec(machine).expect("machines serialise");
    serde_json::from_slice(&stored).expect("stored machines deserialise")
}
