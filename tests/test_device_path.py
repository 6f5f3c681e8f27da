"""Every tensor a notebook builds by hand goes to the model's device through one path.

`load_model` puts the model on a GPU when there is one; a tensor made with torch.tensor,
torch.randn, ... stays on the CPU unless told otherwise, and the first forward pass fails with
"Expected all tensors to be on the same device". This test reads the code cells of every
notebook and fails where a tensor is built without `cu.to_device(...)` around it (or a
`device=` argument). A number that never meets a model may stay on the CPU when its line says
so with the comment `# on the CPU`.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
FACTORIES = {"tensor", "as_tensor", "randn", "rand", "randint", "zeros", "ones", "full", "empty",
             "arange", "LongTensor", "FloatTensor"}
ALLOWED = "# on the CPU"


def python_of(cell) -> str:
    """A code cell's source with IPython's `!` and `%` lines blanked (they are not Python)."""
    lines = "".join(cell["source"]).splitlines()
    return "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in lines)


def hand_built_tensors(source: str) -> list[tuple[int, str]]:
    """(line, code) of each torch factory call that is neither inside to_device(...) nor given
    device=, nor on a line marked ALLOWED."""
    tree = ast.parse(source)
    lines = source.splitlines()
    moved: set[int] = set()  # ids of nodes inside a to_device(...) call
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "to_device":
            moved.update(id(inner) for inner in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in FACTORIES and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch" and id(node) not in moved
                and not any(k.arg == "device" for k in node.keywords)
                and ALLOWED not in lines[node.lineno - 1]):
            found.append((node.lineno, lines[node.lineno - 1].strip()))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_hand_built_tensors_go_through_to_device(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    problems = [f"{path.relative_to(ROOT)} cell {i} line {line}: {code}"
                for i, cell in enumerate(cells) if cell["cell_type"] == "code"
                for line, code in hand_built_tensors(python_of(cell))]
    assert not problems, ("tensors built on the CPU may meet a model on a GPU; wrap each in "
                          "cu.to_device(..., model) or give it device=:\n" + "\n".join(problems))


def test_the_check_finds_what_it_should():
    assert hand_built_tensors("ids = torch.tensor([[1, 2]])\nmodel(ids)") == [(1, "ids = torch.tensor([[1, 2]])")]
    assert hand_built_tensors("ids = cu.to_device(torch.tensor([[1, 2]]), model)") == []
    assert hand_built_tensors("b = {'x': torch.zeros(3)}\nb = cu.to_device(b, model)") == [(1, "b = {'x': torch.zeros(3)}")]
    assert hand_built_tensors("a = torch.empty(2, 3, device=w.device)") == []
    assert hand_built_tensors("m = torch.tensor(0.5)  # on the CPU: a number") == []
