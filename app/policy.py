"""Who may do what: two oslo.policy rules, scope-aware (docs/security.md).

``glancesync:view`` guards the GETs of ``/v1`` and the web page; ``glancesync:sync`` the
POSTs, cancels and "Sync now". A role name alone is never enough: the token must be
system-scoped (``all``) or scoped to the master's project, the project whose images the
service syncs with its own cloud-wide credentials. A customer who is ``admin`` of their
own project is therefore refused, as every OpenStack API refuses it since secure RBAC.

The defaults follow ``REQUIRED_ROLES`` and ``VIEWER_ROLES``; ``[oslo_policy]
policy_file`` overrides them (``docs/policy.yaml.sample`` is generated from
``list_rules`` by ``oslopolicy-sample-generator --namespace glancesync``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from oslo_config import cfg
from oslo_policy import policy

from app.settings import SettingsError

VIEW = "glancesync:view"
SYNC = "glancesync:sync"
DEFAULT_REQUIRED = ("admin",)
DEFAULT_VIEWERS = ("reader", "member")
# The master's project is the target's project_id; system scope "all" covers every region.
SCOPE = "(system_scope:all or project_id:%(project_id)s)"
SCOPE_TYPES = ["system", "project"]
DEFAULT_POLICY_FILE = "policy.yaml"  # oslo.policy's default: used when present
NO_PROJECT = "-"  # matches no token when the master's project is unknown


def any_role(roles: Iterable[str]) -> str:
    return " or ".join(f"role:{role}" for role in roles)


def list_rules(
    required: Iterable[str] = DEFAULT_REQUIRED, viewers: Iterable[str] = DEFAULT_VIEWERS
) -> list[policy.DocumentedRuleDefault]:
    """The two rules with their defaults (also the sample generator's entry point)."""
    sync = policy.DocumentedRuleDefault(
        name=SYNC,
        check_str=f"({any_role(required)}) and {SCOPE}",
        description=(
            "Start or cancel a sync (the syncs run with the service's own credentials). "
            "Default: a role of [openstack] REQUIRED_ROLES, system scope or the master's "
            "project."
        ),
        operations=[
            {"path": "/v1/regions/{region}/tasks", "method": "POST"},
            {"path": "/v1/tasks", "method": "POST"},
            {"path": "/v1/regions/{region}/tasks/{task_id}/cancel", "method": "POST"},
            {"path": "/v1/regions/{region}/tasks/{task_id}", "method": "DELETE"},
            {"path": "/ui/api/regions/{region}/tasks", "method": "POST"},
            {"path": "/ui/api/regions/{region}/tasks/{task_id}/cancel", "method": "POST"},
        ],
        scope_types=SCOPE_TYPES,
    )
    viewer_roles = tuple(viewers)
    view_check = f"rule:{SYNC}"
    if viewer_roles:
        view_check += f" or (({any_role(viewer_roles)}) and {SCOPE})"
    view = policy.DocumentedRuleDefault(
        name=VIEW,
        check_str=view_check,
        description=(
            "See regions, image statuses, tasks and the web page. Default: glancesync:sync, "
            "or a role of [openstack] VIEWER_ROLES, system scope or the master's project."
        ),
        operations=[
            {"path": "/v1/regions/{region}/images", "method": "GET"},
            {"path": "/v1/regions/{region}/tasks", "method": "GET"},
            {"path": "/v1/regions/{region}/tasks/{task_id}", "method": "GET"},
            {"path": "/ui/", "method": "GET"},
        ],
        scope_types=SCOPE_TYPES,
    )
    return [sync, view]


def make_enforcer(
    conf: cfg.ConfigOpts,
    required: Iterable[str] = DEFAULT_REQUIRED,
    viewers: Iterable[str] = DEFAULT_VIEWERS,
) -> policy.Enforcer:
    """The enforcer with its rules loaded now, so that a policy file that does not parse
    stops the service at start instead of failing every request."""
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(list_rules(required, viewers))
    path = conf.oslo_policy.policy_file
    if path != DEFAULT_POLICY_FILE and not (os.path.exists(path) or conf.find_file(path)):
        raise SettingsError(f"ERROR: [oslo_policy] policy_file {path} does not exist")
    try:
        enforcer.load_rules()
    except Exception as exc:  # oslo.policy raises yaml, ValueError, its own errors...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SettingsError(
            f"ERROR: [oslo_policy] policy_file {path} cannot be read: {type(exc).__name__}"
            + (f": {first}" if first else "")
        ) from None
    return enforcer


def sample_enforcer() -> policy.Enforcer:
    """oslopolicy-policy-generator's entry point: the defaults on a fresh config."""
    conf = cfg.ConfigOpts()
    conf([], project="glancesync")
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(list_rules())
    return enforcer


def allowed(enforcer: policy.Enforcer, rule: str, creds: dict, master_project: str | None) -> bool:
    """The decision for a token's credentials; a token of a scope the rule does not
    accept (e.g. domain) is refused like a missing role."""
    target = {"project_id": master_project or NO_PROJECT}
    try:
        return bool(enforcer.authorize(rule, target, creds, do_raise=False))
    except policy.InvalidScope:
        return False
