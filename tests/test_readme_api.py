"""The README's Python API example runs as written and prints sensible numbers."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_api_example_runs(caches):
    text = README.read_text()
    section = text[text.index("## Your own models: the Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    first, second = out.getvalue().splitlines()
    centre, lam, barrier = (float(v) for v in re.findall(r"[-\d.]+(?:e[-+]\d+)?", first)[:3])
    assert 0 <= centre < 0.5 and lam > 0 and barrier >= 0
    assert float(re.search(r"C = ([-\d.]+) dB", second).group(1)) > 20  # near-identical generators
