//! Philox4x32-10 counter-based RNG (Salmon et al., SC'11, "Parallel random numbers: as easy as
//! 1, 2, 3") with uniforms and Box–Muller normals — the same stream as `gpu/philox.wgsl`.
//!
//! A draw is a pure function of `(seed, stream, index)`, so the CPU and every GPU invocation can
//! produce exactly the same noise without sharing state, and a failing case replays from its
//! printed seed.
//!
//! # Layout of the stream
//! * key `k = (seed mod 2³², seed ≫ 32)`; counter `c = (block mod 2³², block ≫ 32, stream, 0)`.
//! * Block `b` yields four 32-bit words `w₀..w₃`. Uniform number `4b + i` is
//!   `u = (2·(wᵢ ≫ 9) + 1) / 2²⁴ ∈ (0, 1)`: an odd multiple of 2⁻²⁴, exact in f32 and f64, never
//!   0 or 1, so `ln u` is finite.
//! * Normals come in Box–Muller pairs from uniforms `(u₀,u₁)` and `(u₂,u₃)` of one block:
//!   `r = √(−2 ln u₀)`, `z₀ = r cos 2πu₁`, `z₁ = r sin 2πu₁`; likewise `z₂, z₃` from `u₂, u₃`.
//!   Normal number `4b + i` is `zᵢ` of block `b`. The uniforms' 2⁻²⁴ grid truncates the normal's
//!   tails at `√(−2 ln 2⁻²⁴) ≈ 5.77`, a mass of 8·10⁻⁹ that no Monte Carlo check here can see.
//!
//! The 32-bit words are bit-identical on CPU and GPU (integer arithmetic only); the f32
//! uniforms are too; the normals agree to the accuracy WGSL guarantees for `log`, `cos`, `sin`.

/// Philox multipliers and Weyl key increments (Random123's `PHILOX_M4x32_0/1`, `PHILOX_W32_0/1`).
const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// One Philox4x32 round: two 32×32→64 multiplies, a swap and xor with the key.
#[inline]
fn philox_round(c: [u32; 4], k: [u32; 2]) -> [u32; 4] {
    let p0 = u64::from(PHILOX_M0) * u64::from(c[0]);
    let p1 = u64::from(PHILOX_M1) * u64::from(c[2]);
    let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
    let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
    [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0]
}

/// The Philox4x32-10 bijection: ten rounds, bumping the key by the Weyl constants between them.
pub(crate) fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
        }
        c = philox_round(c, k);
    }
    c
}

/// `(2·(w ≫ 9) + 1)·2⁻²⁴`, the uniform in (0, 1) made from one 32-bit word (exact in f32).
#[inline]
pub fn word_to_uniform(w: u32) -> f64 {
    f64::from(2 * (w >> 9) + 1) * (1.0 / 16_777_216.0)
}

/// A Philox stream: everything drawn from it is a pure function of `(seed, stream, index)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhiloxStream {
    /// The 64-bit seed, split into the two key words.
    pub seed: u64,
    /// Independent sub-stream id (third counter word), e.g. one per test case or per purpose.
    pub stream: u32,
}

impl PhiloxStream {
    /// The stream `(seed, stream)`.
    pub fn new(seed: u64, stream: u32) -> Self {
        Self { seed, stream }
    }

    /// The Philox key for this seed.
    pub fn key(&self) -> [u32; 2] {
        [self.seed as u32, (self.seed >> 32) as u32]
    }

    /// The four words of block `b`.
    pub fn block(&self, b: u64) -> [u32; 4] {
        philox4x32_10([b as u32, (b >> 32) as u32, self.stream, 0], self.key())
    }

    /// The four uniforms in (0, 1) of block `b`.
    pub fn uniforms(&self, b: u64) -> [f64; 4] {
        self.block(b).map(word_to_uniform)
    }

    /// The four standard normals of block `b` (two Box–Muller pairs), computed in f64.
    pub fn normals(&self, b: u64) -> [f64; 4] {
        let u = self.uniforms(b);
        let (z0, z1) = box_muller(u[0], u[1]);
        let (z2, z3) = box_muller(u[2], u[3]);
        [z0, z1, z2, z3]
    }
}

/// Box–Muller: `(√(−2 ln u₀) cos 2πu₁, √(−2 ln u₀) sin 2πu₁)`, evaluated as
/// `−r cos(2πu₁ − π)`, `−r sin(2πu₁ − π)` — the form the WGSL kernel uses, whose angle lies in
/// [−π, π] where WGSL bounds the error of `cos` and `sin`.
#[inline]
pub(crate) fn box_muller(u0: f64, u1: f64) -> (f64, f64) {
    let r = (-2.0 * u0.ln()).sqrt();
    let angle = std::f64::consts::TAU * u1 - std::f64::consts::PI;
    let (s, c) = angle.sin_cos();
    (-r * c, -r * s)
}

