"""The one list of models: published digests (git blob SHA-1), download, resume, mismatch, --from,
mirror, the listing, the default model. Files come from a loopback server (no real network)."""

import dataclasses
import hashlib
import json

import pytest

from loopback import LoopbackServer
from tiny_model import tiny_checkpoint

from ritm_qgis import cli
from ritm_qgis.core.errors import RitmError
from ritm_qgis.models import catalog, load_model

PAPER_DIGESTS = {
    "paper-finetune": ("weights/finetune.pth", "569fa9e7e4360c7fb274a6ca0bff263cc9d22d27"),
    "paper-scratch": ("weights/train_from_scratch.pth", "da71796c1296e50b22ef20ad4a27f2692def6500"),
    "paper-notrain": ("pretrained_models/coco_lvis_h18_baseline.pth", "35124d030931747dc1e421f523c53ec75f6f4a50"),
}
SHIPPED = ["aerial-finetuned-h18s", "aerial-finetuned-tiny", "aerial-finetuned-tiles-tiny", "aerial-scratch-tiny",
           "natural-tiny"]


def blob_sha1(data: bytes) -> str:
    """git's object id of a file, computed here independently of the project's code."""
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()


@pytest.fixture
def payload(tmp_path_factory):
    with open(tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), seed=3), "rb") as fh:
        return fh.read()


@pytest.fixture
def served(payload, monkeypatch, tmp_path):
    """A test entry 'test-paper' whose published digest is the git blob SHA-1 of the served file."""
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    with LoopbackServer({"/weights/test.pth": payload, "/mirror/test-paper.pth": payload}) as server:
        entry = catalog.ModelEntry("test-paper", "hrnet_tiny", "tests", "a test entry", "paper",
                                   server.base + "/weights/test.pth", "git-blob-sha1:" + blob_sha1(payload))
        catalog.add_entry(entry)
        try:
            yield server, entry
        finally:
            catalog.remove_entry(entry.name)


def cache_files(tmp_path):
    folder = tmp_path / "cache"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_git_blob_sha1_is_gits_object_id(tmp_path):
    # `printf 'hello\n' | git hash-object --stdin` prints ce013625030ba8dba906f756967f9e9ca394464a
    (tmp_path / "f").write_bytes(b"hello\n")
    assert catalog.git_blob_sha1(tmp_path / "f") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert catalog.check_digest(tmp_path / "f", "git-blob-sha1:ce013625030ba8dba906f756967f9e9ca394464a") is None
    assert catalog.check_digest(tmp_path / "f", "sha256:" + hashlib.sha256(b"hello\n").hexdigest()) is None
    with pytest.raises(RitmError, match="not a digest"):
        catalog.check_digest(tmp_path / "f", "md5:abc")


def test_download_verifies_the_git_blob_sha1_and_records_the_sha256(served, payload, tmp_path):
    server, entry = served
    seen = []
    result = catalog.download_model("test-paper", progress=lambda d, t: seen.append((d, t)))
    assert result.path == tmp_path / "cache" / "test-paper.pth" and result.path.read_bytes() == payload
    assert seen[-1] == (len(payload), len(payload))
    sha = hashlib.sha256(payload).hexdigest()
    assert (tmp_path / "cache" / "test-paper.pth.sha256").read_text().split() == [sha, str(len(payload))]
    assert cache_files(tmp_path) == ["test-paper.pth", "test-paper.pth.sha256"]
    # listed as downloaded, and loadable by name
    status = {s.name: s for s in catalog.model_statuses()}["test-paper"]
    assert status.status == "downloaded" and status.as_dict()["digest"] == entry.digest
    _, info = load_model("test-paper")
    assert info.path == str(result.path)
    # a second call finds it and does not ask the server again
    n = len(server.state.requests)
    assert catalog.download_model("test-paper").skipped and len(server.state.requests) == n


def test_download_resumes_after_a_cut(served, payload, tmp_path):
    server, _ = served
    server.state.mode = "truncate"
    with pytest.raises(RitmError, match="interrupted|incomplete"):
        catalog.download_model("test-paper")
    part = tmp_path / "cache" / "test-paper.pth.part"
    have = part.stat().st_size
    assert 0 < have < len(payload) and cache_files(tmp_path) == ["test-paper.pth.part"]
    server.state.mode = "normal"
    result = catalog.download_model("test-paper")
    assert server.state.requests[-1] == ("/weights/test.pth", f"bytes={have}-")
    assert result.resumed_from == have and result.path.read_bytes() == payload
    assert cache_files(tmp_path) == ["test-paper.pth", "test-paper.pth.sha256"]


def test_a_file_that_is_not_the_published_one_is_deleted(served, payload, tmp_path):
    server, _ = served
    server.state.files["/weights/test.pth"] = payload[:-10] + b"0123456789"  # same size, other bytes
    with pytest.raises(RitmError, match=r"not the published one \(git-blob-sha1:[0-9a-f]{40}, expected "
                                        r"git-blob-sha1:" + blob_sha1(payload)):
        catalog.download_model("test-paper")
    assert cache_files(tmp_path) == []


def test_mirror_base_url_from_the_environment(served, payload, tmp_path, monkeypatch):
    server, _ = served
    monkeypatch.setenv(catalog.MIRROR_ENV, server.base + "/mirror/")
    catalog.download_model("test-paper")
    assert server.state.requests[-1][0] == "/mirror/test-paper.pth"
    assert (tmp_path / "cache" / "test-paper.pth").read_bytes() == payload


