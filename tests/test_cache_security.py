"""The weights cache against a hostile server or a hostile neighbour, on loopback servers (no real
network): links planted at ``NAME.pth.part`` or at the note, a published digest overridden by
``--sha256``, notes missing or garbled, an endless body, a trickle, redirects to other schemes or
hosts, and a checkpoint whose tensors claim gigabytes its file does not hold."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopback import LoopbackServer
from test_catalog import blob_sha1
from tiny_model import tiny_checkpoint

from ritm_qgis import cli
from ritm_qgis.core.errors import RitmError
from ritm_qgis.models import catalog, load_model
from ritm_qgis.models.download_policy import DownloadLimits

ROOT = Path(__file__).resolve().parents[1]
VICTIM = b"a file outside the cache that nobody may overwrite\n"


@pytest.fixture
def payload(tmp_path_factory):
    with open(tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), seed=5), "rb") as fh:
        return fh.read()


@pytest.fixture
def served(payload, monkeypatch, tmp_path):
    """Entry 'test-sec' (published git blob SHA-1, exact size) served at /w.pth; cache in tmp_path/cache."""
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    with LoopbackServer({"/w.pth": payload}) as server:
        entry = catalog.ModelEntry("test-sec", "hrnet_tiny", "tests", "a test entry", "paper", server.base + "/w.pth",
                                   "git-blob-sha1:" + blob_sha1(payload), size=len(payload))
        catalog.add_entry(entry)
        try:
            yield server
        finally:
            server.state.release.set()
            catalog.remove_entry(entry.name)


def victim(tmp_path) -> Path:
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(VICTIM)
    return path


def plant(link: Path, target: Path, how: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if how == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)


def cache_files(tmp_path):
    folder = tmp_path / "cache"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --------------------------------------------------------------------------- links planted in the cache


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_a_link_at_the_part_file_is_not_written_through_by_a_download(served, payload, tmp_path, how):
    target = victim(tmp_path)
    plant(tmp_path / "cache" / "test-sec.pth.part", target, how)
    result = catalog.download_model("test-sec")
    assert target.read_bytes() == VICTIM  # the file outside the cache is untouched
    assert result.path.read_bytes() == payload and result.resumed_from == 0
    assert cache_files(tmp_path) == ["test-sec.pth", "test-sec.pth.sha256"]


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_a_link_at_the_part_file_is_not_written_through_by_an_import(served, payload, tmp_path, capsys, how):
    target = victim(tmp_path)
    plant(tmp_path / "cache" / "test-sec.pth.part", target, how)
    fetched = tmp_path / "fetched.pth"
    fetched.write_bytes(payload)
    assert cli.main(["download-weights", "test-sec", "--from", str(fetched)]) == 0
    assert target.read_bytes() == VICTIM
    assert (tmp_path / "cache" / "test-sec.pth").read_bytes() == payload
    assert cache_files(tmp_path) == ["test-sec.pth", "test-sec.pth.sha256"]


def test_a_link_at_the_note_is_not_written_through(served, payload, tmp_path):
    target = victim(tmp_path)
    plant(tmp_path / "cache" / "test-sec.pth.sha256", target, "symlink")
    catalog.download_model("test-sec")
    assert target.read_bytes() == VICTIM
    note = tmp_path / "cache" / "test-sec.pth.sha256"
    assert not note.is_symlink() and note.read_text().split() == [hashlib.sha256(payload).hexdigest(),
                                                                  str(len(payload))]


# --------------------------------------------------------------------------- the published digest


def test_a_published_digest_is_never_overridden_by_sha256(served, payload, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other.pth"
    other.write_bytes(payload)  # a perfectly loadable network, but not the authors' file
    other_sha = hashlib.sha256(payload).hexdigest()
    rc = cli.main(["download-weights", "paper-finetune", "--from", str(other), "--sha256", other_sha])
    err = capsys.readouterr().err
    assert rc == 1 and "published digest (git-blob-sha1:569fa9e7e4360c7fb274a6ca0bff263cc9d22d27)" in err
    assert "cannot replace" in err and len(err.strip().splitlines()) == 1
    rc = cli.main(["download-weights", "paper-finetune", "--url", served.base + "/w.pth", "--sha256", other_sha])
    assert rc == 1 and "cannot replace" in capsys.readouterr().err
    assert served.state.requests == []  # refused before any request
    assert cache_files(tmp_path) == []
    assert catalog.default_model()[0] == catalog.BEST_SHIPPED
    # the published digest repeated with --sha256 is no override (an entry whose digest is a SHA-256)
    catalog.remove_entry("test-sec")
    catalog.add_entry(catalog.ModelEntry("test-sec", "hrnet_tiny", "tests", "a test entry", "paper",
                                         served.base + "/w.pth", "sha256:" + other_sha))
    assert cli.main(["download-weights", "test-sec", "--from", str(other), "--sha256", other_sha.upper()]) == 0


def test_a_file_planted_under_a_published_name_is_refused_at_load(served, payload, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "paper-finetune.pth").write_bytes(payload)
    catalog.record_verified(cache / "paper-finetune.pth")  # even with a matching note (made by an old version)
    with pytest.raises(RitmError, match="is not the published paper-finetune .*download-weights paper-finetune --force"):
        load_model("paper-finetune")


# --------------------------------------------------------------------------- notes


@pytest.mark.parametrize("note", [None, "", "   \n", "not a checksum at all", "z" * 64 + " 12", "ab" * 32])
@pytest.mark.parametrize("name", ["coco_lvis_h18_itermask", "mine"])
def test_a_missing_or_bad_note_is_refused_with_the_command_that_reverifies(payload, tmp_path, monkeypatch, capsys,
                                                                           note, name):
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / f"{name}.pth"
    cached.parent.mkdir()
    cached.write_bytes(payload)
    if note is not None:
        (tmp_path / "cache" / f"{name}.pth.sha256").write_text(note)
    with pytest.raises(RitmError) as err:
        load_model(name)
    text = str(err.value)
    reverify = f"`ritm-qgis download-weights {name} --from {cached} --sha256 HEX`"
    again = "--force`" if name != "mine" else "--url URL --force`"
    assert "checksum note" in text and "cannot be verified" in text and reverify in text and again in text
    assert text.count(". ") == 0 and text.endswith(".")  # one sentence
    # the command it names re-verifies the file, after which it loads
    sha = hashlib.sha256(payload).hexdigest()
    assert cli.main(["download-weights", name, "--from", str(cached), "--sha256", sha]) == 0
    _, info = load_model(name)
    assert info.path == str(cached)


# --------------------------------------------------------------------------- size and rate


def test_an_endless_body_is_capped_at_the_catalogue_size(served, payload, tmp_path):
    served.state.mode = "endless"
    cap = len(payload) + (1 << 20)  # the size the list knows, plus the policy's margin
    with pytest.raises(RitmError, match=f"stopped after {cap} bytes, more than the file can be"):
        catalog.download_model("test-sec")
    assert served.state.bytes_sent < cap + (8 << 20)  # the client stopped reading (socket buffers aside)
    assert cache_files(tmp_path) == []  # nothing kept: it was not the file


def test_a_declared_length_beyond_the_cap_is_refused_before_the_body(served, payload, tmp_path):
    served.state.files["/w.pth"] = payload * 4  # Content-Length far above the catalogue size
    with pytest.raises(RitmError, match="more than the file can be"):
        catalog.download_model("test-sec")
    assert cache_files(tmp_path) == []


def test_an_unknown_size_is_capped_too(served, payload, tmp_path):
    served.state.mode = "endless"
    with pytest.raises(RitmError, match="stopped after 3000000 bytes"):
        catalog.download_model("mine", url=served.base + "/w.pth", limits=DownloadLimits(max_bytes=3_000_000))
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize("mode", ["trickle", "silent"])
def test_a_trickle_or_a_silence_is_stopped_by_the_minimum_rate(served, tmp_path, mode):
    served.state.mode = mode  # one byte per 0.3 s, or nothing at all after the headers
    limits = DownloadLimits(min_rate=100.0, rate_window_s=1.5)
    start = time.monotonic()
    with pytest.raises(RitmError) as err:
        catalog.download_model("test-sec", limits=limits)
    assert time.monotonic() - start < 20
    text = str(err.value)
    if mode == "trickle":
        assert "less than 100 bytes per second" in text and "last 1.5 s" in text
    else:
        assert "no data came for 1.5 s" in text
    assert "choose a faster mirror" in text and "Traceback" not in text


def test_the_default_limits_are_generous_but_finite():
    limits = DownloadLimits()
    assert limits.min_rate == 1024 and limits.rate_window_s == 60 and limits.max_bytes == 2 << 30
    from ritm_qgis.models.download_policy import size_cap

    assert size_cap(1000) == 1000 + (1 << 20)
    assert size_cap(None, "about 41 MB") == int(41e6 * 1.5) + (1 << 20)
    assert size_cap(None, None) == 2 << 30


# --------------------------------------------------------------------------- redirects


def test_a_redirect_to_ftp_is_refused(served, tmp_path):
    served.state.redirects["/moved.pth"] = "ftp://127.0.0.1:1/w.pth"
    with pytest.raises(RitmError, match=r"Refusing to download from ftp://127\.0\.0\.1:1/w\.pth: only https://"):
        catalog.download_model("mine", url=served.base + "/moved.pth")
    assert cache_files(tmp_path) == []


def test_a_redirect_to_plain_http_elsewhere_is_refused_and_to_the_mirror_followed(served, payload, tmp_path,
                                                                                  monkeypatch):
    with LoopbackServer({"/w.pth": payload}) as elsewhere:
        served.state.redirects["/mirror/test-sec.pth"] = elsewhere.base + "/w.pth"
        monkeypatch.setenv(catalog.MIRROR_ENV, served.base + "/mirror")
        with pytest.raises(RitmError, match=f"Refusing to download from {elsewhere.base}/w.pth"):
            catalog.download_model("test-sec")
        assert elsewhere.state.requests == [] and cache_files(tmp_path) == []
        served.state.redirects["/mirror/test-sec.pth"] = "/w.pth"  # within the mirror's own origin
        assert catalog.download_model("test-sec").path.read_bytes() == payload
    assert [r[0] for r in served.state.requests] == ["/mirror/test-sec.pth"] * 2 + ["/w.pth"]


# --------------------------------------------------------------------------- size bomb

_PEAK = """
import resource, sys
from ritm_qgis import cli
rc = cli.main(["model-info", sys.argv[1]])
print(json.dumps({"rc": rc, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _model_info_peak(path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", "import json" + _PEAK, str(path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_a_checkpoint_claiming_a_gigabyte_is_refused_before_allocation(tmp_path):
    import torch

    normal = Path(tiny_checkpoint(tmp_path))
    data = torch.load(str(normal), weights_only=True)
    # one float, seen as 256 M floats (stride 0): 1 GiB as soon as anything copies it
    data["state_dict"]["feature_extractor.extra"] = torch.ones(1).expand(256 << 20)
    bomb = tmp_path / "bomb.pth"
    torch.save(data, str(bomb))
    assert bomb.stat().st_size < 3_000_000
    base, _ = _model_info_peak(normal)
    got, err = _model_info_peak(bomb)
    assert base["rc"] == 0 and got["rc"] == 1
    assert "bomb.pth declares 1075.4 MB of tensor data but the file holds" in err and "refused before" in err
    assert got["peak_mb"] < base["peak_mb"] + 200, (got, base)  # a copy would add 1024 MB
