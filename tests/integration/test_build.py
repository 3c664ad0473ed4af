"""POST /build through the docker CLI (DOCKER_BUILDKIT=0), our CLI, docker-py
and the raw API, checked against what dockerd 20.10's classic builder did
with the same Dockerfiles (progress lines, history records, layer contents,
cache hits and misses, errors and exit codes).

Every image a test builds is tagged `dytb/...` or left untagged; the
`cleanup` fixture removes every image and container a test added, even when
it fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tarfile

import pytest

from dockyard.client.api import APIError
from harness import load_busybox
from paths import FIXTURES

STEP = re.compile(r"^Step \d+/\d+ : ")


@pytest.fixture
def dy(module_daemon):
    return module_daemon


@pytest.fixture(autouse=True)
def cleanup(dy):
    api = dy.api()
    images = {i["Id"] for i in api.get("/images/json", query={"all": "1"})}
    containers = {c["Id"] for c in api.get("/containers/json", query={"all": "1"})}
    yield
    for c in api.get("/containers/json", query={"all": "1"}):
        if c["Id"] not in containers:
            api.request("DELETE", f"/containers/{c['Id']}", query={"force": "1", "v": "1"}).read()
    new = [i for i in api.get("/images/json", query={"all": "1"}) if i["Id"] not in images]
    while new:  # children before their parents
        parents = {i["ParentId"] for i in new}
        leaves = [i for i in new if i["Id"] not in parents]
        for i in leaves:  # (removing a leaf may remove its untagged parents too)
            with contextlib.suppress(APIError):
                api.request("DELETE", f"/images/{i['Id']}", query={"force": "1"}).read()
        new = [i for i in new if i not in leaves]
    load_busybox(dy)


def write(root, files: dict[str, str | bytes], mode: dict[str, int] | None = None) -> str:
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(path, (mode or {}).get(name, 0o644))
    return str(root)


S1 = """FROM busybox:local
ARG VERSION=1.0
ENV APP_HOME=/app APP_VERSION=${VERSION}
WORKDIR ${APP_HOME}
COPY hello.txt config.json ./
COPY files/ ./files/
RUN echo "built $APP_VERSION" > built.txt && mkdir -p /data/old/sub && echo a > /data/old/a \
 && echo gone > /etc/gone.txt
