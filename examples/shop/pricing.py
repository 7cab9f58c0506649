"""Prices and discounts for the example shop."""

from __future__ import annotations


# AI-generated: GPT-4, 2024-01-15, prompt: "apply tiered discounts to a cart total", reviewed=yes
def discounted_total(prices: list[float], tier: str) -> float:
    rates = {"gold": 0.2, "silver": 0.1}
    try:
        rate = rates[tier]
    except KeyError:
        rate = 0.0  # a silent fallback: unknown tiers pay full price
    return round(sum(prices) * (1 - rate), 2)


# AI-generated: Copilot, 2024-06-02, prompt: "look up the rate of a coupon code"
def coupon_rate(code: str):
    coupons = {"SPRING": 0.05, "VIP": 0.15}
    if code in coupons:
        return coupons[code]
    # unknown codes fall off the end: None, which callers treat as no coupon


def tax(amount: float) -> float:
    return round(amount * 0.2, 2)


# AI-generated: Claude, 2024-03-02, prompt: "parse '3 x SKU' order lines"
class OrderParser:
    def parse_line(self, line: str) -> tuple[int, str]:
        count, _, sku = line.partition(" x ")
        return int(count), sku.strip()

    def parse(self, text: str):
        for line in text.splitlines():
            if line.strip():
                yield self.parse_line(line)
