// Philox4x32-10 counter RNG (Salmon et al., SC'11) — the same stream as src/rng.rs.
// Library file: functions only, no bindings; kernels that draw random numbers are compiled
// with this file prepended (see src/gpu/shaders.rs).
//
// Stream layout (identical to the CPU):
//   key     = (seed_lo, seed_hi)
//   counter = (block_lo, block_hi, stream, 0)
//   uniform = (2 * (word >> 9) + 1) * 2^-24 in (0, 1), exact in f32
//   normals = Box–Muller on (u0, u1) and (u2, u3) of one block:
//             r = sqrt(-2 ln u0), z0 = -r cos(2π u1 - π), z1 = -r sin(2π u1 - π).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const PHILOX_TAU: f32 = 6.283185307179586;
const PHILOX_PI: f32 = 3.141592653589793;

// 32x32 -> 64-bit product as (hi, lo), from 16-bit halves (WGSL has no u64).
fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
    let p0 = philox_mulhilo(PHILOX_M0, c.x);
    let p1 = philox_mulhilo(PHILOX_M1, c.z);
    return vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    c = philox_round(c, k);
    for (var round = 1u; round < 10u; round = round + 1u) {
        k = vec2<u32>(k.x + PHILOX_W0, k.y + PHILOX_W1);
        c = philox_round(c, k);
    }
    return c;
}

// The four words of block `block` (a 64-bit index as (lo, hi)) of stream `stream`.
fn philox_block(seed: vec2<u32>, stream: u32, block: vec2<u32>) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(block.x, block.y, stream, 0u), seed);
}

fn philox_uniform(word: u32) -> f32 {
    return f32(2u * (word >> 9u) + 1u) * (1.0 / 16777216.0);
}

fn philox_uniforms(words: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(philox_uniform(words.x), philox_uniform(words.y),
                     philox_uniform(words.z), philox_uniform(words.w));
}

fn philox_normals(words: vec4<u32>) -> vec4<f32> {
    let u = philox_uniforms(words);
    let r0 = sqrt(-2.0 * log(u.x));
    let r1 = sqrt(-2.0 * log(u.z));
    // cos(2πu) = −cos(2πu − π): the angle is shifted into [−π, π], where WGSL bounds the
    // error of cos and sin (absolute 2⁻¹¹); the CPU uses the same form.
    let a0 = PHILOX_TAU * u.y - PHILOX_PI;
    let a1 = PHILOX_TAU * u.w - PHILOX_PI;
    return vec4<f32>(-r0 * cos(a0), -r0 * sin(a0), -r1 * cos(a1), -r1 * sin(a1));
}
