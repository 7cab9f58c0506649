"""Prints everything a program can observe about instrumented functions; the test runs it
with and without aiotel-run and compares the output byte for byte.

Left out on purpose, the documented differences: the loader's class (a SourceFileLoader
subclass) and the module globals ``__aiotel_probes__`` / ``__aiotel_f<N>__``."""

import asyncio
import importlib.machinery
import importlib.resources
import importlib.util
import inspect
import linecache
import pickle
import sys
import traceback

import shapes
from shapes import Account


def show(label, value):
    print(f"{label}: {value!r}")


# AI-generated: Cursor, 2025-03-03
def in_main(x, *, y=1):
    """Main-script function."""
    return x * y


def describe(fn):
    code = getattr(fn, "__code__", None)
    show(f"{fn.__qualname__} signature", str(inspect.signature(fn)))
    show(f"{fn.__qualname__} names", (fn.__name__, fn.__qualname__, fn.__module__, fn.__doc__))
    show(f"{fn.__qualname__} kinds", (
        inspect.iscoroutinefunction(fn), inspect.isgeneratorfunction(fn), inspect.isasyncgenfunction(fn)))
    show(f"{fn.__qualname__} defaults", (fn.__defaults__, fn.__kwdefaults__, fn.__annotations__))
    if code is not None:
        show(f"{fn.__qualname__} code", (code.co_firstlineno, code.co_filename, code.co_name, code.co_argcount))
    show(f"{fn.__qualname__} source", inspect.getsource(fn).splitlines()[0])


def main():
    for fn in (shapes.add, shapes.registered, shapes.gen, shapes.coro, shapes.agen, Account.deposit,
               Account.fee, Account.standard, shapes.make_counter(0), in_main, shapes.wrapped_target):
        describe(fn)
    show("module", (shapes.__doc__, shapes.__name__, shapes.__file__, shapes.__spec__.name, shapes.__spec__.origin,
                    isinstance(shapes.__loader__, importlib.machinery.SourceFileLoader), shapes.__package__, shapes.__path__))
    show("main module", {k: (v if k not in ("__builtins__", "__loader__") else type(v).__name__)
                         for k, v in vars(sys.modules["__main__"]).items() if k.startswith("__") and not k.startswith("__aiotel")})
    show("main module names", sorted(k for k in vars(sys.modules["__main__"]) if not k.startswith("__aiotel")))
    show("argv and path0", (sys.argv, sys.path[0]))
    show("get_source", importlib.util.find_spec("shapes").loader.get_source("shapes").splitlines()[0])
    show("linecache", linecache.getline(shapes.__file__, 1))
    show("resources", importlib.resources.files("shapes").joinpath("data.txt").read_text())
    show("registry", shapes.REGISTRY["registered"] is shapes.registered)
    show("wraps", (shapes.wrapper.__wrapped__ is shapes.wrapped_target, shapes.wrapper(4)))
    show("pickle", pickle.loads(pickle.dumps(shapes.add)) is shapes.add)
    show("calls", (shapes.add(1), shapes.add(1, 2, 3, 4, scale=2, extra=1), shapes.registered(5), in_main(3, y=4)))
    counter = shapes.make_counter(10)
    show("closure", (counter(), counter(5), counter.__closure__[0].cell_contents))
    account = Account.standard()
    show("methods", (account.deposit(5), Account.fee(55), account.doubled, account.reveal(), Account.rate))
    try:
        account.deposit(-1)
    except ValueError:
        show("traceback", traceback.format_exc())
    g = shapes.gen(3)
    show("generator", (next(g), g.send("a"), g.send("b")))
    try:
        g.send("c")
    except StopIteration as stop:
        show("generator return", stop.value)
    show("delegate", list(shapes.delegate()))
    show("closed generator", (lambda g: (next(g), g.close(), inspect.getgeneratorstate(g)))(shapes.gen(5)))

    async def run_async():
        values = [await shapes.coro(1)]
        values.append([x async for x in shapes.agen(3)])
        return values

    show("async", asyncio.run(run_async()))
    show("context after yield", shapes.context_after_yield())
    show("swallow", shapes.swallow())
    show("find", [shapes.find([1, 2], 2), shapes.find([], None), shapes.find([], "lookup"), shapes.find("ab", "z")])
    depth_now = len(inspect.stack())
    target = sys.getrecursionlimit() - depth_now - 50
    show("recursion 50 below the limit", shapes.recurse(target) == target)
    show("deepest recursion", shapes.deepest() + depth_now)
    show("recursion limit", sys.getrecursionlimit())
    try:
        shapes.crash(3)
    except KeyError:
        show("deep traceback", traceback.format_exc())
    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    if mode == "crash":
        shapes.crash(2)
    return {"ok": 0, "exit3": 3}.get(mode, 0)


if __name__ == "__main__":
    sys.exit(main())
