"""How a pack rule is declared and becomes a CrossGuard policy.

A rule is a record: its name, the control it enforces, the external checks it implements (as
policies/controls.yml's `rule_ids` writes them), the CIS AWS Foundations Benchmark recommendations
it implements, its description, its enforcement level, and its validator. Each rule module keeps a
`RuleSet` and declares every rule on its validator:

    RULES = RuleSet()

    @RULES.resource("cw-net-06-kms-key-rotation", control="CW-NET-06", types=(KMS_KEY,),
                    checkov=("CKV_AWS_7",), security_hub=("KMS.4",), description="...")
    def _kms_rotation(args, report): ...

References name only what the rule implements: the same requirement on the resources the external
check judges. A check it merely complements stays in the description's prose.

CIS recommendations are `cis`, one string per recommendation and benchmark version, written
"<version>:<recommendation>" (CIS_FORMAT), e.g. ("v1.4.0:3.5", "v3.0.0:3.3") for "CIS AWS Foundations
3.5 in v1.4.0, 3.3 in v3.0.0"; a range such as 4.10-4.14 is one entry per recommendation. They are
not among `references`: the catalog's `rule_ids` name no CIS numbers (Security Hub's CIS standard
controls, such as CloudWatch.1, are `security_hub`).

Every policy fails closed: an unknown value (a first preview) that escapes a validator is reported
as "cannot decide at preview", at the rule's own level (the engine would only note it and let the
resource be created). Resource rules see only the resource types they declare.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from cityward.cloud.graph import Graph
from cityward.cloud.values import cannot_decide

if TYPE_CHECKING:
    from cityward.zones import ZonesPolicy

ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY

# One CIS AWS Foundations Benchmark recommendation of one benchmark version: "v1.4.0:3.5".
CIS_FORMAT = re.compile(r"v\d+\.\d+\.\d+:\d+(?:\.\d+)+")


class Scope(enum.Enum):
    """Which packs hold a rule: every pack; only one built for a zones policy (the rule's
    validator is made from it); only one built without (the rule that refuses the plan)."""

    ANY = "any"
    ZONES = "zones"
    NO_ZONES = "no zones"


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule of the pack, as data. `validate` is `(args, report)`, or for a rule that needs the
    zones policy, `zones -> (args, report)`."""

    name: str
    control: str
    description: str
    validate: Callable
    stack: bool  # a StackValidationPolicy; else a ResourceValidationPolicy of `types`
    types: tuple[str, ...] = ()
    checkov: tuple[str, ...] = ()
    security_hub: tuple[str, ...] = ()  # AWS Security Hub control IDs (FSBP's and the CIS standard's)
    cis: tuple[str, ...] = ()  # CIS AWS Foundations Benchmark recommendations, "v1.4.0:3.5" (CIS_FORMAT)
    level: EnforcementLevel = ENFORCEMENT_LEVEL
    scope: Scope = Scope.ANY

    def __post_init__(self) -> None:
        if not self.name.startswith(f"{self.control.lower()}-"):
            raise ValueError(f"rule {self.name}: its name must start with its control ({self.control.lower()}-)")
        if not self.stack and not self.types:
            raise ValueError(f"resource rule {self.name}: name the resource types it judges")
        malformed = [c for c in self.cis if not CIS_FORMAT.fullmatch(c)]
        if malformed:
            raise ValueError(f"rule {self.name}: CIS recommendations {malformed} are not written "
                             '"<version>:<recommendation>", such as "v1.4.0:3.5"')

    @property
    def references(self) -> tuple[str, ...]:
        """The external checks the rule implements: Checkov IDs, then Security Hub control IDs (the
        catalog's `rule_ids`; the CIS recommendations are `cis`)."""
        return self.checkov + self.security_hub

    @functools.cached_property
    def policy(self) -> Policy:
        """The rule's policy, as the packs that hold it serve it. A rule built for a zones policy gets
        its real one from `build(zones)`; this one, bound to none, refuses every plan (fail closed)."""
        if self.scope is Scope.ZONES:
            return self._policy(self._unbound)
        return self._policy(self.validate)

    def serves(self, zones: ZonesPolicy | None) -> bool:
        """Whether the pack for `zones` (None: no zones policy) holds this rule."""
        if self.scope is Scope.ANY:
            return True
        return (zones is not None) == (self.scope is Scope.ZONES)

    def build(self, zones: ZonesPolicy | None) -> Policy:
        """The policy in the pack for `zones`: built from it when the rule needs it, else `policy`."""
        if self.scope is Scope.ZONES and zones is not None:
            return self._policy(self.validate(zones))
        return self.policy

    def _unbound(self, args: Any, report: ReportViolation) -> None:
        report(f"{self.control}: rule {self.name} is built for a zones policy, and was given none: serve "
               "cityward.cloud.rules.policies(zones)")

    def _policy(self, validate: Callable) -> Policy:
        if not self.stack:
            validate = _only(self.types, validate)
        kind = StackValidationPolicy if self.stack else ResourceValidationPolicy
        return kind(name=self.name, description=self.description, validate=_deciding(self.control, validate),
                    enforcement_level=self.level)


