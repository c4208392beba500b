//! The WGSL kernels of `gpu/`, each a list of source files compiled as one module (WGSL has no
//! `#include`: library files such as `philox.wgsl` are prepended), with its entry point.

/// One compute kernel: the files it is compiled from, in order, and its entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shader {
    /// The kernel's name and entry point.
    pub entry_point: &'static str,
    /// `(file name under gpu/, its text)` in compilation order.
    pub sources: &'static [(&'static str, &'static str)],
}

const PHILOX: (&str, &str) = ("philox.wgsl", include_str!("../../gpu/philox.wgsl"));

/// Fills buffers with Philox words and normals (`gpu/philox_fill.wgsl`).
pub const PHILOX_FILL: Shader = Shader {
    entry_point: "philox_fill",
    sources: &[
        PHILOX,
        (
            "philox_fill.wgsl",
            include_str!("../../gpu/philox_fill.wgsl"),
        ),
    ],
};

/// Responsibilities, score and posterior mean of a GMM for a batch of points
/// (`gpu/gmm_posterior.wgsl`).
pub const GMM_POSTERIOR: Shader = Shader {
    entry_point: "gmm_posterior",
    sources: &[(
        "gmm_posterior.wgsl",
        include_str!("../../gpu/gmm_posterior.wgsl"),
    )],
};

/// Self-normalised importance-sampling estimate of `E[x|y]` (`gpu/mc_posterior.wgsl`).
pub const MC_POSTERIOR: Shader = Shader {
    entry_point: "mc_posterior",
    sources: &[
        PHILOX,
        (
            "mc_posterior.wgsl",
            include_str!("../../gpu/mc_posterior.wgsl"),
        ),
    ],
};

/// The one tanh every kernel uses (`gpu/tanh.wgsl`), its bound in
/// [`crate::numerics::activation::activation_rounding`].
const TANH: (&str, &str) = ("tanh.wgsl", include_str!("../../gpu/tanh.wgsl"));

const DENOISER_JVP: (&str, &str) = (
    "denoiser_jvp.wgsl",
    include_str!("../../gpu/denoiser_jvp.wgsl"),
);

/// `f(y)` and `∇f(y)z` of an affine denoiser (`gpu/denoiser_jvp.wgsl`).
pub const JVP_AFFINE: Shader = Shader {
    entry_point: "jvp_affine",
    sources: &[TANH, DENOISER_JVP],
};

/// `f(y)` and `∇f(y)z` of soft thresholding (`gpu/denoiser_jvp.wgsl`).
pub const JVP_SOFT_THRESHOLD: Shader = Shader {
    entry_point: "jvp_soft_threshold",
    sources: &[TANH, DENOISER_JVP],
};

/// `f(y)` and `∇f(y)z` of a coordinatewise-power polynomial map (`gpu/denoiser_jvp.wgsl`).
pub const JVP_POWER_MAP: Shader = Shader {
    entry_point: "jvp_power_map",
    sources: &[TANH, DENOISER_JVP],
};

/// `f(y)` and `∇f(y)z` of a one-hidden-layer tanh MLP (`gpu/denoiser_jvp.wgsl`).
pub const JVP_MLP: Shader = Shader {
    entry_point: "jvp_mlp",
    sources: &[TANH, DENOISER_JVP],
};

/// `f(y)` and `∇f(y)z` of a Gaussian mixture's Bayes denoiser (`gpu/denoiser_jvp.wgsl`).
pub const JVP_GMM: Shader = Shader {
    entry_point: "jvp_gmm",
    sources: &[TANH, DENOISER_JVP],
};

const GEMM_EPILOGUE: (&str, &str) = (
    "gemm_epilogue.wgsl",
    include_str!("../../gpu/gemm_epilogue.wgsl"),
);
const GEMM_SMALL: (&str, &str) = ("gemm.wgsl", include_str!("../../gpu/gemm.wgsl"));

