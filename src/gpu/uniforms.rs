//! Every WGSL uniform struct of `gpu/*.wgsl` has exactly one Rust type here, with the same name
//! and the same member names in the same order (`#[repr(C)]`, 4-byte scalars, padded by the
//! shader's own `pad*` members to a multiple of 16 bytes). What each member means is documented
//! beside it in the shader. [`Gpu::uniform`](super::Gpu::uniform) takes only these types, and
//! the test below checks each one's size, member names, offsets and scalar types against naga's
//! reflection of the shader, and that every `var<uniform>` of every kernel has its type here.

#[cfg(test)]
use super::shaders::{self, Shader};

/// A Rust mirror of one WGSL uniform struct: implemented only by the types of this module.
pub(crate) trait Uniform: bytemuck::Pod {}

macro_rules! uniforms {
    ($($(#[doc = $doc:literal])* $name:ident in $shader:ident { $($field:ident: $ty:ident),* $(,)? })*) => {
        $(
            $(#[doc = $doc])*
            #[repr(C)]
            #[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
            pub(crate) struct $name { $(pub(crate) $field: $ty),* }

            impl Uniform for $name {}
        )*

        /// `(WGSL name, kernel, size in bytes, members)` of every uniform type.
        #[cfg(test)]
        #[allow(clippy::type_complexity)]
        fn layouts() -> Vec<(&'static str, Shader, usize, Vec<(&'static str, usize, &'static str)>)> {
            vec![$((
                stringify!($name),
                shaders::$shader,
                std::mem::size_of::<$name>(),
                vec![$((stringify!($field), std::mem::offset_of!($name, $field), stringify!($ty))),*],
            )),*]
        }
    };
}

uniforms! {
    /// `gpu/denoiser_jvp.wgsl`: a batch of points for one architecture's value and JVP.
    JvpParams in JVP_AFFINE { n_points: u32, dim: u32, width: u32, grid_x: u32 }
    /// `gpu/dense.wgsl`: gather a batch's clean rows and draw its noisy inputs `αx + σε`.
    GatherParams in DENSE_GATHER {
        rows: u32, dim: u32, start: u32, batch: u32, stream: u32, seed_lo: u32, seed_hi: u32,
        grid_x: u32, alpha: f32, sigma: f32, pad0: u32, pad1: u32,
    }
    /// `gpu/dense.wgsl`: the weighted, masked residual `G = scale·w_r·(X̂ − X) ⊙ φ'(X̂)` of a
    /// batch and its rows' weighted squared errors.
    ResidualParams in DENSE_RESIDUAL {
        rows: u32, dim: u32, offset: u32, act: u32, scale: f32, slope: f32, pad0: f32, pad1: f32,
    }
    /// `gpu/dense.wgsl`: column sums of a rows × cols matrix.
    ColumnSumParams in DENSE_COLUMN_SUM { rows: u32, cols: u32, grid_x: u32, pad: u32 }
    /// `gpu/gemm_epilogue.wgsl`: the GEMM family's shape, transposes, scalars and epilogue.
    GemmParams in GEMM {
        m: u32, n: u32, k: u32, trans_a: u32, trans_b: u32, alpha: f32, beta: f32, epilogue: u32,
        act: u32, bias_mode: u32, slope: f32, power: u32, splits: u32, vec_a: u32, vec_b: u32,
        pad: u32,
    }
    /// `gpu/gmm_posterior.wgsl`: a batch of points against a K-component mixture.
    GmmParams in GMM_POSTERIOR { n_points: u32, dim: u32, n_components: u32, groups_x: u32 }
    /// `gpu/mc_posterior.wgsl`: the Monte Carlo posterior mean's queries and Philox stream.
    McParams in MC_POSTERIOR {
        n_queries: u32, dim: u32, n_components: u32, n_samples: u32, seed_lo: u32,
        seed_hi: u32, stream: u32, inv_two_sigma2: f32, samples_per_group: u32,
        groups_per_query: u32, pad0: u32, pad1: u32,
    }
    /// `gpu/adam.wgsl`: one Adam step (`c_i = 1/(1 − β_iᵗ)`, the bias corrections).
    AdamParams in MLP_ADAM {
        count: u32, pad0: u32, pad1: u32, pad2: u32, lr: f32, beta1: f32, beta2: f32, eps: f32,
        c1: f32, c2: f32, pad3: f32, pad4: f32,
    }
    /// `gpu/philox_fill.wgsl`: the Philox key, stream and block range to fill.
    FillParams in PHILOX_FILL {
        seed_lo: u32, seed_hi: u32, stream: u32, n_blocks: u32, first_block_lo: u32,
        first_block_hi: u32, groups_x: u32, pad: u32,
    }
    /// `gpu/power_features.wgsl`: `(c_j z_ij)^k` for a rows × width block.
    PowerParams in POWER_FEATURES { rows: u32, width: u32, power: u32, grid_x: u32 }
    /// `gpu/conv.wgsl`: a convolution's shape, padding and grid.
    ConvParams in CONV_FORWARD {
        batch: u32, in_channels: u32, out_channels: u32, height: u32, width: u32, kernel: u32,
        circular: u32, grid_x: u32,
    }
    /// `gpu/im2col.wgsl`: a chunk of a convolution's batch, its shape and padding.
    Im2colParams in IM2COL {
        images: u32, first_image: u32, in_channels: u32, out_channels: u32, height: u32,
        width: u32, kernel: u32, circular: u32,
    }
    /// `gpu/resample.wgsl`: pooling and upsampling by an integer factor, with a scale.
    ResampleParams in RESAMPLE_POOL_SUM {
        planes: u32, height: u32, width: u32, factor: u32, scale: f32, grid_x: u32, pad0: u32,
        pad1: u32,
    }
    /// `gpu/group_norm.wgsl`: a GroupNorm's shape, groups and variance offset.
    NormParams in GROUP_NORM_STATS {
        batch: u32, channels: u32, groups: u32, plane: u32, eps: f32, grid_x: u32, pad0: u32,
        pad1: u32,
    }
    /// `gpu/embedding.wgsl`: the σ embedding's shape (`features` = 2F + 1) and grid.
    EmbedParams in EMBED_ADD {
        batch: u32, channels: u32, plane: u32, features: u32, grid_x: u32, pad0: u32, pad1: u32,
        pad2: u32,
    }
    /// `gpu/unet.wgsl`: a concatenation's or a channel slice's shape.
    UnetParams in UNET_CONCAT {
        batch: u32, first_channels: u32, second_channels: u32, plane: u32, offset: u32,
        accumulate: u32, grid_x: u32, pad0: u32,
    }
    /// `gpu/cholesky.wgsl`: the side of a diagonal tile.
    CholeskyParams in CHOLESKY_TILE {
        n: u32, pad0: u32, pad1: u32, pad2: u32,
    }
    /// `gpu/rowwise.wgsl`: the row-wise reductions and broadcasts.
    RowParams in ROW_SOFTMAX {
        rows: u32, cols: u32, grid_x: u32, accumulate: u32, scale: f32, shift: f32, pad0: u32,
        pad1: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::layouts;
    use std::collections::BTreeSet;

    /// naga's layout of the struct `name` in `source`: (span, members as (name, offset, scalar)).
    #[allow(clippy::type_complexity)]
    fn reflect(source: &str, name: &str) -> (usize, Vec<(String, usize, String)>) {
        let module = naga::front::wgsl::parse_str(source).expect("the shader parses");
        let ty = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name} in the shader"))
            .1;
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("{name} is not a struct");
        };
        let members = members
            .iter()
            .map(|m| {
                let scalar = match module.types[m.ty].inner {
                    naga::TypeInner::Scalar(naga::Scalar {
                        kind: naga::ScalarKind::Uint,
                        width: 4,
                    }) => "u32",
                    naga::TypeInner::Scalar(naga::Scalar {
                        kind: naga::ScalarKind::Float,
                        width: 4,
                    }) => "f32",
                    ref other => panic!("{name}: member type {other:?} has no Rust mirror here"),
                };
                (
                    m.name.clone().unwrap_or_default(),
                    m.offset as usize,
                    scalar.to_string(),
                )
            })
            .collect();
        (*span as usize, members)
    }

    /// Each Rust uniform has the size, member names, offsets and scalar types naga reflects from
    /// its shader.
    #[test]
    fn every_uniform_matches_the_shader_layout() {
        for (name, shader, size, members) in layouts() {
            let (span, reflected) = reflect(&shader.source(), name);
            assert_eq!(size, span, "{name}: Rust size vs WGSL span");
            let ours: Vec<(String, usize, String)> = members
                .iter()
                .map(|(n, o, t)| (n.to_string(), *o, t.to_string()))
                .collect();
            assert_eq!(ours, reflected, "{name}: members (name, offset, type)");
        }
    }

    /// Every `var<uniform>` of every kernel has its Rust type here (and no type here is unused
    /// by the shaders).
    #[test]
    fn every_shader_uniform_has_one_rust_type() {
        let mut in_shaders = BTreeSet::new();
        for shader in super::shaders::ALL {
            let module = naga::front::wgsl::parse_str(&shader.source()).expect("parses");
            for (_, var) in module.global_variables.iter() {
                if var.space == naga::AddressSpace::Uniform {
                    let name = module.types[var.ty].name.clone().unwrap_or_default();
                    in_shaders.insert(name);
                }
            }
        }
        let ours: BTreeSet<String> = layouts().iter().map(|l| l.0.to_string()).collect();
        assert_eq!(ours, in_shaders);
    }
}
