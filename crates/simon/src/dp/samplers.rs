//! Exact samplers of integer noise: Bernoulli(exp(−γ)) for rational γ, the discrete Laplace
//! and the discrete Gaussian distributions, after Canonne, Kamath and Steinke, "The Discrete
//! Gaussian for Differential Privacy" (NeurIPS 2020), Algorithms 1–3.
//!
//! Every step is integer arithmetic on big integers and uniform draws from the RNG handed in:
//! no floating point anywhere on the sampling path, so the output distribution is exactly the
//! one the privacy proof assumes (floating-point Laplace samplers leak through the gaps and the
//! rounding of doubles: Mironov, "On significance of the least significant bits for
//! differential privacy", CCS 2012). This module has no `f64` in it, and a test reads the
//! source to keep it so (`no_floating_point_in_the_samplers`).
//!
//! A rational is passed as (numerator, denominator) pairs of [`BigUint`]s, never normalised:
//! nothing here needs lowest terms, and gcds would cost more than the sampling.

use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_traits::{One, ToPrimitive, Zero};
use rand_core::RngCore;

/// A uniform integer in `[0, m)`, `m > 0`: rejection from the smallest power of two above m
/// (fewer than two tries on average), so no modulo bias.
pub fn uniform_below(m: &BigUint, rng: &mut dyn RngCore) -> BigUint {
    assert!(!m.is_zero(), "a range with no integer");
    if let Some(small) = m.to_u128() {
        return BigUint::from(uniform_below_u128(small, rng));
    }
    let bits = m.bits();
    let bytes = bits.div_ceil(8) as usize;
    let excess = (bytes as u64 * 8 - bits) as u32;
    let mut buffer = vec![0u8; bytes];
    loop {
        rng.fill_bytes(&mut buffer);
        // Clear the bits above m's top bit (buffer is little-endian: the last byte is the top).
        if let Some(top) = buffer.last_mut() {
            *top &= 0xffu8 >> excess;
        }
        let candidate = BigUint::from_bytes_le(&buffer);
        if &candidate < m {
            return candidate;
        }
    }
}

/// [`uniform_below`] without allocation, for the common small ranges: the same rejection.
fn uniform_below_u128(m: u128, rng: &mut dyn RngCore) -> u128 {
    let mask = u128::MAX >> (m - 1).leading_zeros().min(127);
    loop {
        let candidate = ((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())) & mask;
        if candidate < m {
            return candidate;
        }
    }
}

/// Bernoulli(num/den), `num ≤ den`, `den > 0`.
pub fn bernoulli(num: &BigUint, den: &BigUint, rng: &mut dyn RngCore) -> bool {
    debug_assert!(num <= den, "a probability above one");
    &uniform_below(den, rng) < num
}

/// Bernoulli(exp(−num/den)), `den > 0` (CKS Algorithm 1). For γ ≤ 1: count the run of successes
/// of Bernoulli(γ/k), k = 1, 2, …; its length is odd with probability exactly exp(−γ) (the
/// alternating series of e^−γ). For γ > 1: exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)), each factor a
/// draw of the first case, stopping at the first failure.
pub fn bernoulli_exp(num: &BigUint, den: &BigUint, rng: &mut dyn RngCore) -> bool {
    assert!(!den.is_zero(), "a rational with a zero denominator");
    if let (Some(n), Some(d)) = (num.to_u128(), den.to_u128()) {
        return bernoulli_exp_u128(n, d, rng);
    }
    if num <= den {
        return run_of_successes(num, den, BigUint::one(), rng);
    }
    let (whole, rest) = num.div_rem(den);
    let mut i = BigUint::zero();
    while i < whole {
        if !bernoulli_exp_u128(1, 1, rng) {
            return false;
        }
        i += 1u32;
    }
    bernoulli_exp(&rest, den, rng)
}