/// Tiled matrix product `C = epilogue(α·op(A)·op(B) + β·D)`: 16×16 tiles, one output per
/// invocation (`gpu/gemm.wgsl` after `gpu/gemm_epilogue.wgsl`).
pub const GEMM: Shader = Shader {
    entry_point: "gemm",
    sources: &[TANH, GEMM_EPILOGUE, GEMM_SMALL],
};

/// Register-blocked GEMM with the same epilogues: 64×64 blocks, 4×4 outputs per invocation
/// (`gpu/gemm.wgsl`).
pub const GEMM_BLOCKED: Shader = Shader {
    entry_point: "gemm_blocked",
    sources: &[TANH, GEMM_EPILOGUE, GEMM_SMALL],
};

/// GEMM for software adapters with the same epilogues: 64×64 blocks, 4×4 outputs per
/// invocation read straight from storage, no workgroup memory or barrier
/// (`gpu/gemm_direct.wgsl`).
pub const GEMM_DIRECT: Shader = Shader {
    entry_point: "gemm_direct",
    sources: &[
        TANH,
        GEMM_EPILOGUE,
        (
            "gemm_direct.wgsl",
            include_str!("../../gpu/gemm_direct.wgsl"),
        ),
    ],
};

/// Register-blocked GEMM for large products with the same epilogues: 128×128 blocks, 8×8
/// outputs per invocation, vec4 global loads where the layout allows (`gpu/gemm_large.wgsl`).
pub const GEMM_LARGE: Shader = Shader {
    entry_point: "gemm_large",
    sources: &[
        TANH,
        GEMM_EPILOGUE,
        ("gemm_large.wgsl", include_str!("../../gpu/gemm_large.wgsl")),
    ],
};

/// Split-K's second pass: `C = epilogue(α·Σ_s P_s + β·D)` over the S partial products in slice
/// order (`gpu/gemm_split.wgsl`).
pub const GEMM_SPLIT_REDUCE: Shader = Shader {
    entry_point: "gemm_split_reduce",
    sources: &[
        TANH,
        GEMM_EPILOGUE,
        ("gemm_split.wgsl", include_str!("../../gpu/gemm_split.wgsl")),
    ],
};

/// Random power features `(c_j (Y Rᵀ)_ij)^k` with a constant column (`gpu/power_features.wgsl`).
pub const POWER_FEATURES: Shader = Shader {
    entry_point: "power_features",
    sources: &[(
        "power_features.wgsl",
        include_str!("../../gpu/power_features.wgsl"),
    )],
};

/// Adam, bias-corrected, on one flat f32 tensor: the optimizer of both GPU MLP trainers
/// (`gpu/adam.wgsl`, wrapped by [`crate::gpu::adam`]).
pub const MLP_ADAM: Shader = Shader {
    entry_point: "mlp_adam",
    sources: &[("adam.wgsl", include_str!("../../gpu/adam.wgsl"))],
};

const DENSE: (&str, &str) = ("dense.wgsl", include_str!("../../gpu/dense.wgsl"));

/// The dense trainer's batch gather: `X_b` from a permutation, `Y_b = αX_b + σε` with Philox ε
/// (`gpu/dense.wgsl`).
pub const DENSE_GATHER: Shader = Shader {
    entry_point: "dense_gather",
    sources: &[PHILOX, DENSE],
};

/// The dense trainer's loss gradient `G = (2/B)(X̂ − X_b)` and per-row squared errors
/// (`gpu/dense.wgsl`).
pub const DENSE_RESIDUAL: Shader = Shader {
    entry_point: "dense_residual",
    sources: &[PHILOX, DENSE],
};

/// Column sums of a matrix, the dense trainer's bias gradients (`gpu/dense.wgsl`).
pub const DENSE_COLUMN_SUM: Shader = Shader {
    entry_point: "dense_column_sum",
    sources: &[PHILOX, DENSE],
};

const ROWWISE: (&str, &str) = ("rowwise.wgsl", include_str!("../../gpu/rowwise.wgsl"));

/// Row log-sum-exp, max-shifted, one workgroup per row (`gpu/rowwise.wgsl`).
pub const ROW_LOGSUMEXP: Shader = Shader {
    entry_point: "row_logsumexp",
    sources: &[ROWWISE],
};

