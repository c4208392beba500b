// Split-K's second pass (compiled after gemm_epilogue.wgsl): one invocation per entry of C adds
// the entry's S partial sums, written by a GEMM kernel run with epilogue 3 into the S×m×n
// workspace, in slice order 0, 1, …, S − 1 (deterministic: no atomics, the same order every
// run), then stores α·sum + β·D through the epilogue. A 1-D grid of 64-wide workgroups, folded
// into (x, y) beyond 65535 groups (`grid_for` in src/gpu/mod.rs).

@group(0) @binding(5) var<storage, read> partials: array<f32>;

@compute @workgroup_size(64)
fn gemm_split_reduce(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let mn = params.m * params.n;
    let idx = gid.x + gid.y * groups.x * 64u;
    if (idx >= mn) {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < params.splits; s = s + 1u) {
        sum = sum + partials[s * mn + idx];
    }
    gemm_store(idx / params.n, idx % params.n, 0u, sum);
}
