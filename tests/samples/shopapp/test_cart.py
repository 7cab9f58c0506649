from shop.testing import cart  # noqa: F401  (a fixture: registered by pytest when imported)


def test_total(cart):
    assert cart.total(0.5) == 2.0
