from shop.cart import Cart

print("total", Cart([3.0, 4.0]).total(0.5))
