"""The package's layers only point down, and no two modules import each other, not even inside a function.

Read from the source with `ast`: nothing is imported, so the test is instant and sees every import
statement, at module level or deferred inside a function (a deferred import still ties the two
modules together; it only hides the tie from a reader).
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kerasgen"

# The layers, lowest first, as paths inside the package ("models/" is the folder and everything in
# it). A module may import modules of its own layer and of lower ones, never of a higher one.
#
# - base: what knows no model class: configs (no TensorFlow, so `--help` stays fast), files and
#   folders, data, the building blocks of networks, the distributions and the loss math;
# - models: the Keras models, built from the base;
# - what takes a trained model: the package's face (`import kerasgen`, which hands out the models),
#   the evaluation (likelihood, sample quality, which classifier scores a dataset) and the
#   SavedModel export; the evaluation takes a training function as an argument where it needs one;
# - callbacks: what a user adds to `fit`; they measure with the evaluation;
# - runs: one harness and its plumbing, and a thin module per model;
# - the command line, which starts runs.
LAYERS = (
    ("base", (
        "_backend.py", "config.py", "options.py", "validate.py", "specs.py", "artifacts.py", "images.py", "latent.py", "plots.py", "data/", "layers.py",
        "logistic_mixture.py", "distributions.py", "distribute.py", "networks.py", "pixelcnn.py", "losses.py",
    )),
    ("models", ("models/",)),
    ("face, evaluation and export", ("__init__.py", "_registry.py", "evaluation/", "export.py")),
    ("callbacks", ("callbacks.py",)),
    ("runs", ("runs/",)),
    ("command line", ("cli.py", "__main__.py")),
)


def modules(package):
    """`{dotted name: path}` of every module in `package` (a folder holding `__init__.py`)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(package):
    """Every import of a module of `package` by one of its modules: `[(importer, imported, line)]`.

    Imports anywhere in a file count: module level, inside functions and methods, under `if`s.
    `from P import name` is an import of the module `P.name` when there is one, else of `P`.

    Raises:
        AssertionError: an import names a module of the package that does not exist.
    """
    known = modules(package)
    root = package.name
    edges = []
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    # Relative: `.` is the importer's package (a package's `__init__` is its own).
                    anchor = name.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target != root and not target.startswith(root + "."):
                    continue
                assert target in known, f"{path}:{node.lineno} imports {target}, which is no module of {root}"
                if target != name and (name, target, node.lineno) not in edges:
                    edges.append((name, target, node.lineno))
    return edges


# The one place that imports by name: the model specs (`kerasgen/specs.py`), so that `import
# kerasgen` and `--help` load no TensorFlow. A spec names its model class, run function and exporter
# as strings; these modules turn them into imports, and the walk counts them as the imports they are.
LATE_BINDING = ("__init__.py", "_registry.py", "specs.py")


def named_imports():
    """The imports the specs stand for: `[(importer, imported, 0)]`.

    The face (`kerasgen.X`) and the registry (a `.keras` file loaded after `import kerasgen`) import
    each model's module; whoever calls a spec's `run_function()`, `exporter()` or `model_class()`
    imports the module it names (found by reading the package for those calls).
    """
    from kerasgen import _registry, specs

    edges = [("kerasgen", spec.module, 0) for spec in specs.SPECS]
    edges += [("kerasgen._registry", module, 0) for module, _, _ in _registry.REGISTERED.values()]
    named = {
        "run_function": [spec.run.split(":")[0] for spec in specs.SPECS if spec.run],
        "exporter": [spec.export.split(":")[0] for spec in specs.SPECS if spec.export],
        "model_class": [spec.module for spec in specs.SPECS],
    }
    for name, path in modules(PACKAGE).items():
        if path.name == "specs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in named:
                edges += [(name, target, node.lineno) for target in named[node.func.attr] if target != name]
    return sorted(set(edges))


