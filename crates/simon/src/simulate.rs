//! Runs one computation for all its parties inside one process, delivering messages in a random
//! order: the engine's own test harness, and a reference for what a node must compute. Like a
//! node, it stores every machine (as JSON) between steps and resumes from the stored copy; the
//! parties' mask seeds are dealt from the RNG, where a node derives them from its keys.

use crate::input::Input;
use crate::machine::{EngineError, Machine, Spec};
use crate::masks::Masks;
use crate::protocol::PartyIndex;
use rand_core::RngCore;
use serde_json::{Value, json};

/// Every party's output, or the first engine error. `rng` supplies both the protocols'
/// randomness and the delivery order. One input per participant (a helper from outside the
/// computation, the last, takes `null`).
pub fn run_all(spec: &Spec, inputs: &[Value], rng: &mut dyn RngCore) -> Result<Vec<Value>, EngineError> {
    run_recorded(spec, inputs, rng).map(|transcript| transcript.outputs)
}

/// What a run left: every party's output, every message each party received (sender and bytes,
/// in delivery order) and every party's final machine, for tests of what a party can learn.
pub struct Transcript {
    pub outputs: Vec<Value>,
    pub received: Vec<Vec<(PartyIndex, Vec<u8>)>>,
    pub machines: Vec<Machine>,
}

impl Transcript {
    /// Every message as `(from, to, bytes)`, party by party in delivery order.
    pub fn deliveries(&self) -> impl Iterator<Item = (PartyIndex, PartyIndex, &[u8])> {
        self.received
            .iter()
            .enumerate()
            .flat_map(|(to, messages)| messages.iter().map(move |(from, bytes)| (*from, to, bytes.as_slice())))
    }

    /// What the broker sees of the run: `(from, to, length)` of every message, sorted.
    pub fn lengths(&self) -> Vec<(PartyIndex, PartyIndex, usize)> {
        let mut lengths: Vec<_> = self
            .deliveries()
            .map(|(from, to, bytes)| (from, to, bytes.len()))
            .collect();
        lengths.sort();
        lengths
    }
}

/// [`run_all`], keeping the transcript.
pub fn run_recorded(spec: &Spec, inputs: &[Value], rng: &mut dyn RngCore) -> Result<Transcript, EngineError> {
    assert_eq!(inputs.len(), spec.participants(), "one input per participant");
    let machines = inputs
        .iter()
        .enumerate()
        .map(|(me, input)| spec.machine(me, input))
        .collect::<Result<Vec<_>, _>>()?;
    run_machines(machines, rng)
}

/// [`run_all`] from [`Input`]s, as a node passes them ([`Spec::machine_for`]).
pub fn run_inputs(spec: &Spec, inputs: &[Input], rng: &mut dyn RngCore) -> Result<Vec<Value>, EngineError> {
    assert_eq!(inputs.len(), spec.participants(), "one input per participant");
    let machines = inputs
        .iter()
        .enumerate()
        .map(|(me, input)| spec.machine_for(me, input))
        .collect::<Result<Vec<_>, _>>()?;
    run_machines(machines, rng).map(|transcript| transcript.outputs)
}

/// Runs the parties' machines to their outputs.
fn run_machines(mut machines: Vec<Machine>, rng: &mut dyn RngCore) -> Result<Transcript, EngineError> {
    let parties = machines.len();
    let masks = Masks::dealt(parties, rng);
    let mut outputs: Vec<Option<Value>> = vec![None; parties];
    let mut received = vec![Vec::new(); parties];
    // (from, to, bytes) of messages in flight
    let mut in_flight: Vec<(PartyIndex, PartyIndex, Vec<u8>)> = Vec::new();
    for (me, machine) in machines.iter_mut().enumerate() {
        let step = machine.start(rng, &masks[me])?;
        in_flight.extend(step.outgoing.into_iter().map(|(to, bytes)| (me, to, bytes)));
        outputs[me] = step.output;
    }
    while !in_flight.is_empty() {
        let pick = (rng.next_u64() % in_flight.len() as u64) as usize;
        let (from, to, bytes) = in_flight.swap_remove(pick);
        machines[to] = persisted(&machines[to]);
        let step = machines[to].receive(from, &bytes, rng, &masks[to])?;
        received[to].push((from, bytes));
        in_flight.extend(step.outgoing.into_iter().map(|(next, bytes)| (to, next, bytes)));
        if let Some(output) = step.output {
            assert!(outputs[to].is_none(), "party {to} finished twice");
            outputs[to] = Some(output);
        }
    }
    let outputs = outputs
        .into_iter()
        .enumerate()
        .map(|(party, output)| output.unwrap_or_else(|| panic!("party {party} did not finish")))
        .collect();
    Ok(Transcript {
        outputs,
        received,
        machines,
    })
}

/// `machine` as a node stores and loads it: its state, and its bulk apart.
fn persisted(machine: &Machine) -> Machine {
    let stored = serde_json::to_vec(machine).expect("machines serialise");
    let mut loaded: Machine = serde_json::from_slice(&stored).expect("stored machines deserialise");
    if let Some(bulk) = machine.bulk() {
        loaded.restore_bulk(&bulk).expect("a stored bulk restores");
    }
    assert!(!loaded.lacks_bulk(), "a machine with a bulk gives it");
    loaded
}

/// PSI inputs for tests and benchmarks (fsc-bench, the OT PSI timing example): `parties` lists
/// of `items` strings each (as one list of lists), the first `shared` of them in every list.
pub fn psi_sets(parties: usize, items: usize, shared: usize) -> Vec<Value> {
    (0..parties)
        .map(|p| {
            let list: Vec<String> = (0..items)
                .map(|i| {
                    if i < shared {
                        format!("shared-{i}")
                    } else {
                        format!("p{p}-{i}")
                    }
                })
                .collect();
            json!([list])
        })
        .collect()
}
