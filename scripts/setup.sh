#!/usr/bin/env bash
# Installs everything mcugen needs on a fresh Debian machine (run as root):
# the Arm toolchain, QEMU and C checkers from apt, mcugen and its dev extras from pip.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    gcc libc6-dev binutils gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang cppcheck > /dev/null
python3 -m pip install -q -e '.[dev]'