/// The γ ≤ 1 case of [`bernoulli_exp`] from the k-th trial on (the earlier ones succeeded).
fn run_of_successes(num: &BigUint, den: &BigUint, mut k: BigUint, rng: &mut dyn RngCore) -> bool {
    loop {
        // Bernoulli(γ/k) = Bernoulli(num / (den·k)).
        if !bernoulli(num, &(den * &k), rng) {
            return k.is_odd();
        }
        k += 1u32;
    }
}

/// [`bernoulli_exp`] in machine integers: the same draws, without allocation. Where `den·k` would
/// not fit, the run goes on with big integers from that k (going on, not starting again, keeps
/// the distribution exact).
fn bernoulli_exp_u128(num: u128, den: u128, rng: &mut dyn RngCore) -> bool {
    if num > den {
        for _ in 0..num / den {
            if !bernoulli_exp_u128(1, 1, rng) {
                return false;
            }
        }
        return bernoulli_exp_u128(num % den, den, rng);
    }
    let mut k: u128 = 1;
    loop {
        let Some(scaled) = den.checked_mul(k) else {
            return run_of_successes(&BigUint::from(num), &BigUint::from(den), BigUint::from(k), rng);
        };
        if uniform_below_u128(scaled, rng) >= num {
            return k % 2 == 1;
        }
        k += 1;
    }
}

/// A draw of the discrete Laplace distribution of scale `t/s` (`s, t ≥ 1`; CKS Algorithm 2):
/// P[X = x] = (e^{s/t} − 1)/(e^{s/t} + 1) · e^{−|x|·s/t} for every integer x.
///
/// How: X' = U + t·V with U uniform in [0, t) kept with probability exp(−U/t), and V geometric
/// with P[V = v] ∝ e^−v, is geometric with parameter e^{−1/t}; ⌊X'/s⌋ is geometric with parameter
/// e^{−s/t}; a random sign, rejecting "−0" so that zero is not counted twice, makes it two-sided.
pub fn discrete_laplace(s: &BigUint, t: &BigUint, rng: &mut dyn RngCore) -> BigInt {
    assert!(
        !s.is_zero() && !t.is_zero(),
        "a discrete Laplace scale t/s needs s, t ≥ 1"
    );
    if let (Some(s), Some(t)) = (s.to_u64(), t.to_u64()) {
        return BigInt::from(discrete_laplace_u64(s, t, rng));
    }
    let one = BigUint::one();
    loop {
        let u = uniform_below(t, rng);
        if !bernoulli_exp(&u, t, rng) {
            continue;
        }
        let mut v = BigUint::zero();
        while bernoulli_exp(&one, &one, rng) {
            v += 1u32;
        }
        let y = (u + t * v) / s;
        let negative = bernoulli(&one, &BigUint::from(2u32), rng);
        if negative && y.is_zero() {
            continue;
        }
        let y = BigInt::from(y);
        return if negative { -y } else { y };
    }
}

/// [`discrete_laplace`] in machine integers, the same draws: s, t < 2^64, so U + t·V fits 128
/// bits for every V below 2^64 (a geometric count of parameter e^−1 reaches 2^64 with
/// probability e^(−2^64): never).
fn discrete_laplace_u64(s: u64, t: u64, rng: &mut dyn RngCore) -> i128 {
    let (s, t) = (u128::from(s), u128::from(t));
    loop {
        let u = uniform_below_u128(t, rng);
        if !bernoulli_exp_u128(u, t, rng) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp_u128(1, 1, rng) {
            v += 1;
        }
        let x = t
            .checked_mul(v)
            .and_then(|tv| tv.checked_add(u))
            .expect("a geometric count below 2^64");
        let y = x / s;
        let negative = uniform_below_u128(2, rng) == 1;
        if negative && y == 0 {
            continue;
        }
        let y = i128::try_from(y).expect("below 2^127");
        return if negative { -y } else { y };
    }
}

