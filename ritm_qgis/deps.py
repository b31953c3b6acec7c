"""The Python packages the plugin needs, which are missing, and how to install them without touching QGIS.

Runs with any Python and imports nothing outside the standard library (``deps_network`` included),
so that it works inside a QGIS whose Python lacks torch or the geo stack, and as a command:

    python3 -m ritm_qgis.deps              # what is missing, its size and the install command (exit 1 if any)
    python3 -m ritm_qgis.deps --json       # {"missing", "command", "target", "download_mb", "disk_mb", "notes"}
    python3 -m ritm_qgis.deps --install    # install what is missing
    python3 -m ritm_qgis.deps --uninstall  # remove the folder

The packages go into a folder private to the plugin inside the QGIS profile,
``<profile>/python/ritm_qgis_deps/python3.X``, which ``activate`` *appends* to ``sys.path`` when the
plugin loads: whatever QGIS's Python already imports comes first and is never shadowed. pip runs as
QGIS's own interpreter (the one under ``sys.exec_prefix``, checked before it runs), under a
constraints file written at install time that pins every distribution QGIS's Python already has to
its installed version (numpy above all). Only what is missing is installed: the folder's contents
count as installed and stay (see ``install``). The versions come from ``requirements.txt`` beside
this file, the plugin's single list of pins. torch is the CPU build unless the CUDA build is chosen:
from PyTorch's CPU index (``RITM_QGIS_TORCH_INDEX`` replaces it; empty: none), asked for by its exact
``+cpu`` version where PyPI's torch is the CUDA build, so pip fails rather than fetch CUDA when that
index is out of reach. Where QGIS's Python has no pip, pip's own wheel is fetched from the registry.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field

try:
    from .about import PLUGIN_NAME
except ImportError:  # imported as a file of the plugin folder, not as the package: its sibling
    from about import PLUGIN_NAME

try:
    from importlib import metadata as _metadata
except ImportError:  # Python < 3.8
    _metadata = None

PLUGIN_TITLE = PLUGIN_NAME  # metadata.txt's name
REQUIREMENTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")
MODULE_OF = {"opencv-python-headless": "cv2"}  # distributions whose module is not their name
TORCH_INDEX_ENV = "RITM_QGIS_TORCH_INDEX"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WINDOWS_CUDA_INDEX = "https://download.pytorch.org/whl/cu126"  # PyPI's Windows torch is CPU-only
# Not pinned to QGIS's copy: torch declares setuptools (to build C++ extensions) and sympy/mpmath
# (torch.compile) at versions newer than Debian 12 ships, and inference imports none of them, so a
# pin would only make the install impossible. QGIS's copies still win at import (the folder is
# appended) and the installer drops the newer duplicates from the folder.
UNPINNED = {"setuptools", "sympy", "mpmath", "pip", "wheel", "ritm-qgis"}
_OPS = ("~=", "==", "!=", "<=", ">=", "<", ">")


class InstallError(Exception):
    """An install that could not run or did not finish; the message is one sentence for the user."""


# ---------------------------------------------------------------- requirements and versions
@dataclass
class Requirement:
    name: str  # as written in requirements.txt
    spec: str  # e.g. ">=1.24,<2" ("" for any version)

    @property
    def text(self) -> str:
        return self.name + self.spec

    @property
    def module(self) -> str:
        return MODULE_OF.get(self.name.lower(), self.name.lower().replace("-", "_"))


def read_requirements(path: str | None = None) -> list[Requirement]:
    """The requirements of a pip requirements file, the plugin's by default (comments, options and markers ignored)."""
    reqs = []
    with open(path or REQUIREMENTS_FILE, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].split(";", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$", line)
            if m:
                reqs.append(Requirement(m.group(1), m.group(2).replace(" ", "")))
    return reqs


def _name_of(requirement: str) -> str:
    return normalize(re.match(r"[A-Za-z0-9._-]*", requirement).group(0))


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(version: str) -> tuple:
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


def _cmp(a: tuple, b: tuple) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def satisfies(version: str, spec: str, lower_bounds_only: bool = False) -> bool:
    """Whether a version meets a specifier such as ">=1.24,<2" (release numbers only, local part ignored).

    With ``lower_bounds_only`` the upper bounds and exclusions are ignored, and ``==``/``~=`` count as
    ``>=``: how a package QGIS's Python already has is judged.
    """
    have = _release(version)
    for clause in filter(None, spec.split(",")):
        op = next((o for o in _OPS if clause.startswith(o)), None)
        if op is None:
            continue
        c = _cmp(have, _release(clause[len(op):].rstrip(".*")))
        if lower_bounds_only:
            ok = c > 0 if op == ">" else c >= 0 if op in (">=", "==", "~=") else True
        else:
            ok = {"==": c == 0, "!=": c != 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0, "~=": c >= 0}[op]
        if not ok:
            return False
    return True


# ---------------------------------------------------------------- where things go
def python_tag() -> str:
    return "python%d.%d" % sys.version_info[:2]


def default_profile() -> str:
    """The QGIS profile this copy of the plugin is installed in, else QGIS's default profile."""
    here = os.path.dirname(os.path.abspath(__file__))  # <profile>/python/plugins/ritm_qgis
    plugins = os.path.dirname(here)
    if os.path.basename(plugins) == "plugins" and os.path.basename(os.path.dirname(plugins)) == "python":
        return os.path.dirname(os.path.dirname(plugins))
    base = os.environ.get("QGIS_CUSTOM_CONFIG_PATH")
    if not base:
        if os.name == "nt":
            base = os.path.join(os.environ.get("APPDATA", os.path.expanduser("~")), "QGIS", "QGIS3")
        elif sys.platform == "darwin":
            base = os.path.expanduser("~/Library/Application Support/QGIS/QGIS3")
        else:
            data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
            base = os.path.join(data, "QGIS", "QGIS3")
    return os.path.join(base, "profiles", "default")


def target_folder(profile: str | None = None) -> str:
    """The plugin's private package folder in a QGIS profile, one per Python version (wheels are)."""
    return os.path.join(profile or default_profile(), "python", "ritm_qgis_deps", python_tag())


def constraints_path(target: str) -> str:
    return os.path.abspath(target).rstrip("/\\") + "-constraints.txt"


_active_target: str | None = None


def active_target() -> str:
    """The folder the plugin activated at load, else the default one."""
    return _active_target or target_folder()


def activate(target: str) -> bool:
    """Append the package folder to sys.path (after everything QGIS already imports); True if it exists.

    An install that could not replace a folder in use (Windows keeps the DLLs QGIS loaded from it)
    waits beside it as ``<folder>.next``; here, before anything is imported from it, it takes its
    place."""
    global _active_target
    _active_target = os.path.abspath(target)
    switch_to_next(target)
    if not os.path.isdir(target):
        return False
    if os.path.abspath(target) not in (os.path.abspath(p) for p in sys.path if p):
        sys.path.append(os.path.abspath(target))
        importlib.invalidate_caches()
    return True


def switch_to_next(target: str) -> bool:
    """Put ``<target>.next`` (an install made while the folder was in use) in the folder's place."""
    pending, old = target + ".next", target + ".old"
    if not os.path.isdir(pending) or os.path.abspath(target) in (os.path.abspath(p) for p in sys.path if p):
        return False
    try:
        shutil.rmtree(old, ignore_errors=True)
        if os.path.isdir(target):
            os.replace(target, old)
        os.replace(pending, target)
    except OSError:  # still in use: the current folder stays, the switch waits for the next start
        if os.path.isdir(old) and not os.path.isdir(target):
            os.replace(old, target)
        return False
    shutil.rmtree(old, ignore_errors=True)
    return True


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.normcase(os.path.abspath(path)), os.path.normcase(os.path.abspath(folder))
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


# ---------------------------------------------------------------- what this Python has
@dataclass
class Need:
    requirement: Requirement
    version: str | None  # installed version, None when not importable ("" when the version is unknown)
    in_target: bool  # found in the plugin's own folder rather than in QGIS's Python

    @property
    def ok(self) -> bool:
        if self.version is None:
            return False
        if self.version == "":
            return True
        return satisfies(self.version, self.requirement.spec, lower_bounds_only=not self.in_target)

    @property
    def conflict(self) -> bool:
        """Too old in QGIS's own Python: installing a newer one would have to shadow QGIS's copy."""
        return not self.ok and self.version is not None and not self.in_target


def _module_origin(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("namespace", "built-in", "frozen"):
        return spec.origin
    locations = list(spec.submodule_search_locations or [])
    return locations[0] if locations else ""


def _installed_version(name: str) -> str:
    if _metadata is None:
        return ""
    try:
        return _metadata.version(name) or ""
    except Exception:  # not found, or unreadable metadata: the import decides later
        return ""


def check(target: str | None = None, requirements: list[Requirement] | None = None) -> list[Need]:
    """Each requirement with what this Python can import now (``target`` on sys.path counts as ours)."""
    needs = []
    for req in read_requirements() if requirements is None else requirements:
        origin = _module_origin(req.module)
        if origin is None:
            needs.append(Need(req, None, False))
            continue
        needs.append(Need(req, _installed_version(req.name), bool(target) and _inside(origin, target)))
    return needs


def present_distributions(exclude: str | None = None) -> dict[str, tuple[str, str]]:
    """normalized name -> (name, version) of every distribution this Python imports first, outside ``exclude``."""
    found: dict[str, tuple[str, str]] = {}
    if _metadata is None:
        return found
    for dist in _metadata.distributions():
        try:
            name, version = dist.metadata["Name"], dist.version
            where = str(dist.locate_file(""))
        except Exception:  # broken metadata
            continue
        if not name or normalize(name) in found:
            continue  # a later copy on sys.path is shadowed by the first one
        if exclude and _inside(where, exclude):
            continue
        found[normalize(name)] = (name, version or "")
    return found


def constraint_lines(present: dict[str, tuple[str, str]]) -> list[str]:
    """``name==version`` for each distribution pip may not replace; versions that are not real releases
    (Debian writes 0.0.0 when it does not know) cannot be pinned and are left out."""
    lines = []
    for key, (name, version) in sorted(present.items()):
        public = version.split("+", 1)[0]
        if key in UNPINNED or not re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", public):
            continue
        if _release(public) == (0, 0, 0):
            continue
        lines.append(f"{name}=={public}")
    return lines


# Newer releases need more than an older QGIS Python has (read from their wheels' Requires-Dist): with
# QGIS's copy pinned, pip would download release after release (7 pandas wheels of 12 MB on Debian 12)
# before it settles on the last that fits, so those are capped at once.
COMPANION_CAPS = (("numpy", "1.26", "pandas<3"), ("numpy", "1.26", "shapely<2.2"), ("pyproj", "3.5", "geopandas<1.1"))


def companion_caps(present: dict[str, tuple[str, str]]) -> list[str]:
    """The caps of COMPANION_CAPS that this Python's own versions call for."""
    return [cap for dist, below, cap in COMPANION_CAPS
            if dist in present and present[dist][1] and _cmp(_release(present[dist][1]), _release(below)) < 0]


# ---------------------------------------------------------------- the command
def python_executable() -> str:
    """QGIS's own Python interpreter: the one under ``sys.exec_prefix`` (inside QGIS, ``sys.executable``
    may be QGIS itself, or whatever ``python3`` comes first on the PATH of the shell QGIS started from)."""
    names = (["python.exe", "python3.exe"] if os.name == "nt"
             else ["python%d.%d" % sys.version_info[:2], "python3", "python"])
    folders = [os.path.join(prefix, sub) for prefix in dict.fromkeys((sys.exec_prefix, sys.prefix))
               for sub in (("", "Scripts") if os.name == "nt" else ("bin",))]
    exe = sys.executable or ""
    if os.path.basename(exe).lower().startswith("python") and any(_inside(exe, folder) for folder in folders):
        return exe
    for folder in folders:
        for name in names:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
    raise InstallError(f"QGIS's Python interpreter was not found in {sys.exec_prefix}; install the packages "
                       f"with that Python's pip by hand (the folder and packages are shown above).")


def check_interpreter(python: str) -> None:
    """Refuse an interpreter that is not this very Python (another version or installation would
    build packages QGIS cannot import)."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.prefix)"
    try:
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        raise InstallError(f"QGIS's Python ({python}) could not be started ({exc}); nothing was installed.") from None
    mine = "%d.%d" % sys.version_info[:2]
    if len(out) < 2 or out[0] != mine or os.path.realpath(out[1]) != os.path.realpath(sys.prefix):
        found = f"Python {out[0]} in {out[1]}" if len(out) >= 2 else "not a Python that answers"
        raise InstallError(f"{python} is {found}, not QGIS's own Python {mine} in {sys.prefix}, so its packages "
                           "would not load in QGIS; nothing was installed.")


def pip_argv(python: str | None = None, wheel_folders: list[str] | None = None) -> list[str]:
    """How to run pip with QGIS's Python: its pip module, else a pip wheel (runnable as is) from this
    machine or, failing that, one fetched from the package registry into the plugin's folder (no root
    needed); ``PipMissing`` when there is none of them."""
    python = python or python_executable()
    if importlib.util.find_spec("pip") is not None:
        return [python, "-m", "pip"]
    wheel = local_pip_wheel(wheel_folders)
    if wheel is None:
        raise PipMissing(f"QGIS's Python ({python}) has no pip; the installer fetches pip's own package from "
                         "the package registry (pypi.org) first.")
    return [python, os.path.join(wheel, "pip")]


class PipMissing(InstallError):
    """QGIS's Python has no pip and this machine holds no pip wheel: ``install`` fetches one first."""


def pip_wheel_folders(target: str | None = None) -> list[str]:
    """Where a pip wheel may already lie: the plugin's own download (beside ``target``), Debian's
    python3-pip-whl, ensurepip's bundled one."""
    folders = [os.path.join(os.path.dirname(os.path.abspath(target or target_folder())), "pip"),
               "/usr/share/python-wheels"]
    ensurepip = importlib.util.find_spec("ensurepip")
    if ensurepip is not None and ensurepip.origin:
        folders.append(os.path.join(os.path.dirname(ensurepip.origin), "_bundled"))
    return folders


def local_pip_wheel(folders: list[str] | None = None) -> str | None:
    import glob

    for folder in pip_wheel_folders() if folders is None else folders:
        wheels = sorted(glob.glob(os.path.join(folder, "pip-*.whl")), key=lambda w: _release(
            os.path.basename(w)[4:]))
        if wheels:
            return wheels[-1]
    return None


def gpu_present() -> bool:
    """An NVIDIA driver is installed (the CUDA build of torch would have a GPU to use)."""
    if os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi"):
        return True
    if os.name == "nt":
        return os.path.exists(os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvcuda.dll"))
    return False


# Optional packages that make the plugin faster where they apply; never "missing".
OPENVINO_REQUIREMENT = "openvino>=2025.1"


def _cpu_flags() -> set | None:
    """The CPU's flags (Linux), None where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _cpu_has_bf16() -> bool:
    """The CPU computes bfloat16 in hardware (Linux's flags; elsewhere assumed not)."""
    return bool((_cpu_flags() or set()) & {"avx512_bf16", "amx_bf16"})


def _cpu_has_avx2() -> bool:
    """The CPU has AVX2 (Linux's flags; elsewhere assumed so)."""
    flags = _cpu_flags()
    return flags is None or "avx2" in flags


def optional_speedups(build: str = "cpu") -> list[str]:
    """Optional requirements worth installing here: OpenVINO on an x86-64 CPU with AVX2, without bf16
    hardware and without a GPU (where the engine's 'auto' runs it), when it is not installed yet."""
    import platform

    if build != "cpu" or gpu_present() or platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    if _cpu_has_bf16() or not _cpu_has_avx2() or _module_origin("openvino") is not None:
        return []
    return [OPENVINO_REQUIREMENT]


def torch_index(build: str = "cpu") -> str:
    """The extra index torch comes from ("" for none): ``RITM_QGIS_TORCH_INDEX`` when set."""
    if TORCH_INDEX_ENV in os.environ:
        return os.environ[TORCH_INDEX_ENV].strip()
    if build == "cuda":
        # PyPI's Linux wheels are the CUDA build; PyTorch's own index serves it for Windows
        return WINDOWS_CUDA_INDEX if os.name == "nt" else ""
    return CPU_INDEX


def cpu_torch_requirement(requirement: str) -> str:
    """``torch==X`` -> ``torch==X+cpu`` on Linux and Windows: only the CPU build satisfies it, so pip
    refuses rather than takes PyPI's Linux torch (the CUDA build, with gigabytes of CUDA libraries)."""
    if sys.platform == "darwin" or _name_of(requirement) != "torch":
        return requirement
    m = re.fullmatch(r"(torch\s*==\s*[0-9.]+)", requirement.strip(), re.I)
    return m.group(1) + "+cpu" if m else requirement


# Measured on Linux x86-64 for Python 3.11 (wheel, installed size), each with the dependencies it brings
# into a QGIS Python that lacks them; a plan adds those of its missing requirements, as an estimate.
SIZES_MB = {"torch": (195, 780), "opencv-python-headless": (50, 142), "rasterio": (36, 112),
            "geopandas": (46, 181), "shapely": (2, 9), "pyproj": (9, 33), "matplotlib": (10, 36), "numpy": (18, 78),
            "affine": (0.1, 0.1), "tqdm": (0.1, 0.5)}


def size_estimate(requirements: list[str], build: str) -> tuple[float, float] | None:
    """(download MB, disk MB) for these requirements, or None when one of them is not in SIZES_MB."""
    if build != "cpu" or not all(_name_of(r) in SIZES_MB for r in requirements):
        return None
    sizes = [SIZES_MB[_name_of(r)] for r in requirements]
    return sum(d for d, _ in sizes), sum(k for _, k in sizes)


def install_command(requirements: list[str], target: str, build: str = "cpu", index: str | None = None,
                    pip: list[str] | None = None) -> list[str]:
    """The pip argv that installs ``requirements`` into ``target`` under the constraints file (``index``:
    the extra index for torch, ``torch_index(build)`` by default)."""
    # --no-compile: Python compiles what is imported on first use, not the thousands of files of torch's
    # (and of the copies dropped afterwards) that never are; it took most of an install's time here
    argv = (pip or pip_argv(wheel_folders=pip_wheel_folders(target))) + [
        "install", "--upgrade", "--prefer-binary", "--no-compile", "--target", os.path.abspath(target),
        "--constraint", constraints_path(target)]
    index = torch_index(build) if index is None else index
    if index and any(_name_of(r) == "torch" for r in requirements):
        argv += ["--extra-index-url", index]
    if build == "cpu":
        requirements = [cpu_torch_requirement(r) for r in requirements]
    return argv + list(requirements)


@dataclass
class Plan:
    """What the dialog and the command show, and ``install`` runs."""

    target: str
    missing: list[str]  # requirements not met (those in ``conflicts`` too)
    conflicts: list[str]  # one sentence each: too old in QGIS's Python, which the installer does not touch
    command: list[str]  # [] when there is nothing to install
    build: str = "cpu"
    kept: list[str] = field(default_factory=list)  # "numpy 1.24.2": what QGIS's Python has and keeps
    notes: list[str] = field(default_factory=list)  # sentences: an index out of reach, pip to fetch first
    sizes_mb: tuple[float, float] | None = None  # (download, disk), estimated
    needs_pip: bool = False  # pip's wheel is fetched from the registry before the command runs
    pip_wheel_folder: str = ""  # where that wheel goes

    def as_json(self) -> dict:
        return {"missing": self.missing, "command": self.command, "target": self.target,
                "download_mb": self.sizes_mb[0] if self.sizes_mb else None,
                "disk_mb": self.sizes_mb[1] if self.sizes_mb else None, "notes": self.notes}

    def shell_command(self) -> str:
        if os.name == "nt":
            return subprocess.list2cmdline(self.command)
        import shlex

        return " ".join(shlex.quote(a) for a in self.command)

    def size_text(self) -> str:
        if self.sizes_mb is None:
            return ""
        download, disk = (f"{round(v, -1):,.0f}" if v >= 10 else f"{v:.0f}" for v in self.sizes_mb)
        return f"About {download} MB to download and {disk} MB on disk (measured on Linux; other systems differ)."

    def text(self) -> str:
        """Everything a user or administrator needs, as copyable text."""
        lines = []
        if self.missing:
            lines.append(f"{PLUGIN_TITLE} needs these Python packages, which QGIS's Python "
                         f"({python_executable()}) does not have: {', '.join(self.missing)}.")
        else:
            lines.append(f"QGIS's Python ({python_executable()}) has every package {PLUGIN_TITLE} needs.")
        lines += self.conflicts
        if self.command:
            lines += ["", "They go into a folder of their own, which the plugin adds to Python's search path "
                      "when QGIS starts (after QGIS's own packages, which it never replaces):", "  " + self.target]
            if self.size_text():
                lines.append(self.size_text())
            if self.kept:
                lines.append("Kept as they are: " + ", ".join(self.kept) + ".")
            lines.append("torch: " + ("the CUDA build (NVIDIA GPU)." if self.build == "cuda" else "the CPU build."))
            lines += self.notes
            lines += ["", "Command (pinned to QGIS's own versions by the constraints file it names):",
                      "  " + self.shell_command()]
        return "\n".join(lines)


def make_plan(target: str | None = None, build: str = "cpu", requirements: list[Requirement] | None = None,
              write_constraints: bool = True) -> Plan:
    """Check this Python against the requirements and prepare the install command (and its constraints file)."""
    target = os.path.abspath(target or target_folder())
    activate(target)
    needs = check(target, requirements)
    missing = [n.requirement.text for n in needs if not n.ok]
    conflicts = [f"QGIS's Python has {n.requirement.name} {n.version}, older than the {n.requirement.text} "
                 f"{PLUGIN_TITLE} needs; the installer does not replace QGIS's packages, so update it "
                 "with the tool that installed it (e.g. your system's package manager)."
                 for n in needs if n.conflict]
    installable = [n.requirement.text for n in needs if not n.ok and not n.conflict]
    present = present_distributions(exclude=target)
    kept = [f"{name} {version}" for key, (name, version) in sorted(present.items())
            if key in {normalize(n.requirement.name) for n in needs} and key not in UNPINNED]
    plan = Plan(target, missing, conflicts, [], build, kept, pip_wheel_folder=pip_wheel_folders(target)[0])
    if not installable:
        return plan
    python = python_executable()
    try:
        pip = pip_argv(python, pip_wheel_folders(target))
    except PipMissing as exc:
        plan.needs_pip = True
        plan.notes.append(str(exc))
        pip = [python, os.path.join(plan.pip_wheel_folder, "pip-<latest>-py3-none-any.whl", "pip")]
    index = torch_index(build)
    if index and any(_name_of(r) == "torch" for r in installable):
        from .deps_network import unreachable_reason

        reason = unreachable_reason(index)
        if reason is not None:
            index = ""
            plan.notes.append(
                f"PyTorch's package index ({torch_index(build)}) cannot be reached from here ({reason}), so pip "
                "looks for torch in its usual sources only"
                + (", and asks for the CPU build by its exact version: PyPI has only the CUDA build for Linux, so "
                   "unless a mirror or local folder of yours holds the CPU build, the install stops with a "
                   "sentence instead of downloading gigabytes of CUDA libraries." if sys.platform.startswith("linux")
                   and build == "cpu" else "."))
    plan.command = install_command(installable, target, build, index=index, pip=pip)
    for optional in optional_speedups(build):
        plan.notes.append(f"Optional, not installed by this command: {optional} (about 60 MB) makes each click "
                          "1.3-1.7x faster on this CPU, which has no bfloat16 hardware; add it to the command's "
                          "package list to install it too.")
    plan.sizes_mb = size_estimate(installable, build)
    if write_constraints:
        from .core.atomic import write_text_atomically

        write_text_atomically(constraints_path(target),
                          "# Written by ritm_qgis.deps: the versions QGIS's Python already has.\n"
                          + "".join(line + "\n" for line in constraint_lines(present) + companion_caps(present)))
    return plan


# ---------------------------------------------------------------- running it
def run_streaming(argv: list[str], on_line, should_stop=lambda: False, env: dict | None = None) -> int | None:
    """Run argv, passing each output line to ``on_line``; None when ``should_stop`` turned true (then killed)."""
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1", PIP_NO_INPUT="1", PIP_PROGRESS_BAR="off")
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, text=True, errors="replace", bufsize=1, creationflags=flags)
    lines: queue.Queue = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put(line.rstrip("\r\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            if should_stop():
                _stop(proc)
                return None
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                return proc.wait()
            on_line(line)
    except BaseException:  # Ctrl+C, or on_line failed: pip must not go on writing alone
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def prune_shadowed(folder: str, present: dict[str, tuple[str, str]]) -> list[str]:
    """Delete from ``folder`` the distributions QGIS's Python already has (they would never be imported)."""
    removed = []
    for entry in sorted(os.listdir(folder)):
        if not entry.endswith(".dist-info"):
            continue
        name = entry[: -len(".dist-info")].rsplit("-", 1)[0]
        if normalize(name) not in present:
            continue
        info = os.path.join(folder, entry)
        record = os.path.join(info, "RECORD")
        if os.path.isfile(record):
            with open(record, encoding="utf-8") as f:
                for row in f:
                    rel = row.rsplit(",", 2)[0].strip().strip('"')
                    if rel.startswith("../../"):  # scripts and data: pip --target moves bin/, share/ into the folder
                        rel = rel[len("../../"):]
                    path = os.path.join(folder, rel)
                    if rel and _inside(path, folder) and os.path.isfile(path):
                        os.remove(path)
        shutil.rmtree(info, ignore_errors=True)
        removed.append(name)
    for root, dirs, files in os.walk(folder, topdown=False):  # folders the removals emptied
        if root != folder and not os.listdir(root):
            os.rmdir(root)
    return removed


def install(plan: Plan, on_line=print, should_stop=lambda: False) -> list[str]:
    """Install what the plan lists as missing, beside what the folder already holds, then swap it in.

    pip installs under a scratch prefix with the folder on its path (``PYTHONPATH``), so what the
    folder or QGIS's Python already has counts as installed and is neither downloaded nor lost (pip's
    ``--target`` ignores both). The new distributions then join a copy of the folder (hard links), and
    the copy replaces the folder. pip's temporary files live in the scratch folder, removed whatever
    happens. A failed or cancelled install (Ctrl+C included) leaves the folder as it was. Returns the
    names dropped from the new folder because QGIS's Python already has them.
    """
    if not plan.command:
        raise InstallError("Nothing to install" + (": " + plan.conflicts[0] if plan.conflicts else "."))
    target = plan.target
    staging, old, scratch = target + ".partial", target + ".old", target + ".tmp"
    argv = list(plan.command)
    check_interpreter(argv[0])
    for leftover in (staging, old, scratch):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        os.makedirs(scratch)
        if plan.needs_pip:
            argv[1] = os.path.join(_fetch_pip(plan, on_line), "pip")
        prefix = os.path.join(scratch, "prefix")
        at = argv.index("--target")
        argv[at:at + 2] = ["--prefix", prefix]
        env = dict(os.environ, TMPDIR=scratch, TEMP=scratch, TMP=scratch)
        # the folder first, then whatever path QGIS's Python already had (OSGeo4W sets one)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (target if os.path.isdir(target) else "",
                                                        os.environ.get("PYTHONPATH", "")) if p)
        on_line("$ " + plan.shell_command())
        try:
            code = run_streaming(argv, on_line, should_stop, env=env)
        except OSError as exc:
            raise InstallError(f"Could not start pip ({exc.strerror or exc}); nothing was changed.") from None
        if code is None:
            raise InstallError("Installation cancelled; nothing was changed.")
        if code != 0:
            hint = next((n for n in plan.notes if "PyTorch's package index" in n), "")
            raise InstallError(f"pip failed (exit code {code}, see its messages above); nothing was changed."
                               + (f" {hint}" if hint and "torch" in " ".join(plan.missing) else ""))
        _copy_folder(target, staging)
        _merge_prefix(prefix, staging)
        _refuse_cuda_torch(plan, staging)
        removed = prune_shadowed(staging, present_distributions(exclude=target))
        if removed:
            on_line("Not kept (QGIS's Python already has them): " + ", ".join(removed))
        switched = _swap_in(staging, target, old)
    finally:
        for leftover in (staging, scratch):
            shutil.rmtree(leftover, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    if switched:
        activate(target)
        on_line(f"Installed into {target}.")
    else:
        on_line(f"Installed; QGIS uses {target} now, so the new packages take its place when QGIS starts again.")
    return removed


def _copy_folder(folder: str, copy: str) -> None:
    """``copy`` holds what ``folder`` holds (hard links where the file system allows: no second gigabyte)."""
    if not os.path.isdir(folder):
        os.makedirs(copy)
        return

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(folder, copy, symlinks=True, copy_function=link)


def _merge_prefix(prefix: str, folder: str) -> None:
    """Move what pip installed under ``prefix`` (its site-packages, wherever the platform put it) into
    ``folder``, each distribution replacing an older copy of itself there."""
    for root, dirs, _ in os.walk(prefix):
        if os.path.basename(root) not in ("site-packages", "dist-packages"):
            continue
        dirs[:] = []
        entries = os.listdir(root)
        fresh = {normalize(e[:-len(".dist-info")].rsplit("-", 1)[0]): e for e in entries if e.endswith(".dist-info")}
        prune_shadowed(folder, {name: (name, "") for name in fresh})
        for entry in entries:
            dest = os.path.join(folder, entry)
            if os.path.isdir(dest) and not os.path.islink(dest):
                shutil.rmtree(dest)
            elif os.path.lexists(dest):
                os.remove(dest)
            os.replace(os.path.join(root, entry), dest)


def _fetch_pip(plan: Plan, on_line) -> str:
    from .deps_network import fetch_pip_wheel

    on_line("QGIS's Python has no pip: fetching pip's own package from the registry first.")
    try:
        return fetch_pip_wheel(plan.pip_wheel_folder)
    except (OSError, ValueError) as exc:
        raise InstallError(f"QGIS's Python has no pip, and {exc}; install pip for that Python (Debian/Ubuntu: "
                           "the package python3-pip), then try again. Nothing was changed.") from None


def _refuse_cuda_torch(plan: Plan, staging: str) -> None:
    """On Linux, a CPU plan that ended with PyPI's torch (the CUDA build) is refused before the swap."""
    if plan.build != "cpu" or not sys.platform.startswith("linux"):
        return
    for entry in os.listdir(staging):
        if entry.lower().startswith("torch-") and entry.endswith(".dist-info"):
            version = entry[len("torch-"):-len(".dist-info")]
            if "+cpu" not in version and any(_name_of(r) == "torch" for r in plan.missing):
                raise InstallError(f"pip chose torch {version}, which is not the CPU build; nothing was changed. "
                                   f"Let pip reach {CPU_INDEX} (or set {TORCH_INDEX_ENV} to a mirror of it).")


def _swap_in(staging: str, target: str, old: str, rename=os.replace) -> bool:
    """Put the new folder in place: now (True), or, when the folder in use cannot be renamed (Windows,
    DLLs loaded), as ``<target>.next`` for ``activate`` at the next start (False)."""
    shutil.rmtree(target + ".next", ignore_errors=True)
    try:
        if os.path.isdir(target):
            rename(target, old)
        rename(staging, target)
        return True
    except OSError:
        if os.path.isdir(old) and not os.path.isdir(target):
            rename(old, target)
    try:
        rename(staging, target + ".next")
    except OSError as exc:
        raise InstallError(f"Could not put the new packages beside {target} ({exc.strerror or exc}); nothing was "
                           "changed. Close QGIS and install again from the plugin's menu.") from None
    return False


def uninstall(target: str) -> bool:
    """Remove the plugin's package folder (and its constraints and leftovers); False when there was none."""
    target = os.path.abspath(target)
    existed = os.path.isdir(target)
    for folder in (target + ".partial", target + ".old", target + ".tmp", target + ".next"):
        shutil.rmtree(folder, ignore_errors=True)
    if existed:
        try:
            shutil.rmtree(target)
        except OSError as exc:
            raise InstallError(f"Could not remove {target} completely ({exc.strerror or exc}), probably because "
                               "QGIS uses it: close QGIS, then delete that folder.") from None
    if os.path.exists(constraints_path(target)):
        os.remove(constraints_path(target))
    if target in sys.path:
        sys.path.remove(target)
    return existed


# ---------------------------------------------------------------- compatibility with the map tool's check
def missing_packages() -> list[str]:
    """Requirements this Python does not meet (the plugin's folder included)."""
    target = active_target()
    activate(target)
    return [n.requirement.text for n in check(target) if not n.ok]


def missing_message(missing: list[str]) -> str:
    """One short sentence for the message bar, whose title already names the plugin (the dialog
    lists the packages)."""
    n = len(missing)
    return (f"needs {n} Python package{'s' if n != 1 else ''} that {'are' if n != 1 else 'is'} not installed yet. "
            f"Install {'them' if n != 1 else 'it'} with Plugins > {PLUGIN_TITLE} > Install dependencies, "
            "then restart QGIS.")


# ---------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m ritm_qgis.deps",
        description=f"Check and install the Python packages {PLUGIN_TITLE} needs, into a folder of the "
                    "QGIS profile that QGIS's own packages always take precedence over. Run it with the "
                    "Python QGIS uses.")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--json", action="store_true",
                      help='print {"missing", "command", "target", "download_mb", "disk_mb", "notes"} as JSON '
                           '(with "error" when no command can be made)')
    what.add_argument("--install", action="store_true", help="run the install command")
    what.add_argument("--uninstall", action="store_true", help="remove the package folder the installer made")
    parser.add_argument("--target", help="the package folder (default: ritm_qgis_deps/python3.X in the QGIS "
                                         "profile holding this plugin, else in QGIS's default profile)")
    parser.add_argument("--torch", choices=("cpu", "cuda"), default="cpu",
                        help="torch build: cpu (default) or cuda (needs an NVIDIA GPU)")
    args = parser.parse_args(argv)
    target = os.path.abspath(args.target or target_folder())
    try:
        if args.uninstall:
            print(f"Removed {target}." if uninstall(target) else f"Nothing to remove: {target} does not exist.")
            return 0
        if args.torch == "cuda" and not gpu_present():
            raise InstallError("No NVIDIA GPU was found on this machine: keep the default --torch cpu.")
        plan = make_plan(target, args.torch)
        if args.json:
            print(json.dumps(plan.as_json()))
        elif args.install:
            if plan.command:
                install(plan, on_line=lambda line: print(line, flush=True))
                plan = make_plan(target, args.torch, write_constraints=False)
            for sentence in plan.conflicts:
                print(sentence, file=sys.stderr)
            print("Missing: " + ", ".join(plan.missing) if plan.missing else "Nothing is missing.")
        else:
            print(plan.text())
    except InstallError as exc:
        if args.json:
            print(json.dumps({"missing": [], "command": [], "target": target, "error": str(exc)}))
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped (Ctrl+C); nothing was changed.", file=sys.stderr)
        return 130
    return 1 if plan.missing else 0


if __name__ == "__main__":
    sys.exit(main())
