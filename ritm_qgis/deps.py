"""The Python packages the plugin needs, which are missing, and how to install them without touching QGIS.

Runs with any Python and imports nothing outside the standard library, so that it works inside a
QGIS whose Python lacks torch or the geo stack, and as a command for administrators:

    python3 -m ritm_qgis.deps            # what is missing and the exact install command (exit 1 if any)
    python3 -m ritm_qgis.deps --json     # {"missing": [...], "command": [argv...], "target": "<folder>"}
    python3 -m ritm_qgis.deps --install  # run it

The packages go into a folder private to the plugin inside the QGIS profile,
``<profile>/python/ritm_qgis_deps/python3.X``, which ``activate`` *appends* to ``sys.path`` when the
plugin loads: whatever QGIS's Python already imports comes first and is never shadowed. pip runs with
``--target`` and a constraints file written at install time that pins every distribution QGIS's
Python already has to its installed version (numpy above all), so the new packages are resolved
against the versions that will really be imported. The versions come from ``requirements.txt``
beside this file, the plugin's single list of pins. torch comes from PyTorch's CPU wheel index unless
the CUDA build is chosen; ``RITM_QGIS_TORCH_INDEX`` replaces that index (empty: no extra index).
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
    from importlib import metadata as _metadata
except ImportError:  # Python < 3.8
    _metadata = None

PLUGIN_TITLE = "RITM buildings"
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
    """Append the package folder to sys.path (after everything QGIS already imports); True if it exists."""
    global _active_target
    _active_target = os.path.abspath(target)
    if not os.path.isdir(target):
        return False
    if os.path.abspath(target) not in (os.path.abspath(p) for p in sys.path if p):
        sys.path.append(os.path.abspath(target))
        importlib.invalidate_caches()
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


# ---------------------------------------------------------------- the command
def python_executable() -> str:
    """The Python interpreter behind this process (inside QGIS, sys.executable may be QGIS itself)."""
    exe = sys.executable or ""
    if os.path.basename(exe).lower().startswith("python"):
        return exe
    names = ["python.exe", "python3.exe"] if os.name == "nt" else ["python3", "python"]
    for folder in (sys.exec_prefix, os.path.join(sys.exec_prefix, "bin")):
        for name in names:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
    return "python3"


def pip_argv() -> list[str]:
    """How to run pip with this Python: its pip module, else pip's own wheel (runnable as is)."""
    python = python_executable()
    if importlib.util.find_spec("pip") is not None:
        return [python, "-m", "pip"]
    import glob

    folders = ["/usr/share/python-wheels"]  # Debian's python3-pip-whl (python3-venv needs it)
    ensurepip = importlib.util.find_spec("ensurepip")
    if ensurepip is not None and ensurepip.origin:
        folders.append(os.path.join(os.path.dirname(ensurepip.origin), "_bundled"))
    for folder in folders:
        wheels = sorted(glob.glob(os.path.join(folder, "pip-*.whl")))
        if wheels:
            return [python, os.path.join(wheels[-1], "pip")]
    raise InstallError(f"{python} has no pip: install it (Debian/Ubuntu: sudo apt install python3-pip), then try again.")