def _only(types: tuple[str, ...], validate: Callable) -> Callable:
    def run(args, report: ReportViolation) -> None:
        if args.resource_type in types:
            validate(args, report)

    return run


def _deciding(control: str, validate: Callable) -> Callable:
    """`validate`, failing closed: a value it needs that is unknown (first preview) is a violation."""

    def run(args, report: ReportViolation) -> None:
        try:
            validate(args, report)
        except UnknownValueError as exc:
            report(cannot_decide(f"{exc.message} ({getattr(args, 'name', 'the stack')})", control))

    return run


class RuleSet:
    """The rules one module declares, in the order it declares them."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def add(self, rule: Rule) -> Rule:
        self._rules.append(rule)
        return rule

    def _decorator(self, **fields: Any) -> Callable[[Callable], Callable]:
        def register(validate: Callable) -> Callable:
            self.add(Rule(validate=validate, **fields))
            return validate

        return register

    def resource(self, name: str, *, control: str, types: tuple[str, ...], description: str,
                 checkov: tuple[str, ...] = (), security_hub: tuple[str, ...] = (),
                 cis: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
        """Declare the decorated `(args, report)` a rule over each resource of `types` (its inputs)."""
        return self._decorator(name=name, control=control, types=types, description=description, stack=False,
                               checkov=checkov, security_hub=security_hub, cis=cis)

    def stack(self, name: str, *, control: str, description: str, checkov: tuple[str, ...] = (),
              security_hub: tuple[str, ...] = (), cis: tuple[str, ...] = (),
              scope: Scope = Scope.ANY) -> Callable[[Callable], Callable]:
        """Declare the decorated `(args, report)` a rule over the whole stack (outputs, dependencies)."""
        return self._decorator(name=name, control=control, description=description, stack=True,
                               checkov=checkov, security_hub=security_hub, cis=cis, scope=scope)

    def zoned(self, name: str, *, control: str, description: str, checkov: tuple[str, ...] = (),
              security_hub: tuple[str, ...] = (), cis: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
        """Declare the decorated `zones -> (args, report)` a stack rule built for one zones policy."""
        return self._decorator(name=name, control=control, description=description, stack=True,
                               checkov=checkov, security_hub=security_hub, cis=cis, scope=Scope.ZONES)

    def declared(self, name: str, *, control: str, description: str, resource_type: str, label: str,
                 ok: Callable[[Mapping[str, Any]], bool], checkov: tuple[str, ...] = (),
                 security_hub: tuple[str, ...] = (), cis: tuple[str, ...] = ()) -> Rule:
        """A stack rule: the stack declares some resource of `resource_type` whose outputs are `ok`."""

        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            if not any(ok(r.props) for r in Graph(args.resources).of(resource_type)):
                report(f"{control}: the stack declares no {label}")

        self.stack(name, control=control, description=description, checkov=checkov,
                   security_hub=security_hub, cis=cis)(validate)
        return self._rules[-1]

    def policies(self, zones: ZonesPolicy | None) -> list[Policy]:
        """These rules as the pack for `zones` holds them (None: the pack without a zones policy)."""
        return [rule.build(zones) for rule in self._rules if rule.serves(zones)]
