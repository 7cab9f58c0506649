"""Cart maths: some of it written by assistants, some by hand."""

import os
import time


class Cart:
    def __init__(self, prices):
        self.prices = list(prices)

    # AI-generated: Claude, 2025-03-01, prompt: "sum a cart with a discount", ticket: SHOP-12
    def total(self, discount):
        if os.environ.get("SHOP_SLOW"):  # a regression, for the version comparison tests
            time.sleep(0.002)
        return round(subtotal(self.prices) * (1 - discount), 2)


# AI-generated: GPT-4o, 2025-02-11
def subtotal(prices):
    return sum(validate(p) for p in prices)


def validate(price):
    if price < 0:
        raise ValueError(f"negative price {price}")
    return price


# AI-generated: Copilot
def batches(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]
