"""The API reference's docstrings, as docs/_ext/kakusan_docstrings.py hands them to napoleon, are valid reST.

The site's build (``make docs``, warnings as errors) would fail on a docstring that is not; this test says the
same in a few seconds without Sphinx's build, naming the docstring and the docutils message. It also checks the
rewriting rules on small cases: Unicode maths, hanging indents, displays, field-like lines, tables.
"""

from __future__ import annotations

import importlib
import inspect
import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

pytestmark = pytest.mark.requires("docs")


def rst_problems(text: str) -> str:
    """docutils' warnings and errors for ``text`` (Sphinx's roles and directives stubbed), or ''."""
    from docutils import nodes
    from docutils.core import publish_doctree
    from docutils.parsers.rst import Directive, directives, roles

    def role(name, rawtext, text, lineno, inliner, options=None, content=None):
        return [nodes.literal(rawtext, text)], []

    class AnyDirective(Directive):
        has_content, optional_arguments, final_argument_whitespace, option_spec = True, 10, True, None

        def run(self):
            return []

    for name in ("mod", "func", "class", "meth", "data", "attr", "obj", "exc", "math", "ref", "doc", "eq", "term"):
        roles.register_local_role(name, role)
    for name in ("seealso", "versionadded", "deprecated", "autosummary"):
        directives.register_directive(name, AnyDirective)
    warnings = io.StringIO()
    publish_doctree(text, settings_overrides={"warning_stream": warnings, "report_level": 2, "halt_level": 5})
    return warnings.getvalue()


def to_rst(doc: str) -> str:
    """A docstring as the site renders it: sanitised, then napoleon with the site's settings."""
    from kakusan_docstrings import sanitise
    from sphinx.ext.napoleon import Config
    from sphinx.ext.napoleon.docstring import NumpyDocstring

    config = Config(napoleon_google_docstring=False, napoleon_use_param=False, napoleon_use_keyword=False,
                    napoleon_use_rtype=False, napoleon_custom_sections=[("Attributes", "params_style")])
    return str(NumpyDocstring(sanitise(inspect.cleandoc(doc).splitlines()), config))


def api_modules() -> list[str]:
    """The modules the API reference documents (docs/_ext/kakusan_pages.py)."""
    from kakusan_pages import API_PAGES, package_modules

    return [m for page, _, modules in API_PAGES for m in (modules or package_modules(f"kakusan.{page}"))]


def docstrings(module_name: str):
    module = importlib.import_module(module_name)
    yield module_name, module.__doc__
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        yield f"{module_name}.{name}", getattr(obj, "__doc__", None)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                func = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if callable(func) or isinstance(member, property):
                    yield f"{module_name}.{name}.{attr}", getattr(func, "__doc__", None)


def test_every_docstring_of_the_api_reference_is_valid_rest():
    bad = {}
    count = 0
    for module_name in api_modules():
        for name, doc in docstrings(module_name):
            if doc:
                count += 1
                if problems := rst_problems(to_rst(doc)):
                    bad[name] = problems
    assert count > 500
    assert not bad, "\n".join(f"{name}: {p}" for name, p in bad.items())


@pytest.mark.parametrize("doc", [
    "ΔE = 2 x_k f_k, |x| the norm, (n, *shape) arrays, θ_J and J_kl, a(y) / a(−y) = e^{−y}.",
    "Sums of the form |y|² and x_ are fine; `single` ticks become code; ``cond``s stays code.",
    "Text with a hanging\n    indent goes on the same line.\n\nNext paragraph.",
    "Every sampler has one signature,\n\n    f(x, *args, **options) -> y,\n\nwith words after it.",
    "A config.\n\nname : what it is.\nother, third : what they are, wrapped\n    onto a second line.\nProse again.",
    "Intro:\n\n* a bullet with *emphasis* kept;\n* another\n  continued.\n\nEnd.",
    "Title\n-----\nSection text under a heading numpydoc does not know.\n\nAPI\n---\nMore.",
    "Parameters\n----------\nx : Tensor, shape (n, *shape)\n    The data; |x| ≤ 1.\n\nAfter the fields, prose.",
    "Table:\n\n====  ==========\nname  meaning\n====  ==========\n``a``  q(x_k | x_rest) is longer than the column\n====  ==========\n",
])
def test_the_rewriting_rules_give_valid_rest(doc):
    rst = to_rst(doc)
    assert not rst_problems(rst), rst


def test_emphasis_literals_and_roles_survive():
    rst = to_rst("See :func:`kakusan.load` and ``x``; *Bias.* matters, **strong** too, but not 2*3*4.")
    assert ":func:`kakusan.load`" in rst and "``x``" in rst and "*Bias.*" in rst and "**strong**" in rst
    assert "2\\*3\\*4" in rst
