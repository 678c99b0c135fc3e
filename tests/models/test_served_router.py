"""served-router without a serving engine: the vLLM command for an adapters folder, and the up-front ``/v1/models``
check against a loopback server that lists models the way vLLM does (``tests/e2e/test_vllm_served.py`` runs the
real engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from support.loopback import LoopbackServer


def _adapters(folder: Path, ranks: dict[str, int], manifest: dict | None = None) -> Path:
    for name, rank in ranks.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}))
    if manifest is not None:
        (folder / "adapters.json").write_text(json.dumps(manifest))
    return folder


def test_serve_command_names_every_manifest_adapter_and_the_rank_vllm_needs(tmp_path: Path) -> None:
    from culturesafe_ext.routing.serve_command import plan

    manifest = {"base_model": "/models/base", "adapters": {"india": {}, "china": {}}}
    folder = _adapters(tmp_path / "a", {"china": 4, "india": 12, "stray": 64}, manifest)
    serve = plan(folder)
    assert serve.base == "/models/base" and serve.served_name == "base"
    assert list(serve.adapters) == ["india", "china"]  # the manifest's adapters, in its order; not the stray folder
    assert serve.max_lora_rank == 16  # the largest r (12), rounded up to a rank vLLM accepts
    argv = serve.argv("py", port=9000, extra=("--dtype", "float32"))
    assert argv[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--max-loras") + 1] == "2" and argv[argv.index("--max-lora-rank") + 1] == "16"
    assert argv[argv.index("--lora-modules") + 1 : argv.index("--lora-modules") + 3] == [
        f"india={folder.resolve() / 'india'}",
        f"china={folder.resolve() / 'china'}",
    ]
    assert argv[-2:] == ["--dtype", "float32"] and argv[argv.index("--port") + 1] == "9000"

    no_manifest = _adapters(tmp_path / "b", {"china": 8})
    assert plan(no_manifest, model="m", served_name="demo").served_name == "demo"
    with pytest.raises(ValueError, match="no adapters.json naming the base model; pass --model"):
        plan(no_manifest)
    broken = _adapters(tmp_path / "c", {"china": 8}, {"base_model": "m", "adapters": {"china": {}, "japan": {}}})
    with pytest.raises(ValueError, match=r"adapters.json lists japan, but .* has no <name>/adapter_config.json"):
        plan(broken)
    (no_manifest / "china" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"china/adapter_config.json: no readable LoRA rank, field 'r'"):
        plan(no_manifest, model="m")


class ModelList(LoopbackServer):
    """``GET /v1/models`` answering with the given model cards, as vLLM lists its base and LoRA modules."""

    name = "model-list-standin"

    def __init__(self, cards: list[dict]) -> None:
        self.cards = cards
        self._init_server()

    def install(self, app: web.Application) -> None:
        async def models(request: web.Request) -> web.Response:
            return web.json_response({"object": "list", "data": self.cards})

        app.router.add_get("/v1/models", models)


def test_served_router_checks_the_served_models_up_front(tiny_model: Path, tmp_path: Path) -> None:
    from culturesafe_ext.models.served_router import ServedRouterLM, models_url

    folder = _adapters(tmp_path / "a", {"china": 8, "india": 8})
    cards = [
        {"id": "demo", "root": "/m", "parent": None},
        {"id": "china", "root": str(folder / "china"), "parent": "demo"},
        {"id": "india", "root": "/elsewhere/india", "parent": "other-base"},
    ]
    with ModelList(cards) as server:
        common = {"base_url": f"{server.base_url}/completions", "model": "demo", "tokenizer": str(tiny_model)}
        common |= {"tokenizer_backend": "huggingface", "adapters": str(folder)}
        with pytest.raises(ValueError, match="serves 'india', but not as a LoRA adapter of 'demo'.*'other-base'"):
            ServedRouterLM(routing="oracle", **common)
        lm = ServedRouterLM(routing="fixed:china", **common)  # only china is needed
        assert lm.served_adapters == {"china": str(folder / "china")}
        assert lm.get_model_info()["routing"] == "fixed:china"
        server.cards = cards[:2]
        with pytest.raises(ValueError, match=r"does not serve the adapter\(s\) india that routing=oracle"):
            ServedRouterLM(routing="oracle", **common)
        assert ServedRouterLM(routing="none", **common).served_adapters == {}
    with pytest.raises(ValueError, match="cannot list the served models at http://127.0.0.1:9/v1/models"):
        ServedRouterLM(routing="none", **{**common, "base_url": "http://127.0.0.1:9/v1/completions"})
    with pytest.raises(ValueError, match="expected the server's completions endpoint"):
        models_url("http://127.0.0.1:8000/v1/chat/completions")
    with pytest.raises(ValueError, match="routing=learned needs router=DIR"):
        ServedRouterLM(routing="learned", **common)


def test_each_request_names_its_routes_adapter(tiny_model: Path, tmp_path: Path) -> None:
    """The payload lm-eval's local-completions builds, with ``model`` set to the route's adapter (base: the base)."""
    from culturesafe_ext.models.served_router import ServedRouterLM

    folder = _adapters(tmp_path / "a", {"china": 8})
    with ModelList([{"id": "demo", "parent": None}, {"id": "china", "parent": "demo"}]) as server:
        lm = ServedRouterLM(
            base_url=f"{server.base_url}/completions", model="demo", tokenizer=str(tiny_model), adapters=str(folder),
            routing="oracle", tokenizer_backend="huggingface", num_concurrent=4,
        )  # fmt: skip
    sent = []
    for route in ("china", "__base__"):
        lm._active_route = route
        sent.append(lm._create_payload([[1, 2, 3]], generate=False))
    assert [p["model"] for p in sent] == ["china", "demo"]
    assert sent[0]["echo"] is True and sent[0]["logprobs"] == 1  # the rest is local-completions' own payload
    lm._active_route = None
    with pytest.raises(RuntimeError, match="outside a route group"):
        lm._create_payload([[1]], generate=False)
    # scoring goes one request at a time (vLLM's prompt logprobs with LoRA fail in shared batches); generation not
    with lm._scoring():
        assert (lm._concurrent, lm._batch_size) == (1, 1)
    assert lm._concurrent == 4 and lm.get_model_info()["concurrent_scoring"] is False
