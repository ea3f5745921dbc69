"""The project's Jupyter kernel and report template, registered in an environment.

    python -m helpers.kernel     # what `make` runs once in .venv; a conda user runs it in the conda env

registers, in the running environment (``sys.prefix``):

- the kernel ``mnist-pruning`` ("MNIST pruning (helpers, .venv)"), which every notebook names
  in its metadata, so that JupyterLab and papermill run the notebooks with this environment's
  Python and ``helpers``, whichever Jupyter starts them; it is started through
  :class:`EncryptedLocalProvisioner`, so a kernel that papermill starts on TCP gets CurveZMQ
  keys instead of warning that its traffic is sent in plain text;
- the nbconvert template ``mnist-report`` (``helpers/templates/report``: JupyterLab's look, no
  scripts fetched from elsewhere, each figure with its alternative text), for
  ``jupyter nbconvert --to html --template mnist-report``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

KERNEL_NAME = "mnist-pruning"
DISPLAY_NAME = "MNIST pruning (helpers, .venv)"
PROVISIONER_NAME = "mnist-pruning-encrypted"
"""The entry point (``jupyter_client.kernel_provisioners``, in ``pyproject.toml``) of
:class:`EncryptedLocalProvisioner`."""
TEMPLATE_NAME = "mnist-report"
TEMPLATE = Path(__file__).resolve().parent / "templates" / "report"


class EncryptedLocalProvisioner(LocalProvisioner):
    """A local kernel whose connection is encrypted when its kernel manager leaves the
    choice open: jupyter_client provisions CurveZMQ keys when asked (``transport_encryption``
    ``"auto"``, and the kernel spec says ipykernel supports it), which papermill's kernel
    manager never asks for."""

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        manager_policy = getattr(self.parent, "transport_encryption", "disabled")
        kwargs.setdefault("transport_encryption", "auto" if manager_policy == "disabled" else manager_policy)
        return await super().pre_launch(**kwargs)


def install(prefix: str | os.PathLike = sys.prefix) -> tuple[Path, Path]:
    """Register the kernel and the template under ``prefix`` (``share/jupyter/...``); returns
    the kernel's folder and the template's link. Running it again replaces both."""
    from ipykernel.kernelspec import install as install_kernel

    kernel = Path(install_kernel(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=str(prefix)))
    spec = json.loads((kernel / "kernel.json").read_text())
    spec.setdefault("metadata", {})["kernel_provisioner"] = {"provisioner_name": PROVISIONER_NAME}
    (kernel / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    link = Path(prefix) / "share" / "jupyter" / "nbconvert" / "templates" / TEMPLATE_NAME
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(TEMPLATE, target_is_directory=True)  # the package's own, edits included
    return kernel, link


if __name__ == "__main__":
    for path in install():
        print(f"registered {path}")
