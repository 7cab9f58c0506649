"""Every shape of function the rewriter must leave observably unchanged."""

import asyncio
import functools

from opentelemetry import trace

REGISTRY = {}


def register(fn):
    REGISTRY[fn.__name__] = fn
    return fn


# AI-generated: Claude, 2025-01-01, prompt: "add with defaults"
def add(a, b=2, *rest, scale: int = 1, **options) -> int:
    """Add things."""
    return (a + b + sum(rest)) * scale


# AI-generated: Copilot
@register
def registered(x):
    return x * 2


# AI-generated: Copilot
def make_counter(start):
    count = [start]

    # AI-generated: Copilot
    def bump(step=1):
        count[0] += step
        return count[0]

    return bump


# AI-generated: GPT-4o
def wrapped_target(x):
    return -x


wrapper = functools.wraps(wrapped_target)(lambda x: wrapped_target(x))


# AI-generated: Claude, 2025-02-02
class Account:
    """A class marker covers every method."""

    rate = 3

    def __init__(self, balance):
        self.balance = balance

    def deposit(self, amount):
        if amount <= 0:
            raise ValueError(f"bad amount {amount}")
        self.balance += amount
        return self.balance

    @staticmethod
    def fee(amount):
        return amount // 10

    @classmethod
    def standard(cls):
        return cls(100)

    @property
    def doubled(self):
        return self.balance * 2

    def __secret(self):
        return "mangled"

    def reveal(self):
        return self.__secret()


# AI-generated: Copilot
def gen(n):
    received = []
    for i in range(n):
        got = yield i
        received.append(got)
    return received


# AI-generated: Copilot
def delegate():
    result = yield from gen(2)
    yield result


# AI-generated: Copilot
async def coro(x):
    await asyncio.sleep(0)
    return x + 1


# AI-generated: Copilot
async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


# AI-generated: Copilot
def recurse(n):
    return 0 if n == 0 else 1 + recurse(n - 1)


# AI-generated: Copilot
def deepest(n=0):
    try:
        return deepest(n + 1)
    except RecursionError:
        return n


# AI-generated: Copilot
def swallow():
    try:
        int("nope")
    except ValueError as exc:
        return f"swallowed {exc}"


# AI-generated: Copilot
def find(items, wanted):
    """Returns a value, None by `return`, by a value that is None, or by falling off the end."""
    for item in items:
        if item == wanted:
            return item
    if wanted is None:
        return
    if wanted == "lookup":
        return {}.get(wanted)
    print("not found:", wanted)


# AI-generated: Copilot
def crash(level):
    if level == 0:
        raise KeyError("deep")
    return crash(level - 1)


# AI-generated: Copilot
def context_after_yield():
    """The caller's current span is the same before and after resuming a generator."""
    before = trace.get_current_span()
    g = gen(2)
    next(g)
    after_next = trace.get_current_span()
    g.send(1)
    after_send = trace.get_current_span()
    g.close()
    return before is after_next is after_send is trace.get_current_span()
