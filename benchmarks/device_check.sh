#!/usr/bin/env bash
# The GPU checks of issue 12 as one prepared script, for a session that is lent a CUDA machine (the `device` tool:
# one command of at most 10 minutes, 15 minutes of device time in all, a bare machine whose python3 has torch but
# not kakusan's peers, and no network).
#
#   benchmarks/device_check.sh prepare   # HERE, once (needs PyPI): .device/ = diffusers' wheels for the device's
#                                        # Python 3.12 and a compressed copy of the MNIST cache (~25 MB, gitignored)
#   bash benchmarks/device_check.sh run  # THERE: the device tool's command, with carry [".device"], timeout_s 540
#   benchmarks/device_check.sh smoke     # HERE: every step of `run` on the CPU at toy sizes (8×8 digits, 1 epoch)
#
# `run` writes to $OUT (the device tool brings back at most 8 files of 16 MiB): summary.txt (each step's exit
# status and seconds), env.txt, tests.log, bench.log (+ bench_bf16.json, bench_fp32.json), vlb.log (training, the
# ten-step head, evaluation, the run's config.json) and vlb.json (`kakusan diffusion evaluate --json`). Each step has its own time limit
# and a failed step does not stop the next; all of it ends inside BUDGET_S seconds (default 450), which leaves a
# 15-minute lease time to start the machine and rerun one part (STEPS=vlb, say). In this order:
#   1. bench_diffusion.py on CUDA, kakusan against diffusers 0.42, bf16 autocast and float32 (the goal rows);
#   2. the MNIST VLB goal (≤ 1.05 bits/dim): the class-conditional UNet trained for as many epochs as TRAIN_S
#      seconds allow (timed from 20 steps first), a head for t ≤ 10, the VLB on 1,000 test images;
#   3. with the time left, the GPU tests (marked requires("gpu")) and the diffusion / training-loop tests.
# Knobs (environment): CHANNELS (UNet widths, default 64,128,128), TRAIN_S (default 180), DATA (default mnist),
# DEVICE (default cuda), BF16 (default 1), STEPS (default "bench vlb tests": which of the three to run), BUDGET_S.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-run}
PREP=$ROOT/.device

if [ "$MODE" = prepare ]; then
    set -e
    mkdir -p "$PREP/whl" "$PREP/data/mnist"
    # diffusers 0.42.1 and what it needs beyond the device image (huggingface-hub 2.x, its httpx2 and hf-xet,
    # safetensors ≥ 0.8): pure-Python or manylinux wheels for CPython 3.12
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$PREP/whl" diffusers==0.42.1 huggingface_hub==2.5.0 importlib_metadata==10.2.0 zipp==4.1.2 \
        httpx2==2.17.0 httpcore2==2.17.0 hf-xet==1.8.0 lazy-importer==0.1.0 safetensors==0.8.0 click==8.5.1 \
        truststore==0.10.5
    .venv/bin/python - "$PREP/data/mnist/mnist.npz" <<'EOF'
import sys
import numpy as np
from kakusan.data.datasets import mnist_cache_path, read_mnist_cache
np.savez_compressed(sys.argv[1], **read_mnist_cache(mnist_cache_path()))
EOF
    du -sh "$PREP"
    echo "prepared $PREP: now run \`bash benchmarks/device_check.sh run\` through the device tool, carry [\".device\"]"
    exit 0
fi

if [ "$MODE" = smoke ]; then
    export DEVICE=${DEVICE:-cpu} DATA=${DATA:-digits} CHANNELS=${CHANNELS:-16,32} TRAIN_S=${TRAIN_S:-20} SMOKE=1
    export OUT=${OUT:-$(mktemp -d)} PY=${PY:-$ROOT/.venv/bin/python} PEER_PY=${PEER_PY:-$ROOT/benchmarks/.peer-venv-diffusers/bin/python}
elif [ "$MODE" != run ]; then
    echo "usage: benchmarks/device_check.sh prepare|run|smoke" >&2
    exit 2
fi

OUT=${OUT:-$ROOT/.device/out}
mkdir -p "$OUT"
PY=${PY:-python3}
PEER_PY=${PEER_PY:-python3}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-mnist}
CHANNELS=${CHANNELS:-64,128,128}
TRAIN_S=${TRAIN_S:-180}
BF16=${BF16:-1}
SMOKE=${SMOKE:-0}
STEPS=${STEPS:-bench vlb tests}
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
[ -d "$PREP/data" ] && export KAKUSAN_DATA=$PREP/data
KAKUSAN="$PY -m kakusan"
RUNS=$(mktemp -d)
trap 'rm -rf "$RUNS"' EXIT
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"

DEADLINE=$((SECONDS + ${BUDGET_S:-450}))  # the device tool stops a command at 600 s; leave time to rerun a part

step() {  # step NAME SECONDS LOG command…: run it under a time limit (cut to the time left), record its exit status
    local name=$1 limit=$2 log=$3 t0=$SECONDS rc
    shift 3
    if [ $((DEADLINE - SECONDS)) -lt "$limit" ]; then limit=$((DEADLINE - SECONDS)); fi
    if [ "$limit" -lt 5 ]; then echo "$name: skipped, no time left" | tee -a "$SUMMARY"; return 124; fi
    echo "== $name: $*" >> "$log"
    timeout -s INT "$limit" "$@" >> "$log" 2>&1
    rc=$?
    echo "$name: exit $rc, $((SECONDS - t0)) s (limit $limit s)" | tee -a "$SUMMARY"
    return $rc
}

