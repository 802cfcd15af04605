#!/usr/bin/python3
"""Ferry's example service.

Serves GET / (the message from message.txt and the version) and GET /version
on the environment's public port, and GET /healthz on a per-instance admin
port that the deployer's health check probes. An unhealthy instance never
binds the public port (as a pod failing readiness gets no traffic). The public port is shared
(SO_REUSEPORT) so that a new instance can start beside the old one during a
rolling update; the admin port is assigned per instance, so a health check
always reaches the instance it is about.
"""
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "unknown")
HEALTHY = os.environ.get("APP_HEALTHY", "true") == "true"
HERE = os.path.dirname(os.path.abspath(__file__))


def public_port():
    # The environment's root may pin the public port (make up writes one per
    # environment); otherwise use the port the deployer assigned.
    pinned = os.path.join(HERE, "..", "public-port")
    if os.path.exists(pinned):
        return int(open(pinned).read().strip())
    return int(os.environ["PORT_HTTP"])


class SharedPortServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class Public(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/version":
            body = VERSION + "\n"
        elif self.path == "/":
            with open(os.path.join(HERE, "message.txt")) as f:
                body = "%s(version %s)\n" % (f.read(), VERSION)
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


class Admin(BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if (self.path == "/healthz" and HEALTHY) else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    admin = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT_ADMIN"])), Admin)
    threading.Thread(target=admin.serve_forever, daemon=True).start()
    if not HEALTHY:
        # Like a pod failing readiness: never join the shared public port.
        print("hello %s is unhealthy; not serving the public port" % VERSION, flush=True)
        threading.Event().wait()
    print("hello %s serving on 127.0.0.1:%d" % (VERSION, public_port()), flush=True)
    SharedPortServer(("127.0.0.1", public_port()), Public).serve_forever()
