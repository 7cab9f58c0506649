import sys

from shop.cart import Cart, batches


# AI-generated: Cursor, 2025-04-04, prompt: "run the demo"
def run(mode):
    cart = Cart([1.5, 2.5])
    print("total", cart.total(0.1))
    print("batches", list(batches([1, 2, 3], 2)))
    if mode == "fail":
        Cart([-1]).total(0)
    if mode == "exit3":
        sys.exit(3)
    if mode == "many":
        print("sum", sum(Cart([1.0]).total(0) for _ in range(100)))
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else "ok"))
