//! MatrixProduct: the building block that multiplies party 0's matrix X (p×n) by party 1's matrix
//! Y (n×q) over Z_2^256 with a helper's correlated randomness, revealing X·Y and nothing else.
//!
//! Roles by index: 0 and 1 own X and Y, 2 is the helper (a third party of the computation, or a
//! federation member that joins without input), every further party only receives the product.
//! It is a matrix Beaver triple whose random parts travel as seeds:
//!
//! 1. Party 0 draws seeds for U (p×n) and W₀ (p×q), sends E = X − U to party 1 and the two seeds
//!    with its shape to the helper. Party 1 draws a seed for V (n×q), sends F = Y − V to party 0
//!    and its seed and shape to the helper.
//! 2. The helper checks the shapes and sends party 1 W₁ = U·V − W₀ (p×q).
//! 3. Party 0 sends party 1 its share Z₀ = U·F + W₀; party 1 sends party 0 Z₁ = E·Y + W₁. Since
//!    X·Y = (E + U)·Y = E·Y + U·F + U·V, both now hold Z₀ + Z₁ = X·Y, exactly.
//! 4. Party 0 sends the product to the parties beyond the helper, and to a helper that is a party.
//!
//! What each learns. Party 1 sees E, W₁ and Z₀: E is X masked by the uniform U that party 1
//! never sees, W₁ is masked by the uniform W₀, and Z₀ = X·Y − Z₁ follows from the product; so
//! its view is uniform apart from the product and the shapes. Party 0 likewise sees F (masked by
//! V) and Z₁ = X·Y − Z₀. The helper sees seeds drawn independently of X and Y, and the shapes;
//! it gets the product only when it is a party of the computation (then as the plain product,
//! never the shares, which together with its seeds would reveal the inputs). Semi-honest model,
//! helper not colluding with a data owner. Messages: 5 among the owners and the helper, three
//! rounds, plus one per receiving party; the big ones are E (p×n) and F (n×q), 32 bytes a entry.

use crate::matrix::dense::RingMatrix;
use crate::protocol::{Io, Limits, Microprotocol, PartyIndex, Progress, ProtocolError};
use serde::{Deserialize, Serialize};

/// The index of the helper.
pub const HELPER: PartyIndex = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductMessage {
    /// An owner's matrix minus its mask (E from party 0, F from party 1); its shape is the owner's.
    Masked(RingMatrix),
    /// To the helper: an owner's shape and the seeds of its masks (party 0: U and W₀; party 1: V).
    Seeds {
        rows: usize,
        cols: usize,
        mask: [u8; 32],
        share: Option<[u8; 32]>,
    },
    /// From the helper to party 1: W₁ = U·V − W₀.
    Correlation(RingMatrix),
    /// An owner's additive share of the product, to the other owner.
    Share(RingMatrix),
    /// The product, from party 0 to every party that holds no share of it.
    Product(RingMatrix),
}

impl ProductMessage {
    fn name(&self) -> &'static str {
        match self {
            ProductMessage::Masked(_) => "a masked matrix",
            ProductMessage::Seeds { .. } => "mask seeds",
            ProductMessage::Correlation(_) => "a correlation",
            ProductMessage::Share(_) => "a share of the product",
            ProductMessage::Product(_) => "the product",
        }
    }
}

/// One party's part of the product.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixProduct {
    #[serde(flatten)]
    guards: Guards,
    /// The shares are rounded to multiples of 2^grid before they are exchanged (see
    /// [`MatrixProduct::new`]).
    #[serde(default)]
    grid: u32,
    role: Role,
}

/// What a party's part of a product checks besides the protocol itself.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Guards {
    /// Whether the helper is a party of the computation, and so receives the product.
    pub helper_is_party: bool,
    /// Whether this owner goes on when the other's shape lets it solve the product for our
    /// matrix (see [`revealing`]).
    #[serde(default)]
    pub allow_revealing_shapes: bool,
    /// This party's limit on the product's entries, checked once the shapes are known (an
    /// owner's when the other's masked matrix comes, the helper's when both seeds have).
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Role {
    Left {
        /// X until `start` masks it; never kept afterwards.
        input: Option<RingMatrix>,
        seed_u: [u8; 32],
        seed_w: [u8; 32],
        /// Our share, once F is in.
        share: Option<RingMatrix>,
        /// Party 1's share, if it came before F.
        other: Option<RingMatrix>,
        shape: (usize, usize),
    },
    Right {
        /// Y until E is in (E·Y is all we need of it).
        input: Option<RingMatrix>,
        shape: (usize, usize),
        /// E·Y, once E is in.
        masked_product: Option<RingMatrix>,
        correlation: Option<RingMatrix>,
        /// Our share, once sent.
        share: Option<RingMatrix>,
        /// Party 0's share, if it came before ours was complete.
        other: Option<RingMatrix>,
    },
    Helper {
        left: Option<(usize, usize, [u8; 32], [u8; 32])>,
        right: Option<(usize, usize, [u8; 32])>,
        dealt: bool,
    },
    Receiver,
}