/// Row softmax, max-shifted, one workgroup per row (`gpu/rowwise.wgsl`).
pub const ROW_SOFTMAX: Shader = Shader {
    entry_point: "row_softmax",
    sources: &[ROWWISE],
};

/// Running `(max, Σexp)` of each row over one column block (`gpu/rowwise.wgsl`).
pub const ROW_SOFTMAX_STATS: Shader = Shader {
    entry_point: "row_softmax_stats",
    sources: &[ROWWISE],
};

/// In-place `exp(z − m)/s` of a column block with merged row stats (`gpu/rowwise.wgsl`).
pub const ROW_SOFTMAX_APPLY: Shader = Shader {
    entry_point: "row_softmax_apply",
    sources: &[ROWWISE],
};

/// Row max-|·| (`gpu/rowwise.wgsl`).
pub const ROW_MAX_ABS: Shader = Shader {
    entry_point: "row_max_abs",
    sources: &[ROWWISE],
};

/// In-place broadcast add `x_ij += c·v_j` (`gpu/rowwise.wgsl`).
pub const ADD_ROW_VECTOR: Shader = Shader {
    entry_point: "add_row_vector",
    sources: &[ROWWISE],
};

/// Streaming vec4 copy, the bandwidth probe (`gpu/rowwise.wgsl`).
pub const COPY_VEC4: Shader = Shader {
    entry_point: "copy_vec4",
    sources: &[ROWWISE],
};

const CONV: (&str, &str) = ("conv.wgsl", include_str!("../../gpu/conv.wgsl"));

/// 2-D convolution, stride 1, zero or circular padding (`gpu/conv.wgsl`).
pub const CONV_FORWARD: Shader = Shader {
    entry_point: "conv_forward",
    sources: &[CONV],
};

/// The convolution's gradient with respect to its input (`gpu/conv.wgsl`).
pub const CONV_INPUT_GRAD: Shader = Shader {
    entry_point: "conv_input_grad",
    sources: &[CONV],
};

/// The convolution's gradient with respect to its weights (`gpu/conv.wgsl`).
pub const CONV_WEIGHT_GRAD: Shader = Shader {
    entry_point: "conv_weight_grad",
    sources: &[CONV],
};

/// `first` where `second > 0`, else 0: ReLU (`first = second = Z`) and its derivative mask
/// (`gpu/conv.wgsl`).
pub const CONV_RELU_MASK: Shader = Shader {
    entry_point: "conv_relu_mask",
    sources: &[CONV],
};

const IM2COL_FILE: (&str, &str) = ("im2col.wgsl", include_str!("../../gpu/im2col.wgsl"));

/// The convolution's column matrix `Colᵀ[(b,i,j),(c,p,q)] = X[b,c,π(i+p−r),π(j+q−r)]` of a chunk
/// of images, the operand of its GEMMs (`gpu/im2col.wgsl`, wrapped by
/// [`crate::gpu::conv::im2col`]).
pub const IM2COL: Shader = Shader {
    entry_point: "im2col",
    sources: &[IM2COL_FILE],
};

/// The im2col forward layout `Y[b,o,i,j] = Yᵀ[(b,i,j),o]` (`gpu/im2col.wgsl`).
pub const IM2COL_ROWS_TO_NCHW: Shader = Shader {
    entry_point: "rows_to_nchw",
    sources: &[IM2COL_FILE],
};

/// The im2col backward layout `dYᵀ[(b,i,j),o] = dY[b,o,i,j]` (`gpu/im2col.wgsl`).
pub const IM2COL_NCHW_TO_ROWS: Shader = Shader {
    entry_point: "nchw_to_rows",
    sources: &[IM2COL_FILE],
};

/// col2im as a gather, the adjoint of [`IM2COL`]: each input pixel sums the `s²` column entries
/// that read it (`gpu/im2col.wgsl`).
pub const IM2COL_COL2IM: Shader = Shader {
    entry_point: "col2im",
    sources: &[IM2COL_FILE],
};

