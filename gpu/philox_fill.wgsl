// Fills buffers with blocks [first_block, first_block + n_blocks) of a Philox stream:
// the raw words and the Box–Muller normals. Used to check bit-identity with the CPU stream.
// Compiled after gpu/philox.wgsl.

struct FillParams {
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    n_blocks: u32,
    first_block_lo: u32,
    first_block_hi: u32,
    groups_x: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: FillParams;
@group(0) @binding(1) var<storage, read_write> words: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> normals: array<vec4<f32>>;

@compute @workgroup_size(64)
fn philox_fill(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.groups_x * 64u;
    if (i >= params.n_blocks) {
        return;
    }
    let lo = params.first_block_lo + i;
    let carry = select(0u, 1u, lo < i);
    let block = vec2<u32>(lo, params.first_block_hi + carry);
    let w = philox_block(vec2<u32>(params.seed_lo, params.seed_hi), params.stream, block);
    words[i] = w;
    normals[i] = philox_normals(w);
}
