"""Find each layer's MLP neurons by module structure: the input of the MLP's down projection.

That input is the FFN's intermediate activation, act(W_gate x) * (W_up x) for gated MLPs and act(W_in x)
for the others, so one forward pre-hook per layer sees exactly the neurons the papers analyse, whatever
the activation function. Found by structure (not by model class) so that new checkpoints of a known
layout work without a table of class names.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

# Child name of the down projection inside a module whose name ends in "mlp", per layout family.
DOWN_PROJECTIONS = {
    "down_proj": "gated: Llama, Qwen, Mistral, Gemma, Phi-3",
    "c_proj": "GPT-2 (Conv1D)",
    "dense_4h_to_h": "GPT-NeoX / Pythia",
}


@dataclass(frozen=True)
class MlpSite:
    """One layer's MLP: the module whose input holds its neurons, and how many neurons there are."""

    name: str
    module: nn.Module
    width: int


def _in_features(module: nn.Module) -> int | None:
    """Input width of a Linear (also a PEFT-wrapped one) or of GPT-2's Conv1D (weight is [in, out])."""
    width = getattr(module, "in_features", None)
    if isinstance(width, int):
        return width
    nx = getattr(module, "nx", None)
    if isinstance(nx, int):
        return nx
    return None


def find_mlp_sites(model: nn.Module) -> list[MlpSite]:
    """The MLP down projections of ``model`` in layer order; a clear error when the layout is unknown."""
    sites = []
    for name, module in model.named_modules():
        if not name.split(".")[-1].endswith("mlp"):
            continue
        for child_name in DOWN_PROJECTIONS:
            child = getattr(module, child_name, None)
            if isinstance(child, nn.Module) and (width := _in_features(child)) is not None:
                sites.append(MlpSite(f"{name}.{child_name}", child, width))
                break
    if not sites:
        known = "; ".join(f"mlp.{child} ({family})" for child, family in DOWN_PROJECTIONS.items())
        raise ValueError(
            f"hf-probe found no MLP down projection in {type(model).__name__}: it looks for a module named "
            f"'*mlp' with one of these children: {known}. Add this model's layout to "
            "culturesafe_ext.probing.layout.DOWN_PROJECTIONS."
        )
    widths = {site.width for site in sites}
    if len(widths) > 1:
        raise ValueError(f"hf-probe needs one MLP width for all layers; {type(model).__name__} has {sorted(widths)}")
    return sites
