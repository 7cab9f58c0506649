import sys

import pricing

mode = sys.argv[1]
if mode == "mixed":
    out = []
    for n in range(50):
        items = list(range(n % 5 + 1))
        try:
            out.append(pricing.fast_total(items))
        except ValueError as exc:
            out.append(f"ValueError: {exc}")
    out.append(pricing.legacy_total([1, 2]))
    out.append(pricing.legacy_total([0, 1, 2, 3]))  # the shadow arm (fast_total) raises: never seen here
    out.append(pricing.new_parse("7"))
    print(out)
    print(pricing.CALLS)
elif mode == "many":
    for n in range(int(sys.argv[2])):
        pricing.legacy_total([n])
elif mode == "slow":
    print(sum(pricing.slow_sum(list(range(n))) for n in range(60)))
elif mode == "order":
    for _ in range(40):
        pricing.fast_total([1])
    print(sorted(set(pricing.ORDER[::2])), len(pricing.ORDER))  # what ran first in each call
elif mode == "recurse":
    print([pricing.depth(20) for _ in range(5)])
elif mode == "crash":
    pricing.fast_total([1, 2, 3, 4])
