"""``aiotel report --html``: the pages against a store made by a real run, escaping of
hostile marker text and messages, the directory rules, a source that changed since, and a
real headless Chromium loading the pages from ``file://``."""

from __future__ import annotations

import hashlib
import base64
import json
import os
import re
import shutil
import stat
import subprocess
import textwrap

import pytest

from conftest import command, run

APP = textwrap.dedent(
    '''\
    import sys


    # AI-generated: Claude, 2026-11-20, prompt: "parse <script>alert('x')</script> \\"quoted\\" amounts", reviewed: "no"
    def parse(text):
        try:
            return int(text)
        except ValueError:
            pass
        if text == "":
            return None
        raise KeyError("<img src=x onerror=alert(1)> bad amount")


    # AI-generated: Copilot, 2026-11-21
    def slow_sum(values):
        total = 0
        for _ in range(int(sys.argv[1])):
            total += sum(values)
        return total


    for t in ["1", "x", "", "2", "y"] * 4:
        try:
            parse(t)
        except KeyError:
            pass
    for i in range(10):
        slow_sum([1, 2, 3])
    '''
)


@pytest.fixture
def recorded(tmp_path):
    """A store written by a real run of APP under aiotel-run: (store, source dir)."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "shop.py").write_text(APP)
    store = tmp_path / "store"
    env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
           "OTEL_RESOURCE_ATTRIBUTES": "service.version=1.0"}
    result = run(command("aiotel-run") + ["python", "shop.py", "1"], cwd=str(source), env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return store, source


def html_report(store, out, *extra, cwd):
    return run(command("aiotel") + ["report", "--store", str(store), "--html", str(out), *extra], cwd=str(cwd))


def pages(out):
    return {name: (out / name).read_text() for name in os.listdir(out) if name.endswith(".html")}


def cells(row):
    return re.findall(r'<td[^>]*data-v="([^"]*)"', row)


def test_pages_show_the_numbers_of_the_text_report_and_annotate_the_source(recorded, tmp_path):
    store, _ = recorded
    out = tmp_path / "site"
    result = html_report(store, out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"aiotel report: 2 function page(s) and an index written: file://{out / 'index.html'}"
    numbers = json.loads(run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path)).stdout)
    site = pages(out)
    index = site.pop("index.html")
    rows = re.findall(r"<tr[^>]*>(<td.*?)</tr>", index)
    assert len(rows) == len(numbers["functions"]) == 2
    for row, expected in zip(rows, numbers["functions"]):
        values = cells(row)
        assert values[0] == expected["function"] and values[1] == "1.0"
        assert (int(values[4]), int(values[5])) == (expected["calls"], expected["errors"])
        assert float(values[8]) == pytest.approx(expected["p95_seconds"])
    parse_page = next(text for name, text in site.items() if "shop.parse" in name)
    # the source, line by line, with what ran: the handler, the None return, the raise
    assert re.search(r'<tr class=fb><td class=n>8</td><td>    except ValueError:</td><td class=note>fallback: '
                     r'ValueError caught 12×', parse_page)
    assert re.search(r"<tr class=none><td class=n>11</td><td>        return None</td><td class=note>returned None 4×",
                     parse_page)
    assert re.search(r"<tr class=raise><td class=n>12</td>.*?exception left here: KeyError", parse_page)
    assert "<dt>provenance.reviewed</dt><dd>no</dd>" in parse_page
    [version_row] = re.findall(r'<tr id="v-[0-9a-f]{8}"><td class=l>1.0</td>(.*?)</tr>', parse_page)
    assert re.findall(r"<td>([^<]*)</td>", version_row)[:3] == ["20", "8", "40.0"]
    # the index links each (function, version) row to that version's row on the function's page
    link = re.search(r'<a href="(f-shop.parse-[0-9a-f]{10}.html)#(v-[0-9a-f]{8})">', index)
    assert link and f'<tr id="{link.group(2)}">' in site[link.group(1)]


def test_marker_text_and_messages_are_escaped_and_a_policy_allows_only_the_sort_script(recorded, tmp_path):
    store, _ = recorded
    out = tmp_path / "site"
    assert html_report(store, out, cwd=tmp_path).returncode == 0
    for name, text in pages(out).items():
        assert "<script>alert" not in text and "<img src=x" not in text, name
        policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', text).group(1)
        assert policy.startswith("default-src 'none'")
        scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
        if name == "index.html":
            [script] = scripts
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"script-src 'sha256-{digest}'" in policy
        else:
            assert scripts == [] and "script-src" not in policy
    parse_page = next(text for name, text in pages(out).items() if "shop.parse" in name)
    assert "parse &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &quot;quoted&quot; amounts" in parse_page
    assert "&lt;img src=x onerror=alert(1)&gt; bad amount" in parse_page


def test_the_site_is_private_and_never_overwrites_what_aiotel_did_not_write(recorded, tmp_path):
    store, _ = recorded
    out = tmp_path / "site"
    assert html_report(store, out, cwd=tmp_path).returncode == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert {stat.S_IMODE(os.stat(out / n).st_mode) for n in os.listdir(out)} == {0o600}
    (out / "f-gone-0000000000.html").write_text("stale")  # not listed in the manifest: left alone
    manifest = json.loads((out / "aiotel-report.json").read_text())
    manifest["files"].append("f-old-1111111111.html")
    (out / "aiotel-report.json").write_text(json.dumps(manifest))
    (out / "f-old-1111111111.html").write_text("an earlier report's page")
    assert html_report(store, out, cwd=tmp_path).returncode == 0  # its own directory: rewritten
    assert (out / "f-gone-0000000000.html").read_text() == "stale"
    assert not (out / "f-old-1111111111.html").exists()

    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "index.html").write_text("someone's page")
    refused = html_report(store, foreign, cwd=tmp_path)
    assert refused.returncode == 2 and "not overwriting files aiotel did not write" in refused.stderr
    assert os.listdir(foreign) == ["index.html"] and (foreign / "index.html").read_text() == "someone's page"


def test_a_source_that_changed_since_is_shown_as_such_and_a_checkout_elsewhere_is_found(recorded, tmp_path):
    store, source = recorded
    moved = tmp_path / "checkout" / "src"
    shutil.copytree(source, moved)
    shutil.rmtree(source)
    out = tmp_path / "site"
    # the recorded path is gone: --source-root finds the same file in the checkout
    assert html_report(store, out, "--source-root", str(tmp_path / "checkout"), cwd=tmp_path).returncode == 0
    parse_page = next(text for name, text in pages(out).items() if "shop.parse" in name)
    assert "<tr class=fb>" in parse_page and "changed since" not in parse_page
    (moved / "shop.py").write_text(APP.replace("return int(text)", "return int(text.strip())"))
    assert html_report(store, out, "--source-root", str(tmp_path / "checkout"), cwd=tmp_path).returncode == 0
    parse_page = next(text for name, text in pages(out).items() if "shop.parse" in name)
    assert "The source changed since this data was recorded" in parse_page
    assert "<tr class=fb>" not in parse_page and "<tr class=raise>" not in parse_page
    slow_page = next(text for name, text in pages(out).items() if "shop.slow_sum" in name)
    assert "changed since" not in slow_page  # the other function's lines are what ran


def test_compare_flags_the_regressed_version_in_the_index(recorded, tmp_path):
    store, source = recorded
    env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
           "OTEL_RESOURCE_ATTRIBUTES": "service.version=2.0"}
    assert run(command("aiotel-run") + ["python", "shop.py", "20000"], cwd=str(source), env=env).returncode == 0
    out = tmp_path / "site"
    result = html_report(store, out, "--compare", "1.0", "2.0", cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # as the text report: a flagged regression exits 1
    index = (out / "index.html").read_text()
    [flagged] = re.findall(r"<tr class=flag>(.*?)</tr>", index)
    assert cells(flagged)[:2] == ["shop.slow_sum", "2.0"] and "slower" in flagged
    [slow_page] = [text for name, text in pages(out).items() if "shop.slow_sum" in name]
    assert "■ 1.0" in slow_page and "■ 2.0" in slow_page  # both versions' histograms overlaid
    # and their calls over time on one axis (each run's calls arrive in one export: two steps)
    assert "■ calls of 1.0" in slow_page and "■ calls of 2.0" in slow_page and slow_page.count("<polyline") >= 2
    assert re.search(r'<p class="flag-note">2.0: slower than 1.0</p>', slow_page)
    assert re.search(r'<tr id="v-[0-9a-f]{8}" class=flag><td class=l>2.0</td>', slow_page)


def test_one_page_per_function_sets_its_versions_side_by_side_and_annotates_the_one_that_ran(recorded, tmp_path):
    """Three versions of one file: each function gets one page, with a row per version
    (the text report's numbers), the versions charted together, and its source annotated
    with the counts of the version whose spans carry the file's digest, never summed over
    versions whose lines may differ."""
    store, source = recorded
    for version in ("1.1", "2.0"):
        env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
               "OTEL_RESOURCE_ATTRIBUTES": f"service.version={version}"}
        assert run(command("aiotel-run") + ["python", "shop.py", "1"], cwd=str(source), env=env).returncode == 0
    out = tmp_path / "site"
    result = html_report(store, out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("aiotel report: 2 function page(s) and an index written")
    numbers = json.loads(run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path)).stdout)
    site = pages(out)
    assert len(re.findall(r"<tr[^>]*>(<td.*?)</tr>", site.pop("index.html"))) == len(numbers["functions"]) == 6
    [parse_page] = [text for name, text in site.items() if "shop.parse" in name]
    rows = re.findall(r'<tr id="v-[0-9a-f]{8}"><td class=l>([^<]+)</td><td>(\d+)</td><td>(\d+)</td>', parse_page)
    assert rows == [(f["service.version"], str(f["calls"]), str(f["errors"]))
                    for f in numbers["functions"] if f["function"] == "shop.parse"]
    assert all(f"■ {v}" in parse_page for v in ("1.0", "1.1", "2.0"))
    assert "Annotated with what service.version 2.0 ran" in parse_page
    assert "ValueError caught 12×" in parse_page and "ValueError caught 36×" not in parse_page
    # the latest errors name the version of the process that failed
    assert re.findall(r"<td class=l>(1.0|1.1|2.0)</td><td class=l>KeyError</td>", parse_page)[0] == "2.0"


def chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs chromium (.ci/run): the pages must be loaded by a real browser")
        pytest.skip("chromium is not installed")
    return found


@pytest.mark.slow
def test_a_headless_chromium_loads_the_pages_from_file_without_console_errors(recorded, tmp_path):
    browser = chromium()
    store, _ = recorded
    out = tmp_path / "site"
    assert html_report(store, out, cwd=tmp_path).returncode == 0
    parse_page = next(name for name in os.listdir(out) if "shop.parse" in name)
    for name in ("index.html", parse_page):
        shot = tmp_path / f"{name}.png"
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr",
             "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400",
             f"--screenshot={shot}", f"file://{out / name}"],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Content Security Policy" in line]
        assert console == [], console
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", done.stderr[-2000:]
        assert shot.stat().st_size > 10_000  # a page was drawn, not a blank


LINKED = textwrap.dedent(
    '''\
    # AI-generated: Claude, 2026-11-20
    def inner(n):
        if n % 2:
            raise ValueError('a message that looks like JSON: "code":2} {"traceId":"x"}')
        return n


    # AI-generated: Claude, 2026-11-20
    def outer(n):
        try:
            return inner(n)
        except ValueError:
            return -1


    for i in range(40):
        outer(i)
    '''
)


def test_failed_spans_are_found_in_the_raw_json_as_a_full_decode_finds_them(tmp_path):
    """The report decodes only the failed spans of a line once it has every function's
    provenance: the same spans as decoding the whole line, with links (late spans of
    unrecorded traces link to their caller) and messages that spell JSON."""
    from aiotel.store.details import failed_spans

    (tmp_path / "app.py").write_text(LINKED)
    store = tmp_path / "store"
    env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "OTEL_TRACES_SAMPLER": "always_off",
           "AIOTEL_LATE_SPAN_RATE": "100000"}
    assert run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env).returncode == 0
    checked = linked = 0
    for name in os.listdir(store):
        if not name.startswith("traces-"):
            continue
        for line in (store / name).read_text().splitlines():
            request = json.loads(line)
            spans = [s for rs in request["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
            expected = [s for s in spans if s.get("status", {}).get("code") == 2]
            assert failed_spans(line) == expected
            checked += len(expected)
            linked += sum(1 for s in expected if s.get("links"))
    assert checked == 20 and linked == 20  # every failure is a late span that links to its caller


def test_input_shapes_when_captured_are_shown_by_parameter(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "shapes.py").write_text(textwrap.dedent(
        '''\
        # AI-generated: Claude, 2026-11-20
        def first(items):
            return items[0] if items else None


        for value in [[1, 2], (3,), [4], "ab", [5, 6, 7]]:
            first(value)
        '''))
    store = tmp_path / "store"
    env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "AIOTEL_CAPTURE_ARGS": "shape"}
    assert run(command("aiotel-run") + ["python", "shapes.py"], cwd=str(source), env=env).returncode == 0
    out = tmp_path / "site"
    assert html_report(store, out, cwd=tmp_path).returncode == 0
    [page_text] = [text for name, text in pages(out).items() if name != "index.html"]
    rows = re.findall(r"<tr><td class=l>unknown</td><td class=l>items</td><td class=l>(\w+)</td><td>(\d+)</td>", page_text)
    assert sorted(rows) == [("list", "3"), ("str", "1"), ("tuple", "1")]
    assert '<title>list: 3 calls</title>' in page_text and ">60%</text>" in page_text


RARE = textwrap.dedent(
    '''\
    # AI-generated: Claude, 2026-11-20, prompt: "rare"
    def rare(x):
        if x < 0:
            raise ValueError("negative")
        return x


    for i in range(400):
        rare(i)
    for i in (-1, -2):
        try:
            rare(i)
        except ValueError:
            pass
    '''
)


def test_spans_are_read_newest_first_only_until_the_window_s_failures_are_found(tmp_path):
    """A function that failed twice (the metrics say so) stops the reading of spans at its
    second failure: the oldest line of the store, made unreadable here, is never reached.
    Asked for a third failure that does not exist, the reading goes to the end and says so."""
    from aiotel.store import rollup
    from aiotel.store.details import read_spans

    (tmp_path / "app.py").write_text(RARE)
    store = tmp_path / "store"
    env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
           "AIOTEL_SPAN_RATE_LIMIT": "100000", "AIOTEL_SPAN_BURST": "100000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16"}
    assert run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env).returncode == 0
    traces = rollup.store_files(str(store), "traces")
    assert len(traces) == 1 and len((store / os.path.basename(traces[0])).read_bytes().splitlines()) > 3
    oldest = store / os.path.basename(traces[0])
    # a failed span of app.rare cut short: a reading that reaches it says so
    oldest.write_bytes(b'{"traceId":"ab", "code.function.name": "app.rare", "status":{"code":2}\n' + oldest.read_bytes())

    done = html_report(store, tmp_path / "site", cwd=tmp_path)
    assert done.returncode == 0 and "not JSON" not in done.stderr, done.stderr
    page = next(text for name, text in pages(tmp_path / "site").items() if name != "index.html")
    assert page.count("<td class=l>negative</td>") == 2  # both failures, in its latest errors

    skipped = rollup.Skipped()
    _, details = read_spans(traces, {"app.rare": 3}, skipped)
    assert len(details["app.rare"].failures) == 2 and "lines that are not JSON" in " ".join(skipped.lines())
