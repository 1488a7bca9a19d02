"""Per-circuit aggregates of a planned-unit capture (business-rules.md, "Circuit aggregates").

Pure: no I/O. Works on :class:`PlannedUnit` objects or their JSON dicts (the warehouse
stores the JSON form), without revalidating them: captures can be large.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from ws_tracker.rules.catalog import UNIT_CATEGORY
from ws_tracker.rules.units import PlannedUnit

__all__ = ["PENDING_LABEL", "UNKNOWN_PLANNER", "circuit_aggregate", "permission_class",
           "round_half_up", "unit_category"]

PermissionClass = Literal["approved", "refused", "pending"]

PENDING_LABEL = "Pending"  # units_by_permission key for an empty/NULL status
UNKNOWN_PLANNER = "(unknown)"  # planner_distribution key for a unit without a forester
NO_CODE = "(none)"  # unit_counts_by_type key for a unit without a unit code

# Codes are matched exactly first, then case-insensitively ("spm" -> SPM), so a casing slip
# on the server does not silently zero a circuit's footage.
_CATEGORY_FOLDED = {code.casefold(): code for code in UNIT_CATEGORY}


def permission_class(raw: str | None) -> PermissionClass | None:
    """Approved = exactly "Approved"; Refused = "Refused"; Pending = ""/None/"pending" (any
    case); None for the others ("No Contact", "Deferred", "PPL Approved", "N/A", ...).
    Surrounding spaces are ignored."""
    text = (raw or "").strip()
    if not text or text.casefold() == "pending":
        return "pending"
    if text == "Approved":
        return "approved"
    if text == "Refused":
        return "refused"
    return None


def unit_category(code: str | None) -> tuple[str | None, str | None]:
    """code -> (catalogue code, category); (None, None) for an unknown or missing code."""
    if not code:
        return None, None
    code = code.strip()
    if code in UNIT_CATEGORY:
        return code, UNIT_CATEGORY[code]
    canonical = _CATEGORY_FOLDED.get(code.casefold())
    if canonical is None:
        return None, None
    return canonical, UNIT_CATEGORY[canonical]


def round_half_up(value: float, places: int) -> float:
    """Round half away from zero on the shortest decimal repr, as PostgreSQL's round(numeric)
    does, so a total here equals the analysts' SQL (Python's round() is half-to-even)."""
    quantum = Decimal(1).scaleb(-places)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)) + 0.0


def _field(unit: PlannedUnit | dict[str, Any], name: str) -> Any:
    return unit.get(name) if isinstance(unit, dict) else getattr(unit, name)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def circuit_aggregate(
    units: Iterable[PlannedUnit | dict[str, Any]],
    *,
    planner_keys: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Totals, permission counts, per-type and per-planner breakdowns of one capture.

    VLG codes measure linear_ft, VAR acres, VCT trees; an unknown code counts as a unit and
    in ``unit_counts_by_type`` (under its raw code) but measures nothing. ``planner_keys``
    maps a forester name (or a forester username, DOMAIN\\user), compared trimmed and
    case-insensitively, to a user id: such planners are keyed ``str(user_id)``, the others
    by their name as first seen (grouped case-insensitively; the username when there is no
    name), ``"(unknown)"`` without either.
    Linear feet are rounded to 2 decimals, acres to 4, after summing, half away from zero.
    """
    lookup = {k.strip().casefold(): v for k, v in (planner_keys or {}).items()}
    total_units = 0
    linear_ft = acres = 0.0
    trees = 0
    perm_classes = {"approved": 0, "refused": 0, "pending": 0}
    by_permission: dict[str, int] = {}
    counts: dict[str, int] = {}
    ft_by_type: dict[str, float] = {}
    acres_by_type: dict[str, float] = {}
    planners: dict[str, dict[str, Any]] = {}
    unmapped_keys: dict[str, str] = {}  # casefolded name -> first-seen spelling

    for unit in units:
        total_units += 1
        canonical, category = unit_category(_text(_field(unit, "unit_code")))
        type_key = canonical or _text(_field(unit, "unit_code")) or NO_CODE
        counts[type_key] = counts.get(type_key, 0) + 1

        raw_perm = _text(_field(unit, "permission_status"))
        klass = permission_class(raw_perm)
        if klass is not None:
            perm_classes[klass] += 1
        perm_key = raw_perm or PENDING_LABEL
        by_permission[perm_key] = by_permission.get(perm_key, 0) + 1

        unit_ft = unit_acres = 0.0
        unit_trees = 0
        if category == "VLG":
            unit_ft = float(_field(unit, "linear_ft") or 0.0)
            ft_by_type[type_key] = ft_by_type.get(type_key, 0.0) + unit_ft
        elif category == "VAR":
            unit_acres = float(_field(unit, "acres") or 0.0)
            acres_by_type[type_key] = acres_by_type.get(type_key, 0.0) + unit_acres
        elif category == "VCT":
            unit_trees = int(_field(unit, "trees") or 0)
        linear_ft += unit_ft
        acres += unit_acres
        trees += unit_trees

        name = _text(_field(unit, "forester"))
        username = _text(_field(unit, "forester_username"))
        user_id = None
        if name is not None:
            user_id = lookup.get(name.casefold())
        if user_id is None and username is not None:
            user_id = lookup.get(username.casefold())
        display = name or username  # a unit without a forester name may still carry a login
        if user_id is not None:
            pkey = str(user_id)
        elif display is None:
            pkey = UNKNOWN_PLANNER
        else:
            pkey = unmapped_keys.setdefault(display.casefold(), display)
        entry = planners.get(pkey)
        if entry is None:
            entry = planners[pkey] = {"name": display or UNKNOWN_PLANNER, "units": 0,
                                      "linear_ft": 0.0, "acres": 0.0, "trees": 0}
        entry["units"] += 1
        entry["linear_ft"] += unit_ft
        entry["acres"] += unit_acres
        entry["trees"] += unit_trees

    for entry in planners.values():
        entry["linear_ft"] = round_half_up(entry["linear_ft"], 2)
        entry["acres"] = round_half_up(entry["acres"], 4)
    return {
        "total_units": total_units,
        "total_linear_ft": round_half_up(linear_ft, 2),
        "total_acres": round_half_up(acres, 4),
        "total_trees": trees,
        "units_approved": perm_classes["approved"],
        "units_refused": perm_classes["refused"],
        "units_pending": perm_classes["pending"],
        "units_by_permission": dict(sorted(by_permission.items())),
        "unit_counts_by_type": dict(sorted(counts.items())),
        "linear_ft_by_type": {k: r for k, v in sorted(ft_by_type.items())
                              if (r := round_half_up(v, 2)) != 0},
        "acres_by_type": {k: r for k, v in sorted(acres_by_type.items())
                          if (r := round_half_up(v, 4)) != 0},
        "planner_distribution": dict(sorted(planners.items())),
    }
