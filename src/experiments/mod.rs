//! Experiments behind `diffusion-theorems exp …`: runs that reproduce a paper's figure, write
//! PNG plots and a JSON summary, and are too heavy (or too visual) for `cargo test`.

pub mod polynomial_2d;
