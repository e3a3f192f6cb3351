"""The assets of the VM oracle: QEMU, the s390x cross compiler, Debian's Linux 6.12 kernels and
static busyboxes, and the in-guest agent built from :file:`agent.c`.

:func:`fetch` installs what is missing and fills the cache (``$RECLAIM_VM_CACHE``, else
``$XDG_CACHE_HOME/reclaim/vm``, else ``~/.cache/reclaim/vm``):

- QEMU (``qemu-system-misc`` carries ``qemu-system-s390x``, ``qemu-system-x86`` the x86_64 one)
  and ``gcc-s390x-linux-gnu`` + ``libc6-dev-s390x-cross`` through ``apt-get install`` (root);
- the kernel image and busybox packages of Debian's newer suite (:data:`SUITE`), which the
  machine's apt does not carry: a *private* apt configuration in the cache (its own sources
  list, state and package cache) points at the Debian mirror the machine already uses, read
  from ``/etc/apt/sources.list(.d)`` at run time, and ``apt-get download`` fetches the
  packages (newest first; a version the mirror cannot serve falls back to the next one);
  ``dpkg-deb -x`` extracts them;
- the agent, compiled static for each arch (``s390x-linux-gnu-gcc`` / ``gcc``);
- on request (:func:`fetch_kernel_source`, ``reclaim vm fetch --kernel-source``), Debian's
  ``linux-source-6.12`` of the guest kernel's version through the same private apt
  configuration, of which the parts the fidelity audit reads (:data:`SOURCE_PARTS`) are
  unpacked into the cache.

What was used — package, version and sha256 of each ``.deb``, the agent's source hash — is
recorded in :func:`manifest_path` (``manifest.json``), which the results cite. A second fetch
finds everything in the cache and returns in well under a second.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from reclaim.exceptions import ReclaimError

#: The Debian suite whose Linux 6.12 packages the guests boot.
SUITE = "trixie"
#: The kernel release series the guests run (profile "6.12" of the model).
KERNEL_SERIES = "6.12"

#: The guest arches, in the model's naming, with Debian's name for each.
DEBIAN_ARCH = {"s390x": "s390x", "x86_64": "amd64"}

#: The kernel image package of each arch, as a regular expression over package names: the
#: plain s390x flavour; for amd64 the ``cloud`` flavour, which has the virtio drivers built in
#: and boots in seconds.
KERNEL_PACKAGE = {
    "s390x": r"^linux-image-6\.12\.[0-9]+(\+[a-z0-9.]+)?-s390x$",
    "x86_64": r"^linux-image-6\.12\.[0-9]+(\+[a-z0-9.]+)?-cloud-amd64(-unsigned)?$",
}

#: The QEMU binary of each arch and the Debian package that carries it.
QEMU = {
    "s390x": ("qemu-system-s390x", "qemu-system-misc"),
    "x86_64": ("qemu-system-x86_64", "qemu-system-x86"),
}

#: The C compiler of each arch (for the static agent) and the packages that carry it.
COMPILER = {
    "s390x": ("s390x-linux-gnu-gcc", ("gcc-s390x-linux-gnu", "libc6-dev-s390x-cross")),
    "x86_64": ("gcc", ("gcc", "libc6-dev")),
}

#: Debian's kernel source package of :data:`KERNEL_SERIES` (architecture ``all``; the same
#: version as the kernel images, built from the same source package).
SOURCE_PACKAGE = "linux-source-6.12"

#: The parts of the kernel tree the fidelity audit (docs/fidelity.md) reads: a path ending in
#: ``/`` is a directory, anything else a file. Only regular files are unpacked (the few
#: symlinks, under include/dt-bindings, are left out).
SOURCE_PARTS = (
    "Makefile",
    "mm/",
    "include/",
    "arch/s390/",
    "arch/x86/include/",
    "arch/x86/mm/",
    "fs/userfaultfd.c",
    "fs/proc/",
    "kernel/fork.c",
    "drivers/block/virtio_blk.c",
)

#: The keyring of the Debian archive (Debian 12's carries the keys of 13/trixie).
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


class VmAssetError(ReclaimError):
    """An asset of the VM oracle could not be installed, downloaded or built; the message
    says what to do (run as root, configure a Debian mirror, install a package)."""


def cache_dir() -> Path:
    """Where the VM assets live (outside the work tree): ``$RECLAIM_VM_CACHE``, else
    ``$XDG_CACHE_HOME/reclaim/vm``, else ``~/.cache/reclaim/vm``."""
    env = os.environ.get("RECLAIM_VM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reclaim" / "vm"


def manifest_path() -> Path:
    """The manifest of the fetched assets (``manifest.json`` in :func:`cache_dir`)."""
    return cache_dir() / "manifest.json"


@dataclass
class Package:
    """One downloaded Debian package: ``package``, ``version``, ``arch`` (Debian's), the
    ``sha256`` of the ``.deb``, the ``deb`` file name in the cache and the directory it was
    extracted to (``root``, relative to the cache)."""

    package: str
    version: str
    arch: str
    sha256: str
    deb: str
    root: str


@dataclass
class ArchAssets:
    """The assets of one guest ``arch``: the ``kernel`` and ``busybox`` packages, the paths
    (in the cache) of the kernel ``image``, its ``modules`` directory, the busybox binary
    (``busybox_bin``) and the ``agent`` binary, the kernel ``release`` (``uname -r``) and the
    agent's source hash (``agent_source_sha256``)."""

    arch: str
    kernel: Package
    busybox: Package
    image: str
    modules: str
    busybox_bin: str
    release: str
    agent: str = ""
    agent_source_sha256: str = ""

    def path(self, rel: str) -> Path:
        """An asset path made absolute."""
        return cache_dir() / rel


@dataclass
class Manifest:
    """What :func:`fetch` installed: the ``suite``, per arch its :class:`ArchAssets`
    (``arches``), the QEMU and compiler versions (``tools``), and when (``fetched``, UTC)."""

    suite: str
    arches: dict[str, ArchAssets] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    fetched: str = ""

    def to_json(self) -> str:
        """The manifest as JSON (what ``manifest.json`` holds)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Manifest:
        """Parse :meth:`to_json`'s text."""
        raw = json.loads(text)
        arches = {}
        for a, d in raw.get("arches", {}).items():
            arches[a] = ArchAssets(
                **{
                    **d,
                    "kernel": Package(**d["kernel"]),
                    "busybox": Package(**d["busybox"]),
                }
            )
        return Manifest(
            suite=raw["suite"],
            arches=arches,
            tools=dict(raw.get("tools", {})),
            fetched=raw.get("fetched", ""),
        )

    def cite(self, arch: str) -> str:
        """One line naming the guest's packages, for a result to cite."""
        a = self.arches[arch]
        return (
            f"{a.kernel.package} {a.kernel.version} (sha256 {a.kernel.sha256[:16]}…), "
            f"busybox-static {a.busybox.version}, Debian {self.suite}"
        )


def sha256_file(path: Path) -> str:
    """The sha256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# The machine's Debian mirror and the private apt configuration


def _sources_entries(root: Path = Path("/etc/apt")) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every ``deb`` entry of the machine's apt sources, one-line
    (``*.list``) and deb822 (``*.sources``) formats alike, in the order apt reads them."""
    out: list[tuple[str, list[str]]] = []
    files = [root / "sources.list"]
    parts = root / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    out.append((uri, fields.get("suites", "").split()))
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    out.append((words[1], [words[2]]))
    return out


def debian_mirror(root: Path = Path("/etc/apt")) -> str:
    """The URI of the Debian archive the machine's apt uses (an entry for the machine's own
    release, not a security or third-party one), read at run time so that no host name is
    ever written into the project."""
    codename = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                codename = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    entries = _sources_entries(root)
    for uri, suites in entries:
        if "security" in uri:
            continue
        base = {s.split("-")[0].split("/")[0] for s in suites}
        if (codename and codename in base) or base & {"stable", "testing", "unstable", SUITE}:
            return uri.rstrip("/")
    raise VmAssetError(
        "no Debian mirror found in /etc/apt/sources.list(.d): the VM oracle downloads Debian's "
        f"{SUITE} kernel packages from the mirror this machine's apt uses; configure one "
        "(a 'deb' entry for the Debian archive) and run 'reclaim vm fetch' again"
    )


def _apt_dir() -> Path:
    return cache_dir() / "apt"


def _write_apt_config(mirror: str) -> Path:
    """The private apt configuration: its own sources list (``SUITE`` only, the arches of the
    guests), state, lists and package cache in the cache dir; the machine's apt is untouched."""
    d = _apt_dir()
    for sub in ("lists/partial", "archives/partial", "parts", "prefs"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    status = d / "status"
    if not status.exists():
        status.write_text("")
    archs = ",".join(DEBIAN_ARCH.values())
    (d / "sources.list").write_text(
        f"deb [arch={archs} signed-by={KEYRING}] {mirror} {SUITE} main\n"
    )
    conf = d / "apt.conf"
    lines = [
        f'Dir::State "{d}";',
        f'Dir::State::Lists "{d}/lists";',
        f'Dir::State::status "{status}";',
        f'Dir::Cache "{d}";',
        f'Dir::Cache::archives "{d}/archives";',
        f'Dir::Etc::SourceList "{d}/sources.list";',
        f'Dir::Etc::SourceParts "{d}/parts";',
        f'Dir::Etc::Preferences "{d}/prefs/none";',
        f'Dir::Etc::PreferencesParts "{d}/prefs";',
        'APT::Architecture "amd64";',
        "APT::Architectures { " + " ".join(f'"{a}";' for a in DEBIAN_ARCH.values()) + " };",
        'Acquire::Languages "none";',
        'APT::Sandbox::User "root";',
    ]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _apt(conf: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """apt-get under the private configuration."""
    env = {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C"}
    return subprocess.run(
        ["apt-get", *args], env=env, capture_output=True, text=True, check=False, cwd=cwd
    )


def _apt_config_with_lists(refresh: bool, log: Callable[[str], object] | None) -> Path:
    """The private apt configuration on this machine's mirror, with the suite's package lists
    (`apt-get update` when asked to refresh or when there are none yet)."""
    conf = _write_apt_config(debian_mirror())
    lists = _apt_dir() / "lists"
    if refresh or not any(lists.glob("*Packages*")):
        if log is not None:
            log(f"apt-get update (Debian {SUITE}, private configuration in {_apt_dir()})")
        r = _apt(conf, "update", "-q")
        if r.returncode != 0 or not any(lists.glob("*Packages*")):
            raise VmAssetError(
                f"apt-get update of Debian {SUITE} failed on this machine's mirror: "
                f"{(r.stderr or r.stdout).strip()[-500:]}"
            )
    return conf


def _apt_cache(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C"}
    return subprocess.run(
        ["apt-cache", *args], env=env, capture_output=True, text=True, check=False
    )


def _version_cmp(a: str, b: str) -> int:
    """dpkg's order of two versions (-1, 0, 1)."""
    if a == b:
        return 0
    r = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False)
    return -1 if r.returncode == 0 else 1


def _candidates(conf: Path, pattern: str, darch: str) -> list[tuple[str, str]]:
    """(package, version) of every package of ``darch`` whose name matches ``pattern``,
    newest version first (the fall-back order when the mirror lacks the newest)."""
    r = _apt_cache(conf, "search", "--names-only", pattern)
    names = sorted({ln.split(" - ")[0].strip() for ln in r.stdout.splitlines() if ln.strip()})
    found: list[tuple[str, str]] = []
    for name in names:
        if not re.match(pattern, name):
            continue
        m = _apt_cache(conf, "madison", f"{name}:{darch}")
        for ln in m.stdout.splitlines():
            parts = [p.strip() for p in ln.split("|")]
            if len(parts) >= 3 and parts[0].split(":")[0] == name and "Packages" in parts[2]:
                found.append((name, parts[1]))

    def by_version(x: tuple[str, str], y: tuple[str, str]) -> int:
        return _version_cmp(x[1], y[1])

    # the same version may be listed twice (two Packages files): keep one
    return sorted(set(found), key=functools.cmp_to_key(by_version), reverse=True)


def _download(conf: Path, pattern: str, darch: str) -> Package:
    """Download the newest package of ``darch`` matching ``pattern`` that the mirror serves,
    falling back to older listed versions, and extract it."""
    cands = _candidates(conf, pattern, darch)
    if not cands:
        raise VmAssetError(
            f"no package matching {pattern} for {darch} in Debian {SUITE} on this machine's "
            "mirror; 'reclaim vm fetch --refresh' re-reads the package lists"
        )
    debs = cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    errors = []
    for name, version in cands:
        before = set(debs.glob("*.deb"))
        r = _apt(conf, "download", f"{name}:{darch}={version}", cwd=debs)
        new = sorted(set(debs.glob("*.deb")) - before)
        if r.returncode != 0 or not new:
            errors.append(f"{name} {version}: {(r.stderr or r.stdout).strip()[-300:]}")
            continue
        deb = new[0]
        root = cache_dir() / "root" / f"{name}_{version}_{darch}"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        x = subprocess.run(
            ["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True, check=False
        )
        if x.returncode != 0:
            raise VmAssetError(f"dpkg-deb -x {deb.name} failed: {x.stderr.strip()}")
        return Package(
            package=name,
            version=version,
            arch=darch,
            sha256=sha256_file(deb),
            deb=str(deb.relative_to(cache_dir())),
            root=str(root.relative_to(cache_dir())),
        )
    raise VmAssetError(
        f"the mirror served none of the listed versions of {pattern} for {darch}: "
        + "; ".join(errors)
    )


# --------------------------------------------------------------------------------------------
# Host tools


def _install_tools(arches: list[str]) -> None:
    """apt-get install QEMU and the compilers that are missing (root only)."""
    missing: list[str] = []
    for a in arches:
        qbin, qpkg = QEMU[a]
        if shutil.which(qbin) is None:
            missing.append(qpkg)
        cbin, cpkgs = COMPILER[a]
        if shutil.which(cbin) is None or (a == "s390x" and not _have_s390x_libc()):
            missing.extend(cpkgs)
    if shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None:
        raise VmAssetError("the VM oracle needs Debian's apt-get and dpkg-deb (a Debian host)")
    missing = sorted(set(missing))
    if not missing:
        return
    if os.geteuid() != 0:
        raise VmAssetError(
            f"missing {', '.join(missing)}: run 'reclaim vm fetch' as root (it runs apt-get "
            f"install), or 'sudo apt-get install {' '.join(missing)}'"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
    r = subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise VmAssetError(f"apt-get install {' '.join(missing)} failed: {r.stderr.strip()[-500:]}")


def _have_s390x_libc() -> bool:
    return Path("/usr/s390x-linux-gnu/lib/libc.a").exists()


def _tool_versions(arches: list[str]) -> dict[str, str]:
    out = {}
    for a in arches:
        qbin, _ = QEMU[a]
        r = subprocess.run([qbin, "--version"], capture_output=True, text=True, check=False)
        out[qbin] = r.stdout.splitlines()[0] if r.stdout else "?"
        cbin, _ = COMPILER[a]
        r = subprocess.run([cbin, "--version"], capture_output=True, text=True, check=False)
        out[cbin] = r.stdout.splitlines()[0] if r.stdout else "?"
    return out


# --------------------------------------------------------------------------------------------
# The agent


def agent_source() -> Path:
    """The agent's C source (shipped in the package)."""
    return Path(str(resources.files("reclaim.vm").joinpath("agent.c")))


def build_agent(arch: str, force: bool = False) -> tuple[Path, str]:
    """Compile the static agent for ``arch`` into the cache (once per source hash); returns
    its path and the source's sha256."""
    src = agent_source()
    digest = sha256_file(src)
    out = cache_dir() / "agent" / arch / digest[:16] / "agent"
    if out.exists() and not force:
        return out, digest
    cc, _ = COMPILER[arch]
    if shutil.which(cc) is None:
        raise VmAssetError(f"{cc} is missing: run 'reclaim vm fetch' (as root) to install it")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [cc, "-static", "-O2", "-pthread", "-Wall", "-Wextra", "-o", str(out), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise VmAssetError(f"compiling the agent for {arch} failed:\n{r.stderr.strip()[-2000:]}")
    return out, digest


# --------------------------------------------------------------------------------------------
# fetch


def load_manifest() -> Manifest | None:
    """The manifest of the cache, if every asset it names is still there."""
    p = manifest_path()
    if not p.exists():
        return None
    try:
        m = Manifest.from_json(p.read_text())
    except (ValueError, KeyError, TypeError):
        return None
    for a in m.arches.values():
        for rel in (a.image, a.busybox_bin, a.kernel.deb, a.busybox.deb):
            if not (cache_dir() / rel).exists():
                return None
    return m


def _kernel_files(pkg: Package) -> tuple[str, str, str]:
    """(image, modules dir, release) inside an extracted kernel package."""
    root = cache_dir() / pkg.root
    images = sorted((root / "boot").glob("vmlinuz-*"))
    if not images:
        raise VmAssetError(f"{pkg.package} {pkg.version} has no /boot/vmlinuz-*")
    release = images[0].name.removeprefix("vmlinuz-")
    mods = next(
        (
            p
            for p in (root / "usr/lib/modules" / release, root / "lib/modules" / release)
            if p.is_dir()
        ),
        root / "lib/modules" / release,
    )
    return (
        str(images[0].relative_to(cache_dir())),
        str(mods.relative_to(cache_dir())),
        release,
    )


def _busybox_file(pkg: Package) -> str:
    root = cache_dir() / pkg.root
    for rel in ("usr/bin/busybox", "bin/busybox"):
        if (root / rel).exists():
            return str((root / rel).relative_to(cache_dir()))
    raise VmAssetError(f"{pkg.package} {pkg.version} has no busybox binary")


def fetch(
    arches: list[str] | None = None,
    refresh: bool = False,
    log: Callable[[str], object] | None = None,
) -> Manifest:
    """Install and download what the VM oracle needs for ``arches`` (both by default) and
    return the manifest. Cached: with everything present it only checks the files (and
    rebuilds the agent when its source changed). ``refresh`` re-reads the package lists and
    downloads newer packages if the mirror has them."""
    arches = arches or list(DEBIAN_ARCH)
    for a in arches:
        if a not in DEBIAN_ARCH:
            raise VmAssetError(f"unknown guest arch {a!r}; known: {', '.join(DEBIAN_ARCH)}")

    def say(msg: str) -> None:
        if log is not None:
            log(msg)

    _install_tools(arches)
    m = None if refresh else load_manifest()
    if m is None or any(a not in m.arches for a in arches):
        m = _download_all(arches, m, refresh, say)
    changed = False
    for a in arches:
        aa = m.arches[a]
        path, digest = build_agent(a)
        rel = str(path.relative_to(cache_dir()))
        if aa.agent != rel or aa.agent_source_sha256 != digest:
            aa.agent, aa.agent_source_sha256 = rel, digest
            changed = True
    if changed or not manifest_path().exists():
        m.tools = {**m.tools, **_tool_versions(arches)}
        manifest_path().write_text(m.to_json())
    return m


def _download_all(
    arches: list[str], old: Manifest | None, refresh: bool, log: Callable[[str], object]
) -> Manifest:
    cache_dir().mkdir(parents=True, exist_ok=True)
    if not KEYRING.exists():
        raise VmAssetError(f"{KEYRING} is missing: apt-get install debian-archive-keyring")
    conf = _apt_config_with_lists(refresh, log)
    m = old or Manifest(suite=SUITE)
    for a in arches:
        darch = DEBIAN_ARCH[a]
        log(f"{a}: downloading the kernel and busybox")
        kernel = _download(conf, KERNEL_PACKAGE[a], darch)
        busybox = _download(conf, r"^busybox-static$", darch)
        image, modules, release = _kernel_files(kernel)
        m.arches[a] = ArchAssets(
            arch=a,
            kernel=kernel,
            busybox=busybox,
            image=image,
            modules=modules,
            busybox_bin=_busybox_file(busybox),
            release=release,
        )
    m.fetched = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest_path().write_text(m.to_json())
    return m


# --------------------------------------------------------------------------------------------
# The guest kernel's source (for the fidelity audit)


def _source_member(name: str) -> str | None:
    """The path inside the kernel tree of a member of the source tarball (its first
    component, ``linux-source-6.12/``, dropped) if it is one of :data:`SOURCE_PARTS`."""
    parts = name.split("/", 1)
    if len(parts) != 2 or not parts[1]:
        return None
    rel = parts[1]
    if rel.startswith("/") or ".." in rel.split("/"):
        return None
    for want in SOURCE_PARTS:
        if rel == want or (want.endswith("/") and rel.startswith(want)):
            return rel
    return None


def _unpack_source(deb: Path, dest: Path) -> int:
    """Unpack the :data:`SOURCE_PARTS` of the ``linux-source`` package ``deb`` (whose
    ``/usr/src/linux-source-*.tar.xz`` holds the tree) into ``dest``. Returns the files
    written."""
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        x = subprocess.run(
            ["dpkg-deb", "-x", str(deb), tmp], capture_output=True, text=True, check=False
        )
        if x.returncode != 0:
            raise VmAssetError(f"dpkg-deb -x {deb.name} failed: {x.stderr.strip()}")
        tarballs = sorted(Path(tmp, "usr/src").glob("linux-source-*.tar.*"))
        if not tarballs:
            raise VmAssetError(f"{deb.name} has no /usr/src/linux-source-*.tar.* tarball")
        written = 0
        with tarfile.open(tarballs[0]) as tar:
            for member in tar:
                rel = _source_member(member.name)
                if rel is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(src.read())
                written += 1
    return written


def source_dir(version: str) -> Path:
    """Where :func:`fetch_kernel_source` unpacks ``linux-source-6.12`` of ``version``."""
    return cache_dir() / "src" / f"{SOURCE_PACKAGE}_{version}"


def fetch_kernel_source(
    version: str | None = None,
    arch: str = "s390x",
    refresh: bool = False,
    log: Callable[[str], object] | None = None,
) -> Path:
    """Download Debian's :data:`SOURCE_PACKAGE` of ``version`` (default: the version of the
    ``arch`` guest kernel in the manifest, so the source is exactly what the guests boot)
    through the private apt configuration and unpack :data:`SOURCE_PARTS` into
    :func:`source_dir`. Cached: a tree unpacked before is returned at once. Returns the tree's
    root (its ``Makefile`` names the release)."""
    if version is None:
        m = load_manifest()
        if m is None or arch not in m.arches:
            raise VmAssetError(
                f"no {arch} guest kernel in the VM cache to take the source version from: run "
                f"'reclaim vm fetch --arch {arch}' first, or name the version"
            )
        version = m.arches[arch].kernel.version
    dest = source_dir(version)
    done = dest / ".complete"
    if done.exists() and not refresh:
        return dest
    cache_dir().mkdir(parents=True, exist_ok=True)
    conf = _apt_config_with_lists(refresh, log)
    debs = cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    before = set(debs.glob("*.deb"))
    if log is not None:
        log(f"downloading {SOURCE_PACKAGE} {version}")
    r = _apt(conf, "download", f"{SOURCE_PACKAGE}={version}", cwd=debs)
    new = sorted(set(debs.glob("*.deb")) - before)
    if not new:
        known = sorted(debs.glob(f"{SOURCE_PACKAGE}_*.deb"))
        prefix = f"{SOURCE_PACKAGE}_{version.replace(':', '%3a')}_"
        new = [d for d in known if d.name.startswith(prefix)]
    if r.returncode != 0 or not new:
        raise VmAssetError(
            f"the mirror did not serve {SOURCE_PACKAGE} {version} (Debian {SUITE}): "
            f"{(r.stderr or r.stdout).strip()[-300:]}; 'reclaim vm fetch --refresh' re-reads "
            "the package lists"
        )
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    n = _unpack_source(new[0], dest)
    if n == 0 or not (dest / "Makefile").exists():
        raise VmAssetError(f"{new[0].name} held none of the kernel tree's files the audit reads")
    done.write_text(f"{SOURCE_PACKAGE} {version} sha256 {sha256_file(new[0])} files {n}\n")
    if log is not None:
        log(f"{SOURCE_PACKAGE} {version}: {n} files in {dest}")
    return dest


__all__ = [
    "COMPILER",
    "DEBIAN_ARCH",
    "KERNEL_PACKAGE",
    "KERNEL_SERIES",
    "QEMU",
    "SOURCE_PACKAGE",
    "SOURCE_PARTS",
    "SUITE",
    "ArchAssets",
    "Manifest",
    "Package",
    "VmAssetError",
    "agent_source",
    "build_agent",
    "cache_dir",
    "debian_mirror",
    "fetch",
    "fetch_kernel_source",
    "load_manifest",
    "manifest_path",
    "sha256_file",
    "source_dir",
]
