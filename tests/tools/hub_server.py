#!/usr/bin/env python3
"""tests/tools/hub_server.py — the part of the Hugging Face hub protocol that
huggingface_hub 0.22 and sdrepl use, served on 127.0.0.1. Standard library only.

  hub_server.py serve --repos DIR [--log FILE] [--rate BYTES_PER_S] [--lifetime S]
      Prints its port as the first line of standard output; stops by itself
      after --lifetime seconds so that a test that dies never leaves it behind.
  hub_server.py fp16 SRC DST
      Copies a diffusers folder, every *.safetensors tensor of dtype F32 made F16
      (round to nearest even, as torch's .half()); for a revision with fp16 files.

Repositories are folders DIR/{org}/{name}/{revision}/... : each sub-folder is a
branch holding that revision's files. A file DIR/{org}/{name}/GATED makes the
repo gated: its metadata is public, its files need a token with access.

Tokens: "hf_good" (user "tester", may read gated repos), "hf_noaccess" (user
"outsider", may not); any other token is invalid.

  GET  /api/whoami-v2                          the token's user (401 if invalid)
  GET  /api/models/{repo}[/revision/{rev}]     {"id", "sha", "siblings": [{"rfilename"}], ...}
  HEAD|GET /{repo}/resolve/{rev}/{path}        the file, with ETag and X-Repo-Commit; for
       weights (LFS on the hub) a 302 to /blobs/{sha256} with X-Linked-Etag and
       X-Linked-Size, as the hub redirects to its CDN (here a second port on
       127.0.0.1, another host to a client, so it must not get the token)
  GET  /blobs/{sha256}                         a weight file; Range (206/416); without
       Range and with --rate, sent at that many bytes per second
  GET  /_control/rate/N                        sets --rate (0: full speed), for tests
  GET  /_control/linked_size/N                 X-Linked-Size says N for every weight
       file (0: the truth), to test a disk too small for it
Errors carry X-Error-Code as the hub's do: RepoNotFound (401 without a valid token,
else 404), GatedRepo (401 without a token, 403 with one that has no access),
RevisionNotFound and EntryNotFound (404, the latter with X-Repo-Commit); an
invalid token gets 401 "Invalid credentials in Authorization header".

A revision is a branch name or its commit: sha1 of the branch name and its
files' blob ids. A small file's ETag is its git blob sha1; a weight file's is
its sha256. Each request is logged to --log as
"METHOD /path range=<Range or -> auth=<token or ->".
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import shutil
import struct
import sys
import threading
import time
import urllib.parse

TOKENS = {"hf_good": ("tester", True), "hf_noaccess": ("outsider", False)}
LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".msgpack", ".onnx", ".pb")
LOCK = threading.Lock()


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    """One repository: its branches, each a dict path -> (etag, is_lfs, file path)."""

    def __init__(self, folder):
        self.gated = os.path.exists(os.path.join(folder, "GATED"))
        self.branches = {}  # name -> (commit, files)
        for rev in sorted(os.listdir(folder)):
            top = os.path.join(folder, rev)
            if not os.path.isdir(top):
                continue
            files = {}
            for dirpath, _, names in os.walk(top):
                for n in names:
                    full = os.path.join(dirpath, n)
                    rel = os.path.relpath(full, top).replace(os.sep, "/")
                    with open(full, "rb") as f:
                        data = f.read()
                    lfs = rel.endswith(LFS_SUFFIXES)
                    etag = hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data)
                    files[rel] = (etag, lfs, full)
            listing = "".join("%s %s\n" % (p, files[p][0]) for p in sorted(files))
            commit = hashlib.sha1(("commit %s\n%s" % (rev, listing)).encode()).hexdigest()
            self.branches[rev] = (commit, files)

    def revision(self, rev):
        if rev in self.branches:
            return self.branches[rev]
        for commit, files in self.branches.values():
            if rev == commit:
                return commit, files
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    repos_dir = "."
    log_path = None
    rate = 0
    linked_size = 0
    cdn_port = 0
    blobs = {}  # sha256 -> file path, filled as repos are read

    def log_message(self, fmt, *args):  # keep the test's stderr clean
        pass

    def token(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.startswith("Bearer ") else None

    def log_line(self):
        if self.log_path:
            with LOCK, open(self.log_path, "a") as f:
                f.write("%s %s range=%s auth=%s\n" % (self.command, self.path,
                                                      self.headers.get("Range", "-"),
                                                      self.token() or "-"))

    # ---- responses ----------------------------------------------------------

    def reply(self, status, body=b"", headers=(), ctype="application/octet-stream", rate=0):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            if rate:
                step = max(1, rate // 20)
                for i in range(0, len(body), step):
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def reply_json(self, status, obj, headers=()):
        self.reply(status, json.dumps(obj).encode(), headers, "application/json")

    def error(self, status, code, message, headers=()):
        hs = [("X-Error-Message", message)] + list(headers)
        if code:
            hs.append(("X-Error-Code", code))
        self.reply_json(status, {"error": message}, hs)

    def serve_ranged(self, data, headers=()):
        extra = [("Accept-Ranges", "bytes")] + list(headers)
        m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        if not m:
            self.reply(200, data, extra, rate=self.rate if self.command == "GET" else 0)
            return
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else len(data) - 1
        if first >= len(data):
            self.reply(416, b"", [("Content-Range", "bytes */%d" % len(data))])
            return
        last = min(last, len(data) - 1)
        self.reply(206, data[first:last + 1],
                   extra + [("Content-Range", "bytes %d-%d/%d" % (first, last, len(data)))])

    # ---- repositories -------------------------------------------------------

    def load_repo(self, repo_id):
        if repo_id.count("/") != 1 or ".." in repo_id:
            return None
        folder = os.path.join(self.repos_dir, *repo_id.split("/"))
        if not os.path.isdir(folder):
            return None
        repo = Repo(folder)
        with LOCK:
            for _, files in repo.branches.values():
                for etag, lfs, full in files.values():
                    if lfs:
                        Handler.blobs[etag] = full
        return repo

    def check_token(self):
        """(ok, user, has_access); ok is False for an invalid token."""
        tok = self.token()
        if tok is None:
            return True, None, False
        if tok not in TOKENS:
            return False, None, False
        return True, TOKENS[tok][0], TOKENS[tok][1]

    def find_repo(self, repo_id):
        """The repo, or None after answering with the hub's error."""
        ok, user, _ = self.check_token()
        if not ok:
            self.error(401, None, "Invalid credentials in Authorization header")
            return None
        repo = self.load_repo(repo_id)
        if repo is None:
            self.error(401 if user is None else 404, "RepoNotFound", "Repository not found")
        return repo

    def api_model(self, repo_id, rev):
        repo = self.find_repo(repo_id)
        if repo is None:
            return
        found = repo.revision(rev or "main")
        if found is None:
            self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
            return
        commit, files = found
        self.reply_json(200, {
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id,
            "modelId": repo_id, "author": repo_id.split("/")[0], "sha": commit,
            "private": False, "gated": "manual" if repo.gated else False, "disabled": False,
            "downloads": 0, "likes": 0, "tags": ["diffusers"],
            "library_name": "diffusers", "lastModified": "2024-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p} for p in sorted(files)]})

    def resolve(self, repo_id, rev, path):
        repo = self.find_repo(repo_id)
        if repo is None:
            return
        if repo.gated:
            _, user, access = self.check_token()
            if user is None:
                self.error(401, "GatedRepo", "Access to model %s is restricted. You must be "
                           "authenticated to access it." % repo_id)
                return
            if not access:
                self.error(403, "GatedRepo", "Access to model %s is restricted and you are not in "
                           "the authorized list. Visit https://huggingface.co/%s to ask for access."
                           % (repo_id, repo_id))
                return
        found = repo.revision(rev)
        if found is None:
            self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
            return
        commit, files = found
        if path not in files:
            self.error(404, "EntryNotFound", "Entry not found", [("X-Repo-Commit", commit)])
            return
        etag, lfs, full = files[path]
        with open(full, "rb") as f:
            data = f.read()
        if lfs:
            self.reply(302, b"", [("Location", "http://127.0.0.1:%d/blobs/%s" % (self.cdn_port, etag)),
                                  ("X-Repo-Commit", commit), ("X-Linked-Etag", '"%s"' % etag),
                                  ("X-Linked-Size", str(self.linked_size or len(data))),
                                  ("ETag", '"%s"' % git_blob_sha1(etag.encode()))])
            return
        # A file stored in git itself is served from here.
        self.serve_ranged(data, [("ETag", '"%s"' % etag), ("X-Repo-Commit", commit)])

    # ---- dispatch -----------------------------------------------------------

    def route(self):
        self.log_line()
        path = urllib.parse.urlsplit(self.path).path
        m = re.match(r"^/_control/(rate|linked_size)/(\d+)$", path)
        if m:
            setattr(Handler, m.group(1), int(m.group(2)))
            self.reply_json(200, {m.group(1): int(m.group(2))})
            return
        if path == "/api/whoami-v2":
            ok, user, _ = self.check_token()
            if not ok or user is None:
                self.error(401, None, "Invalid credentials in Authorization header")
            else:
                self.reply_json(200, {"type": "user", "name": user, "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "test token", "role": "read"}}})
            return
        m = re.match(r"^/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?$", path)
        if m:
            rev = urllib.parse.unquote(m.group(2)) if m.group(2) else None
            self.api_model(urllib.parse.unquote(m.group(1)), rev)
            return
        m = re.match(r"^/blobs/([0-9a-f]{64})$", path)
        if m:
            full = Handler.blobs.get(m.group(1))
            if full is None:
                self.error(404, None, "not found")
                return
            with open(full, "rb") as f:
                self.serve_ranged(f.read())
            return
        m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            self.resolve(urllib.parse.unquote(m.group(1)), urllib.parse.unquote(m.group(2)),
                         urllib.parse.unquote(m.group(3)))
            return
        self.error(404, None, "not found")

    do_GET = route
    do_HEAD = route


# ---- fp16 copies ---------------------------------------------------------------

def f32_to_f16(raw):
    n = len(raw) // 4
    values = struct.unpack("<%df" % n, raw)
    return struct.pack("<%de" % n, *values)  # IEEE round to nearest even


def convert_safetensors(src, dst):
    with open(src, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    out_header, chunks, offset = {}, [], 0
    for name, info in sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                             key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = info["data_offsets"]
        raw = data[a:b]
        dtype = info["dtype"]
        if dtype == "F32":
            raw, dtype = f32_to_f16(raw), "F16"
        out_header[name] = {"dtype": dtype, "shape": info["shape"],
                            "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if "__metadata__" in header:
        out_header["__metadata__"] = header["__metadata__"]
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def fp16_copy(src, dst):
    for dirpath, _, names in os.walk(src):
        out = os.path.join(dst, os.path.relpath(dirpath, src))
        os.makedirs(out, exist_ok=True)
        for n in names:
            if n.endswith(".safetensors"):
                convert_safetensors(os.path.join(dirpath, n), os.path.join(out, n))
            else:
                shutil.copyfile(os.path.join(dirpath, n), os.path.join(out, n))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--repos", required=True)
    s.add_argument("--log")
    s.add_argument("--rate", type=int, default=0)
    s.add_argument("--lifetime", type=float, default=200)
    c = sub.add_parser("fp16")
    c.add_argument("src")
    c.add_argument("dst")
    args = ap.parse_args()
    if args.cmd == "fp16":
        fp16_copy(args.src, args.dst)
        return 0
    Handler.repos_dir = args.repos
    Handler.log_path = args.log
    Handler.rate = args.rate
    cdn = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cdn.daemon_threads = True
    Handler.cdn_port = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    timer = threading.Timer(args.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever()
    server.server_close()
    cdn.shutdown()
    cdn.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
