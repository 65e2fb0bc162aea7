#!/usr/bin/env python3
"""tests/tools/http_server.py — a local HTTP server that misbehaves on request.

Serves the files of --root on 127.0.0.1, on a free port that it prints as the
first line of standard output, and stops by itself after --lifetime seconds so
a test that dies never leaves it behind. Standard library only.

  /files/NAME          the file, with Content-Length and Range (206, 416)
  /redirect/NAME       302 to /files/NAME
  /error               500
  /dir/                a small page at a URL with no file name
  /chunked/NAME        the file, chunked (no Content-Length)
  /drop/NAME           without Range: half the file, then the connection drops;
                       with Range: as /files (so the rest can be resumed)
  /flaky/NAME          first request: half, then a drop; later: ignores Range (200)
  /short/NAME          first request: claims 10 bytes more than the file, sends
                       the file and drops; later: as /files (a Range then gets 416)
  /grow/NAME           first request: the file and half of it again, then a drop;
                       later: as /files (the Range is past the end: 416)
  /slow/NAME           as /files, about 20 KiB/s
  /norange/NAME        ignores Range (200, the whole file)
  anything else        404

Each request is logged to --log as "GET /path range=<Range or ->".
"""
import argparse
import http.server
import os
import re
import sys
import threading
import time

FIRST_SEEN = set()
LOCK = threading.Lock()


def first_time(path):
    with LOCK:
        if path in FIRST_SEEN:
            return False
        FIRST_SEEN.add(path)
        return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    log_path = None

    def log_message(self, fmt, *args):  # keep the test's stderr clean
        pass

    def log_request_line(self):
        if self.log_path:
            with LOCK, open(self.log_path, "a") as f:
                f.write("%s %s range=%s\n" % (self.command, self.path, self.headers.get("Range", "-")))

    def read_file(self, name):
        path = os.path.join(self.root, os.path.basename(name))
        if not name or not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read()

    def send_body(self, status, body, length=None, extra=(), slow=False, close=False):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in extra:
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            if slow:
                for i in range(0, len(body), 1024):
                    self.wfile.write(body[i:i + 1024])
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if close:
            self.close_connection = True

    def drop_after(self, body, length):
        """Sends headers promising `length` bytes, then `body`, then hangs up."""
        self.send_body(200, body, length=length, close=True)

    def serve_ranged(self, data, slow=False):
        m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        if not m:
            self.send_body(200, data, slow=slow, extra=[("Accept-Ranges", "bytes")])
            return
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else len(data) - 1
        if first >= len(data):
            self.send_body(416, b"", extra=[("Content-Range", "bytes */%d" % len(data))])
            return
        last = min(last, len(data) - 1)
        self.send_body(206, data[first:last + 1], slow=slow,
                       extra=[("Content-Range", "bytes %d-%d/%d" % (first, last, len(data)))])

    def not_found(self):
        self.send_body(404, b"not found\n")

    def do_GET(self):
        self.log_request_line()
        parts = self.path.split("?")[0].split("/", 2)
        kind = parts[1] if len(parts) > 1 else ""
        name = parts[2] if len(parts) > 2 else ""
        if kind == "error":
            self.send_body(500, b"server error\n")
            return
        if kind == "dir":
            self.send_body(200, b"<html>a folder</html>\n")
            return
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", "/files/" + name)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = self.read_file(name)
        if data is None:
            self.not_found()
            return
        has_range = "Range" in self.headers
        if kind == "files":
            self.serve_ranged(data)
        elif kind == "slow":
            self.serve_ranged(data, slow=True)
        elif kind == "norange":
            self.send_body(200, data)
        elif kind == "chunked":
            self.send_chunked(data)
        elif kind == "drop":
            if has_range:
                self.serve_ranged(data)
            else:
                self.drop_after(data[:len(data) // 2], len(data))
        elif kind == "flaky":
            if first_time(self.path):
                self.drop_after(data[:len(data) // 2], len(data))
            else:
                self.send_body(200, data)
        elif kind == "short":
            if first_time(self.path):
                self.drop_after(data, len(data) + 10)
            else:
                self.serve_ranged(data)
        elif kind == "grow":
            if first_time(self.path):
                self.drop_after(data + data[:len(data) // 2], 2 * len(data))
            else:
                self.serve_ranged(data)
        else:
            self.not_found()

    def send_chunked(self, data):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(data), 4096):
            chunk = data[i:i + 4096]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--log")
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    Handler.root = args.root
    Handler.log_path = args.log
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    timer = threading.Timer(args.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
