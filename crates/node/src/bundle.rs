//! Bundles: the small sealed messages queued for one recipient, sent as one broker message.
//!
//! A batch of computations gives each peer hundreds of small messages at once. Sent one by one,
//! each costs the broker a stored message, a publish acknowledgement, a delivery and a consumer
//! acknowledgement, and the nodes as much again: that, not the engine, bounded throughput. The
//! publisher therefore packs the messages queued for one recipient into one broker message, up to
//! the largest the broker takes, with the header `Fsc-Bundle: <count>`. It never waits to fill
//! one: a lone message goes out alone, exactly as before, so a single computation's latency is
//! unchanged.
//!
//! A bundle adds no trust: every message in it is an envelope authenticated on its own (its
//! computation, sender, recipient and sequence number are in its authenticated header), so the
//! framing needs no tag, and a message that fails to open is dropped alone. The broker learns
//! nothing new either: the headers it could read on separate messages it reads in the bundle.
//!
//! Wire format: for each message, `u32 length (big endian) | envelope`.
//! This module owns the format and which rows travel together; it neither seals nor sends.

use crate::store::OutboxRow;
use std::collections::VecDeque;

/// NATS header marking a bundle; its value is the number of messages in it.
pub const HEADER: &str = "Fsc-Bundle";
/// Bytes of framing per message.
const FRAME: usize = 4;
/// Most messages in one bundle: one bundle is one delivery to the recipient's runtime, which
/// takes at most a couple of thousand messages per transaction.
pub const MAX_MESSAGES: usize = 1024;

/// Takes the next broker message's worth of rows off `queue`: the front row, and, if it fits in
/// `budget` bytes, the rows queued after it for the same recipient that fit too (in their order).
/// A row too large for a bundle goes alone (the publisher splits it into chunks). The other rows
/// keep their order.
pub fn take(queue: &mut VecDeque<OutboxRow>, budget: usize) -> Option<Vec<OutboxRow>> {
    let first = queue.pop_front()?;
    let mut used = FRAME + first.envelope.len();
    if used > budget {
        return Some(vec![first]);
    }
    let mut group = vec![first];
    let mut rest = VecDeque::with_capacity(queue.len());
    while let Some(row) = queue.pop_front() {
        if group.len() == MAX_MESSAGES {
            rest.push_back(row);
            rest.append(queue);
            break;
        }
        let size = FRAME + row.envelope.len();
        if row.recipient == group[0].recipient && used + size <= budget {
            used += size;
            group.push(row);
        } else {
            rest.push_back(row);
        }
    }
    *queue = rest;
    Some(group)
}

/// Whether `rows` ([`take`] gave them) still go as one broker message of at most `budget` bytes.
pub fn fits(rows: &[OutboxRow], budget: usize) -> bool {
    rows.len() == 1 || rows.iter().map(|r| FRAME + r.envelope.len()).sum::<usize>() <= budget
}

/// The payload of a bundle of `rows`.
pub fn pack(rows: &[OutboxRow]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(rows.iter().map(|r| FRAME + r.envelope.len()).sum());
    for row in rows {
        let len = u32::try_from(row.envelope.len()).expect("bundled messages fit in a broker message");
        payload.extend_from_slice(&len.to_be_bytes());
        payload.extend_from_slice(&row.envelope);
    }
    payload
}

/// The envelopes in a bundle's payload, which must hold exactly `count` (its header's value,
/// 2..=[`MAX_MESSAGES`]) and nothing else; `None` if it does not.
pub fn unpack<'a>(payload: &'a [u8], count: &str) -> Option<Vec<&'a [u8]>> {
    let count: usize = count.parse().ok().filter(|n| (2..=MAX_MESSAGES).contains(n))?;
    let mut envelopes = Vec::with_capacity(count);
    let mut rest = payload;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<FRAME>()?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > tail.len() || envelopes.len() == count {
            return None;
        }
        let (envelope, tail) = tail.split_at(len);
        envelopes.push(envelope);
        rest = tail;
    }
    (envelopes.len() == count).then_some(envelopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, recipient: &str, size: usize) -> OutboxRow {
        OutboxRow {
            id,
            computation: format!("c{id}"),
            recipient: recipient.into(),
            seq: 0,
            envelope: vec![id as u8; size],
            created_at: 0,
        }
    }

    fn ids(rows: &[OutboxRow]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_bundle_takes_the_rows_for_the_front_rows_recipient_that_fit() {
        let mut queue: VecDeque<OutboxRow> = [
            row(1, "bob", 10),
            row(2, "carol", 10),
            row(3, "bob", 10),
            row(4, "bob", 30),
            row(5, "bob", 10),
            row(6, "carol", 10),
        ]
        .into();
        // 14 + 14 + 14 = 42 fits in 45; the 34-byte row does not, the next small one does not either.
        let first = take(&mut queue, 45).unwrap();
        assert_eq!(ids(&first), [1, 3, 5]);
        assert_eq!(ids(queue.make_contiguous()), [2, 4, 6]);
        assert_eq!(ids(&take(&mut queue, 45).unwrap()), [2, 6]);
        assert_eq!(ids(&take(&mut queue, 45).unwrap()), [4]);
        assert!(take(&mut queue, 45).is_none());
        assert!(fits(&first, 42) && !fits(&first, 41));
    }

    #[test]
    fn a_row_too_large_for_a_bundle_goes_alone_and_a_bundle_stops_at_its_count() {
        let mut queue: VecDeque<OutboxRow> = [row(1, "bob", 100), row(2, "bob", 1)].into();
        assert_eq!(ids(&take(&mut queue, 50).unwrap()), [1]);
        assert_eq!(ids(&take(&mut queue, 50).unwrap()), [2]);

        let mut queue: VecDeque<OutboxRow> = (0..MAX_MESSAGES as i64 + 3).map(|i| row(i, "bob", 1)).collect();
        assert_eq!(take(&mut queue, usize::MAX).unwrap().len(), MAX_MESSAGES);
        assert_eq!(ids(queue.make_contiguous()), [1024, 1025, 1026]);
    }

    #[test]
    fn unpacking_gives_back_what_was_packed_and_refuses_bad_framing() {
        let rows = [row(1, "bob", 3), row(2, "bob", 0), row(3, "bob", 5)];
        let payload = pack(&rows);
        let envelopes = unpack(&payload, "3").unwrap();
        assert_eq!(
            envelopes,
            rows.iter().map(|r| r.envelope.as_slice()).collect::<Vec<_>>()
        );

        assert!(unpack(&payload, "2").is_none(), "more messages than announced");
        assert!(unpack(&payload, "4").is_none(), "fewer messages than announced");
        assert!(unpack(&payload[..payload.len() - 1], "3").is_none(), "truncated");
        assert!(unpack(&payload[..2], "3").is_none(), "a torn length");
        assert!(unpack(&payload, "x").is_none());
        assert!(
            unpack(&pack(&rows[..1]), "1").is_none(),
            "a lone message is never a bundle"
        );
        let many = pack(
            &(0..MAX_MESSAGES as i64 + 1)
                .map(|i| row(i, "bob", 1))
                .collect::<Vec<_>>(),
        );
        assert!(unpack(&many, &(MAX_MESSAGES + 1).to_string()).is_none());
    }
}