const RESAMPLE: (&str, &str) = ("resample.wgsl", include_str!("../../gpu/resample.wgsl"));

/// `scale·` block sums of an integer factor: average pooling and the gradient of nearest
/// upsampling (`gpu/resample.wgsl`).
pub const RESAMPLE_POOL_SUM: Shader = Shader {
    entry_point: "pool_sum",
    sources: &[RESAMPLE],
};

/// `scale·` nearest-neighbour upsampling by an integer factor: upsampling and the gradient of
/// average pooling (`gpu/resample.wgsl`).
pub const RESAMPLE_UPSAMPLE: Shader = Shader {
    entry_point: "upsample",
    sources: &[RESAMPLE],
};

/// Bilinear ×2 upsampling, align_corners = false, edges clamped (`gpu/resample.wgsl`).
pub const RESAMPLE_BILINEAR_UP2: Shader = Shader {
    entry_point: "bilinear_up2",
    sources: &[RESAMPLE],
};

/// The adjoint (gradient) of bilinear ×2 upsampling (`gpu/resample.wgsl`).
pub const RESAMPLE_BILINEAR_UP2_GRAD: Shader = Shader {
    entry_point: "bilinear_up2_grad",
    sources: &[RESAMPLE],
};

const GROUP_NORM: (&str, &str) = ("group_norm.wgsl", include_str!("../../gpu/group_norm.wgsl"));

/// GroupNorm's per-group mean and standard deviation (`gpu/group_norm.wgsl`).
pub const GROUP_NORM_STATS: Shader = Shader {
    entry_point: "group_norm_stats",
    sources: &[GROUP_NORM],
};

/// GroupNorm's normalisation and affine map (`gpu/group_norm.wgsl`).
pub const GROUP_NORM_APPLY: Shader = Shader {
    entry_point: "group_norm_apply",
    sources: &[GROUP_NORM],
};

/// GroupNorm's backward group moments `A = Σdz/n`, `B = Σdz·z/n` (`gpu/group_norm.wgsl`).
pub const GROUP_NORM_GRAD_STATS: Shader = Shader {
    entry_point: "group_norm_grad_stats",
    sources: &[GROUP_NORM],
};

/// GroupNorm's input gradient (`gpu/group_norm.wgsl`).
pub const GROUP_NORM_GRAD_INPUT: Shader = Shader {
    entry_point: "group_norm_grad_input",
    sources: &[GROUP_NORM],
};

/// GroupNorm's γ and β gradients (`gpu/group_norm.wgsl`).
pub const GROUP_NORM_GRAD_AFFINE: Shader = Shader {
    entry_point: "group_norm_grad_affine",
    sources: &[GROUP_NORM],
};

const EMBEDDING: (&str, &str) = ("embedding.wgsl", include_str!("../../gpu/embedding.wgsl"));

/// The σ embedding's forward: a feature map plus a linear map of each image's sinusoidal
/// features of log σ, broadcast over the image (`gpu/embedding.wgsl`).
pub const EMBED_ADD: Shader = Shader {
    entry_point: "embed_add",
    sources: &[EMBEDDING],
};

/// The σ embedding's gradient with respect to its linear map and bias (`gpu/embedding.wgsl`).
pub const EMBED_GRAD: Shader = Shader {
    entry_point: "embed_grad",
    sources: &[EMBEDDING],
};

const UNET: (&str, &str) = ("unet.wgsl", include_str!("../../gpu/unet.wgsl"));

/// Channel concatenation `[first | second]` of two NCHW tensors, the U-Net's skip connection
/// (`gpu/unet.wgsl`).
pub const UNET_CONCAT: Shader = Shader {
    entry_point: "unet_concat",
    sources: &[UNET],
};

/// A channel slice of an NCHW tensor, optionally added to a second tensor: the gradient of one
/// operand of [`UNET_CONCAT`] (`gpu/unet.wgsl`).
pub const UNET_TAKE: Shader = Shader {
    entry_point: "unet_take",
    sources: &[UNET],
};

const CHOLESKY: (&str, &str) = ("cholesky.wgsl", include_str!("../../gpu/cholesky.wgsl"));

