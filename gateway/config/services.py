"""The ``services:`` section: the embedded static registry's instances, and per-service policy
defaults for the routes to ``lb://<service>``.

Each service is ``name: [instances]``, or ``name: {instances: [...], load-balancer: ..., ...}``
to give the policy too (a service known only to discovery may be listed with a policy and no
instances). The shared policy keys are the route metadata's; what their values may be is
routing's to say, so it is checked by the ``check_policy`` the caller passes in. The mesh
client's own keys (``retry``, ``circuit-breaker``, ``strict-lanes``) are
``discovery.mesh.policy_file``'s.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from discovery.mesh.policy_file import CLIENT_KEYS, SHARED_KEYS, PolicyError, check_client_keys
from gateway.config.args import parse_bool
from gateway.config.errors import RANK_SERVICES, ErrorCollector
from gateway.config.schema import InstanceDefinition
from gateway.config.shortcut import describe_value, unknown_key
from gateway.config.values import as_int, as_list
from gateway.errors import ConfigError

INSTANCE_KEYS = ("host", "port", "secure", "tls-server-name", "weight", "metadata", "id")
# A DNS name (what SNI and a certificate's DNS SANs hold); an IP address is taken too.
_DNS_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
# The keys both the gateway's routes to the service and a mesh client read, then the ones only
# a mesh client reads (the gateway's routes say the same with their own filters), which are
# checked here all the same so that ``meshgate validate`` catches a mistake in either.
SERVICE_POLICY_KEYS = SHARED_KEYS + CLIENT_KEYS

# Raises ``ConfigError`` (without a location) for a service policy whose values are wrong.
PolicyCheck = Callable[[Mapping[str, Any]], object]


def read_services(
    raw: object, errors: ErrorCollector, check_policy: PolicyCheck
) -> tuple[dict[str, tuple[InstanceDefinition, ...]], dict[str, dict[str, Any]]]:
    """``(instances by service, policy by service)``; a service or instance with a mistake is
    left out, its errors added to ``errors``."""
    if raw is None:
        return {}, {}
    if not isinstance(raw, Mapping):
        errors.fail(
            "services must be a mapping of service name to a list of instances, "
            f"got {describe_value(raw)}",
            key=(RANK_SERVICES,),
        )
        return {}, {}
    services: dict[str, tuple[InstanceDefinition, ...]] = {}
    policies: dict[str, dict[str, Any]] = {}
    folded: dict[str, str] = {}
    for position, (raw_name, raw_instances) in enumerate(raw.items()):
        name = str(raw_name).strip() if raw_name is not None else ""
        label = f"services.{name}"
        key = (RANK_SERVICES, position)
        if not name:
            errors.fail("service name must not be empty", "services", key=key)
            continue
        if name.casefold() in folded:
            # Consul's catalog, and so our registries, don't tell these two apart.
            errors.fail(
                f"service {name!r} differs from {folded[name.casefold()]!r} only in case "
                "(service ids compare case-insensitively)",
                label,
                key=key,
            )
            continue
        folded[name.casefold()] = name
        if isinstance(raw_instances, Mapping) and (
            "host" in raw_instances or "port" in raw_instances
        ):
            errors.fail(
                "must be a list of instances (or a mapping with instances: and policy keys),"
                " got a single instance",
                label,
                key=key,
            )
            continue
        if isinstance(raw_instances, Mapping):
            policy = {str(k): v for k, v in raw_instances.items() if k != "instances"}
            unknown = sorted(set(policy) - set(SERVICE_POLICY_KEYS))
            for bad in unknown:
                errors.add(unknown_key(bad, SERVICE_POLICY_KEYS), label, key=key)
            try:
                check_policy({k: v for k, v in policy.items() if k not in CLIENT_KEYS})
            except ConfigError as exc:
                errors.add(exc, label, key=key)
            try:
                check_client_keys(policy)
            except PolicyError as exc:
                errors.fail(str(exc), label, key=key)
            if policy and not unknown:
                policies[name] = policy
            if "instances" not in raw_instances:
                continue  # policy only: the instances come from discovery
            raw_instances = raw_instances["instances"]
            label = f"{label}.instances"
        services[name] = _instances(raw_instances, label, key, errors)
    return services, policies


def _instances(
    raw: object, label: str, key: tuple[int, ...], errors: ErrorCollector
) -> tuple[InstanceDefinition, ...]:
    instances: list[InstanceDefinition] = []
    ids: dict[str, int] = {}
    for index, entry in enumerate(as_list(raw, errors, label, key)):
        instance = _instance(entry, f"{label}[{index}]", key, errors)
        if instance is None:
            continue
        if instance.instance_id is not None:
            if instance.instance_id in ids:
                errors.fail(
                    f"duplicate instance id {instance.instance_id!r} "
                    f"(also {label}[{ids[instance.instance_id]}])",
                    f"{label}[{index}]",
                    key=key,
                )
                continue
            ids[instance.instance_id] = index
        instances.append(instance)
    return tuple(instances)


def _instance(
    entry: object, label: str, key: tuple[int, ...], errors: ErrorCollector
) -> InstanceDefinition | None:
    if not isinstance(entry, Mapping):
        errors.fail(
            f"expected an instance (a mapping with host and port), got {describe_value(entry)}",
            label,
            key=key,
        )
        return None
    before = len(errors)
    for raw_key in entry:
        if raw_key not in INSTANCE_KEYS:
            errors.add(unknown_key(str(raw_key), INSTANCE_KEYS), label, key=key)

    host = entry.get("host")
    if host is None:
        errors.fail("missing required key 'host'", label, key=key)
    elif not isinstance(host, str) or not host.strip():
        errors.fail(f"host must be a non-empty string, got {describe_value(host)}", label, key=key)

    raw_port = entry.get("port")
    port = as_int(raw_port)
    if raw_port is None:
        errors.fail("missing required key 'port'", label, key=key)
    elif port is None:
        errors.fail(f"port must be an integer, got {describe_value(raw_port)}", label, key=key)
    elif not 1 <= port <= 65535:
        errors.fail(f"port must be 1..65535, got {port}", label, key=key)

    secure = False
    if entry.get("secure") is not None:
        try:
            secure = parse_bool(entry["secure"])
        except ValueError:
            errors.fail(
                f"secure must be true or false, got {describe_value(entry['secure'])}",
                label,
                key=key,
            )

    server_name = _server_name(entry.get("tls-server-name"), secure, label, key, errors)

    weight = 1
    if entry.get("weight") is not None:
        parsed = as_int(entry["weight"])
        if parsed is None or parsed < 0:
            errors.fail(
                f"weight must be an integer >= 0, got {describe_value(entry['weight'])}",
                label,
                key=key,
            )
        else:
            weight = parsed

    metadata = _instance_metadata(entry.get("metadata"), label, key, errors)

    instance_id: str | None = None
    raw_id = entry.get("id")
    if raw_id is not None:
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id):
            errors.fail(f"id must be a string, got {describe_value(raw_id)}", label, key=key)
        else:
            instance_id = str(raw_id)

    if len(errors) != before:
        return None
    assert isinstance(host, str)  # checked above
    assert port is not None
    return InstanceDefinition(
        host=host.strip(),
        port=port,
        secure=secure,
        weight=weight,
        metadata=metadata,
        instance_id=instance_id,
        tls_server_name=server_name,
    )


def _server_name(
    value: object, secure: bool, label: str, key: tuple[int, ...], errors: ErrorCollector
) -> str | None:
    """``tls-server-name``: the name a secure instance's certificate is checked against (and
    sent as SNI) instead of its host, typically for an instance registered by IP."""
    if value is None:
        return None
    if not isinstance(value, str) or not _is_server_name(value.strip()):
        errors.fail(
            f"tls-server-name must be a DNS name or an IP address, got {describe_value(value)}",
            label,
            key=key,
        )
        return None
    if not secure:
        errors.fail("tls-server-name needs secure: true (it names a TLS server)", label, key=key)
        return None
    return value.strip().lower()


def _is_server_name(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return _DNS_NAME.fullmatch(text) is not None
    return True


def _instance_metadata(
    value: object, label: str, key: tuple[int, ...], errors: ErrorCollector
) -> dict[str, str]:
    """Instance metadata is string to string, as discovery's is (Consul's ``Meta``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.fail(f"metadata must be a mapping, got {describe_value(value)}", label, key=key)
        return {}
    metadata: dict[str, str] = {}
    for name, item in value.items():
        if isinstance(item, bool):
            metadata[str(name)] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            metadata[str(name)] = str(item)
        else:
            errors.fail(
                f"metadata.{name} must be a single value, got {describe_value(item)}",
                label,
                key=key,
            )
    return metadata