/// What a party ends with: the product, or (the helper outside the computation) only the shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductOutput {
    Product(RingMatrix),
    Helped {
        left: (usize, usize),
        right: (usize, usize),
    },
}

/// Refuses, at an owner, shapes whose product would hand the other owner its matrix, unless the
/// parties allowed it: with X (p×n) and Y (n×q), party 0 solves X·Y for Y when p ≥ n (X has full
/// column rank, as a generic X of that shape does), party 1 solves it for X when q ≥ n. Checked
/// when the other's masked matrix shows its shape, before this owner sends its share.
fn revealing(allowed: bool, me: PartyIndex, left: (usize, usize), right: (usize, usize)) -> Result<(), ProtocolError> {
    let (p, n, q) = (left.0, left.1, right.1);
    let other_solves = if me == 0 { q >= n } else { p >= n };
    if allowed || !other_solves {
        return Ok(());
    }
    let (other, ours, theirs) = if me == 0 { (1, "X", q) } else { (0, "Y", p) };
    Err(ProtocolError::Refused {
        code: "revealing_shapes",
        reason: format!(
            "shapes {p}×{n} and {n}×{q} would let party {other} solve the product for {ours}              ({theirs} ≥ {n}); refused unless the parties set allow_revealing_shapes"
        ),
    })
}

/// The error every party reports for incompatible shapes (the reference: "matrix shapes not
/// compatible").
pub fn incompatible(left: (usize, usize), right: (usize, usize)) -> ProtocolError {
    ProtocolError::Failed(format!(
        "matrix shapes not compatible: party 0's matrix is {}×{}, party 1's is {}×{} (the first \
         must have as many columns as the second has rows)",
        left.0, left.1, right.0, right.1
    ))
}

impl MatrixProduct {
    /// Party `me`'s part: parties 0 and 1 pass their matrix, every other party `None`. Before
    /// the owners exchange their shares, party 0 rounds its share down to a multiple of
    /// 2^`grid` and party 1 rounds its up, so the product they both open is X·Y rounded down or
    /// up to that grid (up with probability (X·Y mod 2^grid)/2^grid, from party 0's uniform
    /// share a), and exactly X·Y when it lies on the grid. What each owner can compute from its
    /// own share and the other's rounded one is that product and whether the other share's low
    /// bits crossed its own: nothing finer than the grid (issue 20.3).
    pub fn new(me: PartyIndex, input: Option<RingMatrix>, guards: Guards, grid: u32) -> MatrixProduct {
        let role = match me {
            0 => Role::Left {
                shape: input.as_ref().expect("party 0 has a matrix").shape(),
                input,
                seed_u: [0; 32],
                seed_w: [0; 32],
                share: None,
                other: None,
            },
            1 => Role::Right {
                shape: input.as_ref().expect("party 1 has a matrix").shape(),
                input,
                masked_product: None,
                correlation: None,
                share: None,
                other: None,
            },
            HELPER => Role::Helper {
                left: None,
                right: None,
                dealt: false,
            },
            _ => Role::Receiver,
        };
        MatrixProduct { guards, grid, role }
    }

    fn seed(io: &mut Io<'_, ProductMessage>) -> [u8; 32] {
        let mut seed = [0u8; 32];
        io.rng().fill_bytes(&mut seed);
        seed
    }

    /// Does whatever the messages so far allow, and says whether we are done.
    fn advance(&mut self, io: &mut Io<'_, ProductMessage>) -> Result<Progress<ProductOutput>, ProtocolError> {
        let helper_is_party = self.guards.helper_is_party;
        match &mut self.role {
            Role::Left { share, other, .. } | Role::Right { share, other, .. } => {
                let (Some(share), Some(other)) = (share.as_ref(), other.as_ref()) else {
                    return Ok(Progress::Continue);
                };
                if share.shape() != other.shape() {
                    return Err(ProtocolError::Malformed {
                        from: 1 - io.me(),
                        reason: format!("a share of shape {:?}, ours is {:?}", other.shape(), share.shape()),
                    });
                }
                let product = share.plus(other);
                if io.me() == 0 {
                    let first = if helper_is_party { HELPER } else { HELPER + 1 };
                    for to in first..io.parties() {
                        io.send(to, ProductMessage::Product(product.clone()));
                    }
                }
                Ok(Progress::Done(ProductOutput::Product(product)))
            }
            Role::Helper { left, right, dealt } => {
                let (Some((p, n, seed_u, seed_w)), Some((n2, q, seed_v))) = (*left, *right) else {
                    return Ok(Progress::Continue);
                };
                if n != n2 {
                    return Err(incompatible((p, n), (n2, q)));
                }
                if !*dealt {
                    self.guards.limits.check(p as u64 * q as u64, "the product")?;
                }
                if !*dealt {
                    let v = RingMatrix::from_seed(seed_v, n, q);
                    let uv = RingMatrix::seeded_product(seed_u, p, &v);
                    io.send(1, ProductMessage::Correlation(uv.minus_seeded(seed_w)));
                    *dealt = true;
                }
                if helper_is_party {
                    Ok(Progress::Continue)
                } else {
                    Ok(Progress::Done(ProductOutput::Helped {
                        left: (p, n),
                        right: (n2, q),
                    }))
                }
            }
            Role::Receiver => Ok(Progress::Continue),
        }
    }
}

