"""The package's layers: each folder imports only its own layer and the layers below it (lazy
imports included), and reading a run (the analysis layer) loads neither torch nor diffusers."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import collapse_diffusion

PKG = Path(collapse_diffusion.__file__).parent
# the layer test writes a probe module into the package for a moment: never beside the lint
pytestmark = pytest.mark.xdist_group("package-tree")
# bottom to top; __main__.py sits above them all
LAYERS = ("core", "data", "diffusion", "measure", "selection", "loop", "analysis", "experiments", "cli")


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of the package in ``path``, at any depth."""
    module = ".".join(("collapse_diffusion",) + path.relative_to(PKG).with_suffix("").parts)
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
            names = [f"{target}.{a.name}" for a in node.names]  # `from . import x` names a module
            out += [(node.lineno, target)] + [(node.lineno, n) for n in names]
    return [(line, m) for line, m in out if m and m.startswith("collapse_diffusion")]


def violations() -> list[str]:
    """Every import of a module of a higher layer, as 'file:line imports module'."""
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        own = layer_of(".".join(("collapse_diffusion",) + path.relative_to(PKG).parts))
        for line, target in imports(path):
            rel = Path(*target.split(".")[1:]) if "." in target else Path()
            is_module = (PKG / rel).with_suffix(".py").exists() or (PKG / rel / "__init__.py").exists()
            if is_module and layer_of(target) > own:
                bad.append(f"{path.relative_to(PKG)}:{line} imports {target}")
    return bad


def test_every_folder_has_a_layer_and_imports_only_downwards():
    assert {p.parent.name for p in PKG.glob("*/__init__.py")} == set(LAYERS)
    bad = violations()
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_the_rule_catches_a_lazy_upward_import():
    probe = PKG / "measure" / "_probe_upward.py"
    probe.write_text("def f():\n    from ..loop import stages\n")
    try:
        assert "measure/_probe_upward.py:2 imports collapse_diffusion.loop.stages" in violations()
    finally:
        probe.unlink()


def test_reading_a_run_loads_neither_torch_nor_diffusers():
    code = ("import sys\n"
            "import collapse_diffusion.analysis.report, collapse_diffusion.analysis.findings\n"
            "import collapse_diffusion.analysis.results, collapse_diffusion.analysis.phase\n"
            "import collapse_diffusion.loop.experiment, collapse_diffusion.loop.rows\n"
            "import collapse_diffusion.analysis.pages, collapse_diffusion.experiments.pages\n"
            "import collapse_diffusion.experiments.copy_suite, collapse_diffusion.experiments.factorial_tables\n"
            "import collapse_diffusion.core.runtime, collapse_diffusion.cli\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'torchvision') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