/// What a block of the stream is being read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Words,
    Normals,
}

/// A sequential reader over a [`PhiloxStream`]: `next_*` walk the stream in order, four draws
/// per block. A block serves one kind of draw only: the four normals of block b are functions
/// of all four of its words, so a uniform and a normal taken from the same block would be
/// dependent; switching kind mid-block skips to the next block. A run of normals therefore
/// reads normal number k of the stream as its k-th draw.
#[derive(Debug, Clone)]
pub struct Rng {
    stream: PhiloxStream,
    /// Index of the next 32-bit word / uniform / normal in the stream (4 per block).
    position: u64,
    /// The kind of the current block's draws.
    lane: Lane,
}

impl Rng {
    /// A reader at position 0 of `(seed, stream)`.
    pub fn new(seed: u64, stream: u32) -> Self {
        Self {
            stream: PhiloxStream::new(seed, stream),
            position: 0,
            lane: Lane::Words,
        }
    }

    /// The stream this reader walks.
    pub fn stream(&self) -> PhiloxStream {
        self.stream
    }

    /// `(block, index in block)` of the next draw of kind `lane`, skipping the rest of a block
    /// read as the other kind.
    fn advance(&mut self, lane: Lane) -> (u64, usize) {
        if self.lane != lane && !self.position.is_multiple_of(4) {
            self.position = self.position.next_multiple_of(4);
        }
        self.lane = lane;
        let at = (self.position / 4, (self.position % 4) as usize);
        self.position += 1;
        at
    }

    /// The next 32-bit word.
    pub fn next_u32(&mut self) -> u32 {
        let (block, i) = self.advance(Lane::Words);
        self.stream.block(block)[i]
    }

    /// The next uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        word_to_uniform(self.next_u32())
    }

    /// The next standard normal N(0, 1).
    pub fn normal(&mut self) -> f64 {
        let (block, i) = self.advance(Lane::Normals);
        self.stream.normals(block)[i]
    }

    /// `n` standard normals.
    pub fn normals(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }

    /// Index `i` with probability `weights[i]` (weights summing to one), by inversion of the
    /// cumulative sums against one uniform.
    pub(crate) fn categorical(&mut self, weights: &[f64]) -> usize {
        let u = self.uniform();
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            if u < acc {
                return i;
            }
        }
        weights.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of Random123 (`kat_vectors`, philox4x32 with 10 rounds).
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    /// A component pick followed by a normal (as in mixture sampling) must be independent:
    /// E[z² | u < 0.1] = 1. Before blocks were dedicated to one kind, the pick's word fed the
    /// normal's Box–Muller radius and this was about 0.5.
    #[test]
    fn interleaved_uniform_and_normal_draws_are_independent() {
        let mut rng = Rng::new(1, 0);
        let (mut sum, mut n) = (0.0, 0usize);
        for _ in 0..200_000 {
            let u = rng.uniform();
            let z = rng.normal();
            if u < 0.1 {
                sum += z * z;
                n += 1;
            }
        }
        let mean = sum / n as f64;
        // z² has variance 2: SE = √(2/n) ≈ 0.01 for n ≈ 20 000; 6·SE (α ≈ 2·10⁻⁹)
        assert!(
            (mean - 1.0).abs() < 6.0 * (2.0 / n as f64).sqrt(),
            "E[z² | u < 0.1] = {mean}"
        );
    }

    #[test]
    fn uniforms_are_strictly_inside_the_unit_interval() {
        assert!(word_to_uniform(0) > 0.0);
        assert!(word_to_uniform(u32::MAX) < 1.0);
        assert_eq!(word_to_uniform(0), 1.0 / 16_777_216.0);
    }

    /// Mean and variance of 4·10⁵ normals within 5 standard errors (false-failure ≈ 6·10⁻⁷ each).
    #[test]
    fn normals_have_unit_variance() {
        let mut rng = Rng::new(7, 3);
        let n = 400_000;
        let z = rng.normals(n);
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        assert!(mean.abs() < 5.0 / (n as f64).sqrt(), "mean {mean}");
        // Var of the sample variance of N(0,1) is 2/(n−1).
        assert!(
            (var - 1.0).abs() < 5.0 * (2.0 / (n as f64 - 1.0)).sqrt(),
            "var {var}"
        );
    }
}
