#!/usr/bin/env bash
# The src/theorems stratum of the mutation sample (mutants.md): every 40th mutant (round-robin)
# of each theorem's module, tested against the unit tests, that theorem's own tests/<id>.rs and
# the registry test (the theorem's module is what tests/<id>.rs checks; src/theorems/mod.rs, which
# every theorem uses, gets the whole test set of .cargo/mutants.toml;
# -f does not narrow the config's examine_globs, hence --no-config). Run in a clean clone: it mutates
# the checkout in place. Outcomes go to $OUT/<id>/mutants.out/outcomes.json.
#   scripts/mutants_theorems.sh OUT [id ...]
set -euo pipefail
out=${1:?usage: scripts/mutants_theorems.sh OUT [id ...]}
shift
ids=("$@")
mkdir -p "$out"
# A proptest failure is the planted bug's: do not save it for the next mutant to replay.
export NO_REGRESSION_FILES=1
if [ ${#ids[@]} -eq 0 ]; then
  ids=(tweedie miyasawa_covariance memorization score_matching bottleneck_manifold rank_k
       kl_bound sure linear_gaussian polynomial_moments oracle_rate shuffled_pixels entropy
       jacobian_geometry locality mod)
fi
common=(--in-place --baseline skip --timeout 400 --build-timeout 600
        --sharding round-robin --shard 0/40)
for id in "${ids[@]}"; do
  if [ "$id" = mod ]; then
    cargo mutants --no-config --profile mutants "${common[@]}" -f src/theorems/mod.rs \
      -o "$out/$id" -- --lib --test proof_check -- targets:: theorem_registry:: tweedie:: \
      miyasawa_covariance:: sure:: linear_gaussian:: rank_k:: polynomial_moments:: \
      bottleneck_manifold:: memorization:: kl_bound:: oracle_rate:: shuffled_pixels:: entropy:: \
      jacobian_geometry:: locality::
  else
    cargo mutants --no-config --profile mutants "${common[@]}" \
      -f "src/theorems/$id.rs" -f "src/theorems/$id/**" -o "$out/$id" \
      -- --lib --test proof_check -- "$id::" theorem_registry::
  fi || true   # cargo-mutants exits non-zero when a mutant is missed
done
