"""Small readers of pyelftools DIEs shared by the DWARF modules: attributes, names, types, address ranges."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def die_attr(die: Any, name: str) -> Any:
    """The value of the DIE's attribute ``name`` (None when absent)."""
    found = die.attributes.get(name)
    return None if found is None else found.value


def _follow(die: Any, wanted: str, refs: tuple[str, ...]) -> Any:
    """The first DIE along ``refs`` (abstract origin, specification; at most 4 hops) that has ``wanted``."""
    for _ in range(4):
        if wanted in die.attributes:
            return die
        for ref in refs:
            if ref in die.attributes:
                die = die.get_DIE_from_attribute(ref)
                break
        else:
            return None
    return None


def die_name(die: Any) -> str | None:
    """A DIE's name, also through DW_AT_abstract_origin / DW_AT_specification."""
    holder = _follow(die, "DW_AT_name", ("DW_AT_abstract_origin", "DW_AT_specification"))
    return None if holder is None else holder.attributes["DW_AT_name"].value.decode(errors="replace")


def die_type(die: Any) -> Any:
    """The DIE's DW_AT_type (through its specification or abstract origin); None for void."""
    holder = _follow(die, "DW_AT_type", ("DW_AT_specification", "DW_AT_abstract_origin"))
    return None if holder is None else holder.get_DIE_from_attribute("DW_AT_type")


def subrange_count(die: Any) -> int | None:
    """Elements in one dimension of an array (DW_AT_count, or the bounds); None when unknown (no bound, a VLA)."""
    for key in ("DW_AT_count", "DW_AT_upper_bound"):
        value = die.attributes.get(key)
        if value is not None and value.form.startswith(("DW_FORM_data", "DW_FORM_udata", "DW_FORM_sdata",
                                                         "DW_FORM_implicit_const")):  # fmt: skip
            number = value.value
            size = {"DW_FORM_data4": 32, "DW_FORM_data8": 64}.get(value.form)
            if size and number == (1 << size) - 1:  # GCC writes int a[0]'s upper bound -1 as an unsigned data4
                number = -1
            if key == "DW_AT_count":
                return max(number, 0)
            return max(number - (die_attr(die, "DW_AT_lower_bound") or 0) + 1, 0)
    return None


def die_ranges(dwarf: Any, die: Any) -> list[tuple[int, int]]:
    """The [low, high) address ranges of a subprogram, inlined subroutine or lexical block DIE."""
    low = die_attr(die, "DW_AT_low_pc")
    if low is not None and "DW_AT_high_pc" in die.attributes:
        high_attr = die.attributes["DW_AT_high_pc"]
        high = high_attr.value if high_attr.form == "DW_FORM_addr" else low + high_attr.value
        return [(low, high)] if high > low else []
    if "DW_AT_ranges" not in die.attributes:
        return []
    cu = die.cu
    try:
        entries = dwarf.range_lists().get_range_list_at_offset(die.attributes["DW_AT_ranges"].value, cu=cu)
    except Exception as exc:  # pyelftools raises various errors on unusual range lists
        log.debug("range list of %s unreadable: %s", die_name(die), exc)
        return []
    base = die_attr(cu.get_top_DIE(), "DW_AT_low_pc") or 0
    out = []
    for entry in entries:
        if hasattr(entry, "base_address") and not hasattr(entry, "begin_offset"):
            base = entry.base_address
            continue
        begin, end = entry.begin_offset, entry.end_offset
        if not getattr(entry, "is_absolute", False):
            begin, end = begin + base, end + base
        if end > begin:
            out.append((begin, end))
    return out
