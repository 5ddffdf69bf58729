//! The batched, related-key OPRF of Kolesnikov, Kumaresan, Rosulek and Trieu (KKRT, CCS 2016,
//! eprint 2016/799, figure 2): IKNP OT extension in which the receiver's choice in row j is not a
//! bit but the codeword C(x_j) of a pseudorandom code 512 bits wide.
//!
//! With `WIDTH` base OTs in which the sender chose the bits of s and the receiver offered the
//! keys (k0_c, k1_c), both expand each key into a column of m bits with AES-128 in counter mode.
//! The receiver sends the rows u_j = t0_j ⊕ t1_j ⊕ C(x_j) (t0, t1 the expanded columns, read as
//! rows); the sender, which expanded only k_{s_c}, holds q_j = t_{s}_j ⊕ (u_j ∧ s) =
//! t0_j ⊕ (C(x_j) ∧ s). Then F_j(y) = H(j, q_j ⊕ (C(y) ∧ s)) is a PRF of y keyed by (q_j, s)
//! that the sender can evaluate anywhere and the receiver only at x_j, where it is H(j, t0_j).
//! H is SHA-256 with the row index (KKRT's H(j, ·)), C is the PRF-based code of KKRT §4 with
//! four AES-128 keys chosen by the sender after the receiver's inputs are fixed.
//!
//! Rows are processed in batches of `BATCH_ROWS` on all cores, with the stop flag checked
//! between batches; the bit-matrix transposition is the classic block-swap of 128×128 bits.

use crate::protocol::{ProtocolError, check_stop};
use aes::Aes128;
use aes::cipher::array::Array;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::sync::atomic::AtomicBool;

/// Bits of a codeword, and so base OTs: KKRT's 3.5κ for κ = 128, rounded up to whole AES blocks
/// (as in the published implementations).
pub const WIDTH: usize = 512;

/// Bytes of a row (a codeword, a row of the OT extension matrix).
pub const ROW: usize = WIDTH / 8;

/// A row of the OT extension matrix: bit c is bit c % 8 of byte c / 8.
pub type Row = [u8; ROW];

/// A 128-bit AES key or block.
pub type Block = [u8; 16];

/// Rows per batch of work: a multiple of 128 (one transposition), large enough that a batch
/// outweighs its scheduling, small enough that a stop is seen within milliseconds.
const BATCH_ROWS: usize = 4096;

/// Separates the OPRF's hash from every other use of SHA-256.
const OPRF_DOMAIN: &[u8] = b"fsc/psi/ot/v1/oprf";

fn cipher(key: &Block) -> Aes128 {
    Aes128::new(&Array::from(*key))
}

fn encrypt(cipher: &Aes128, blocks: &mut [Block]) {
    cipher.encrypt_blocks(Array::cast_slice_from_core_mut(blocks));
}

/// AES-128 in counter mode (NIST SP 800-38A): the keystream blocks `E_k(first + i)`, counters
/// big-endian 128-bit integers.
pub fn keystream(cipher: &Aes128, first: u128, out: &mut [Block]) {
    for (i, block) in out.iter_mut().enumerate() {
        *block = first.wrapping_add(i as u128).to_be_bytes();
    }
    encrypt(cipher, out);
}

/// The pseudorandom code: C(x) = AES_k1(x) ‖ AES_k2(x) ‖ AES_k3(x) ‖ AES_k4(x).
pub struct Code([Aes128; 4]);

impl Code {
    pub fn new(keys: &[Block; 4]) -> Code {
        Code(keys.each_ref().map(cipher))
    }

    /// The codewords of `inputs`, into `out` (one row each); `blocks` is scratch space.
    pub fn encode(&self, inputs: &[Block], out: &mut [Row], blocks: &mut Vec<Block>) {
        for (k, cipher) in self.0.iter().enumerate() {
            blocks.clear();
            blocks.extend_from_slice(inputs);
            encrypt(cipher, blocks);
            for (row, block) in out.iter_mut().zip(blocks.iter()) {
                row[16 * k..16 * k + 16].copy_from_slice(block);
            }
        }
    }
}

/// KKRT's H(j, v): SHA-256 of the row index and the 512-bit value, its first 16 bytes.
pub fn oprf_hash(row: u64, value: &Row) -> Block {
    let mut hasher = Sha256::new();
    hasher.update(OPRF_DOMAIN);
    hasher.update(row.to_le_bytes());
    hasher.update(value);
    hasher.finalize()[..16].try_into().expect("16 of 32 bytes")
}

