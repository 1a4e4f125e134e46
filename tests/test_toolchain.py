"""Build the fake model (tests/fixtures/fake_model) into the harness, run it on the
host and under QEMU, and check outputs and instruction counts against values
computed independently: the model in NumPy, the counts from QEMU's instruction trace."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mcugen.errors import UserError
from mcugen.targets import get_target
from mcugen.toolchain import (BuildError, RunError, ToolchainError, build_firmware, check_tools, run_firmware,
                              size)

FAKE = Path(__file__).parent / "fixtures" / "fake_model"
ARM = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
INPUT_SIZE, OUTPUT_SIZE, NUM_LAYERS = 96, 10, 3

no_qemu = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm "
           "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
no_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler (apt-get install gcc)")


def _constants() -> dict[str, np.ndarray]:
    text = (FAKE / "fake_weights.c").read_text()
    arrays = re.findall(r"const int(?:8|32)_t (\w+)\[[^\]]*\] = \{([^}]*)\};", text)
    return {name: np.array([int(v) for v in body.replace("\n", " ").split(",") if v.strip()]) for name, body in arrays}


def _trunc_div(value: np.ndarray, divisor: int) -> np.ndarray:
    return np.sign(value) * (np.abs(value) // divisor)  # C99 division rounds toward zero


def fake_model(x: np.ndarray) -> np.ndarray:
    """The fake model as its comment in fake.c specifies it (fake_rounding = 5)."""
    c = _constants()
    x = x.astype(np.int64)
    a = np.clip(_trunc_div(x * np.tile(c["fake_w0"], INPUT_SIZE // 16) + 5, 16), -128, 127)
    padded = np.append(a, 0)
    w1 = c["fake_w1"]
    b = np.clip(_trunc_div(padded[0:96:2] * w1[0] + padded[1:97:2] * w1[1] + padded[2:98:2] * w1[2], 4), -128, 127)
    y = c["fake_b2"] + c["fake_w2"].reshape(OUTPUT_SIZE, 48) @ b
    return np.clip(_trunc_div(y, 256), -128, 127).astype(np.int8)


def _inputs(count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (count, INPUT_SIZE)).astype(np.int8)
    x[0] = -128  # the extremes saturate every layer
    if count > 1:
        x[1] = 127
    return x


def test_reference_is_not_trivial():
    outputs = np.array([fake_model(x) for x in _inputs(4)])
    assert len({tuple(o) for o in outputs}) == 4
    assert (np.abs(outputs[2:]) < 127).any() and (np.abs(outputs) >= 127).any()


@no_cc
def test_host_build_with_sanitizers(tmp_path):
    host = get_target("host")
    x = _inputs(5)
    exe = build_firmware(host, FAKE, "fake", x, tmp_path, sanitize=True)
    result = run_firmware(host, exe)
    assert result.exit_code == 0 and result.layer_instructions is None
    assert len(result.outputs) == 5
    for sample, out in zip(x, result.outputs):
        np.testing.assert_array_equal(out, fake_model(sample))
    assert size(exe).text > 0


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("cc") is None, reason="needs clang and cc")
def test_host_harness_is_clean_under_clang(tmp_path):
    build_firmware(get_target("host"), FAKE, "fake", _inputs(2), tmp_path)
    firmware = Path(__file__).parents[1] / "firmware"
    for source in (firmware / "harness.c", firmware / "platform_host.c", tmp_path / "harness_inputs.c"):
        subprocess.run(["clang", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Werror",
                        "-fsyntax-only", "-I", str(FAKE), "-I", str(tmp_path), "-I", str(firmware), str(source)],
                       check=True)


def _trace_counts(machine: str, elf: Path, log: Path) -> list[list[int]]:
    """Instructions between calls of mcugen_harness_mark, from QEMU's one-instruction-per-block trace."""
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    mark = int(re.search(r"^([0-9a-f]+) T mcugen_harness_mark$", nm, re.M)[1], 16)
    subprocess.run(["qemu-system-arm", "-machine", machine, "-nographic", "-monitor", "none", "-serial", "none",
                    "-semihosting-config", "enable=on,target=native", "-singlestep", "-d", "exec,nochain",
                    "-D", str(log), "-kernel", str(elf)], capture_output=True, check=True, timeout=60)
    count, starts, previous = 0, [], None
    for line in log.read_text().splitlines():
        if m := re.match(r"Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/", line):
            pc = int(m[1], 16)
            if pc == previous:  # an instruction touching a device is logged again when QEMU re-executes it
                continue
            previous, count = pc, count + 1
            if pc == mark:
                starts.append(count)
    steps = np.diff(starts).tolist()
    # Per input: NUM_LAYERS + 1 marks, so NUM_LAYERS in-model steps then one step across the harness.
    return [steps[i : i + NUM_LAYERS] for i in range(0, len(steps), NUM_LAYERS + 1)]


