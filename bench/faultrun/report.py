"""The summary table and the list of failures of a fault run."""

from __future__ import annotations

COLUMNS = (("phase", "phase"), ("rounds", "rounds"), ("confirmed", "confirmed"), ("nacked", "nacked"),
           ("lost", "lost"), ("phantom", "phantom"), ("nack kept", "nacked_kept"), ("nack live", "nacked_live"),
           ("dup flag", "duplicates_flagged"), ("dup unflag", "duplicates_unflagged"), ("unflagged", "unflagged"),
           ("by design", "by_design"), ("retention", "retention"), ("max start s", "max_start_s"),
           ("ERROR lines", "error_log_lines"))


def _row(phase: dict) -> dict:
    totals = phase.get("totals", {})
    row = {"phase": phase["phase"], "rounds": phase.get("rounds", phase.get("cycles", "-")),
           "max_start_s": phase.get("max_start_s", "-"), "error_log_lines": phase.get("error_log_lines", "-")}
    for _, key in COLUMNS[2:-2]:
        row[key] = totals.get(key, "-")
    if phase.get("skipped"):
        row["rounds"] = "skipped"
    return row


def summary_table(result: dict) -> str:
    rows = [_row(p) for p in result["phases"]]
    widths = [max(len(title), *(len(str(r[key])) for r in rows)) for title, key in COLUMNS]
    lines = ["  ".join(title.rjust(w) for (title, _), w in zip(COLUMNS, widths))]
    for r in rows:
        lines.append("  ".join(str(r[key]).rjust(w) for (_, key), w in zip(COLUMNS, widths)))
    for p in result["phases"]:
        if p["phase"] == "disk" and not p.get("skipped"):
            lines.append(f"disk: ENOSPC reached {p['enospc_reached']}/{p['cycles']}, alarm tripped before full "
                         f"{p['alarm_tripped_before_full']}/{p['alarm_cycles']}, confirms again after "
                         f"max {p['max_confirm_again_s']} s (mean {p['mean_confirm_again_s']} s), stuck "
                         f"{p['stuck_after_free']}, probe nacks {p['probe_nacks']}; killed while full "
                         f"{p['kills_while_full']} times, restarted on the full disk in at most "
                         f"{p['max_start_on_full_disk_s']} s")
        if p["phase"] == "disk" and p.get("skipped"):
            lines.append(f"disk: skipped ({p['skipped']})")
        if p["phase"] == "flood":
            lines.append(f"flood: RSS baseline {p['baseline_rss_mib']} MiB, peak {p['peak_rss_mib']} MiB, after "
                         f"{p['rss_after_mib']} MiB; memory_high_watermark {p['memory_high_watermark']}, "
                         f"memory_budget {p['memory_budget']}; bystander round trip "
                         f"{p['bystander_roundtrip_s']} s (then one request: median "
                         f"{p['bystander_rtt_median_ms']} ms, max {p['bystander_rtt_max_ms']} ms); "
                         f"connection.blocked seen {p['blocked_seen']}; "
                         f"broker survived {p['broker_survived']}")
    for f in result.get("failures", []):
        lines.append("FAIL: " + f)
    for p in result["phases"]:
        for key, ids in p.get("examples", {}).items():
            lines.append(f"  {p['phase']} {key}: {ids}")
        for ident, story in list(p.get("histories", {}).items())[:3]:
            lines.append(f"  history of {ident}: {story}")
        for sample in p.get("error_samples", [])[:5]:
            lines.append(f"  log: {sample}")
    lines.append(f"wall time {result['wall_seconds']} s")
    return "\n".join(lines)


def failures(result: dict) -> list[str]:
    out = []
    for p in result["phases"]:
        name = p["phase"]
        totals = p.get("totals", {})
        for key in ("lost", "phantom", "nacked_kept", "duplicates_unflagged", "unflagged"):
            if totals.get(key):
                out.append(f"{name}: {key} = {totals[key]}")
        if p.get("start_failed"):
            out.append(f"{name}: the broker did not start (recovery failed); its log ends:\n{p['start_failed']}")
        if p.get("stuck_after_free"):
            out.append(f"{name}: store stuck after space returned in {p['stuck_after_free']} cycle(s)")
        if name == "flood" and not p.get("broker_survived"):
            out.append("flood: the broker died")
        if name == "flood" and p.get("bystander_roundtrip_s") is None:
            out.append("flood: a bystander could not publish and consume within 10 s")
        if name != "flood" and totals and not totals.get("confirmed"):
            out.append(f"{name}: nothing was confirmed (the load never got going)")
    return out
