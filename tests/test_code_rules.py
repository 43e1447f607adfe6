"""Rules the shipped code keeps, read from its source: no module reaches into another's private names.

A name with a leading underscore is its module's or its class's own business: importing it
(``from x import _y``), or reading it off another module or object (``x._y``), ties two modules
to a detail either may change, and for a library (``agno.team._run``) breaks on an upgrade.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("bot", "knowledge", "localslack")
# Underscored by design: the public API of named tuples; argparse's type for add_subparsers(),
# which has no public name (used in annotations only).
PUBLIC_UNDERSCORED = {"_replace", "_asdict", "_fields", "_make", "_SubParsersAction"}
# Known cases in modules other work owns, each to be removed there; a new one fails the test.
KNOWN = {
    ("bot/playground/server.py", "_stop_on_signals"),  # bot.server's signal handling
    ("knowledge/readers/docx.py", "_tc"),  # python-docx's cell element: no public accessor
}


def private_uses(path: Path) -> list[tuple[int, str, str]]:
    """(line, private name, how it is used) for each private name ``path`` takes from elsewhere."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno, alias.name, f"from {node.module} import {alias.name}"))
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append((node.lineno, node.attr, ast.unparse(node)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and _private(name.value):
                found.append((node.lineno, name.value, ast.unparse(node)))
    return sorted(found)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORED


def shipped_modules() -> list[Path]:
    return sorted(
        p for package in SHIPPED if (ROOT / package).is_dir() for p in (ROOT / package).rglob("*.py")
    )


def test_no_module_uses_another_modules_private_names():
    assert len(shipped_modules()) > 40  # the walk found the code
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {use}"
        for path in shipped_modules()
        for line, name, use in private_uses(path)
        if (path.relative_to(ROOT).as_posix(), name) not in KNOWN
    ]
    assert offences == []


def test_the_rule_sees_each_way_of_reaching_in(tmp_path: Path):
    module = tmp_path / "reaching.py"
    module.write_text(
        "from agno.team import _run\n"
        "from bot.answering import Retrieval, _Contract\n"
        "import bot.server\n"
        "pending = _run._background_tasks\n"
        "bot.server._stop_on_signals()\n"
        "tasks = getattr(_run, '_background_tasks', ())\n"
        "class Own:\n"
        "    def __init__(self):\n"
        "        self._mine = point._replace(x=1)\n",
        encoding="utf-8",
    )
    assert [name for _, name, _ in private_uses(module)] == [
        "_run",
        "_Contract",
        "_background_tasks",
        "_stop_on_signals",
        "_background_tasks",
    ]
