"""The operator's image as `make image` builds it: target/image/partnerkit.oci.tar.

`make test-image` (and so `make test`) builds the archive, then runs this. It reads the archive
as a registry or a container runtime would — OCI layout, index.json, manifest, config, the one
layer — and checks what the image promises: the chart's name and tag, entrypoint, user, the
exact set of files with their owners and modes, no shell, a static binary that runs from the
image's own filesystem (in a chroot, as 65532), and that the Dockerfile says the same.

    make image && target/venv/bin/python -m pytest tests/image -q
    IMAGE_ARCHIVE=path/to.oci.tar ...   # check another archive
"""

import datetime
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import ssl
import stat
import struct
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = Path(os.environ.get("IMAGE_ARCHIVE", ROOT / "target/image/partnerkit.oci.tar"))
CHART = ROOT / "charts/partnerkit"
BINARY = "usr/local/bin/partnerkit"
ENTRYPOINT = ["/" + BINARY]

# Everything in the image, nothing else: a new file must be added here on purpose.
EXPECTED = {
    # path: (type, mode)
    "etc": ("dir", 0o755),
    "etc/group": ("file", 0o644),
    "etc/nsswitch.conf": ("file", 0o644),
    "etc/passwd": ("file", 0o644),
    "etc/ssl": ("dir", 0o755),
    "etc/ssl/certs": ("dir", 0o755),
    "etc/ssl/certs/ca-certificates.crt": ("file", 0o644),
    "tmp": ("dir", 0o1777),
    "usr": ("dir", 0o755),
    "usr/local": ("dir", 0o755),
    "usr/local/bin": ("dir", 0o755),
    BINARY: ("file", 0o755),
}
SHELLS = ["bin/sh", "bin/bash", "bin/dash", "bin/ash", "bin/busybox", "usr/bin/sh", "usr/bin/bash",
          "usr/bin/env", "sbin/sh"]


def chart():
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def values():
    return yaml.safe_load((CHART / "values.yaml").read_text())


def app_version():
    return chart()["appVersion"]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Image:
    """The archive read into memory: files of the layout, the index, manifest, config, layer."""

    def __init__(self, path: Path):
        if not path.is_file():
            pytest.fail(f"{path} is missing: run `make image` first (make test-image does)")
        self.raw = path.read_bytes()
        with tarfile.open(fileobj=io.BytesIO(self.raw)) as t:
            self.members = t.getmembers()
            self.files = {m.name.rstrip("/"): t.extractfile(m).read() for m in self.members if m.isfile()}
        self.index = json.loads(self.files["index.json"])
        [self.descriptor] = self.index["manifests"]
        self.manifest = json.loads(self.blob(self.descriptor))
        self.config = json.loads(self.blob(self.manifest["config"]))
        [layer] = self.manifest["layers"]
        self.layer_gz = self.blob(layer)
        self.layer = gzip.decompress(self.layer_gz)
        with tarfile.open(fileobj=io.BytesIO(self.layer)) as t:
            self.entries = t.getmembers()
            self.content = {e.name.rstrip("/"): t.extractfile(e).read() for e in self.entries if e.isfile()}

    def blob(self, descriptor) -> bytes:
        algorithm, hex_ = descriptor["digest"].split(":")
        data = self.files.get(f"blobs/{algorithm}/{hex_}")
        assert data is not None, f"blob {descriptor['digest']} is not in the layout"
        assert len(data) == descriptor["size"], f"blob {descriptor['digest']}: size {len(data)} != {descriptor['size']}"
        assert sha256(data) == descriptor["digest"], f"blob {descriptor['digest']}: content does not match its digest"
        return data

    def extract(self, dest: Path) -> Path:
        """The layer as a directory, with the modes it carries (owners are the caller's)."""
        dest.mkdir(parents=True)
        dest = dest.resolve()
        for e in self.entries:
            p = dest / e.name.rstrip("/")
            assert dest in p.resolve().parents, f"{e.name} escapes the root"
            if e.isdir():
                p.mkdir(parents=True, exist_ok=True)
            elif e.isfile():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(self.content[e.name.rstrip("/")])
            else:
                raise AssertionError(f"{e.name}: unexpected entry type {e.type!r}")
        for e in self.entries:  # modes last: directories may be read-only
            os.chmod(dest / e.name.rstrip("/"), e.mode)
        return dest


@pytest.fixture(scope="module")
def image():
    return Image(ARCHIVE)


@pytest.fixture(scope="module")
def rootfs(image, tmp_path_factory):
    return image.extract(tmp_path_factory.mktemp("image") / "rootfs")


# --- the archive is a valid OCI image layout -----------------------------------------------

