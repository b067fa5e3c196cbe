#!/usr/bin/python3
"""Validates grammar-generated JSON outputs with python-jsonschema (the second, independent validator).

Input (argv[1]): a JSON file [{"name": ..., "schema": {...}, "outputs": ["<json text>", ...]}, ...].
Output (stdout): {"checked": N, "failures": [{"name", "index", "output", "error"}, ...]}.
The validator class follows the schema's $schema (default: Draft 2020-12) and checks formats.
"""
import json
import sys

import jsonschema


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        batch = json.load(f)
    checked = 0
    failures = []
    for entry in batch:
        schema = entry["schema"]
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        for i, text in enumerate(entry["outputs"]):
            checked += 1
            try:
                instance = json.loads(text)
            except Exception as e:  # not JSON at all
                failures.append({"name": entry["name"], "index": i, "output": text[:400], "error": f"json: {e}"})
                continue
            errors = [e.message for e in validator.iter_errors(instance)]
            if errors:
                failures.append({"name": entry["name"], "index": i, "output": text[:400], "error": errors[0][:400]})
    json.dump({"checked": checked, "failures": failures}, sys.stdout)


if __name__ == "__main__":
    main()
