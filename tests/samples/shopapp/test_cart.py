from shop.cart import Cart


def test_total():
    assert Cart([2.0, 2.0]).total(0.5) == 2.0
