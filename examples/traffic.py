"""Steady traffic for the compose stack: the example app's checkout, forever, with an
occasional broken order. Run under aiotel-run (docker-compose.yml does)."""

import itertools
import time

from app import checkout

ORDERS = ["2 x apple\n1 x pear", "3 x plum", "1 x fig\n1 x kiwi", "x x broken"]
TIERS = ["gold", "silver", "bronze"]


def main() -> None:
    for n in itertools.count():
        order, tier = ORDERS[n % len(ORDERS)], TIERS[n % len(TIERS)]
        try:
            checkout(order, tier)
        except ValueError:
            pass
        time.sleep(0.2)


if __name__ == "__main__":
    main()