# 0. the machine, and diffusers installed from the carried wheels
{
    date -u; uname -a; nvidia-smi 2>&1 | head -15; nproc
    $PY -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    git -C "$ROOT" log -1 --format='git %h %s' 2>/dev/null
} > "$OUT/env.txt" 2>&1
if [ "$SMOKE" = 0 ] && ls "$PREP"/whl/*.whl > /dev/null 2>&1; then
    step install 120 "$OUT/env.txt" $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$PREP"/whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
$PY -c "import kakusan, diffusers; print('kakusan', kakusan.__version__, 'diffusers', diffusers.__version__)" \
    >> "$OUT/env.txt" 2>&1

wanted() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }


# 1. the speed benchmark on the device, bf16 autocast and float32
if wanted bench; then
QUICK=$([ "$SMOKE" = 1 ] && echo "--quick --repeats 1 --configs tiny" || echo "--repeats 6")
step bench-bf16 75 "$OUT/bench.log" $PY benchmarks/bench_diffusion.py --device "$DEVICE" --bf16 --threads 4 \
    --peer-python "$PEER_PY" $QUICK --json "$OUT/bench_bf16.json"
step bench-fp32 60 "$OUT/bench.log" $PY benchmarks/bench_diffusion.py --device "$DEVICE" --threads 4 \
    --peer-python "$PEER_PY" $QUICK --configs tiny --json "$OUT/bench_fp32.json"
fi

# 2. the VLB goal: epochs from a timed 20 steps, then the run, its ten-step head and the VLB
if wanted vlb; then
BF=$([ "$BF16" = 1 ] && echo "--bf16" || echo "")
EPOCHS=$($PY - "$DATA" "$CHANNELS" "$DEVICE" "$TRAIN_S" "$BF16" 2>> "$OUT/vlb.log" <<'EOF'
import sys, time, dataclasses, torch
from kakusan.data import load
from kakusan.diffusion import Diffusion, DiffusionConfig
from kakusan.diffusion.objectives import DiffusionLoss
from kakusan.diffusion.unet import UNetConfig
data, channels, device, budget, bf16 = sys.argv[1], sys.argv[2], torch.device(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
ds = load(data)
x = torch.rand(128, 1, *ds.x_train.shape[-2:])  # the time of a step does not depend on the pixels
widths = tuple(int(c) for c in channels.split(","))
unet = dataclasses.replace(UNetConfig(), channels=widths, attention=(False,) * (len(widths) - 1) + (True,))
model = Diffusion(DiffusionConfig(tuple(x.shape[1:]), denoiser=unet, n_classes=10, levels=256, shift=0.5, scale=0.5)).to(device)
opt, loss, g = torch.optim.Adam(model.parameters(), 1e-3), DiffusionLoss("simple"), torch.Generator(device).manual_seed(0)
batch = (x.to(device), torch.as_tensor(ds.y_train[:128]).long().to(device))
def steps(n):
    for _ in range(n):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = loss(model, batch, g)
        opt.zero_grad(); out.loss.backward(); opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
steps(3); t = time.perf_counter(); steps(20); per = (time.perf_counter() - t) / 20
per_epoch = -(-len(ds.x_train) // 128)
print(f"{per * 1e3:.1f} ms per step at batch 128, {per_epoch} steps per epoch", file=sys.stderr)
print(max(1, int(budget / (per * per_epoch))))
EOF
)
echo "epochs for TRAIN_S=$TRAIN_S s: ${EPOCHS:-?}" | tee -a "$SUMMARY" >> "$OUT/vlb.log"
RUN=$RUNS/vlb
step train $((TRAIN_S + 90)) "$OUT/vlb.log" $KAKUSAN diffusion train --data "$DATA" --conditional \
    --channels "$CHANNELS" --epochs "${EPOCHS:-1}" $BF --device "$DEVICE" --checkpoint-every 500 --run-dir "$RUN"
step head 60 "$OUT/vlb.log" $KAKUSAN diffusion train --data "$DATA" --conditional --loss decoder \
    --decoder-steps 10 --init "$RUN" --epochs "$([ "$SMOKE" = 1 ] && echo 1 || echo 2)" --device "$DEVICE" \
    --run-dir "$RUN-head10"
ROWS=$([ "$SMOKE" = 1 ] && echo 50 || echo 1000)
step vlb 60 "$OUT/vlb.log" sh -c "$KAKUSAN diffusion evaluate '$RUN-head10' --nll vlb --rows $ROWS --n-t 50 \
    --device '$DEVICE' --runs-root '$RUNS' --json > '$OUT/vlb.json'"
cat "$RUN/config.json" >> "$OUT/vlb.log" 2>/dev/null
fi

# 3. tests with CUDA present, in the time left
if [ "$SMOKE" = 0 ] && wanted tests; then
    step tests 120 "$OUT/tests.log" $PY -m pytest -q -p no:cacheprovider -n 8 -rs tests/mcmc/test_persistent.py \
        tests/learn/test_plm_solver.py tests/diffusion tests/train
fi
cat "$SUMMARY"
