"""`import visattn` is cheap: no network library, no UI or plotting library, no model built;
the registry is a leaf that binds classes registered by path when it first meets them."""
import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import torch.nn as nn

from visattn import registry

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("timm", "pytorchcv", "gradio", "matplotlib", "huggingface_hub", "visattn.zoo")


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_visattn_imports_no_network_ui_or_plot_library():
    out = _run(f"""
        import sys
        import torch.nn as nn
        built = []
        init = nn.Module.__init__
        def counting(self, *args, **kwargs):
            built.append(type(self).__name__)
            init(self, *args, **kwargs)
        nn.Module.__init__ = counting   # every module built during the import is counted
        import visattn
        visattn.save, visattn.load, visattn.open_network   # the public names are there
        print("loaded=" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
        print(f"built={{len(built)}}")
    """)
    loaded, built = (line.split("=", 1)[1] for line in out.splitlines())
    assert loaded == "", f"import visattn imported {loaded}"
    assert built == "0"


def test_opening_a_network_imports_its_library_and_binds_its_classes():
    out = _run("""
        import sys, numpy as np, visattn
        trace = visattn.analyze(np.zeros((64, 64, 3), np.uint8), "seresnet50", pretrained=False)
        print("timm" in sys.modules, len(trace.select(visattn.ChannelWeights)))
    """)
    assert out == "True 16"


def test_the_registry_imports_none_of_its_entries():
    tree = ast.parse((ROOT / "visattn" / "registry.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not {m for m in imported if m and ("builtin" in m or "timm" in m or "pytorchcv" in m)}
    assert imported & {"probes", "neutral"}  # what it is built on


class _Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(x.mean((2, 3), keepdim=True))


def test_a_class_registered_by_path_binds_to_exactly_that_class():
    path = f"{__name__}:_Gate"
    registry.register_attention(path, family="SE", kind="channel", tap="sigmoid")
    try:
        assert registry.entry_for(_Gate()).cls is _Gate
        look_alike = type("_Gate", (nn.Module,), {})  # same name, another class
        assert registry.entry_for(look_alike()) is None
        sub = type("Sub", (_Gate,), {})
        assert registry.entry_for(sub()) is None
    finally:
        registry.unregister_attention(_Gate)
    assert registry.entry_for(_Gate()) is None


def _module_imports(path: Path, package: str) -> set[str]:
    """visattn modules a file imports at module level (not inside functions, not for type
    checking only)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            out |= {f"{target}.{a.name}" for a in node.names} | {target}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_the_package_has_no_import_circle():
    modules = {}
    for path in (ROOT / "visattn").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = name if rel.name == "__init__" else name.rsplit(".", 1)[0]
        modules[name] = (path, package)
    graph = {name: {m for m in _module_imports(path, package) if m in modules and m != name
                    and modules[m][0].name != "__init__.py"}
             for name, (path, package) in modules.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(trail + [node, nxt])
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
    assert len(graph) > 40 and graph["visattn.opener"] >= {"visattn.usermodel"}
