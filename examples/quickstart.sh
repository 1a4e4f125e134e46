#!/usr/bin/env bash
# The main job end to end, on a fresh Debian machine as root:
# install, compile the example MobileNet (Visual Wake Words, 96x96) to int8 C,
# run it on an emulated Cortex-M7 (QEMU mps2-an500), check it is bit-exact with
# mcugen's integer simulator on 16 photos, and print its cost.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh

MODEL=examples/models/vww_96_float.onnx
PHOTOS=examples/data/photos_rgb_uint8_96.npz
# Photos are uint8 RGB; the model wants pixel / 255. The same photos calibrate the int8 ranges.
OPTIONS=(--calib "$PHOTOS" --input-scale 0.00392156862745098)
mcugen() { python3 -m mcugen "$@"; }

echo "== compile: $MODEL -> out/vww (C99 for cortex-m7)"
mcugen compile "$MODEL" "${OPTIONS[@]}" --target cortex-m7 --prefix vww -o out/vww
echo
echo "== verify: C on QEMU Cortex-M7 == integer simulator, bit for bit; accuracy vs onnxruntime float"
mcugen verify "$MODEL" "${OPTIONS[@]}" --target cortex-m7 --inputs "$PHOTOS"
echo
echo "== bench: instructions per layer on QEMU Cortex-M7 (instruction counts, not cycles)"
mcugen bench "$MODEL" "${OPTIONS[@]}" --target cortex-m7 --inputs "$PHOTOS"
echo
echo "== report: parameters, MACs and the depthwise-separable savings, against an STM32F746's budget"
mcugen report "$MODEL" "${OPTIONS[@]}" --target cortex-m7