def test_damaged_cached_file_is_refused_at_load(served, tmp_path):
    catalog.download_model("test-paper")
    path = tmp_path / "cache" / "test-paper.pth"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RitmError, match="changed since it was verified"):
        load_model("test-paper")


def test_from_file_accepts_a_matching_file_and_refuses_another(served, payload, tmp_path, capsys):
    server, _ = served
    good = tmp_path / "fetched.pth"
    good.write_bytes(payload)
    bad = tmp_path / "other.pth"
    bad.write_bytes(payload + b"x")
    rc = cli.main(["download-weights", "test-paper", "--from", str(bad)])
    captured = capsys.readouterr()
    assert rc == 1 and "is not test-paper" in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert cache_files(tmp_path) == []  # nothing left in the cache
    rc = cli.main(["download-weights", "test-paper", "--from", str(good)])
    assert rc == 0 and "imported" in capsys.readouterr().out
    assert (tmp_path / "cache" / "test-paper.pth").read_bytes() == payload
    assert cache_files(tmp_path) == ["test-paper.pth", "test-paper.pth.sha256"]
    assert server.state.requests == []  # no network involved
    # a name without a published digest needs one
    rc = cli.main(["download-weights", "coco_lvis_h18_itermask", "--from", str(good)])
    assert rc == 1 and "--sha256" in capsys.readouterr().err


def test_listing_json_names_the_papers_models_with_their_digests(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    assert cli.main(["model-info", "--list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    weights = {w["name"]: w for w in data["weights"]}
    for name, (path, sha1) in PAPER_DIGESTS.items():
        w = weights[name]
        assert w["status"] == "downloadable" and w["digest"] == f"git-blob-sha1:{sha1}"
        assert w["url"] == f"https://github.com/tanguy-magne/ritm_interactive_segmentation/raw/master/{path}"
        assert w["arch"] == "hrnet18" and w["training_data"] and w["good_for"] and "published" in w["published"]
    for name in SHIPPED + ["grabcut"]:
        assert weights[name]["status"] == "shipped"
    for name in SHIPPED:
        assert weights[name]["size"] > 100_000 and weights[name]["digest"].startswith("sha256:")
    assert weights["coco_lvis_h18_itermask"]["status"] == "downloadable"
    assert data["default"]["name"] == catalog.BEST_SHIPPED
    # the text form shows the same
    assert cli.main(["model-info", "--list"]) == 0
    text = capsys.readouterr().out
    for name, (_, sha1) in PAPER_DIGESTS.items():
        assert name in text and sha1 in text
    assert "aerial-finetuned-h18s" in text and "shipped" in text


def test_user_files_in_the_cache_are_listed_and_the_default_follows_paper_finetune(tmp_path, monkeypatch, payload,
                                                                                    capsys):
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    assert catalog.default_model()[0] == catalog.BEST_SHIPPED
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "mine.pth").write_bytes(payload)
    (tmp_path / "cache" / "paper-finetune.pth").write_bytes(payload)
    statuses = {s.name: s for s in catalog.model_statuses()}
    assert statuses["mine"].status == "downloaded" and statuses["mine"].entry.source == "user"
    assert cli.main(["model-info", "--list", "--json"]) == 0
    listed = {w["name"]: w for w in json.loads(capsys.readouterr().out)["weights"]}
    assert listed["mine"]["arch"] == "hrnet_tiny" and listed["mine"]["status"] == "downloaded"
    assert statuses["paper-finetune"].status == "downloaded"
    name, reason = catalog.default_model()  # a file that is not the published one never becomes the default
    assert name == catalog.BEST_SHIPPED and "is not the published paper-finetune" in reason
    monkeypatch.setitem(catalog._ENTRIES, "paper-finetune", dataclasses.replace(
        catalog.entry("paper-finetune"), digest="git-blob-sha1:" + blob_sha1(payload)))
    name, reason = catalog.default_model()  # the published file (here: the test's digest)
    assert name == "paper-finetune" and "downloaded" in reason
    order = [s.status for s in catalog.model_statuses()]
    assert order == sorted(order, key=["shipped", "downloaded", "downloadable"].index)


def test_model_info_describes_the_weight_free_backends(capsys):
    for name in ("grabcut", "grabcut-multi"):
        assert cli.main(["model-info", name]) == 0
        assert "weight-free" in capsys.readouterr().out
        assert cli.main(["model-info", name, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["architecture"] == "grabcut"


def test_the_list_names_every_model_and_says_which_are_not_for_buildings(capsys):
    assert cli.main(["model-info", "--list", "--json"]) == 0
    weights = {w["name"]: w for w in json.loads(capsys.readouterr().out)["weights"]}
    assert weights["grabcut-multi"]["status"] == "shipped"  # in the list, as --list promises
    assert weights["aerial-finetuned-h18s"]["for_buildings"] and weights["grabcut"]["for_buildings"]
    assert not weights["aerial-finetuned-tiny"]["for_buildings"] and not weights["grabcut-multi"]["for_buildings"]
    assert cli.main(["model-info", "--list"]) == 0
    text = capsys.readouterr().out
    block = text[text.index("\ngrabcut-multi "):].split("\n")[2:4]
    assert any("not offered for outlining buildings" in line for line in block)