RUN rm /etc/gone.txt /bin/wget && rm -rf /data/old && mkdir /data/old && echo new > /data/old/new
LABEL org.example.name="dockyard test" version="${VERSION}"
EXPOSE 8080 9090/udp
VOLUME ["/data/vol"]
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["true"]
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-ec"]
RUN ["echo", "exec form"]
RUN echo "shell form via custom SHELL, version $VERSION"
USER 1000:1000
RUN id
ONBUILD RUN echo onbuild trigger
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hello"]
"""

# dockerd 20.10's history of S1, newest first (content hashes as <h>).
S1_HISTORY = [
    '/bin/sh -ec #(nop)  CMD ["echo hello"]',
    '/bin/sh -ec #(nop)  ENTRYPOINT ["/bin/sh" "-c"]',
    "/bin/sh -ec #(nop)  ONBUILD RUN echo onbuild trigger",
    "|1 VERSION=1.0 /bin/sh -ec id",
    "/bin/sh -ec #(nop)  USER 1000:1000",
    '|1 VERSION=1.0 /bin/sh -ec echo "shell form via custom SHELL, version $VERSION"',
    "|1 VERSION=1.0 echo exec form",
    "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
    "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM",
    '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "true"] "30s" "5s" "0s" \'\\x03\'}',
    "/bin/sh -c #(nop)  VOLUME [/data/vol]",
    "/bin/sh -c #(nop)  EXPOSE 8080 9090/udp",
    "/bin/sh -c #(nop)  LABEL org.example.name=dockyard test version=1.0",
    "|1 VERSION=1.0 /bin/sh -c rm /etc/gone.txt /bin/wget && rm -rf /data/old && mkdir "
    "/data/old && echo new > /data/old/new",
    '|1 VERSION=1.0 /bin/sh -c echo "built $APP_VERSION" > built.txt && mkdir -p /data/old/sub '
    "&& echo a > /data/old/a  && echo gone > /etc/gone.txt",
    "/bin/sh -c #(nop) COPY dir:<h> in ./files/ ",
    "/bin/sh -c #(nop) COPY multi:<h> in ./ ",
    "/bin/sh -c #(nop) WORKDIR /app",
    "/bin/sh -c #(nop)  ENV APP_HOME=/app APP_VERSION=1.0",
    "/bin/sh -c #(nop)  ARG VERSION=1.0",
]


def s1_context(root) -> str:
    return write(root, {"Dockerfile": S1, "hello.txt": "hello\n", "config.json": '{"a":1}\n',
                        "files/run.sh": "#!/bin/sh\necho run\n", "files/sub/data.txt": "data\n",
                        "files/.hidden": "hidden\n"},
                 {"files/run.sh": 0o755, "files/sub/data.txt": 0o600})


def layers(dy, image: str) -> list[list[tuple[str, int, str, str]]]:
    """Each layer of a saved image but the base: (name, mode, owner, type) per entry."""
    raw = dy.api().request("GET", f"/images/{image}/get").read()
    outer = tarfile.open(fileobj=io.BytesIO(raw))
    manifest = json.load(outer.extractfile("manifest.json"))[0]
    out = []
    for name in manifest["Layers"][1:]:
        inner = tarfile.open(fileobj=outer.extractfile(name))
        out.append([(m.name, m.mode, f"{m.uid}:{m.gid}", m.type.decode()) for m in inner])
    return out


def test_every_instruction_like_dockerd(dy, tmp_path):
    ctx = s1_context(tmp_path)
    r = dy.docker("build", "-t", "dytb/s1", ctx)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Sending build context to Docker daemon")
    steps = [line for line in lines if STEP.match(line)]
    assert len(steps) == 21 and steps[0] == "Step 1/21 : FROM busybox:local"
    assert steps[6].startswith('Step 7/21 : RUN echo "built $APP_VERSION"')
    assert "exec form" in lines and "uid=1000 gid=1000 groups=1000" in lines
    # every non-COPY step after FROM runs in a container that is then removed
    assert sum(line.startswith(" ---> Running in ") for line in lines) == 18
    assert sum(line.startswith("Removing intermediate container ") for line in lines) == 18
    assert lines[-2].startswith("Successfully built ") and lines[-1] == \
        "Successfully tagged dytb/s1:latest"

    history = json.loads(dy.docker("history", "--no-trunc", "--format", "{{json .CreatedBy}}",
                                   "dytb/s1").stdout.replace("\n", ",").join("[]")
                         .replace(",]", "]"))
    masked = [re.sub(r"(dir|multi|file):[0-9a-f]{64}", r"\1:<h>", h) for h in history]
    assert masked[:-1] == S1_HISTORY

    inspect = json.loads(dy.docker("image", "inspect", "dytb/s1").stdout)[0]
    config = inspect["Config"]
    assert config["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                             "APP_HOME=/app", "APP_VERSION=1.0"]
    assert config["Cmd"] == ["echo hello"] and config["Entrypoint"] == ["/bin/sh", "-c"]
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 30_000_000_000,
                                     "Timeout": 5_000_000_000, "Retries": 3}
    assert config["ExposedPorts"] == {"8080/tcp": {}, "9090/udp": {}}
    assert config["Volumes"] == {"/data/vol": {}} and config["WorkingDir"] == "/app"
    assert config["OnBuild"] == ["RUN echo onbuild trigger"]
    assert config["Shell"] == ["/bin/sh", "-ec"] and config["StopSignal"] == "SIGTERM"
    assert config["User"] == "1000:1000" and config["Hostname"] == ""
    assert config["Labels"] == {"org.example.name": "dockyard test", "version": "1.0"}
    assert config["Image"] == inspect["Parent"]
    assert inspect["ContainerConfig"]["Hostname"] == inspect["Container"][:12]
    assert inspect["ContainerConfig"]["Cmd"] == ["/bin/sh", "-ec", "#(nop) ",
                                                 'CMD ["echo hello"]']

    assert layers(dy, "dytb/s1") == [
        [("app", 0o755, "0:0", "5")],
        [("app", 0o755, "0:0", "5"), ("app/config.json", 0o644, "0:0", "0"),
         ("app/hello.txt", 0o644, "0:0", "0")],
        [("app", 0o755, "0:0", "5"), ("app/files", 0o755, "0:0", "5"),
         ("app/files/.hidden", 0o644, "0:0", "0"), ("app/files/run.sh", 0o755, "0:0", "0"),
         ("app/files/sub", 0o755, "0:0", "5"), ("app/files/sub/data.txt", 0o600, "0:0", "0")],
        [("app", 0o755, "0:0", "5"), ("app/built.txt", 0o644, "0:0", "0"),
         ("data", 0o755, "0:0", "5"), ("data/old", 0o755, "0:0", "5"),
         ("data/old/a", 0o644, "0:0", "0"), ("data/old/sub", 0o755, "0:0", "5"),
         ("etc", 0o755, "0:0", "5"), ("etc/gone.txt", 0o644, "0:0", "0")],
        [("bin", 0o755, "0:0", "5"), ("bin/.wh.wget", 0o600, "0:0", "0"),
         ("data", 0o755, "0:0", "5"), ("data/old", 0o755, "0:0", "5"),
         ("data/old/.wh..wh..opq", 0o755, "0:0", "0"), ("data/old/new", 0o644, "0:0", "0"),
         ("etc", 0o755, "0:0", "5"), ("etc/.wh.gone.txt", 0o600, "0:0", "0")],
        [("data", 0o755, "0:0", "5"), ("data/vol", 0o755, "0:0", "5")],
    ]
    assert dy.docker("run", "--rm", "dytb/s1").stdout == "hello\n"


def test_cache_hits_and_misses(dy, tmp_path):
    ctx = s1_context(tmp_path)
    first = dy.docker("build", "-q", ctx, check=True).stdout.strip()
    again = dy.docker("build", ctx, check=True).stdout
    assert again.count(" ---> Using cache") == 20 and "Running in" not in again
    assert f"Successfully built {first[7:19]}" in again

    os.utime(os.path.join(ctx, "hello.txt"), (1, 1))  # an mtime alone keeps the cache
    assert dy.docker("build", "-q", ctx, check=True).stdout.strip() == first

    write(ctx, {"hello.txt": "changed\n"})  # misses from its COPY on, exactly
    changed = dy.docker("build", ctx, check=True).stdout
    blocks = re.split(r"\nStep ", changed)
    cached = [b.split(" : ")[0] for b in blocks if "Using cache" in b]
    assert cached == ["2/21", "3/21", "4/21"]
    built = re.search(r"Successfully built (\w+)", changed).group(1)
    assert dy.docker("run", "--rm", "--entrypoint", "cat", built,
                     "/app/hello.txt").stdout == "changed\n"

    nocache = dy.docker("build", "--no-cache", ctx, check=True).stdout
    assert "Using cache" not in nocache


def test_multi_stage_target_and_copy_from(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": """ARG BASE=busybox:local
FROM ${BASE} AS build
RUN echo built > /out.txt
FROM busybox:local AS Unused
RUN echo unused-stage
FROM scratch
COPY --from=build /out.txt /out.txt
COPY --from=0 /bin/busybox /bin/
CMD ["/bin/busybox", "cat", "/out.txt"]
"""})
    r = dy.docker("build", "-t", "dytb/multi", ctx, check=True)
    assert "Step 1/9 : ARG BASE=busybox:local" in r.stdout
    assert "unused-stage" in r.stdout  # the classic builder builds every stage
    assert "Step 6/9 : FROM scratch\n ---> \n" in r.stdout
    assert dy.docker("run", "--rm", "dytb/multi").stdout == "built\n"

    target = dy.docker("build", "--target", "unused", "-t", "dytb/target", ctx, check=True)
    assert "Step 5/5 : RUN echo unused-stage" in target.stdout
    missing = dy.docker("build", "--target", "nosuch", ctx)
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith(
        "Error response from daemon: failed to reach build target nosuch in Dockerfile")

    write(ctx, {"Dockerfile": "FROM busybox:local\nCOPY --from=5 /x /x\n"})
    bad = dy.docker("build", ctx)
    assert bad.returncode == 1
    assert bad.stderr.strip().endswith("invalid from flag value 5: index out of bounds")


def test_failed_run_keeps_its_container_and_tags_nothing(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\n"
                           "RUN echo before && echo to-stderr >&2 && exit 3\nRUN echo never\n"})
    r = dy.docker("build", "-t", "dytb/fail", ctx)
    assert r.returncode == 3
    assert "before\n\x1b[91mto-stderr\n\x1b[0m" in r.stdout
    assert r.stderr.strip().endswith(
        "The command '/bin/sh -c echo before && echo to-stderr >&2 && exit 3' "
        "returned a non-zero code: 3")
    assert dy.docker("image", "inspect", "dytb/fail").returncode == 1
    kept = dy.docker("ps", "-a", "--filter", "status=exited", "--format", "{{.Status}}").stdout
    assert kept.startswith("Exited (3)")

    before = dy.docker("ps", "-aq").stdout.split()
    forced = dy.docker("build", "--force-rm", ctx)
    assert forced.returncode == 3 and "Removing intermediate container" in forced.stdout
    assert dy.docker("ps", "-aq").stdout.split() == before


def test_errors_before_the_build(dy, tmp_path):
    cases = {
        "FROM busybox:local\nFOO bar\n": "dockerfile parse error",
        "RUN echo hi\n": "no build stage in current context",
        "# only a comment\n": "file with no instructions",
        "FROM busybox:local\nCOPY ../x /x\n": "COPY failed: forbidden path outside the build "
                                              "context: ../x ()",
        "FROM busybox:local\nCOPY missing.txt /x\n": "COPY failed: file not found in build "
        "context or excluded by .dockerignore: stat missing.txt: file does not exist",
        "FROM busybox:local\nCOPY --chmod=644 Dockerfile /x\n": "the --chmod option requires "
                                                                 "BuildKit",
        "FROM busybox:local\nSTOPSIGNAL NOTASIGNAL\n": "Invalid signal: NOTASIGNAL",
    }
    for dockerfile, message in cases.items():
        write(tmp_path, {"Dockerfile": dockerfile})
        r = dy.docker("build", str(tmp_path))
        assert r.returncode == 1 and message in r.stderr, (dockerfile, r.stderr)


def _tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            tar.addfile(info, io.BytesIO(data.encode()))
    return buf.getvalue()


def test_raw_stream_and_http_errors(dy):
    import urllib.parse

    api = dy.api()
    body = _tar({"Dockerfile": "FROM busybox:local\nRUN echo out\nLABEL a=b\n"})
    raw = api.request("POST", "/build", query={"t": "dytb/raw"}, body=body,
                      headers={"Content-Type": "application/x-tar"}).read()
    assert raw.endswith(b'"}\r\n') and b"\r\n" in raw
    messages = [json.loads(line) for line in raw.split(b"\r\n") if line]
    assert messages[0] == {"stream": "Step 1/3 : FROM busybox:local"}
    assert messages[1] == {"stream": "\n"}
    assert {"stream": "out\n"} in messages
    aux = [m["aux"]["ID"] for m in messages if "aux" in m]
    assert len(aux) == 1 and aux[0].startswith("sha256:")
    assert messages[-1] == {"stream": "Successfully tagged dytb/raw:latest\n"}
    assert b" ---\\u003e " in raw  # Go's JSON encoder escapes ">"

    with pytest.raises(APIError) as e:
        api.request("POST", "/build", body=_tar({"Dockerfile": "FROM busybox:local\nFOO x\n"}))
    assert e.value.status == 400 and "unknown instruction: FOO" in str(e.value)
    with pytest.raises(APIError) as e:
        api.request("POST", "/build", query={"dockerfile": "nope"}, body=body)
    assert e.value.status == 500 and "Cannot locate specified Dockerfile: nope" in str(e.value)
    with pytest.raises(APIError) as e:
        api.request("POST", "/build", query={"buildargs": "{bad"}, body=body)
    assert e.value.status == 400
    quiet = api.request("POST", "/build?" + urllib.parse.urlencode({"q": "1"}),
                        body=body).read()
    assert [json.loads(x) for x in quiet.split(b"\r\n") if x] == [{"stream": aux[0] + "\n"}]


def test_build_args_labels_and_tags(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\nARG A\nARG B=dflt\n"
                                         "RUN echo \"[$A][$B][$HTTP_PROXY]\"\nLABEL x=dockerfile\n"})
    r = dy.docker("build", "--build-arg", "A=one", "--build-arg", "UNUSED=1",
                  "--build-arg", "HTTP_PROXY=http://127.0.0.1:9", "--label", "x=cli",
                  "--label", "y=2", "-t", "dytb/args:1", "-t", "dytb/args:2", ctx, check=True)
    assert "[one][dflt][http://127.0.0.1:9]" in r.stdout
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in r.stdout
    assert r.stdout.endswith("Successfully tagged dytb/args:1\n"
                             "Successfully tagged dytb/args:2\n")
    assert "Step 7/7 : LABEL y=2" in r.stdout
    inspect = json.loads(dy.docker("image", "inspect", "dytb/args:2").stdout)[0]
    assert inspect["Config"]["Labels"] == {"x": "cli", "y": "2"}
    history = dy.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}",
                        "dytb/args:1").stdout
    assert '|2 A=one B=dflt /bin/sh -c echo "[$A][$B][$HTTP_PROXY]"' in history
    assert "HTTP_PROXY" not in history.replace("$HTTP_PROXY", "")


def test_dockerignore_symlinks_and_outside_dockerfile(dy, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {".dockerignore": "*.log\n!keep.log\nsecret/\n", "a.txt": "a\n",
                "x.log": "x\n", "keep.log": "k\n", "secret/s.txt": "s\n", "dir/f.txt": "f\n"})
    os.symlink("dir", ctx / "link")
    os.symlink("/etc/passwd", ctx / "abs")
    outside = write(tmp_path, {"Dockerfile.out": "FROM busybox:local\nCOPY . /all/\n"
                               "COPY link /linked/\nRUN find /all /linked | sort\n"})
    r = dy.docker("build", "-f", os.path.join(outside, "Dockerfile.out"), str(ctx), check=True)
    found = [line for line in r.stdout.splitlines() if line.startswith(("/all", "/linked"))]
    # (.dockerignore stays: the CLI only adds the Dockerfile's own name to it)
    assert found == ["/all", "/all/.dockerignore", "/all/a.txt", "/all/abs", "/all/dir", "/all/dir/f.txt",
                     "/all/keep.log", "/all/link", "/linked", "/linked/f.txt"]


def test_add_archives_and_chown(dy, tmp_path):
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner/file.txt")
        info.size, info.uid, info.gid = 3, 42, 43
        tar.addfile(info, io.BytesIO(b"in\n"))
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\nADD a.tar.gz /add/\n"
                                         "COPY a.tar.gz /copy/\nCOPY --chown=1000:1000 f /own/\n"
                                         "RUN stat -c '%u:%g %n' /add/inner/file.txt "
                                         "/copy/a.tar.gz /own /own/f",
                           "a.tar.gz": tar_bytes.getvalue(), "f": "f\n"})
    r = dy.docker("build", ctx, check=True)
    assert "42:43 /add/inner/file.txt\n0:0 /copy/a.tar.gz\n1000:1000 /own\n1000:1000 /own/f\n" \
        in r.stdout


def test_our_cli_and_docker_py(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\nRUN echo from-run\nCMD [\"true\"]\n"})
    ours = dy.run_cli("build", "-t", "dytb/cli", ctx)
    assert ours.returncode == 0, ours.stderr
    assert "Step 2/3 : RUN echo from-run\n" in ours.stdout and "from-run\n" in ours.stdout
    assert ours.stdout.endswith("Successfully tagged dytb/cli:latest\n")
    quiet = dy.run_cli("build", "-q", ctx, check=True).stdout.strip()
    assert quiet == json.loads(dy.docker("image", "inspect", "dytb/cli").stdout)[0]["Id"]
    stdin = dy.run_cli("build", "-t", "dytb/stdin", "-", input="FROM busybox:local\nENV A=1\n")
    assert stdin.returncode == 0, stdin.stderr
    failed = dy.run_cli("build", "-", input="FROM busybox:local\nRUN exit 7\n")
    assert failed.returncode == 7 and "returned a non-zero code: 7" in failed.stderr

    import docker

    client = dy.client()
    try:
        image, logs = client.images.build(path=ctx, tag="dytb/py", nocache=True)
        logs = list(logs)
        assert image.id != quiet and image.tags == ["dytb/py:latest"]
        assert {"stream": "from-run\n"} in logs
        with pytest.raises(docker.errors.BuildError) as e:
            client.images.build(fileobj=io.BytesIO(b"FROM busybox:local\nRUN exit 5\n"))
        assert "returned a non-zero code: 5" in str(e.value)
        with pytest.raises(docker.errors.APIError) as e:
            client.images.build(fileobj=io.BytesIO(b"FROM busybox:local\nNOPE\n"))
        assert e.value.status_code == 400
    finally:
        client.close()


@contextlib.contextmanager
def http_server(directory: str):
    """A file server on 127.0.0.1 for the test's own files; its base URL."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_remote_contexts_and_add_from_url(dy, tmp_path):
    www = tmp_path / "www"
    write(www, {"f.txt": "remote file\n"})
    with http_server(str(www)) as base:
        write(www, {"Dockerfile": f"FROM busybox:local\nADD {base}/f.txt /dl/\n"
                                  "RUN stat -c '%a %n' /dl/f.txt && cat /dl/f.txt\n"})
        with tarfile.open(www / "ctx.tar.gz", "w:gz") as tar:
            tar.add(www / "Dockerfile", "Dockerfile")
        r = dy.docker("build", f"{base}/ctx.tar.gz", check=True)
        assert "600 /dl/f.txt\nremote file\n" in r.stdout
        history = dy.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}",
                            r.stdout.split()[-1]).stdout
        # (dockerd names a download by its hash alone, without "file:")
        assert re.search(r"#\(nop\) ADD [0-9a-f]{64} in /dl/ ", history)
        # the daemon itself fetches `remote`: a Dockerfile alone is the context
        raw = dy.api().request("POST", "/build", query={"remote": f"{base}/Dockerfile"}).read()
        assert b"Using cache" in raw and b"Successfully built" in raw
        write(www, {"f.txt": "changed\n"})  # a new download misses the cache
        assert b"changed\\n" in dy.api().request(
            "POST", "/build", query={"remote": f"{base}/Dockerfile"}).read()
        ours = dy.run_cli("build", f"{base}/ctx.tar.gz")
        assert ours.returncode == 0, ours.stderr
        assert "Using cache" in ours.stdout and "Sending build context" not in ours.stdout


