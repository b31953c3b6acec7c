"""Tiny pure-Python wheels built in the test, for running real pip offline (--no-index --find-links)."""

import zipfile


def make_wheel(folder, name: str, version: str, body: str = "", requires: tuple[str, ...] = ()) -> str:
    """Write ``name-version-py3-none-any.whl`` (module ``name`` with VERSION, and a console script) into
    folder; ``requires``: its dependencies (Requires-Dist)."""
    dist = f"{name}-{version}.dist-info"
    needs = "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n{body}",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{needs}",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: ritm_qgis-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": f"[console_scripts]\n{name}-hello = {name}:VERSION\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    path = f"{folder}/{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in files.items():
            zf.writestr(member, text)
    return path
