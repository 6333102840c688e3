"""The README's example runs as printed."""

import re

from conftest import REPO


def test_the_readme_example_runs():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## cellc inside PyTorch", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["loss"].item() > 0 and scope["y"].shape == (64, 32, 128)
