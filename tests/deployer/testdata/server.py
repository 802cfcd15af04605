# A tiny HTTP server for the deployer tests: listens on $PORT, answers every
# path with $VERSION, and /healthz with 200 (or 500 when HEALTHY=0). Waits
# START_DELAY seconds before listening. With START_LOG, first appends a line
# (its pid) to that file, so tests count how often a workload was started.
import http.server
import os
import time

port = int(os.environ["PORT"])
version = os.environ.get("VERSION", "unknown").encode()
healthy = os.environ.get("HEALTHY", "1") == "1"
if os.environ.get("START_LOG"):
    with open(os.environ["START_LOG"], "a") as log:
        log.write("%d\n" % os.getpid())
time.sleep(float(os.environ.get("START_DELAY", "0")))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if (self.path == "/healthz" and not healthy) else 200
        self.send_response(code)
        self.send_header("Content-Length", str(len(version)))
        self.end_headers()
        self.wfile.write(version)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
