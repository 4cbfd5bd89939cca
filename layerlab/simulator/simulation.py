"""``simulate(...)``: predict how long a push takes and which step dominates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..pusher.profiles import PushProfile, get_profile
from .inputs import LayerSpec, Network, RegistrySettings, layer_specs, layers_from_image
from .machine import MachineProfile, compression_key, load_machine
from .model import run_scenario
from .plan import build_scenario
from .result import SimulationResult, build_result

if TYPE_CHECKING:
    from ..model import Image

__all__ = ["simulate", "as_layers"]


def as_layers(source: Any, profile: PushProfile | None = None,
              machine: MachineProfile | None = None) -> tuple[LayerSpec, ...]:
    """Layer specs from an :class:`~layerlab.model.Image` (sampled, see
    :func:`layers_from_image`), a sequence of :class:`LayerSpec`, or of uncompressed sizes."""
    from ..model import Image

    if isinstance(source, Image):
        keys = ()
        if profile is not None:
            keys = (compression_key(profile.compression, profile.engine, profile.level),)
        return layers_from_image(source, keys=keys, machine=machine or load_machine())
    items = list(source)
    if all(isinstance(item, LayerSpec) for item in items):
        return tuple(items)
    if all(isinstance(item, (int, float, str)) for item in items):
        return layer_specs(items)
    raise TypeError("simulate() takes an Image, LayerSpec values or a list of layer sizes")


def simulate(
    source: "Image | Sequence[LayerSpec] | Sequence[int | str]",
    profile: str | PushProfile = "fast",
    *,
    network: Network | None = None,
    bandwidth: str | float | None = None,
    rtt: str | float | None = None,
    registry: RegistrySettings | None = None,
    machine: MachineProfile | str | None = None,
    existing: Any = None,
    known: Any = None,
    repository: str = "app",
    config_present: bool | None = None,
    label: str = "",
    **registry_options: Any,
) -> SimulationResult:
    """Predict a push of ``source`` with a client ``profile``.

    * ``source``: an Image, :class:`LayerSpec` values, or uncompressed layer sizes
      (``[120_000_000, "40 MB"]``, typical compressibility);
    * ``profile``: ``"serial"``, ``"docker-1.7"``, ``"docker"``, ``"fast"`` or a
      :class:`~layerlab.pusher.PushProfile`;
    * ``network`` or ``bandwidth``/``rtt`` (``"100 MB/s"``, ``"20 ms"``); default: no limit;
    * ``registry``: :class:`RegistrySettings`, and/or its fields as keywords
      (``cache=False, verify="reread", proxy_buffer="16 KiB"``);
    * ``machine``: a :class:`MachineProfile`, a path, ``"saved"`` (what
      :func:`calibrate` saved) or ``None`` (the shipped defaults);
    * ``existing``: what the registry holds: layer indexes/names in ``repository``,
      ``"all"``, or ``{repo: [...]}``; ``known``: what the client's digest cache knows
      (default: the layers the registry holds; ``"none"`` for a fresh client).

    With LayerSpec/size inputs the result depends on the arguments only.
    """
    prof = get_profile(profile)
    mach = load_machine(machine)
    layers = as_layers(source, prof, mach)
    if network is None:
        network = Network.of(bandwidth, rtt)
    elif bandwidth is not None or rtt is not None:
        network = Network.of(bandwidth if bandwidth is not None else network.bandwidth,
                             rtt if rtt is not None else network.rtt)
    reg = registry or RegistrySettings()
    if registry_options:
        reg = _with(reg, registry_options)
    sc = build_scenario(layers, prof, network, reg, mach, repository, existing, known,
                        config_present)
    records, plans = run_scenario(sc)
    inputs = {
        "profile": prof.to_json(),
        "network": network.to_json(),
        "registry": reg.to_json(),
        "machine": mach.source,
        "repository": repository,
        "existing": {repo: sorted(idx) for repo, idx in sc.existing.items()},
        "known": {str(i): repo for i, repo in sc.known.items()},
        "layers": [spec.to_json() for spec in layers],
        "workers": sc.workers,
    }
    return build_result(records, plans, layers, inputs, label=label)


def _with(reg: RegistrySettings, options: dict[str, Any]) -> RegistrySettings:
    """``reg`` with readable keyword overrides applied."""
    parsed = RegistrySettings.of(**options)
    return reg.with_options(**{k: getattr(parsed, k) for k in options})
