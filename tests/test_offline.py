"""The offline guarantee: index, search, ask (model and extractive) and the app work with every
outbound connection except loopback refused — nothing calls a model hub, telemetry or a CDN."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest
from conftest import CORPUS, FORD_QUESTION

pytestmark = pytest.mark.slow

GUARD = textwrap.dedent(
    """
    import socket, json, sys
    attempts = []
    _connect = socket.socket.connect
    _connect_ex = socket.socket.connect_ex
    _getaddrinfo = socket.getaddrinfo

    def _local(address):
        if isinstance(address, (str, bytes)):  # a unix socket
            return True
        host = str(address[0])
        return host in ("127.0.0.1", "::1", "localhost", "0.0.0.0") or host.startswith("127.")

    def connect(self, address):
        if not _local(address):
            attempts.append(repr(address))
            raise OSError("outbound connection blocked by the test: %r" % (address,))
        return _connect(self, address)

    def connect_ex(self, address):
        if not _local(address):
            attempts.append(repr(address))
            return 111
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost", "127.0.0.1", "::1", "0.0.0.0") and not str(
            host
        ).startswith("127."):
            attempts.append("dns:" + str(host))
            raise socket.gaierror("name lookup blocked by the test: %s" % host)
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
    """
)

SCRIPT = GUARD + textwrap.dedent(
    """
    import urllib.request

    # the guard works: a connection to a public address is refused and recorded
    try:
        socket.create_connection(("198.51.100.7", 80), timeout=2)
    except OSError:
        pass
    assert attempts and "198.51.100.7" in attempts[0], attempts
    attempts.clear()

    import qa
    from qa import Index
    from qa.web.app import serve

    index = Index.build(["corpus"], "index")
    hits = index.search(sys.argv[1], k=3)
    llm = qa.ask(sys.argv[1], index="index", mode="llm")
    extractive = qa.ask(sys.argv[1], index="index", mode="extractive")
    port = int(sys.argv[2])
    app = serve(port=port, index_dir="index", block=False, quiet=True)
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).read()
    app.close()
    print(json.dumps({
        "attempts": attempts,
        "first_hit": hits[0].text,
        "llm_citations": [c.quote for c in llm.citations],
        "extractive_citations": [c.quote for c in extractive.citations],
        "page_bytes": len(page),
    }))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_everything_works_with_outbound_connections_blocked(tmp_path):
    shutil.copytree(CORPUS, tmp_path / "corpus")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, FORD_QUESTION, str(free_port())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["attempts"] == [], result["attempts"]
    assert "completely false" in result["first_hit"]
    assert any("completely false" in q for q in result["llm_citations"])
    assert any("completely false" in q for q in result["extractive_citations"])
    assert result["page_bytes"] > 1000
