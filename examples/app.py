"""A small program with AI-generated functions, to run under `aiotel-run`."""

import sys

from shop.pricing import OrderParser, coupon_rate, discounted_total, tax


# AI-generated: Copilot, 2024-05-20, prompt: "total an order text for a customer tier"
def checkout(order: str, tier: str, coupon: str = "") -> float:
    items = list(OrderParser().parse(order))
    prices = [count * 9.99 for count, _ in items]
    total = discounted_total(prices, tier) * (1 - (coupon_rate(coupon) or 0))
    return round(total + tax(total), 2)


def main() -> int:
    orders = ["2 x apple\n1 x pear", "3 x plum", "1 x fig\n1 x kiwi"]
    for number, order in enumerate(orders * 20):
        tier = ("gold", "silver", "bronze")[number % 3]
        total = checkout(order, tier, ("SPRING", "spring", "")[number % 3])
        if number < 3:
            print(f"{tier:>6}: {total:.2f}")
    try:
        checkout("x x broken", "gold")
    except ValueError as exc:
        print(f"rejected: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
