//! Every WGSL file parses and validates with naga.

use super::*;

/// Every file in gpu/ is part of some kernel, and every kernel parses and validates with naga
/// (with no optional capabilities, as requested from the device; the kernels of
/// `shaders::OPTIONAL` with the capabilities of their features) and the optional ones also
/// translate to SPIR-V — on the CPU, no adapter needed.
#[test]
fn every_wgsl_file_parses_and_validates_with_naga() {
    use naga::valid::Capabilities;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gpu");
    let capabilities = |features: wgpu::Features| {
        let mut caps = Capabilities::empty();
        for (feature, cap) in [
            (
                wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
                Capabilities::COOPERATIVE_MATRIX,
            ),
            (wgpu::Features::SHADER_F16, Capabilities::SHADER_FLOAT16),
            (wgpu::Features::SUBGROUP, Capabilities::SUBGROUP),
        ] {
            if features.contains(feature) {
                caps |= cap;
            }
        }
        caps
    };
    let kernels: Vec<(shaders::Shader, Capabilities)> = shaders::ALL
        .iter()
        .map(|s| (*s, Capabilities::empty()))
        .chain(
            shaders::OPTIONAL
                .iter()
                .map(|(s, features)| (*s, capabilities(*features))),
        )
        .collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".wgsl") {
            assert!(
                kernels
                    .iter()
                    .any(|(s, _)| s.sources.iter().any(|(f, _)| *f == name)),
                "gpu/{name} belongs to no kernel in src/gpu/shaders.rs"
            );
        }
    }
    for (shader, caps) in kernels {
        let module = naga::front::wgsl::parse_str(&shader.source()).unwrap_or_else(|e| {
            panic!(
                "{}: {}",
                shader.entry_point,
                e.emit_to_string(&shader.source())
            )
        });
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {e:?}", shader.entry_point));
        assert!(
            module
                .entry_points
                .iter()
                .any(|e| e.name == shader.entry_point),
            "{} has no entry point of that name",
            shader.entry_point
        );
        if !caps.is_empty() {
            naga::back::spv::write_vec(&module, &info, &Default::default(), None)
                .unwrap_or_else(|e| panic!("{} to SPIR-V: {e:?}", shader.entry_point));
        }
    }
}
