"""What the bench and trial scripts share: valid NHS numbers and HS256 tokens."""
import base64
import hashlib
import hmac
import json
import time


def nhs_number(stem):
    """The first valid NHS number (Modulus 11 check digit) from the 9-digit `stem` on."""
    while True:
        digits = [int(d) for d in f"{stem:09d}"]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1))) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return f"{stem:09d}{check}"
        stem += 1


def nhs_numbers(stem):
    """Valid NHS numbers in order from `stem`."""
    while True:
        number = nhs_number(stem)
        yield number
        stem = int(number[:9]) + 1


def hs256_token(secret, sub, role, org, name="Trial Clinician", ttl=3600):
    """A token as `cpis token` signs it (HS256, audience `cpis`), made here so that a script can
    mint one per request without starting a process."""
    def part(value):
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    claims = {"sub": sub, "role": role, "name": name, "org": org, "exp": int(time.time()) + ttl, "aud": "cpis"}
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
