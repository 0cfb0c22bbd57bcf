"""Generate leveret/amqp/spec.py from RabbitMQ's extended AMQP 0-9-1 spec XML.

Usage: python tools/gen_spec.py [SPEC_XML] [OUTPUT]   (defaults below; "-" writes to stdout)

For every method the generator writes a class with __slots__, a keyword constructor, an
`encode()` that returns the full method-frame payload, and a module-level decode function
with inline offsets; `decode_method` dispatches with one dict lookup on
class_id << 16 | method_id. Straight-line generated code is about twice as fast as a
generic reader object that makes one call per field (see bench/bench_codec.py).

Naming: class "Basic" + method "Publish" -> BasicPublish; fields '-' -> '_'; a field that
is a Python keyword gets a trailing underscore (basic.qos "global" -> global_).
"""

from __future__ import annotations

import keyword
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

DEFAULT_XML = Path("/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "leveret" / "amqp" / "spec.py"

# RabbitMQ extensions that the XML lacks (rabbitmq-codegen adds them from its
# credit_extension.json): (class, method name, index, synchronous, fields).
EXTRA_METHODS = [
    ("connection", "blocked", 60, False, [("reason", "shortstr")]),
    ("connection", "unblocked", 61, False, []),
    ("connection", "update-secret", 70, True, [("new-secret", "longstr"), ("reason", "shortstr")]),
    ("connection", "update-secret-ok", 71, True, []),
]

# struct format character and width of each fixed-size type.
FIXED = {"octet": ("B", 1), "short": ("H", 2), "long": ("I", 4), "longlong": ("Q", 8), "timestamp": ("Q", 8)}
PY_TYPES = {
    "octet": "int", "short": "int", "long": "int", "longlong": "int", "timestamp": "int",
    "shortstr": "str", "longstr": "bytes", "bit": "bool", "table": "dict | None",
}
DEFAULTS = {
    "octet": "0", "short": "0", "long": "0", "longlong": "0", "timestamp": "0",
    "shortstr": "''", "longstr": "b''", "bit": "False", "table": "None",
}


def camel(name: str) -> str:
    """connection + start-ok -> ConnectionStartOk (called per part)."""
    return "".join(part.capitalize() for part in name.split("-"))


def pyname(name: str) -> str:
    """XML field name -> Python attribute name."""
    name = name.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name


def load(xml_path: Path):
    """Return (constants, classes, basic property fields) read from the XML."""
    root = ET.parse(xml_path).getroot()
    domains = {d.get("name"): d.get("type") for d in root.findall("domain")}
    # Reply codes (reply-success and every constant with an error class) live in leveret/amqp/errors.py,
    # hand-written beside the exceptions that carry them; spec.py gets the frame constants only.
    constants = [
        (c.get("name"), int(c.get("value"))) for c in root.findall("constant")
        if not c.get("class") and c.get("name") != "reply-success"
    ]
    classes = []
    properties = []
    for cls in root.findall("class"):
        methods = []
        for m in cls.findall("method"):
            fields = []
            for f in m.findall("field"):
                ftype = f.get("type") or domains[f.get("domain")]
                fields.append((pyname(f.get("name")), ftype))
            methods.append(
                (m.get("name"), int(m.get("index")), m.get("synchronous") == "1", m.get("content") == "1", fields)
            )
        for cname, mname, index, sync, fields in EXTRA_METHODS:
            if cname == cls.get("name"):
                methods.append((mname, index, sync, False, [(pyname(n), t) for n, t in fields]))
        classes.append((cls.get("name"), int(cls.get("index")), methods))
        if cls.get("name") == "basic":
            for f in cls.findall("field"):
                # The XML calls the last property "reserved"; it is cluster-id everywhere else.
                name = "cluster_id" if f.get("name") == "reserved" else pyname(f.get("name"))
                properties.append((name, domains[f.get("domain")]))
    return constants, classes, properties


class Emitter:
    """Collects generated lines and the shared Struct constants they use."""

    def __init__(self) -> None:
        self.structs: dict[str, str] = {}

    def struct(self, fmt: str) -> str:
        """Return the module-level name of the precompiled Struct for fmt."""
        name = "_S_" + fmt
        self.structs[name] = fmt
        return name


def runs(fields):
    """Group fields into encode/decode runs: ('fixed', [(kind, names)]) or ('var', name, type).

    A fixed run is a stretch of fixed-width fields and bit octets that one Struct covers;
    consecutive bits share an octet (up to 8 per octet).
    """
    out = []
    current = None
    bits = None
    for name, ftype in fields:
        if ftype == "bit":
            if current is None:
                current = []
                out.append(("fixed", current))
            if bits is None or len(bits) == 8:
                bits = []
                current.append(("bits", bits))
            bits.append(name)
            continue
        bits = None
        if ftype in FIXED:
            if current is None:
                current = []
                out.append(("fixed", current))
            current.append((ftype, name))
        else:
            current = None
            out.append(("var", name, ftype))
    return out


def fixed_format(items) -> tuple[str, int]:
    """Return the struct format (no '>') and width of a fixed run."""
    fmt = ""
    width = 0
    for kind, _ in items:
        if kind == "bits":
            fmt += "B"
            width += 1
        else:
            fmt += FIXED[kind][0]
            width += FIXED[kind][1]
    return fmt, width


def bits_expr(names) -> str:
    """Expression packing bool attributes into one octet."""
    return " | ".join(f"(self.{n} and {1 << i})" for i, n in enumerate(names)) if names else "0"


def gen_encode(em: Emitter, class_id: int, method_id: int, fields) -> list[str]:
    """Lines of the encode() method body."""
    parts: list[str] = []
    groups = runs(fields)
    head_fmt = "HH"
    head_args = [str(class_id), str(method_id)]
    if groups and groups[0][0] == "fixed":
        fmt, _ = fixed_format(groups[0][1])
        head_fmt += fmt
        for kind, name in groups[0][1]:
            head_args.append(f"({bits_expr(name)})" if kind == "bits" else f"self.{name}")
        groups = groups[1:]
    if len(head_args) == 2:
        parts.append(repr(bytes([class_id >> 8, class_id & 255, method_id >> 8, method_id & 255])))
    else:
        parts.append(f"{em.struct(head_fmt)}.pack({', '.join(head_args)})")
    for group in groups:
        if group[0] == "fixed":
            fmt, _ = fixed_format(group[1])
            args = [f"({bits_expr(name)})" if kind == "bits" else f"self.{name}" for kind, name in group[1]]
            parts.append(f"{em.struct(fmt)}.pack({', '.join(args)})")
        else:
            _, name, ftype = group
            func = {"shortstr": "encode_shortstr", "longstr": "encode_longstr", "table": "encode_table"}[ftype]
            parts.append(f"{func}(self.{name})")
    if len(parts) == 1:
        return [f"        return {parts[0]}"]
    lines = ["        return b''.join(("]
    lines += [f"            {p}," for p in parts]
    lines.append("        ))")
    return lines


def wrap_call(prefix: str, args: list[str]) -> list[str]:
    """A call as one line when short, else one argument per line."""
    line = f"{prefix}{', '.join(args)})"
    if len(line) <= 100:
        return [line]
    return [prefix] + [f"        {arg}," for arg in args] + ["    )"]


def gen_decode(em: Emitter, func: str, cls_name: str, class_id: int, method_id: int, fields) -> list[str]:
    """Lines of the module-level decode function for one method."""
    lines = [f"def {func}(buf):"]
    if not fields:
        lines += [
            "    if len(buf) != 4:",
            f"        raise _malformed(buf, {class_id}, {method_id})",
            f"    return {cls_name}()",
            "",
            "",
        ]
        return lines
    body: list[str] = []
    args: list[str] = []
    offset: int | None = 4  # static offset while no variable-size field has been read
    for group in runs(fields):
        pos = str(offset) if offset is not None else "o"
        if group[0] == "fixed":
            fmt, width = fixed_format(group[1])
            targets = []
            for index, (kind, name) in enumerate(group[1]):
                if kind == "bits":
                    var = f"bits{len(body)}"
                    targets.append(var)
                    args += [f"({var} & {1 << i}) != 0" for i in range(len(name))]
                else:
                    targets.append(name)
                    args.append(name)
            if fmt == "B":  # a lone octet: indexing beats a Struct call
                body.append(f"{targets[0]} = buf[{pos}]")
            else:
                body.append(f"{', '.join(targets)}, = {em.struct(fmt)}.unpack_from(buf, {pos})")
            if offset is not None:
                offset += width
            else:
                body.append(f"o += {width}")
        else:
            _, name, ftype = group
            args.append(name)
            if ftype == "shortstr":
                body.append(f"n = buf[{pos}]")
                start = str(offset + 1) if offset is not None else "o + 1"
                body.append(f"{name} = buf[{start}:{start} + n].decode()")
                body.append(f"o = {start} + n")
            elif ftype == "longstr":
                body.append(f"n, = _S_I.unpack_from(buf, {pos})")
                em.struct("I")
                start = str(offset + 4) if offset is not None else "o + 4"
                body.append(f"{name} = bytes(buf[{start}:{start} + n])")
                body.append(f"o = {start} + n")
            else:  # table
                body.append(f"{name}, o = decode_table(buf, {pos})")
            offset = None
    end = str(offset) if offset is not None else "o"
    lines.append("    try:")
    lines += [f"        {b}" for b in body]
    lines += [
        "    except (struct.error, IndexError, MalformedFrame):",
        f"        raise _malformed(buf, {class_id}, {method_id}) from None",
    ]
    if any(ftype == "shortstr" for _, ftype in fields):
        lines += [
            "    except UnicodeDecodeError:",
            "        raise _bad_utf8() from None",
        ]
    lines += [
        f"    if {end} != len(buf):",
        f"        raise _malformed(buf, {class_id}, {method_id})",
        *wrap_call(f"    return {cls_name}(", args),
        "",
        "",
    ]
    return lines


PRELUDE = '''\
# generated by tools/gen_spec.py, do not edit
"""AMQP 0-9-1 methods and constants, RabbitMQ's extended spec.

generated by tools/gen_spec.py, do not edit

Every method is a class (BasicPublish, QueueDeclareOk, ...) with __slots__ named after the
spec's fields ('-' -> '_', Python keywords get a trailing '_': basic.qos global_), class
attributes CLASS_ID, METHOD_ID, INDEX (class_id << 16 | method_id), NAME ('basic.publish'),
SYNCHRONOUS, HAS_CONTENT and FIELDS ((attribute, spec type) pairs in wire order), an
`encode()` that returns the method-frame payload (ids included), and value equality.

`decode_method(payload)` turns a method-frame payload back into an instance. The payload
must be bytes (or bytearray): the decoders use bytes.decode, faster than decoding
memoryview slices, which is why FrameParser hands method payloads over as bytes.

Types: octet/short/long/longlong/timestamp -> int; shortstr -> str, strict UTF-8 (RabbitMQ
answers malformed UTF-8 with 501 "FRAME_ERROR - Malformed UTF-8 in shortstr"); longstr ->
bytes; bit -> bool; table -> dict (a None table encodes as the empty table; decoding
always gives a dict).
"""

from __future__ import annotations

import struct
from struct import Struct

from .errors import MalformedFrame, UnknownMethod
from .table import decode_table, encode_table
from .wire import encode_longstr, encode_shortstr

'''

BASE = '''

class Method:
    """Base of every generated method class: equality and repr over __slots__."""

    __slots__ = ()
    CLASS_ID: int = 0
    METHOD_ID: int = 0
    INDEX: int = 0
    NAME: str = ""
    SYNCHRONOUS: bool = False
    HAS_CONTENT: bool = False
    FIELDS: tuple[tuple[str, str], ...] = ()  # (attribute, spec type) in wire order

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        for name in self.__slots__:
            a = getattr(self, name)
            b = getattr(other, name)
            # `or`: a None table equals an empty one (None encodes as the empty table).
            if a != b and (a or b):
                return False
        return True

    __hash__ = None  # mutable value objects

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def encode(self) -> bytes:
        """Return the method-frame payload: class id, method id, arguments."""
        raise NotImplementedError


def _bad_utf8() -> MalformedFrame:
    """RabbitMQ refuses a method shortstr that is not UTF-8 (501, class/method 0/0)."""
    return MalformedFrame("Malformed UTF-8 in shortstr")


def _malformed(buf, class_id: int, method_id: int) -> MalformedFrame:
    """The error RabbitMQ sends for undecodable arguments: 501 "cannot decode <<...>>"."""
    octets = ",".join(map(str, bytes(buf[4:68])))
    if len(buf) > 68:
        octets += ",..."
    return MalformedFrame(f"cannot decode <<{octets}>>", class_id, method_id)

'''

TAIL = '''

def decode_method(payload):
    """Decode a method-frame payload into its method instance.

    Guarded by bench/bench_codec.py ("decode"). Raises UnknownMethod for ids the spec does not define and MalformedFrame for
    truncated arguments or trailing bytes.
    """
    try:
        decoder = _DECODERS[_S_I.unpack_from(payload, 0)[0]]
    except KeyError:
        class_id, method_id = _S_HH.unpack_from(payload, 0)
        raise UnknownMethod(f"unknown method {class_id}/{method_id}", class_id, method_id) from None
    except struct.error:
        raise MalformedFrame(f"method frame too short ({len(payload)} octets)") from None
    return decoder(payload)
'''


def generate(xml_path: Path) -> str:
    """Return the text of spec.py."""
    constants, classes, properties = load(xml_path)
    em = Emitter()
    em.struct("I")
    em.struct("HH")
    out: list[str] = []
    out.append("# Constants")
    for name, value in constants:
        out.append(f"{name.upper().replace('-', '_')} = {value}")
    out.append("")
    out.append("# Basic content properties in flag order (bit 15 first): (name, type).")
    out.append("BASIC_PROPERTIES = (")
    for name, ptype in properties:
        out.append(f"    ({name!r}, {ptype!r}),")
    out.append(")")
    out.append(BASE)
    decoders: list[tuple[int, str]] = []
    all_classes: list[str] = []
    for cname, class_id, methods in classes:
        for mname, method_id, sync, content, fields in methods:
            cls_name = camel(cname) + camel(mname)
            all_classes.append(cls_name)
            index = class_id << 16 | method_id
            slots = ", ".join(repr(n) for n, _ in fields)
            out.append("")
            out.append(f"class {cls_name}(Method):")
            out.append(f'    """{cname}.{mname} ({class_id}, {method_id})."""')
            out.append("")
            out.append(f"    __slots__ = ({slots}{',' if len(fields) == 1 else ''})")
            out.append(f"    CLASS_ID = {class_id}")
            out.append(f"    METHOD_ID = {method_id}")
            out.append(f"    INDEX = 0x{index:08X}")
            out.append(f"    NAME = '{cname}.{mname}'")
            out.append(f"    SYNCHRONOUS = {sync}")
            out.append(f"    HAS_CONTENT = {content}")
            pairs = [f"({n!r}, {t!r})," for n, t in fields]
            line = f"    FIELDS = ({' '.join(pairs)})"
            if len(line) <= 100:
                out.append(line)
            else:
                out.append("    FIELDS = (")
                out += [f"        {pair}" for pair in pairs]
                out.append("    )")
            if fields:
                out.append("")
                params = [f"{n}: {PY_TYPES[t]} = {DEFAULTS[t]}" for n, t in fields]
                line = f"    def __init__(self, {', '.join(params)}) -> None:"
                if len(line) <= 100:
                    out.append(line)
                else:
                    out.append("    def __init__(")
                    out.append("        self,")
                    out += [f"        {param}," for param in params]
                    out.append("    ) -> None:")
                for n, _ in fields:
                    out.append(f"        self.{n} = {n}")
            out.append("")
            out.append("    def encode(self) -> bytes:")
            out += gen_encode(em, class_id, method_id, fields)
            out.append("")
            func = f"_decode_{cname.replace('-', '_')}_{mname.replace('-', '_')}"
            decoders.append((index, func))
            out.append("")
            out += gen_decode(em, func, cls_name, class_id, method_id, fields)[:-1]
    out.append("")
    out.append("# Every method class by INDEX (class_id << 16 | method_id).")
    out.append("METHODS = {")
    for cls_name in all_classes:
        out.append(f"    {cls_name}.INDEX: {cls_name},")
    out.append("}")
    out.append("")
    out.append("_DECODERS = {")
    for index, func in decoders:
        out.append(f"    0x{index:08X}: {func},")
    out.append("}")
    out.append(TAIL)
    structs = "\n".join(f"{name} = Struct('>{fmt}')" for name, fmt in sorted(em.structs.items()))
    return PRELUDE + structs + "\n\n" + "\n".join(out)


def main(argv: list[str]) -> int:
    """Write spec.py (or stdout with '-')."""
    xml_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_XML
    target = argv[2] if len(argv) > 2 else str(DEFAULT_OUT)
    text = generate(xml_path)
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