/// Transposes a 128×128 bit matrix in place: bit b of `m[k]` and bit k of `m[b]` trade places.
/// Each stage swaps the off-diagonal halves of every 2j×2j block (Hacker's Delight, §7-3).
pub fn transpose128(m: &mut [u128; 128]) {
    const MASKS: [(usize, u128); 7] = [
        (64, 0x0000_0000_0000_0000_FFFF_FFFF_FFFF_FFFF),
        (32, 0x0000_0000_FFFF_FFFF_0000_0000_FFFF_FFFF),
        (16, 0x0000_FFFF_0000_FFFF_0000_FFFF_0000_FFFF),
        (8, 0x00FF_00FF_00FF_00FF_00FF_00FF_00FF_00FF),
        (4, 0x0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0F0F),
        (2, 0x3333_3333_3333_3333_3333_3333_3333_3333),
        (1, 0x5555_5555_5555_5555_5555_5555_5555_5555),
    ];
    for (j, mask) in MASKS {
        for k in (0..128).filter(|k| k & j == 0) {
            let t = ((m[k] >> j) ^ m[k + j]) & mask;
            m[k] ^= t << j;
            m[k + j] ^= t;
        }
    }
}

/// What one worker reuses from batch to batch, instead of allocating them anew for each of
/// hundreds of batches: a fresh buffer costs the kernel zeroing its pages, as the node's
/// allocator hands freed memory back at once. (The kernel's zeroing stayed about a fifth of
/// the nodes' CPU time in an OT PSI of 2^20 items after this: it is mostly the step-sized
/// buffers, docs/benchmarks.md.)
#[derive(Default)]
struct Scratch {
    /// A batch's expanded rows (t0 at the receiver, t at the sender).
    rows: Vec<Row>,
    codewords: Vec<Row>,
    inputs: Vec<Block>,
    /// The rows j of a batch of evaluations.
    bins: Vec<u32>,
    /// The code's AES blocks.
    blocks: Vec<Block>,
    /// One column's keystream.
    stream: Vec<Block>,
    /// The expanded columns, 128×128-bit squares, before their transposition.
    words: Vec<[[u128; 128]; 4]>,
}

/// `buffer` holding `len` items (their values are overwritten by the caller; `fill` only
/// gives a first allocation its values).
fn sized<T: Clone>(buffer: &mut Vec<T>, len: usize, fill: T) -> &mut [T] {
    buffer.resize(len, fill);
    &mut buffer[..len]
}

/// The rows `first..first + rows.len()` of the matrix whose column c is the counter-mode
/// expansion of key c (bit r of the column is row r's bit c).
fn expand_rows(
    columns: &[Aes128],
    first: usize,
    rows: &mut [Row],
    stream: &mut Vec<Block>,
    words: &mut Vec<[[u128; 128]; 4]>,
) {
    debug_assert!(first % 128 == 0 && columns.len() == WIDTH);
    let blocks = rows.len().div_ceil(128);
    let stream = sized(stream, blocks, [0; 16]);
    let words = sized(words, blocks, [[0; 128]; 4]);
    let mut square = [[0u128; 128]; 4];
    for (c, column) in columns.iter().enumerate() {
        keystream(column, (first / 128) as u128, stream);
        for (b, block) in stream.iter().enumerate() {
            words[b][c / 128][c % 128] = u128::from_le_bytes(*block);
        }
    }
    for (b, chunk) in rows.chunks_mut(128).enumerate() {
        for (q, square) in square.iter_mut().enumerate() {
            *square = words[b][q];
            transpose128(square);
        }
        for (r, row) in chunk.iter_mut().enumerate() {
            for (q, square) in square.iter().enumerate() {
                row[16 * q..16 * q + 16].copy_from_slice(&square[r].to_le_bytes());
            }
        }
    }
}

fn xor_into(target: &mut Row, other: &Row) {
    target.iter_mut().zip(other).for_each(|(t, o)| *t ^= o);
}

