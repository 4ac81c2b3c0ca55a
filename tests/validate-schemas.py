#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks proto/schema against the payloads the C builders emit.

Usage: /usr/bin/python3 tests/validate-schemas.py SCHEMA_DIR PAYLOAD_DIR

Run it with Debian's /usr/bin/python3: python3-jsonschema (4.10) is installed
for that interpreter only.

1. Every <kind>.schema.json is a valid draft 2020-12 schema (metaschema,
   with a FormatChecker, so that every "pattern" is a valid regex).
2. Every PAYLOAD_DIR/<kind>-<n>.json (written by `test-payload --emit`) is
   valid against its kind's schema, and every kind has at least one payload.
3. Broken payloads fail: for each payload, each mutation (drop a required
   member, change a type, go out of range, add an unknown member, bump the
   schema version; at every level of nesting) must be rejected. Mutations
   come from two sources: the protocol's rules written down below
   (independent of the schemas, so a schema that is too loose is caught),
   and each schema's own keywords (so every limit it states is exercised).
4. tests/data/clinic/<kind>--valid-<n>.json must pass, <kind>--invalid-<n>.json
   must fail (hand-written clinic -> gateway examples).

Prints "schemas: N passed, M failed" (one count per check) and exits 1 if
any check failed.
"""
import copy
import glob
import json
import os
import sys

from jsonschema import Draft202012Validator, FormatChecker

KINDS = [
    "gateway_status", "wearable_status", "aggregate_minute", "aggregate_day",
    "pain", "alert", "fhir_observation", "alert_ack", "config",
    "config_state", "error",
]

FORMATS = FormatChecker()


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + what)


def validator(schema):
    return Draft202012Validator(schema, format_checker=FORMATS)


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def resolve(schema, value):
    """The branch of a oneOf/anyOf that value matches (our schemas use them
    alone), else the schema itself."""
    for key in ("oneOf", "anyOf"):
        for branch in schema.get(key, []):
            if validator(branch).is_valid(value):
                return resolve(branch, value)
    return schema


def walk(schema, value, path):
    """Yields (path, subschema, value) for value and everything inside it."""
    schema = resolve(schema, value)
    yield path, schema, value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from walk(sub, v, path + [k])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            yield from walk(schema["items"], v, path + [i])


def with_value(doc, path, fn):
    """A deep copy of doc with fn applied to the container holding path."""
    doc = copy.deepcopy(doc)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    fn(parent, path[-1])
    return doc


def set_at(doc, path, value):
    if not path:
        return value

    def put(parent, key):
        parent[key] = value
    return with_value(doc, path, put)


def drop_at(doc, path):
    def drop(parent, key):
        del parent[key]
    return with_value(doc, path, drop)


WRONG = ["x", 7, 7.5, True, None, [], {}]


def wrong_type(schema, value):
    allowed = schema.get("type")
    if allowed is None:
        return None
    allowed = set(allowed if isinstance(allowed, list) else [allowed])
    if "number" in allowed:
        allowed.add("integer")
    for cand in WRONG:
        if json_type(cand) not in allowed and json_type(cand) != json_type(value):
            return cand
    return None


def mutations(schema, doc):
    """Yields (description, mutated document), each of which must fail."""
    for path, sub, value in walk(schema, doc, []):
        where = "$" + "".join("[%d]" % p if isinstance(p, int) else "." + p
                              for p in path)
        if isinstance(value, dict):
            for r in sub.get("required", []):
                if r in value:
                    yield "drop %s.%s" % (where, r), drop_at(doc, path + [r])
            if sub.get("additionalProperties") is False:
                yield ("extra member in %s" % where,
                       set_at(doc, path + ["zz_extra"], 1))
            if "maxProperties" in sub:
                big = dict(value)
                for i in range(sub["maxProperties"] + 1 - len(value)):
                    big["zz_extra_%d" % i] = 1
                yield "too many members in %s" % where, set_at(doc, path, big)
            if sub.get("minProperties", 0) > 0:
                yield "empty %s" % where, set_at(doc, path, {})
        if isinstance(value, list):
            if "maxItems" in sub and value:
                big = (value * (sub["maxItems"] + 1))[:sub["maxItems"] + 1]
                yield "too many items in %s" % where, set_at(doc, path, big)
            if sub.get("minItems", 0) > 0:
                yield "no items in %s" % where, set_at(doc, path, [])
            if sub.get("uniqueItems") and value:
                yield ("duplicate item in %s" % where,
                       set_at(doc, path, value + value[:1]))
        if not path:
            continue
        bad = wrong_type(sub, value)
        if bad is not None:
            yield ("type %s -> %s" % (where, json_type(bad)),
                   set_at(doc, path, bad))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "maximum" in sub:
                yield ("%s above maximum" % where,
                       set_at(doc, path, sub["maximum"] + 1))
            if "minimum" in sub:
                yield ("%s below minimum" % where,
                       set_at(doc, path, sub["minimum"] - 1))
        if isinstance(value, str):
            if "maxLength" in sub:
                yield ("%s too long" % where,
                       set_at(doc, path, "x" * (sub["maxLength"] + 1)))
            if sub.get("minLength", 0) > 0:
                yield "%s empty" % where, set_at(doc, path, "")
            if "pattern" in sub:
                yield ("%s breaks its pattern" % where,
                       set_at(doc, path, "!" + value))
        if "enum" in sub:
            yield "%s not in enum" % where, set_at(doc, path, "zz-not-listed")
        if "const" in sub:
            c = sub["const"]
            bad = c + "-x" if isinstance(c, str) else (not c if isinstance(c, bool) else "x")
            yield "%s not the constant" % where, set_at(doc, path, bad)


# What docs/protocol.md says, written down here independently of the
# schemas, so that a schema that is too loose shows up as an accepted
# mutation. Paths: "$.a.b", "[]" for any array item, ".*" for any member of
# a map.
OPTIONAL = {"alert_ack": {"$.note"}}	# members that may be absent
MAPS = {"$.settings", "$.trigger"}	# objects whose member names are data
FREE_TEXT = {"$.note", "$.ack.note", "$.detail", "$.rejected[].reason",
             "$.resource.code.text"}	# any string (up to a length)
MAX_LENGTH = {"$.note": 280, "$.ack.note": 280, "$.detail": 512,
              "$.rejected[].reason": 256, "$.settings.*": 256}
MAXIMA = {"score": 10, "battery_pct": 100, "storage_pct": 100,
          "valueInteger": 10, "seq": 2**32 - 1, "last_seq": 2**32 - 1,
          "notification": 2**32 - 1, "flexed_s_2h": 7200, "cadence_spm": 300,
          "wearables": 1000, "post_op_day": 3650}


def norm(path):
    """The protocol path of a concrete path (list of keys and indices)."""
    out = "$"
    for p in path:
        if isinstance(p, int):
            out += "[]"
        elif out in MAPS:
            out += ".*"
        else:
            out += "." + p
    return out


def leaves_and_objects(doc, path=()):
    yield list(path), doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from leaves_and_objects(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from leaves_and_objects(v, path + (i,))


def protocol_mutations(kind, doc):
    """Mutations from the protocol's rules above: each must fail."""
    yield ("schema version 2",
           set_at(doc, ["schema"], "rehablink/%s/2" % kind))
    for path, value in leaves_and_objects(doc):
        where = norm(path)
        in_map = any(where.startswith(m + ".*") for m in MAPS)
        if isinstance(value, dict) and where not in MAPS:
            for k in value:
                if where + "." + k not in OPTIONAL.get(kind, set()):
                    yield ("drop %s.%s" % (where, k), drop_at(doc, path + [k]))
            yield ("extra member in %s" % where,
                   set_at(doc, path + ["zz_extra"], 1))
        if not path:
            continue
        # an array or object never stands in for a scalar, and vice versa
        if isinstance(value, (dict, list)):
            yield "%s -> string" % where, set_at(doc, path, "x")
            yield ("%s -> %s" % (where, "[]" if isinstance(value, dict) else "{}"),
                   set_at(doc, path, [] if isinstance(value, dict) else {}))
            continue
        yield "%s -> []" % where, set_at(doc, path, [])
        yield "%s -> {}" % where, set_at(doc, path, {})
        if in_map:
            if isinstance(value, str) and where in MAX_LENGTH:
                yield ("%s too long" % where,
                       set_at(doc, path, "x" * (MAX_LENGTH[where] + 1)))
            continue
        if isinstance(value, bool):
            yield "%s -> \"true\"" % where, set_at(doc, path, "true")
            yield "%s -> 1" % where, set_at(doc, path, 1)
        elif isinstance(value, int):
            yield "%s -> -1" % where, set_at(doc, path, -1)
            yield "%s -> fraction" % where, set_at(doc, path, value + 0.5)
            yield "%s -> string" % where, set_at(doc, path, str(value))
            name = path[-1] if isinstance(path[-1], str) else None
            if name in MAXIMA:
                yield ("%s above %d" % (where, MAXIMA[name]),
                       set_at(doc, path, MAXIMA[name] + 1))
        elif isinstance(value, str):
            yield "%s -> number" % where, set_at(doc, path, 12345)
            if where in FREE_TEXT:
                if where in MAX_LENGTH:
                    yield ("%s too long" % where,
                           set_at(doc, path, "x" * (MAX_LENGTH[where] + 1)))
            else:
                yield ("%s -> junk" % where,
                       set_at(doc, path, "zz not valid/#+"))


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    schema_dir, payload_dir = argv[1], argv[2]
    clinic_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "data", "clinic")
    t = Tally()
    schemas = {}
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA,
                                format_checker=FORMATS)

    # 1. the schemas themselves
    for kind in KINDS:
        path = os.path.join(schema_dir, kind + ".schema.json")
        if not os.path.exists(path):
            t.check(False, "%s: missing" % path)
            continue
        schema = load_json(path)
        errors = list(meta.iter_errors(schema))
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as e:  # SchemaError
            errors.append(e)
        for e in errors:
            print("  %s: %s" % (path, getattr(e, "message", e)))
        t.check(not errors, "%s: not a valid draft 2020-12 schema" % path)
        schemas[kind] = schema
    for path in glob.glob(os.path.join(schema_dir, "*.schema.json")):
        kind = os.path.basename(path)[:-len(".schema.json")]
        t.check(kind in KINDS, "%s: schema for an unknown kind" % path)

    # 2. and 3. emitted payloads and their mutations
    seen = set()
    n_payloads = n_mutations = 0
    for path in sorted(glob.glob(os.path.join(payload_dir, "*.json"))):
        kind = os.path.basename(path)[:-len(".json")].rsplit("-", 1)[0]
        if kind not in schemas:
            t.check(False, "%s: no schema for kind '%s'" % (path, kind))
            continue
        seen.add(kind)
        doc = load_json(path)
        v = validator(schemas[kind])
        errors = list(v.iter_errors(doc))
        for e in errors:
            print("  %s: %s at %s" % (path, e.message, e.json_path))
        t.check(not errors, "%s: does not match %s" % (path, kind))
        n_payloads += 1
        if errors:
            continue
        for what, mutant in list(protocol_mutations(kind, doc)) + \
                list(mutations(schemas[kind], doc)):
            n_mutations += 1
            t.check(not v.is_valid(mutant),
                    "%s: mutation accepted: %s" % (path, what))

    # 4. hand-written clinic examples
    n_clinic = 0
    for path in sorted(glob.glob(os.path.join(clinic_dir, "*.json"))):
        name = os.path.basename(path)[:-len(".json")]
        kind, _, variant = name.partition("--")
        if kind not in schemas or not variant.startswith(("valid-", "invalid-")):
            t.check(False, "%s: not named <kind>--valid-N or <kind>--invalid-N" % path)
            continue
        seen.add(kind)
        n_clinic += 1
        try:
            doc = load_json(path)
        except ValueError:
            t.check(variant.startswith("invalid-"),
                    "%s: not JSON but named valid" % path)
            continue
        ok = validator(schemas[kind]).is_valid(doc)
        if variant.startswith("valid-"):
            for e in validator(schemas[kind]).iter_errors(doc):
                print("  %s: %s at %s" % (path, e.message, e.json_path))
            t.check(ok, "%s: valid example rejected" % path)
        else:
            t.check(not ok, "%s: invalid example accepted" % path)

    for kind in KINDS:
        t.check(kind in seen, "%s: no payload or example to validate" % kind)

    print("%d schemas, %d payloads, %d mutations, %d clinic examples"
          % (len(schemas), n_payloads, n_mutations, n_clinic))
    print("schemas: %d passed, %d failed" % (t.passed, t.failed))
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