def test_the_archive_is_an_oci_image_layout(image):
    assert json.loads(image.files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    assert image.index["schemaVersion"] == 2
    assert image.index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert image.descriptor["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert image.descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    assert image.manifest["schemaVersion"] == 2
    assert image.manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert image.manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert [l["mediaType"] for l in image.manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar+gzip"]
    # Every blob is referenced (manifest, config, layer) and matches its digest; nothing else.
    blobs = {n for n in image.files if n.startswith("blobs/")}
    wanted = {"blobs/" + d["digest"].replace(":", "/") for d in
              [image.descriptor, image.manifest["config"], *image.manifest["layers"]]}
    assert blobs == wanted
    assert set(image.files) == blobs | {"oci-layout", "index.json"}
    for m in image.members:
        assert not m.name.startswith("/") and ".." not in m.name.split("/"), m.name
    # The config lists the layer by the digest of its uncompressed tar.
    assert image.config["rootfs"] == {"type": "layers", "diff_ids": [sha256(image.layer)]}
    assert len(image.config["history"]) == 1


def test_the_image_is_named_and_tagged_as_the_charts_default(image):
    v = values()["image"]
    assert v["tag"] == "", "the chart's tag must default to its appVersion, the tag make image gives"
    annotations = image.descriptor["annotations"]
    assert annotations["org.opencontainers.image.ref.name"] == app_version()
    assert annotations["io.containerd.image.name"] == f"docker.io/{v['repository']}:{app_version()}"


def test_the_config_runs_partnerkit_as_65532_without_a_shell(image):
    cfg = image.config["config"]
    assert image.config["architecture"] == "amd64" and image.config["os"] == "linux"
    assert cfg["Entrypoint"] == ENTRYPOINT
    assert "Cmd" not in cfg, "the chart passes `run --config ...` as args"
    # The user is the one the chart's pod security context names.
    psc = values()["podSecurityContext"]
    assert cfg["User"] == f"{psc['runAsUser']}:{psc['runAsGroup']}" == "65532:65532"
    assert cfg["Env"] == ["PATH=/usr/local/bin"]
    assert cfg["WorkingDir"] == "/"
    license_ = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["license"]
    labels = cfg["Labels"]
    assert labels == {
        "org.opencontainers.image.title": "partnerkit",
        "org.opencontainers.image.version": app_version(),
        "org.opencontainers.image.licenses": license_,
        "org.opencontainers.image.source": labels.get("org.opencontainers.image.source"),
    }
    assert re.fullmatch(r"https://\S+", labels["org.opencontainers.image.source"])


def test_the_timestamps_are_the_last_commits(image):
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True).stdout.strip() or "0"
    want = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert image.config["created"] == want
    assert {h["created"] for h in image.config["history"]} == {want}
    assert {e.mtime for e in image.entries} == {int(epoch)}
    assert {m.mtime for m in image.members} == {int(epoch)}


# --- the files ----------------------------------------------------------------------------

def test_the_layer_holds_exactly_the_expected_files_owned_by_root(image):
    found = {}
    for e in image.entries:
        name = e.name.rstrip("/")
        assert not name.startswith("/") and ".." not in name.split("/") and ".wh." not in name, name
        assert (e.uid, e.gid) == (0, 0), f"{name} is owned by {e.uid}:{e.gid}"
        kind = "dir" if e.isdir() else "file" if e.isfile() else e.type
        found[name] = (kind, stat.S_IMODE(e.mode))
    assert found == EXPECTED
    # Nothing the operator (65532) could change but /tmp; no setuid/setgid anywhere.
    for name, (_, mode) in found.items():
        assert not mode & (stat.S_ISUID | stat.S_ISGID), name
        if name != "tmp":
            assert not mode & (stat.S_IWGRP | stat.S_IWOTH), name


def test_there_is_no_shell_nor_any_program_but_partnerkit(image, rootfs):
    for sh in SHELLS:
        assert not (rootfs / sh).exists(), f"/{sh} is in the image"
    elves = sorted(n for n, data in image.content.items() if data[:4] == b"\x7fELF")
    assert elves == [BINARY]


def test_the_user_and_group_nonroot_are_65532(image):
    passwd = [l.split(":") for l in image.content["etc/passwd"].decode().splitlines()]
    group = [l.split(":") for l in image.content["etc/group"].decode().splitlines()]
    assert ["nonroot", "x", "65532", "65532"] in [p[:4] for p in passwd]
    assert ["nonroot", "x", "65532", ""] in group
    assert [p[0] for p in passwd] == ["root", "nonroot"] and [g[0] for g in group] == ["root", "nonroot"]
    assert "hosts: files dns" in image.content["etc/nsswitch.conf"].decode().splitlines()


def test_the_ca_bundle_holds_the_public_roots(image):
    pem = image.content["etc/ssl/certs/ca-certificates.crt"].decode()
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)
    assert len(certs) >= 100, f"only {len(certs)} certificates"
    for c in certs:
        ssl.PEM_cert_to_DER_cert(c)  # raises on a damaged certificate
    # The roots rustls needs for a public SMTP server: e.g. ISRG Root X1 (Let's Encrypt).
    ctx = ssl.create_default_context(cadata=pem)
    subjects = {dict(x[0] for x in c["subject"]).get("commonName") for c in ctx.get_ca_certs()}
    assert "ISRG Root X1" in subjects


def test_the_image_is_not_bloated(image):
    assert len(image.layer) < 40 * 2**20, f"{len(image.layer)} bytes uncompressed"
    assert len(image.layer_gz) < 16 * 2**20, f"{len(image.layer_gz)} bytes compressed"


# --- the binary ---------------------------------------------------------------------------

def elf(data: bytes):
    """(machine, program header types, DT_NEEDED count, section names) of an ELF64 LE file."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 little-endian file"
    (machine,) = struct.unpack_from("<H", data, 18)
    phoff, shoff = struct.unpack_from("<QQ", data, 32)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 54)
    phdrs = [struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize) for i in range(phnum)]
    needed = 0
    for p_type, _, p_offset, _, _, p_filesz, _, _ in phdrs:
        if p_type == 2:  # PT_DYNAMIC
            for off in range(p_offset, p_offset + p_filesz, 16):
                (tag, _) = struct.unpack_from("<qQ", data, off)
                needed += tag == 1  # DT_NEEDED
    shdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = shdrs[shstrndx][4] if shdrs else 0
    names = {data[strtab_off + s[0]:data.index(b"\0", strtab_off + s[0])].decode() for s in shdrs}
    return machine, [p[0] for p in phdrs], needed, names


def test_the_binary_is_static_stripped_and_for_amd64(image):
    machine, types, needed, sections = elf(image.content[BINARY])
    assert machine == 62, "not x86-64"
    assert 3 not in types, "it has a program interpreter (PT_INTERP): dynamically linked"
    assert needed == 0, f"it needs {needed} shared libraries"
    assert ".symtab" not in sections, "not stripped"


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=30, env={}, **kw)


def test_partnerkit_version_runs_from_the_images_filesystem(rootfs):
    out = run([str(rootfs / BINARY), "--version"])
    assert (out.returncode, out.stdout, out.stderr) == (0, f"partnerkit {app_version()}\n", "")


def test_partnerkit_version_runs_in_a_chroot_of_the_image_as_65532(rootfs):
    """Nothing from the host takes part: no loader, no library, no /dev, no /proc."""
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    if os.geteuid() == 0:
        cmd = [chroot, "--userspec=65532:65532", str(rootfs), "/" + BINARY, "--version"]
    elif (unshare := shutil.which("unshare")) and run([unshare, "-r", "/bin/true"]).returncode == 0:
        cmd = [unshare, "-r", chroot, str(rootfs), "/" + BINARY, "--version"]
    else:
        pytest.skip("chroot needs root or unprivileged user namespaces")
    out = run(cmd)
    assert (out.returncode, out.stdout, out.stderr) == (0, f"partnerkit {app_version()}\n", ""), out


# --- reproducible, and in step with the Dockerfile ----------------------------------------

def test_assembling_the_same_files_again_gives_the_same_bytes(image, rootfs, tmp_path):
    out = tmp_path / "again.oci.tar"
    env = dict(os.environ,
               SOURCE_DATE_EPOCH=str(image.entries[0].mtime),
               IMAGE_SOURCE=image.config["config"]["Labels"]["org.opencontainers.image.source"])
    r = subprocess.run([str(ROOT / "scripts/image.sh"), "assemble", str(rootfs), str(out)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert sha256(out.read_bytes()) == sha256(image.raw), "the assembly is not reproducible"


def dockerfile():
    """[(instruction, argument)] of the Dockerfile, continuation lines joined, comments dropped."""
    lines, joined = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") and not joined:
            continue
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        joined += line
        if joined.strip():
            word, _, rest = joined.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
        joined = ""
    return lines


def test_the_dockerfile_builds_the_same_image(image):
    ins = dockerfile()
    froms = [i for i, (w, _) in enumerate(ins) if w == "FROM"]
    assert len(froms) == 2, "a builder stage and the final stage"
    builder, final = ins[froms[0]:froms[1]], ins[froms[1]:]
    assert final[0] == ("FROM", "scratch")
    runs = " ".join(a for w, a in builder if w == "RUN")
    assert "scripts/image.sh binary" in runs and "scripts/image.sh rootfs /rootfs" in runs
    assert ("COPY", "--from=build /rootfs/ /") in final
    args = dict(a.split("=", 1) for w, a in ins if w == "ARG" and "=" in a)
    assert args["VERSION"] == app_version(), "Dockerfile ARG VERSION must be the chart's appVersion"
    cfg = image.config["config"]
    by = {w: a for w, a in final}
    assert json.loads(by["ENTRYPOINT"]) == cfg["Entrypoint"]
    assert by["USER"] == cfg["User"]
    assert by["WORKDIR"] == cfg["WorkingDir"]
    assert [by["ENV"]] == cfg["Env"]
    labels = dict(kv.split("=", 1) for kv in shlex.split(by["LABEL"]))
    labels = {k: re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], v) for k, v in labels.items()}
    assert labels == cfg["Labels"]
    assert not {w for w, _ in final} - {"FROM", "COPY", "ENV", "USER", "WORKDIR", "ENTRYPOINT", "ARG", "LABEL"}
