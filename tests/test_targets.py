"""The target registry: names, flags that match each core, budgets and overrides."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcugen.errors import UserError
from mcugen.targets import TARGETS, UnknownTargetError, get_target, with_budget

ARM = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
BOARDS = {"cortex-m3": "mps2-an385", "cortex-m4": "mps2-an386", "cortex-m7": "mps2-an500",
          "cortex-m33": "mps2-an505", "cortex-m55": "mps3-an547"}
no_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                reason="arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi)")


def test_registry_holds_exactly_the_documented_targets():
    assert set(TARGETS) == {*ARM, "host"}
    assert all(name == t.name for name, t in TARGETS.items())


@pytest.mark.parametrize("name", ARM)
def test_arm_target_fields(name):
    t = get_target(name)
    assert not t.is_host
    assert t.cpu == name
    assert f"-mcpu={name}" in t.cflags and "-mthumb" in t.cflags
    assert t.qemu_machine == BOARDS[name]
    assert t.linker_script is not None and t.linker_script.is_file()
    assert t.linker_script.name == f"{BOARDS[name]}.ld"
    assert t.flash_bytes > 0 and t.ram_bytes > 0
    assert t.part


def test_fpu_and_feature_flags_follow_the_brief():
    assert "-mfpu=fpv4-sp-d16" in get_target("cortex-m4").cflags
    assert "-mfpu=fpv5-d16" in get_target("cortex-m7").cflags
    assert "-mfpu=fpv5-sp-d16" in get_target("cortex-m33").cflags
    for name in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"):
        assert "-mfloat-abi=hard" in get_target(name).cflags
    assert [n for n in ARM if get_target(n).has_mve] == ["cortex-m55"]
    assert [n for n in ARM if not get_target(n).has_dsp] == ["cortex-m3"]


def test_systick_clocks_are_the_boards():
    # QEMU 7.2: mps2.c SYSCLK_FRQ 25 MHz; mps2-tz.c AN505 20 MHz, AN547 32 MHz.
    assert [get_target(n).systick_hz for n in ARM] == [25_000_000] * 3 + [20_000_000, 32_000_000]
    # 128 ns of virtual time per instruction, 40 ns per tick at 25 MHz.
    assert get_target("cortex-m4").instructions_per_tick == pytest.approx(40 / 128)


def test_host_target():
    host = get_target("host")
    assert host.is_host and host.qemu_machine is None and host.linker_script is None
    assert host.flash_bytes is None and host.ram_bytes is None
    with pytest.raises(ValueError):
        _ = host.instructions_per_tick


def test_unknown_target_lists_every_valid_name():
    with pytest.raises(UnknownTargetError) as info:
        get_target("cortex-m0")
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert "cortex-m0" in message
    for name in TARGETS:
        assert name in message


@settings(max_examples=50, deadline=None)
@given(name=st.sampled_from(sorted(TARGETS)),
       flash=st.none() | st.integers(1, 2**40), ram=st.none() | st.integers(1, 2**40))
def test_with_budget_replaces_only_the_budget(name, flash, ram):
    original = get_target(name)
    changed = with_budget(original, flash=flash, ram=ram)
    assert changed.flash_bytes == (original.flash_bytes if flash is None else flash)
    assert changed.ram_bytes == (original.ram_bytes if ram is None else ram)
    others = [f.name for f in dataclasses.fields(original) if f.name not in ("flash_bytes", "ram_bytes")]
    assert all(getattr(changed, f) == getattr(original, f) for f in others)
    assert get_target(name) == original  # the registry is not modified


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1M", True])
def test_with_budget_rejects_non_positive_or_non_integer(bad):
    with pytest.raises(UserError):
        with_budget(get_target("cortex-m4"), flash=bad)
    with pytest.raises(UserError):
        with_budget(get_target("cortex-m4"), ram=bad)


def test_targets_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_target("cortex-m7").flash_bytes = 1  # type: ignore[misc]


def _predefined_macros(cflags: tuple[str, ...]) -> set[str]:
    out = subprocess.run(["arm-none-eabi-gcc", *cflags, "-dM", "-E", "-x", "c", "/dev/null"],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("#define ")}


@no_arm_gcc
@pytest.mark.parametrize("name", ARM)
def test_compiler_agrees_with_the_feature_flags(name):
    t = get_target(name)
    macros = _predefined_macros(t.cflags)
    assert ("__ARM_FEATURE_DSP" in macros) == t.has_dsp
    assert ("__ARM_FEATURE_MVE" in macros) == t.has_mve
    assert ("__ARM_FP" in macros) == (name != "cortex-m3")
    assert "__thumb2__" in macros


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None,
                    reason="qemu-system-arm not installed (apt-get install qemu-system-arm)")
def test_qemu_has_every_board():
    listing = subprocess.run(["qemu-system-arm", "-machine", "help"], capture_output=True, text=True,
                             check=True).stdout
    boards = {line.split()[0] for line in listing.splitlines() if line.strip()}
    assert set(BOARDS.values()) <= boards
