"""assert_keeps_the_contract(cls): a run-time check that a class (a backend's service, a test's fake)
has every member of core/service.py's AccountService and takes each method's call as the contract
makes it. mypy checks the backends statically (backends/registry.py); fakes are not type-checked."""

from __future__ import annotations

import inspect

from tuimail.core.service import AccountService


def members() -> set[str]:
    return {n for n in vars(AccountService) if not n.startswith("_")}


def _without_self(sig: inspect.Signature) -> inspect.Signature:
    return sig.replace(parameters=list(sig.parameters.values())[1:])


def assert_keeps_the_contract(obj) -> None:
    """Every member exists on `obj` (a class, or an instance when some are set in __init__), and each
    method accepts the contract's calls: all positional arguments and keywords, and only the required
    ones (names are the backend's own: the contract's parameters are positional-only)."""
    cls = obj if isinstance(obj, type) else type(obj)
    missing = {n for n in members() if not hasattr(obj, n)}
    assert not missing, f"{cls.__name__} lacks {sorted(missing)}"
    for name in sorted(members()):
        want = inspect.getattr_static(AccountService, name)
        if isinstance(want, property):
            continue
        have = _without_self(inspect.signature(getattr(cls, name)))
        params = list(_without_self(inspect.signature(want)).parameters.values())
        positional = [p for p in params if p.kind == p.POSITIONAL_ONLY]
        keywords = [p for p in params if p.kind == p.KEYWORD_ONLY]
        try:
            have.bind(*[None] * len(positional), **{p.name: None for p in keywords})
            have.bind(*[None] * sum(p.default is p.empty for p in positional),
                      **{p.name: None for p in keywords if p.default is p.empty})
        except TypeError as exc:
            raise AssertionError(f"{cls.__name__}.{name}{have} cannot take AccountService.{name}'s call: {exc}") \
                from None
