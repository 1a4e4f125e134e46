#!/usr/bin/env bash
# Installs everything mcugen needs on a fresh Debian machine (run as root):
# the Arm toolchain, QEMU and C checkers from apt (clang with its sanitizer runtimes, a
# recommendation apt skips here), mcugen and its dev extras from pip.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    gcc libc6-dev binutils make cmake gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang libclang-rt-dev cppcheck \
    > /dev/null
if ! python3 -m pip --version > /dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends python3 python3-pip > /dev/null
fi
# Debian's own python3 refuses pip installs outside a venv (PEP 668); this machine-wide
# setup is what the script is for, so say so. Other Pythons ignore the variable.
export PIP_BREAK_SYSTEM_PACKAGES=1
python3 -m pip install -q -e '.[dev]'
