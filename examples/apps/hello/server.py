#!/usr/bin/python3
"""Ferry's example service.

Serves GET / (the message from message.txt and the version) and GET /version
on the environment's public port, and GET /healthz on a per-instance admin
port that the deployer's health check probes. An unhealthy instance never
binds the public port (as a pod failing readiness gets no traffic). The public port is shared
(SO_REUSEPORT) so that a new instance can start beside the old one during a
rolling update; the admin port is assigned per instance, so a health check
always reaches the instance it is about. Both ports are bound before either
answers, so a passing health check means the public port is live.

It is a small HTTP/1.0 server on the standard library's sockets rather than
http.server, and process.yaml runs it with `python3 -I -S`: it is up in a few
milliseconds instead of ~50, which is most of a rolling update's time on a
loopback benchmark.
"""
import os
import select
import socket
import threading

VERSION = os.environ.get("APP_VERSION", "unknown")
HEALTHY = os.environ.get("APP_HEALTHY", "true") == "true"
HERE = os.path.dirname(os.path.abspath(__file__))
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def public_port():
    # The environment's root may pin the public port (make up writes one per
    # environment); otherwise use the port the deployer assigned.
    pinned = os.path.join(HERE, "..", "public-port")
    if os.path.exists(pinned):
        return int(open(pinned).read().strip())
    return int(os.environ["PORT_HTTP"])


def listen(port, shared=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


def public(path):
    if path == "/version":
        return 200, VERSION + "\n"
    if path == "/":
        with open(os.path.join(HERE, "message.txt")) as f:
            return 200, "%s(version %s)\n" % (f.read(), VERSION)
    return 404, "not found\n"


def admin(path):
    if path == "/healthz" and HEALTHY:
        return 200, ""
    return 503, ""


def serve(conn, route):
    try:
        conn.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) < 16384:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) < 2:
            return
        method, path = parts[0], parts[1].split("?", 1)[0]
        status, body = route(path) if method in ("GET", "HEAD") else (405, "GET only\n")
        data = body.encode()
        conn.sendall(("HTTP/1.0 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n" % (status, REASONS[status], len(data))).encode()
                     + (data if method == "GET" else b""))
    except OSError:
        pass
    finally:
        conn.close()


if __name__ == "__main__":
    routes = {listen(int(os.environ["PORT_ADMIN"])): admin}
    if HEALTHY:
        routes[listen(public_port(), shared=True)] = public
        print("hello %s serving on 127.0.0.1:%d" % (VERSION, public_port()), flush=True)
    else:
        # Like a pod failing readiness: never join the shared public port.
        print("hello %s is unhealthy; not serving the public port" % VERSION, flush=True)
    while True:
        for ready in select.select(list(routes), [], [])[0]:
            conn, _ = ready.accept()
            threading.Thread(target=serve, args=(conn, routes[ready]), daemon=True).start()