/// Factors one diagonal tile `A = LLᵀ` in place in f32, one workgroup (`gpu/cholesky.wgsl`,
/// [`crate::gpu::gaussian`]).
pub const CHOLESKY_TILE: Shader = Shader {
    entry_point: "cholesky_tile",
    sources: &[CHOLESKY],
};

/// `W = L⁻¹` of a factored diagonal tile by forward substitution, one workgroup
/// (`gpu/cholesky.wgsl`).
pub const INVERT_LOWER_TILE: Shader = Shader {
    entry_point: "invert_lower_tile",
    sources: &[CHOLESKY],
};

/// Every kernel of the crate (the naga validation test walks this list and checks that every
/// file in `gpu/` appears in it).
pub const ALL: &[Shader] = &[
    PHILOX_FILL,
    GMM_POSTERIOR,
    MC_POSTERIOR,
    JVP_AFFINE,
    JVP_SOFT_THRESHOLD,
    JVP_POWER_MAP,
    JVP_MLP,
    JVP_GMM,
    GEMM,
    GEMM_BLOCKED,
    GEMM_DIRECT,
    GEMM_LARGE,
    GEMM_SPLIT_REDUCE,
    POWER_FEATURES,
    MLP_ADAM,
    DENSE_GATHER,
    DENSE_RESIDUAL,
    DENSE_COLUMN_SUM,
    ROW_LOGSUMEXP,
    ROW_SOFTMAX,
    ROW_SOFTMAX_STATS,
    ROW_SOFTMAX_APPLY,
    ROW_MAX_ABS,
    ADD_ROW_VECTOR,
    COPY_VEC4,
    CONV_FORWARD,
    CONV_INPUT_GRAD,
    CONV_WEIGHT_GRAD,
    CONV_RELU_MASK,
    IM2COL,
    IM2COL_ROWS_TO_NCHW,
    IM2COL_NCHW_TO_ROWS,
    IM2COL_COL2IM,
    RESAMPLE_POOL_SUM,
    RESAMPLE_UPSAMPLE,
    RESAMPLE_BILINEAR_UP2,
    RESAMPLE_BILINEAR_UP2_GRAD,
    GROUP_NORM_STATS,
    GROUP_NORM_APPLY,
    GROUP_NORM_GRAD_STATS,
    GROUP_NORM_GRAD_INPUT,
    GROUP_NORM_GRAD_AFFINE,
    EMBED_ADD,
    EMBED_GRAD,
    UNET_CONCAT,
    UNET_TAKE,
    CHOLESKY_TILE,
    INVERT_LOWER_TILE,
];

/// GEMM on the tensor cores: operands rounded to f16, 16×16×16 cooperative-matrix
/// multiply-adds accumulating in f32, split-K slices and the epilogues of [`GEMM`]
/// (`gpu/gemm_coop.wgsl`, compiled in front of `gpu/gemm_epilogue.wgsl` and `gpu/gemm.wgsl`,
/// whose parameters, store and operand readers it uses). Needs the device features
/// [`GEMM_COOP_FEATURES`].
pub const GEMM_COOP: Shader = Shader {
    entry_point: "gemm_coop",
    sources: &[
        ("gemm_coop.wgsl", include_str!("../../gpu/gemm_coop.wgsl")),
        TANH,
        GEMM_EPILOGUE,
        GEMM_SMALL,
    ],
};

/// The device features [`GEMM_COOP`] uses: cooperative matrices, f16 and the subgroup built-ins.
pub const GEMM_COOP_FEATURES: wgpu::Features = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::SUBGROUP);

/// The kernels that need optional device features, with those features: compiled only on a
/// device that has them (the naga test validates them with the matching capabilities).
pub const OPTIONAL: &[(Shader, wgpu::Features)] = &[(GEMM_COOP, GEMM_COOP_FEATURES)];

impl Shader {
    /// The module's full WGSL text: its files concatenated in order.
    pub fn source(&self) -> String {
        self.sources
            .iter()
            .map(|(_, text)| *text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}
