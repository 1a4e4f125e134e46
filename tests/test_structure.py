"""Every kernel module has its C template twin and back; every IR kernel op has a kernel; every package ships."""
from __future__ import annotations

from pathlib import Path

from mcugen.ir import KERNEL_OPS
from mcugen.kernels import kernel

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ("OP", "SCRATCH", "float_reference", "output_qparams", "quantize_constants", "lower",
            "reference", "macs", "scratch_bytes", "c_params", "c_constants")


def test_kernel_modules_and_templates_pair_up():
    modules = {p.stem for p in (ROOT / "mcugen" / "kernels").glob("*.py")} - {"__init__", "common", "weights"}
    templates = {p.name.removesuffix(".c.j2") for p in (ROOT / "templates" / "kernels").glob("*.c.j2")}
    assert modules == templates == set(KERNEL_OPS)


def test_every_kernel_implements_the_contract():
    for op in KERNEL_OPS:
        module = kernel(op)
        assert module.OP == op
        missing = [name for name in CONTRACT if not hasattr(module, name)]
        assert not missing, f"kernels/{op}.py lacks {missing}"


VARIANT_CONTRACT = ("OP", "NAME", "SCRATCH", "applies", "c_kernel", "c_params", "c_constants", "scratch_bytes")


def test_every_variant_implements_the_c_contract():
    """Variants give C only: the op's semantics stay kernel(op)'s (mcugen/kernels/arm/__init__.py)."""
    from mcugen.kernels.arm import VARIANTS

    for module in VARIANTS:
        assert module.OP in KERNEL_OPS
        missing = [name for name in VARIANT_CONTRACT if not hasattr(module, name)]
        assert not missing, f"{module.__name__} lacks {missing}"


def test_every_subpackage_is_packaged():
    """pyproject lists packages by hand (templates/ and firmware/ are mapped in), so a new one must be added there."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mcugen").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
