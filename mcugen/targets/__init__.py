"""The machines mcugen builds for: compiler flags, the QEMU board that runs them,
and the memory budget of a typical real part. Data only; the toolchain runner
(mcugen.toolchain) turns it into commands."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import UserError

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
if not FIRMWARE.is_dir():  # running from a source checkout, firmware/ beside the package
    FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"

KIB = 1024
MIB = 1024 * KIB

# QEMU runs with -icount shift=ICOUNT_SHIFT: every instruction advances virtual
# time by 2**ICOUNT_SHIFT ns. At 128 ns an instruction moves SysTick (20-32 MHz
# on these boards) by more than two ticks, so tick counts convert back to exact
# instruction counts (checked against QEMU's instruction trace in the tests).
ICOUNT_SHIFT = 7


class UnknownTargetError(UserError):
    """A target name that is not in the registry."""


@dataclass(frozen=True)
class Target:
    """One build target. `cpu` is None for the host (the machine's own cc).

    `flash_bytes` / `ram_bytes` are the budget of `part`, a typical chip with this
    core, not the QEMU board's memory (which is larger, see firmware/README.md);
    None means no limit. Override them with `with_budget`.
    """

    name: str
    cpu: str | None
    cflags: tuple[str, ...]
    has_dsp: bool
    has_mve: bool
    qemu_machine: str | None
    linker_script: Path | None
    systick_hz: int | None  # processor clock of the QEMU board: SysTick ticks per second
    flash_bytes: int | None
    ram_bytes: int | None
    part: str

    @property
    def is_host(self) -> bool:
        return self.qemu_machine is None

    @property
    def instructions_per_tick(self) -> float:
        """Instructions per SysTick tick under `qemu -icount shift=ICOUNT_SHIFT`."""
        if self.systick_hz is None:
            raise ValueError(f"target '{self.name}' has no SysTick clock")
        return 1e9 / self.systick_hz / 2**ICOUNT_SHIFT


def _arm(name: str, fpu_flags: tuple[str, ...], has_dsp: bool, has_mve: bool, machine: str, clock_hz: int,
         flash: int, ram: int, part: str) -> Target:
    return Target(
        name=name,
        cpu=name,
        cflags=(f"-mcpu={name}", "-mthumb", *fpu_flags),
        has_dsp=has_dsp,
        has_mve=has_mve,
        qemu_machine=machine,
        linker_script=FIRMWARE / "ld" / f"{machine}.ld",
        systick_hz=clock_hz,
        flash_bytes=flash,
        ram_bytes=ram,
        part=part,
    )


_MPS2_HZ = 25_000_000  # hw/arm/mps2.c SYSCLK_FRQ
_AN505_HZ = 20_000_000  # hw/arm/mps2-tz.c, mps2tz_an505 sysclk_frq
_AN547_HZ = 32_000_000  # hw/arm/mps2-tz.c, mps3tz_an547 sysclk_frq

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        _arm("cortex-m3", ("-mfloat-abi=soft",), False, False, "mps2-an385", _MPS2_HZ,
             512 * KIB, 64 * KIB, "NXP LPC1768 (512 KiB flash, 64 KiB SRAM)"),
        _arm("cortex-m4", ("-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"), True, False, "mps2-an386", _MPS2_HZ,
             512 * KIB, 128 * KIB, "ST STM32F446RE (512 KiB flash, 128 KiB SRAM)"),
        _arm("cortex-m7", ("-mfpu=fpv5-d16", "-mfloat-abi=hard"), True, False, "mps2-an500", _MPS2_HZ,
             1 * MIB, 320 * KIB, "ST STM32F746NG (1 MiB flash, 320 KiB SRAM)"),
        _arm("cortex-m33", ("-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"), True, False, "mps2-an505", _AN505_HZ,
             512 * KIB, 256 * KIB, "ST STM32L552ZE (512 KiB flash, 256 KiB SRAM)"),
        # -mcpu=cortex-m55 alone enables MVE (integer and float) and the FPU.
        _arm("cortex-m55", ("-mfloat-abi=hard",), True, True, "mps3-an547", _AN547_HZ,
             2 * MIB, 512 * KIB, "Arm Corstone-300 as on MPS3 AN547 (2 MiB code SRAM, 512 KiB DTCM)"),
        Target(name="host", cpu=None, cflags=(), has_dsp=False, has_mve=False, qemu_machine=None,
               linker_script=None, systick_hz=None, flash_bytes=None, ram_bytes=None,
               part="this machine, through its cc (no memory limit)"),
    )
}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        valid = ", ".join(TARGETS)
        raise UnknownTargetError(f"unknown target '{name}'; valid targets: {valid}") from None


def with_budget(target: Target, flash: int | None = None, ram: int | None = None) -> Target:
    """`target` with its flash and/or RAM budget (bytes) replaced; None keeps the current one."""
    for label, value in (("flash", flash), ("ram", ram)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise UserError(f"{label} budget must be a positive number of bytes, got {value!r}")
    return replace(
        target,
        flash_bytes=target.flash_bytes if flash is None else flash,
        ram_bytes=target.ram_bytes if ram is None else ram,
    )
