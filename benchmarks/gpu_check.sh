#!/usr/bin/env bash
# The GPU check: on a machine with one NVIDIA GPU, CuPy and a CUDA build of PyTorch (no network needed),
# in under 8 minutes (the sum of the parts' time limits is 475 s):
#
#   env                  versions, the GPU, whether tinytensor and torch both see it
#   tests                the whole test suite on the cuda device: TINYTENSOR_TEST_DEVICES=cuda, so every
#                        test that takes a `device` runs on cuda, and the rest as everywhere (TEST_ARGS
#                        overrides `tests`)
#   transformer_reverse  the flagship example (README), 300 steps on cuda
#   char_gpt             examples/char_gpt.py, 300 steps on cuda
#   bench_core           benchmarks/bench_core.py --device cuda (tinytensor on CuPy against torch CUDA):
#                        attention, causal attention, the per-op chain
#   bench_nn             benchmarks/bench_nn.py --device cuda: the encoder, GPT and ViT training steps
#                        (CORE_CASES, NN_CASES override; every case is a few fresh processes)
#
# then one summary table: pass/FAIL/TIMEOUT per part, its seconds and its limit, and its last word (the
# pytest counts, the example's metric, the benchmarks' first-step agreement). A part that fails or runs
# out of time does not stop the others (each runs under `timeout`, which interrupts it with SIGINT so
# that pytest still prints what failed); the exit status is 1 if any part failed.
#
#   benchmarks/gpu_check.sh              # on the GPU machine
#   benchmarks/gpu_check.sh --dry-run    # the same parts on the CPU at toy sizes (or DEVICE=cpu):
#                                        # one test file, 3 training steps, --tiny benchmarks with
#                                        # 1 repeat, a thread sweep and a plot; about a minute
#
# Each part's output goes to $LOG_DIR/<part>.log (default: a new folder under /tmp), with the examples'
# checkpoints, the benchmarks' JSON files (and, in the dry run, their plots) and summary.txt.
# Environment: PYTHON (default python), LOG_DIR, TEST_ARGS, TEST_WORKERS (pytest-xdist processes where
# it is installed, default 8), CORE_CASES, NN_CASES, and the limits in seconds: TESTS_LIMIT (240),
# EXAMPLE_LIMIT (45 each), CORE_LIMIT (50), NN_LIMIT (80); env has 15.
set -u
cd "$(dirname "$0")/.." || exit 2

DRY=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$arg' (expected --dry-run or --help)" >&2; exit 2 ;;
    esac
