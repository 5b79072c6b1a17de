#!/usr/bin/env bash
# The checks that need CUDA, in one script that a GPU machine runs in a few minutes and that prints
# what it measured. Such a machine has torch, no network, and takes at most 64 MiB of carried files;
# the bundled GGUF (98 MB) cannot travel, so evolution here uses the scripted variation of the tests
# (no LLM) and llama.cpp's GPU offload is NOT checked.
#
#   tools/gpu_check.sh --prepare   on a connected machine: wheels and Fashion-MNIST into .gpu-carry/
#   tools/gpu_check.sh             on the GPU machine, from the repository root, with .gpu-carry/ carried
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu-carry
# What astevo's evaluation and the scripted evolution import besides torch and numpy, which a torch
# machine has: with compiled parts (one wheel per Python version) and pure Python.
COMPILED=(libcst pyyaml deap moocore cffi)
PURE=(fvcore iopath portalocker tabulate termcolor tqdm typing_extensions wcwidth platformdirs pycparser)

if [ "${1:-}" = "--prepare" ]; then
    rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/fashion-mnist"
    python3 -m pip wheel -q --no-deps -w "$CARRY/wheels" . "${PURE[@]}"  # builds astevo's and fvcore's own
    for version in 3.10 3.11 3.12 3.13; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
            -d "$CARRY/wheels" "${COMPILED[@]}"
    done
    cp /usr/share/datasets/fashion-mnist/*.gz "$CARRY/fashion-mnist/"
    du -sh "$CARRY"
    exit 0
fi

[ -d "$CARRY/wheels" ] || { echo "error: $CARRY/wheels is missing; run tools/gpu_check.sh --prepare first" >&2; exit 2; }
started=$SECONDS
python3 -c "import torch, numpy" || { echo "error: this machine lacks torch or numpy, which are not carried" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --find-links "$CARRY/wheels" "${COMPILED[@]}" "${PURE[@]}" \
    "$CARRY"/wheels/astevo-*.whl
export ASTEVO_DATA=$PWD/$CARRY/fashion-mnist XDG_CACHE_HOME=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "== installed in $((SECONDS - started)) s; llama.cpp GPU offload: not checked (the GGUF cannot be carried)"

echo "== CUDA code paths: device placement, pinned memory, AMP, training throughput"
python3 tools/check_cuda_paths.py --data "$ASTEVO_DATA"

echo "== evolve (scripted variation, real sandboxed training on the GPU): 1 slot, then 2 slots sharing one GPU"
for workers in 1 2; do
    folder=$(mktemp -d)/run
    begin=$SECONDS
    python3 -m tests.scripted_evolution "$folder" --workers "$workers" > /dev/null
    echo "$workers slot(s): $((SECONDS - begin)) s"
    python3 - "$folder" "$workers" <<'PY'
import sys
from astevo.store.run_store import RunStore
with RunStore.open(sys.argv[1]) as store:
    individuals = store.individuals()
rows = [(i.id, i.operator, i.status, i.metrics.get("val_accuracy"), round(i.evaluate_seconds or 0, 2)) for i in individuals]
print(f"  {len(rows)} individuals, {sum(r[2] == 'evaluated' for r in rows)} evaluated; (id, operator, status, val acc, s):")
for row in rows:
    print("   ", row)
PY
done

echo "== --workers auto on this machine: measured with the scripted variation (no LLM can travel here), then the"
echo "   same timings with a model offloaded to the GPU (1 core, 9 s per proposal) and one on the CPU (half the cores)"
python3 - <<'PY'
import dataclasses, os
from astevo.code.blocks import ModelFile
from astevo.evaluation.executors.gpus import visible_gpus
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evaluation.executors.slot_plan import plan_slots
from astevo.evolution.machine_timings import measure_timings
from astevo.evolution.run_setup import plan_run
from astevo.settings import EvolveConfig, apply
from tests.scripted_evolution import SEED
from tests.scripted_variation import ScriptedVariation
planned = plan_run(apply(EvolveConfig(), {"blocks": ["SE_LN", "DFSEBV2"]}), ModelFile.read(SEED), None, LocalEvaluator())
measured = measure_timings(planned, ScriptedVariation(), len(visible_gpus()))
timings = measured.timings
print(f"measured in {measured.seconds:.1f} s: {timings}")
cores = os.cpu_count() or 1
for label, model_cores in (("scripted variation", timings.model_cores), ("offloaded model", 1.0), ("model on the CPU", cores // 2)):
    plan = plan_slots(dataclasses.replace(timings, model_cores=model_cores, propose_seconds=max(timings.propose_seconds, 9.0)))
    print(f"  {label}: {plan.reason}")
PY

echo "== train bench on the GPU"
if python3 -c "import torchvision" 2> /dev/null; then
    python3 tools/bench_train.py --dataset fashion-mnist --data "$ASTEVO_DATA"
else
    echo "torchvision is not installed here: tools/bench_train.py's conventional loop cannot run; astevo's own throughput is above"
fi
echo "== gpu_check done in $((SECONDS - started)) s"