def test_remote_git_context(dy, tmp_path):
    import socket
    import subprocess

    repo = tmp_path / "repos" / "app"
    write(repo, {"sub/Dockerfile": "FROM busybox:local\nCOPY hello.txt /\nRUN cat /hello.txt\n",
                 "sub/hello.txt": "from git\n"})
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # git-daemon itself, not the `git daemon` wrapper: the wrapper runs it as a
    # child, which killing the wrapper would leave behind
    git_daemon = os.path.join(subprocess.check_output(["git", "--exec-path"], text=True)
                              .strip(), "git-daemon")
    daemon = subprocess.Popen([git_daemon, f"--base-path={tmp_path / 'repos'}",
                               "--export-all", "--listen=127.0.0.1", f"--port={port}",
                               "--reuseaddr"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        from harness import wait_for

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_for(listening, what="git daemon")
        raw = dy.api().request("POST", "/build", query={
            "remote": f"git://127.0.0.1:{port}/app#main:sub"}).read()
        assert b'{"stream":"from git\\n"}' in raw and b"Successfully built" in raw
    finally:
        daemon.kill()
        daemon.wait()


def test_client_leaving_cancels_the_build(dy):
    import socket

    from harness import wait_for

    api = dy.api()
    before = {c["Id"] for c in api.get("/containers/json", query={"all": "1"})}
    body = _tar({"Dockerfile": "FROM busybox:local\nRUN echo started && sleep 60\n"})
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(dy.socket)
    sock.sendall(b"POST /build?nocache=1 HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar"
                 b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    seen = b""
    while b'{"stream":"started\\n"}' not in seen:
        chunk = sock.recv(65536)
        assert chunk, seen
        seen += chunk
    running = [c for c in api.get("/containers/json") if c["Id"] not in before]
    assert len(running) == 1 and running[0]["Command"].endswith("sleep 60'")
    sock.close()
    wait_for(lambda: not [c for c in api.get("/containers/json", query={"all": "1"})
                          if c["Id"] not in before], what="the step's container to go")


def test_cache_from(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\nRUN echo one > /one\n"
                                         "RUN echo two > /two\nCMD [\"cat\", \"/one\"]\n"})
    dy.docker("build", "-t", "dytb/src", ctx, check=True)
    src = json.loads(dy.docker("image", "inspect", "dytb/src").stdout)[0]["Id"]
    # after a save and load, the image has no parent chain here: its history is used
    saved = dy.api().request("GET", "/images/dytb/src/get").read()
    dy.docker("rmi", "dytb/src", check=True)
    assert dy.docker("image", "inspect", src).returncode == 1
    dy.api().request("POST", "/images/load", body=saved).read()
    assert dy.docker("image", "inspect", "-f", "{{.Parent}}", "dytb/src").stdout == "\n"
    assert "Using cache" not in dy.docker("build", ctx, check=True).stdout
    # the local cache of that build matches, but is not on the chain of the image named
    for unrelated in ("busybox:local", "dytb/nosuch"):
        assert "Using cache" not in dy.docker("build", "--cache-from", unrelated, ctx,
                                              check=True).stdout
    cached = dy.docker("build", "--cache-from", "dytb/src", "-t", "dytb/cf", ctx,
                       check=True).stdout
    assert cached.count("Using cache") == 3
    assert json.loads(dy.docker("image", "inspect", "dytb/cf").stdout)[0]["Id"] == src
    assert dy.docker("run", "--rm", "dytb/cf").stdout == "one\n"


def test_run_steps_take_the_builds_host_options(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\nRUN grep myhost /etc/hosts; "
                                         "df -k /dev/shm | tail -1; ulimit -n; "
                                         "ip -o link | cut -d: -f2\n"})
    for cli in (dy.docker, dy.run_cli):
        r = cli("build", "--no-cache", "--add-host", "myhost:127.0.0.9", "--shm-size", "32m",
                "--ulimit", "nofile=512:1024", "--network", "none", ctx)
        assert r.returncode == 0, r.stderr
        out = r.stdout.split(" ---> Running in ")[1].split("\n", 1)[1]
        lines = out.splitlines()
        assert lines[0] == "127.0.0.9\tmyhost"
        assert lines[1].split()[1] == "32768"
        assert lines[2] == "512" and lines[3] == " lo"


def test_onbuild_triggers_run_in_the_child(dy, tmp_path):
    write(tmp_path / "parent", {"Dockerfile": "FROM busybox:local\n"
                                              "ONBUILD COPY marker.txt /marker.txt\n"
                                              "ONBUILD RUN cat /marker.txt\n"})
    dy.docker("build", "-t", "dytb/onbuild", str(tmp_path / "parent"), check=True)
    write(tmp_path / "child", {"Dockerfile": "FROM dytb/onbuild\nRUN echo child\n",
                               "marker.txt": "triggered\n"})
    r = dy.docker("build", "-t", "dytb/child", str(tmp_path / "child"), check=True)
    assert "Step 1/2 : FROM dytb/onbuild\n# Executing 2 build triggers\n" in r.stdout
    assert "triggered\n" in r.stdout and "child\n" in r.stdout
    inspect = json.loads(dy.docker("image", "inspect", "dytb/child").stdout)[0]
    assert inspect["Config"]["OnBuild"] is None  # triggers are not inherited further


def test_dockerignore_that_excludes_the_build_files(dy, tmp_path):
    ctx = write(tmp_path, {".dockerignore": "Dockerfile\n.dockerignore\n",
                           "Dockerfile": "FROM busybox:local\nCOPY . /all/\nRUN ls -A /all\n",
                           "kept.txt": "k\n"})
    for cli in (dy.docker, dy.run_cli):
        r = cli("build", "--no-cache", ctx)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split(" ---> Running in ")[1].splitlines()[1:2] == ["kept.txt"]


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_huge_context_is_streamed_to_disk(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\nCOPY small.txt /\n",
                           "small.txt": "s\n"})
    with open(os.path.join(ctx, "huge.bin"), "wb") as f:
        f.truncate(384 << 20)  # read back as 384 MiB of zeros
    before = peak_rss_mib(dy.proc.pid)
    r = dy.docker("build", "-q", ctx, timeout=300)
    assert r.returncode == 0, r.stderr
    assert peak_rss_mib(dy.proc.pid) - before < 64