/// The receiver's part: the rows u_j = t0_j ⊕ t1_j ⊕ C(x_j) to send, and its OPRF outputs
/// H(j, t0_j), for the inputs x_j of every row. `keys` are its base-OT pairs (k0_c, k1_c).
pub fn receive(
    keys: &[(Block, Block)],
    code: &Code,
    inputs: &[Block],
    stop: &AtomicBool,
) -> Result<(Vec<Row>, Vec<Block>), ProtocolError> {
    assert_eq!(keys.len(), WIDTH, "one base OT per column");
    let zero: Vec<Aes128> = keys.iter().map(|(k0, _)| cipher(k0)).collect();
    let one: Vec<Aes128> = keys.iter().map(|(_, k1)| cipher(k1)).collect();
    let mut rows = vec![[0u8; ROW]; inputs.len()];
    let mut outputs = vec![[0u8; 16]; inputs.len()];
    rows.par_chunks_mut(BATCH_ROWS)
        .zip(outputs.par_chunks_mut(BATCH_ROWS))
        .zip(inputs.par_chunks(BATCH_ROWS))
        .enumerate()
        .try_for_each_init(Scratch::default, |scratch, (batch, ((rows, outputs), inputs))| {
            check_stop(stop)?;
            let first = batch * BATCH_ROWS;
            let Scratch {
                rows: t0,
                codewords,
                blocks,
                stream,
                words,
                ..
            } = scratch;
            let t0 = sized(t0, rows.len(), [0; ROW]);
            expand_rows(&zero, first, t0, stream, words);
            expand_rows(&one, first, rows, stream, words);
            let codewords = sized(codewords, rows.len(), [0; ROW]);
            code.encode(inputs, codewords, blocks);
            for (j, ((row, t0), codeword)) in rows.iter_mut().zip(&*t0).zip(&*codewords).enumerate() {
                xor_into(row, t0);
                xor_into(row, codeword);
                outputs[j] = oprf_hash((first + j) as u64, t0);
            }
            Ok(())
        })?;
    Ok((rows, outputs))
}

/// The sender's part: turns the receiver's rows u_j into its keys q_j = t_s_j ⊕ (u_j ∧ s), in
/// place. `keys` are the base-OT keys it received, k_{s_c} for its choice bits s.
pub fn send(keys: &[Block], s: &Row, rows: &mut [Row], stop: &AtomicBool) -> Result<(), ProtocolError> {
    assert_eq!(keys.len(), WIDTH, "one base OT per column");
    let chosen: Vec<Aes128> = keys.iter().map(cipher).collect();
    rows.par_chunks_mut(BATCH_ROWS)
        .enumerate()
        .try_for_each_init(Scratch::default, |scratch, (batch, rows)| {
            check_stop(stop)?;
            let Scratch {
                rows: t, stream, words, ..
            } = scratch;
            let t = sized(t, rows.len(), [0; ROW]);
            expand_rows(&chosen, batch * BATCH_ROWS, t, stream, words);
            for (row, t) in rows.iter_mut().zip(&*t) {
                for ((u, t), s) in row.iter_mut().zip(t).zip(s) {
                    *u = t ^ (*u & s);
                }
            }
            Ok(())
        })
}

