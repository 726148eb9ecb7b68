#!/usr/bin/env bash
# Reproduce the package's CPU-trained checkpoints, their ablations and their evaluation JSON, on a 2-core CPU.
#
#   training/cpu_defaults.sh [data|single_stage|single_stage_variants|ablations|ablations_weak|acr|dir|dgcl|pipeline|
#                             package|all]
#
# data:          synthetic shards (128 px) under data/cpu/: multi (1-4 hands) and interacting two-hand scenes,
#                3000 training + 500 held-out images each (held-out seed 1000, disjoint from training seed 0);
#                24000 single-hand crops (two 12000-image streams, seeds 0 and 500) for the detector's stage 1,
#                500 held-out crops (seed 9000)
# single_stage:  the detector default: config/cpu/single_stage_stage0.yaml (2D keypoint heatmaps on crops),
#                _stage1_lifter.yaml (reconstruction on crops, 6D orientation + keypoint lifter), then
#                single_stage_lifter.yaml (multi-hand scenes) + eval on held-out scenes and crops with the
#                mean-pose baseline
# single_stage_variants: the same chain without the lifter (axis-angle), and the stage-1 runs (axis-angle, 6D,
#                6D + lifter) evaluated on held-out crops at the ground-truth centres
# ablations:     single-stage without / with the bone + consistency losses (lifter stage 1 on crops; and the first
#                attempt's arms on scenes), all with 3D supervision
# ablations_weak: the same pair in the paper's weakly supervised setting (2D labels only; its Table IV)
# acr:           ACR variants G+C+P (the default), G, G+P, each from the shipped detector's backbone with the
#                keypoint lifter (config/cpu/_acr.yaml)
# dir:           DIR T=2 multi-plane (the refiner default), T=1, single-plane, each from the shipped detector's
#                backbone with the keypoint lifter (config/cpu/dir.yaml)
# dgcl:          HandDGCL GCN baseline and GCN + DGCLNet (detector backbone + keypoint lifter, config/cpu/dgcl.yaml)
# pipeline:      detector alone vs detector + refiner on the interacting held-out set (through the Pipeline)
# package:       fp16 inference copies -> hand_recon_core/assets/{detector,refiner}_default.pt, eval JSON ->
#                training/results/
# Every run writes runs/cpu/<experiment>/ (checkpoints, curves, eval/); the tables are made by
# training/cpu_tables.py from those folders.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .ros_ws/env.sh ]; then source .ros_ws/env.sh; fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
DATA=data/cpu
MULTI_TEST="synthetic-multi:shards=$DATA/multi_test"
INTER_TEST="synthetic-interacting:shards=$DATA/inter_test"
SINGLE_TEST="synthetic-single:shards=$DATA/single_test"

synth() {  # family count seed out [params...]
  local family=$1 count=$2 seed=$3 out=$4; shift 4
  [ -f "$out/index.json" ] || hand-recon synth --family "$family" --count "$count" --size 128 --seed "$seed" \
    --out "$out" --workers 2 --quiet "$@"
}

train() {  # config
  local name; name=$(basename "$1" .yaml)
  if [ -f "runs/cpu/$name/checkpoints/.done" ]; then return; fi
  hand-recon train --config "$1" --resume auto
  touch "runs/cpu/$name/checkpoints/.done"
}

last_ckpt() { ls runs/cpu/"$1"/checkpoints/step_*.pt | tail -1; }

