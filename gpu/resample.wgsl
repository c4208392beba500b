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
