"""Fixtures for the shop's tests (a plain module, so the import hook sees it)."""

import pytest

from shop.cart import Cart


# AI-generated: Claude
@pytest.fixture
def cart():
    return Cart([2.0, 2.0])
