from shop.cart import Cart


def test_total_is_wrong():
    assert Cart([1.0]).total(0) == 99
