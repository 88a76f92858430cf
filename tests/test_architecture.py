"""The package's layers: each module imports only its own layer and the ones below, with no import cycles;
torch only in training; ``import facemark`` loads none of the heavy dependencies."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "facemark"
LAYERS = ["core", "io", "inference", "evaluation", "training", "serve", "cli"]   # bottom to top


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports (at any depth, except under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for child in node.body for n in ast.walk(child)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out |= {f"{base}.{a.name}" for a in node.names} | {base}
    return out


MODULES = {_module(p): p for p in sorted(SRC.rglob("*.py"))}


def _layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[0] == "facemark" and parts[1] in LAYERS else None


def _own(names: set[str]) -> set[str]:
    """The facemark modules among imported names (``from pkg import mod`` names a module too)."""
    return {n for n in names if n in MODULES}


@pytest.mark.parametrize("name", [m for m in MODULES if _layer(m) is not None])
def test_no_module_imports_a_layer_above_it(name):
    mine = _layer(name)
    above = sorted(n for n in _imports(MODULES[name]) if n.startswith("facemark.") and (_layer(n) or 0) > mine)
    assert not above, f"{name} ({LAYERS[mine]}) imports {above}"
    if LAYERS[mine] != "training":
        assert not any(n == "torch" or n.startswith("torch.") for n in _imports(MODULES[name])), name


def test_no_import_cycles():
    graph = {m: _own(_imports(p)) - {m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(n):] + [m, n]) if n in path
                            else f"import cycle through {m} -> {n}")
            if n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_import_facemark_is_light():
    code = ("import sys, facemark; heavy = [m for m in ('cv2', 'torch', 'matplotlib', 'onnxruntime', 'scipy', "
            "'h5py') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