impl Microprotocol for MatrixProduct {
    type Message = ProductMessage;
    type Output = ProductOutput;

    fn start(&mut self, io: &mut Io<'_, ProductMessage>) -> Result<Progress<ProductOutput>, ProtocolError> {
        match &mut self.role {
            Role::Left {
                input,
                seed_u,
                seed_w,
                shape,
                ..
            } => {
                let x = input.take().expect("start is called once");
                *seed_u = Self::seed(io);
                *seed_w = Self::seed(io);
                io.send(1, ProductMessage::Masked(x.minus_seeded(*seed_u)));
                io.send(
                    HELPER,
                    ProductMessage::Seeds {
                        rows: shape.0,
                        cols: shape.1,
                        mask: *seed_u,
                        share: Some(*seed_w),
                    },
                );
            }
            Role::Right { input, shape, .. } => {
                let seed_v = Self::seed(io);
                let y = input.as_ref().expect("party 1 has a matrix");
                io.send(0, ProductMessage::Masked(y.clone().minus_seeded(seed_v)));
                io.send(
                    HELPER,
                    ProductMessage::Seeds {
                        rows: shape.0,
                        cols: shape.1,
                        mask: seed_v,
                        share: None,
                    },
                );
            }
            Role::Helper { .. } | Role::Receiver => {}
        }
        Ok(Progress::Continue)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: ProductMessage,
        io: &mut Io<'_, ProductMessage>,
    ) -> Result<Progress<ProductOutput>, ProtocolError> {
        let unexpected = |what: &str| ProtocolError::Unexpected {
            from,
            what: what.to_string(),
        };
        match (&mut self.role, from, message) {
            (
                Role::Left {
                    seed_u,
                    seed_w,
                    share: share @ None,
                    shape,
                    ..
                },
                1,
                ProductMessage::Masked(f),
            ) => {
                if f.rows() != shape.1 {
                    return Err(incompatible(*shape, f.shape()));
                }
                revealing(self.guards.allow_revealing_shapes, 0, *shape, f.shape())?;
                self.guards
                    .limits
                    .check(shape.0 as u64 * f.cols() as u64, "the product")?;
                let w0 = RingMatrix::from_seed(*seed_w, shape.0, f.cols());
                let grid = self.grid;
                let z0 = RingMatrix::seeded_product(*seed_u, shape.0, &f)
                    .plus(&w0)
                    .map(|z| z.round_down(grid));
                io.send(1, ProductMessage::Share(z0.clone()));
                *share = Some(z0);
            }
            (
                Role::Right {
                    input: input @ Some(_),
                    shape,
                    masked_product,
                    ..
                },
                0,
                ProductMessage::Masked(e),
            ) => {
                if e.cols() != shape.0 {
                    return Err(incompatible(e.shape(), *shape));
                }
                revealing(self.guards.allow_revealing_shapes, 1, e.shape(), *shape)?;
                self.guards
                    .limits
                    .check(e.rows() as u64 * shape.1 as u64, "the product")?;
                let y = input.take().expect("matched Some");
                *masked_product = Some(e.product(&y));
            }
            (
                Role::Right {
                    correlation: correlation @ None,
                    ..
                },
                HELPER,
                ProductMessage::Correlation(w1),
            ) => *correlation = Some(w1),
            (
                Role::Left {
                    other: other @ None, ..
                },
                1,
                ProductMessage::Share(z),
            )
            | (
                Role::Right {
                    other: other @ None, ..
                },
                0,
                ProductMessage::Share(z),
            ) => *other = Some(z),
            (
                Role::Helper { left: left @ None, .. },
                0,
                ProductMessage::Seeds {
                    rows,
                    cols,
                    mask,
                    share: Some(share),
                },
            ) => *left = Some((rows, cols, mask, share)),
            (
                Role::Helper {
                    right: right @ None, ..
                },
                1,
                ProductMessage::Seeds {
                    rows,
                    cols,
                    mask,
                    share: None,
                },
            ) => *right = Some((rows, cols, mask)),
            (Role::Helper { dealt: true, .. } | Role::Receiver, 0, ProductMessage::Product(product)) => {
                return Ok(Progress::Done(ProductOutput::Product(product)));
            }
            (_, _, message) => return Err(unexpected(message.name())),
        }
        if let Role::Right {
            masked_product: Some(ey),
            correlation: Some(w1),
            share: share @ None,
            ..
        } = &mut self.role
        {
            if ey.shape() != w1.shape() {
                return Err(ProtocolError::Malformed {
                    from: HELPER,
                    reason: format!(
                        "a correlation of shape {:?}, the product is {:?}",
                        w1.shape(),
                        ey.shape()
                    ),
                });
            }
            let grid = self.grid;
            let z1 = ey.plus(w1).map(|z| z.round_up(grid));
            io.send(0, ProductMessage::Share(z1.clone()));
            *share = Some(z1);
        }
        self.advance(io)
    }
}
