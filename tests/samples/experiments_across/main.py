"""Imports the replaced code first, as an application that grew around it would."""
import sys

from shop import legacy
from shop.billing import vat
from shop import fast

carts = [[(3, 2), (5, 1)], [(2, -1)], [(1, 1)] * 4]
outcomes = []
for items in carts:
    call = fast.fast_total if sys.argv[1:] == ["fast"] else legacy.total
    try:
        outcomes.append(call(items))
    except ValueError as exc:
        outcomes.append(f"ValueError: {exc}")
print(outcomes)
print([legacy.Cart([(1, 2), (1, 3)]).count(), vat.vat_rate("eu"), legacy.rate("us")])
