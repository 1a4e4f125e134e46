"""The flash/RAM budget check: the exact byte where a model stops fitting, and what the refusal names."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import onnx
import pytest

from mcugen.budget import BudgetError, check_budget, memory_use
from mcugen.compiler import CalibrationOptions, Compiled, compile_model
from mcugen.targets import get_target, with_budget
from onnx_builders import tiny_mobilenet


@lru_cache(maxsize=None)
def compiled(tmp: Path) -> Compiled:
    path = tmp / "tiny_v2.onnx"
    onnx.save(tiny_mobilenet(2), path)
    return compile_model(path, CalibrationOptions())


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return compiled(tmp_path_factory.mktemp("budget"))


def test_ram_is_arena_plus_the_callers_input_and_output(model: Compiled) -> None:
    graph = model.graph
    (x,), (y,) = graph.inputs, graph.outputs
    io = graph.tensor(x).size + graph.tensor(y).size  # int8: one byte per element
    use = memory_use(model)
    assert use.ram == model.plan.arena_size + io
    assert memory_use(model.replan(io_in_arena=True)).io == 0


def test_flash_layers_are_largest_first_and_name_every_weighted_node(model: Compiled) -> None:
    layers = memory_use(model).layers
    assert [layer.nbytes for layer in layers] == sorted((layer.nbytes for layer in layers), reverse=True)
    weighted = {n.name for n in model.graph.nodes if n.op in ("conv2d", "depthwise_conv2d", "fully_connected")}
    assert weighted <= {layer.name for layer in layers if layer.nbytes > 0}


def test_fits_exactly_and_fails_one_byte_under(model: Compiled) -> None:
    use = memory_use(model)
    host = get_target("host")
    check_budget(model, with_budget(host, flash=use.flash, ram=use.ram))
    with pytest.raises(BudgetError, match=r"flash: needs [\d,]+ bytes .*, 1 over the") as flash:
        check_budget(model, with_budget(host, flash=use.flash - 1, ram=use.ram))
    assert "RAM" not in str(flash.value)
    with pytest.raises(BudgetError, match=r"RAM: needs [\d,]+ bytes .*, 1 over the") as ram:
        check_budget(model, with_budget(host, flash=use.flash, ram=use.ram - 1))
    assert "flash" not in str(ram.value)


def test_ram_refusal_names_the_peak_step_and_hints(model: Compiled) -> None:
    use = memory_use(model)
    with pytest.raises(BudgetError) as refused:
        check_budget(model, with_budget(get_target("host"), ram=1024))
    message = str(refused.value)
    step = int(re.search(r"most memory at step (\d+)", message)[1])
    assert model.graph.nodes[step].name in message
    assert use.peak is not None and use.peak.step == step and use.peak.top == model.plan.arena_size
    assert "--io-in-arena" in message and "smaller alpha or input resolution" in message
    with pytest.raises(BudgetError) as in_arena:
        check_budget(model.replan(io_in_arena=True), with_budget(get_target("host"), ram=1024))
    assert "--io-in-arena" not in str(in_arena.value)  # already done: no point suggesting it