def test_symlinks_that_leave_the_context(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\nCOPY out /x\n"})
    os.symlink("/etc/passwd", os.path.join(ctx, "out"))
    r = dy.docker("build", ctx)
    assert r.returncode == 1
    assert r.stderr.strip().endswith("COPY failed: file not found in build context or excluded "
                                     "by .dockerignore: stat out: file does not exist")
    # a link that climbs above the context stops at its root, as it would at "/"
    write(ctx, {"Dockerfile": "FROM busybox:local\nCOPY up /x/\nRUN ls -A /x\n"})
    os.unlink(os.path.join(ctx, "out"))
    os.symlink("../../..", os.path.join(ctx, "up"))
    r = dy.docker("build", ctx)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(" ---> Running in ")[1].splitlines()[1:3] == ["Dockerfile", "up"]


def test_hard_links_made_by_run_stay_links(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\n"
                                         "RUN echo data > /a && ln /a /b && mkdir /d && ln /a /d/c\n"})
    dy.docker("build", "-t", "dytb/links", ctx, check=True)
    entries = {name: (kind, mode) for name, mode, _, kind in layers(dy, "dytb/links")[0]}
    raw = dy.api().request("GET", "/images/dytb/links/get").read()
    outer = tarfile.open(fileobj=io.BytesIO(raw))
    last = json.load(outer.extractfile("manifest.json"))[0]["Layers"][-1]
    inner = {m.name: m for m in tarfile.open(fileobj=outer.extractfile(last))}
    assert entries["a"][0] == "0"
    assert (inner["b"].type, inner["b"].linkname) == (tarfile.LNKTYPE, "a")
    assert (inner["d/c"].type, inner["d/c"].linkname) == (tarfile.LNKTYPE, "a")
    assert dy.docker("run", "--rm", "dytb/links", "ls", "-l", "/d/c").stdout.split()[1] == "3"