done
[ "${DEVICE:-cuda}" = cpu ] && DRY=1
PY=${PYTHON:-python}
LOG_DIR=${LOG_DIR:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
mkdir -p "$LOG_DIR" || exit 2
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DRY" = 1 ]; then
    DEVICE=cpu
    TEST_DEVICES=cpu
    TEST_ARGS=${TEST_ARGS:-tests/test_tensor.py -k cpu}
    REVERSE_ARGS=(--steps 3 --batch-size 16 --max-len 5 --d-model 16 --nhead 2 --layers 1
                  --dim-feedforward 32 --warmup 2 --test-size 20)
    GPT_ARGS=(--steps 3 --batch-size 4 --block-size 24 --d-model 16 --nhead 2 --layers 1 --warmup 1
              --eval-windows 4 --sample-chars 20)
    CORE_ARGS=(--tiny --repeat 1 --warmup 1 --cases chain,vit --plot "$LOG_DIR/bench_core.png")
    NN_ARGS=(--tiny --repeat 1 --warmup 1 --rounds 1 --threads 1,2 --cases gpt --plot "$LOG_DIR/bench_nn.png")
else
    DEVICE=cuda
    TEST_DEVICES=cuda
    TEST_ARGS=${TEST_ARGS:-tests}
    REVERSE_ARGS=(--steps 300 --warmup 100 --test-size 200)
    GPT_ARGS=(--steps 300 --eval-windows 64)
    CORE_ARGS=(--repeat 5 --warmup 2 --cases "${CORE_CASES:-attention,attention-causal,chain}")
    NN_ARGS=(--repeat 5 --warmup 2 --rounds 1 --cases "${NN_CASES:-encoder,gpt,vit}")
fi
PYTEST_EXTRA=(--maxfail=10 --durations=10 -p no:cacheprovider)
if "$PY" -c "import xdist" 2>/dev/null; then  # pytest-xdist, where installed: 8 processes share the GPU
    PYTEST_EXTRA+=(-n "${TEST_WORKERS:-8}")
fi

ENV_CHECK='
import platform, shutil, subprocess, sys
device = sys.argv[1]
if device == "cuda" and shutil.which("nvidia-smi"):
    query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    print("nvidia-smi:", subprocess.run(query, capture_output=True, text=True).stdout.strip())
import numpy
import tinytensor as tt
print(f"python {platform.python_version()}, numpy {numpy.__version__}, tinytensor from {tt.__file__}")
ok = True
try:
    import cupy
    print(f"cupy {cupy.__version__}")
except ImportError:
    print("cupy: not installed")
print(f"tinytensor sees a GPU: {tt.cuda.is_available()}")
try:
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU: {gpu}")
except ImportError:
    torch = None
    print("torch: not installed")
if device == "cuda":
    ok = tt.cuda.is_available() and torch is not None and torch.cuda.is_available()
    print(f"both libraries on {gpu}" if ok else "FAIL: tinytensor and torch must both see the GPU")
else:
    print(f"dry run on the cpu: {tt.ones(3, device=device).sum().item():.0f} == 3")
sys.exit(0 if ok else 1)
'

NAMES=() RESULTS=() TIMES=() LIMITS=() NOTES=()
TOTAL_LIMIT=0

# run_part NAME LIMIT COMMAND...: run it under `timeout`, its output in $LOG_DIR/NAME.log
run_part() {
    local name=$1 limit=$2
    shift 2
    local log="$LOG_DIR/$name.log" start=$SECONDS rc result note mismatch=0
    printf '== %s (limit %s s): %s\n' "$name" "$limit" "$(printf '%s ' "$@" | tr '\n' ' ' | cut -c1-200)"
    timeout -s INT -k 20 "$limit" "$@" >"$log" 2>&1
    rc=$?
    note=$(tr '\r' '\n' <"$log" | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c1-100)
    case "$name" in
        tests) note=$(grep -E '[0-9]+ (passed|failed|error)|no tests ran' "$log" | tail -n 1 | tr -d '=' \
                      | sed 's/^ *//' | cut -c1-100) ;;
        bench_*)
            local agree
            agree=$(grep -ow 'agree' "$log" | wc -l)
            mismatch=$(grep -o 'MISMATCH' "$log" | wc -l)
            note="first steps: $agree agree, $mismatch mismatch" ;;
    esac
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        result=TIMEOUT
    elif [ "$rc" != 0 ]; then
        result="FAIL (exit $rc)"
    elif [ "$mismatch" != 0 ]; then
        result="FAIL (mismatch)"
    else
        result=pass
    fi
    if [ "$result" != pass ]; then
        echo "-- the end of $log:"
        tr '\r' '\n' <"$log" | grep -v '^[[:space:]]*$' | tail -n 25
    fi
    NAMES+=("$name") RESULTS+=("$result") TIMES+=($((SECONDS - start))) LIMITS+=("$limit") NOTES+=("$note")
    TOTAL_LIMIT=$((TOTAL_LIMIT + limit))
}

start_all=$SECONDS
run_part env 15 "$PY" -c "$ENV_CHECK" "$DEVICE"
# shellcheck disable=SC2086  # TEST_ARGS is a list of words
run_part tests "${TESTS_LIMIT:-240}" env TINYTENSOR_TEST_DEVICES="$TEST_DEVICES" \
    "$PY" -m pytest $TEST_ARGS "${PYTEST_EXTRA[@]}"
run_part transformer_reverse "${EXAMPLE_LIMIT:-45}" "$PY" examples/transformer_reverse.py --device "$DEVICE" \
    "${REVERSE_ARGS[@]}" --save-every 100000 --checkpoint "$LOG_DIR/transformer_reverse.safetensors"
run_part char_gpt "${EXAMPLE_LIMIT:-45}" "$PY" examples/char_gpt.py --device "$DEVICE" \
    "${GPT_ARGS[@]}" --save-every 100000 --checkpoint "$LOG_DIR/char_gpt.safetensors"
run_part bench_core "${CORE_LIMIT:-50}" "$PY" benchmarks/bench_core.py --device "$DEVICE" "${CORE_ARGS[@]}" \
    --json "$LOG_DIR/bench_core.json"
run_part bench_nn "${NN_LIMIT:-80}" "$PY" benchmarks/bench_nn.py --device "$DEVICE" "${NN_ARGS[@]}" \
    --json "$LOG_DIR/bench_nn.json"

failed=0
for result in "${RESULTS[@]}"; do
    [ "$result" = pass ] || failed=$((failed + 1))
done
{
    echo
    echo "gpu_check summary: device $DEVICE$([ "$DRY" = 1 ] && echo ' (dry run, toy sizes)'), logs in $LOG_DIR"
    printf '%-20s  %-16s  %7s  %5s  %s\n' part result seconds limit "last word"
    printf '%-20s  %-16s  %7s  %5s  %s\n' -------------------- ---------------- ------- ----- ---------
    for i in "${!NAMES[@]}"; do
        printf '%-20s  %-16s  %7s  %5s  %s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}" "${LIMITS[$i]}" \
            "${NOTES[$i]}"
    done
    printf '%-20s  %-16s  %7s  %5s\n' total "$failed failed" $((SECONDS - start_all)) "$TOTAL_LIMIT"
} | tee "$LOG_DIR/summary.txt"
[ "$failed" = 0 ]
