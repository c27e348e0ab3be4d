"""Start the browser chat: `python app.py [--host H] [--port P] [--index DIR] [--model GGUF]`.

Serves http://127.0.0.1:7860 by default, and the OpenAI-compatible API under /v1 on the same
port. Any address other than loopback needs a password (`--auth USER:PASSWORD` or QA_AUTH)
and an API key (`--api-key KEY` or QA_API_KEY), unless `--insecure`. Nothing is fetched from
outside and no share link is made.
"""

from __future__ import annotations

import argparse
import sys

from qa.errors import QAError
from qa.web.app import DEFAULT_HOST, DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="qa: the browser chat")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 7860)")
    parser.add_argument("--index", default=None, help="index folder (default: index/ or QA_INDEX)")
    parser.add_argument("--model", default=None, help="GGUF model file (default: models/...)")
    parser.add_argument("--auth", default=None, help="USER:PASSWORD required to open the app")
    parser.add_argument(
        "--api-key", default=None, help="KEY required as `Authorization: Bearer KEY` on /v1"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without --auth and --api-key",
    )
    parser.add_argument("--open", action="store_true", help="open the app in a browser")
    args = parser.parse_args(argv)
    try:
        serve(
            host=args.host,
            port=args.port,
            index_dir=args.index,
            model=args.model,
            auth=args.auth,
            insecure=args.insecure,
            open_browser=args.open,
            api_key=args.api_key,
        )
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
