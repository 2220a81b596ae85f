#!/usr/bin/env python3
"""Writes a CSV of PLANS plans for `cpis import` (a daily file as an LA sends it) to stdout:
valid NHS numbers from STEM on, the three plan types in turn.

    python3 benches/plans_csv.py PLANS [STEM]
"""
import sys

from benchlib import nhs_numbers


def main():
    plans = int(sys.argv[1])
    stem = int(sys.argv[2]) if len(sys.argv) > 2 else 400_000_000
    print("nhs_number,plan_type,start,end,plan_reference")
    numbers = nhs_numbers(stem)
    for n in range(plans, 0, -1):
        kind = ("CPP", "LAC", "UCPP")[n % 3]
        print(f"{next(numbers)},{kind},2026-01-05,,U-{n}")


if __name__ == "__main__":
    main()