/// A draw of the discrete Gaussian N_Z(0, σ²), σ² = `num/den` > 0 (CKS Algorithm 3):
/// P[X = x] ∝ e^{−x²/(2σ²)} for every integer x.
///
/// How: propose Y from the discrete Laplace of scale t = ⌊σ⌋ + 1 and accept it with probability
/// exp(−(|Y| − σ²/t)² / (2σ²)); the ratio of the two densities, up to a constant, is exactly that,
/// and with this t fewer than two proposals are needed on average (CKS §5.3).
pub fn discrete_gaussian(num: &BigUint, den: &BigUint, rng: &mut dyn RngCore) -> BigInt {
    assert!(!num.is_zero() && !den.is_zero(), "a discrete Gaussian needs σ² > 0");
    // ⌊σ⌋ = ⌊√⌊σ²⌋⌋ (the floor of a square root only depends on the floor of its argument).
    let t = (num / den).sqrt() + 1u32;
    let one = BigUint::one();
    // With σ² = num/den: (|Y| − σ²/t)² / (2σ²) = (|Y|·den·t − num)² / (2·num·den·t²).
    let gamma_den = BigUint::from(2u32) * num * den * &t * &t;
    loop {
        let y = discrete_laplace(&one, &t, rng);
        let magnitude = y.magnitude() * den * &t;
        let gap = if &magnitude >= num {
            magnitude - num
        } else {
            num - magnitude
        };
        if bernoulli_exp(&(&gap * &gap), &gamma_den, rng) {
            return y;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::collections::BTreeMap;

    fn big(value: u64) -> BigUint {
        BigUint::from(value)
    }

    /// Pearson's statistic of `draws` against the probabilities `pmf(x)` over the integers:
    /// cells `−cut..=cut`, the outermost two holding their tails. Returns (statistic, degrees of
    /// freedom). Every cell must expect at least five draws.
    pub fn chi_square(draws: &[i64], cut: i64, pmf: impl Fn(i64) -> f64) -> (f64, usize) {
        let mut observed: BTreeMap<i64, u64> = BTreeMap::new();
        for &x in draws {
            *observed.entry(x.clamp(-cut, cut)).or_default() += 1;
        }
        let inner: f64 = (-cut + 1..cut).map(&pmf).sum();
        let tail = (1.0 - inner) / 2.0;
        let total = draws.len() as f64;
        let mut statistic = 0.0;
        let mut cells = 0;
        for x in -cut..=cut {
            let p = if x.abs() == cut { tail } else { pmf(x) };
            let expected = p * total;
            assert!(
                expected >= 5.0,
                "cell {x} expects {expected} draws: choose a smaller cut"
            );
            let o = *observed.get(&x).unwrap_or(&0) as f64;
            statistic += (o - expected).powi(2) / expected;
            cells += 1;
        }
        (statistic, cells - 1)
    }

    /// Far beyond any plausible value of a chi-square of `df` degrees of freedom (about 6 standard
    /// deviations above its mean): the seeds are fixed, so this never flakes, and a wrong sampler
    /// (a scale off by a few percent, a doubled zero) lands far above it with 10^5 draws.
    pub fn acceptable(statistic: f64, df: usize) -> bool {
        statistic < df as f64 + 6.0 * (2.0 * df as f64).sqrt()
    }

    const DRAWS: usize = 100_000;

    #[test]
    fn bernoulli_exp_has_probability_exp_minus_gamma() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for (num, den) in [(0u64, 1u64), (1, 3), (1, 1), (5, 2), (7, 3)] {
            let hits = (0..DRAWS)
                .filter(|_| bernoulli_exp(&big(num), &big(den), &mut rng))
                .count() as f64;
            let p = (-(num as f64) / den as f64).exp();
            let sd = (p * (1.0 - p) / DRAWS as f64).sqrt().max(1e-9);
            assert!(
                (hits / DRAWS as f64 - p).abs() < 5.0 * sd + 1e-12,
                "γ = {num}/{den}: {hits} hits, expected {p}"
            );
        }
    }

    #[test]
    fn uniform_below_is_uniform() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let m = big(10);
        let draws: Vec<i64> = (0..DRAWS)
            .map(|_| i64::try_from(uniform_below(&m, &mut rng)).unwrap() - 5)
            .collect();
        assert!(draws.iter().all(|&x| (-5..5).contains(&x)));
        let mut counts = [0u64; 10];
        draws.iter().for_each(|&x| counts[(x + 5) as usize] += 1);
        let expected = DRAWS as f64 / 10.0;
        let statistic: f64 = counts.iter().map(|&o| (o as f64 - expected).powi(2) / expected).sum();
        assert!(acceptable(statistic, 9), "{statistic}");
    }

    /// The textbook PMF of the discrete Laplace of scale b: (1 − e^{−1/b})/(1 + e^{−1/b}) e^{−|x|/b}.
    pub fn laplace_pmf(b: f64) -> impl Fn(i64) -> f64 {
        let q = (-1.0 / b).exp();
        move |x| (1.0 - q) / (1.0 + q) * q.powi(x.abs() as i32)
    }

    /// The PMF of N_Z(0, σ²), normalised over a range wide enough for doubles.
    pub fn gaussian_pmf(sigma2: f64) -> impl Fn(i64) -> f64 {
        let reach = (sigma2.sqrt() * 40.0) as i64 + 10;
        let norm: f64 = (-reach..=reach).map(|x| (-(x * x) as f64 / (2.0 * sigma2)).exp()).sum();
        move |x| (-(x * x) as f64 / (2.0 * sigma2)).exp() / norm
    }

    #[test]
    fn discrete_laplace_matches_its_pmf() {
        for (seed, s, t, cut) in [(1u64, 1u64, 1u64, 5i64), (2, 1, 3, 12), (3, 2, 5, 8), (4, 3, 2, 3)] {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let draws: Vec<i64> = (0..DRAWS)
                .map(|_| i64::try_from(discrete_laplace(&big(s), &big(t), &mut rng)).unwrap())
                .collect();
            let (statistic, df) = chi_square(&draws, cut, laplace_pmf(t as f64 / s as f64));
            assert!(acceptable(statistic, df), "scale {t}/{s}: χ² = {statistic} on {df} df");
        }
    }

    #[test]
    fn discrete_gaussian_matches_its_pmf() {
        for (seed, num, den, cut) in [(5u64, 1u64, 1u64, 3i64), (6, 25, 1, 14), (7, 9, 4, 5), (8, 1, 10, 1)] {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let draws: Vec<i64> = (0..DRAWS)
                .map(|_| i64::try_from(discrete_gaussian(&big(num), &big(den), &mut rng)).unwrap())
                .collect();
            let (statistic, df) = chi_square(&draws, cut, gaussian_pmf(num as f64 / den as f64));
            assert!(
                acceptable(statistic, df),
                "σ² = {num}/{den}: χ² = {statistic} on {df} df"
            );
        }
    }

    /// A sampler of the wrong distribution fails the test: the test has power.
    #[test]
    fn the_chi_square_test_rejects_a_wrong_scale() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let draws: Vec<i64> = (0..DRAWS)
            .map(|_| i64::try_from(discrete_gaussian(&big(27), &big(1), &mut rng)).unwrap())
            .collect();
        let (statistic, df) = chi_square(&draws, 14, gaussian_pmf(25.0));
        assert!(!acceptable(statistic, df), "σ² = 27 passed as 25: χ² = {statistic}");
    }

    /// The lint note made a test: the sampling path has no floating point. Only this test module
    /// (which computes the textbook PMFs to compare with) may name a float type.
    #[test]
    fn no_floating_point_in_the_samplers() {
        let source = include_str!("samplers.rs");
        let code = source.split("#[cfg(test)]").next().unwrap();
        for float in ["f64", "f32", "as f", "powf", "exp()", "ln("] {
            let hits = code
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .filter(|line| line.contains(float))
                .count();
            assert_eq!(hits, 0, "the samplers use {float:?}");
        }
    }
}