def gpu_present() -> bool:
    """An NVIDIA driver is installed (the CUDA build of torch would have a GPU to use)."""
    if os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi"):
        return True
    if os.name == "nt":
        return os.path.exists(os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvcuda.dll"))
    return False


def torch_index(build: str = "cpu") -> str:
    """The extra index torch comes from ("" for none): ``RITM_QGIS_TORCH_INDEX`` when set."""
    if TORCH_INDEX_ENV in os.environ:
        return os.environ[TORCH_INDEX_ENV].strip()
    if build == "cuda":
        # PyPI's Linux wheels are the CUDA build; PyTorch's own index serves it for Windows
        return WINDOWS_CUDA_INDEX if os.name == "nt" else ""
    return CPU_INDEX


def install_command(requirements: list[str], target: str, build: str = "cpu") -> list[str]:
    """The pip argv that installs ``requirements`` into ``target`` under the constraints file."""
    # --no-compile: Python compiles what is imported on first use, not the thousands of files of torch's
    # (and of the copies dropped afterwards) that never are; it took most of an install's time here
    argv = pip_argv() + ["install", "--upgrade", "--prefer-binary", "--no-compile", "--target",
                         os.path.abspath(target), "--constraint", constraints_path(target)]
    index = torch_index(build)
    if index and any(_name_of(r) == "torch" for r in requirements):
        argv += ["--extra-index-url", index]
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

    def as_json(self) -> dict:
        return {"missing": self.missing, "command": self.command, "target": self.target}

    def shell_command(self) -> str:
        if os.name == "nt":
            return subprocess.list2cmdline(self.command)
        import shlex

        return " ".join(shlex.quote(a) for a in self.command)

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
            if self.kept:
                lines.append("Kept as they are: " + ", ".join(self.kept) + ".")
            lines.append("torch: " + ("the CUDA build (NVIDIA GPU)." if self.build == "cuda" else "the CPU build."))
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
    command = []
    if installable:
        command = install_command(installable, target, build)
        if write_constraints:
            write_text_atomic(constraints_path(target),
                              "# Written by ritm_qgis.deps: the versions QGIS's Python already has.\n"
                              + "".join(line + "\n" for line in constraint_lines(present)))
    return Plan(target, missing, conflicts, command, build, kept)


def write_text_atomic(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


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
    while True:
        if should_stop():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return None
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if line is None:
            return proc.wait()
        on_line(line)


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
    """Run the plan's command into a fresh folder beside the target, then put that folder in its place.

    A failed or cancelled install leaves the previous folder as it was. Returns the names dropped
    from the new folder because QGIS's Python already has them.
    """
    if not plan.command:
        raise InstallError("Nothing to install" + (": " + plan.conflicts[0] if plan.conflicts else "."))
    target = plan.target
    staging, old = target + ".partial", target + ".old"
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    argv = list(plan.command)
    argv[argv.index("--target") + 1] = staging
    on_line("$ " + plan.shell_command())
    try:
        code = run_streaming(argv, on_line, should_stop)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(f"Could not start pip ({exc.strerror or exc}); nothing was changed.") from None
    if code != 0:
        shutil.rmtree(staging, ignore_errors=True)
        if code is None:
            raise InstallError("Installation cancelled; nothing was changed.")
        raise InstallError(f"pip failed (exit code {code}, see its messages above); nothing was changed.")
    removed = prune_shadowed(staging, present_distributions(exclude=target))
    if removed:
        on_line("Not kept (QGIS's Python already has them): " + ", ".join(removed))
    try:
        if os.path.isdir(target):
            os.replace(target, old)
        os.replace(staging, target)
    except OSError as exc:
        raise InstallError(f"Could not replace {target} ({exc.strerror or exc}): close QGIS and run "
                           "python3 -m ritm_qgis.deps --install again.") from None
    shutil.rmtree(old, ignore_errors=True)
    activate(target)
    on_line(f"Installed into {target}.")
    return removed


# ---------------------------------------------------------------- compatibility with the map tool's check
def missing_packages() -> list[str]:
    """Requirements this Python does not meet (the plugin's folder included)."""
    target = active_target()
    activate(target)
    return [n.requirement.text for n in check(target) if not n.ok]


def missing_message(missing: list[str]) -> str:
    """One short sentence for the message bar (the dialog lists the packages)."""
    return (f"{PLUGIN_TITLE} needs {len(missing)} Python package{'s' if len(missing) != 1 else ''} that "
            f"{'are' if len(missing) != 1 else 'is'} not installed: use Plugins > {PLUGIN_TITLE} > "
            "Install dependencies..., then restart QGIS.")


# ---------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m ritm_qgis.deps",
        description=f"Check and install the Python packages {PLUGIN_TITLE} needs, into a folder of the "
                    "QGIS profile that QGIS's own packages always take precedence over. Run it with the "
                    "Python QGIS uses.")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--json", action="store_true", help='print {"missing", "command", "target"} as JSON')
    what.add_argument("--install", action="store_true", help="run the install command")
    parser.add_argument("--target", help="the package folder (default: ritm_qgis_deps/python3.X in the QGIS "
                                         "profile holding this plugin, else in QGIS's default profile)")
    parser.add_argument("--torch", choices=("cpu", "cuda"), default="cpu",
                        help="torch build: cpu (default) or cuda (needs an NVIDIA GPU)")
    args = parser.parse_args(argv)
    try:
        if args.torch == "cuda" and not gpu_present():
            raise InstallError("No NVIDIA GPU was found on this machine: keep the default --torch cpu.")
        plan = make_plan(args.target, args.torch)
        if args.json:
            print(json.dumps(plan.as_json()))
        elif args.install:
            if plan.command:
                install(plan, on_line=lambda line: print(line, flush=True))
                plan = make_plan(args.target, args.torch, write_constraints=False)
            for sentence in plan.conflicts:
                print(sentence, file=sys.stderr)
            print("Missing: " + ", ".join(plan.missing) if plan.missing else "Nothing is missing.")
        else:
            print(plan.text())
    except InstallError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 1 if plan.missing else 0


if __name__ == "__main__":
    sys.exit(main())