@no_qemu
@pytest.mark.parametrize("name", ARM)
def test_qemu_outputs_and_exact_instruction_counts(name, tmp_path):
    target = get_target(name)
    x = _inputs(4)
    elf = build_firmware(target, FAKE, "fake", x, tmp_path, profile=True)
    assert elf.with_suffix(".map").is_file()
    first, second = run_firmware(target, elf), run_firmware(target, elf)
    for sample, out in zip(x, first.outputs, strict=True):
        np.testing.assert_array_equal(out, fake_model(sample))
    counts = first.layer_instructions
    assert counts is not None and len(counts) == 4
    assert all(len(row) == NUM_LAYERS and min(row) > 0 for row in counts)
    assert second.layer_instructions == counts
    assert second.stdout == first.stdout
    assert counts == _trace_counts(target.qemu_machine, elf, tmp_path / "exec.log")


@no_qemu
def test_unprofiled_build_reports_no_counts(tmp_path):
    target = get_target("cortex-m4")
    x = _inputs(3, seed=5)
    result = run_firmware(target, build_firmware(target, FAKE, "fake", x, tmp_path))
    assert result.layer_instructions is None
    assert "ticks" not in result.stdout
    for sample, out in zip(x, result.outputs, strict=True):
        np.testing.assert_array_equal(out, fake_model(sample))


@no_qemu
def test_size_counts_embedded_inputs_as_text(tmp_path):
    target = get_target("cortex-m3")
    two = size(build_firmware(target, FAKE, "fake", _inputs(2), tmp_path / "two"))
    ten = size(build_firmware(target, FAKE, "fake", _inputs(10), tmp_path / "ten"))
    assert 8 * INPUT_SIZE <= ten.text - two.text < 8 * INPUT_SIZE + 8
    assert ten.data == two.data == 4  # fake_rounding
    assert ten.bss == two.bss
    assert two.flash == two.text + two.data and two.ram == two.data + two.bss


@no_qemu
def test_fault_is_reported_with_exit_status(tmp_path):
    target = get_target("cortex-m33")
    # A hook that executes an undefined instruction in layer 0: HardFault (exception 3).
    elf = build_firmware(target, FAKE, "fake", _inputs(1), tmp_path,
                         extra_cflags=["-DMCUGEN_LAYER_HOOK(i)=__builtin_trap()"])
    with pytest.raises(RunError, match=r"(?s)status 3.*fault 003"):
        run_firmware(target, elf)


@no_qemu
def test_timeout(tmp_path):
    target = get_target("cortex-m4")
    elf = build_firmware(target, FAKE, "fake", _inputs(1), tmp_path)
    with pytest.raises(RunError, match="timed out"):
        run_firmware(target, elf, timeout_s=0.001)


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake_firmware.sh"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("body, message", [
    ("echo 'begin 1 2 3'; echo 'out 0 0102'; echo 'done 1'; exit 1", "status 1"),
    ("echo 'begin 1 2 3'; echo 'out 0 zz'; echo 'done 1'", "unexpected harness line"),
    ("echo 'begin 1 2 3'; echo 'out 0 010203'; echo 'done 1'", "unexpected harness line"),
    ("echo 'begin 2 2 3'; echo 'out 0 0102'", "without 'done 2'"),
    ("echo 'begin 2 2 3'; echo 'out 0 0102'; echo 'done 2'", "unexpected harness line"),
    ("echo hello", "does not start with"),
])
def test_run_errors_on_bad_exit_or_output(tmp_path, body, message):
    with pytest.raises(RunError, match=message):
        run_firmware(get_target("host"), _script(tmp_path, body))


def test_parses_a_well_formed_transcript(tmp_path):
    script = _script(tmp_path, "printf 'begin 2 2 3\\nout 0 80ff\\nout 1 7f00\\ndone 2\\n'")
    result = run_firmware(get_target("host"), script)
    assert [o.tolist() for o in result.outputs] == [[-128, -1], [127, 0]]
    assert result.layer_instructions is None


@pytest.mark.parametrize("name", ["host", "cortex-m4"])
def test_missing_tools_say_how_to_install(name, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    target = get_target(name)
    with pytest.raises(ToolchainError, match="apt-get install") as info:
        check_tools(target)
    assert isinstance(info.value, UserError)
    if name != "host":
        assert "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm" in str(info.value)
    with pytest.raises(ToolchainError):
        build_firmware(target, FAKE, "fake", _inputs(1), tmp_path / "build")


@pytest.mark.parametrize("kwargs, message", [
    (dict(target="host", profile=True), "cannot profile"),
    (dict(target="cortex-m4", sanitize=True), "host target only"),
    (dict(target="host", prefix="model"), "model.h not found"),
    (dict(target="host", prefix="2fast"), "not a C identifier"),
    (dict(target="host", inputs=np.zeros((2, INPUT_SIZE), np.uint8)), "int8"),
    (dict(target="host", inputs=np.zeros(INPUT_SIZE, np.int8)), "shape"),
])
def test_bad_requests_are_user_errors(tmp_path, kwargs, message):
    args = dict(prefix="fake", inputs=_inputs(1), profile=False, sanitize=False) | kwargs
    with pytest.raises(UserError, match=message):
        build_firmware(get_target(args.pop("target")), FAKE, work_dir=tmp_path, **args)


@no_cc
def test_compile_error_is_a_build_error(tmp_path):
    with pytest.raises(BuildError, match="nonexistent_header"):
        build_firmware(get_target("host"), FAKE, "fake", _inputs(1), tmp_path,
                       extra_cflags=["-include", "nonexistent_header.h"])
