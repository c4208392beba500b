// The U-Net's skip connections (gpu::unet): channel concatenation of two NCHW f32 tensors and
// its adjoint, a channel slice, one invocation per output entry over a 2-D grid of 64-wide
// workgroups. Both are copies (exact in f32) except the slice's optional accumulation, one
// correctly rounded addition.
//   unet_concat: result[b, c, p] = first[b, c, p]            for c < first_channels,
//                                  second[b, c − first_channels, p]  otherwise
//                (result has first_channels + second_channels channels);
//   unet_take:   result[b, c, p] = first[b, offset + c, p] (+ second[b, c, p] if accumulate)
//                for c < second_channels (first has first_channels channels): the gradient of
//                one operand of a concatenation, added to what the operand's other consumer
//                sent back.

struct UnetParams {
    batch: u32,
    first_channels: u32,
    second_channels: u32,
    // H·W
    plane: u32,
    // unet_take: the first channel of the slice
    offset: u32,
    // unet_take: 1 to add second, 0 to copy the slice alone
    accumulate: u32,
    // workgroups along x of the 2-D grid (the flat index is gid.x + gid.y·grid_x·64)
    grid_x: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: UnetParams;
@group(0) @binding(1) var<storage, read> first: array<f32>;
@group(0) @binding(2) var<storage, read> second: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;

fn flat(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * params.grid_x * 64u;
}

@compute @workgroup_size(64)
fn unet_concat(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = flat(gid);
    let channels = params.first_channels + params.second_channels;
    if (e >= params.batch * channels * params.plane) {
        return;
    }
    let p = e % params.plane;
    let c = (e / params.plane) % channels;
    let b = e / (params.plane * channels);
    if (c < params.first_channels) {
        result[e] = first[(b * params.first_channels + c) * params.plane + p];
    } else {
        result[e] = second[(b * params.second_channels + c - params.first_channels) * params.plane + p];
    }
}

@compute @workgroup_size(64)
fn unet_take(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = flat(gid);
    if (e >= params.batch * params.second_channels * params.plane) {
        return;
    }
    let p = e % params.plane;
    let c = (e / params.plane) % params.second_channels;
    let b = e / (params.plane * params.second_channels);
    let v = first[(b * params.first_channels + params.offset + c) * params.plane + p];
    // `second` is bound (and read) either way, so both entry points share one layout
    let extra = second[e];
    if (params.accumulate == 1u) {
        result[e] = v + extra;
    } else {
        result[e] = v;
    }
}
