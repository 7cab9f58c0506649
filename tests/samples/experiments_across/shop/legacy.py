"""The code the rewrites replace: no marker here; aiotel learns of it from the rewrites' markers."""


def total(items):
    result = 0
    for price, quantity in items:
        if quantity < 0:
            raise ValueError("negative quantity")
        result += price * quantity
    return result


def rate(region):
    return {"eu": 0.2, "uk": 0.2}.get(region, 0.0)


class Cart:
    def __init__(self, items):
        self.items = items

    def count(self):
        return sum(quantity for _, quantity in self.items)
