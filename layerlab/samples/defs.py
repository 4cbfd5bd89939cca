"""What the sample images contain: deterministic file content and Dockerfile-like steps.

Every byte comes from ``random.Random(<string key>)`` (string seeds hash with sha512, so
they are stable across Python versions and platforms).
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .imagewriter import Entry, Image, Layer, canonical_json, sha256_hex

WORDS = (
    "def return self import from class if else elif for while in not and or None True False "
    "value result config layer image digest manifest registry blob push pull tag index size "
    "name path file data buffer stream reader writer error status request response header "
    "json tar gzip zstd chunk offset length count total cache token user group mode time "
    "print format open close read write update append extend items keys values list dict "
    "= == != ( ) [ ] { } : , . + - * / # -> 0 1 2 8 16 32 64 256 1024 4096"
).split()

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def text(key: str, size: int) -> bytes:
    """Source-like text: lines of words from a small vocabulary, exactly ``size`` bytes."""
    rng = random.Random("text:" + key)
    lines, total = [], 0
    while total < size:
        indent = "    " * rng.randrange(3)
        line = indent + " ".join(rng.choices(WORDS, k=rng.randrange(3, 12))) + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def binary(key: str, size: int) -> bytes:
    """Executable-like bytes: random blocks mixed with repetitive record tables."""
    rng = random.Random("binary:" + key)
    out = bytearray(b"\x7fELF\x02\x01\x01\x00")
    while len(out) < size:
        if rng.random() < 0.5:
            out += rng.randbytes(256)
        else:
            base, op = rng.randrange(1 << 24), rng.randrange(64)
            out += b"".join(struct.pack("<HHI", op, i & 7, base + 8 * i) for i in range(32))
    return bytes(out[:size])


def packed(key: str, size: int) -> bytes:
    """Already-compressed-like bytes (images, archives): incompressible."""
    return random.Random("packed:" + key).randbytes(size)


def file(path: str, data: bytes, mode: int = 0o644) -> Entry:
    """A regular file entry."""
    return Entry(path, "file", data, mode)


def exe(path: str, size: int) -> Entry:
    """An executable binary (0755)."""
    return Entry(path, "file", binary(path, size), 0o755)


@dataclass(frozen=True)
class Step:
    """A Dockerfile step: ``created_by`` text and its layer entries (None: empty layer)."""

    created_by: str
    entries: tuple[Entry, ...] | None = None


def nop(instruction: str) -> Step:
    """A metadata-only step (ENV, CMD, LABEL...), recorded with empty_layer."""
    return Step(f"/bin/sh -c #(nop)  {instruction}")


def run(command: str, *entries: Entry) -> Step:
    """A RUN step producing a layer."""
    return Step(f"/bin/sh -c {command}", tuple(entries))


def build(steps: list[Step], settings: dict, tags: tuple[str, ...], *,
          start: datetime = START, architecture: str = "amd64", variant: str = "") -> Image:
    """An image from steps: layers, history (one minute apart) and config."""
    layers, history = [], []
    for i, step in enumerate(steps):
        created = (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        item = {"created": created, "created_by": step.created_by}
        if step.entries is None:
            item["empty_layer"] = True
        else:
            layers.append(Layer.from_entries(step.entries))
        history.append(item)
    config = {
        "architecture": architecture,
        "config": {"Env": [PATH_ENV], **settings},
        "created": history[-1]["created"],
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }
    if variant:
        config["variant"] = variant
    return Image(canonical_json(config), tuple(layers), tags)


def dpkg_status(packages: list[str]) -> bytes:
    """A dpkg status database listing the packages (rewritten by every apt step)."""
    return "".join(
        f"Package: {p}\nStatus: install ok installed\nVersion: 1.{i}\n"
        f"Description: {text(p, 300).decode()}\n\n" for i, p in enumerate(packages)
    ).encode()


def base_steps() -> list[Step]:
    """base:1 -- a mini root filesystem and one apt step (2 layers)."""
    rootfs = (
        Entry("bin", "dir"), exe("bin/busybox", 24000),
        Entry("bin/sh", "symlink", target="busybox"), Entry("bin/ls", "symlink", target="busybox"),
        file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n"),
        file("etc/group", b"root:x:0:\nwww-data:x:33:\n"),
        file("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o640),
        file("etc/hostname", b"sample\n"),
        Entry("etc/os-release", "symlink", target="../usr/lib/os-release"),
        file("usr/lib/os-release", b'NAME="Sample Linux"\nVERSION_ID="12"\nID=sample\n'),
        exe("usr/lib/libc.so.6", 40000), exe("usr/lib/ld-linux-x86-64.so.2", 8000),
        exe("usr/bin/perl", 16000),
        Entry("usr/bin/perl5.36.0", "hardlink", target="usr/bin/perl", mode=0o755),
        file("usr/share/doc/base/copyright", text("base/copyright", 3000)),
        Entry("root", "dir", mode=0o700), Entry("tmp", "dir", mode=0o1777),
        Entry("var/log", "dir"), Entry("home", "dir"),
    )
    add = f"ADD file:{sha256_hex(repr(rootfs).encode())} in / "
    return [
        Step(f"/bin/sh -c #(nop) {add}", rootfs),
        nop('CMD ["bash"]'),
        run("apt-get update && apt-get install -y --no-install-recommends ca-certificates curl"
            " && rm -rf /var/lib/apt/lists/*",
            file("etc/ssl/certs/ca-certificates.crt", text("ca-certificates", 20000)),
            exe("usr/bin/curl", 12000), exe("usr/lib/libcurl.so.4", 20000),
            file("var/lib/dpkg/status", dpkg_status(["base", "ca-certificates", "curl"]))),
        nop("ENV LANG=C.UTF-8"),
    ]


BASE_SETTINGS = {"Cmd": ["bash"], "Env": [PATH_ENV, "LANG=C.UTF-8"]}


def app_image(version: int) -> Image:
    """app:v1 (base + 2 layers) or app:v2 (same python layer, changed app, + compileall)."""
    python = run(
        "apt-get update && apt-get install -y --no-install-recommends python3"
        " && rm -rf /var/lib/apt/lists/*",
        exe("usr/bin/python3.11", 30000),
        Entry("usr/bin/python3", "symlink", target="python3.11"),
        *(file(f"usr/lib/python3.11/{m}.py", text(m, 3000 + 700 * i))
          for i, m in enumerate(["os", "json/__init__", "http/server", "re"])),
    )
    app_files = [
        file("app/main.py", text(f"main.py v{version}", 4000 + 1500 * version)),
        file("app/requirements.txt", b"flask==3.0.0\ngunicorn==21.2.0\n"),
        file("app/static/logo.png", packed("logo.png", 6000)),
        file("app/templates/index.html", text("index.html", 2500)),
    ]
    if version == 2:
        app_files.append(file("app/api.py", text("api.py", 3500)))
    copy = Step(f"/bin/sh -c #(nop) COPY dir:{sha256_hex(repr(app_files).encode())} in /app ",
                tuple(app_files))
    env = [PATH_ENV, "LANG=C.UTF-8", f"APP_VERSION={version}.0"]
    cmd = ["python3", "/app/main.py"] + (["--serve"] if version == 2 else [])
    labels = {"org.opencontainers.image.title": "app"}
    if version == 2:
        labels["org.opencontainers.image.version"] = "2.0"
    steps = base_steps() + [
        nop(f"ENV APP_VERSION={version}.0"), nop("WORKDIR /app"), python, copy,
    ]
    if version == 2:
        steps.append(run("python3 -m compileall -q /app",
                         file("app/__pycache__/main.cpython-311.pyc", binary("main.pyc", 5000)),
                         file("app/__pycache__/api.cpython-311.pyc", binary("api.pyc", 4000))))
    steps += [nop("EXPOSE 8080"), nop("USER 1000:1000"),
              *(nop(f'LABEL {k}="{v}"') for k, v in labels.items()),
              nop("CMD " + json.dumps(cmd))]
    settings = {"Cmd": cmd, "Env": env, "ExposedPorts": {"8080/tcp": {}}, "Labels": labels,
                "User": "1000:1000", "WorkingDir": "/app"}
    return build(steps, settings, (f"app:v{version}",), start=START + timedelta(days=version))


PACKAGES = [
    "gcc", "make", "git", "openssh-client", "libssl3", "zlib1g", "nginx", "supervisor",
    "python3-pip", "nodejs", "redis-tools", "postgresql-client", "imagemagick", "fonts-dejavu",
    "tzdata", "locales", "jq", "less", "procps", "unzip",
]
MERGE_PLAN = [2, 2, 2, 1, 2, 2, 2, 2, 1, 2, 2, 2]  # 22 RUN steps -> 12 merged RUN steps


def build_steps() -> list[tuple[str, tuple[Entry, ...]]]:
    """The 22 RUN steps (command, entries) of app24; apt steps rewrite the dpkg status."""
    steps, installed = [], ["base", "ca-certificates", "curl"]
    for i, pkg in enumerate(PACKAGES):
        installed.append(pkg)
        rng = random.Random("pkg:" + pkg)
        entries = (
            exe(f"usr/bin/{pkg}", rng.randrange(2000, 9000)),
            file(f"usr/share/doc/{pkg}/copyright", text(pkg + "/copyright", rng.randrange(400, 1600))),
            file(f"var/lib/dpkg/info/{pkg}.list", f"/usr/bin/{pkg}\n/usr/share/doc/{pkg}\n".encode()),
            file("var/lib/dpkg/status", dpkg_status(installed)),
        )
        update = "apt-get update && " if i == 0 else ""
        steps.append((f"{update}apt-get install -y --no-install-recommends {pkg}", entries))
        if pkg == "nginx":
            steps.append(("mkdir -p /srv/www && chown -R www-data:www-data /srv/www",
                          (Entry("srv/www", "dir"),)))
        if pkg == "tzdata":
            steps.append(("ln -sf /usr/share/zoneinfo/UTC /etc/localtime",
                          (Entry("etc/localtime", "symlink", target="/usr/share/zoneinfo/UTC"),)))
    steps[-1] = (steps[-1][0] + " && printf ... > /docker-entrypoint.sh && chmod +x /docker-entrypoint.sh",
                 steps[-1][1] + (file("docker-entrypoint.sh", text("entrypoint", 600), 0o755),))
    return steps


def merged(steps: list[tuple[str, tuple[Entry, ...]]]) -> tuple[str, tuple[Entry, ...]]:
    """Consecutive RUN steps as one: commands joined with &&, later files win."""
    entries: dict[str, Entry] = {}
    for _, step_entries in steps:
        entries.update({e.path: e for e in step_entries})
    return " && ".join(cmd for cmd, _ in steps), tuple(entries.values())


def layered_image(merge: bool) -> Image:
    """app24:latest (2 base + 22 RUN layers) or app14:latest (2 base + 12 merged RUN layers)."""
    runs = build_steps()
    if merge:
        groups, i = [], 0
        for n in MERGE_PLAN:
            groups.append(merged(runs[i:i + n]))
            i += n
        runs = groups
    steps = base_steps() + [nop("ENV DEBIAN_FRONTEND=noninteractive")]
    steps += [run(cmd, *entries) for cmd, entries in runs]
    steps += [nop("WORKDIR /srv/www"), nop("EXPOSE 80"),
              nop('ENTRYPOINT ["/docker-entrypoint.sh"]'), nop('CMD ["nginx", "-g", "daemon off;"]')]
    settings = {"Cmd": ["nginx", "-g", "daemon off;"], "Entrypoint": ["/docker-entrypoint.sh"],
                "Env": [PATH_ENV, "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"],
                "ExposedPorts": {"80/tcp": {}}, "WorkingDir": "/srv/www"}
    name = "app14" if merge else "app24"
    return build(steps, settings, (f"{name}:latest",), start=START + timedelta(days=4))


def wasted_image() -> Image:
    """wasted:latest: overwrite, whiteout delete, opaque directory, chmod-only change."""
    conf = text("app.conf", 2000)
    steps = base_steps() + [
        Step("/bin/sh -c #(nop) COPY dir:" + sha256_hex(b"wasted-opt") + " in /opt ", (
            file("opt/data/big.bin", binary("big.bin v1", 48000)),
            file("opt/data/tmp.log", text("tmp.log", 20000)),
            *(file(f"opt/cache/{n}.dat", binary(n + ".dat", 6000)) for n in "abc"),
            file("opt/conf/app.conf", conf),
            file("opt/keep.txt", b"keep me\n"),
        )),
        run("generate-data > /opt/data/big.bin", file("opt/data/big.bin", binary("big.bin v2", 32000))),
        run("rm /opt/data/tmp.log", file("opt/data/.wh.tmp.log", b"")),
        run("rm -rf /opt/cache && mkdir /opt/cache && generate-cache /opt/cache",
            Entry("opt/cache", "dir"), file("opt/cache/.wh..wh..opq", b""),
            file("opt/cache/d.dat", binary("d.dat", 4000))),
        run("chmod 600 /opt/conf/app.conf", file("opt/conf/app.conf", conf, 0o600)),
        nop('CMD ["cat", "/opt/keep.txt"]'),
    ]
    settings = {"Cmd": ["cat", "/opt/keep.txt"], "Env": [PATH_ENV, "LANG=C.UTF-8"]}
    return build(steps, settings, ("wasted:latest",), start=START + timedelta(days=5))


PLATFORMS = [("amd64", ""), ("arm64", "v8"), ("arm", "v7")]


def multi_images() -> list[Image]:
    """multi:latest, one small image per platform; the second layer is shared by all."""
    config = file("etc/hello/config.json", canonical_json({"greeting": "hello", "repeat": 3}))
    images = []
    for arch, variant in PLATFORMS:
        platform = arch + (f"/{variant}" if variant else "")
        rootfs = (exe("bin/hello", 6000 + 500 * len(images)),
                  file("etc/os-release", f'NAME="Sample Linux"\nARCH="{platform}"\n'.encode()))
        steps = [Step(f"/bin/sh -c #(nop) ADD file:{sha256_hex(platform.encode())} in / ", rootfs),
                 Step("/bin/sh -c #(nop) COPY file:" + sha256_hex(config.data) + " in /etc/hello/ ",
                      (config,)),
                 nop('ENTRYPOINT ["/bin/hello"]')]
        images.append(build(steps, {"Entrypoint": ["/bin/hello"]}, ("multi:latest",),
                            start=START + timedelta(days=6), architecture=arch, variant=variant))
    return images