evaluate() {  # experiment data-spec [out-folder [extra eval args...]]
  local run=$1 data=$2 folder=${3:-eval}; shift $(( $# < 3 ? $# : 3 ))
  hand-recon eval --checkpoint "$(last_ckpt "$run")" --data "$data" --out "runs/cpu/$run/$folder" \
    --baseline mean-pose --vis 8 "$@" > /dev/null
}

step_data() {
  synth multi 3000 0 $DATA/multi_train --param 'num_hands=[1,4]' --param 'extent_range=[0.2,0.6]'
  synth multi 500 1000 $DATA/multi_test --param 'num_hands=[1,4]' --param 'extent_range=[0.2,0.6]'
  synth interacting 3000 0 $DATA/inter_train
  synth interacting 500 1000 $DATA/inter_test
  synth single 12000 0 $DATA/single_train_a --no-extras
  synth single 12000 500 $DATA/single_train_b --no-extras
  synth single 500 9000 $DATA/single_test --no-extras
}
step_single_stage() {
  # the default: stage 0 (heatmaps) -> stage 1 with the keypoint lifter (crops) -> stage 2 (scenes)
  train config/cpu/single_stage_stage0.yaml
  train config/cpu/single_stage_stage1_lifter.yaml
  train config/cpu/single_stage_lifter.yaml
  evaluate single_stage_lifter "$MULTI_TEST"
  evaluate single_stage_lifter "$SINGLE_TEST" eval_single
}
step_single_stage_variants() {  # the same chain without the lifter, and the stage-1 comparisons on crops
  train config/cpu/single_stage_stage1.yaml
  train config/cpu/single_stage.yaml
  evaluate single_stage "$MULTI_TEST"
  train config/cpu/single_stage_stage1_6d.yaml
  for run in single_stage_stage1 single_stage_stage1_6d single_stage_stage1_lifter; do
    evaluate "$run" "$SINGLE_TEST" eval_single --set method.kwargs.eval_centres=ground_truth
  done
}
step_ablations() {
  for arm in base full; do  # on the lifter chain's stage 1, held-out crops, centre known
    train "config/cpu/single_stage_ablation_lifter_$arm.yaml"
    evaluate "single_stage_ablation_lifter_$arm" "$SINGLE_TEST" eval_single \
      --set method.kwargs.eval_centres=ground_truth
  done
  for arm in base full; do  # the first attempt's arms (from scratch on scenes, 300 steps)
    train "config/cpu/single_stage_ablation_$arm.yaml"; evaluate "single_stage_ablation_$arm" "$MULTI_TEST"
  done
}
detector_backbone() {  # the shipped detector's ResNet, the starting backbone of the ACR runs (config/cpu/_acr.yaml)
  [ -f runs/cpu/detector_backbone.pth ] || hand-recon export --checkpoint hand_recon_core/assets/detector_default.pt \
    --format backbone --out runs/cpu/detector_backbone.pth > /dev/null
}
step_ablations_weak() {  # the paper's Table IV setting: 2D labels only, from the 2D-only stage 0
  train config/cpu/single_stage_stage0.yaml
  for arm in base full; do
    train "config/cpu/single_stage_ablation_weak_$arm.yaml"
    # every hand at its ground-truth centre is scored (--min-affinity 0): weakly supervised boxes may overlap their
    # hand by less than the usual 0.1 IoU, which would compare the arms on different hands
    evaluate "single_stage_ablation_weak_$arm" "$SINGLE_TEST" eval_single_all \
      --set method.kwargs.eval_centres=ground_truth --min-affinity 0
  done
}
step_acr() {
  detector_backbone
  for v in gcp g gp; do train "config/cpu/acr_$v.yaml"; evaluate "acr_$v" "$INTER_TEST" eval --no-penetration; done
}
PEN=(--penetration-images 100)  # the voxelised interpenetration volume costs ~1 s per two-hand image: first 100
step_dir() {
  detector_backbone
  for v in dir dir_t1 dir_single_plane; do train "config/cpu/$v.yaml"; evaluate "$v" "$INTER_TEST" eval "${PEN[@]}"; done
  # the initial estimate of the default DIR (stage 0), for "refined vs initial"
  hand-recon eval --checkpoint "$(last_ckpt dir)" --data "$INTER_TEST" --out runs/cpu/dir/eval_initial \
    --set method.kwargs.predict_stage=0 "${PEN[@]}" > /dev/null
}
step_dgcl() {
  detector_backbone
  for v in dgcl_gcn dgcl; do train "config/cpu/$v.yaml"; evaluate "$v" "$INTER_TEST" eval "${PEN[@]}"; done
}
detector_ckpt() {  # the detector run of this machine, else the shipped default it was packed from
  if compgen -G "runs/cpu/single_stage_lifter/checkpoints/step_*.pt" > /dev/null; then last_ckpt single_stage_lifter
  else echo hand_recon_core/assets/detector_default.pt; fi
}
step_pipeline() {
  hand-recon eval --checkpoint "$(detector_ckpt)" --pipeline --data "$INTER_TEST" \
    --out runs/cpu/pipeline/detector_alone "${PEN[@]}" > /dev/null
  hand-recon eval --checkpoint "$(detector_ckpt)" --refiner "$(last_ckpt dir)" --data "$INTER_TEST" \
    --out runs/cpu/pipeline/detector_dir "${PEN[@]}" > /dev/null
}
package() {  # experiment asset-name step: only a run that beats its mean-pose baseline by a wide margin ships
  if python training/cpu_tables.py --runs runs/cpu --gate "$1"; then
    hand-recon export --checkpoint "$(last_ckpt "$1")" --format package --out "hand_recon_core/assets/$2" \
      --reproduce "training/cpu_defaults.sh data $3 package" --eval-json "runs/cpu/$1/eval/metrics.json"
  fi
}
step_package() {
  python training/cpu_tables.py --runs runs/cpu --out training/results
  if compgen -G "runs/cpu/single_stage_lifter/checkpoints/step_*.pt" > /dev/null; then
    package single_stage_lifter detector_default.pt single_stage
  fi
  package acr_gcp acr_default.pt acr
  # the refiner joins every default pipeline: it must also beat the detector alone through the Pipeline
  if python training/cpu_tables.py --runs runs/cpu --gate-refiner; then package dir refiner_default.pt "dir pipeline"; fi
}

steps=("$@")
if [ ${#steps[@]} -eq 0 ] || [ "${steps[0]}" = all ]; then
  steps=(data single_stage single_stage_variants ablations ablations_weak acr dir dgcl pipeline package)
fi
for s in "${steps[@]}"; do "step_$s"; done