def hidden_imports(package):
    """`["file:line"]` of calls that import by name (`importlib.import_module`, `__import__`), which the walk cannot follow."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                function = node.func
                called = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
                if called in ("import_module", "__import__") and (package != PACKAGE or path.name not in LATE_BINDING):
                    found.append(f"{path}:{node.lineno}")
    return found


def cycles(edges):
    """The groups of modules that import each other, directly or round a loop (Tarjan's strongly connected components)."""
    graph = {}
    for importer, imported, _ in edges:
        graph.setdefault(importer, set()).add(imported)
        graph.setdefault(imported, set())
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def layer_of(module, package=PACKAGE, layers=LAYERS):
    """`(index, layer name)` of a module: the layer whose paths name its file."""
    path = modules(package)[module].relative_to(package).as_posix()
    matches = [
        (number, name) for number, (name, paths) in enumerate(layers)
        for entry in paths if path == entry or (entry.endswith("/") and path.startswith(entry))
    ]
    assert len(matches) == 1, f"{package.name}/{path} must stand in exactly one layer of LAYERS; it stands in {matches}"
    return matches[0]


def describe(module, edges):
    """`kerasgen/x.py:12 imports kerasgen.y` lines of one module's imports in `edges`."""
    return [f"{modules(PACKAGE)[importer].relative_to(PACKAGE.parent)}:{line} imports {imported}" for importer, imported, line in edges if importer == module]


def test_every_module_stands_in_one_layer_and_every_layer_path_is_a_module():
    for module in modules(PACKAGE):
        layer_of(module)
    files = {path.relative_to(PACKAGE).as_posix() for path in modules(PACKAGE).values()}
    for _, paths in LAYERS:
        for entry in paths:
            assert any(file == entry or (entry.endswith("/") and file.startswith(entry)) for file in files), (
                f"LAYERS names {entry}, which is no file or folder of the package: remove it or mend the path"
            )


def test_no_import_cycles():
    edges = imports(PACKAGE) + named_imports()
    found = cycles(edges)
    details = [
        f"cycle {' <-> '.join(group)}:\n  " + "\n  ".join(
            line for module in group for line in describe(module, [e for e in edges if e[1] in group])
        )
        for group in found
    ]
    assert not found, "\n".join(details)


def test_imports_point_down():
    upward = []
    for importer, imported, line in imports(PACKAGE) + named_imports():
        (low, low_name), (high, high_name) = layer_of(importer), layer_of(imported)
        if high > low:
            upward.append(
                f"{modules(PACKAGE)[importer].relative_to(PACKAGE.parent)}:{line} imports {imported}: "
                f"{low_name} reaches up to {high_name}"
            )
    assert not upward, "imports from a lower layer up to a higher one:\n" + "\n".join(upward)


def test_no_import_hides_from_the_walk():
    assert not hidden_imports(PACKAGE), "import by name: the layer test cannot see what these import"


def test_the_walk_sees_deferred_and_relative_imports(tmp_path):
    # A cycle that only a deferred import closes, and a relative import, in a package of three files.
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import pkg.b\n")
    (package / "b.py").write_text("import os\n\n\ndef later():\n    from pkg import a\n    return a\n")
    (package / "sub" / "__init__.py").write_text("from . import c\nfrom .. import b\n")
    (package / "sub" / "c.py").write_text("from ..a import thing\n")
    edges = set(imports(package))
    assert edges == {
        ("pkg.a", "pkg.b", 1), ("pkg.b", "pkg.a", 5), ("pkg.sub", "pkg.sub.c", 1), ("pkg.sub", "pkg.b", 2),
        ("pkg.sub.c", "pkg.a", 1),
    }
    assert cycles(edges) == [["pkg.a", "pkg.b"]]
    layers = (("low", ("a.py", "b.py")), ("high", ("__init__.py", "sub/")))
    assert layer_of("pkg.sub.c", package, layers) == (1, "high") and layer_of("pkg.a", package, layers) == (0, "low")


def test_the_walk_of_the_package_reads_function_bodies():
    # The CLI imports each run inside its command, so `--help` needs no TensorFlow: those count.
    edges = {(importer, imported) for importer, imported, _ in imports(PACKAGE)}
    assert ("kerasgen.cli", "kerasgen.runs.pipeline") in edges
    # ... and the specs' named imports count too: the CLI starts each model's run through its spec.
    assert any(importer == "kerasgen.cli" and imported == "kerasgen.runs.vae" for importer, imported, _ in named_imports())
    assert ("kerasgen.evaluation.report", "kerasgen.plots") in edges  # deferred in `_plots`
