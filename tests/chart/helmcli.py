"""The real helm CLI for the chart tests: render, NOTES.txt, lint, and the chart's files.

The binary is $HELM, else <repo>/target/kube-bins/current/helm (`make helm-bin` builds it from
the helm Go module pinned in hack/kube-bins/go.mod). Every call runs offline: helm gets its own
empty config/cache/data homes and a kubeconfig that does not exist, so no cluster, repository
or plugin of the machine is ever consulted.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import tempfile
from dataclasses import dataclass

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_HELM = ROOT / "target" / "kube-bins" / "current" / "helm"


class HelmNotFound(Exception):
    """No usable helm binary: the message says how to get one."""


class HelmError(Exception):
    """helm exited non-zero; `stderr` is what it printed (e.g. a template's `fail` message)."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str):
        self.command = ["helm", *args]
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"`helm {' '.join(args)}` exited {returncode}:\n{stderr}")


def find_helm() -> pathlib.Path:
    """$HELM, else target/kube-bins/current/helm; HelmNotFound (saying `make helm-bin`) if absent."""
    path = pathlib.Path(os.environ["HELM"]) if os.environ.get("HELM") else DEFAULT_HELM
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"$HELM={os.environ['HELM']}" if os.environ.get("HELM") else str(path)
        raise HelmNotFound(
            f"no helm binary at {where}: run `make helm-bin` (builds the real helm CLI from the "
            "pinned Go module into target/kube-bins/current/helm), or set HELM to a helm v4 binary"
        )
    return path


@dataclass
class LintReport:
    returncode: int
    output: str
    # (severity, text): severity is INFO, WARNING or ERROR, as helm prints "[SEVERITY] text"
    messages: list[tuple[str, str]]

    @property
    def problems(self) -> list[tuple[str, str]]:
        return [m for m in self.messages if m[0] != "INFO"]


_SOURCE = re.compile(r"^---\n# Source: (.+)\n", re.MULTILINE)
_LINT_MESSAGE = re.compile(r"^\[(INFO|WARNING|ERROR)\] (.*)$", re.MULTILINE)


class Helm:
    """One helm binary and one chart directory."""

    def __init__(self, binary: pathlib.Path, chart: pathlib.Path, kube_version: str):
        self.binary = binary
        self.chart = chart
        self.kube_version = kube_version
        self._home = tempfile.TemporaryDirectory(prefix="helm-home-")
        home = pathlib.Path(self._home.name)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
        self.env.update(
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_DATA_HOME=str(home / "data"),
            KUBECONFIG=str(home / "no-kubeconfig"),
        )
        self.version = self.run(["version", "--template", "{{.Version}}"]).strip()

    def close(self) -> None:
        self._home.cleanup()

    # -- running helm

    def run(self, args: list[str]) -> str:
        """helm ARGS; its stdout, or HelmError with its stderr."""
        r = subprocess.run([str(self.binary), *args, "--color", "never"], env=self.env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise HelmError(args, r.returncode, r.stdout, r.stderr)
        return r.stdout

    def _with_values(self, values: dict | None, args: list[str]) -> str:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as f:
            # null stays null: in Helm it removes the chart's default for that key
            yaml.safe_dump(values or {}, f, sort_keys=False)
            f.flush()
            return self.run([*args, "--values", f.name])

    # -- the chart's files (read directly, like helm's loader does)

    @property
    def metadata(self) -> dict:
        return yaml.safe_load((self.chart / "Chart.yaml").read_text())

    @property
    def values(self) -> dict:
        return yaml.safe_load((self.chart / "values.yaml").read_text())

    @property
    def crds(self) -> list[dict[str, str]]:
        """The files under crds/, as [{"name": "crds/x.yaml", "filename": "<chart>/crds/x.yaml", "data": text}]."""
        return [
            {"name": f"crds/{p.name}", "filename": f"{self.chart.name}/crds/{p.name}", "data": p.read_text()}
            for p in sorted((self.chart / "crds").glob("*.yaml"))
        ]

    # -- helm template / install --dry-run / lint

    def render(
        self,
        values: dict | None = None,
        name: str = "partnerkit",
        namespace: str = "default",
        is_install: bool = True,
        include_crds: bool = False,
        kube_version: str | None = None,
        skip_schema_validation: bool = False,
    ) -> dict[str, str]:
        """`helm template`: {"<chart>/templates/x.yaml": the documents rendered from it}.

        helm prints each document after `---` and a `# Source: <chart>/<path>` comment; the
        documents of one template are joined again with `---`, in helm's order (by kind, the
        install order, not their order in the template). NOTES.txt is not in it (helm template
        does not render it: see notes()); nor are the CRDs unless include_crds. values.schema.json
        is checked unless skip_schema_validation."""
        args = ["template", name, str(self.chart), "--namespace", namespace, "--kube-version", kube_version or self.kube_version]
        if not is_install:
            args.append("--is-upgrade")
        if include_crds:
            args.append("--include-crds")
        if skip_schema_validation:
            args.append("--skip-schema-validation")
        out = self._with_values(values, args)
        parts = _SOURCE.split(out)
        assert not parts[0].strip(), f"helm template printed something before its first `# Source:`:\n{parts[0]}"
        files: dict[str, list[str]] = {}
        for path, doc in zip(parts[1::2], parts[2::2]):
            files.setdefault(path, []).append(doc)
        return {path: "---\n".join(docs) for path, docs in files.items()}

    def notes(self, values: dict | None = None, name: str = "partnerkit", namespace: str = "default") -> str:
        """The rendered NOTES.txt: `helm install --dry-run=client -o json` (no cluster contacted)."""
        out = self._with_values(values, ["install", name, str(self.chart), "--namespace", namespace, "--dry-run=client", "--output", "json"])
        return json.loads(out)["info"]["notes"]

    def lint(self, values: dict | None = None, strict: bool = True, namespace: str = "default", kube_version: str | None = None) -> LintReport:
        """`helm lint [--strict] --kube-version`: its exit code and messages (no exception)."""
        args = ["lint", str(self.chart), "--namespace", namespace, "--kube-version", kube_version or self.kube_version]
        if strict:
            args.append("--strict")
        try:
            out = self._with_values(values, args)
            code = 0
        except HelmError as e:
            out, code = e.stdout + e.stderr, e.returncode
        return LintReport(code, out, _LINT_MESSAGE.findall(out))
