"""Ray is an optional extra: the default path never imports it, and `--ray` without it is a
one-line error saying how to install it (these tests run with or without the extra)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from fakes import FakeEmbedder

from qa import cli

TESTS = Path(__file__).parent


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_index_and_search_never_import_ray(tmp_path, docs):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from fakes import FakeEmbedder
        import qa.index.core
        qa.index.core.get_embedder = lambda *a, **k: FakeEmbedder()
        from qa import cli
        index = {str(tmp_path / "index")!r}
        assert cli.main(["index", {str(docs)!r}, "--index", index, "-q"]) == 0
        assert cli.main(["search", "longest river", "--index", index]) == 0
        assert cli.main(["list", "--index", index]) == 0
        print("RAY MODULES", sorted(m for m in sys.modules if m.split(".")[0] == "ray"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "RAY MODULES []" in done.stdout


def test_ray_without_the_extra_is_one_line_saying_how_to_install_it(
    capsys, tmp_path, docs, monkeypatch
):
    monkeypatch.setattr("qa.index.core.get_embedder", lambda *a, **k: FakeEmbedder())
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    code, out, err = run(capsys, "index", docs, "--index", tmp_path / "index", "--ray")
    assert code == 2 and out == ""
    assert err == "qa: error: --ray needs Ray, an optional extra: pip install -e '.[ray]'\n"
    assert not (tmp_path / "index").exists()  # checked before an index was made


def test_ray_flags_are_checked(capsys, tmp_path, docs, monkeypatch):
    monkeypatch.setattr("qa.index.core.get_embedder", lambda *a, **k: FakeEmbedder())
    index = tmp_path / "index"
    # --ray takes the next word as its ADDRESS: a folder there is a usage error, said so
    code, _, err = run(capsys, "index", "--index", index, "--ray", docs)
    assert code == 2 and err.count("\n") == 1
    assert "unknown Ray address" in err and "qa index PATH --ray" in err
    code, _, err = run(capsys, "index", docs, "--index", index, "--workers", "2")
    assert code == 2 and "use it with --ray" in err
    code, _, err = run(capsys, "index", docs, "--index", index, "--ray", "--workers", "0")
    assert code == 2 and "at least 1" in err
    monkeypatch.setenv("QA_RAY_ADDRESS", "not an address")
    code, _, err = run(capsys, "index", docs, "--index", index, "--ray")
    assert code == 2 and "QA_RAY_ADDRESS" in err and err.count("\n") == 1