def test_copy_rules_dockerd_follows(dy, tmp_path):
    """Owners, set-ID bits and symlinked destinations, as dockerd 20.10 leaves them."""
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox:local\n"
                           "RUN ln -s /nowhere /dlnk\n"
                           "COPY f /dlnk\n"
                           "COPY --chown=1000:50 dir /deep/new/path/\n"
                           "COPY suid /suid\n"
                           "STOPSIGNAL 99\n",
                           "f": "f\n", "dir/x": "x\n", "suid": "s\n"})
    os.chmod(os.path.join(ctx, "suid"), 0o4755)
    dy.docker("build", "-t", "dytb/rules", ctx, check=True)
    entries = {name: (mode, owner) for layer in layers(dy, "dytb/rules")
               for name, mode, owner, _ in layer}
    assert "nowhere" in entries  # written where the dangling link points
    assert entries["deep"][1] == entries["deep/new"][1] == "0:0"
    assert entries["deep/new/path"][1] == entries["deep/new/path/x"][1] == "1000:50"
    assert entries["suid"] == (0o755, "0:0")  # the chown to root dropped set-user-ID
    assert json.loads(dy.docker("image", "inspect", "dytb/rules").stdout)[0]["Config"][
        "StopSignal"] == "99"  # any number but 0 is a signal to dockerd


