"""The Prometheus text exposition format (version 0.0.4), written by hand.

Written here rather than through prometheus-client: every value is read from the live model at scrape
time, so there is no registry to keep in step, and a scrape builds one list of lines and joins it once.
`tests/http/test_metrics.py` reads every endpoint's output back with prometheus-client's own parser.
"""

from __future__ import annotations

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    # The format escapes exactly these three in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))  # repr keeps every digit and writes NaN, +Inf as the parser reads them


class Family:
    """One metric family: its TYPE and HELP lines, then its samples.

    `kind` is gauge, counter, histogram or untyped, as rabbitmq_prometheus declares the same name (its
    alarms and info families are untyped)."""

    __slots__ = ("name", "lines")

    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        self.name = name
        self.lines = [f"# TYPE {name} {kind}", f"# HELP {name} {help_text}"]

    def sample(self, value: float, suffix: str = "", **labels: str) -> "Family":
        """Add one sample (`suffix`: a histogram's _bucket, _sum or _count); returns the family."""
        return self.labelled(value, label_set(**labels), suffix)

    def labelled(self, value: float, labels: str, suffix: str = "") -> "Family":
        """Add one sample whose labels were written once by `label_set` (one queue's, for several families)."""
        self.lines.append(f"{self.name}{suffix}{labels} {_number(value)}")
        return self


def label_set(**labels: str) -> str:
    """'{k="v",...}' with the values escaped, or "" for no labels."""
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_label(str(text))}"' for key, text in labels.items()) + "}"


def gauge(name: str, help_text: str, value: float, kind: str = "gauge") -> Family:
    """A family of one unlabelled sample."""
    return Family(name, help_text, kind).sample(value)


def render(families: list[Family]) -> str:
    """The exposition text of `families`, in order."""
    return "\n".join(line for family in families for line in family.lines) + "\n"
