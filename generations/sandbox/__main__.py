"""``python -m generations.sandbox --host 127.0.0.1 --port 8765 [--duration 8] [--media-ttl 600]``."""

import argparse

from generations.sandbox.server import SandboxServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m generations.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds a job takes (default 8)")
    parser.add_argument("--media-ttl", type=float, default=600.0, help="seconds a signed media URL lives")
    args = parser.parse_args()
    server = SandboxServer(args.host, args.port, duration=args.duration, media_ttl=args.media_ttl)
    print(f"Kiln sandbox on {server.url}: " + ", ".join(f"{server.url}/{p}" for p in sorted(server.sandbox.apps))
          + f" (jobs take {args.duration:g} s; control API at {server.url}/_control/)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
