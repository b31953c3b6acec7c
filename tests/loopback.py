"""A loopback HTTP server for download tests (no real network): serves byte strings by path,
honours ``Range``, and can cut a response short, stall it, stream without end or trickle on purpose."""

import http.server
import threading
import time


class LoopbackState:
    def __init__(self, files):
        self.files = dict(files)  # path -> bytes
        # normal | truncate | slow | hold (half, then wait for `release`) | wait (nothing until `release`)
        # | endless (no Content-Length, bytes until `endless_limit`) | trickle (1 byte per `trickle_s`)
        # | silent (headers, then nothing until `release`)
        self.mode = "normal"
        self.endless_limit = 64 << 20  # an endless stream ends here, so that a test of old code ends too
        self.trickle_s = 0.3
        self.bytes_sent = 0
        self.release = threading.Event()
        self.redirects = {}  # path -> path it answers with a 302 to
        self.sent_all = False  # a response's last byte was written
        self.requests = []  # (path, Range header)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        st = self.server.state
        rng = self.headers.get("Range")
        st.requests.append((self.path, rng))
        if self.path in st.redirects:
            self.send_response(302)
            self.send_header("Location", st.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if st.mode == "wait":
            st.release.wait(60)
        if st.mode == "endless":
            self._endless(st)
            return
        payload = st.files.get(self.path)
        if payload is None:
            self.send_error(404, "Not Found")
            return
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        if start >= len(payload):
            self.send_error(416, "Range Not Satisfiable")
            return
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        body = payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if st.mode == "truncate":  # promise everything, send 40 %, hang up
                self.wfile.write(body[: int(len(body) * 0.4)])
                self.wfile.flush()
                self.close_connection = True
                return
            if st.mode == "hold":  # the first half in small pieces, then wait
                half = len(body) // 2
                for i in range(0, half, 16384):
                    self.wfile.write(body[i:min(i + 16384, half)])
                    self.wfile.flush()
                    time.sleep(0.01)
                st.release.wait(60)
                self.wfile.write(body[half:])
                self.wfile.flush()
                st.sent_all = True
                return
            if st.mode in ("trickle", "silent"):
                for i in range(len(body)):
                    if st.release.wait(st.trickle_s if st.mode == "trickle" else 60):
                        return
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    st.bytes_sent += 1
                st.sent_all = True
                return
            step = 16384 if st.mode == "slow" else len(body)
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                st.bytes_sent += len(body[i:i + step])
                if st.mode == "slow":
                    self.wfile.flush()
                    time.sleep(0.05)
            self.wfile.flush()
            st.sent_all = True
        except (BrokenPipeError, ConnectionResetError):  # the client cancelled
            pass

    def _endless(self, st):
        self.send_response(200)
        self.end_headers()  # no Content-Length: the body ends when the connection closes
        block = bytes(range(256)) * 256
        try:
            while st.bytes_sent < st.endless_limit and not st.release.is_set():
                self.wfile.write(block)
                st.bytes_sent += len(block)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            pass
        self.close_connection = True


class LoopbackServer:
    def __init__(self, files):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.state = self.httpd.state = LoopbackState(files)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
