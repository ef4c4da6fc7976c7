"""SCG's ``Weight`` predicate: of the routes sharing a group, each request goes to one chosen at
random in proportion to the weights (the choice itself lives in ``BuildContext.weights``)."""

from __future__ import annotations

from gateway.config.args import Args
from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict, WeightGroups


class WeightPredicate(Predicate):
    __slots__ = ("group", "route_id", "weight", "weights")

    def __init__(self, group: str, weight: int, route_id: str, weights: WeightGroups) -> None:
        self.group = group
        self.weight = weight
        self.route_id = route_id
        self.weights = weights

    def test(self, exchange: Exchange) -> bool:
        return self.weights.chosen(self.group, exchange) == self.route_id

    def describe(self) -> str:
        return f"Weight: {self.group} {self.weight}"

    def explain(self, exchange: Exchange) -> Verdict:
        chosen = self.weights.chosen(self.group, exchange)
        weight, total = self.weights.share(self.group, self.route_id)
        share = f"weight {weight} of {total} in group {self.group}"
        if chosen == self.route_id:
            return Verdict(True, f"this route was drawn ({share})")
        return Verdict(False, f"route {chosen} was drawn ({share})")


def build(args: Args, ctx: BuildContext) -> Predicate:
    group: str = args.str("group")
    weight: int = args.int("weight")
    args.finish()
    if not group.strip():
        args.fail("group", "a group name is required")
    if weight < 0:
        args.fail("weight", f"must be 0 or more, got {weight}")
    if not ctx.route_id:
        raise ConfigError("Weight needs the id of the route it belongs to")
    ctx.weights.register(group.strip(), ctx.route_id, weight)
    return WeightPredicate(group.strip(), weight, ctx.route_id, ctx.weights)


FACTORY = PredicateFactory(name="Weight", shortcut_fields=("group", "weight"), build=build)
