"""Fails if any log line of the test suite holds personal data (issue #15): an NHS number, a
name the tests put in a token, a token (any JWT), or a request body.

    python3 .ci/log_privacy.py LOG [LOG ...] --secrets SECRETS
"""
import re
import sys

NHS_SHAPED = re.compile(r"(?<![\w.])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\w)")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
BODY = re.compile(r"resourceType")


def valid_nhs_number(digits):
    """The NHS number check digit (modulus 11): a 10-digit number that passes is one."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9]))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def problems(line, secrets):
    for match in NHS_SHAPED.finditer(line):
        digits = "".join(match.groups())
        if valid_nhs_number(digits):
            yield f"an NHS number ({digits})"
    if JWT.search(line):
        yield "a token"
    if BODY.search(line):
        yield "a request or response body (resourceType)"
    for secret in secrets:
        if secret in line:
            yield f"a name from a test's token ({secret})"


def self_test(secrets):
    """The checker must catch what it looks for, or its silence means nothing."""
    bad = [
        "nhs=9449306753",
        "nhs=944 930 6753",
        'body={"resourceType":"Flag"}',
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
    ] + [f"user {s}" for s in list(secrets)[:1]]
    for line in bad:
        assert list(problems(line, secrets)), f"the checker misses {line!r}"
    assert not list(problems('"route":"/FHIR/R4/Flag","status":200,"latency_ms":1.2', secrets))
    assert not list(problems('"request_id":"25a77db7-6b81-4ca2-a279-c6288629723b"', secrets))


def main(argv):
    if "--secrets" not in argv:
        sys.exit(__doc__)
    i = argv.index("--secrets")
    logs, secrets_file = argv[:i], argv[i + 1]
    secrets = {s for s in open(secrets_file, encoding="utf-8").read().splitlines() if len(s) >= 4}
    self_test(secrets)
    lines = found = 0
    for path in logs:
        for number, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
            lines += 1
            for problem in problems(line, secrets):
                found += 1
                if found <= 20:
                    print(f"{path}:{number}: {problem}: {line.strip()[:300]}")
    print(f"log privacy: {lines} lines from {len(logs)} logs, {len(secrets)} names looked for, {found} problems")
    sys.exit(1 if found or lines == 0 else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
