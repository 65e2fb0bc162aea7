#!/usr/bin/env python3
"""huggingface_hub's side of sdrepl's hub cache tests: Python writes a cache that
sdrepl must read, and reads the cache sdrepl wrote.

Everything talks to tests/tools/hub_server.py on 127.0.0.1, never to the real hub.
Run in the reference venv (setup_torch_env.sh: huggingface_hub 0.22, diffusers 0.27):

  .venv-torch/bin/python scripts/reference/make_hub_cache.py fixture
      Serves tests/models/tiny-sd-b as the repo "sdrepl-test/tiny-sd-b" and lets
      diffusers' DiffusionPipeline.download fetch it into
      tests/fixtures/hub_cache/ (models--sdrepl-test--tiny-sd-b: blobs, snapshots
      with relative links, refs/main). Committed: test_hub.sh reads it with the
      network off, so the tests never need Python.

  make_hub_cache.py download --endpoint URL --cache DIR --repo ID [--revision REV]
      The same into DIR from a running server (test_hub.sh, when the venv exists).

  make_hub_cache.py check --endpoint URL --cache DIR --repo ID [--revision REV]
      Reads a cache sdrepl wrote as Python would: scan_cache_dir finds it whole
      (no warnings, the revision's ref), DiffusionPipeline.download returns its
      snapshot (the caller checks in the server's log that nothing was fetched
      again), and hf_hub_download(local_files_only=True) finds every file.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "hub_cache")
REPO = "sdrepl-test/tiny-sd-b"


def setup_env(endpoint, cache):
    # huggingface_hub reads these when it is imported, so before the imports below.
    os.environ["HF_ENDPOINT"] = endpoint
    os.environ["HF_HUB_CACHE"] = cache
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.pop("HF_HUB_OFFLINE", None)
    os.environ.pop("HF_TOKEN", None)
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        os.environ.pop(k, None)


def download(endpoint, cache, repo, revision):
    setup_env(endpoint, cache)
    from diffusers import DiffusionPipeline
    folder = DiffusionPipeline.download(repo, revision=revision, cache_dir=cache)
    print(folder)
    return folder


def check(endpoint, cache, repo, revision):
    setup_env(endpoint, cache)
    from huggingface_hub import hf_hub_download, scan_cache_dir

    # transformers and diffusers, once imported, leave version*.txt in the cache,
    # which scan_cache_dir reports; anything else it reports is damage.
    info = scan_cache_dir(cache)
    damage = [w for w in info.warnings if not os.path.basename(str(w)).startswith("version")]
    assert not damage, "scan_cache_dir: %s" % damage
    repos = {r.repo_id: r for r in info.repos}
    assert repo in repos, "%s not in the cache: %s" % (repo, sorted(repos))
    revs = [rev for rev in repos[repo].revisions if (revision or "main") in rev.refs]
    assert revs, "no ref %s in %s" % (revision or "main", [r.refs for r in repos[repo].revisions])
    files = list(revs[0].files)
    for f in files:
        assert os.path.islink(f.file_path), "%s is not a link into blobs/" % f.file_path
        assert os.path.realpath(f.file_path) == os.path.realpath(f.blob_path)
    from diffusers import DiffusionPipeline
    folder = DiffusionPipeline.download(repo, revision=revision, cache_dir=cache)
    for f in files:
        rel = os.path.relpath(str(f.file_path), str(folder))
        got = hf_hub_download(repo, rel, revision=revision, cache_dir=cache, local_files_only=True)
        assert os.path.samefile(got, f.file_path), rel
    print("python reads the cache: %d files of %s at %s" % (len(files), repo, folder))


def make_fixture():
    with tempfile.TemporaryDirectory() as tmp:
        repos = os.path.join(tmp, "repos")
        shutil.copytree(os.path.join(ROOT, "tests", "models", "tiny-sd-b"),
                        os.path.join(repos, *REPO.split("/"), "main"))
        server = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "tools", "hub_server.py"),
                                   "serve", "--repos", repos, "--lifetime", "120"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            port = server.stdout.readline().strip()
            cache = os.path.join(tmp, "cache")
            download("http://127.0.0.1:%s" % port, cache, REPO, None)
        finally:
            server.terminate()
            server.wait()
        name = "models--" + REPO.replace("/", "--")
        shutil.rmtree(FIXTURE, ignore_errors=True)
        os.makedirs(FIXTURE)
        shutil.copytree(os.path.join(cache, name), os.path.join(FIXTURE, name), symlinks=True)
    print("wrote", FIXTURE)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fixture")
    for name in ("download", "check"):
        p = sub.add_parser(name)
        p.add_argument("--endpoint", required=True)
        p.add_argument("--cache", required=True)
        p.add_argument("--repo", required=True)
        p.add_argument("--revision")
    args = ap.parse_args()
    if args.cmd == "fixture":
        make_fixture()
    elif args.cmd == "download":
        download(args.endpoint, args.cache, args.repo, args.revision)
    else:
        check(args.endpoint, args.cache, args.repo, args.revision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