/// The sender's OPRF outputs F_j(y) = H(j, q_j ⊕ (C(y) ∧ s)) for the `count` points (j, y) that
/// `point` gives by index, each in the form `output` makes of it: the caller need build neither
/// the points nor a second vector of outputs in memory.
pub fn evaluate<T: Copy + Default + Send>(
    keys: &[Row],
    s: &Row,
    code: &Code,
    count: usize,
    point: impl Fn(usize) -> (u32, Block) + Sync,
    output: impl Fn(Block) -> T + Sync,
    stop: &AtomicBool,
) -> Result<Vec<T>, ProtocolError> {
    let mut outputs = vec![T::default(); count];
    outputs.par_chunks_mut(BATCH_ROWS).enumerate().try_for_each_init(
        Scratch::default,
        |scratch, (batch, outputs)| {
            check_stop(stop)?;
            let first = batch * BATCH_ROWS;
            let Scratch {
                codewords,
                inputs,
                blocks,
                bins,
                ..
            } = scratch;
            inputs.clear();
            bins.clear();
            for k in first..first + outputs.len() {
                let (j, y) = point(k);
                inputs.push(y);
                bins.push(j);
            }
            let codewords = sized(codewords, outputs.len(), [0; ROW]);
            code.encode(inputs, codewords, blocks);
            for ((out, &j), codeword) in outputs.iter_mut().zip(&*bins).zip(codewords) {
                for ((c, q), s) in codeword.iter_mut().zip(&keys[j as usize]).zip(s) {
                    *c = q ^ (*c & s);
                }
                *out = output(oprf_hash(u64::from(j), codeword));
            }
            Ok(())
        },
    )?;
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::never;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn block(text: &str) -> Block {
        hex(text).try_into().unwrap()
    }

    /// FIPS 197, appendix C.1 (AES-128), through the code's first key.
    #[test]
    fn aes_matches_fips_197() {
        let key = block("000102030405060708090a0b0c0d0e0f");
        let code = Code::new(&[key; 4]);
        let mut out = [[0u8; ROW]; 1];
        code.encode(&[block("00112233445566778899aabbccddeeff")], &mut out, &mut Vec::new());
        assert_eq!(out[0][..16], hex("69c4e0d86a7b0430d8cdb78070b4c55a")[..]);
        assert_eq!(out[0][48..], hex("69c4e0d86a7b0430d8cdb78070b4c55a")[..]);
    }

    /// NIST SP 800-38A, F.5.1 (CTR-AES128.Encrypt): the keystream is the plaintext XOR the
    /// ciphertext of the published example.
    #[test]
    fn counter_mode_matches_sp_800_38a() {
        let key = block("2b7e151628aed2a6abf7158809cf4f3c");
        let first = u128::from_be_bytes(block("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"));
        let mut stream = [[0u8; 16]; 4];
        keystream(&cipher(&key), first, &mut stream);
        let plaintext = [
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710",
        ];
        let ciphertext = [
            "874d6191b620e3261bef6864990db6ce",
            "9806f66b7970fdff8617187bb9fffdff",
            "5ae4df3edbd5d35e5b4f09020db03eab",
            "1e031dda2fbe03d1792170a0f3009cee",
        ];
        for ((stream, p), c) in stream.iter().zip(plaintext).zip(ciphertext) {
            let expected: Vec<u8> = hex(p).iter().zip(hex(c)).map(|(p, c)| p ^ c).collect();
            assert_eq!(stream[..], expected[..]);
        }
    }

    #[test]
    fn transposition_moves_every_bit() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut m = [0u128; 128];
        m.iter_mut()
            .for_each(|w| *w = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()));
        let before = m;
        transpose128(&mut m);
        for (k, row) in m.iter().enumerate() {
            for (b, column) in before.iter().enumerate() {
                assert_eq!(row >> b & 1, column >> k & 1);
            }
        }
    }

    fn bit(bytes: &[u8], i: usize) -> u8 {
        bytes[i / 8] >> (i % 8) & 1
    }

    /// The batched, transposed computation against the paper's equations computed bit by bit:
    /// column c of T0 (T1) is the counter-mode stream of k0_c (k1_c), u_j = t0_j ⊕ t1_j ⊕ C(x_j),
    /// q_j = t_s_j ⊕ (u_j ∧ s); the receiver's output at x_j equals the sender's F_j(x_j), and
    /// F_j(y) of any other y differs.
    #[test]
    fn the_oprf_matches_the_paper_bit_by_bit() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut random_block = || {
            let mut b = [0u8; 16];
            rng.fill_bytes(&mut b);
            b
        };
        let keys: Vec<(Block, Block)> = (0..WIDTH).map(|_| (random_block(), random_block())).collect();
        let code = Code::new(&[random_block(), random_block(), random_block(), random_block()]);
        let m: usize = 4096 + 300;
        let inputs: Vec<Block> = (0..m).map(|_| random_block()).collect();
        let s: Row = core::array::from_fn(|i| keys[i].0[0] ^ keys[i].1[1]);
        let (u, outputs) = receive(&keys, &code, &inputs, never()).unwrap();

        let column = |key: &Block| {
            let mut stream = vec![[0u8; 16]; m.div_ceil(128)];
            keystream(&cipher(key), 0, &mut stream);
            stream.concat()
        };
        let t0: Vec<Vec<u8>> = keys.iter().map(|(k0, _)| column(k0)).collect();
        let t1: Vec<Vec<u8>> = keys.iter().map(|(_, k1)| column(k1)).collect();
        for j in [0, 1, 127, 128, 4095, 4096, m - 1] {
            let mut codeword = [[0u8; ROW]];
            code.encode(&inputs[j..j + 1], &mut codeword, &mut Vec::new());
            let mut t0_j = [0u8; ROW];
            for c in 0..WIDTH {
                let expected = bit(&t0[c], j) ^ bit(&t1[c], j) ^ bit(&codeword[0], c);
                assert_eq!(bit(&u[j], c), expected, "u[{j}] bit {c}");
                t0_j[c / 8] |= bit(&t0[c], j) << (c % 8);
            }
            assert_eq!(outputs[j], oprf_hash(j as u64, &t0_j));
        }

        let chosen: Vec<Block> = keys
            .iter()
            .enumerate()
            .map(|(c, (k0, k1))| if bit(&s, c) == 1 { *k1 } else { *k0 })
            .collect();
        let mut q = u.clone();
        send(&chosen, &s, &mut q, never()).unwrap();
        let points: Vec<(u32, Block)> = (0..m as u32).map(|j| (j, inputs[j as usize])).collect();
        assert_eq!(
            evaluate(&q, &s, &code, m, |k| points[k], |o| o, never()).unwrap(),
            outputs
        );
        let others: Vec<(u32, Block)> = (0..m as u32).map(|j| (j, inputs[(j as usize + 1) % m])).collect();
        let wrong = evaluate(&q, &s, &code, m, |k| others[k], |o| o, never()).unwrap();
        assert!(wrong.iter().zip(&outputs).all(|(w, o)| w != o));
        let stopped = AtomicBool::new(true);
        assert!(matches!(
            receive(&keys, &code, &inputs, &stopped),
            Err(ProtocolError::Stopped)
        ));
    }
}
