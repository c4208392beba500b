// Average pooling and nearest-neighbour upsampling by an integer factor f, on `planes` images of
// height × width (batch × channels flattened), row-major, one invocation per output entry over
// a 2-D grid of 64-wide workgroups. Each is the other's adjoint up to the factor f², so two
// kernels with a scale give the four maps (gpu::resample's doc):
//   pool_sum:  Y[n, i, j] = scale · Σ_{a,d < f} X[n, f·i + a, f·j + d]   (X is height × width,
//              Y is height/f × width/f);
//   upsample:  Y[n, i, j] = scale · X[n, ⌊i/f⌋, ⌊j/f⌋]                    (X is height × width,
//              Y is f·height × f·width).

struct ResampleParams {
    planes: u32,
    // the input's height and width
    height: u32,
    width: u32,
    factor: u32,
    scale: f32,
    // workgroups along x of the 2-D grid (the flat index is gid.x + gid.y·grid_x·64)
    grid_x: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: ResampleParams;
@group(0) @binding(1) var<storage, read> source: array<f32>;
@group(0) @binding(2) var<storage, read_write> destination: array<f32>;

@compute @workgroup_size(64)
fn pool_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * params.grid_x * 64u;
    let f = params.factor;
    let out_h = params.height / f;
    let out_w = params.width / f;
    if (e >= params.planes * out_h * out_w) {
        return;
    }
    let n = e / (out_h * out_w);
    let i = (e / out_w) % out_h;
    let j = e % out_w;
    let base = n * params.height * params.width;
    var acc = 0.0;
    for (var a = 0u; a < f; a = a + 1u) {
        for (var d = 0u; d < f; d = d + 1u) {
            acc = acc + source[base + (f * i + a) * params.width + f * j + d];
        }
    }
    destination[e] = params.scale * acc;
}

@compute @workgroup_size(64)
fn upsample(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * params.grid_x * 64u;
    let f = params.factor;
    let out_h = params.height * f;
    let out_w = params.width * f;
    if (e >= params.planes * out_h * out_w) {
        return;
    }
    let n = e / (out_h * out_w);
    let i = (e / out_w) % out_h;
    let j = e % out_w;
    destination[e] = params.scale * source[(n * params.height + i / f) * params.width + j / f];
}

// Bilinear ×2 upsampling, align_corners = false (PyTorch's F.interpolate(scale_factor=2,
// mode='bilinear')), source indices clamped to the edge. Along a side of n, output index i reads
// the source coordinate (i + ½)/2 − ½ clamped at 0, which for a factor of 2 is
//   i = 2c:     ¼·X[max(c, 1) − 1] + ¾·X[c],
//   i = 2c + 1: ¾·X[c] + ¼·X[min(c + 1, n − 1)],
// and the 2-D map is the product of the two sides' taps. Weights and their products are
// multiples of 1/16 below 1: exact in f32.
//   bilinear_up2:      Y (2·height × 2·width) from X (height × width);
//   bilinear_up2_grad: the adjoint, X̄ (height/2 × width/2) from Ȳ (height × width):
//                      X̄[k, l] = Σ_{i,j} w(i, k)·w(j, l)·Ȳ[i, j], w(i, k) the weight of source k
//                      in output i (bilinear_weight), i within 2k − 1 ..= 2k + 2.

struct Taps {
    lo: u32,
    hi: u32,
    w_lo: f32,
    w_hi: f32,
}

// The two source indices and weights of output index i along a side of n source entries.
fn bilinear_taps(i: u32, n: u32) -> Taps {
    let c = i / 2u;
    if (i % 2u == 0u) {
        return Taps(max(c, 1u) - 1u, c, 0.25, 0.75);
    }
    return Taps(c, min(c + 1u, n - 1u), 0.75, 0.25);
}

// The weight of source index k in output index i along a side of n source entries.
fn bilinear_weight(i: u32, k: u32, n: u32) -> f32 {
    let t = bilinear_taps(i, n);
    var w = 0.0;
    if (t.lo == k) {
        w = w + t.w_lo;
    }
    if (t.hi == k) {
        w = w + t.w_hi;
    }
    return w;
}

@compute @workgroup_size(64)
fn bilinear_up2(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * params.grid_x * 64u;
    let out_h = params.height * 2u;
    let out_w = params.width * 2u;
    if (e >= params.planes * out_h * out_w) {
        return;
    }
    let n = e / (out_h * out_w);
    let rows = bilinear_taps((e / out_w) % out_h, params.height);
    let cols = bilinear_taps(e % out_w, params.width);
    let base = n * params.height * params.width;
    var acc = 0.0;
    acc = acc + (rows.w_lo * cols.w_lo) * source[base + rows.lo * params.width + cols.lo];
    acc = acc + (rows.w_lo * cols.w_hi) * source[base + rows.lo * params.width + cols.hi];
    acc = acc + (rows.w_hi * cols.w_lo) * source[base + rows.hi * params.width + cols.lo];
    acc = acc + (rows.w_hi * cols.w_hi) * source[base + rows.hi * params.width + cols.hi];
    destination[e] = acc;
}

@compute @workgroup_size(64)
fn bilinear_up2_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * params.grid_x * 64u;
    let out_h = params.height / 2u;
    let out_w = params.width / 2u;
    if (e >= params.planes * out_h * out_w) {
        return;
    }
    let n = e / (out_h * out_w);
    let k = (e / out_w) % out_h;
    let l = e % out_w;
    let base = n * params.height * params.width;
    var acc = 0.0;
    // unsigned bounds: 2k − 1 (0 when k = 0) through 2k + 2 (at most the last row)
    for (var i = max(2u * k, 1u) - 1u; i <= min(2u * k + 2u, params.height - 1u); i = i + 1u) {
        let wi = bilinear_weight(i, k, out_h);
        if (wi == 0.0) {
            continue;
        }
        for (var j = max(2u * l, 1u) - 1u; j <= min(2u * l + 2u, params.width - 1u); j = j + 1u) {
            let wj = bilinear_weight(j, l, out_w);
            if (wj == 0.0) {
                continue;
            }
            acc = acc + (wi * wj) * source[base + i * params.width + j];
        }
    }
    destination[e] = acc;
}