def test_what_only_buildkit_does_is_refused(dy, tmp_path):
    for dockerfile, flag in (("RUN <<EOF\necho hi\nEOF\n", "a heredoc"),
                             ("COPY --exclude=*.txt . /x/\n", "the --exclude option"),
                             ("ADD --checksum=sha256:00 f /f\n", "the --checksum option"),
                             ("RUN --network=none true\n", "the --network option")):
        write(tmp_path, {"Dockerfile": "FROM busybox:local\n" + dockerfile, "f": "f"})
        r = dy.docker("build", str(tmp_path))
        assert r.returncode == 1 and r.stderr.strip().endswith(
            f"{flag} requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn "
            "how to build images with BuildKit enabled"), (dockerfile, r.stderr)


def test_a_step_that_cannot_start_leaves_its_container(dy, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": 'FROM busybox:local\nRUN ["/nonexistent", "x"]\n'})
    before = set(dy.docker("ps", "-aq").stdout.split())
    r = dy.docker("build", ctx)
    assert r.returncode == 1
    assert 'exec: "/nonexistent": stat /nonexistent: no such file or directory' in r.stderr
    left = set(dy.docker("ps", "-aq").stdout.split()) - before
    assert len(left) == 1  # as dockerd leaves it (--force-rm removes it)


def test_a_base_image_that_is_not_here_is_pulled(dy, tmp_path):
    """FROM and COPY --from pull what they lack (and `--pull` every base), from
    a registry of our own on 127.0.0.1, the progress in the build's output."""
    import subprocess

    from test_registry_server import running_registry

    with running_registry() as reg:
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"docker-archive:{FIXTURES / 'busybox.docker-save.tar'}",
                        f"docker://{reg.addr}/test/busybox:1"], check=True, timeout=120)
        image = f"{reg.addr}/test/busybox:1"
        ctx = write(tmp_path, {"Dockerfile": f"FROM {image}\nRUN echo on-pulled-base\n"
                                             f"COPY --from={image} /bin/busybox /bb\n"})
        r = dy.docker("build", "-t", "dytb/pulled", ctx)
        assert r.returncode == 0, r.stderr
        assert f"Step 1/3 : FROM {image}\n" in r.stdout
        assert "1: Pulling from test/busybox" in r.stdout and "on-pulled-base" in r.stdout
        assert f"Status: Downloaded newer image for {image}" in r.stdout
        again = dy.docker("build", "--pull", ctx, check=True).stdout
        assert f"Status: Image is up to date for {image}" in again
        assert again.count("Using cache") == 2
        missing = dy.docker("build", "-", input=f"FROM {reg.addr}/test/nosuch:1\n")
        assert missing.returncode == 1 and "not found" in missing.stderr
    dy.docker("rmi", image)
